"""The largest Hessian eigenvalue of the mean loss over all parameters (the "sharpness").

Gradient descent with step lr is stable along a direction of curvature lambda only when
lr * lambda < 2; so 2 / sharpness is the stability edge. Computed from Hessian-vector products
(double backward) on a deep copy: exactly from the dense Hessian for small models, by Lanczos
(scipy's ARPACK) otherwise. Plain power iteration was dropped: when the top two eigenvalues are
close (3.58 and 3.89 on a 1-4-1 tanh net) a change-based stop lands on the second one, 8% low.
"""

from __future__ import annotations

import numpy as np
import torch

DENSE_UP_TO = 64        # parameters: n Hessian-vector products give the exact spectrum cheaply
LANCZOS_TOL = 1e-4      # relative accuracy of the eigenvalue; the verdict compares lr*lambda to 2
LANCZOS_VECTORS = 20    # Krylov basis size: a small MLP's top eigenvalue converges in ~20-60 products
MAX_RESTARTS = 30       # ARPACK restarts before giving up (then its best estimate is used)
SHARPNESS_ROWS = 512    # rows for the Hessian: curvature is an average, a subsample estimates it
START_SEED = 0          # the start vector comes from a local generator: global RNGs untouched


def top_eigenvalue(net: torch.nn.Module, X: torch.Tensor, objective) -> float:
    """Largest (algebraic) eigenvalue of the Hessian of ``objective(net(X[rows]), rows)``."""
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        return float("nan")
    rows = evenly_spaced(len(X), SHARPNESS_ROWS).to(X.device) if len(X) > SHARPNESS_ROWS else None
    with torch.enable_grad():
        L = objective(net(X if rows is None else X[rows]), rows)
        g = torch.autograd.grad(L, params, create_graph=True)
        matvec = hessian_product(g, params)
        n = sum(p.numel() for p in params)
        return dense_top(matvec, n) if n <= DENSE_UP_TO else lanczos_top(matvec, n)


def hessian_product(g, params):
    """v (flat float64 numpy) -> H v (flat float64 numpy)."""
    sizes = [p.numel() for p in params]
    def matvec(v):
        v = torch.as_tensor(np.ravel(v), dtype=params[0].dtype).to(params[0].device)
        vs = [x.reshape(p.shape) for x, p in zip(torch.split(v, sizes), params)]
        Hv = torch.autograd.grad(g, params, grad_outputs=vs, retain_graph=True, allow_unused=True)
        Hv = [torch.zeros_like(p) if h is None else h for h, p in zip(Hv, params)]
        return torch.cat([h.reshape(-1) for h in Hv]).detach().double().cpu().numpy()
    return matvec


def dense_top(matvec, n: int) -> float:
    H = np.stack([matvec(e) for e in np.eye(n)])
    return float(np.linalg.eigvalsh((H + H.T) / 2)[-1])


def lanczos_top(matvec, n: int) -> float:
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(START_SEED).standard_normal(n)
    try:
        vals = eigsh(op, k=1, which="LA", v0=v0, tol=LANCZOS_TOL, ncv=min(n - 1, LANCZOS_VECTORS),
                     maxiter=MAX_RESTARTS, return_eigenvectors=False)
    except ArpackNoConvergence as e:
        vals = e.eigenvalues
    return float(vals[-1]) if len(vals) else float("nan")


def evenly_spaced(n: int, k: int) -> torch.Tensor:
    return torch.linspace(0, n - 1, k).round().long()
