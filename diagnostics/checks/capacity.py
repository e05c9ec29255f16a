"""Too small a model: the loss is stuck far above zero although nothing else is wrong."""

from __future__ import annotations

from diagnostics.checks.evidence import FAR_ABOVE_ZERO, failing_evidence, history_improving
from diagnostics.probe import Probe
from diagnostics.report import Finding

NARROW_WIDTH = 8        # a hidden layer of <= 8 units can bend the function only a few times
LINEAR_KINDS = ("identity",)


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


def check_low_capacity(probe: Probe) -> Finding | None:
    if not probe.finite or not probe.layers or not stuck(probe):
        return None
    why = structure(probe)
    if why is None:
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
