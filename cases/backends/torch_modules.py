"""The torch backend's modules: which ``torch.nn`` module each activation name of a RunConfig
builds, and the ``nn.Sequential`` of an MLP. The one table of torch activations in cases/: the
torch loop (torch_train) and ``MLP.to_torch`` build from it.

It imports no other module of cases/, so the numpy MLP can build its torch twin from here
without a loop. The module classes come from diagnostics/activations.py's table (one row per
activation, read by every consumer); this file adds only the backend's settings: the leaky
slope, GELU's tanh approximation, softmax over the units.
"""

from __future__ import annotations

import torch
from torch import nn

from diagnostics.activations import ACTIVATIONS

DTYPES = {"float32": torch.float32, "float64": torch.float64}

BACKEND_NAMES = ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "softmax")
BACKEND_ARGS = {"gelu": {"approximate": "tanh"},   # as numpy_ops' GELU
                "softmax": {"dim": 1}}              # over the units of each row


def activation_module(name: str, slope: float = 0.01) -> nn.Module | None:
    """The module of activation ``name`` (its class from diagnostics.activations' table, with
    the backend's settings); None for identity."""
    if name == "identity":
        return None
    if name not in BACKEND_NAMES:
        raise KeyError(name)
    args = {"negative_slope": slope} if name == "leaky_relu" else BACKEND_ARGS.get(name, {})
    return ACTIVATIONS[name].module(**args)


def build_module(sizes, activations, slope: float = 0.01, device=None,
                 dtype=None) -> nn.Sequential:
    """Linear, activation, Linear, activation, ... ; identity activations are left out."""
    layers = []
    for d_in, d_out, act in zip(sizes[:-1], sizes[1:], activations):
        layers.append(nn.Linear(d_in, d_out, device=device, dtype=dtype))
        module = activation_module(act, slope)
        if module is not None:
            layers.append(module)
    return nn.Sequential(*layers)
