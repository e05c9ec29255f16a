"""A failing classifier that answers one class, with no cause in the model: the loop's batches."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import failing_evidence, training_failing
from diagnostics.checks.gradients import (check_excessive_weight_decay, check_exploding_gradient,
                                          check_vanishing_gradient)
from diagnostics.checks.outputs import check_constant_output
from diagnostics.checks.units import check_saturated_activation
from diagnostics.probe import Probe
from diagnostics.report import Finding

ONE_CLASS = 0.95          # one class predicted for 95% of rows...
RARE_CLASS = 0.5          # ...that is at most half of y: not a majority-class model, a collapse
# errors in the model that make a classifier answer one class; then they are the finding. Not
# dead-relu: label-sorted batches killed 18 and 21 of 32 units in a layer (2 of 3 seeds), the
# rest alive
MODEL_CAUSES = (check_constant_output, check_vanishing_gradient, check_exploding_gradient,
                check_saturated_activation, check_excessive_weight_decay)


def explained_in_the_model(probe: Probe) -> bool:
    found = [check(probe) for check in MODEL_CAUSES]
    return any(f is not None and f.severity == "error" for f in found)


def predicted_classes(probe: Probe) -> dict:
    """For class targets: the class predicted most often, its share of predictions and of y."""
    if not probe.index_targets or probe.out.shape[1] < 2:
        return {}
    pred = probe.out.argmax(axis=1)
    top = int(np.bincount(pred).argmax())
    return {"most_predicted_class": top, "its_share_of_predictions": float(np.mean(pred == top)),
            "its_share_of_targets": float(np.mean(probe.y == top))}


def check_single_class_output(probe: Probe) -> Finding | None:
    """A failing classifier that answers one class for (almost) every row, a class y rarely has."""
    c = predicted_classes(probe) if probe.finite else {}
    if not c or c["its_share_of_predictions"] < ONE_CLASS or c["its_share_of_targets"] > RARE_CLASS \
            or not training_failing(probe) or explained_in_the_model(probe):
        return None
    return Finding(
        "single-class-output", "error",
        f"The classifier answers one class for almost every input, a class the targets seldom "
        f"have. Found class {c['most_predicted_class']} predicted for "
        f"{c['its_share_of_predictions']:.0%} of {len(probe.out)} rows against "
        f"{c['its_share_of_targets']:.0%} of y, loss {probe.loss_ratio:.0%} of a constant "
        "predictor's.",
        {**c, **failing_evidence(probe)},
        "If the loop's batches come in class order (data sorted by label, not shuffled), the "
        "model fits whichever class it saw last: shuffle every epoch (DataLoader(..., "
        "shuffle=True)). Otherwise look at the other findings (dead units, learning rate).")
