"""The torch backend: the same runs built from torch.nn and trained with torch.optim.

The module is a plain ``nn.Sequential`` of ``nn.Linear`` and activation
modules, so what ``diagnose()`` sees is what a user would write. The initial
weights are copied from the numpy backend's seeded init, so both backends
start from the same point; torch's own RNG decides nothing (nn.Linear's own
init draws from it, and is overwritten). The modules are built by
torch_modules.py (``MLP.to_torch``), the losses are diagnostics/losses.py's
(:func:`loss_fn`).

On the CPU, :func:`train` takes its gradients from the hand-written backward of
cases/backends/torch_backward.py (autograd's kernels without autograd's engine,
bit for bit ``torch.autograd.grad``; with it a tiny net's step takes 0.3-0.45
of the eager loop's) wherever it covers the module and loss, and from autograd
elsewhere; the update is :class:`Update`, torch.optim's rules.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cases.backends.numpy_mlp import MLP
from cases.backends.numpy_ops import LOSSES
from cases.backends.schedule import (batch_schedule, initial_model, lr_at, new_curve, record,
                                     record_steps)
from cases.backends.torch_backward import manual_backward_for
from cases.backends.torch_modules import DTYPES
from diagnostics.losses import hinge, torch_loss


def from_numpy(net: MLP, device="cpu", dtype=torch.float64) -> nn.Sequential:
    """A torch copy of a numpy MLP: ``net.to_torch(dtype, device)``."""
    return net.to_torch(dtype, device)


def to_numpy(module: nn.Sequential, activations, slope: float = 0.01) -> MLP:
    """A numpy copy of a module built by torch_modules.build_module (or ``MLP.to_torch``)."""
    linears = [m for m in module if isinstance(m, nn.Linear)]
    W = [lin.weight.detach().cpu().numpy().T.copy() for lin in linears]
    b = [lin.bias.detach().cpu().numpy().copy() for lin in linears]
    return MLP(W, b, activations, slope)


def loss_fn(name: str, margin: float = 1.0):
    """(out, y) -> mean loss: diagnostics' torch definitions (diagnostics/losses.py), the same
    as numpy_ops.loss_and_grad's. bce alone is torch's own BCELoss (see BCE below)."""
    if name == "bce":
        return BCE
    if name == "hinge":
        return functools.partial(hinge, margin=margin)
    if name not in LOSSES:
        raise ValueError(f"loss {name!r} is unknown; accepted: {LOSSES}")
    return torch_loss(name)


# diagnostics' bce clamps the probabilities at 1e-12 (as numpy_ops does); the torch backend keeps
# BCELoss, whose log is clamped at -100, because torch_backward's hand-written kernels reproduce
# BCELoss bit for bit. Within (1e-12, 1 - 1e-12) the two agree to rounding.
BCE = F.binary_cross_entropy


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


GPU_CHECK_EVERY = 64  # steps between a GPU run's finiteness checks: each is a CPU-GPU sync


def train(cfg, X, y, Xt, yt, model=None, *, record_curve=True):
    """Train the torch module of ``cfg``; returns (module, per-step losses, recorded curve).

    On the CPU the gradients of the backend's own kinds of module and loss come from
    :class:`~cases.backends.torch_backward.ManualBackward` (autograd's kernels without its
    engine, bit for bit ``torch.autograd.grad``), anything else from autograd; the update
    from :class:`Update`. ``record_curve=False`` skips the curve's full-set evaluations,
    for benchmarks. The history stops at its first non-finite loss.
    """
    run = Run(cfg, X, y, Xt, yt, model, record_curve)
    history, completed = training_loop(run)
    if completed:
        run.record_curve_at(run.steps)      # record_steps ends at steps: the trained model
    return run.net, truncate_at_nonfinite(history), run.curve


def training_loop(run) -> tuple:
    """Runs the steps: layerwise, with the hand-written backward, or with autograd. Returns
    (history, whether every step ran)."""
    if run.cfg.layerwise_update:
        return layerwise_loop(run)
    manual = manual_backward_of(run)
    return manual_loop(run, manual) if manual is not None else autograd_loop(run)


def manual_backward_of(run):
    """The hand-written backward of a CPU run whose module and loss it covers, else None (on
    a GPU manual_loop's per-step loss.item() would be a sync point; autograd_loop checks the
    losses every GPU_CHECK_EVERY steps there)."""
    if run.dev.type != "cpu" or run.cfg.layerwise_update:
        return None
    return manual_backward_for(run.net, run.cfg.loss, run.y)


class Run:
    """One training run's tensors, update, batches and curve, shared by the loops below."""

    def __init__(self, cfg, X, y, Xt, yt, model, record_curve: bool):
        self.cfg, self.dev, dt = cfg, check_device(cfg.device), DTYPES[cfg.dtype]
        self.net = model if model is not None else from_numpy(initial_model(cfg), self.dev, dt)
        self.X, self.y, self.Xt, self.yt = (as_tensor(a, self.dev, dt) for a in (X, y, Xt, yt))
        self.params = list(self.net.parameters())
        self.update = Update(cfg, self.params)
        self.criterion = loss_fn(cfg.loss, cfg.hinge_margin)
        self.steps, self.next_batch = batch_schedule(len(self.X), cfg)
        self.full_batch = cfg.batch_size is None or cfg.batch_size >= len(self.X)
        self.marks = set(record_steps(self.steps).tolist()) if record_curve else set()
        self.curve = new_curve()

    def batch(self, t):
        """(xb, yb) of step t: the whole set, or a copy of the rows batch_schedule picks."""
        if self.full_batch:
            return self.X, self.y
        idx = torch.from_numpy(self.next_batch(t)).to(self.dev)
        return self.X.index_select(0, idx), self.y.index_select(0, idx)

    def record_curve_at(self, t) -> None:
        """The full train and test losses, at the marked steps (before that step's update)."""
        if t in self.marks:
            record(self.curve, t, self.full_loss(self.X, self.y), self.full_loss(self.Xt, self.yt))

    def full_loss(self, A, B) -> float:
        with torch.no_grad():
            return float(self.criterion(forward(self.net, A), B))


