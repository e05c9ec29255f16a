"""Run a case's runs (failing, each fix) over backends and seeds, and judge each one.

An :class:`Outcome` is one run with its verdict: the metric against its
threshold, and the diagnosis against what the case documents (the expected
codes on the failing run; no error on a fix). The ``run`` command prints
outcomes as a table; the report draws them.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from cases.case import Case, diagnose_result
from cases.config import RunConfig, RunResult
from cases.runner import run
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


def judge(case: Case, run_name: str, backend: str, seed: int, result: RunResult,
          report=None, error: str = "") -> Outcome:
    """The verdict on one finished run: its metric and its diagnosis (made here if not given)."""
    value = case.measure(result)
    outcome = Outcome(case, run_name, backend, seed, result, value, case.behaved(run_name, result))
    if report is None and not error:
        report, error = diagnosed(result, case.loss_for_diagnose)
    outcome.report, outcome.diagnose_error = report, error
    if report is None:
        return outcome
    if run_name == "failing":
        outcome.missing = frozenset(case.expected_codes) - report.codes
    else:
        outcome.unwanted = frozenset(f.code for f in report.findings if f.severity == "error")
    return outcome


def diagnosed(result: RunResult, loss=None) -> tuple:
    """(report, "") or (None, what diagnose() raised): a crash is shown, not hidden in a trace."""
    try:
        return diagnose_result(result, loss), ""
    except Exception as e:
        return None, f"diagnose() raised {type(e).__name__}: {e}"


def run_and_diagnose(cfg: RunConfig, loss=None) -> tuple:
    """One worker's job: train, then diagnose (both are the slow parts)."""
    result = run(cfg)
    return (result, *diagnosed(result, loss))


# ----------------------------------------------------------------- parallel runs
WORKERS = min(2, os.cpu_count() or 1)   # this machine has 2 cores; more workers would fight


def start_worker() -> None:
    import torch
    torch.set_num_threads(1)   # one thread per worker: the workers are the parallelism


class Runner:
    """Runs configs in worker processes (spawned: no forked torch threads), results in order.

    Every run is seeded by its config, so results do not depend on which worker ran it."""

    def __init__(self, workers: int = WORKERS):
        self.pool = None
        if workers > 1:
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(
                "spawn"), initializer=start_worker)

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool:
            self.pool.shutdown(cancel_futures=True)

    def map(self, fn, jobs, bar: Progress | None = None, labels=()) -> list:
        """[fn(*job) for job in jobs], in parallel when there is a pool and more than one job."""
        labels = list(labels) or [""] * len(jobs)
        if self.pool is None or len(jobs) < 2:
            return [self._one(fn, job, bar, label) for job, label in zip(jobs, labels)]
        futures = [self.pool.submit(fn, *job) for job in jobs]
        results = []
        for future, label in zip(futures, labels):
            if bar:
                bar.show(label)
            results.append(future.result())
            if bar:
                bar.advance()
        return results

    @staticmethod
    def _one(fn, job, bar, label):
        if bar:
            bar.show(label)
        out = fn(*job)
        if bar:
            bar.advance()
        return out


def run_count(cases, backends, seeds=None) -> int:
    return sum(len(c.runs) * len(seeds or c.seeds) for c in cases for b in backends_of(c, backends))


def backends_of(case: Case, backends) -> list:
    """The asked backends this case runs on (a case may say one backend cannot express it)."""
    return [b for b in backends if b in case.backends]


def run_case(case: Case, backends, seeds=None, device: str = "cpu",
             bar: Progress | None = None, runner: Runner | None = None) -> list:
    """Every run of ``case`` on each backend and seed, judged; in a fixed order."""
    keys = [(backend, seed, run_name) for backend in backends_of(case, backends)
            for seed in seeds or case.seeds for run_name in case.runs]
    jobs = [(case.config(r, b, s, **({"device": device} if b == "torch" else {})),
             case.loss_for_diagnose) for b, s, r in keys]
    labels = [f"{case.id} {b} {r} seed {s}" for b, s, r in keys]
    done = (runner or Runner(1)).map(run_and_diagnose, jobs, bar, labels)
    return [judge(case, r, b, s, result, report, error or ("" if report else "no report"))
            for (b, s, r), (result, report, error) in zip(keys, done)]
