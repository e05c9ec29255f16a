"""A Report from a recording alone (``run.check()``, ``watch(..., stop=True)``), and the timeline
findings merged into diagnose()'s: where a timeline check reports, it replaces the post-hoc
finding of the same code (the run as it happened outranks what its end shows)."""

from __future__ import annotations

from dataclasses import replace

from diagnostics.checks.timeline import summed_over_the_batch, weights_wrong_of_their_own
from diagnostics.explain import explain
from diagnostics.registry import TIMELINE_CHECKS
from diagnostics.report import Finding, Report
from diagnostics.timeline import Timeline


def timeline_findings(tl: Timeline) -> list:
    """Every timeline check once, in the registry's order."""
    return [f for f in (check(tl) for check, _ in TIMELINE_CHECKS) if f is not None]


def merged(findings: list, timeline: list, tl: Timeline | None = None) -> list:
    """The post-hoc findings, less those whose code a timeline finding reports or that the
    recording contradicts, and those."""
    replaced = {f.code for f in timeline}
    return [f for f in findings if f.code not in replaced
            and not (tl is not None and contradicted(f, tl))] + timeline


RESET_SEEN = 0.9    # share of the logged steps whose .grad the recording saw reset: a loop that
                    # zeroes it (every step after the first, whose state is unknown, in a healthy run)


def contradicted(f: Finding, tl: Timeline) -> bool:
    """A post-hoc accumulated-gradient (the .grad left behind larger than one batch's gradient
    can be) where the recording saw the .grad reset at every step: the .grad was read against
    weights the last step moved (an lr far too high), or the loss is summed, which the step-0
    rule names. A post-hoc bad-initialization read from the history's first loss alone, where
    the recording shows that loss summed over its batch: a sane start times the rows."""
    if f.code == "accumulated-gradient":
        return tl.n_accumulated == 0 and tl.n_reset >= RESET_SEEN * tl.n_logged > 0
    return f.code == "bad-initialization" and summed_over_the_batch(tl) is not None \
        and not weights_wrong_of_their_own(f.evidence)


def judge(tl: Timeline) -> Report:
    """What the recording shows without the data: no constant predictor to compare with, so the
    checks that need one stay silent."""
    findings = explain(timeline_findings(replace(tl, constant_loss=None, failing=None)))
    summary = {"steps_logged": tl.n_logged, "steps_stepped": tl.n_stepped}
    notes = [] if findings else [f"nothing wrong in the {tl.n_logged} steps recorded so far"]
    return Report(findings, notes, summary, failing=any(f.severity == "error" for f in findings),
                  history=tl.loss, timeline=tl)
