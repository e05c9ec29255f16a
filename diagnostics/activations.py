"""Which activation follows each linear layer: read from the module when there is one, otherwise
recognised from the values themselves (z in, h out), which is how functional calls such as
F.relu or torch.sigmoid inside a custom forward are found."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

INF = float("inf")


@dataclass(frozen=True)
class Activation:
    """What every consumer needs to know of one activation (issue 23: one table, read by both
    backends, the fault programs, diagnose() and the report)."""
    module: type                          # the torch module class that computes it
    output_range: tuple = (-INF, INF)     # what it can output: a head whose targets lie outside fails
    saturation_band: tuple | None = None  # outputs at or beyond (lo, hi) sit where the slope is ~0
    dead_below: float | None = None       # z at or under which the slope is exactly 0 (a dead unit)
    colour: str | None = None             # the report's line colour where activations are compared
    slope_of_output: object = None        # act'(z) written in h = act(z), numpy; where it can be
    peak_slope: float | None = None       # max of act'(z) beside slope_of_output: 100% pass-through


# dead_below: only where the slope is exactly 0, so a unit there can never recover: relu's kink.
# GELU is not dead below -3 (slope -0.012 at -3, nonzero everywhere), so it has no dead zone.
# saturation bands 0.01/0.99: the sigmoid's slope there is < 0.01, 1/25 of its maximum 0.25.
# colours: the report's fix palette (tab:*), in the order the sin-activations figure names them.
ACTIVATIONS = {
    "identity": Activation(nn.Identity, slope_of_output=lambda h: np.ones_like(h), peak_slope=1.0),
    "relu": Activation(nn.ReLU, (0.0, INF), dead_below=0.0, colour="tab:blue"),
    "leaky_relu": Activation(nn.LeakyReLU, colour="tab:green"),
    "elu": Activation(nn.ELU, (-1.0, INF), colour="tab:purple"),
    "sigmoid": Activation(nn.Sigmoid, (0.0, 1.0), (0.01, 0.99), colour="tab:orange",
                          slope_of_output=lambda h: h * (1 - h), peak_slope=0.25),
    "tanh": Activation(nn.Tanh, (-1.0, 1.0), (-0.99, 0.99), colour="tab:brown",
                       slope_of_output=lambda h: 1 - h * h, peak_slope=1.0),
    "gelu": Activation(nn.GELU, colour="tab:cyan"),
    "softmax": Activation(nn.Softmax, (0.0, 1.0)),
    "log_softmax": Activation(nn.LogSoftmax, (-INF, 0.0)),
    "silu": Activation(nn.SiLU),
    "softplus": Activation(nn.Softplus, (0.0, INF)),
    "relu6": Activation(nn.ReLU6, (0.0, 6.0), dead_below=0.0),
    "hardtanh": Activation(nn.Hardtanh, (-1.0, 1.0)),
    "softsign": Activation(nn.Softsign, (-1.0, 1.0)),
    "selu": Activation(nn.SELU),
    "celu": Activation(nn.CELU),
    "mish": Activation(nn.Mish),
}
MODULE_KINDS = {a.module: name for name, a in ACTIVATIONS.items()}
DEAD_KINDS = tuple(n for n, a in ACTIVATIONS.items() if a.dead_below is not None)
SATURATION_BANDS = {n: a.saturation_band for n, a in ACTIVATIONS.items() if a.saturation_band}
HEAD_RANGES = {n: a.output_range for n, a in ACTIVATIONS.items() if a.output_range != (-INF, INF)}
COLOURS = {n: a.colour for n, a in ACTIVATIONS.items() if a.colour}

# Tried in this order; nonlinear names first so that a relu whose inputs are all positive on the
# probe rows is still called relu, and "identity" (which low-capacity reads as "no nonlinearity")
# is only said when nothing else fits.
CANDIDATES = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda z: torch.softmax(z, dim=1),
    "log_softmax": lambda z: torch.log_softmax(z, dim=1),
    "relu": torch.relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"),
    "silu": F.silu,
    "softplus": F.softplus,
    "identity": lambda z: z,
}
MIN_FINITE_ROWS = 1   # rows whose z and h are all finite; with none every candidate matches
REL_TOL = 1e-4   # float32 activations recomputed from z agree to ~1e-6; 1e-4 leaves margin


def module_kind(module: nn.Module) -> str | None:
    return MODULE_KINDS.get(type(module))


def matches(a: torch.Tensor, b: torch.Tensor) -> bool:
    """a == b within float32 rounding; NaN matches NaN (a diverged model's activations are still
    recognised, and a NaN must not turn the tolerance itself into NaN)."""
    finite = b[torch.isfinite(b)]
    scale = float(finite.abs().max()) if finite.numel() else 0.0
    return bool(torch.allclose(a, b, rtol=REL_TOL, atol=REL_TOL * (1.0 + scale), equal_nan=True))


def leaky_slope(z: torch.Tensor, h: torch.Tensor) -> float | None:
    """The negative slope s when h = where(z > 0, z, s z) with 0 < s < 1, else None."""
    neg = z < -1e-6
    if not neg.any():
        return None
    s = float((h[neg] / z[neg]).median())
    if 0 < s < 1 and matches(torch.where(z > 0, z, s * z), h):
        return s
    return None


ROW_NORMALISED = ("softmax", "log_softmax")   # over one column: the constants 1 and 0


def candidates(columns: int | None) -> list:
    """CANDIDATES in the order tried. Over a single column softmax is 1 and log_softmax 0 whatever
    z, as a relu whose inputs are all <= 0 is 0: there relu is tried first (a relu on one logit
    whose unit died: moons under bce_with_logits through F.relu, read as log_softmax before)."""
    order = list(CANDIDATES.items())
    if columns != 1:
        return order
    first = [(n, f) for n, f in order if n not in ROW_NORMALISED]
    at = [n for n, _ in first].index("relu") + 1
    return first[:at] + [(n, CANDIDATES[n]) for n in ROW_NORMALISED] + first[at:]


def kind_from_values(z: torch.Tensor, h: torch.Tensor) -> str:
    """The name of the function that maps z to h, or "unknown"."""
    if z.shape != h.shape:
        return "unknown"
    z, h = z.detach().double(), h.detach().double()
    rows = (torch.isfinite(z) & torch.isfinite(h)).reshape(len(z), -1).all(dim=1)
    if int(rows.sum()) < MIN_FINITE_ROWS:
        return "unknown"    # NaN in, NaN out: every candidate would match, none is known
    z, h = z[rows], h[rows]     # whole rows: softmax reads a row at a time
    for name, fn in candidates(z.shape[-1] if z.ndim == 2 else None):
        if name == "relu" and leaky_slope(z, h) is not None:  # before relu: tiny slopes look like 0
            return "leaky_relu"
        if matches(fn(z), h):
            return "gelu" if name == "gelu_tanh" else name
    return "unknown"
