"""Is training failing? Gradient- and unit-based verdicts are only given when it is, as
AUTOTRAINER and DeepDiagnosis gate theirs: healthy runs have odd-looking statistics too."""

from __future__ import annotations

import numpy as np

from diagnostics.probe import Probe

LEARNED_NOTHING = 0.9     # loss >= 90% of the constant predictor's: (almost) nothing learned
FAR_ABOVE_ZERO = 0.1      # loss >= 10% of the constant predictor's: far from fitting the data
MIN_PROGRESS = 0.05       # the last quarter must add 5% of the run's whole drop to count as progress
MIN_HISTORY = 20          # fewer steps say nothing about a trend
ADAPTIVE = ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop")
# Adaptive methods rescale each step, so lr * lambda_max says nothing about their stability.
CRAWL = 0.01            # lr * lambda_max under 1% of the edge's scale: even the stiffest direction
                        # needs ~100 steps to shrink its error by e; healthy SGD runs sit at 0.1-2
TINY_LOSS = 1e-6          # below this the loss is zero for every purpose here
BEHIND_REFERENCE = 0.25   # the run's loss on X keeps under 75% of the gain over a constant predictor
                          # that the best reference (linear or 15 nearest neighbours) makes on
                          # rows it never saw, while the run trained on these. The 10 healthy
                          # fault-matrix programs measured -5.4 to 0.01 over 3 seeds; frozen hidden
                          # layers 0.46-0.99, a 1-unit bottleneck 0.40-1.3, uniform[0, 1) init on
                          # digits 0.28-0.31
AT_REFERENCE = 0.05       # within 5% of the best reference's gain: the run reached what these rows
                          # allow (the healthy programs measured <= 0.01), so a swinging history
                          # is its batches' noise around that level, not steps that stop learning
                          # (blobs at batch 32: swing 23% of the level, 2% better than the linear fit)
YARDSTICK = 0.9           # a reference is a yardstick only where it beats the constant by 10%
NOISE_Z = 2.0             # the last quarter's gain must exceed 2 standard errors of its mean: a
                          # chaotic loss (std/mean 0.5) whose whole run fell 3% is noise, not progress


def finite_losses(probe: Probe) -> np.ndarray:
    """The history's finite values (none without a history)."""
    h = probe.history
    return np.empty(0) if h is None else h[np.isfinite(h)]


def finite_history(probe: Probe) -> np.ndarray | None:
    h = finite_losses(probe)
    return h if len(h) >= MIN_HISTORY else None


