"""What a case is: a documented failure, the run that reproduces it, the runs that fix it.

A case module builds one :class:`Case` named ``CASE``; ``cases.registry.CASES``
lists them all. A run is named ``"failing"`` or after its fix, and is made
concrete for a backend and a seed by :meth:`Case.config`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from typing import Callable

from cases.config import RunConfig, RunResult
from cases.runner import load_data, run
from cases.sources import Source

COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Threshold:
    """``metric op value``, e.g. Threshold("test_loss", ">", 0.02)."""
    metric: str
    op: str
    value: float

    def holds(self, x: float) -> bool:
        return bool(COMPARE[self.op](x, self.value))

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Sweep:
    """Runs that vary a case's configuration: one ``(label, changes)`` per point, where
    ``changes`` are RunConfig fields. The report draws them; tests check what they show."""
    points: tuple                    # ((label, {field: value, ...}), ...)

    @classmethod
    def over(cls, field_name: str, values) -> "Sweep":
        """One point per value of one field, labelled by the value."""
        return cls(tuple((v, {field_name: v}) for v in values))

    @property
    def labels(self) -> tuple:
        return tuple(label for label, _ in self.points)

    def configs(self, base: RunConfig, **overrides) -> list:
        """``base`` with each point's changes (then ``overrides``) applied, in order."""
        return [base.replace(**{**changes, **overrides}) for _, changes in self.points]


@dataclass(frozen=True)
class Case:
    id: str                          # "spiral-capacity": test ids and snapshot names start here
    source: Source                   # the document it comes from, cited (cases/sources.py)
    title: str
    story: str                       # two sentences for the report: what failed, and why
    failing: RunConfig
    fixes: dict                      # fix name -> RunConfig (a minimal change of failing)
    failed_when: Threshold           # holds on the failing run
    fixed_when: Threshold            # holds on every fix
    expected_codes: frozenset        # diagnose() must report these on the failing run
    metric: Callable[[RunResult], float] | None = None   # default: getattr(result, metric name)
    seeds: tuple = (0, 1, 2)
    backends: tuple = ("numpy", "torch")
    loss_for_diagnose: object = None       # the loss diagnose() is told, when not cfg.loss
    slow_runs: frozenset = frozenset()     # (run name, backend) pairs tested only with --runslow
    chaotic_runs: frozenset = frozenset()  # runs whose trace one ulp decides after a few dozen
                                           # steps: snapshotted by cases.trace.summarize_chaotic
    sweeps: dict = field(default_factory=dict)   # name -> Sweep, e.g. "activations", "lr"
    figures: tuple = ()              # the report's figures of this case only, by name (the
                                     # drawing code: cases.report.casefigs.FIGURES)

    @property
    def runs(self) -> tuple:
        return ("failing",) + tuple(self.fixes)

    def config(self, run_name: str = "failing", backend: str = "numpy", seed: int = 0,
               **changes) -> RunConfig:
        base = self.failing if run_name == "failing" else self.fixes[run_name]
        return base.replace(backend=backend, seed=seed, name=f"{self.id}:{run_name}", **changes)

    def run(self, run_name: str = "failing", backend: str = "numpy", seed: int = 0,
            **changes) -> RunResult:
        return run(self.config(run_name, backend, seed, **changes))

    def measure(self, result: RunResult) -> float:
        if self.metric is not None:
            return float(self.metric(result))
        return float(getattr(result, self.failed_when.metric))

    def threshold(self, run_name: str) -> Threshold:
        return self.failed_when if run_name == "failing" else self.fixed_when

    def behaved(self, run_name: str, result: RunResult) -> bool:
        """True when the run is on its documented side: failing fails, a fix fixes."""
        return self.threshold(run_name).holds(self.measure(result))


# What changing a field of the run's configuration addresses: the codes whose fix is that change.
# A case agrees with itself when its failing run's first cause is among what one of its fixes
# changes (tests/test_cases.py).
STEP_CODES = frozenset({"unstable-learning-rate", "learning-rate-too-small", "non-finite",
                        "exploding-gradient", "loss-oscillation", "decayed-learning-rate",
                        "dead-relu"})   # an lr that overshoots kills ReLUs (seed 004's lower-lr)
UNIT_CODES = frozenset({"dead-relu", "saturated-activation", "vanishing-gradient", "low-capacity"})
HEAD_CODES = frozenset({"output-range-mismatch", "loss-target-mismatch", "saturated-activation"})
ADDRESSES = {
    "lr": STEP_CODES, "lr_decay": STEP_CODES, "lr_decay_every": STEP_CODES,
    "optimizer": STEP_CODES | {"optimizer-mismatch"}, "momentum": STEP_CODES,
    "batch_size": STEP_CODES | {"single-class-output"},
    "mean_gradient": STEP_CODES | {"accumulated-gradient"},
    "activation": UNIT_CODES, "leaky_slope": UNIT_CODES,
    "sizes": frozenset({"low-capacity", "vanishing-gradient"}),
    "out_activation": HEAD_CODES, "loss": HEAD_CODES, "targets": HEAD_CODES,
    "init": frozenset({"bad-initialization", "dead-relu", "saturated-activation"}),
    "weight_decay": frozenset({"excessive-weight-decay"}),
    "steps": frozenset({"learning-rate-too-small", "loss-plateau", "learned-nothing"}),
    "epochs": frozenset({"learning-rate-too-small", "loss-plateau", "learned-nothing"}),
    "data_kwargs": frozenset({"unscaled-data", "unpredictable-targets"}),
}


def changed_fields(before: RunConfig, after: RunConfig) -> list:
    return [f.name for f in fields(RunConfig) if getattr(before, f.name) != getattr(after, f.name)]


def codes_addressed(case: "Case", fix: str) -> frozenset:
    """The codes the fix's changes address. Under a summed gradient (mean_gradient=False) the
    step is lr x rows, so a change of the data's rows changes the step as well."""
    changed = changed_fields(case.failing, case.fixes[fix])
    codes = frozenset().union(*(ADDRESSES.get(name, frozenset()) for name in changed))
    rows_set_the_step = "data_kwargs" in changed and not case.failing.mean_gradient
    return codes | (STEP_CODES if rows_set_the_step else frozenset())


def training_targets(result: RunResult):
    """The training inputs and targets exactly as the run's loss saw them."""
    _, X, y, _, _ = load_data(result.config)
    return X, y


def diagnose_result(result: RunResult, loss=None):
    """``diagnose()`` on a finished run, told what the run's own loop knew.

    A run with a summed gradient (``mean_gradient=False``) steps by
    ``lr * n * grad(mean loss)``, so diagnose is given that effective lr.
    """
    from diagnostics import diagnose
    cfg = result.config
    X, y = training_targets(result)
    batch = cfg.batch_size or len(X)
    lr = cfg.lr if cfg.mean_gradient else cfg.lr * min(batch, len(X))
    return diagnose(result.model, X, y, loss=loss or cfg.loss, history=result.history, lr=lr,
                    weight_decay=cfg.weight_decay)
