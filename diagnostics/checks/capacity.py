"""Too small a model: the loss is stuck far above zero, or far behind a simple fit of the same
rows, and the architecture cannot do better.

Two kinds. A bottleneck (a hidden layer of one unit, or fewer units than the classes need) is a
cause in its own right: the saturation and plateau it produces are explained beneath it
(diagnostics.explain). Other small models (no nonlinearity, a narrow layer) are a diagnosis of
exclusion, named only when nothing else explains the stuck loss."""

from __future__ import annotations

from diagnostics.checks.evidence import (FAR_ABOVE_ZERO, against_reference, behind_reference,
                                         history_improving, reached_reference)
from diagnostics.checks.record import FAILING_RUN, FINITE, STUCK, UNITS, Check, Explains, RuledOut
from diagnostics.checks.weights import by_an_init_of_its_own, grown_in_training
from diagnostics.probe import Probe
from diagnostics.report import Finding

HEAVY_DROPOUT = 0.8     # dropout that keeps under 1 unit in 5 each training step: 0.1-0.5 is the
                        # usual range; digits under p = 0.95 stayed at 0.41-0.44 of a constant's
                        # loss (its linear fit: ~0.1), at p = 0.2 it fits
NARROW_WIDTH = 8        # a hidden layer of <= 8 units can bend the function only a few times
LINEAR_KINDS = ("identity",)
STUCK_WITHOUT_HISTORY = 0.5   # without a history: no better than half a constant's


def stuck(probe: Probe) -> bool:
    """Far behind a simple fit of the same rows and no longer improving (a bottleneck or heavy
    dropout: whether or not it improves), or far above zero and not improving."""
    if behind_reference(probe) and (strict_bottleneck(probe) or heavy_dropout(probe)
                                    or plateaued(probe)):
        return True
    if reached_reference(probe):
        return False    # as good as a simple fit of these rows: no sign that more units help
    improving = history_improving(probe)
    if improving is None:
        return probe.loss_ratio >= STUCK_WITHOUT_HISTORY
    return probe.loss_ratio >= FAR_ABOVE_ZERO and not improving


def widths_of(probe: Probe) -> str:
    return "-".join(str(w) for w in [probe.X.shape[1]] + [la.width for la in probe.layers])


def plateaued(probe: Probe) -> bool:
    """The history no longer improves (or there is none): a run still improving is short of
    steps, not of units."""
    return history_improving(probe) is not True


def strict_bottleneck(probe: Probe) -> str | None:
    """A hidden layer that cannot carry what the output needs, whatever the training: 1 unit
    (one number for every input), or fewer units than classes - 1 (the logits' differences live
    in a smaller space)."""
    if not probe.hidden:
        return None
    narrow = min(probe.hidden, key=lambda layer: layer.width)
    where = f"{narrow.name}; widths {widths_of(probe)}"
    classes = probe.out.shape[1] if probe.index_targets else 0
    if narrow.width == 1:
        return f"a bottleneck of 1 unit ({where}): every input is squeezed into one number"
    if narrow.width < classes - 1:
        return (f"a bottleneck of {narrow.width} units ({where}) for {classes} classes, which "
                f"need {classes - 1}")
    return None


def bottleneck(probe: Probe, strict: str | None) -> str | None:
    """A strict bottleneck, or a narrow layer in a run that stopped improving far behind what a
    simple fit of the same rows reaches."""
    if strict or not probe.hidden:
        return strict
    narrow = min(probe.hidden, key=lambda layer: layer.width)
    if narrow.width <= NARROW_WIDTH and behind_reference(probe) and plateaued(probe):
        return (f"a hidden layer of {narrow.width} units ({narrow.name}; widths "
                f"{widths_of(probe)}) in a run that stopped improving far behind a simple fit "
                "of the same rows")
    return None


def structure(probe: Probe) -> str | None:
    """Why the model is small: no hidden layer, no nonlinearity, a bottleneck, or a narrow layer."""
    return structure_with(probe, bottleneck(probe, strict_bottleneck(probe)))


def structure_with(probe: Probe, squeeze: str | None) -> str | None:
    """structure(), the bottleneck (``squeeze``) already read."""
    hidden = probe.hidden
    if not hidden:
        return "no hidden layer (a linear model)"
    if all(layer.activation in LINEAR_KINDS for layer in hidden):
        return "no nonlinearity between the layers (a linear model)"
    heavy = heavy_dropout(probe)
    if heavy:
        return heavy
    narrow = min(hidden, key=lambda layer: layer.width)
    if narrow.width <= NARROW_WIDTH:
        return squeeze or \
            f"a hidden layer of {narrow.width} units ({narrow.name}; widths {widths_of(probe)})"
    return None


