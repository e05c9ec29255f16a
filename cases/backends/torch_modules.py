"""The torch backend's modules: which ``torch.nn`` module each activation name of a RunConfig
builds, and the ``nn.Sequential`` of an MLP. The one table of torch activations in cases/: the
torch loop (torch_train) and ``MLP.to_torch`` build from it.

It imports no other module of the project, so the numpy MLP can build its torch twin from here
without a loop. (diagnostics/activations.py holds the reverse table, module type -> name, for
recognising the activations of any user's model; this one carries the backend's settings: the
leaky slope, GELU's tanh approximation, softmax over the last axis.)
"""

from __future__ import annotations

import torch
from torch import nn

DTYPES = {"float32": torch.float32, "float64": torch.float64}

ACTIVATION_MODULES = {   # factories: only the module asked for is built
    "relu": lambda slope: nn.ReLU(),
    "leaky_relu": lambda slope: nn.LeakyReLU(slope),
    "elu": lambda slope: nn.ELU(),
    "sigmoid": lambda slope: nn.Sigmoid(),
    "tanh": lambda slope: nn.Tanh(),
    "gelu": lambda slope: nn.GELU(approximate="tanh"),
    "softmax": lambda slope: nn.Softmax(dim=1),
}


def activation_module(name: str, slope: float = 0.01) -> nn.Module | None:
    """The module of activation ``name``; None for identity."""
    return None if name == "identity" else ACTIVATION_MODULES[name](slope)


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
