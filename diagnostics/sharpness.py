"""The largest Hessian eigenvalue of the mean loss over all parameters (the "sharpness").

Gradient descent with step lr is stable along a direction of curvature lambda only when
lr * lambda < 2; so 2 / sharpness is the stability edge. Computed by power iteration on
Hessian-vector products (double backward), on a deep copy, with a local generator.
"""

from __future__ import annotations

import copy

import torch

POWER_ITERATIONS = 20   # the top eigenvalue of a small MLP's Hessian settles to ~1% in 10-20
RTOL = 1e-3             # stop early once the estimate changes by less than this
SHARPNESS_ROWS = 512    # rows for the Hessian: curvature is an average, a subsample estimates it


def top_eigenvalue(net: torch.nn.Module, X: torch.Tensor, objective) -> float:
    """Largest (algebraic) eigenvalue of the Hessian of ``objective(net(X[rows]), rows)``."""
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        return float("nan")
    rows = evenly_spaced(len(X), SHARPNESS_ROWS).to(X.device) if len(X) > SHARPNESS_ROWS else None
    with torch.enable_grad():
        L = objective(net(X if rows is None else X[rows]), rows)
        g = torch.autograd.grad(L, params, create_graph=True)
        hvp = lambda v: torch.autograd.grad(g, params, grad_outputs=v, retain_graph=True)  # noqa
        lam = power_iteration(hvp, params, shift=0.0)
        if lam < 0:  # the largest |eigenvalue| was negative: iterate on H - lam I for the top one
            lam = power_iteration(hvp, params, shift=lam) + lam
    return lam


def evenly_spaced(n: int, k: int) -> torch.Tensor:
    return torch.linspace(0, n - 1, k).round().long()


def power_iteration(hvp, params, shift: float) -> float:
    gen = torch.Generator().manual_seed(0)  # local: the global torch RNG is never drawn from
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in params]
    v = normalized(v)
    lam = 0.0
    for _ in range(POWER_ITERATIONS):
        Hv = [h if h is not None else torch.zeros_like(x) for h, x in zip(hvp(v), v)]
        Hv = [h - shift * x for h, x in zip(Hv, v)]
        new = float(sum((h * x).sum() for h, x in zip(Hv, v)))
        v = normalized(Hv)
        if abs(new - lam) <= RTOL * abs(new):
            return new
        lam = new
    return lam


def normalized(v):
    norm = torch.sqrt(sum((x * x).sum() for x in v))
    return [x / norm if norm > 0 else x for x in v]
