"""Run a case's runs (failing, each fix) over backends and seeds, and judge each one.

An :class:`Outcome` is one run with its verdict: the metric against its
threshold, and the diagnosis against what the case documents (the expected
codes on the failing run; no error on a fix). The ``run`` command prints
outcomes as a table; the report draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cases.case import Case, diagnose_result
from cases.config import RunResult
from cases.progress import Progress


@dataclass
class Outcome:
    case: Case
    run_name: str
    backend: str
    seed: int
    result: RunResult
    value: float                    # the case's metric on this run
    metric_ok: bool                 # on the documented side of its threshold
    report: object = None           # diagnose()'s Report, or None when diagnose() raised
    diagnose_error: str = ""        # what diagnose() raised, shown instead of findings
    missing: frozenset = field(default_factory=frozenset)   # expected codes it did not report
    unwanted: frozenset = field(default_factory=frozenset)  # error findings on a fix

    @property
    def threshold(self):
        return self.case.threshold(self.run_name)

    @property
    def diagnosis_ok(self) -> bool:
        return self.report is not None and not self.missing and not self.unwanted

    @property
    def as_documented(self) -> bool:
        return self.metric_ok and self.diagnosis_ok

    @property
    def codes(self) -> list:
        """Finding codes, errors first, as diagnose() ordered them."""
        if self.report is None:
            return []
        return list(dict.fromkeys(f.code for f in self.report.findings))

    @property
    def label(self) -> str:
        return f"{self.case.id} {self.backend} {self.run_name} seed {self.seed}"


def judge(case: Case, run_name: str, backend: str, seed: int, result: RunResult) -> Outcome:
    """The verdict on one finished run: its metric and its diagnosis."""
    value = case.measure(result)
    outcome = Outcome(case, run_name, backend, seed, result, value, case.behaved(run_name, result))
    try:
        outcome.report = diagnose_result(result, case.loss_for_diagnose)
    except Exception as e:  # a crash of diagnose() is shown in the table, not hidden in a trace
        outcome.diagnose_error = f"diagnose() raised {type(e).__name__}: {e}"
        return outcome
    codes = outcome.report.codes
    if run_name == "failing":
        outcome.missing = frozenset(case.expected_codes) - codes
    else:
        outcome.unwanted = frozenset(f.code for f in outcome.report.findings
                                     if f.severity == "error")
    return outcome


def run_count(cases, backends, seeds=None) -> int:
    return sum(len(c.runs) * len(seeds or c.seeds) for c in cases for b in backends_of(c, backends))


def backends_of(case: Case, backends) -> list:
    """The asked backends this case runs on (a case may say one backend cannot express it)."""
    return [b for b in backends if b in case.backends]


def run_case(case: Case, backends, seeds=None, device: str = "cpu",
             bar: Progress | None = None) -> list:
    """Every run of ``case`` on each backend and seed, judged; in a fixed order."""
    outcomes = []
    for backend in backends_of(case, backends):
        changes = {"device": device} if backend == "torch" else {}
        for seed in seeds or case.seeds:
            for run_name in case.runs:
                if bar:
                    bar.show(f"{case.id} {backend} {run_name} seed {seed}")
                result = case.run(run_name, backend, seed, **changes)
                outcomes.append(judge(case, run_name, backend, seed, result))
                if bar:
                    bar.advance()
    return outcomes
