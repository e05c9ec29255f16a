"""The explanation step: which findings are root causes and which follow from which cause.

The checks measure (each once, each on its own evidence); this module turns the rows their
records declare (diagnostics.checks.record) into three tables and applies them, the way a
differential diagnosis goes from findings to the one cause that explains most of them:

- ``PRECEDENCE``: the registry's order, the deeper cause first. A finding can only be explained
  by one that stands before it, so explanations never go round in a circle.
- ``EXPLAINED``: (cause, symptom) -> the condition under which a cause produces a symptom. A
  symptom present beside its cause is shown beneath it, never above it.
- ``RULED_OUT_BY``: code -> its diagnoses of exclusion (low capacity, "learned nothing", a
  too-small learning rate, label-sorted batches, a plateau, ...): each is only named when none
  of the findings that would otherwise explain the same evidence is present.

``python -m diagnostics.codes`` prints them per code.
"""

from __future__ import annotations

from dataclasses import replace

from diagnostics.checks.record import EveryCodeBut
from diagnostics.registry import CHECKS
from diagnostics.report import SEVERITIES, Finding

PRECEDENCE = tuple(check.code for check in CHECKS)


def codes_of(by, code: str) -> tuple:
    """The codes a RuledOut row names: as listed, or every registered one but those and ``code``."""
    if isinstance(by, EveryCodeBut):
        return tuple(c for c in PRECEDENCE if c not in by.codes and c != code)
    return tuple(by)


EXPLAINED = {(check.code, symptom): row.when for check in CHECKS for row in check.explains
             for symptom in row.symptoms}
RULED_OUT_BY = {check.code: tuple(replace(row, by=codes_of(row.by, check.code))
                                  for row in check.ruled_out_by)
                for check in CHECKS if check.ruled_out_by}


def rank(code: str) -> int:
    return PRECEDENCE.index(code)


def ruled_out(findings: list) -> list:
    """Drop the diagnoses of exclusion that another finding present rules out."""
    present = {}
    for f in findings:
        present.setdefault(f.code, []).append(f)
    def excluded(f):
        return any(not row.unless(f) and any(row.when(f, g) for c in row.by
                                             for g in present.get(c, ()))
                   for row in RULED_OUT_BY.get(f.code, ()))
    return [f for f in findings if not excluded(f)]


def direct_cause(symptom: Finding, findings: list) -> Finding | None:
    """The deepest finding present that explains this one, if any."""
    for cause in sorted(findings, key=lambda f: rank(f.code)):
        if rank(cause.code) >= rank(symptom.code):
            return None
        when = EXPLAINED.get((cause.code, symptom.code))
        if when is not None and when(cause, symptom):
            return cause
    return None


def root_of(f: Finding, direct: dict) -> Finding:
    while direct.get(id(f)) is not None:
        f = direct[id(f)]
    return f


def explain(findings: list) -> list:
    """The findings in the order to act on them: each root cause (most severe group first, then
    the deeper cause), followed by the findings that follow from it."""
    kept = ruled_out(findings)
    direct = {id(f): direct_cause(f, kept) for f in kept}
    roots = [f for f in kept if direct[id(f)] is None]
    groups = {id(r): [f for f in kept if f is not r and root_of(f, direct) is r] for r in roots}
    def group_rank(r):
        worst = min(SEVERITIES.index(f.severity) for f in [r] + groups[id(r)])
        return worst, rank(r.code), r.layer or ""
    ordered = []
    for r in sorted(roots, key=group_rank):
        members = sorted(groups[id(r)], key=lambda f: (rank(f.code), f.layer or ""))
        ordered.append(replace(r, explains=tuple(dict.fromkeys(f.code for f in members))))
        ordered += [replace(f, explained_by=r.code) for f in members]
    return ordered
