"""Too small a model: the loss is stuck far above zero although nothing else is wrong."""

from __future__ import annotations

from diagnostics.checks.classes import check_single_class_output
from diagnostics.checks.evidence import FAR_ABOVE_ZERO, failing_evidence, history_improving
from diagnostics.checks.gradients import (check_exploding_gradient,
                                          check_vanishing_gradient)
from diagnostics.checks.loop import (check_accumulated_gradient, check_frozen_parameters,
                                     check_no_gradient_path, check_optimizer_mismatch)
from diagnostics.checks.outputs import (check_constant_output, check_loss_target_mismatch,
                                        check_output_range_mismatch)
from diagnostics.checks.stability import check_decayed_learning_rate
from diagnostics.checks.units import check_dead_relu, check_saturated_activation
from diagnostics.probe import Probe
from diagnostics.report import Finding

NARROW_WIDTH = 8        # a hidden layer of <= 8 units can bend the function only a few times
LINEAR_KINDS = ("identity",)
# what else would explain a stuck loss; capacity is named only when none of these fire
OTHER_CAUSES = (check_output_range_mismatch, check_loss_target_mismatch, check_constant_output,
                check_single_class_output,
                check_vanishing_gradient, check_exploding_gradient, check_dead_relu,
                check_saturated_activation, check_accumulated_gradient, check_optimizer_mismatch,
                check_no_gradient_path, check_frozen_parameters, check_decayed_learning_rate)


def stuck(probe: Probe) -> bool:
    """Far above zero and not improving (without a history: no better than half a constant's)."""
    improving = history_improving(probe)
    if improving is None:
        return probe.loss_ratio >= 0.5
    return probe.loss_ratio >= FAR_ABOVE_ZERO and not improving


def structure(probe: Probe) -> str | None:
    """Why the model is small: no hidden layer, no nonlinearity, or a narrow layer."""
    hidden = probe.hidden
    if not hidden:
        return "no hidden layer (a linear model)"
    if all(layer.activation in LINEAR_KINDS for layer in hidden):
        return "no nonlinearity between the layers (a linear model)"
    narrow = min(hidden, key=lambda layer: layer.width)
    if narrow.width <= NARROW_WIDTH:
        widths = "-".join(str(w) for w in [probe.X.shape[1]] + [la.width for la in probe.layers])
        return f"a hidden layer of {narrow.width} units ({narrow.name}; widths {widths})"
    return None


def another_cause(probe: Probe) -> bool:
    return any(check(probe) for check in OTHER_CAUSES)


def check_low_capacity(probe: Probe) -> Finding | None:
    if not probe.finite or not probe.layers or not stuck(probe):
        return None
    why = structure(probe)
    if why is None or another_cause(probe):
        return None
    return Finding(
        "low-capacity", "error",
        f"The loss is stuck far above zero with healthy gradients and units, so the model is too "
        f"small for the data. Found {why}, loss at {probe.loss_ratio:.0%} of a constant "
        "predictor's.",
        dict(failing_evidence(probe), widths=[layer.width for layer in probe.layers],
             activations=[layer.activation for layer in probe.layers]),
        "Make the hidden layers wider or add layers (e.g. 64 units each), with a nonlinearity "
        "between them.",
        None)
