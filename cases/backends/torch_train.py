"""The torch backend: the same runs, trained the way a user writes them in torch.

The module is a plain ``nn.Sequential`` of ``nn.Linear`` and activation modules
(torch_modules.py, ``MLP.to_torch``), the loss is diagnostics/losses.py's
(:func:`loss_fn`), the optimizer is ``torch.optim``'s SGD, Adam or AdamW built from
the config (:func:`make_optimizer`), and a step is ``zero_grad()``, the forward,
``loss.backward()``, ``step()``: what ``diagnose()`` and ``watch()`` see is what a
user's loop gives them (``train(..., watched=True)`` records a run with
``diagnostics.watch``, as the casebook does). The initial weights are copied from the numpy backend's
seeded init, so both backends start from the same point; torch's own RNG decides
nothing (nn.Linear's own init draws from it, and is overwritten).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn

from cases.backends.numpy_mlp import MLP
from cases.backends.numpy_ops import LOSSES
from cases.backends.schedule import (batch_schedule, initial_model, lr_at, new_curve, record,
                                     record_steps)
from cases.backends.torch_modules import DTYPES
from diagnostics.losses import hinge, torch_loss
from diagnostics.watch import watch

GPU_CHECK_EVERY = 64  # steps between a GPU run's finiteness checks: each is a CPU-GPU sync


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
    as numpy_ops.loss_and_grad's."""
    if name == "hinge":
        return functools.partial(hinge, margin=margin)
    if name not in LOSSES:
        raise ValueError(f"loss {name!r} is unknown; accepted: {LOSSES}")
    return torch_loss(name)


