"""The data: inputs and targets far from unit scale, targets that X cannot predict."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.record import BLOWUP, STUCK, UNITS, Check, Explains
from diagnostics.checks.weights import scale_of_outputs
from diagnostics.losses import REGRESSION_LOSSES
from diagnostics.probe import Probe
from diagnostics.report import Finding

TOO_LARGE = 20.0        # column RMS 20x a standardised feature's drives fan-in scaled layers hard
TOO_SMALL = 1e-3        # every column under 1e-3: the inputs barely move the first layer
UNPREDICTABLE = 0.97    # neither reference beats a constant predictor by 3% on held-out folds.
                        # Labels shuffled apart from X measured 0.992-1.27 (10 fault-matrix
                        # programs x 3 seeds); the healthy programs' better reference at most
                        # 0.547 (blobs, 4 overlapping clusters), diabetes (R^2 ~0.4) 0.48-0.53


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


def check_unpredictable_targets(probe: Probe) -> Finding | None:
    """Neither a linear model nor nearest neighbours, fitted on other rows, predicts y better
    than a constant on held-out folds (and the model does not either, when X_val is given)."""
    ref = probe.reference
    if ref is None or probe.baseline_loss <= 0 \
            or min(ref.linear_cv, ref.neighbours_cv) < UNPREDICTABLE * probe.baseline_loss:
        return None     # a constant y (zero loss) is predicted by the constant itself
    if probe.val_loss is not None and probe.val_loss < UNPREDICTABLE * probe.val_baseline_loss:
        return None   # the model predicts held-out rows: y depends on X in a way these miss
    c = probe.baseline_loss
    fits = "it fits these rows, which it can only have memorised" \
        if probe.loss_ratio < UNPREDICTABLE else "it learned nothing either"
    return Finding(
        "unpredictable-targets", "error",
        f"y cannot be predicted from X on these rows: neither a linear model nor {ref.k} "
        f"nearest neighbours, each fitted on other rows, beats a constant prediction on the rows "
        f"it did not see. Found held-out losses of {ref.linear_cv:.4g} (linear, "
        f"{ref.linear_cv / c:.0%} of a constant predictor's {c:.4g}) and {ref.neighbours_cv:.4g} "
        f"(neighbours, {ref.neighbours_cv / c:.0%}) over {ref.rows} rows; the model's loss on X "
        f"is {probe.loss_ratio:.0%} of the constant's: {fits}.",
        dict(ref.as_evidence(), loss=probe.loss, loss_ratio=probe.loss_ratio,
             linear_cv_ratio=ref.linear_cv / c, neighbours_cv_ratio=ref.neighbours_cv / c),
        "Check that the rows of X and y correspond: y shuffled or sorted apart from X, a join on "
        "the wrong key, labels read from another file or split, a target shifted by a row. Plot y "
        "against the most predictive column; training longer only memorises such targets.", None)


# y that X cannot predict: nothing to learn, or only rows to memorise
UNPREDICTABLE_TARGETS_CHECK = Check(
    "unpredictable-targets", check_unpredictable_targets,
    explains=(Explains(STUCK + UNITS + ("single-class-output", "generalization-gap")),))
UNSCALED_DATA_CHECK = Check(
    "unscaled-data", check_unscaled_data,
    explains=(Explains(STUCK + UNITS + BLOWUP + ("unstable-learning-rate",
                                                 "learning-rate-too-small")),
              Explains(("bad-initialization",), scale_of_outputs)))
