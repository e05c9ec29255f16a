"""What the loss history says: oscillation without progress, or a plateau far above zero."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import FAR_ABOVE_ZERO, MIN_HISTORY
from diagnostics.probe import Probe, ratio
from diagnostics.report import Finding

WINDOW = 200            # the last steps judged: long enough for a trend, short enough to be "now"
MIN_DROP = 0.05         # the second half of the window must be 5% below the first to be a trend
ANTICORRELATED = -0.3   # lag-1 autocorrelation: up-down-up (GD overshoot) is < 0, batch noise ~ 0
MIN_SWING = 0.02        # the oscillation must move the loss by 2% of its level (std/mean)
FLAT = 0.01             # a plateau moves by less than 1% of its level over the window


def window(probe: Probe) -> np.ndarray | None:
    h = probe.history
    if h is None:
        return None
    h = h[np.isfinite(h)]
    w = h[-min(WINDOW, len(h)):]
    return w if len(w) >= MIN_HISTORY else None


def drop(w: np.ndarray) -> float:
    """Relative fall of the mean loss from the first half of the window to the second."""
    a, b = np.mean(w[:len(w) // 2]), np.mean(w[len(w) // 2:])
    return float((a - b) / a) if a > 0 else 0.0


def lag1_autocorrelation(w: np.ndarray) -> float:
    d = w - w.mean()
    denom = float(np.dot(d, d))
    return float(np.dot(d[:-1], d[1:]) / denom) if denom > 0 else 0.0


def distinct_values(w: np.ndarray) -> int:
    return len(np.unique(np.round(w / max(np.abs(w).max(), 1e-300), 9)))


def check_loss_oscillation(probe: Probe) -> Finding | None:
    w = window(probe)
    if w is None or w.mean() <= 0:
        return None
    swing, rho, fall = float(w.std() / w.mean()), lag1_autocorrelation(w), drop(w)
    level = ratio(float(w.mean()), probe.baseline_loss)
    if swing < MIN_SWING or rho > ANTICORRELATED or fall > MIN_DROP or level < FAR_ABOVE_ZERO:
        return None
    return Finding(
        "loss-oscillation", "warning",
        f"The loss jumps up and down step after step without a downward trend over the last "
        f"{len(w)} steps: the steps overshoot. Found lag-1 autocorrelation {rho:.2f}, swing "
        f"{swing:.1%} of the level, {distinct_values(w)} distinct values, trend {-fall:+.1%}.",
        {"window": len(w), "lag1_autocorrelation": rho, "relative_swing": swing,
         "distinct_values": distinct_values(w), "trend": -fall, "level_ratio": level,
         "min": float(w.min()), "max": float(w.max())},
        "Lower the learning rate (below 2 / sharpness) or average the gradient over the batch.",
        None)


def check_loss_plateau(probe: Probe) -> Finding | None:
    w = window(probe)
    if w is None or w.mean() <= 0:
        return None
    move = float(np.ptp(w) / w.mean())
    level = ratio(float(w.mean()), probe.baseline_loss)
    if move >= FLAT or level < FAR_ABOVE_ZERO:
        return None
    return Finding(
        "loss-plateau", "warning",
        f"The loss has stopped moving far above zero over the last {len(w)} steps. Found a level "
        f"of {w.mean():.4g} ({level:.0%} of a constant predictor's {probe.baseline_loss:.4g}), "
        f"moving by {move:.2%}.",
        {"window": len(w), "level": float(w.mean()), "level_ratio": level, "relative_move": move,
         "constant_predictor_loss": probe.baseline_loss},
        "Look at the other findings for the cause (capacity, dead or saturated units, learning "
        "rate); more steps will not help.",
        None)
