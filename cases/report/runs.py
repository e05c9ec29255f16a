"""Run a case's runs (failing, each fix) over backends and seeds, and judge each one.

An :class:`Outcome` is one run with its verdict: the metric against its
threshold, and the diagnosis against what the case documents (the expected
codes on the failing run; no error on a fix). The ``run`` command prints
outcomes as a table; the report draws them.

The runs of a case that share an architecture and setup train at once
(``cases.batched.run_group``, each bit for bit its own run), and the
groups of a case that is worth it spread over two worker processes.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from cases.batched import batch_groups, run_group, run_many
from cases.case import Case, diagnose_result
from cases.backends.schedule import batch_schedule
from cases.config import RunConfig, RunResult
from cases.progress import Progress
from cases.runner import load_data


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


def run_and_diagnose(configs, loss=None) -> list:
    """One worker's job: train a group of configs together, then diagnose each run (both are
    the slow parts); [(result, report, error)] in the configs' order. The torch runs are
    watched (``result.timeline``: the report draws a failing run's); diagnose() is given
    the trained model, as for a numpy run, not the recording."""
    return [(result, *diagnosed(result, loss)) for result in run_group(configs, watched=True)]


# ----------------------------------------------------------------- parallel runs
WORKERS = min(2, os.cpu_count() or 1)   # this machine has 2 cores; more workers would fight
PROCESSES_MIN_WORK = 1e9   # rows x parameters x steps of a case's runs above which worker
                           # processes pay for their start (~3 s each: importing torch);
                           # a digits run is 2.4e9, the tests' tiny cases 1e5


def start_worker() -> None:
    import threadpoolctl
    import torch
    torch.set_num_threads(1)   # one thread per worker: the workers are the parallelism
    threadpoolctl.threadpool_limits(1, user_api="blas")   # numpy's BLAS too: a second
                               # OpenBLAS thread spins while it waits (digits: 1.8x the CPU)


class Runner:
    """Runs jobs in worker processes (spawned: no forked torch threads), results in order.

    Every run is seeded by its config, so results do not depend on which worker ran it."""

    def __init__(self, workers: int = WORKERS):
        self.pool = None
        if workers > 1:
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(
                "spawn"), initializer=start_worker)

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown(cancel_futures=True)

    def submit(self, fn, jobs) -> list:
        """Start every job in the pool (inline: defer it); :meth:`collect` gives the results."""
        if self.pool is None:
            return [functools.partial(fn, *job) for job in jobs]
        return [self.pool.submit(fn, *job) for job in jobs]

    @staticmethod
    def collect(pending, bar: Progress | None = None, labels=(), weights=()) -> list:
        """The results of :meth:`submit`'s jobs in order; the bar advances by each job's
        weight (default 1) as it finishes."""
        labels = list(labels) or [""] * len(pending)
        weights = list(weights) or [1] * len(pending)
        results = []
        for job, label, weight in zip(pending, labels, weights):
            if bar:
                bar.show(label)
            results.append(job.result() if isinstance(job, Future) else job())
            if bar:
                bar.advance(weight)
        return results

    def map(self, fn, jobs, bar: Progress | None = None, labels=(), weights=()) -> list:
        """[fn(*job) for job in jobs], in the pool's processes when there is one."""
        return self.collect(self.submit(fn, jobs), bar, labels, weights)


SHARED: dict = {}          # the one pool of worker processes, started by the first heavy case


def shared_runner() -> Runner:
    """Worker processes kept for every later case of this process (started once: ~3 s each)."""
    if "runner" not in SHARED:
        SHARED["runner"] = Runner(WORKERS)
        atexit.register(SHARED["runner"].close)
    return SHARED["runner"]


def work(cfg: RunConfig) -> float:
    """Rows x parameters x steps: about what training ``cfg`` costs."""
    n = len(load_data(cfg)[1])
    steps = batch_schedule(n, cfg)[0]
    params = sum((a + 1) * b for a, b in zip(cfg.sizes, cfg.sizes[1:]))
    return float(min(cfg.batch_size or n, n)) * params * steps


def runner_for(configs) -> Runner:
    """The shared worker processes when the runs are heavy enough, else this process."""
    if WORKERS > 1 and sum(work(c) for c in configs) > PROCESSES_MIN_WORK:
        return shared_runner()
    return Runner(1)


def run_count(cases, backends, seeds=None) -> int:
    return sum(len(c.runs) * len(seeds or c.seeds) for c in cases for b in backends_of(c, backends))


def backends_of(case: Case, backends) -> list:
    """The asked backends this case runs on (a case may say one backend cannot express it)."""
    return [b for b in backends if b in case.backends]


@dataclass
class CasePlan:
    """A case's runs as jobs: one per group of configs that train together."""
    case: Case
    keys: list                      # (backend, seed, run_name) per run, in the outcomes' order
    configs: list                   # the RunConfig of each key
    groups: list                    # indices into keys: cases.batched.batch_groups

    @property
    def jobs(self) -> list:
        return [([self.configs[i] for i in g], self.case.loss_for_diagnose) for g in self.groups]

    @property
    def labels(self) -> list:
        return [f"{self.case.id} " + ", ".join("{} {} seed {}".format(*self.keys[i]) for i in g)
                for g in self.groups]

    @property
    def weights(self) -> list:
        return [len(g) for g in self.groups]

    def judge(self, done) -> list:
        """Outcomes in the keys' order from the jobs' [(result, report, error)] lists."""
        return [judge(self.case, r, b, s, result, report, error or ("" if report else "no report"))
                for (b, s, r), (result, report, error) in zip(self.keys, in_order(self.groups, done))]


def plan_case(case: Case, backends, seeds=None, device: str = "cpu") -> CasePlan:
    keys = [(backend, seed, run_name) for backend in backends_of(case, backends)
            for seed in seeds or case.seeds for run_name in case.runs]
    configs = [case.config(r, b, s, **({"device": device} if b == "torch" else {}))
               for b, s, r in keys]
    return CasePlan(case, keys, configs, batch_groups(configs))


def run_case(case: Case, backends, seeds=None, device: str = "cpu",
             bar: Progress | None = None, runner: Runner | None = None) -> list:
    """Every run of ``case`` on each backend and seed, judged; in a fixed order."""
    plan = plan_case(case, backends, seeds, device)
    runner = runner or runner_for(plan.configs)
    return plan.judge(runner.map(run_and_diagnose, plan.jobs, bar, plan.labels, plan.weights))


def run_cases(cases, backends, seeds=None, device: str = "cpu", bar: Progress | None = None,
              sweeps=None):
    """Yields each case's judged outcomes (as :func:`run_case`) and its early sweeps, in order.

    Every case's jobs go to the worker processes at once, so later cases train while the
    caller draws earlier ones; then the sweeps ``sweeps(case, seed)`` lists ([(configs,
    record_curve)], casefigs.planned_sweeps), in the cases' order, so they train while the
    caller draws (heaviest first would hold the first case's figures until the last sweep). The second item maps (tuple(configs), record_curve) to a function that gives the
    sweep's results in the configs' order."""
    plans = [plan_case(case, backends, seeds, device) for case in cases]
    planned = [(k, configs, curve) for k, case in enumerate(cases) if backends_of(case, backends)
               for configs, curve in (sweeps or no_sweeps)(case, (seeds or case.seeds)[0])]
    runner = runner_for([cfg for plan in plans for cfg in plan.configs]
                        + [cfg for _, configs, _ in planned for cfg in configs])
    pending = [runner.submit(run_and_diagnose, plan.jobs) for plan in plans]
    early = [{} for _ in cases]
    for k, configs, curve in planned:
        early[k][tuple(configs), curve] = submit_sweep(runner, configs, curve)
    for plan, jobs, swept in zip(plans, pending, early):
        yield plan.judge(runner.collect(jobs, bar, plan.labels, plan.weights)), swept


def no_sweeps(case, seed) -> list:
    return []


def train_sweep(configs, record_curve: bool = True) -> list:
    """``run_many`` with one BLAS thread, as the workers train (``start_worker``)."""
    import threadpoolctl             # scikit-learn's dependency; imported where it is used
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        return run_many(configs, record_curve=record_curve)


def submit_sweep(runner: Runner, configs, record_curve: bool):
    """Start one job per stacked group of the sweep, heaviest first; returns a function that
    waits for them and gives the results in the configs' order."""
    groups = sorted(batch_groups(configs), key=lambda g: -sum(work(configs[i]) for i in g))
    jobs = runner.submit(train_sweep, [([configs[i] for i in g], record_curve) for g in groups])
    return lambda: in_order(groups, runner.collect(jobs))


def in_order(groups, done) -> list:
    """The items of the groups' results (one list per group of indices) in the indices' order."""
    by_index = {i: item for group, items in zip(groups, done) for i, item in zip(group, items)}
    return [by_index[i] for i in range(len(by_index))]
