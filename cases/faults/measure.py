"""What a trained run achieved, in numbers that compare across losses and programs.

``loss_share``: the final training loss (on every training row, eval mode, mean reduction)
as a share of the best constant predictor's loss under the same loss: 1.0 means the net
learned nothing a constant could not say, 0 a perfect fit.
``score``: held-out accuracy (classifiers) or R^2 (regression): what a user would look at.
Both are None when the run is not finite (NaN/Inf in the parameters or the outputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from cases.faults.programs import dataset
from cases.faults.train import Trained, loss_value
from diagnostics import losses


@dataclass(frozen=True)
class Outcome:
    finite: bool
    loss_share: float | None
    score: float | None


def outcome(run: Trained) -> Outcome:
    with torch.no_grad():
        run.model.eval()
        out, out_test = run.model(run.data.X), run.model(run.data.X_test)
        run.model.train()
    params_finite = all(torch.isfinite(p).all() for p in run.model.parameters())
    if not (params_finite and torch.isfinite(out).all() and torch.isfinite(out_test).all()):
        return Outcome(False, None, None)
    share = float(intended_loss(run.program, out, run.data.y)) / constant_loss(run.program, run.data.y)
    return Outcome(True, share, held_out_score(run, out_test))


def intended_loss(program, out: torch.Tensor, y: torch.Tensor):
    """The program's loss, except nll: it stands for the cross-entropy of log-probabilities, which
    nll of outputs that are not log-probabilities (a missing log_softmax) is not."""
    if program.loss == "nll":
        return F.cross_entropy(out, y)
    return loss_value(program, out, y)


def constant_loss(program, y: torch.Tensor) -> float:
    """The loss of the best constant output (class prior, base rate, or the targets' mean) under
    the loss the program means (nll stands for the cross-entropy): diagnostics.losses' own."""
    name = "cross_entropy" if program.takes_class_indices else \
        "bce_with_logits" if program.loss == "bce_with_logits" else "mse"
    y = y.numpy()
    width = int(y.max()) + 1 if y.ndim == 1 else y.shape[1]
    return losses.constant_loss(name, y if y.ndim == 1 else y.astype(np.float64), width)


def held_out_score(run: Trained, out: torch.Tensor) -> float:
    """Accuracy of the predicted class (argmax, logit > 0, or the rounded class value), or R^2."""
    y, program = run.data.y_test, run.program
    if program.takes_class_indices:
        return float((out.argmax(dim=1) == y).double().mean())
    if program.loss == "bce_with_logits":
        return float(((out > 0).double() == y).double().mean())
    if program.class_values:
        k = dataset(program.data).classes
        return float((out.round().clamp(0, k - 1) == y).double().mean())
    residual = ((out - y) ** 2).double().mean(dim=0)
    return float((1 - residual / y.double().var(dim=0, unbiased=False)).mean())


def as_plain(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)
