"""The named losses in torch (mean over samples, as the project's numpy losses), and what the
best constant prediction scores on each: the yardstick for "training has learned nothing"."""

from __future__ import annotations

import numpy as np

PROB_EPS = 1e-12      # clip the constant predictor's probabilities (float64 numpy) off 0 and 1


def torch_loss(name: str):
    """(out (n, k), y) -> scalar tensor; y is (n,) int64 for index losses, (n, k) float otherwise."""
    import torch
    from torch.nn import functional as F
    def bce(out, y):
        # outputs outside [0, 1] are a finding, not a crash; torch's BCELoss clamps each log at
        # -100, so a float32 output of exactly 1.0 (a confident, healthy classifier) stays finite
        # targets outside [0, 1] are clamped here too: loss-target-mismatch names them
        return F.binary_cross_entropy(out.clamp(0, 1), y.clamp(0, 1))
    return {
        "mse": F.mse_loss,
        "half_mse": lambda out, y: 0.5 * ((out - y) ** 2).sum() / out.shape[0],
        "cross_entropy": F.cross_entropy,
        "nll": F.nll_loss,
        "bce": bce,
        "bce_with_logits": F.binary_cross_entropy_with_logits,
        "hinge": hinge,
    }[name]


def hinge(out, y, margin: float = 1.0):
    """sum_{j != y} max(0, margin + s_j - s_y), mean over rows, as the numpy backend's; written
    out because F.multi_margin_loss has no double backward, which the sharpness needs."""
    import torch
    s_y = out.gather(1, y.reshape(-1, 1))
    m = torch.relu(margin + out - s_y)
    return (m.sum() - margin * len(out)) / len(out)   # the j = y terms are each max(0, margin)


def constant_loss(name: str, y: np.ndarray, width: int) -> float:
    """The loss of the best prediction that ignores the input."""
    if name in ("mse", "half_mse"):
        var = np.mean((y - y.mean(axis=0)) ** 2, axis=0)
        return float(var.mean() if name == "mse" else 0.5 * var.sum())
    if name in ("cross_entropy", "nll"):   # nll: the best constant log-probabilities
        p = np.bincount(y, minlength=width) / len(y)
        return float(-np.sum(p[p > 0] * np.log(p[p > 0])))
    if name in ("bce", "bce_with_logits"):
        p = np.clip(y.mean(axis=0), PROB_EPS, 1 - PROB_EPS)
        return float(np.mean(-(p * np.log(p) + (1 - p) * np.log1p(-p))))
    if name == "hinge":
        return float(width - 1)  # all scores equal: every wrong class costs the margin, 1
    raise ValueError(f"loss {name!r} has no constant baseline")
