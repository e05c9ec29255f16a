"""Figures only some cases have, by case id: the per-case hook of the report.

Each function takes the case's :class:`~cases.report.context.CaseContext` and
returns report blocks (figures, tables). A case without an entry still gets the
generic section; adding a case needs no code here.
"""

from __future__ import annotations

CASE_FIGURES = {}
