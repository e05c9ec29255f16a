"""Seed 001, part 2: a deeper, narrow ReLU net [1, 12, 6, 3, 1] outputs a constant: dead ReLUs.

Source: ../shared/seeds/001_cd65e02b94befa74.txt (CSDN post, PyTorch), part 2.
Same data and training as part 1 (10 of 50 points of sin on [-pi, pi], one
sample per step, lr 0.1), nets deepened to [1, 50, 25, 12, 1] (ELU, ReLU,
Tanh) and then [1, 12, 6, 3, 1] (ReLU, Tanh): "the curve is completely wrong,
the loss barely moves though the weights change; left and right of 0 the
output is the same whatever the input", worse for the narrow net.

Which reading is encoded. With plain SGD at lr 0.1 (the literal reading) the
deep nets fit: [1, 12, 6, 3, 1] ReLU gave a constant (prediction std < 1e-2)
only in seed 2 of 0-7 (dead at init, below), [1, 50, 25, 12, 1] ELU fit in 4
of 4 (train MSE <= 0.0015).
With Adam at lr 0.1 (the reading under which part 1 shows no NaN, see
``sin_activations``) the post's picture appears: [1, 50, 25, 12, 1] ELU gives
a constant in 3 of 4 seeds, and [1, 12, 6, 3, 1] ReLU in 4 of 8 seeds (0, 2,
5, 6), prediction std < 1e-2 over the grid. ``failing`` encodes that:
[1, 12, 6, 3, 1] ReLU, torch default init, Adam lr 0.1, batch 1, float32.

Mechanism. Adam moves every weight by ~lr in its first steps whatever the
gradient's size; in the 3-unit layer that is enough to push all three
pre-activations below 0 for every input. A dead ReLU layer passes no input
and no gradient, so only the output bias still learns: the output becomes the
mean of the 10 targets (train MSE = their variance, 0.34-0.58 by seed), and
Adam keeps nudging weights from its decaying moments (the author's "weights
change but the loss does not").

Seeds. Over seeds 0-19 (numpy, 1000 steps) the failing run collapses in 12
of 20 (0, 2, 5, 6, 9, 10, 12, 13, 15, 16, 18, 19). Among those, all three
fixes fit with no error finding in 5 (0, 10, 15, 16, 18); in the others one
narrow-layer unit is dead already at init or dies under every setting (seed
2: 1 of 3 alive at init, output std 0.001; seeds 13, 19: lower-lr and sgd
collapse too; seeds 5, 9: a dead unit remains, dead-relu error; seeds 6, 12:
leaky-relu fits only to share 0.15-0.18 and diagnose says low-capacity). The
case runs seeds (0, 10, 15): chosen, not typical, and said so;
tests/test_case_sin_sweeps.py asserts the measured 12 of 20 for the failing
reading and seed 2 alone of 0-7 for plain SGD at lr 0.1.

Fixes, each one change: ``lower-lr`` (Adam lr 0.01), ``sgd`` (plain SGD at
the post's lr 0.1), ``leaky-relu``. Tried and not fixes: He init (constant in
7 of 8 seeds under Adam 0.1), ELU (constant in 3 of 8, seed 6 included).

Metric: the unexplained share of the targets' variance, train MSE / var(y)
(1.0 for an output equal to the targets' mean). Measured after 1000 steps
(numpy; torch seed 0 identical): failing >= 1.00 on seeds 0, 10, 15; lower-lr
0.002, 0.016, 0.064; sgd 0.019, 0.017, 0.063; leaky-relu 0.16, 0.022, 0.076.
Thresholds: failing > 0.8, fixed < 0.35 (worst fix 0.16, 2.2x margin).

Reduced for the default suite: 1000 steps instead of 10000 (the collapse is
final within the first few hundred steps; torch costs ~2-3 s per 1000
per-sample steps).
"""

import math

import numpy as np

from cases import sources
from cases.case import Case, Threshold
from cases import sin_activations

STEPS = 1000             # the post ran 10000; the collapse is final long before
COLLAPSED_SHARE = 0.8    # failing: a constant output explains none of var(y) (share 1.0)
FIT_SHARE = 0.35         # fixed: worst measured 0.16 (leaky-relu, seed 0)


def unexplained_share(result) -> float:
    """Train MSE over the variance of the training targets: 1 for a constant at their mean."""
    if result.diverged:
        return math.inf
    return float(result.train_loss / np.var(result.data.y))


# part 1's run (data, relu, default init, lr 0.1, one sample per step, float32), deeper and under Adam
FAILING = sin_activations.FAILING.replace(sizes=(1, 12, 6, 3, 1), optimizer="adam", steps=STEPS)

CASE = Case(
    id="sin-deep-collapse",
    source=sources.SEED_001,
    title="A narrow deep ReLU net [1, 12, 6, 3, 1] collapses to a constant output",
    story=("Adam at lr 0.1 moves every weight by ~0.1 in its first steps, enough to push all "
           "three ReLUs of the narrow layer below zero for every input: the net then outputs the "
           "mean of the targets whatever x is. A lower lr, plain SGD or LeakyReLU keeps the "
           "units alive and the net fits sin."),
    failing=FAILING,
    fixes={
        "lower-lr": FAILING.replace(lr=0.01),
        "sgd": FAILING.replace(optimizer="sgd"),
        "leaky-relu": FAILING.replace(activation="leaky_relu"),
    },
    failed_when=Threshold("unexplained_share", ">", COLLAPSED_SHARE),
    fixed_when=Threshold("unexplained_share", "<", FIT_SHARE),
    expected_codes=frozenset({"constant-output", "dead-relu"}),
    metric=unexplained_share,
    seeds=(0, 10, 15),
)
