"""Hidden units that carry no signal: dead ReLUs and saturated sigmoid/tanh units."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import training_failing
from diagnostics.checks.record import (FAILING, FAILING_RUN, FINITE, STUCK, Check, Explains,
                                       where_steps_tiny)
from diagnostics.activations import ACTIVATIONS, DEAD_KINDS, SATURATION_BANDS
from diagnostics.losses import REGRESSION_LOSSES
from diagnostics.probe import Probe
from diagnostics.report import Finding

MIN_ROWS = 5            # "never active" needs a few inputs to mean anything
DEAD_SHARE = 0.5        # half a layer dead: the layer has lost half its width
DEAD_SHARE_FAILING = 0.25  # when training fails, a quarter dead is worth naming
PINNED_ROWS = 0.9       # a unit pinned for 90% of inputs is saturated (reported as evidence)
PASS_THROUGH = 0.4      # mean slope under 40% of its peak: typical |z| > 2.5 for a sigmoid, 1.3 for
                        # tanh; unit-scale inputs through a fan-in scaled layer give 0.8-0.9
LOWER_LR = "; or lower the learning rate (e.g. 10x)"   # dead-relu's fix, dropped where the steps
                                                   # are already tiny (record.where_steps_tiny)
FULLY_SATURATED = 0.1   # under 10% of the peak slope the layer is as good as frozen


def dead_units(probe: Probe) -> dict:
    """layer name -> (dead units, width) for every layer with a dead zone (relu, relu6)."""
    return {layer.name: (silent_units(layer), layer.width)
            for layer in probe.layers if layer.activation in DEAD_KINDS}


def check_dead_relu(probe: Probe) -> Finding | None:
    if len(probe.X) < MIN_ROWS:
        return None
    dead = dead_units(probe)
    share = {n: d / w for n, (d, w) in dead.items()}
    floor = DEAD_SHARE_FAILING if training_failing(probe) else DEAD_SHARE
    if not share or max(share.values()) < floor:
        return None
    worst = max(share, key=share.get)
    whole = any(d == w for d, w in dead.values())
    severity = "error" if whole or (share[worst] >= DEAD_SHARE and training_failing(probe)) \
        else "warning"
    per_layer = "; ".join(f"{n}: {d} of {w} ({d / w:.0%})" for n, (d, w) in dead.items())
    return Finding(
        "dead-relu", severity,
        f"ReLU units that never activate on any of the {len(probe.X)} inputs pass no signal and "
        f"get no gradient. Found dead units per layer: {per_layer}.",
        {"dead": {n: {"dead": d, "width": w, "share": round(d / w, 4)}
                  for n, (d, w) in dead.items()}},
        "Replace nn.ReLU with nn.LeakyReLU(0.01) or nn.ELU()" + LOWER_LR + "; or initialise with nn.init.kaiming_normal_(w, nonlinearity='relu') and biases of "
        "0.01.",
        worst)


def saturated_units(layer) -> int:
    lo, hi = SATURATION_BANDS[layer.activation]
    pinned = (layer.post <= lo) | (layer.post >= hi)
    return int(np.sum(pinned.mean(axis=0) >= PINNED_ROWS))


def pass_through(layer) -> float:
    """Mean of act'(z) / max act' over rows and units: the share of gradient the layer lets by
    (the activation table's slope_of_output and peak_slope)."""
    kind = ACTIVATIONS[layer.activation]
    return float(np.mean(kind.slope_of_output(layer.post) / kind.peak_slope))


def saturable(probe: Probe) -> list:
    """Sigmoid/tanh layers; the head only under a regression loss (a confident classifier head
    is meant to sit near 0 or 1)."""
    return [layer for layer in probe.layers if layer.activation in SATURATION_BANDS
            and (not layer.is_output or probe.loss_name in REGRESSION_LOSSES)]


def check_saturated_activation(probe: Probe) -> Finding | None:
    layers = saturable(probe)
    passing = {layer.name: pass_through(layer) for layer in layers}
    if not passing or min(passing.values()) >= PASS_THROUGH:
        return None
    worst = min(passing, key=passing.get)
    per_layer = "; ".join(f"{la.name} ({la.activation}): slope {passing[la.name]:.0%} of peak, "
                          f"{saturated_units(la)} of {la.width} units pinned" for la in layers)
    return Finding(
        "saturated-activation", "error" if passing[worst] < FULLY_SATURATED else "warning",
        f"Sigmoid/tanh units work near their flat limits, where they pass little gradient (mean "
        f"slope under {PASS_THROUGH:.0%} of its peak). Found {per_layer}.",
        dict(pass_through=passing,
             pinned_units={la.name: saturated_units(la) for la in layers},
             starts_inside=next(iter(passing.values())) >= PASS_THROUGH),
        "Scale the inputs, use a fan-in scaled init (Xavier), or ReLU-family hidden activations.",
        worst)


def layer_measurements(probe: Probe) -> list:
    """Every layer's health, finding or not: what the casebook's layer figure draws."""
    return [{"layer": la.name, "activation": la.activation, "width": la.width,
             "grad_norm": None if la.grad_weight is None else float(np.linalg.norm(la.grad_weight)),
             "weight_norm": float(np.linalg.norm(la.weight)),
             "dead_units": silent_units(la), "saturated_units": saturated_units(la)
             if la.activation in SATURATION_BANDS else None} for la in probe.layers]


def silent_units(layer) -> int | None:
    """Units whose pre-activation is at or under the activation's dead zone on every row (the
    table's dead_below: relu, relu6); None for activations that always pass a gradient. The one
    definition of "dead": check_dead_relu, the layer figure and watch all count with it."""
    kind = ACTIVATIONS.get(layer.activation)
    cut = None if kind is None else kind.dead_below
    return None if cut is None else int(np.sum(np.all(layer.pre <= cut, axis=0)))


def starts_inside(cause: Finding, symptom: Finding) -> bool:
    """Saturation that begins inside the stack, behind a first layer that passes its gradient:
    the inputs and the init reach the stack well, and its depth loses the signal."""
    return bool(symptom.evidence.get("starts_inside"))


def saturated_at_the_input(ruled: Finding, by: Finding) -> bool:
    """saturated-activation from the first layer on: the inputs or the init, not the depth."""
    return not by.evidence.get("starts_inside")


SATURATED_ACTIVATION_CHECK = Check("saturated-activation", check_saturated_activation,
                                   needs=(FINITE, FAILING), evidence=(FAILING_RUN,),
                                   explains=(Explains(STUCK),))
DEAD_RELU_CHECK = Check("dead-relu", check_dead_relu, needs=(FINITE,), evidence=(FAILING_RUN,),
                        rewrites=(where_steps_tiny(LOWER_LR),), explains=(Explains(STUCK),))
