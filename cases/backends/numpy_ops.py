"""The numpy definition of every activation and loss of the project: the one place the numpy
MLP (numpy_mlp), its training loop (numpy_train) and the batched sweeps (batched) take them from.

Two tables: ``ACTIVATIONS`` (name -> forward and backward) and ``LOSS_FUNCTIONS`` (name -> mean
loss and its gradient); ``activate``, ``activation_backward`` and ``loss_and_grad`` look a name
up in them. The torch side of each name is diagnostics/activations.py's and diagnostics/losses.py's
table; tests/test_numpy_ops.py holds the two sides to each other.

Each function works on one model's arrays, (n, width), and on K models stacked on a leading axis,
(K, n, width), as batched.py trains them: reductions run over the last two axes, so a model's
numbers are the same bits in either layout. (cases/backends/reference.py writes a few of them
out again on purpose: the bare loop a user would write, which the benchmarks time.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

GELU_C = np.sqrt(2.0 / np.pi)  # tanh approximation of GELU, as torch's GELU(approximate="tanh")
GELU_CUBIC = 0.044715          # ...and its cubic term's coefficient, torch's too
BCE_EPS = 1e-12                # bce clips probabilities this far off 0 and 1: the log stays finite
ROWS = (-2, -1)                # a model's (n, width) block: what its mean loss averages over


# ---------------------------------------------------------------- activations
# Every forward is (z, slope) -> h and every backward (z, h, g, slope) -> dL/dz from dL/dh = g;
# slope is leaky_relu's negative slope, which only leaky_relu reads.
def identity(z, slope):
    return z


def identity_backward(z, h, g, slope):
    return g


def relu(z, slope):
    return np.maximum(z, 0)


def relu_backward(z, h, g, slope):
    return g * (z > 0)


def leaky_relu(z, slope):
    return np.where(z > 0, z, slope * z)


def leaky_relu_backward(z, h, g, slope):
    return g * np.where(z > 0, 1.0, slope).astype(z.dtype)


def elu(z, slope):
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def elu_backward(z, h, g, slope):
    return g * np.where(z > 0, 1.0, h + 1)   # exp(z) = h + 1 below 0


def sigmoid(z, slope):
    return 1 / (1 + np.exp(-z))  # exp overflows to inf below z = -709: 1/inf is the right 0


def sigmoid_backward(z, h, g, slope):
    return g * h * (1 - h)


def tanh(z, slope):
    return np.tanh(z)


def tanh_backward(z, h, g, slope):
    return g * (1 - h * h)


def gelu_tanh(z):
    """tanh(sqrt(2/pi) (z + 0.044715 z^3)): the inner term of both GELU directions."""
    return np.tanh(GELU_C * (z + GELU_CUBIC * z**3))


def gelu(z, slope):
    return 0.5 * z * (1 + gelu_tanh(z))


def gelu_backward(z, h, g, slope):
    t = gelu_tanh(z)
    dt = (1 - t * t) * GELU_C * (1 + 3 * GELU_CUBIC * z * z)
    return g * (0.5 * (1 + t) + 0.5 * z * dt)


def softmax(z, slope):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(z, h, g, slope):  # Jacobian-vector product of softmax, row by row
    return h * (g - (g * h).sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class Activation:
    forward: Callable         # (z, slope) -> h
    backward: Callable        # (z, h, g, slope) -> dL/dz
    hidden: bool = True       # may follow a hidden layer (softmax, over the units, only heads)
    head: bool = False        # may follow the last layer


ACTIVATIONS = {
    "identity": Activation(identity, identity_backward, head=True),
    "relu": Activation(relu, relu_backward, head=True),
    "leaky_relu": Activation(leaky_relu, leaky_relu_backward),
    "elu": Activation(elu, elu_backward),
    "sigmoid": Activation(sigmoid, sigmoid_backward, head=True),
    "tanh": Activation(tanh, tanh_backward, head=True),
    "gelu": Activation(gelu, gelu_backward),
    "softmax": Activation(softmax, softmax_backward, hidden=False, head=True),
}
HIDDEN_ACTIVATIONS = tuple(n for n, a in ACTIVATIONS.items() if a.hidden)
OUTPUT_ACTIVATIONS = tuple(n for n, a in ACTIVATIONS.items() if a.head)


def activation(name: str) -> Activation:
    """The table's row of ``name``; ValueError naming the accepted ones."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is unknown; accepted: {tuple(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def activate(name: str, z: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """h = act(z) for one layer."""
    return activation(name).forward(z, slope)


def activation_backward(name: str, z: np.ndarray, h: np.ndarray, g: np.ndarray,
                        slope: float = 0.01) -> np.ndarray:
    """dL/dz from dL/dh = g, given z and h = act(z)."""
    return activation(name).backward(z, h, g, slope)


# --------------------------------------------------------------------- losses
# Every loss is (out, y, margin) -> (mean loss, dL/d(out)); margin is hinge's, which only hinge
# reads. ``out`` is the network's output after its output activation, (n, k), or (K, n, k) for K
# models (the loss is then (K,), each model's own). ``y`` holds class indices (n,) for
# cross_entropy and hinge, floats shaped like ``out`` otherwise.
def mse(out, y, margin):  # torch.nn.MSELoss: mean over every element
    n, width = out.shape[-2], out.shape[-1]
    d = out - y
    return np.mean(d * d, axis=ROWS), 2 * d / (n * width)


def half_mse(out, y, margin):  # 1/2 sum over outputs, mean over samples
    n = out.shape[-2]
    d = out - y
    return 0.5 * np.sum(d * d, axis=ROWS) / n, d / n


def cross_entropy(out, y, margin):  # out read as logits
    n = out.shape[-2]
    zmax = out.max(axis=-1, keepdims=True)
    logp = out - zmax - np.log(np.exp(out - zmax).sum(axis=-1, keepdims=True))
    label = y[..., None]
    g = np.exp(logp)
    np.put_along_axis(g, label, np.take_along_axis(g, label, -1) - 1, -1)
    return -np.take_along_axis(logp, label, -1)[..., 0].mean(axis=-1), g / n


def hinge(out, y, margin):  # multi-class hinge on scores: sum_{j != y} max(0, margin + s_j - s_y)
    n, label = out.shape[-2], y[..., None]
    m = margin + out - np.take_along_axis(out, label, -1)
    np.put_along_axis(m, label, 0, -1)
    active = (m > 0).astype(out.dtype)
    g = active.copy()
    np.put_along_axis(g, label, -active.sum(axis=-1, keepdims=True), -1)
    return np.maximum(m, 0).sum(axis=ROWS) / n, g / n


def bce(out, y, margin):  # binary cross-entropy on probabilities, as torch.nn.BCELoss
    n, width = out.shape[-2], out.shape[-1]
    p = np.clip(out, BCE_EPS, 1 - BCE_EPS)
    loss = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    return loss.mean(axis=ROWS), (p - y) / (p * (1 - p)) / (n * width)


LOSS_FUNCTIONS = {"mse": mse, "half_mse": half_mse, "cross_entropy": cross_entropy,
                  "hinge": hinge, "bce": bce}
LOSSES = tuple(LOSS_FUNCTIONS)


def loss_and_grad(name: str, out: np.ndarray, y: np.ndarray, margin: float = 1.0):
    """Mean loss over the batch and its gradient with respect to ``out``."""
    if name not in LOSS_FUNCTIONS:
        raise ValueError(f"loss {name!r} is unknown; accepted: {LOSSES}")
    return LOSS_FUNCTIONS[name](out, y, margin)
