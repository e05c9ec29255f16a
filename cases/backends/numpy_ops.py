"""The numpy definition of every activation and loss of the project: the one place the numpy
MLP (numpy_mlp), its training loop (numpy_train) and the batched sweeps (batched) take them from.

Each function works on one model's arrays, (n, width), and on K models stacked on a leading axis,
(K, n, width), as batched.py trains them: reductions run over the last two axes, so a model's
numbers are the same bits in either layout. (cases/backends/reference.py writes a few of them
out again on purpose: the bare loop a user would write, which the benchmarks time.)
"""

from __future__ import annotations

import numpy as np

HIDDEN_ACTIVATIONS = ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu")
OUTPUT_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "softmax")
LOSSES = ("mse", "half_mse", "cross_entropy", "hinge", "bce")
GELU_C = np.sqrt(2.0 / np.pi)  # tanh approximation of GELU, as torch's GELU(approximate="tanh")
ROWS = (-2, -1)                # a model's (n, width) block: what its mean loss averages over


# ---------------------------------------------------------------- activations
def activate(name: str, z: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """h = act(z) for one layer."""
    if name == "identity":
        return z
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))  # exp overflows to inf below z = -709: 1/inf is the right 0
    if name == "tanh":
        return np.tanh(z)
    if name == "gelu":
        return 0.5 * z * (1 + np.tanh(GELU_C * (z + 0.044715 * z**3)))
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(f"activation {name!r} is unknown; accepted: {HIDDEN_ACTIVATIONS + ('softmax',)}")


def activation_backward(name: str, z: np.ndarray, h: np.ndarray, g: np.ndarray,
                        slope: float = 0.01) -> np.ndarray:
    """dL/dz from dL/dh = g, given z and h = act(z)."""
    if name == "identity":
        return g
    if name == "relu":
        return g * (z > 0)
    if name == "leaky_relu":
        return g * np.where(z > 0, 1.0, slope).astype(z.dtype)
    if name == "elu":
        return g * np.where(z > 0, 1.0, h + 1)
    if name == "sigmoid":
        return g * h * (1 - h)
    if name == "tanh":
        return g * (1 - h * h)
    if name == "gelu":
        t = np.tanh(GELU_C * (z + 0.044715 * z**3))
        dt = (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * z * z)
        return g * (0.5 * (1 + t) + 0.5 * z * dt)
    if name == "softmax":  # Jacobian-vector product of softmax, row by row
        return h * (g - (g * h).sum(axis=-1, keepdims=True))
    raise ValueError(f"activation {name!r} is unknown")


# --------------------------------------------------------------------- losses
def loss_and_grad(name: str, out: np.ndarray, y: np.ndarray, margin: float = 1.0):
    """Mean loss over the batch and its gradient with respect to ``out``.

    ``out`` is the network's output after its output activation, (n, k), or (K, n, k) for K
    models (the loss is then (K,), each model's own). ``y`` holds class indices (n,) for
    cross_entropy and hinge, floats shaped like ``out`` otherwise. cross_entropy and hinge read
    ``out`` as logits/scores.
    """
    n, width = out.shape[-2], out.shape[-1]
    if name == "mse":  # torch.nn.MSELoss: mean over every element
        d = out - y
        return np.mean(d * d, axis=ROWS), 2 * d / (n * width)
    if name == "half_mse":  # 1/2 sum over outputs, mean over samples
        d = out - y
        return 0.5 * np.sum(d * d, axis=ROWS) / n, d / n
    if name == "cross_entropy":
        zmax = out.max(axis=-1, keepdims=True)
        logp = out - zmax - np.log(np.exp(out - zmax).sum(axis=-1, keepdims=True))
        label = y[..., None]
        g = np.exp(logp)
        np.put_along_axis(g, label, np.take_along_axis(g, label, -1) - 1, -1)
        return -np.take_along_axis(logp, label, -1)[..., 0].mean(axis=-1), g / n
    if name == "hinge":  # multi-class hinge: sum_{j != y} max(0, margin + s_j - s_y)
        label = y[..., None]
        m = margin + out - np.take_along_axis(out, label, -1)
        np.put_along_axis(m, label, 0, -1)
        active = (m > 0).astype(out.dtype)
        g = active.copy()
        np.put_along_axis(g, label, -active.sum(axis=-1, keepdims=True), -1)
        return np.maximum(m, 0).sum(axis=ROWS) / n, g / n
    if name == "bce":  # binary cross-entropy on probabilities, as torch.nn.BCELoss
        p = np.clip(out, 1e-12, 1 - 1e-12)
        loss = -(y * np.log(p) + (1 - y) * np.log1p(-p))
        return loss.mean(axis=ROWS), (p - y) / (p * (1 - p)) / (n * width)
    raise ValueError(f"loss {name!r} is unknown; accepted: {LOSSES}")
