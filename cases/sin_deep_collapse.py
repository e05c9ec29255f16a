"""Seed 001, part 2: a deeper, narrow ReLU net [1, 12, 6, 3, 1] outputs a constant: dead ReLUs.

Source: seeds/001_cd65e02b94befa74.txt (CSDN post, PyTorch), part 2: part 1's data and
training with deeper nets, [1, 50, 25, 12, 1] and [1, 12, 6, 3, 1]: "left and right of 0 the
output is the same whatever the input; the loss barely moves though the weights change".

Encoded: [1, 12, 6, 3, 1] ReLU under Adam at lr 0.1 (the reading under which part 1 shows no
NaN; with plain SGD the deep nets fit). Mechanism: Adam moves every weight by ~lr in its first
steps, enough to push all three units of the narrow layer below zero for every input. A dead
layer passes no input and no gradient; only the output bias learns, and the net outputs the
mean of the targets (train MSE / var(y) = 1.0).

Fixes, one change each: ``lower-lr`` (Adam lr 0.01), ``sgd``, ``leaky-relu``. The case's seeds
(0, 10, 15) are chosen, not typical: of the 12 of seeds 0-19 that collapse, the ones where every
fix fits cleanly (docs/cases.md, "Seed 001", says why the others were left out, with the measurements).
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
