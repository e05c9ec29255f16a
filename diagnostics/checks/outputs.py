"""What the model outputs against what the loss and the targets need."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from diagnostics.checks.evidence import LEARNED_NOTHING, finite_losses
from diagnostics.checks.record import (FINITE, STUCK, UNITS, Check, Explains,
                                       where_steps_tiny)
from diagnostics.activations import HEAD_RANGES
from diagnostics.losses import BINARY_LOSSES, REGRESSION_LOSSES
from diagnostics.probe import Probe, one_column_against_flat
from diagnostics.report import Finding

CLIPPED_HEADS = ("relu", "relu6")   # heads that floor logits at 0
RANGE_TOL = 1e-6          # a target on the boundary (0 or 1 for a sigmoid) is reachable in the limit
MISMATCH_SHARE = 0.01     # 1% of targets out of reach is an error; fewer, a warning
CONSTANT_RATIO = 1e-3     # output spread under 0.1% of the target spread: one prediction for all
MAX_LABELS = 100          # more distinct integers than this look like counts, not classes
PROB_TOL = 1e-4           # rows of probabilities sum to 1 within float32 rounding
ROWS_FADED = 1e-2         # a hidden layer whose rows spread under 1% of the first hidden layer's:
                          # the inputs' differences are gone there. Fresh 10-layer, width-32
                          # stacks at torch's default init keep 0.14-0.15 a layer (sigmoid),
                          # 0.37-0.39 (relu), 0.52-0.58 (tanh, elu): said only with constant-output
LOG_PROB_TOL = 1e-3       # a row of log-probabilities has logsumexp 0; float32 log_softmax rows are
                          # within ~1e-6 of it
BELOW_BOUND = 1e-6        # a recorded loss under -1e-6 x its scale is below the 0 every named loss
                          # is bounded by, whatever the float rounding
SMALLER_LR = ", use a smaller learning rate,"   # constant-output's fix, dropped where the steps
                                                # are already tiny (record.where_steps_tiny)
OVER_ROWS_TOL = 1e-3      # every column of a softmax over the rows sums to the number of forward
                          # calls that produced the rows (1 for diagnose()'s one call on X); float32
                          # sums over 2000 rows stay within ~1e-5 of it
MEAN_ONLY_GAP = 0.05      # outputs' mean within 5% of a target std of the targets' mean, and...
MEAN_ONLY_SPREAD = 0.2    # ...their spread under 20% of the targets': the model predicts mean(y).
                          # Trained with out (n, 1) against y (n,) (100-2000 Adam steps, 3 seeds):
                          # gap <= 0.018, spread 0.003-0.16; a model that fits has spread ~1


def value_targets(probe: Probe) -> np.ndarray | None:
    """Targets compared to the outputs value by value (regression-style losses only). A custom
    loss given integers in [0, k) for k >= 2 outputs is taken as a classification loss."""
    if probe.loss_name not in REGRESSION_LOSSES + ("custom",) or custom_class_indices(probe):
        return None
    return probe.y.reshape(len(probe.y), -1).astype(np.float64)


def custom_class_indices(probe: Probe) -> bool:
    y, width = probe.y, probe.out.shape[1]
    return probe.loss_name == "custom" and y.dtype.kind in "iu" and y.ndim == 1 and width >= 2 \
        and len(y) > 0 and y.min() >= 0 and y.max() < width


def check_output_range_mismatch(probe: Probe) -> Finding | None:
    y = value_targets(probe)
    if y is None or probe.head not in HEAD_RANGES:
        return None
    lo, hi = HEAD_RANGES[probe.head]
    out = (y < lo - RANGE_TOL) | (y > hi + RANGE_TOL)
    if probe.head == "softmax" and y.shape[1] > 1:
        out |= np.abs(y.sum(axis=1, keepdims=True) - 1) > PROB_TOL  # a softmax row sums to 1
    if not out.any():
        return None
    share = out.mean()
    return Finding(
        "output-range-mismatch", "error" if share >= MISMATCH_SHARE else "warning",
        f"The output head ({probe.head}) cannot reach the targets: its outputs lie in "
        f"[{lo:g}, {hi:g}]. Found {int(out.sum())} of {out.size} targets out of reach "
        f"({share:.1%}), targets in [{y.min():.4g}, {y.max():.4g}].",
        {"head": probe.head, "head_range": [lo, hi], "targets_out_of_range": int(out.sum()),
         "share": round(float(share), 4), "target_min": float(y.min()), "target_max": float(y.max())},
        f"For regression, end the model with its last Linear layer (no {probe.head} after it), "
        f"or rescale the targets into [{lo:g}, {hi:g}]; for class labels, give the last Linear "
        "layer one raw output per class (no Softmax layer) and use cross_entropy.",
        probe.layers[-1].name)


def looks_like_class_labels(y: np.ndarray) -> bool:
    """One column of consecutive small integers from 0 or 1, at least three of them."""
    if y.shape[1] != 1 or not np.all(y == np.round(y)):
        return False
    values = np.unique(y)
    return 3 <= len(values) <= MAX_LABELS and values[0] in (0, 1) and \
        np.array_equal(values, np.arange(values[0], values[0] + len(values)))


def check_loss_target_mismatch(probe: Probe) -> list:
    over_rows = softmax_over_rows(probe)
    if over_rows:       # the deeper fault: every other reading of the head takes rows as rows
        return [over_rows]
    found = [f for f in (softmax_twice(probe), one_unit_softmax(probe), bce_mismatch(probe),
                         logits_mismatch(probe), labels_as_values(probe), broadcast_targets(probe),
                         clipped_logits(probe), log_likelihood_of_probabilities(probe),
                         log_likelihood_of_scores(probe))
             if f]
    return found or [f for f in (history_below_bound(probe),) if f]


def mismatch(severity, message, evidence, fix, probe) -> Finding:
    return Finding("loss-target-mismatch", severity, message,
                   dict(evidence, loss=probe.loss_name, head=probe.head), fix, probe.layers[-1].name)


def are_probabilities(out: np.ndarray) -> bool:
    return bool(out.shape[1] > 1 and out.min() >= 0 and out.max() <= 1
                and np.all(np.abs(out.sum(axis=1) - 1) < PROB_TOL))


def softmax_twice(probe: Probe):
    if probe.loss_name not in ("cross_entropy", "hinge"):
        return None
    if probe.head not in ("softmax", "sigmoid") and not are_probabilities(probe.out):
        return None
    return mismatch("error", f"{probe.loss_name} expects raw scores (logits) but the model already "
                    f"outputs probabilities. Found a {probe.head} head, outputs in "
                    f"[{probe.out.min():.3g}, {probe.out.max():.3g}].",
                    {"output_min": float(probe.out.min()), "output_max": float(probe.out.max())},
                    f"Remove the final {probe.head} layer so that the last Linear layer's raw "
                    f"scores reach {probe.loss_name}; apply softmax to the outputs outside the "
                    "model when you want probabilities.",
                    probe)


def one_unit_softmax(probe: Probe):
    width = probe.out.shape[1]
    if width != 1 or not (probe.head == "softmax" or probe.loss_name == "cross_entropy"):
        return None
    return mismatch("error", f"A softmax over one output unit is always 1, so {probe.loss_name} "
                    "cannot learn. Found 1 output unit.", {"output_width": 1},
                    "Give the last Linear layer one output per class (nn.Linear(h, k), no "
                    "Softmax) with cross_entropy; for two classes, 1 output with "
                    "bce_with_logits and float 0/1 targets (no Sigmoid layer).", probe)


def bce_mismatch(probe: Probe):
    if probe.loss_name not in BINARY_LOSSES:
        return None
    y = probe.y
    if y.min() < 0 or y.max() > 1:
        return mismatch("error", f"{probe.loss_name} needs targets in [0, 1]. Found targets in "
                        f"[{y.min():.4g}, {y.max():.4g}].", {"target_min": float(y.min()),
                                                             "target_max": float(y.max())},
                        "For k classes 0..k-1: cross_entropy with k raw outputs and y as integer "
                        "class indices; for bce, y as 0/1 floats of the output's shape "
                        "(F.one_hot(y, k).float()).", probe)
    if probe.loss_name == "bce" and (probe.out.min() < 0 or probe.out.max() > 1):
        return mismatch("error", "bce needs probabilities but the outputs are not in [0, 1]. Found "
                        f"outputs in [{probe.out.min():.3g}, {probe.out.max():.3g}].",
                        {"output_min": float(probe.out.min()), "output_max": float(probe.out.max())},
                        "Either keep the model and use bce_with_logits, or add nn.Sigmoid() as "
                        "the last layer and keep bce; not both.", probe)
    return None


def logits_mismatch(probe: Probe):
    if probe.loss_name != "bce_with_logits" or probe.head not in ("sigmoid", "softmax"):
        return None
    return mismatch("error", f"bce_with_logits applies a sigmoid itself but the model ends with a "
                    f"{probe.head}, so predictions stay in (0.5, 0.73). Found outputs in "
                    f"[{probe.out.min():.3g}, {probe.out.max():.3g}].",
                    {"output_min": float(probe.out.min()), "output_max": float(probe.out.max())},
                    f"Remove the final {probe.head} layer (bce_with_logits applies the sigmoid "
                    "itself), or keep it and switch the loss to bce; not both.", probe)


def clipped_logits(probe: Probe):
    """A relu on the logits: they cannot go below 0, and a logit unit that dies stays at 0."""
    if probe.loss_name not in ("cross_entropy", "hinge", "bce_with_logits") \
            or probe.head not in CLIPPED_HEADS:
        return None
    stuck = float(np.mean(np.all(probe.out <= 0, axis=0)))
    return mismatch("warning", f"{probe.loss_name} reads raw scores (logits) that must be free to go "
                    f"negative, but the model ends with a {probe.head}. Found outputs in "
                    f"[{probe.out.min():.3g}, {probe.out.max():.3g}], {stuck:.0%} of the output "
                    "units at 0 on every row.",
                    {"output_min": float(probe.out.min()), "output_max": float(probe.out.max()),
                     "dead_output_share": stuck},
                    "Remove the final ReLU: the last Linear layer's outputs are the logits.", probe)


def log_likelihood_of_probabilities(probe: Probe):
    """A custom loss below zero on a softmax head: nll_loss given probabilities, not their logs."""
    if probe.loss_name not in ("custom", "nll") or probe.head != "softmax" or not probe.loss < 0:
        return None
    return mismatch("warning", f"The loss is {probe.loss:.4g} on a softmax head, below the 0 that "
                    "a negative log-likelihood cannot go under: what nll_loss gives when handed "
                    "probabilities instead of log-probabilities, rewarding the right class's "
                    "probability only linearly.",
                    {"loss_value": probe.loss},
                    "Replace the final Softmax with nn.LogSoftmax(dim=1) (log_softmax) and keep "
                    "nll_loss, or remove the Softmax and use cross_entropy on the logits.", probe)


MODULES = {"softmax": "Softmax", "log_softmax": "LogSoftmax"}


def probabilities_read(probe: Probe) -> tuple | None:
    """(what the head's outputs say as probabilities, "softmax" or "log_softmax"): the outputs
    themselves when they lie in [0, 1], their exponentials when they are all <= 0 (log-probs)."""
    out = probe.out.astype(np.float64)
    if out.min() >= 0 and out.max() <= 1:
        return out, "softmax"
    if out.max() <= 0:
        return np.exp(out), "log_softmax"
    return None


def columns_sum_to_calls(p: np.ndarray) -> int | None:
    """m when every column of p sums to the same whole number m of forward calls (1 <= m < rows):
    a softmax normalised over the rows of each call, not over the classes of each row."""
    sums = p.sum(axis=0)
    calls = int(round(float(sums.mean())))
    binary = np.all((p < OVER_ROWS_TOL) | (p > 1 - OVER_ROWS_TOL))   # saturated sigmoids count
    if binary or not 1 <= calls < len(p) or np.any(np.abs(sums - calls) > OVER_ROWS_TOL):
        return None                                                   # whole rows, not calls
    return calls


def softmax_over_rows(probe: Probe):
    """A softmax or log_softmax taken over dim 0: each class's column sums to 1 over the batch,
    so a row's output depends on which rows share its batch and its own row is no distribution."""
    n, k = probe.out.shape
    read = probabilities_read(probe) if probe.finite and n >= 2 and k >= 2 else None
    calls = None if read is None else columns_sum_to_calls(read[0])
    rows = None if calls is None else read[0].sum(axis=1)
    if rows is None or np.all(np.abs(rows - 1) < PROB_TOL):
        return None
    return mismatch("error", f"A {read[1]} head must normalise each row over its {k} classes, but "
                    f"this one normalises each class over the rows of the batch (dim 0). Found "
                    f"every column of {'exp(outputs)' if read[1] == 'log_softmax' else 'outputs'} "
                    f"summing to {calls} over {n} rows ({calls} forward call(s)), while the rows "
                    f"sum to {rows.min():.3g}-{rows.max():.3g} instead of 1.",
                    {"normalised_over": "rows", "column_sum": calls, "rows": n,
                     "row_sum_min": float(rows.min()), "row_sum_max": float(rows.max())},
                    f"Take the softmax over the classes: dim=1 (or -1), e.g. "
                    f"nn.{MODULES[read[1]]}(dim=1) or F.{read[1]}(out, dim=1); a row's prediction "
                    "must not depend on the other rows in its batch.", probe)


def log_likelihood_of_scores(probe: Probe):
    """nll_loss on raw scores: it rewards the right class's output without bound, so the loss
    runs below zero while the other outputs go anywhere."""
    if probe.loss_name != "nll" or probe.head in ("softmax", "log_softmax") or not probe.finite:
        return None
    lse = logsumexp(probe.out, axis=1)
    if np.all(np.abs(lse) < LOG_PROB_TOL):
        return None
    below = ", below the 0 a negative log-likelihood cannot go under" if probe.loss < 0 else ""
    return mismatch("error", f"nll_loss reads log-probabilities (every value <= 0, each row's "
                    f"exponentials summing to 1), but the model's outputs are raw scores. Found "
                    f"outputs in [{probe.out.min():.4g}, {probe.out.max():.4g}], each row's "
                    f"logsumexp in [{lse.min():.4g}, {lse.max():.4g}] (0 for log-probabilities), "
                    f"loss {probe.loss:.4g}{below}.",
                    {"output_min": float(probe.out.min()), "output_max": float(probe.out.max()),
                     "logsumexp_min": float(lse.min()), "logsumexp_max": float(lse.max()),
                     "loss_value": probe.loss},
                    "Add log_softmax: nn.LogSoftmax(dim=1) as the last layer (or F.log_softmax(out, "
                    "dim=1) before nll_loss), or use cross_entropy on the raw outputs; not both.",
                    probe)


def history_below_bound(probe: Probe):
    """The loop recorded losses below 0, which the loss given to diagnose() cannot reach: the
    loop's loss is another one, or it is fed what it does not expect."""
    h = finite_losses(probe)
    if probe.loss_name == "custom" or not len(h):
        return None
    low, scale = float(h.min()), float(np.abs(h).max())
    if low >= -BELOW_BOUND * max(scale, 1.0):
        return None
    return mismatch("error", f"The loop recorded losses below 0, which {probe.loss_name} cannot "
                    f"reach on any outputs: the loop's loss is not {probe.loss_name} of these "
                    f"outputs and targets. Found a lowest recorded loss of {low:.4g} "
                    f"({int(np.sum(h < 0))} of {len(h)} steps below 0), {probe.loss:.4g} on X.",
                    {"history_min": low, "steps_below_zero": int(np.sum(h < 0)),
                     "loss_value": probe.loss},
                    "Pass diagnose() the loss the loop uses; then fix what it is fed: nll_loss "
                    "needs log_softmax outputs, bce needs probabilities in [0, 1] and targets in "
                    "[0, 1], cross_entropy raw scores and class indices.", probe)


def labels_as_values(probe: Probe):
    y = value_targets(probe)
    if y is None or not looks_like_class_labels(y):
        return None
    labels = np.unique(y)
    width = probe.out.shape[1]
    return mismatch("error" if width > 1 else "warning",
                    f"A regression loss ({probe.loss_name}) is fit to what look like class labels, "
                    f"which makes class {labels[-1]:g} 'larger' than class {labels[0]:g}. Found "
                    f"{len(labels)} integer targets {labels[0]:g}..{labels[-1]:g} in one column, "
                    f"{width} output unit(s).",
                    {"labels": len(labels), "output_width": width},
                    f"Give the model {len(labels)} raw output units, no Softmax layer "
                    "(cross_entropy applies it), and pass the labels as integer class indices "
                    "(shape (n,), dtype long) to cross_entropy.", probe)


def check_constant_output(probe: Probe) -> Finding | None:
    if len(probe.out) < 2:
        return None
    spread = float(probe.out.std(axis=0).max())
    if probe.index_targets:
        if len(np.unique(probe.y)) < 2:
            return None
        reference = 1.0   # logits: a spread of 1e-3 cannot move a softmax
    else:
        reference = float(probe.y.reshape(len(probe.y), -1).std(axis=0).max())
    if reference == 0 or spread >= CONSTANT_RATIO * reference:
        return None
    spreads = row_spreads(probe)
    faded_at = where_rows_fade(spreads)
    return Finding(
        "constant-output", "error",
        "The model gives the same prediction for every input. Found an output spread (std over "
        f"rows) of {spread:.3g} against a target spread of {reference:.3g}." + fading(spreads, faded_at),
        {"output_std": spread, "target_std": reference, "rows": len(probe.out),
         "prediction": [round(float(v), 6) for v in probe.out[0][:10]],
         "hidden_row_std": spreads, "faded_at": faded_at},
        "Look for dead or saturated hidden units (see other findings); re-initialise (He/Xavier)"
        + SMALLER_LR + " or use LeakyReLU. Where the rows' spread fades layer by layer "
        "(a stack of sigmoids with small weights), use fewer such layers or ReLU-family ones.",
        faded_at)


def row_spreads(probe: Probe) -> dict:
    """Each hidden layer's spread over the rows (std per unit, averaged over units)."""
    return {layer.name: float(layer.post.std(axis=0).mean()) for layer in probe.hidden}


def where_rows_fade(row_spread: dict) -> str | None:
    """The first hidden layer whose rows are alike next to the first hidden layer's, if any:
    the inputs' differences are gone by there, and no later layer can bring them back."""
    spreads = list(row_spread.items())
    if len(spreads) < 2 or spreads[0][1] == 0:
        return None
    return next((name for name, s in spreads[1:] if s < ROWS_FADED * spreads[0][1]), None)


def fading(spreads: dict, faded_at: str | None) -> str:
    if faded_at is None:
        return ""
    (first, s0), (last, s1) = list(spreads.items())[0], list(spreads.items())[-1]
    kept = (s1 / s0) ** (1 / (len(spreads) - 1)) if s1 > 0 else 0.0
    return (f" The inputs' differences fade in the forward pass: the rows spread {s0:.3g} after "
            f"{first}, under {ROWS_FADED:.0%} of that from {faded_at} on, {s1:.3g} "
            f"after {last} ({kept:.2g} kept per layer).")


def predicts_the_mean(probe: Probe, y: np.ndarray) -> tuple:
    """(gap, spread): how far the outputs' mean is from the targets', and how wide the outputs
    are, both in target standard deviations."""
    std = float(y.std())
    if std == 0:
        return float("inf"), float("inf")
    return abs(float(probe.out.mean() - y.mean())) / std, float(probe.out.std()) / std


def history_shows_broadcast(probe: Probe) -> bool | None:
    """Whether the history's last loss is nearer the broadcast (n, n) loss than the loss of y
    reshaped to the output's shape: which of the two the loop computed. None without a history or
    a broadcast loss to compare (a custom loss, other shapes)."""
    h = finite_losses(probe)
    if probe.broadcast_loss is None or not len(h):
        return None
    return bool(relative_gap(h[-1], probe.broadcast_loss) < relative_gap(h[-1], probe.loss))


def relative_gap(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), np.finfo(float).tiny)


