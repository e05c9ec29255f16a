"""Blocks -> index.html: one file with its style inline, images beside it (relative paths)."""

from __future__ import annotations

import html
import re

from cases.report.blocks import Code, Figure, Heading, Table, Text

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
"""


def inline(text: str) -> str:
    """Escape, then turn `code` spans into <code> and [text](#anchor) links into <a>."""
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(text), quote=False))
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', escaped)


def td(value) -> str:
    v = str(value)
    mark = ' class="yes"' if v == "yes" else ' class="no"' if v.startswith("no (") else ""
    return f"<td{mark}>{inline(v)}</td>"


def table(t: Table) -> str:
    caption = f"<caption>{inline(t.caption)}</caption>" if t.caption else ""
    head = "<tr>" + "".join(f"<th>{inline(h)}</th>" for h in t.header) + "</tr>"
    body = "\n".join("<tr>" + "".join(map(td, row)) + "</tr>" for row in t.rows)
    return f"<table>{caption}\n<thead>{head}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def block(b) -> str:
    if isinstance(b, Heading):
        anchor = f' id="{html.escape(b.anchor)}"' if b.anchor else ""
        return f"<h{b.level}{anchor}>{inline(b.text)}</h{b.level}>"
    if isinstance(b, Text):
        return f"<p>{inline(b.text)}</p>"
    if isinstance(b, Figure):
        width = f' width="{b.width}"' if b.width else ""
        return (f'<figure><img src="{html.escape(b.file)}" alt="{html.escape(b.caption)}"{width}>'
                f"<figcaption>{inline(b.caption)}</figcaption></figure>")
    if isinstance(b, Table):
        return table(b)
    if isinstance(b, Code):
        return f"<pre>{html.escape(b.text.rstrip())}</pre>"
    raise TypeError(f"block {b!r} is not a Heading, Text, Figure, Table or Code")


def render(blocks, title: str) -> str:
    body = "\n".join(block(b) for b in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")
