"""What the loss history says: oscillation without progress, or a plateau far above zero."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import (FAR_ABOVE_ZERO, LEARNED_NOTHING, MIN_HISTORY,
                                         against_reference, finite_losses, history_improving,
                                         progress_share, reached_reference,
                                         reference_evidence)
from diagnostics.checks.record import Check, RuledOut, where_steps_tiny
from diagnostics.probe import Probe, ratio
from diagnostics.report import Finding

WINDOW = 200            # the last steps judged: long enough for a trend, short enough to be "now"
MIN_DROP = 0.05         # the second half of the window must be 5% below the first to be a trend
ANTICORRELATED = -0.3   # lag-1 autocorrelation: up-down-up (GD overshoot) is < 0, batch noise ~ 0
MIN_SWING = 0.02        # an up-down oscillation must move the loss by 2% of its level (std/mean)
CHAOTIC_SWING = 0.1     # swings of 10% of the level with no progress: chaotic, whatever the pattern
OVERSHOOT_FIX = ("Lower the learning rate below 2 / diagnostics.sharpness(model, X, y), or, if the "
                 "loss is summed over the batch (reduction='sum'), take its mean.")
NOT_THE_STEP_FIX = ("The steps are already tiny against the curvature at the last weights (lr x "
                    "lambda_max < 0.01), so the swings are the batches' noise (or a chaotic orbit "
                    "caught at a flat point), not steps that overshoot; larger batches smooth "
                    "them.")
NOISE_RHO = 0.3         # batches drawn independently: lag-1 autocorrelation within 0.3 of 0 (the
                        # alternation bound's size); steps that overshoot alternate below -0.3
NOISE_MARGIN = 1.5      # a swing up to 1.5x what batches of the rows scatter at this model is
                        # their noise (the rows' spread is estimated within ~5%: a 30x margin)
STATIONARY = 1.5        # the window's mean within 1.5x of the loss on X, either way: the model
                        # sits where the loop's last batches found it (scrambled diabetes loops
                        # measured 1.10-1.27: their batches are not X's rows; a fresh model beside
                        # a fitted history, 0.16)
FLAT = 0.02             # a plateau: the window adds under 2% of the run's whole drop


def went_non_finite(probe: Probe) -> bool:
    return probe.history is not None and not np.all(np.isfinite(probe.history))


def window(probe: Probe) -> np.ndarray | None:
    h = finite_losses(probe)
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


def oscillation(probe: Probe) -> dict | None:
    """The window's swing, autocorrelation and trend when the loss jumps up and down without
    progress far above zero; None otherwise. Read by loss-oscillation and unstable-learning-rate."""
    w = window(probe)
    if w is None or w.mean() <= 0 or went_non_finite(probe):
        return None     # a run that diverged did not oscillate: non-finite names it, and its
                        # finite part's swing and trend measure the blow-up (trend +4e23%)
    swing, rho, fall = float(w.std() / w.mean()), lag1_autocorrelation(w), drop(w)
    level = ratio(float(w.mean()), probe.baseline_loss)
    alternating = rho <= ANTICORRELATED and swing >= MIN_SWING
    if not (alternating or swing >= CHAOTIC_SWING) or fall > MIN_DROP or level < FAR_ABOVE_ZERO \
            or history_improving(probe) or reached_reference(probe) \
            or batch_noise(probe, w, swing, rho) is not None:
        return None     # a run as good as a simple fit of its rows swings with its batches
    return {"window": len(w), "lag1_autocorrelation": rho, "relative_swing": swing,
            "distinct_values": distinct_values(w), "trend": -fall, "level_ratio": level,
            "min": float(w.min()), "max": float(w.max())}


def batch_noise(probe: Probe, w: np.ndarray, swing: float, rho: float) -> float | None:
    """The swing batches drawn from X scatter by at this model, where the window's is within it
    (uncorrelated, around the loss on X): the loop's losses move because each batch holds other
    rows, not because the steps overshoot. A watched run's batches hold their recorded rows; post
    hoc a batch of one row, the most any batch scatters. None otherwise."""
    if abs(rho) > NOISE_RHO or probe.row_losses is None or not probe.loss > 0 \
            or not 1 / STATIONARY <= float(w.mean()) / probe.loss <= STATIONARY:
        return None
    own = probe.row_losses()
    if own is None or not own.mean() > 0:
        return None
    n, b = max(probe.n_rows, len(own)), probe.harmonic_batch_rows or 1.0
    expected = float(own.std() / own.mean()) * np.sqrt(max(n - b, 0.0) / ((n - 1) * b))
    return expected if swing <= NOISE_MARGIN * expected else None


def check_loss_oscillation(probe: Probe) -> Finding | None:
    """Steps that overshoot, or batches too noisy to show progress."""
    ev = oscillation(probe)
    if ev is None:
        return None
    return Finding(
        "loss-oscillation", "warning",
        f"The loss jumps up and down step after step without a downward trend over the last "
        f"{ev['window']} steps: the steps overshoot. Found lag-1 autocorrelation "
        f"{ev['lag1_autocorrelation']:.2f}, swing {ev['relative_swing']:.1%} of the level, "
        f"{ev['distinct_values']} distinct values, trend {ev['trend']:+.1%}.",
        ev,
        OVERSHOOT_FIX,
        None)


def check_loss_plateau(probe: Probe) -> Finding | None:
    h = finite_losses(probe)
    if len(h) < 4 * MIN_HISTORY:   # a plateau needs a run long enough to have had a start
        return None
    k = min(WINDOW, len(h) // 4)
    w = h[-k:]
    move = progress_share(h, k)
    level = ratio(float(w.mean()), probe.baseline_loss)
    if abs(move) >= FLAT or level < FAR_ABOVE_ZERO or reached_reference(probe):
        return None     # flat at what a simple fit of these rows reaches: the data's floor
    return Finding(
        "loss-plateau", "warning",
        f"The loss has stopped moving far above zero over the last {len(w)} steps. Found a level "
        f"of {w.mean():.4g} ({level:.0%} of a constant predictor's {probe.baseline_loss:.4g}"
        f"{against_reference(probe)}); the window added {move:.2%} of the run's whole drop.",
        dict(reference_evidence(probe), window=len(w), level=float(w.mean()), level_ratio=level,
             progress_share=move, constant_predictor_loss=probe.baseline_loss),
        "Look at the other findings for the cause (capacity, dead or saturated units, learning "
        "rate); more steps will not help.",
        None)


GAP = 20                # the loss on X over the history's recent level. Normal loops measured
                        # 0.4-1.6 on their own training rows (5.0 on heavy-tailed targets, whose
                        # batch-1 history misses the rare huge errors); 20 is 4x the most


SMOOTH = 0.1            # recorded losses that rose on under 10% of steps carry no batch-to-batch
                        # noise: one fixed batch. Minibatch loops rose on 46-53% (digits at batch
                        # 64 under Adam, diabetes), the first batch repeated on 0% (3 seeds each)
GAP_FIX = ("If X is held-out data, the model memorised its training rows: more data, weight decay, "
           "dropout, a smaller model, or stopping when the held-out loss stops falling. If X is the "
           "training data, the loop's batches are not samples of it: shuffle every epoch and "
           "prepare them the same way (scaling, dtype, column order).")
ONE_BATCH_FIX = ("Check that the loop draws a new batch every step: one batch repeated (a "
                 "next(iter(loader)) inside the loop, a batch index that never advances) or a "
                 "fixed subset of the rows is all the model learns. " + GAP_FIX)


HELD_OUT_FAR = 0.5      # the held-out loss at half a constant predictor's or more...
HELD_OUT_GAP = 3.0      # ...and 3x the training rows' share: the model memorised its rows. The
                        # healthy fault-matrix programs (10 x 3 seeds, their held-out quarter as
                        # X_val) measured held-out shares of 0.002-0.68: up to 3.0x the training
                        # share where it is under 0.21 (moons, cancer), 1.6-2.0x for diabetes at
                        # 0.58-0.68. Memorised permuted digits labels: 3.4-4.1, >100x
MEMORISED_FIX = ("The model memorised its training rows, and more or larger steps only fit them "
                 "closer: use more data, weight decay, dropout or a smaller model, stop when the "
                 "held-out loss stops falling, and check that the held-out rows are prepared as "
                 "the training rows are.")


def check_generalization_gap(probe: Probe) -> Finding | None:
    """The model fits the rows it trained on and not others: read from X_val when given, else
    from the loop's recorded losses far below the loss on the X given."""
    if probe.val_loss is not None:
        return held_out_gap(probe)
    w = window(probe)
    if w is None or not np.isfinite(probe.loss) or probe.loss_ratio < FAR_ABOVE_ZERO:
        return None
    level = float(np.mean(w))
    if level <= 0:      # a loss below zero is not the loss given here (nll of probabilities)
        return None
    gap, rose = probe.loss / level, float(np.mean(np.diff(w) > 0))
    if gap < GAP:
        return None
    fixed = rose < SMOOTH
    return Finding(
        "generalization-gap", "warning",
        f"The loss on the X given is far above the losses the loop recorded: the model fits the "
        f"rows it trained on, not these. Found {probe.loss:.4g} on X "
        f"({probe.loss_ratio:.0%} of a constant predictor's) against a mean of {level:.4g} over "
        f"the last {len(w)} recorded steps ({gap:.3g}x)" + (
            f"; those losses rose on {rose:.0%} of the steps, with none of the noise that new "
            f"batches bring (minibatches rise on about half): the same rows every step."
            if fixed else "."),
        {"loss": probe.loss, "history_level": level, "gap": gap, "loss_ratio": probe.loss_ratio,
         "window": len(w), "rose_share": rose, "one_fixed_batch": fixed},
        ONE_BATCH_FIX if fixed else GAP_FIX)


