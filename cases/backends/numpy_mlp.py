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

from cases.backends.numpy_ops import activate, activation_backward

INITS = ("uniform01", "randn", "randn001", "zeros", "xavier", "he", "lecun", "torch_default")


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

    def to_torch(self, dtype=None, device="cpu"):
        """The same network as a ``torch.nn.Sequential`` of ``nn.Linear`` and activation modules
        (weights transposed to nn.Linear's (out, in)); ``dtype`` None is torch.float64."""
        import torch                                      # only a torch copy needs torch
        from cases.backends.torch_modules import build_module
        dtype = torch.float64 if dtype is None else dtype
        module = build_module(self.sizes, self.activations, self.slope, device, dtype)
        linears = [m for m in module if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for lin, W, b in zip(linears, self.W, self.b):
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(b))
        return module

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

    def __repr__(self) -> str:
        return f"MLP(sizes={self.sizes}, activations={self.activations}, dtype={self.dtype})"
