"""Which activation follows each linear layer: read from the module when there is one, otherwise
recognised from the values themselves (z in, h out), which is how functional calls such as
F.relu or torch.sigmoid inside a custom forward are found."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MODULE_KINDS = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.ELU: "elu", nn.GELU: "gelu",
                nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Softmax: "softmax",
                nn.LogSoftmax: "log_softmax", nn.Identity: "identity", nn.SiLU: "silu",
                nn.Softplus: "softplus", nn.ReLU6: "relu6", nn.Hardtanh: "hardtanh",
                nn.Softsign: "softsign", nn.SELU: "selu", nn.CELU: "celu", nn.Mish: "mish"}

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


def kind_from_values(z: torch.Tensor, h: torch.Tensor) -> str:
    """The name of the function that maps z to h, or "unknown"."""
    if z.shape != h.shape:
        return "unknown"
    z, h = z.detach().double(), h.detach().double()
    rows = (torch.isfinite(z) & torch.isfinite(h)).reshape(len(z), -1).all(dim=1)
    if int(rows.sum()) < MIN_FINITE_ROWS:
        return "unknown"    # NaN in, NaN out: every candidate would match, none is known
    z, h = z[rows], h[rows]     # whole rows: softmax reads a row at a time
    for name, fn in CANDIDATES.items():
        if name == "relu" and leaky_slope(z, h) is not None:  # before relu: tiny slopes look like 0
            return "leaky_relu"
        if matches(fn(z), h):
            return "gelu" if name == "gelu_tanh" else name
    return "unknown"
