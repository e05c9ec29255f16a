"""Per-layer health of a trained model, for the report's figure: gradient norms and the units
that pass no gradient, read from diagnose()'s own measurements (``Report.layers``), so the figure
and the findings count dead and saturated units by one definition."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LayerHealth:
    name: str               # as diagnose() names it: "layer 1 (hidden, 64 relu)"
    grad_norm: float        # Frobenius norm of dL/dW (mean loss over the training set)
    weight_norm: float
    dead_share: float       # share of its units dead (rectifiers) or saturated (squashing), or nan
    kind: str               # "dead", "saturated" or "" (the share does not apply)


def health_of(layer: dict) -> LayerHealth:
    grad = layer["grad_norm"] if layer["grad_norm"] is not None else float("nan")
    for key, kind in (("dead_units", "dead"), ("saturated_units", "saturated")):
        if layer[key] is not None:
            return LayerHealth(layer["layer"], grad, layer["weight_norm"],
                               layer[key] / layer["width"], kind)
    return LayerHealth(layer["layer"], grad, layer["weight_norm"], float("nan"), "")


def layer_health(report) -> list:
    """One :class:`LayerHealth` per layer of the diagnosed model; none without a report."""
    return [] if report is None else [health_of(layer) for layer in report.layers]
