"""Seed 003, extension 2.2: weight decay 1 holds a digit classifier at chance accuracy.

Source: seeds/003_b9af3eb51b934ee4.txt (the course report of ``digits_course``), which sweeps
weight decay up to 1: "at weight decay 1 both models hover around 0.105 test accuracy, which for
ten classes is random output".

Encoded: the ``lr-1`` fix of ``digits-course`` with weight decay 1, added to the gradient as the
course code (and torch's SGD) does. Mechanism: the step ``p <- (1 - lr wd) p - lr g`` has the
factor 0 at lr 1 and wd 1: every step erases the weights and keeps only the last batch's
gradient, so nothing learned survives a step.

Fix ``decay-1e-4``: the report's smallest decay. Measurements: docs/cases.md, "Seed 003".
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