def make_optimizer(cfg, params) -> torch.optim.Optimizer:
    """torch.optim's optimizer of ``cfg``: SGD (momentum, L2 weight decay), Adam (L2 weight
    decay) or AdamW (decoupled weight decay); the lr is set per step (:func:`set_lr`)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    Adam = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """The step's lr (schedule.lr_at), as both loops take it: a float, not a scheduler's
    product of factors, so numpy and torch use the same number."""
    for group in opt.param_groups:
        group["lr"] = lr


def check_device(device: str) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but torch sees no CUDA device; "
                         "use device='cpu'")
    return dev


def train(cfg, X, y, Xt, yt, model=None, *, record_curve=True, watched=False):
    """Train the torch module of ``cfg``; returns (module, per-step losses, recorded curve).

    ``record_curve=False`` skips the curve's full-set evaluations, for benchmarks. The
    history stops at its first non-finite loss. ``watched=True`` records the run with
    ``diagnostics.watch`` (its hooks only observe: the same bits) and returns a fourth item,
    the recording's ``Timeline`` (None for seed 002's layerwise loop, which has no optimizer).
    """
    run = Run(cfg, X, y, Xt, yt, model, record_curve)
    if cfg.layerwise_update:
        (history, completed), timeline = layerwise_loop(run), None
    else:
        (history, completed), timeline = plain_loop(run, watched)
    if completed:
        run.record_curve_at(run.steps)      # record_steps ends at steps: the trained model
    trained = run.net, truncate_at_nonfinite(history), run.curve
    return (*trained, timeline) if watched else trained


def plain_loop(run, watched: bool = False) -> tuple:
    """zero_grad, forward, backward, step (and ``recording.log(L)``, watched). Returns
    ((history, whether every step ran), the watched run's Timeline or None)."""
    opt = make_optimizer(run.cfg, run.net.parameters())
    if not watched:
        return steps(run, opt), None
    with watch(run.net, opt) as recording:
        ran = steps(run, opt, recording)
    return ran, recording.timeline()


def steps(run, opt, recording=None) -> tuple:
    """The steps of the plain loop. Returns (history, whether every step ran)."""
    cfg, net, criterion, losses = run.cfg, run.net, run.criterion, Losses(run.steps, run.dev)
    for t in range(run.steps):
        X, y = run.batch(t)
        set_lr(opt, lr_at(cfg, t))
        opt.zero_grad()
        # forward
        L = criterion(net(X), y)
        run.record_curve_at(t)              # the full losses before this step's update
        if not losses.log(t, L):            # a diverged run stops before its update
            if recording is not None:
                recording.log(L)            # the non-finite loss, at a step never taken
            return losses.upto(t), False
        # backward: the mean loss's gradient, or the summed loss's (seed 002)
        (L if cfg.mean_gradient else L * len(X)).backward()
        # update
        opt.step()
        if recording is not None:
            recording.log(L)
    return losses.upto(run.steps - 1), True


class Losses:
    """The per-step losses. On the CPU ``L.item()`` is no sync point, so every loss is read
    and checked as it comes; on a GPU they stay on the device and are checked every
    GPU_CHECK_EVERY steps."""

    def __init__(self, steps: int, dev: torch.device):
        self.on_cpu = dev.type == "cpu"
        self.values = np.empty(steps) if self.on_cpu else \
            torch.empty(steps, dtype=torch.float64, device=dev)

    def log(self, t: int, L: torch.Tensor) -> bool:
        """Keep step t's loss; False when a loss up to t is known to be non-finite."""
        if self.on_cpu:
            self.values[t] = loss = L.item()
            return math.isfinite(loss)
        self.values[t] = L.detach()
        if t % GPU_CHECK_EVERY:
            return True
        return bool(torch.isfinite(self.values[max(0, t + 1 - GPU_CHECK_EVERY):t + 1]).all())

    def upto(self, t: int) -> np.ndarray:
        kept = self.values[:t + 1]
        return kept if self.on_cpu else kept.cpu().numpy()


class Run:
    """One training run's module, tensors, loss, batches and curve, shared by the loops."""

    def __init__(self, cfg, X, y, Xt, yt, model, record_curve: bool):
        self.cfg, self.dev, dt = cfg, check_device(cfg.device), DTYPES[cfg.dtype]
        self.net = model if model is not None else from_numpy(initial_model(cfg), self.dev, dt)
        self.X, self.y, self.Xt, self.yt = (as_tensor(a, self.dev, dt) for a in (X, y, Xt, yt))
        self.criterion = loss_fn(cfg.loss, cfg.hinge_margin)
        self.steps, self.next_batch = batch_schedule(len(self.X), cfg)
        self.full_batch = cfg.batch_size is None or cfg.batch_size >= len(self.X)
        self.marks = set(record_steps(self.steps).tolist()) if record_curve else set()
        self.curve = new_curve()

    def batch(self, t):
        """(X, y) of step t: the whole set, or a copy of the rows batch_schedule picks."""
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
            return float(self.criterion(self.net(A), B))


def as_tensor(a: np.ndarray, dev, dt) -> torch.Tensor:
    """A data array on ``dev``: floats as ``dt``, class indices as they are."""
    return torch.as_tensor(a, device=dev, dtype=dt if a.dtype.kind == "f" else None)


def layerwise_loop(run) -> tuple:
    """Seed 002's interleaved backward and update (:func:`layerwise_step`). Returns (history,
    whether every step ran)."""
    cfg, losses = run.cfg, Losses(run.steps, torch.device("cpu"))
    for t in range(run.steps):
        X, y = run.batch(t)
        run.record_curve_at(t)
        L = layerwise_step(run.net, X, y, run.criterion, 1 if cfg.mean_gradient else len(X),
                           lr_at(cfg, t))
        if not losses.log(t, L):
            return losses.upto(t), False
    return losses.upto(run.steps - 1), True


def layerwise_step(net, X, y, criterion, scale, lr) -> torch.Tensor:
    """numpy_train.step_layerwise in torch: autograd through one Linear+activation block at a
    time, each block stepping before the gradient goes on through its updated weight. Returns
    the loss; a non-finite one stops before its update, as the numpy loop does."""
    blocks = blocks_of(net)
    zs, hs, h = [], [], X
    for block in blocks:                        # forward, cut after every block
        z = block[0](h.detach())
        zs.append(z)
        h = z
        for m in block[1:]:
            h = m(h)
        hs.append(h)
    L = criterion(hs[-1], y)
    if not torch.isfinite(L):
        return L
    g, = torch.autograd.grad(L * scale, hs[-1])
    for block, z, h in zip(reversed(blocks), reversed(zs), reversed(hs)):
        lin = block[0]
        gz, gW, gb = torch.autograd.grad(h, (z, lin.weight, lin.bias), g)
        with torch.no_grad():
            lin.weight -= lr * gW
            lin.bias -= lr * gb
            g = gz @ lin.weight
    return L


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
