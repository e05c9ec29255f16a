"""The torch backend: the same runs built from torch.nn and trained with torch.optim.

The module is a plain ``nn.Sequential`` of ``nn.Linear`` and activation
modules, so what ``diagnose()`` sees is what a user would write. The initial
weights are copied from the numpy backend's seeded init, so both backends
start from the same point; torch's own RNG is never touched.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cases.backends.numpy_mlp import MLP

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def activation_module(name: str, slope: float = 0.01) -> nn.Module | None:
    return {
        "identity": None,
        "relu": nn.ReLU(),
        "leaky_relu": nn.LeakyReLU(slope),
        "elu": nn.ELU(),
        "sigmoid": nn.Sigmoid(),
        "tanh": nn.Tanh(),
        "gelu": nn.GELU(approximate="tanh"),
        "softmax": nn.Softmax(dim=1),
    }[name]


def build_module(sizes, activations, slope: float = 0.01) -> nn.Sequential:
    """Linear, activation, Linear, activation, ... ; identity activations are left out."""
    layers = []
    for d_in, d_out, act in zip(sizes[:-1], sizes[1:], activations):
        layers.append(nn.Linear(d_in, d_out))
        module = activation_module(act, slope)
        if module is not None:
            layers.append(module)
    return nn.Sequential(*layers)


def from_numpy(net: MLP, device="cpu", dtype=torch.float64) -> nn.Sequential:
    """A torch copy of a numpy MLP (weights transposed to nn.Linear's (out, in))."""
    module = build_module(net.sizes, net.activations, net.slope).to(device=device, dtype=dtype)
    linears = [m for m in module if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin, W, b in zip(linears, net.W, net.b):
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
    return module


def to_numpy(module: nn.Sequential, activations, slope: float = 0.01) -> MLP:
    """A numpy copy of a module built by :func:`build_module`."""
    linears = [m for m in module if isinstance(m, nn.Linear)]
    W = [lin.weight.detach().cpu().numpy().T.copy() for lin in linears]
    b = [lin.bias.detach().cpu().numpy().copy() for lin in linears]
    return MLP(W, b, activations, slope)


def loss_fn(name: str, margin: float = 1.0):
    """(out, y) -> mean loss, the same definitions as numpy_mlp.loss_and_grad."""
    if name == "mse":
        return F.mse_loss
    if name == "half_mse":
        return lambda out, y: 0.5 * ((out - y) ** 2).sum() / out.shape[0]
    if name == "cross_entropy":
        return F.cross_entropy
    if name == "hinge":  # torch divides by the number of classes; the numpy loss does not
        return lambda out, y: F.multi_margin_loss(out, y, margin=margin) * out.shape[1]
    if name == "bce":
        return F.binary_cross_entropy
    raise ValueError(f"loss {name!r} is unknown")


def make_optimizer(cfg, params):
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


def check_device(device: str) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but torch sees no CUDA device; "
                         "use device='cpu'")
    return dev


def train(cfg, X, y, Xt, yt, model=None):
    """Train the torch module of ``cfg``; returns (module, per-step losses, recorded curve)."""
    from cases.config import batch_schedule, initial_model, lr_at, record_steps
    from cases.backends.numpy_train import record
    dev, dt = check_device(cfg.device), DTYPES[cfg.dtype]
    net = model if model is not None else from_numpy(initial_model(cfg), dev, dt)
    as_t = lambda a: torch.as_tensor(a, device=dev, dtype=dt if a.dtype.kind == "f" else None)  # noqa
    X, y, Xt, yt = as_t(X), as_t(y), as_t(Xt), as_t(yt)
    opt = make_optimizer(cfg, net.parameters())
    criterion = loss_fn(cfg.loss, cfg.hinge_margin)
    steps, next_batch = batch_schedule(len(X), cfg)
    marks = set(record_steps(steps).tolist())
    losses = torch.empty(steps, dtype=torch.float64, device=dev)
    curve = {"step": [], "train": [], "test": []}
    check_every = 1 if dev.type == "cpu" else 64  # a finiteness check is a CPU-GPU sync point
    def full(A, B):
        with torch.no_grad():
            return float(criterion(net(A), B))
    for t in range(steps):
        idx = torch.as_tensor(next_batch(t), device=dev)
        xb, yb = X[idx], y[idx]
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, t)
        # forward
        L = criterion(net(xb), yb)
        losses[t] = L.detach()
        if t in marks:
            record(curve, t, full(X, y), full(Xt, yt))
        if t % check_every == 0 and not torch.isfinite(losses[max(0, t + 1 - check_every):t + 1]).all():
            return net, truncate_at_nonfinite(losses[:t + 1].cpu().numpy()), curve
        # backward
        opt.zero_grad(set_to_none=True)
        (L if cfg.mean_gradient else L * len(idx)).backward()
        # update
        opt.step()
    record(curve, steps, full(X, y), full(Xt, yt))
    return net, truncate_at_nonfinite(losses.cpu().numpy()), curve


def truncate_at_nonfinite(history: np.ndarray) -> np.ndarray:
    """The history up to and including its first NaN/Inf, as the numpy loop stops there."""
    bad = np.flatnonzero(~np.isfinite(history))
    return history[:bad[0] + 1] if len(bad) else history