def as_tensor(a: np.ndarray, dev, dt) -> torch.Tensor:
    """A data array on ``dev``: floats as ``dt``, class indices as they are."""
    return torch.as_tensor(a, device=dev, dtype=dt if a.dtype.kind == "f" else None)


def manual_loop(run, manual) -> tuple:
    """The steps with ``manual``'s gradients, on the CPU: ``L.item()`` is no sync point there,
    so every loss is checked as it comes. Returns (history, whether every step ran).

    Inference mode (no autograd dispatch at all, ~10% of a tiny step less than no_grad) is
    safe here: its tensors never leave the loop, and in-place updates of the module's
    ordinary parameters are allowed in it.
    """
    cfg, history = run.cfg, np.empty(run.steps)
    with torch.inference_mode():
        for t in range(run.steps):
            xb, yb = run.batch(t)
            L, grads = manual.loss_and_gradients(xb, yb, None if cfg.mean_gradient else len(xb))
            history[t] = loss = L.item()
            run.record_curve_at(t)
            if not math.isfinite(loss):
                return history[:t + 1], False
            run.update(grads, lr_at(cfg, t))
    return history, True


def autograd_loop(run) -> tuple:
    """The steps with autograd's gradients: any module and loss, any device. Returns
    (history, whether every step ran)."""
    cfg, losses = run.cfg, torch.empty(run.steps, dtype=torch.float64, device=run.dev)
    every = 1 if run.dev.type == "cpu" else GPU_CHECK_EVERY
    for t in range(run.steps):
        xb, yb = run.batch(t)
        L = run.criterion(forward(run.net, xb), yb)
        losses[t] = L.detach()
        run.record_curve_at(t)
        if t % every == 0 and not torch.isfinite(losses[max(0, t + 1 - every):t + 1]).all():
            return losses[:t + 1].cpu().numpy(), False
        grads = torch.autograd.grad(L if cfg.mean_gradient else L * len(xb), run.params)
        run.update(grads, lr_at(cfg, t))
    return losses.cpu().numpy(), True


def layerwise_loop(run) -> tuple:
    """Seed 002's interleaved backward and update (:func:`layerwise_step`). Returns (history,
    whether every step ran)."""
    cfg, losses = run.cfg, torch.empty(run.steps, dtype=torch.float64, device=run.dev)
    for t in range(run.steps):
        xb, yb = run.batch(t)
        run.record_curve_at(t)
        layerwise_step(run.net, xb, yb, run.criterion, 1 if cfg.mean_gradient else len(xb),
                       lr_at(cfg, t), losses, t)
        if not torch.isfinite(losses[t]):
            return losses[:t + 1].cpu().numpy(), False
    return losses.cpu().numpy(), True


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
    if not torch.isfinite(L):                   # a diverged run stops before its update,
        return                                  # as the numpy loop does
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