def heavy_dropout(probe: Probe) -> str | None:
    """The heaviest dropout, when it drops HEAVY_DROPOUT of the units or more: each training step
    sees a network that much narrower."""
    if not probe.dropout:
        return None
    name, p = max(probe.dropout.items(), key=lambda item: item[1])
    if p < HEAVY_DROPOUT:
        return None
    return (f"Dropout(p={p:g}) at {name}: each training step keeps 1 unit in {1 / (1 - p):.3g} "
            f"of the layer before it (widths {widths_of(probe)})")


def capacity_fix(probe: Probe) -> str:
    if heavy_dropout(probe):
        return ("Lower the dropout rate (p = 0.1 to 0.5 is usual), or widen the layer it drops "
                "so that enough units stay each step.")
    return ("Make the hidden layers wider or add layers (e.g. 64 units each), with a "
            "nonlinearity between them.")


def check_low_capacity(probe: Probe) -> Finding | None:
    if not probe.layers or not stuck(probe):
        return None
    strict = strict_bottleneck(probe)
    squeeze = bottleneck(probe, strict)
    why = structure_with(probe, squeeze)
    if why is None:
        return None
    return Finding(
        "low-capacity", "error",
        f"The loss is stuck far above zero, so the model is too small for the data. Found {why}, "
        f"loss at {probe.loss_ratio:.0%} of a constant predictor's{against_reference(probe)}.",
        dict(widths=[layer.width for layer in probe.layers],
             activations=[layer.activation for layer in probe.layers],
             bottleneck=squeeze is not None, strict_bottleneck=strict is not None,
             heavy_dropout=heavy_dropout(probe) is not None, dropout=dict(probe.dropout)),
        capacity_fix(probe), None)


def is_bottleneck(cause: Finding, symptom: Finding = None) -> bool:
    """low-capacity read off the architecture: a 1-unit layer, or fewer units than classes - 1."""
    return bool(cause.evidence.get("bottleneck"))


def squeezes(cause: Finding, symptom: Finding = None) -> bool:
    """low-capacity from a bottleneck, or from dropout that keeps 1 unit in 5 or fewer and scales
    each kept one up to match (x10 at p = 0.9): the next layer's inputs swing 1/(1 - p) times
    wider each step, and its tanh or sigmoid units sit at their limits (moons and sin(2x) under
    Dropout(0.9): saturated or fading units, the dropout their cause)."""
    return is_bottleneck(cause) or bool(cause.evidence.get("heavy_dropout"))


def is_strict_bottleneck(f: Finding) -> bool:
    """low-capacity from a layer that cannot carry the output, whatever the training: 1 unit,
    or fewer units than classes - 1."""
    return bool(f.evidence.get("strict_bottleneck"))


def unfit_as_built(f: Finding) -> bool:
    """low-capacity that no lr and no init fixes: a strict bottleneck, or heavy dropout."""
    return is_strict_bottleneck(f) or bool(f.evidence.get("heavy_dropout"))


def shrunk_under_dropout(cause: Finding, symptom: Finding) -> bool:
    """Weights trained small behind heavy dropout: each kept unit is scaled by 1/(1 - p) in
    training, so the layers after it learn weights that much smaller (sin(2x) under Dropout(0.9):
    the head at RMS x sqrt(fan_in) 0.08-0.09, read as an init too small)."""
    return bool(cause.evidence.get("heavy_dropout")) and grown_in_training(cause, symptom)


LOW_CAPACITY_CHECK = Check(
    "low-capacity", check_low_capacity, needs=(FINITE,), evidence=(FAILING_RUN,),
    explains=(Explains(STUCK + ("vanishing-gradient",)),
              # a bottleneck squeezes every input through a unit or two, which sit saturated or
              # dead
              Explains(("saturated-activation", "dead-relu"), squeezes),
              Explains(("bad-initialization",), shrunk_under_dropout)),
    ruled_out_by=(
        # a small model is the cause only when the loss is stuck for no other reason
        RuledOut(("output-range-mismatch", "loss-target-mismatch", "single-class-output",
                  "exploding-gradient", "accumulated-gradient", "optimizer-mismatch",
                  "no-gradient-path", "frozen-parameters", "shrunk-gradient",
                  "decayed-learning-rate", "unscaled-data", "excessive-weight-decay",
                  "unstable-learning-rate", "non-finite", "unpredictable-targets")),
        # ... a tiny lr or a weight scale read after training, unless the architecture itself
        # cannot carry the output (a 1-unit layer does not fit at any lr; its weights are few
        # and odd; heavy dropout's layers learn weights shrunk by 1 - p)
        RuledOut(("learning-rate-too-small", "bad-initialization"), unless=unfit_as_built),
        RuledOut(("bad-initialization",), by_an_init_of_its_own),
        # ... and units that stopped passing signal, unless the architecture is a bottleneck,
        # whose one or two units are what saturate or die, or heavy dropout drives them there
        RuledOut(UNITS, unless=squeezes)))
