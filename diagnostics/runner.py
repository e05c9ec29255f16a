"""The measuring phase: every check of the registry once, where its needs hold, its findings
given the evidence it declares and its fix rewritten where its rewrites say so."""

from __future__ import annotations

from dataclasses import replace

from diagnostics.checks.record import Check
from diagnostics.probe import Probe
from diagnostics.registry import CHECKS
from diagnostics.report import Finding


def needs_hold(check: Check, probe: Probe) -> bool:
    return all(need.holds(probe) for need in check.needs)


def findings_of(check: Check, probe: Probe) -> list:
    """What the check's measure returned, as a list."""
    result = check.measure(probe)
    if isinstance(result, Finding):
        return [result]
    return list(result or ())


def completed(check: Check, f: Finding, probe: Probe) -> Finding:
    """The finding with its declared evidence first, and its fix rewritten where a rewrite holds."""
    evidence = {}
    for attached in check.evidence:
        evidence.update(attached.of(probe))
    fix = f.fix
    for rewrite in check.rewrites:
        if rewrite.when(probe):
            fix = fix.replace(rewrite.phrase, rewrite.by)
    return replace(f, evidence=dict(evidence, **f.evidence), fix=fix) \
        if check.evidence or check.rewrites else f


def run_checks(probe: Probe) -> list:
    """Every check once, in the registry's order, where its needs hold."""
    return [completed(check, f, probe) for check in CHECKS if needs_hold(check, probe)
            for f in findings_of(check, probe)]
