"""A Report from a recording alone (``run.check()``, ``watch(..., stop=True)``), and the timeline
findings merged into diagnose()'s: where a timeline check reports, it replaces the post-hoc
finding of the same code (the run as it happened outranks what its end shows)."""

from __future__ import annotations

from dataclasses import replace

from diagnostics.explain import explain
from diagnostics.registry import TIMELINE_CHECKS
from diagnostics.report import Report
from diagnostics.timeline import Timeline


def timeline_findings(tl: Timeline) -> list:
    """Every timeline check once, in the registry's order."""
    return [f for f in (check(tl) for check, _ in TIMELINE_CHECKS) if f is not None]


def merged(findings: list, timeline: list) -> list:
    """The post-hoc findings, less those whose code a timeline finding reports, and those."""
    replaced = {f.code for f in timeline}
    return [f for f in findings if f.code not in replaced] + timeline


def judge(tl: Timeline) -> Report:
    """What the recording shows without the data: no constant predictor to compare with, so the
    checks that need one stay silent."""
    findings = explain(timeline_findings(replace(tl, constant_loss=None, failing=None)))
    summary = {"steps_logged": tl.n_logged, "steps_stepped": tl.n_stepped}
    notes = [] if findings else [f"nothing wrong in the {tl.n_logged} steps recorded so far"]
    return Report(findings, notes, summary, failing=any(f.severity == "error" for f in findings),
                  history=tl.loss, timeline=tl)
