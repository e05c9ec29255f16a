"""The casebook as a list of blocks, rendered once as markdown and once as HTML."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2
    anchor: str = ""          # id to link to (the case id), or none


@dataclass(frozen=True)
class Text:
    text: str                 # one paragraph of plain text; `code` spans are kept as code


@dataclass(frozen=True)
class Figure:
    file: str                 # PNG beside index.html, a relative path
    caption: str
    width: int = 0            # pixels, for the HTML's width attribute


@dataclass(frozen=True)
class Table:
    header: tuple
    rows: list
    caption: str = ""


@dataclass(frozen=True)
class Code:
    text: str                 # preformatted, e.g. str(report) of diagnose()
