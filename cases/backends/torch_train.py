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
    """The torch.optim optimizer of ``cfg`` (what a user would build; train uses :class:`Update`)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


class Update:
    """torch.optim's SGD/Adam/AdamW update rules as a few _foreach ops on all tensors at once.

    The same formulas as torch.optim (momentum buffer starts at the first
    gradient, Adam's L2 vs AdamW's decoupled decay), without torch.optim's
    per-step bookkeeping (param groups, state dicts, grad-mode guards): on
    the tiny nets of the cases that bookkeeping costs more than the math.
    """

    def __init__(self, cfg, params):
        self.cfg, self.params, self.t = cfg, list(params), 0
        self.buf = None                                   # SGD momentum, Adam first moment
        self.sq = [torch.zeros_like(p) for p in self.params] if cfg.optimizer != "sgd" else None

    @torch.no_grad()
    def __call__(self, grads, lr: float) -> None:
        cfg, params, self.t = self.cfg, self.params, self.t + 1
        if cfg.weight_decay and cfg.optimizer == "adamw":
            torch._foreach_mul_(params, 1 - lr * cfg.weight_decay)
        elif cfg.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=cfg.weight_decay)
        if cfg.optimizer == "sgd":
            self.sgd(grads, lr)
        else:
            self.adam(grads, lr)

    def sgd(self, grads, lr):
        if self.cfg.momentum:
            if self.buf is None:
                self.buf = [g.clone() for g in grads]
            else:
                torch._foreach_mul_(self.buf, self.cfg.momentum)
                torch._foreach_add_(self.buf, grads)
            grads = self.buf
        torch._foreach_add_(self.params, grads, alpha=-lr)

    def adam(self, grads, lr):
        (b1, b2), t = self.cfg.betas, self.t
        if self.buf is None:
            self.buf = [torch.zeros_like(p) for p in self.params]
        torch._foreach_lerp_(self.buf, grads, 1 - b1)
        torch._foreach_mul_(self.sq, b2)
        torch._foreach_addcmul_(self.sq, grads, grads, value=1 - b2)
        denom = torch._foreach_sqrt(self.sq)
        torch._foreach_div_(denom, (1 - b2 ** t) ** 0.5)
        torch._foreach_add_(denom, self.cfg.eps)
        torch._foreach_addcdiv_(self.params, self.buf, denom, value=-lr / (1 - b1 ** t))


def check_device(device: str) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but torch sees no CUDA device; "
                         "use device='cpu'")
    return dev


def forward(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """net(x) without nn.Module.__call__'s hook handling: the same ops, ~3 us less per module."""
    for m in net:
        x = m.forward(x)
    return x


def train(cfg, X, y, Xt, yt, model=None, *, record_curve=True):
    """Train the torch module of ``cfg``; returns (module, per-step losses, recorded curve).

    Gradients come from autograd (``torch.autograd.grad``), the update from
    :class:`Update`. ``record_curve=False`` skips the curve's full-set
    evaluations, for benchmarks.
    """
    from cases.config import batch_schedule, initial_model, lr_at, record_steps
    from cases.backends.numpy_train import record
    dev, dt = check_device(cfg.device), DTYPES[cfg.dtype]
    net = model if model is not None else from_numpy(initial_model(cfg), dev, dt)
    as_t = lambda a: torch.as_tensor(a, device=dev, dtype=dt if a.dtype.kind == "f" else None)  # noqa
    X, y, Xt, yt = as_t(X), as_t(y), as_t(Xt), as_t(yt)
    params = list(net.parameters())
    update = Update(cfg, params)
    criterion = loss_fn(cfg.loss, cfg.hinge_margin)
    steps, next_batch = batch_schedule(len(X), cfg)
    full_batch = cfg.batch_size is None or cfg.batch_size >= len(X)
    marks = set(record_steps(steps).tolist()) if record_curve else set()
    losses = torch.empty(steps, dtype=torch.float64, device=dev)
    curve = {"step": [], "train": [], "test": []}
    check_every = 1 if dev.type == "cpu" else 64  # a finiteness check is a CPU-GPU sync point
    def full(A, B):
        with torch.no_grad():
            return float(criterion(forward(net, A), B))
    for t in range(steps):
        if full_batch:
            xb, yb = X, y
        else:
            idx = torch.as_tensor(next_batch(t), device=dev)
            xb, yb = X[idx], y[idx]
        if cfg.layerwise_update:              # seed 002's interleaved backward and update
            layerwise_step(net, xb, yb, criterion, 1 if cfg.mean_gradient else len(xb),
                           lr_at(cfg, t), losses, t)
            if not torch.isfinite(losses[t]):
                return net, truncate_at_nonfinite(losses[:t + 1].cpu().numpy()), curve
            continue
        # forward
        L = criterion(forward(net, xb), yb)
        losses[t] = L.detach()
        if t in marks:
            record(curve, t, full(X, y), full(Xt, yt))
        if t % check_every == 0 and not torch.isfinite(losses[max(0, t + 1 - check_every):t + 1]).all():
            return net, truncate_at_nonfinite(losses[:t + 1].cpu().numpy()), curve
        # backward
        grads = torch.autograd.grad(L if cfg.mean_gradient else L * len(xb), params)
        # update
        update(grads, lr_at(cfg, t))
    if record_curve:
        record(curve, steps, full(X, y), full(Xt, yt))
    return net, truncate_at_nonfinite(losses.cpu().numpy()), curve


def layerwise_step(net, xb, yb, criterion, scale, lr, losses, t) -> None:
    """numpy_train.step_layerwise in torch: autograd through one Linear+activation block at a
    time, each block stepping before the gradient goes on through its updated weight."""
    blocks = blocks_of(net)
    zs, hs, h = [], [], xb
    for block in blocks:                        # forward, cut after every block
        z = block[0].forward(h.detach())
        zs.append(z)
        h = z
        for m in block[1:]:
            h = m.forward(h)
        hs.append(h)
    L = criterion(hs[-1], yb)
    losses[t] = L.detach()
    g, = torch.autograd.grad(L * scale, hs[-1])
    for block, z, h in zip(reversed(blocks), reversed(zs), reversed(hs)):
        lin = block[0]
        gz, gW, gb = torch.autograd.grad(h, (z, lin.weight, lin.bias), g)
        with torch.no_grad():
            lin.weight -= lr * gW
            lin.bias -= lr * gb
            g = gz @ lin.weight


def blocks_of(net: nn.Sequential) -> list:
    """[[Linear, activation?], ...]: the modules of each layer."""
    blocks = []
    for m in net:
        if isinstance(m, nn.Linear):
            blocks.append([m])
        else:
            blocks[-1].append(m)
    return blocks


def truncate_at_nonfinite(history: np.ndarray) -> np.ndarray:
    """The history up to and including its first NaN/Inf, as the numpy loop stops there."""
    bad = np.flatnonzero(~np.isfinite(history))
    return history[:bad[0] + 1] if len(bad) else history
