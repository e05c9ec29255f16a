"""A failing classifier that answers the class its label-sorted batches ended on."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import finite_history
from diagnostics.checks.record import (FAILING, FAILING_RUN, FINITE, STUCK, Check, Explains,
                                       RuledOut, by_an_error)
from diagnostics.probe import Probe
from diagnostics.report import Finding

ONE_CLASS = 0.95          # one class predicted for 95% of rows...
RARE_CLASS = 0.5          # ...that is at most half of y: not a majority-class model, a collapse


EASY_BATCHES = 0.5        # the loop's recent batch losses under half the loss on X: its batches were
                          # easier than the data, as batches of one class are (label-sorted digits:
                          # see tests); shuffled batches of the same rows average about the loss on X
RECENT = 200              # the loop's last steps compared with the loss on X


def class_blocks(y: np.ndarray) -> int:
    """How many runs of equal labels y has in the order given: k for k classes sorted by label."""
    return 1 + int(np.count_nonzero(y[1:] != y[:-1])) if len(y) else 0


def label_sorted(y: np.ndarray) -> bool:
    """y comes in one block per class: the order a loop that never shuffles feeds its batches."""
    return class_blocks(y) == len(np.unique(y))


def predicted_classes(probe: Probe) -> dict:
    """For class targets: the class predicted most often, its share of predictions and of y."""
    if not probe.index_targets or probe.out.shape[1] < 2:
        return {}
    pred = probe.out.argmax(axis=1)
    top = int(np.bincount(pred).argmax())
    return {"most_predicted_class": top, "its_share_of_predictions": float(np.mean(pred == top)),
            "its_share_of_targets": float(np.mean(probe.y == top))}


def ordered_batches(probe: Probe, top: int) -> str | None:
    """Evidence that the loop fed its batches class by class, in words; None without any."""
    y, h = probe.y, finite_history(probe)
    if label_sorted(y) and int(y[-1]) == top:
        return f"y as given comes in {class_blocks(y)} blocks, one per class, the last of class {top}"
    recent = float(np.mean(h[-RECENT:])) if h is not None else np.inf
    if recent < EASY_BATCHES * probe.loss:
        return (f"the loop's last {min(RECENT, len(h))} batch losses average {recent:.3g}, "
                f"{recent / probe.loss:.0%} of the loss on X: its batches were easier than the "
                "data, as batches that hold one class are")
    return None


def check_single_class_output(probe: Probe) -> Finding | None:
    """A failing classifier that answers one class for (almost) every row, a class y rarely has,
    with evidence that its batches came class by class (label-sorted, never shuffled)."""
    c = predicted_classes(probe)
    if not c or c["its_share_of_predictions"] < ONE_CLASS or c["its_share_of_targets"] > RARE_CLASS:
        return None
    top = c["most_predicted_class"]
    evidence = ordered_batches(probe, top)
    if evidence is None:
        return None
    return Finding(
        "single-class-output", "error",
        f"The classifier answers one class for almost every input, a class the targets seldom "
        f"have: a loop whose batches come class by class fits whichever class it saw last. "
        f"Found class {top} predicted for {c['its_share_of_predictions']:.0%} of {len(probe.out)} "
        f"rows against {c['its_share_of_targets']:.0%} of y, loss {probe.loss_ratio:.0%} of a "
        f"constant predictor's; {evidence}.",
        {**c, "ordered_batches": evidence},
        "Shuffle the rows every epoch (DataLoader(..., shuffle=True), or a new permutation of "
        "the indices each epoch) so that every batch mixes the classes.")


# label-sorted batches: each class in turn pulls the model its way
SINGLE_CLASS_OUTPUT_CHECK = Check(
    "single-class-output", check_single_class_output, needs=(FINITE, FAILING),
    evidence=(FAILING_RUN,), explains=(Explains(STUCK + ("dead-relu", "generalization-gap")),),
    # errors in the model that make a classifier answer one class (not dead-relu: label-sorted
    # batches killed 18 and 21 of 32 units in a layer, 2 of 3 seeds, the rest alive)
    ruled_out_by=(RuledOut(("constant-output", "vanishing-gradient", "exploding-gradient",
                            "saturated-activation", "excessive-weight-decay"), by_an_error),))
