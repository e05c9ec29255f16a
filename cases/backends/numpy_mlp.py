"""A multilayer perceptron in plain numpy, with its backward pass written out.

Row-major throughout: a batch X has shape (n, d_in), layer i computes
``z = h @ W[i] + b[i]`` with ``W[i]`` of shape (d_in, d_out), then ``h = act(z)``.
The forward pass keeps every pre-activation ``z`` and activation ``h`` so the
backward pass and the diagnostics can read them.

Everything that draws random numbers takes a ``numpy.random.Generator``:
the torch backend starts from these same arrays, so both backends train the
same initial weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HIDDEN_ACTIVATIONS = ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu")
OUTPUT_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "softmax")
LOSSES = ("mse", "half_mse", "cross_entropy", "hinge", "bce")
INITS = ("uniform01", "randn", "randn001", "zeros", "xavier", "he", "lecun", "torch_default")
GELU_C = np.sqrt(2.0 / np.pi)  # tanh approximation of GELU, as torch's GELU(approximate="tanh")


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

    ``out`` is the network's output after its output activation. ``y`` holds
    class indices (n,) for cross_entropy and hinge, floats shaped like ``out``
    otherwise. cross_entropy and hinge read ``out`` as logits/scores.
    """
    n = out.shape[0]
    if name == "mse":  # torch.nn.MSELoss: mean over every element
        d = out - y
        return np.mean(d * d), 2 * d / d.size
    if name == "half_mse":  # 1/2 sum over outputs, mean over samples
        d = out - y
        return 0.5 * np.sum(d * d) / n, d / n
    if name == "cross_entropy":
        zmax = out.max(axis=1, keepdims=True)
        logp = out - zmax - np.log(np.exp(out - zmax).sum(axis=1, keepdims=True))
        rows = np.arange(n)
        g = np.exp(logp)
        g[rows, y] -= 1
        return -logp[rows, y].mean(), g / n
    if name == "hinge":  # multi-class hinge: sum_{j != y} max(0, margin + s_j - s_y)
        rows = np.arange(n)
        m = margin + out - out[rows, y][:, None]
        m[rows, y] = 0
        active = (m > 0).astype(out.dtype)
        g = active.copy()
        g[rows, y] = -active.sum(axis=1)
        return np.maximum(m, 0).sum() / n, g / n
    if name == "bce":  # binary cross-entropy on probabilities, as torch.nn.BCELoss
        p = np.clip(out, 1e-12, 1 - 1e-12)
        loss = -(y * np.log(p) + (1 - y) * np.log1p(-p))
        return loss.mean(), (p - y) / (p * (1 - p)) / out.size
    raise ValueError(f"loss {name!r} is unknown; accepted: {LOSSES}")


# ---------------------------------------------------------------------- inits
def init_layer(name: str, fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float64):
    """(W, b) for one layer, W of shape (fan_in, fan_out)."""
    shape = (fan_in, fan_out)
    if name == "uniform01":  # np.random.random: every weight and bias in [0, 1)
        W, b = rng.random(shape), rng.random(fan_out)
    elif name == "randn":
        W, b = rng.standard_normal(shape), rng.standard_normal(fan_out)
    elif name == "randn001":
        W, b = 0.01 * rng.standard_normal(shape), np.zeros(fan_out)
    elif name == "zeros":
        W, b = np.zeros(shape), np.zeros(fan_out)
    elif name == "xavier":  # Glorot uniform
        a = np.sqrt(6.0 / (fan_in + fan_out))
        W, b = rng.uniform(-a, a, shape), np.zeros(fan_out)
    elif name == "he":  # Kaiming normal, fan_in mode, for ReLU
        W, b = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in), np.zeros(fan_out)
    elif name == "lecun":
        W, b = rng.standard_normal(shape) / np.sqrt(fan_in), np.zeros(fan_out)
    elif name == "torch_default":  # nn.Linear.reset_parameters: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        a = 1.0 / np.sqrt(fan_in)
        W, b = rng.uniform(-a, a, shape), rng.uniform(-a, a, fan_out)
    else:
        raise ValueError(f"init {name!r} is unknown; accepted: {INITS}")
    return W.astype(dtype), b.astype(dtype)


# ------------------------------------------------------------------------ MLP
@dataclass
class Cache:
    """What one forward pass leaves for backward: h[0] = X, z[i] and h[i+1] per layer."""
    z: list = field(default_factory=list)
    h: list = field(default_factory=list)


class MLP:
    """Widths ``sizes = (d_in, ..., d_out)``; one activation per layer, the last the output's.

    >>> net = MLP.init((1, 4, 1), ("relu", "identity"), "he", np.random.default_rng(0))
    >>> net.forward(np.zeros((3, 1))).shape
    (3, 1)
    """

    def __init__(self, W, b, activations, slope: float = 0.01):
        if len(W) != len(b) or len(W) != len(activations):
            raise ValueError(f"need one W, b and activation per layer; got {len(W)}, {len(b)}, "
                             f"{len(activations)}")
        self.W, self.b = list(W), list(b)
        self.activations = tuple(activations)
        self.slope = slope

    @classmethod
    def init(cls, sizes, activations, init: str, rng, dtype=np.float64, slope: float = 0.01):
        layers = [init_layer(init, i, o, rng, dtype) for i, o in zip(sizes[:-1], sizes[1:])]
        return cls([W for W, _ in layers], [b for _, b in layers], activations, slope)

    @property
    def sizes(self) -> tuple:
        return (self.W[0].shape[0],) + tuple(W.shape[1] for W in self.W)

    @property
    def dtype(self):
        return self.W[0].dtype

    def parameters(self) -> list:
        """Every array, in torch's order: W0, b0, W1, b1, ..."""
        return [p for Wb in zip(self.W, self.b) for p in Wb]

    def copy(self) -> "MLP":
        return MLP([W.copy() for W in self.W], [b.copy() for b in self.b], self.activations,
                   self.slope)

    def forward(self, X: np.ndarray, cache: Cache | None = None) -> np.ndarray:
        h = X
        if cache is not None:
            cache.h.append(h)
        for W, b, act in zip(self.W, self.b, self.activations):
            z = h @ W + b
            h = activate(act, z, self.slope)
            if cache is not None:
                cache.z.append(z)
                cache.h.append(h)
        return h

    __call__ = forward

    def backward(self, cache: Cache, dout: np.ndarray):
        """Gradients (dW, db, dz) per layer from dL/d(output) = dout."""
        L = len(self.W)
        dW, db, dz = [None] * L, [None] * L, [None] * L
        g = dout
        for i in reversed(range(L)):
            g = activation_backward(self.activations[i], cache.z[i], cache.h[i + 1], g, self.slope)
            dz[i] = g
            dW[i] = cache.h[i].T @ g
            db[i] = g.sum(axis=0)
            if i:
                g = g @ self.W[i].T
        return dW, db, dz

    def to_torch(self, dtype=None, device="cpu"):
        """The same function as a torch.nn.Sequential (new tensors: this MLP is not touched);
        how diagnose() reads a numpy MLP."""
        import torch
        from cases.backends.torch_train import from_numpy
        return from_numpy(self, device, dtype or getattr(torch, np.dtype(self.dtype).name))

    def __repr__(self) -> str:
        return f"MLP(sizes={self.sizes}, activations={self.activations}, dtype={self.dtype})"
