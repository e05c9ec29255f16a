"""Seed 003, extension 2.2: weight decay 1 holds a digit classifier at chance accuracy.

Source: ../shared/seeds/003_b9af3eb51b934ee4.txt (the MNIST course report of
``digits_course``). The report sweeps weight decay over {1e-4, ..., 1} for
2_Sigmoid_Softmax at lr 1 (the fix of ``digits-course``) and 2_Gelu_Hinge at
lr 1e-2: accuracy falls as the decay grows, and "at weight decay 1 both models
hover around 0.105 test accuracy, which for ten classes is random output".

Encoded: the ``lr-1`` fix of ``digits-course`` (8x8 digits stand-in,
[100, 100] Sigmoid, softmax CE, fan-in init, SGD lr 1, batch 10, 10 epochs;
see that module for why this init and length) with weight decay 1. The course
code adds ``wd * W`` (and ``wd * b``) to the gradient, torch's SGD rule.

Mechanism. The step is ``p <- p - lr (g + wd p) = (1 - lr wd) p - lr g``; at
lr 1 and wd 1 the factor is 0: every step erases the weights and keeps only
the last batch's gradient, so nothing learned survives a step (the train
loss ends at 3.8-5.2, above the 2.30 of a constant prediction).

Measured (numpy, seeds 0-2, 10 epochs), test accuracy: failing 0.092 /
0.106 / 0.095 (chance 0.1, the report's ~0.105); decay-1e-4 0.886 / 0.911 /
0.905; no decay at all is digits-course's lr-1 fix (0.894 / 0.914 / 0.908).
Thresholds:
failing < 0.3 (worst 0.106), fixed > 0.75 (worst 0.886).
"""

from cases import digits_course, sources
from cases.case import Case, Threshold

REPORT_DECAY = 1.0       # the report's largest decay, the one that gives chance accuracy
SMALL_DECAY = 1e-4       # the report's smallest decay
CHANCE_LIKE = 0.3        # failing: worst measured 0.106 (chance is 0.1)
TRAINED = 0.75           # fixed: worst measured 0.886 (decay-1e-4, seed 0)

FAILING = digits_course.CASE.fixes["lr-1"].replace(weight_decay=REPORT_DECAY)

CASE = Case(
    id="digits-weight-decay",
    source=sources.SEED_003,
    title="Weight decay 1 keeps a digit classifier at chance (MNIST course report)",
    story="With SGD at lr 1, weight decay 1 multiplies the weights by 1 - lr*wd = 0 at every "
          "step, so each update wipes out what the net had learned and test accuracy stays at "
          "chance (0.1). A small decay (1e-4) or none trains it to about 0.9.",
    failing=FAILING,
    fixes={"decay-1e-4": FAILING.replace(weight_decay=SMALL_DECAY)},
    failed_when=Threshold("test_acc", "<", CHANCE_LIKE),
    fixed_when=Threshold("test_acc", ">", TRAINED),
    expected_codes=frozenset({"excessive-weight-decay"}),
)
