"""One HTML page: the shell with its style inline, escaping, and figures as <img> tags, either
beside the page (the casebook's PNG files) or inside it (``Report.to_html()``: base64 PNG, so
the page is one self-contained file)."""

from __future__ import annotations

import base64
import html

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1, h2, h3 { line-height: 1.2; } h2 { border-top: 1px solid #ccc; padding-top: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } caption { caption-side: top; text-align: left; font-style: italic; }
figure { margin: 1em 0 1.5em; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 13px; color: #444; }
pre { background: #f7f7f7; padding: 0.7em; overflow-x: auto; font-size: 12.5px; }
code { background: #f3f3f3; padding: 0 2px; }
td.no { background: #fde2e2; } td.yes { background: #e3f6e3; }
.error { border-left: 4px solid #c62828; } .warning { border-left: 4px solid #ef8f00; }
.info { border-left: 4px solid #1565c0; } section.finding { padding: 0 0 0 0.8em; margin: 1em 0; }
section.finding.follows { margin-left: 2em; }
"""


def escaped(text) -> str:
    """Any value as HTML text: &, <, > and both quotes escaped."""
    return html.escape(str(text), quote=True)


def figure_tag(src: str, caption_html: str, alt: str, width: int = 0) -> str:
    """<figure> with one image; ``caption_html`` is already HTML, ``src`` and ``alt`` plain."""
    size = f' width="{width}"' if width else ""
    return (f'<figure><img src="{escaped(src)}" alt="{escaped(alt)}"{size}>'
            f"<figcaption>{caption_html}</figcaption></figure>")


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def embedded_figure(png: bytes, caption: str, width: int = 0) -> str:
    """A figure whose PNG is inside the page: nothing to fetch, nothing beside the file."""
    return figure_tag(png_data_uri(png), escaped(caption), caption, width)


def page(title: str, body: str) -> str:
    """The whole document around ``body`` (HTML), its style inline."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{escaped(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")