def held_out_gap(probe: Probe) -> Finding | None:
    """The loss on X_val far above the loss on X (as shares of a constant predictor's)."""
    if not np.isfinite(probe.val_loss) or not np.isfinite(probe.loss):
        return None
    val, train = ratio(probe.val_loss, probe.val_baseline_loss), probe.loss_ratio
    if val < HELD_OUT_FAR or val < HELD_OUT_GAP * train:
        return None
    return Finding(
        "generalization-gap", "error" if val >= LEARNED_NOTHING else "warning",
        f"The model fits the rows it trained on, not the held-out ones: its loss on X_val is far "
        f"above its loss on X. Found {probe.val_loss:.4g} on X_val ({val:.0%} of a constant "
        f"predictor's {probe.val_baseline_loss:.4g}) against {probe.loss:.4g} on X "
        f"({train:.0%})" + (": nothing it learned carries over." if val >= LEARNED_NOTHING
                            else "."),
        {"val_loss": probe.val_loss, "val_loss_ratio": val, "loss": probe.loss,
         "loss_ratio": train, "val_constant_predictor_loss": probe.val_baseline_loss},
        MEMORISED_FIX)


LOSS_OSCILLATION_CHECK = Check(
    "loss-oscillation", check_loss_oscillation,
    rewrites=(where_steps_tiny(OVERSHOOT_FIX, NOT_THE_STEP_FIX),))
GENERALIZATION_GAP_CHECK = Check("generalization-gap", check_generalization_gap)
# a loss that jumps around is not a plateau
LOSS_PLATEAU_CHECK = Check("loss-plateau", check_loss_plateau,
                           ruled_out_by=(RuledOut(("loss-oscillation",)),))
