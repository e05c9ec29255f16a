"""Seed 001, part 1: sin(x) from 10 points, one sample per step, SGD at lr 0.1: the loss goes to NaN.

Source: ../shared/seeds/001_cd65e02b94befa74.txt (a CSDN post, PyTorch). The
author draws 10 of the 50 points of ``np.linspace(-pi, pi)`` (float32) with
``random.sample``, fits y = sin(x) with a [1, 50, 1] net (ReLU, LeakyReLU,
ELU, Sigmoid or Tanh in the middle, torch's default ``nn.Linear`` init),
"10000 iterations, lr 0.1, one training sample fed at a time", MSE loss, and
compares the five fits. The post shows no optimizer line.

What goes wrong. Read as written with ``torch.optim.SGD`` (batch of one, MSE
mean over that one sample = its squared error, float32), the run diverges to
NaN within 15 steps for ReLU, LeakyReLU, ELU and Tanh in every seed, and for
Sigmoid in most. Mechanism: the per-sample curvature of the loss in the
output layer alone is 2 * (||h||^2 + 1), and with U(-1, 1) first-layer
weights and biases a 50-unit ReLU layer at x = pi has ||h||^2 ~ 50 (pi^2 + 1)/6
~ 90, so lr * curvature ~ 18 >> 2: each step overshoots the sample it fits,
by more on every step. Bounded activations (Sigmoid, Tanh) keep ||h|| <= 7 and
diverge later or, for Sigmoid, sometimes not at all.

Which reading is encoded. ``failing`` is the literal reading above (the
data set ``sin_points``: 10 sorted random indices of the float32 grid; x as a
(1, 1) batch; SGD; the order of the 10 samples reshuffled every epoch). The
author reports no NaN, so the author cannot have run this: the measured
reading under which the post's pictures hold is Adam at lr 0.1 (no run
diverges in any seed; the fits are rough, the training points stay off the
curve, and LeakyReLU's right end flies off, seed 0 test MSE 28, all three
things the author remarks on), and the same Adam-at-0.1 reading is the one
under which part 2's deep nets collapse (see ``sin_deep_collapse``).
tests/test_case_sin_sweeps.py measures both readings over activations x seeds.
The fix is the ordinary one for a step past the stability edge: lr 0.01.

Measured (numpy = torch bit-for-bit here, float32): failing ReLU NaN at step
14, 10, 10, 8, 9 (seeds 0-4); fix lr 0.01 after 2000 steps train MSE 0.0042,
0.013, 0.0017, 0.0018, 0.003 (seeds 0-4), threshold 0.05 (worst 0.013, ~4x
margin); a constant output would score ~0.45.

Reduced for the default suite: 2000 steps instead of the post's 10000 (the
failing run stops at its first NaN anyway; at 10000 steps the fix reaches
train MSE <= 0.0015). Torch at 2000 per-sample steps costs ~5 s.
"""

import math

from cases import sources
from cases.case import Case, Threshold
from cases.config import RunConfig

POST_LR = 0.1            # "学习率调成0.1"
FIX_LR = 0.01            # 10x lower: lr * per-sample curvature ~ 1.8, inside the edge 2
STEPS = 2000             # the post ran 10000; 2000 already fits (see the docstring)
FIT_MSE = 0.05           # fixed: worst measured 0.013; the failing run is NaN (counted as inf)
DIVERGED_MSE = 1e3       # failing: a finite run never scores above ~5 here, a diverged one is inf


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
)
