"""Blocks -> index.md (GitHub-flavoured markdown; images beside it, linked relatively)."""

from __future__ import annotations

from cases.report.blocks import Code, Figure, Heading, Table, Text


def cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(t: Table) -> str:
    lines = ["| " + " | ".join(map(cell, t.header)) + " |",
             "|" + "---|" * len(t.header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in t.rows]
    return ("*" + t.caption + "*\n\n" if t.caption else "") + "\n".join(lines)


def block(b) -> str:
    if isinstance(b, Heading):
        anchor = f'<a id="{b.anchor}"></a>\n' if b.anchor else ""
        return anchor + "#" * b.level + " " + b.text
    if isinstance(b, Text):
        return b.text
    if isinstance(b, Figure):
        return f"![{cell(b.caption)}]({b.file})\n\n*{b.caption}*"
    if isinstance(b, Table):
        return table(b)
    if isinstance(b, Code):
        return "```text\n" + b.text.rstrip() + "\n```"
    raise TypeError(f"block {b!r} is not a Heading, Text, Figure, Table or Code")


def render(blocks) -> str:
    return "\n\n".join(block(b) for b in blocks) + "\n"