def broadcast_targets(probe: Probe):
    """A trained one-output regression model that settled on mean(y), with one of y and the output
    (n,) and the other (n, 1): the fingerprint of a loss that broadcasts them to (n, n)."""
    y = value_targets(probe)
    if y is None or not one_column_against_flat(probe.y_shape, probe.out_shape) \
            or probe.history is None or probe.loss_ratio < LEARNED_NOTHING \
            or history_shows_broadcast(probe) is False:   # the loop's loss was y reshaped's
        return None
    gap, spread = predicts_the_mean(probe, y)
    if gap >= MEAN_ONLY_GAP or spread >= MEAN_ONLY_SPREAD:
        return None
    n = len(y)
    return mismatch("warning",
                    f"The trained model predicts the mean of y for every input, which is where a "
                    f"loss that broadcasts ends: y has shape {probe.y_shape} and the output "
                    f"{probe.out_shape}, so (output - y) is ({n}, {n}), every output against "
                    f"every target, and its minimum is the constant mean(y). Found outputs' mean "
                    f"{probe.out.mean():.4g} against the targets' {y.mean():.4g}, their spread "
                    f"{spread:.1%} of the targets', loss {probe.loss_ratio:.0%} of a constant "
                    "predictor's.",
                    {"y_shape": list(probe.y_shape), "output_shape": list(probe.out_shape),
                     "mean_gap": gap, "spread_ratio": spread, "loss_ratio": probe.loss_ratio},
                    "Give the loss targets of the output's shape: y.view(-1, 1) (numpy: "
                    "y[:, None]) for an (n, 1) output, y.view(-1) for an (n,) one; torch warns "
                    "'Using a target size ... different to the input size' for this.", probe)


OUTPUT_RANGE_MISMATCH_CHECK = Check("output-range-mismatch", check_output_range_mismatch,
                                    explains=(Explains(STUCK + UNITS),))
LOSS_TARGET_MISMATCH_CHECK = Check("loss-target-mismatch", check_loss_target_mismatch,
                                   explains=(Explains(STUCK + UNITS + ("learning-rate-too-small",)),))
CONSTANT_OUTPUT_CHECK = Check("constant-output", check_constant_output, needs=(FINITE,),
                              rewrites=(where_steps_tiny(SMALLER_LR),),
                              explains=(Explains(("loss-plateau", "loss-oscillation")),))
