"""Inputs and targets far from unit scale."""

from __future__ import annotations

import numpy as np

from diagnostics.probe import Probe, REGRESSION_LOSSES
from diagnostics.report import Finding

TOO_LARGE = 20.0        # column RMS 20x a standardised feature's drives fan-in scaled layers hard
TOO_SMALL = 1e-3        # every column under 1e-3: the inputs barely move the first layer


def column_rms(a: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(np.square(a.reshape(len(a), -1), dtype=np.float64), axis=0))


def check_unscaled_data(probe: Probe) -> Finding | None:
    x = column_rms(probe.X)
    found, ev = [], {"input_rms_max": float(x.max()), "input_rms_min": float(x.min())}
    if x.max() > TOO_LARGE:
        found.append(f"{int(np.sum(x > TOO_LARGE))} of {len(x)} input columns with RMS up to "
                     f"{x.max():.4g}")
    elif x.max() < TOO_SMALL:
        found.append(f"every input column with RMS under {TOO_SMALL:g} (max {x.max():.3g})")
    if probe.loss_name in REGRESSION_LOSSES:
        t = column_rms(probe.y)
        ev["target_rms_max"] = float(t.max())
        if t.max() > TOO_LARGE:
            found.append(f"targets with RMS up to {t.max():.4g}")
    if not found:
        return None
    return Finding(
        "unscaled-data", "warning",
        f"Inputs and regression targets should be near unit scale. Found {'; '.join(found)}.",
        ev, "Standardise each input column (subtract the mean, divide by the std; pixels by 255) "
        "and scale regression targets the same way (and undo it on the predictions).", None)
