"""The learning rate against the stability edge 2 / lambda_max of gradient descent."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import failing_evidence, training_failing
from diagnostics.checks.history import check_loss_oscillation
from diagnostics.probe import Probe
from diagnostics.report import Finding

ADAPTIVE = ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop")
# Adaptive methods rescale each step, so lr * lambda_max says nothing about their stability.
EDGE = 2.0              # GD on a quadratic diverges along curvature lambda when lr * lambda > 2


def unsettled(probe: Probe) -> bool:
    """The run shows instability: its history oscillates or blows up; without a history, it fails.
    A history that settled proves the lr was stable where it ended (and edge-of-stability
    training sits at lr * lambda ~ 2 yet converges), so it is not flagged."""
    if probe.history is None:
        return training_failing(probe)
    return bool(check_loss_oscillation(probe)) or not np.all(np.isfinite(probe.history))


def check_unstable_learning_rate(probe: Probe) -> Finding | None:
    if not probe.lr or probe.optimizer in ADAPTIVE or not probe.finite or probe.sharpness is None:
        return None
    if not unsettled(probe):
        return None

    lam = probe.sharpness()
    edge = EDGE * (1 + probe.momentum)  # heavy-ball momentum widens the stable range to 2(1+mu)
    if not np.isfinite(lam) or probe.lr * lam <= edge:
        return None
    return Finding(
        "unstable-learning-rate", "error",
        f"The learning rate is above the stability edge of gradient descent (lr x largest Hessian "
        f"eigenvalue > {edge:g}), so steps overshoot. Found lr {probe.lr:.4g} x lambda_max "
        f"{lam:.4g} = {probe.lr * lam:.3g}; the edge is lr < {edge / lam:.4g}.",
        dict(failing_evidence(probe), lr=probe.lr, lambda_max=lam, lr_times_lambda=probe.lr * lam,
             stable_lr_below=edge / lam, momentum=probe.momentum),
        f"Use a learning rate below {edge / lam:.3g} (or average the gradient over the batch, "
        "which divides the effective step by the batch size).",
        None)
