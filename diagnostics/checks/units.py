"""Hidden units that carry no signal: dead ReLUs and saturated sigmoid/tanh units."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import failing_evidence, training_failing
from diagnostics.probe import Probe, REGRESSION_LOSSES
from diagnostics.report import Finding

RELU_KINDS = ("relu", "relu6")
MIN_ROWS = 5            # "never active" needs a few inputs to mean anything
DEAD_SHARE = 0.5        # half a layer dead: the layer has lost half its width
DEAD_SHARE_FAILING = 0.25  # when training fails, a quarter dead is worth naming
SATURATION_BANDS = {"sigmoid": (0.01, 0.99), "tanh": (-0.99, 0.99), "hardtanh": (-0.99, 0.99)}
# 0.01/0.99: the sigmoid's slope there is < 0.01, 1/25 of its maximum 0.25: gradients are gone
PINNED_ROWS = 0.9       # a unit pinned for 90% of inputs is saturated
SATURATED_SHARE = 0.5   # half a layer's units saturated


def dead_units(probe: Probe) -> dict:
    """layer name -> (dead units, width) for every relu layer."""
    return {layer.name: (int(np.sum(np.all(layer.pre <= 0, axis=0))), layer.width)
            for layer in probe.layers if layer.activation in RELU_KINDS}


def check_dead_relu(probe: Probe) -> Finding | None:
    if len(probe.X) < MIN_ROWS or not probe.finite:
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
        dict(failing_evidence(probe), dead={n: {"dead": d, "width": w, "share": round(d / w, 4)}
                                             for n, (d, w) in dead.items()}),
        "Use LeakyReLU/ELU, He init with a small positive bias, or a smaller learning rate.",
        worst)


def saturated_units(layer) -> int:
    lo, hi = SATURATION_BANDS[layer.activation]
    pinned = (layer.post <= lo) | (layer.post >= hi)
    return int(np.sum(pinned.mean(axis=0) >= PINNED_ROWS))


def saturable(probe: Probe) -> list:
    """Sigmoid/tanh layers; the head only under a regression loss (a confident classifier head
    is meant to sit near 0 or 1)."""
    return [layer for layer in probe.layers if layer.activation in SATURATION_BANDS
            and (not layer.is_output or probe.loss_name in REGRESSION_LOSSES)]


def check_saturated_activation(probe: Probe) -> Finding | None:
    if not probe.finite or not training_failing(probe):
        return None
    sat = {layer.name: (saturated_units(layer), layer.width) for layer in saturable(probe)}
    share = {n: s / w for n, (s, w) in sat.items()}
    if not share or max(share.values()) < SATURATED_SHARE:
        return None
    worst = max(share, key=share.get)
    per_layer = "; ".join(f"{n}: {s} of {w}" for n, (s, w) in sat.items())
    return Finding(
        "saturated-activation", "error" if share[worst] == 1 else "warning",
        "Sigmoid/tanh units pinned near their limits for at least 90% of inputs pass almost no "
        f"gradient. Found saturated units per layer: {per_layer}.",
        dict(failing_evidence(probe), saturated={n: {"saturated": s, "width": w}
                                                  for n, (s, w) in sat.items()}),
        "Scale the inputs, use a fan-in scaled init (Xavier), or ReLU-family hidden activations.",
        worst)
