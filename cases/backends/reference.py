"""The two loops a user would write without this project: what the backends are measured against.

``numpy_loop`` is the bare hand-written numpy training loop: weights in two
lists, the forward and backward pass spelled out, plain SGD or AdamW, no
classes and no checks. ``torch_loop`` is the plain eager PyTorch loop:
``nn.Sequential``, a ``torch.optim`` optimizer, ``loss.backward()`` and a
``loss.item()`` per step for the history.

Both start from the project's seeded initial weights and take the same
batches, so their loss traces equal the backends' and a benchmark compares
equal work. They cover what the benchmark workloads use (SGD or AdamW; mse or
cross_entropy; identity, relu, leaky_relu, sigmoid, tanh) and refuse the rest.

Deliberate copies: the activations, losses and updates are written out here again, as a user
would write them, instead of taken from their one definition (numpy_ops.py, torch_modules.py,
diagnostics/losses.py, numpy_train.py): a benchmark against the project's own functions would
compare the project with itself. tests/test_backends.py checks that the traces stay equal.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from cases.backends import torch_train
from cases.backends.schedule import batch_schedule, initial_model, lr_at

NUMPY_ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")
LOSSES = ("mse", "cross_entropy")


def check_supported(cfg) -> None:
    acts = set(cfg.activations) - set(NUMPY_ACTIVATIONS)
    if acts or cfg.loss not in LOSSES or cfg.optimizer == "adam" or cfg.momentum:
        raise ValueError(f"the reference loops cover activations {NUMPY_ACTIVATIONS}, losses "
                         f"{LOSSES}, plain SGD and AdamW; got {cfg.summary()}")


def numpy_loop(cfg, X, y, steps: int | None = None) -> np.ndarray:
    """Train ``cfg`` the bare numpy way; returns the per-step batch losses."""
    check_supported(cfg)
    net = initial_model(cfg)
    W, b, acts, s = net.W, net.b, cfg.activations, cfg.leaky_slope
    params = [p for Wb in zip(W, b) for p in Wb]
    m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    b1, b2 = cfg.betas
    n_steps, next_batch = batch_schedule(len(X), cfg)
    steps = steps or n_steps
    full = cfg.batch_size is None or cfg.batch_size >= len(X)
    history = np.empty(steps)
    for t in range(steps):
        idx = None if full else next_batch(t)
        xb, yb = (X, y) if full else (X[idx], y[idx])
        # forward
        hs, zs = [xb], []
        for Wi, bi, a in zip(W, b, acts):
            z = hs[-1] @ Wi + bi
            zs.append(z)
            hs.append(z if a == "identity" else np.maximum(z, 0) if a == "relu" else
                      np.where(z > 0, z, s * z) if a == "leaky_relu" else
                      1 / (1 + np.exp(-z)) if a == "sigmoid" else np.tanh(z))
        out, n = hs[-1], len(xb)
        if cfg.loss == "mse":
            d = out - yb
            history[t] = np.mean(d * d)
            g = 2 * d / d.size
        else:
            e = np.exp(out - out.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            history[t] = -np.log(p[np.arange(n), yb]).mean()
            p[np.arange(n), yb] -= 1
            g = p / n
        if not cfg.mean_gradient:
            g = g * n
        # backward
        grads = []
        for i in reversed(range(len(W))):
            z, h, a = zs[i], hs[i + 1], acts[i]
            g = (g if a == "identity" else g * (z > 0) if a == "relu" else
                 g * np.where(z > 0, 1.0, s) if a == "leaky_relu" else
                 g * h * (1 - h) if a == "sigmoid" else g * (1 - h * h))
            grads[:0] = [hs[i].T @ g, g.sum(axis=0)]
            g = g @ W[i].T
        # update
        lr = lr_at(cfg, t)
        if cfg.optimizer == "sgd":
            for p, dp in zip(params, grads):
                p -= lr * dp
        else:  # AdamW, torch.optim's formula
            c1, c2 = 1 - b1 ** (t + 1), 1 - b2 ** (t + 1)
            for p, dp, mi, vi in zip(params, grads, m, v):
                p *= 1 - lr * cfg.weight_decay
                mi *= b1
                mi += (1 - b1) * dp
                vi *= b2
                vi += (1 - b2) * dp * dp
                p -= (lr / c1) * mi / (np.sqrt(vi) / np.sqrt(c2) + cfg.eps)
    return history


def torch_loop(cfg, X, y, steps: int | None = None, device="cpu") -> np.ndarray:
    """Train ``cfg`` the plain eager PyTorch way; returns the per-step batch losses."""
    check_supported(cfg)
    dt = torch_train.DTYPES[cfg.dtype]
    model = torch_train.from_numpy(initial_model(cfg), device, dt)  # an nn.Sequential
    X = torch.as_tensor(X, device=device, dtype=dt)
    y = torch.as_tensor(y, device=device, dtype=dt if y.dtype.kind == "f" else None)
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                                weight_decay=cfg.weight_decay)
    criterion = F.mse_loss if cfg.loss == "mse" else F.cross_entropy
    n_steps, next_batch = batch_schedule(len(X), cfg)
    steps = steps or n_steps
    history = np.empty(steps)
    for t in range(steps):
        idx = torch.as_tensor(next_batch(t), device=device)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, t)
        loss = criterion(model(X[idx]), y[idx])
        history[t] = loss.item()
        opt.zero_grad()
        (loss if cfg.mean_gradient else loss * len(idx)).backward()
        opt.step()
    return history
