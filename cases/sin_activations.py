"""Seed 001, part 1: sin(x) from 10 points, one sample per step, SGD at lr 0.1: the loss goes to NaN.

Source: seeds/001_cd65e02b94befa74.txt, a CSDN post (PyTorch). The author fits sin(x) through
10 of the 50 float32 points of ``linspace(-pi, pi)`` with a [1, 50, 1] net, one sample per step,
lr 0.1, MSE, and compares ReLU, LeakyReLU, ELU, Sigmoid and Tanh. The post shows no optimizer.

Read literally with ``torch.optim.SGD``, the run diverges to NaN within 15 steps. Mechanism: the
per-sample curvature of the output layer is 2(|h|^2 + 1), ~180 at x = pi for 50 ReLU units with
U(-1, 1) first-layer weights, so lr 0.1 overshoots every sample by ~17x (the edge is lr x
curvature = 2). Bounded activations keep |h| small and diverge later, Sigmoid not always.

Fix ``lower-lr``: lr 0.01. The author's no-NaN pictures match Adam at lr 0.1 instead, the
reading under which part 2 collapses (``sin_deep_collapse``); tests/test_case_sin_sweeps.py
measures both readings over the five activations x seeds. Measurements: docs/cases.md, "Seed 001".
"""

import math

from cases import sources
from cases.case import Case, Sweep, Threshold
from cases.config import RunConfig

POST_LR = 0.1            # "学习率调成0.1"
FIX_LR = 0.01            # 10x lower: lr * per-sample curvature ~ 1.8, inside the edge 2
STEPS = 2000             # the post ran 10000; 2000 already fits (docs/cases.md, "Seed 001")
FIT_MSE = 0.05           # fixed: worst measured 0.013; the failing run is NaN (counted as inf)
DIVERGED_MSE = 1e3       # failing: a finite run never scores above ~5 here, a diverged one is inf
POST_ACTIVATIONS = ("relu", "leaky_relu", "elu", "sigmoid", "tanh")   # the five the post compares


def train_mse_or_inf(result) -> float:
    """Train MSE, with a diverged run (stopped at its first non-finite loss) counted as inf."""
    return math.inf if result.diverged else float(result.train_loss)


FAILING = RunConfig(
    data="sin_points", sizes=(1, 50, 1), activation="relu", init="torch_default",
    optimizer="sgd", lr=POST_LR, batch_size=1, steps=STEPS, dtype="float32", loss="mse")

CASE = Case(
    id="sin-activations",
    source=sources.SEED_001,
    title="sin(x) from 10 points: per-sample SGD at lr 0.1 diverges",
    story=("Fitting sin from 10 points one sample at a time with SGD at the post's lr 0.1 sends "
           "the loss to NaN within 15 steps for ReLU, LeakyReLU, ELU and Tanh: the per-sample "
           "curvature of a 50-unit layer is ~2(|h|^2+1) ~ 180 at x = pi, so lr 0.1 overshoots "
           "every step. lr 0.01 fits every activation; the author's own no-NaN pictures match "
           "Adam at lr 0.1."),
    failing=FAILING,
    fixes={"lower-lr": FAILING.replace(lr=FIX_LR)},
    failed_when=Threshold("train_loss", ">", DIVERGED_MSE),
    fixed_when=Threshold("train_loss", "<", FIT_MSE),
    expected_codes=frozenset({"non-finite"}),
    metric=train_mse_or_inf,
    seeds=(0, 1, 2),
    sweeps={"activations": Sweep.over("activation", POST_ACTIVATIONS)},
    figures=("activation-fits",),
)
