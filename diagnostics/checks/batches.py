"""Batches that were not random draws of the rows (a watched run): a loop that never shuffles
rows sorted by label (or by any column) feeds the model one kind of row after another, and the
model fits whichever it saw last.

The evidence is the batches themselves: watch() keeps each sampled batch's mean input, and how
far those means scatter (diagnostics.watch_store.BatchMeans). Batches drawn at random from rows
of total variance v scatter by v (rows x squared distance from the mean of the batches, on
average); batches that come class by class scatter by the distances between the classes.
Classes whose rows share one mean (concentric circles) do not show in it.
"""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import (AT_REFERENCE, against_reference, reference_shortfall,
                                         training_failing)
from diagnostics.checks.record import FAILING_RUN, FINITE, STUCK, UNITS, Check, Explains, Need
from diagnostics.probe import Probe
from diagnostics.report import Finding

ORDERED = 3.0           # batch means scattered 3x what random batches of the rows give. Shuffled
                        # loops measured 0.61-1.13 (7 fault-matrix programs x 3 seeds, batches of
                        # 16-64), the same loops over label- or target-sorted rows 5.2-16.3
MIN_BATCHES = 20        # sampled batches to judge: random ones then exceed 3x with chance ~1e-5
                        # even on one input column (chi-square with 19 degrees of freedom / 19)


def batch_scatter_ratio(probe: Probe) -> float | None:
    """The recorded batches' scatter over what random batches of these rows give (1: random)."""
    variance = float(np.var(probe.X, axis=0).sum())
    if probe.batch_mean_scatter is None or variance <= 0:
        return None
    return probe.batch_mean_scatter / variance


def short_of_the_rows(probe: Probe) -> bool:
    """The run is short of what its rows allow: behind the best reference's gain by
    AT_REFERENCE or more, or (no reference) failing."""
    shortfall = reference_shortfall(probe)
    return training_failing(probe) if shortfall is None else shortfall >= AT_REFERENCE


def check_unshuffled_batches(probe: Probe) -> Finding | None:
    r = batch_scatter_ratio(probe)
    if r is None or r < ORDERED or not short_of_the_rows(probe):
        return None
    return Finding(
        "unshuffled-batches", "error",
        f"The batches were not random draws of the rows: the loop feeds them in an order (rows "
        f"sorted by label or by a column, never shuffled), and the model fits whichever rows it "
        f"saw last. Found the mean inputs of {probe.batches_measured} sampled batches scattered "
        f"{r:.3g}x as far as random batches of these rows scatter (about 1x; shuffled loops "
        f"measured 0.6-1.1x); the loss on X is {probe.loss:.4g}{against_reference(probe)}.",
        {"batch_scatter_ratio": round(r, 4), "batches_measured": probe.batches_measured},
        "Shuffle the rows every epoch (DataLoader(..., shuffle=True), or index each epoch by a "
        "new torch.randperm(n)) so that every batch is a sample of all of them.")


RECORDED_BATCHES = Need(f"a watched run with >= {MIN_BATCHES} sampled batches",
                        lambda probe: probe.batches_measured >= MIN_BATCHES)

# batches in an order: each kind of row in turn pulls the model its way
UNSHUFFLED_BATCHES_CHECK = Check(
    "unshuffled-batches", check_unshuffled_batches, needs=(FINITE, RECORDED_BATCHES),
    evidence=(FAILING_RUN,),
    explains=(Explains(STUCK + UNITS + ("single-class-output", "generalization-gap",
                                        "learning-rate-too-small")),))