def progress_share(h: np.ndarray, k: int) -> float:
    """How much of the run's total drop the last k steps added (mean of k steps against the k
    before, over the mean of the first steps against the last k). Near 0: stalled; < 0: rising."""
    start = float(np.mean(h[:max(1, len(h) // 20)]))
    before, last = float(np.mean(h[-2 * k:-k])), float(np.mean(h[-k:]))
    total = start - last
    return (before - last) / total if total > 0 else 0.0


def history_improving(probe: Probe) -> bool | None:
    """True/False when the history says whether the loss still falls; None without one."""
    h = finite_history(probe)
    if h is None:
        return None
    k = len(h) // 4
    return bool(progress_share(h, k) >= MIN_PROGRESS and gain_beyond_noise(h, k))


def gain_beyond_noise(h: np.ndarray, k: int) -> bool:
    """The last k steps' mean is below the k before by more than its own noise."""
    gain = float(np.mean(h[-2 * k:-k]) - np.mean(h[-k:]))
    return gain > NOISE_Z * float(np.std(h[-k:])) / np.sqrt(k)


def best_reference(probe: Probe) -> float | None:
    """The lower held-out loss of the linear and the nearest-neighbour fits, when it beats the
    constant predictor's enough to measure a run against; else None."""
    ref = probe.reference
    if ref is None:
        return None
    best = min(ref.linear_cv, ref.neighbours_cv)
    return best if best < YARDSTICK * probe.baseline_loss else None


def reference_shortfall(probe: Probe) -> float | None:
    """How much of the best reference's gain over the constant the run's loss on X misses:
    0 = as good as the reference, 1 = no better than the constant, < 0 = better."""
    best = best_reference(probe)
    if best is None or not np.isfinite(probe.loss):
        return None
    return float((probe.loss - best) / (probe.baseline_loss - best))


def behind_reference(probe: Probe) -> bool:
    """The run is far worse than what a linear or nearest-neighbour fit of the same rows reaches."""
    shortfall = reference_shortfall(probe)
    return shortfall is not None and shortfall >= BEHIND_REFERENCE


def reached_reference(probe: Probe) -> bool:
    """The run's loss on X is as good as the best reference's, or nearly (AT_REFERENCE)."""
    shortfall = reference_shortfall(probe)
    return shortfall is not None and shortfall < AT_REFERENCE


def learned_little(probe: Probe) -> bool:
    """No better than a constant, or far behind what a simple fit of these rows reaches."""
    return probe.loss_ratio >= LEARNED_NOTHING or behind_reference(probe)


def training_failing(probe: Probe) -> bool:
    """The loss is no better than a constant's, far behind a simple fit of the same rows, or far
    above zero and no longer improving."""
    if not np.isfinite(probe.loss) or probe.loss < TINY_LOSS:
        return not np.isfinite(probe.loss)
    r = probe.loss_ratio
    return learned_little(probe) or (r >= FAR_ABOVE_ZERO and history_improving(probe) is not True)


def failing_evidence(probe: Probe) -> dict:
    ev = {"loss": round(probe.loss, 6), "constant_predictor_loss": round(probe.baseline_loss, 6),
          "loss_ratio": round(probe.loss_ratio, 4), "history_improving": history_improving(probe)}
    return dict(ev, **reference_evidence(probe))


def reference_evidence(probe: Probe) -> dict:
    if probe.reference is None:
        return {}
    shortfall = reference_shortfall(probe)
    return dict(probe.reference.as_evidence(),
                reference_shortfall=None if shortfall is None else round(shortfall, 4))


def against_reference(probe: Probe) -> str:
    """' (a linear model on held-out folds of these rows reaches 0.071)', or nothing."""
    ref = probe.reference
    if ref is None:
        return ""
    return (f"; a linear model reaches {ref.linear_cv:.4g} and {ref.k} nearest neighbours "
            f"{ref.neighbours_cv:.4g} on held-out folds of the same rows")


def lr_against_curvature_applies(probe: Probe) -> bool:
    """Plain gradient steps with a known lr on a finite model whose curvature can be measured."""
    return bool(probe.lr) and probe.optimizer not in ADAPTIVE and probe.finite \
        and probe.sharpness is not None


def effective_lr(probe: Probe) -> float:
    """The step gradient descent takes per unit of gradient: lr, or under heavy-ball momentum m
    lr / (1 - m), the steady step its buffer builds along a direction whose gradient holds (SGD
    at lr 0.02 with momentum 0.9 moves like lr 0.2 there; its edge, 2 (1 + m) / lambda, is read
    apart, stability.py)."""
    m = probe.momentum or 0.0
    return probe.lr / (1.0 - m) if 0.0 <= m < 1.0 else probe.lr


def lr_already_tiny(probe: Probe) -> bool:
    """The effective lr x lambda_max under CRAWL: advice to lower the learning rate would
    contradict it."""
    if not lr_against_curvature_applies(probe):
        return False
    lam = probe.sharpness()
    return bool(np.isfinite(lam) and effective_lr(probe) * lam < CRAWL)


def norm_over(arrays: dict, names) -> float:
    """The norm of the named arrays taken together (parameters, gradients), in float64."""
    return float(np.sqrt(sum(np.sum(np.square(arrays[n], dtype=np.float64)) for n in names)))
