"""What a check declares: its code, the function that measures, what it needs before it can
measure, the evidence the runner adds, the rewrites of its fix, and its rows in the explanation
(what it explains, what rules it out). The runner (diagnostics.runner) applies the needs, the
evidence and the rewrites; diagnostics.explain reads the rows. A check module holds its record
beside its measuring function, and registry.CHECKS lists the records, the deeper cause first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from diagnostics.checks.evidence import (failing_evidence, finite_history,
                                         lr_against_curvature_applies, lr_already_tiny,
                                         training_failing)
from diagnostics.probe import Probe
from diagnostics.report import Finding


@dataclass(frozen=True)
class Need:
    """What must hold of the probe before a check measures; said in words in the per-code view."""
    said: str
    holds: Callable[[Probe], bool]


FINITE = Need("finite outputs, loss and parameters", lambda probe: probe.finite)
FAILING = Need("a failing run (evidence.training_failing)", training_failing)
HISTORY = Need("a history of >= evidence.MIN_HISTORY finite losses",
               lambda probe: finite_history(probe) is not None)
PLAIN_STEPS = Need("plain gradient steps: a known lr, no adaptive optimizer, finite outputs and "
                   "a measurable curvature", lr_against_curvature_applies)


@dataclass(frozen=True)
class Evidence:
    """Evidence the runner adds to every finding of a check (before the check's own keys)."""
    said: str
    of: Callable[[Probe], dict]


FAILING_RUN = Evidence("the failing-run numbers (loss, constant predictor's, references)",
                       failing_evidence)


@dataclass(frozen=True)
class Rewrite:
    """Where ``when(probe)`` holds, the fix's ``phrase`` becomes ``by``."""
    said: str
    when: Callable[[Probe], bool]
    phrase: str
    by: str = ""


def where_steps_tiny(phrase: str, by: str = "") -> Rewrite:
    """``phrase`` (advice to lower the learning rate) replaced by ``by`` where lr x lambda_max <
    evidence.CRAWL: a fix must not contradict the numbers beside it."""
    return Rewrite("steps already tiny against the curvature (lr x lambda_max < CRAWL)",
                   lr_already_tiny, phrase, by)


def always(cause: Finding, symptom: Finding) -> bool:
    return True


def never(f: Finding) -> bool:
    return False


def by_any(ruled: Finding, by: Finding) -> bool:
    return True


def by_an_error(ruled: Finding, by: Finding) -> bool:
    return by.severity == "error"


def by_steps_seen_overshooting(ruled: Finding, by: Finding) -> bool:
    """A finding that saw the steps overshoot at a step: the watched run's timeline, or a
    history whose loss rose far above its start (its peak_step)."""
    return "at_step" in by.evidence or "peak_step" in by.evidence


@dataclass(frozen=True)
class Explains:
    """This check's finding explains the findings of these codes, where ``when(cause, symptom)``:
    they are listed beneath it."""
    symptoms: tuple
    when: Callable[[Finding, Finding], bool] = always


@dataclass(frozen=True)
class EveryCodeBut:
    """Every registered code but these (and the check's own): diagnostics.explain reads it."""
    codes: tuple


@dataclass(frozen=True)
class RuledOut:
    """This check's code is not named when a finding of ``by`` is present and ``when(it, that
    finding)`` holds, unless its own finding passes ``unless``: a diagnosis of exclusion."""
    by: tuple | EveryCodeBut
    when: Callable[[Finding, Finding], bool] = by_any
    unless: Callable[[Finding], bool] = never


@dataclass(frozen=True)
class Check:
    """One check: ``measure(probe)`` returns a finding, a list of them, or nothing, and is called
    only where every need holds."""
    code: str
    measure: Callable[[Probe], Finding | list | None]
    needs: tuple = ()
    evidence: tuple = ()
    rewrites: tuple = ()
    explains: tuple = ()
    ruled_out_by: tuple = ()


# groups of symptoms that many causes produce
STUCK = ("loss-plateau", "constant-output", "loss-oscillation")   # the run does not learn: its
                        # loss sits flat, or jumps around a level (a constant prediction's losses
                        # on one-row batches swing with the targets)
UNITS = ("dead-relu", "saturated-activation", "vanishing-gradient")  # units stop passing signal
BLOWUP = ("non-finite", "exploding-gradient", "loss-oscillation")    # steps overshoot
