"""The casebook report: run the cases, draw the figures, write index.md and index.html.

>>> from cases.registry import CASES
>>> written, outcomes = write_report(CASES[:1], Path("casebook"))   # doctest: +SKIP
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from cases.progress import Progress
from cases.report import html, markdown
from cases.report.casefigs import planned_sweeps
from cases.report.context import CaseContext
from cases.report.runs import run_cases, run_count
from cases.report.sections import TITLE, case_section, front_matter


def write_report(cases, out: Path, backends=("numpy",), seeds=None, device: str = "cpu",
                 command: str = "") -> tuple:
    """Write the casebook into ``out``; returns (files written, relative to out; outcomes)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections, outcomes, written = [], [], []
    total = run_count(cases, backends, seeds) + len(cases)
    with Progress(total, "report") as bar:
        for case, (case_outcomes, swept) in zip(cases, run_cases(
                cases, backends, seeds, device, bar, sweeps=planned_sweeps)):
            ctx = CaseContext(case, case_outcomes, out, bar, swept=swept)
            if ctx.outcomes:
                sections += case_section(ctx)
            outcomes += ctx.outcomes
            written += ctx.written
            bar.advance()
            bar.finished(case.id, len(ctx.outcomes))
    command = command or "python -m cases " + shlex.join(sys.argv[1:])
    blocks = front_matter(cases, outcomes, command) + sections
    (out / "index.md").write_text(markdown.render(blocks), encoding="utf-8")
    (out / "index.html").write_text(html.render(blocks, TITLE), encoding="utf-8")
    return ["index.md", "index.html"] + written, outcomes
