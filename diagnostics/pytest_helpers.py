"""Assertions for users' own test suites: they fail with the whole report."""

from __future__ import annotations

from diagnostics.diagnose import diagnose


def assert_healthy(model, X, y, **kw):
    """Fail when diagnose() finds any error, or the run failed (a history given and the loss no
    better than a constant's); the message is the full report."""
    __tracebackhide__ = True
    report = diagnose(model, X, y, **kw)
    if not report.ok:
        why = f"{len(report.errors)} error(s)" if report.errors else "a run that learned nothing"
        raise AssertionError(f"diagnose() found {why}:\n{report}")
    return report


def assert_diagnosed(model, X, y, code: str, **kw):
    """Fail unless diagnose() reports ``code``; the message is the full report."""
    __tracebackhide__ = True
    from diagnostics.registry import CODES
    if code not in CODES:
        raise ValueError(f"code {code!r} is unknown; accepted: {', '.join(CODES)}")
    report = diagnose(model, X, y, **kw)
    if code not in report.codes:
        raise AssertionError(f"diagnose() did not report {code!r}; it said:\n{report}")
    return report
