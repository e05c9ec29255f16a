"""Blocks -> index.html: one file with its style inline, images beside it (relative paths).
The page shell and the figure tag are diagnostics.page's, which Report.to_html() uses too."""

from __future__ import annotations

import html
import re

from cases.report.blocks import Code, Figure, Heading, Table, Text
from diagnostics.page import figure_tag, page


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
        return figure_tag(b.file, inline(b.caption), b.caption, b.width)
    if isinstance(b, Table):
        return table(b)
    if isinstance(b, Code):
        return f"<pre>{html.escape(b.text.rstrip())}</pre>"
    raise TypeError(f"block {b!r} is not a Heading, Text, Figure, Table or Code")


def render(blocks, title: str) -> str:
    return page(title, "\n".join(block(b) for b in blocks))
