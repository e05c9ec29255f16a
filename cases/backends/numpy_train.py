"""The numpy training loop: forward, loss, backward, update, one step at a time.

The optimizers follow torch.optim's update rules exactly (SGD's momentum
buffer starts at the first gradient; Adam's weight decay is L2 added to the
gradient, AdamW's is decoupled), so a run here and the same run in torch give
the same loss trace.
"""

from __future__ import annotations

import math

import numpy as np

from cases.backends.numpy_mlp import Cache
from cases.backends.numpy_ops import activation_backward, loss_and_grad
from cases.backends.schedule import (batch_schedule, initial_model, lr_at, new_curve, record,
                                     record_steps)


def per_parameter(lr, params) -> list:
    """One lr per parameter: ``lr`` itself when it is a list (run_batched gives each stacked
    parameter its models' lrs, shaped to broadcast), else the one float for all."""
    return lr if isinstance(lr, list) else [lr] * len(params)


def in_dtype(factor, p):
    """A step's factor as numpy applies a Python float to ``p``: rounded once to p's dtype.
    run_batched's per-model factors are float64 arrays, which would compute a float32 run's
    update in float64; cast, each model's update is its own run's bits."""
    return factor.astype(p.dtype, copy=False) if isinstance(factor, np.ndarray) else factor


class SGD:
    def __init__(self, params, momentum=0.0, weight_decay=0.0):
        self.params, self.mu, self.wd = params, momentum, weight_decay
        self.buf = [None] * len(params)

    def step(self, grads, lr):
        for i, (p, g, lr) in enumerate(zip(self.params, grads, per_parameter(lr, self.params))):
            if self.wd:
                g = g + self.wd * p
            if self.mu:
                self.buf[i] = g.copy() if self.buf[i] is None else self.mu * self.buf[i] + g
                g = self.buf[i]
            p -= in_dtype(lr, p) * g


class Adam:
    def __init__(self, params, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        self.params, (self.b1, self.b2), self.eps = params, betas, eps
        self.wd, self.decoupled = weight_decay, decoupled
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads, lr):
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, g, m, v, lr in zip(self.params, grads, self.m, self.v,
                                  per_parameter(lr, self.params)):
            if self.wd and self.decoupled:
                p *= in_dtype(1 - lr * self.wd, p)  # AdamW: shrink the weights, not the gradient
            elif self.wd:
                g = g + self.wd * p            # Adam: L2 folded into the gradient
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= in_dtype(lr / c1, p) * m / (np.sqrt(v) / np.sqrt(c2) + self.eps)


def make_optimizer(cfg, params):
    if cfg.optimizer == "sgd":
        return SGD(params, cfg.momentum, cfg.weight_decay)
    return Adam(params, cfg.betas, cfg.eps, cfg.weight_decay, decoupled=cfg.optimizer == "adamw")


def train(cfg, X, y, Xt, yt, model=None, *, record_curve=True):
    """Train the numpy MLP of ``cfg``; returns (model, per-step losses, recorded curve).

    ``record_curve=False`` skips the ~100 full-set evaluations of the curve
    (it stays empty): benchmarks time the steps alone with it.
    """
    net = model if model is not None else initial_model(cfg)
    params = net.parameters()
    opt = make_optimizer(cfg, params)
    steps, next_batch = batch_schedule(len(X), cfg)
    marks = set(record_steps(steps).tolist()) if record_curve else set()
    history, curve = np.empty(steps), new_curve()
    full = lambda A, B: loss_and_grad(cfg.loss, net.forward(A), B, cfg.hinge_margin)[0]  # noqa
    full_batch = cfg.batch_size is None or cfg.batch_size >= len(X)  # no per-step copy of X
    with np.errstate(all="ignore"):  # overflow is a finding of the run, not an error here
        for t in range(steps):
            xb, yb = (X, y) if full_batch else (X[(idx := next_batch(t))], y[idx])
            # forward
            cache = Cache()
            out = net.forward(xb, cache)
            L, dout = loss_and_grad(cfg.loss, out, yb, cfg.hinge_margin)
            history[t] = L
            if t in marks:
                record(curve, t, full(X, y), full(Xt, yt))
            if not math.isfinite(L):           # a Python float check: ~10x cheaper than numpy's
                return net, history[:t + 1], curve
            # backward
            if not cfg.mean_gradient:
                dout = dout * len(xb)         # the gradient of the summed loss
            if cfg.layerwise_update:          # backward and update interleaved (seed 002)
                step_layerwise(net, cache, dout, lr_at(cfg, t))
                continue
            dW, db, _ = net.backward(cache, dout)
            # update
            opt.step([g for pair in zip(dW, db) for g in pair], lr_at(cfg, t))
        if record_curve:
            record(curve, steps, full(X, y), full(Xt, yt))
    return net, history, curve


def step_layerwise(net, cache, dout, lr):
    """Seed 002's hand-written loop: from the output down, each layer takes its SGD step and
    then passes the gradient on through its updated weights, not the ones of the forward pass.

    Not a gradient step of the loss for any layer but the last: kept as an option because
    that loop's failure depends on it (cases/bifurcation.py).
    """
    g = dout
    for i in reversed(range(len(net.W))):
        g = activation_backward(net.activations[i], cache.z[i], cache.h[i + 1], g, net.slope)
        net.W[i] -= lr * (cache.h[i].T @ g)
        net.b[i] -= lr * g.sum(axis=0)
        g = g @ net.W[i].T

