"""The run as it happened (diagnostics.watch): what the end of a run no longer shows. A loss that
was wrong before the first update (the init), steps as large as the weights before the loss rose
(the lr), a .grad never reset, step() never called, a schedule that decayed the lr away, the step
where values first went non-finite, a layer whose units died on the way.

Each check reads a Timeline (plain arrays) and reports under the code of the cause it names, with
``at_step`` in its evidence: a report's verdict then says at which step it went wrong.
"""

from __future__ import annotations

import math

import numpy as np

from diagnostics.timeline import UPDATE_HUGE, Timeline, loss_rose
from diagnostics.report import Finding

PER_ROW_BAND = 2.0      # a fresh model's loss a row is within 2x of the constant's; a step-0 loss
                        # that lands there once divided by the batch's rows was summed over them
                        # (the matrix's summed losses: 0.92-1.25x; unscaled wine inputs at batch 15
                        # 2.4-4.7x)...
SAME_SCALE = 2.0        # ...unless the history ends within 2x of the model's loss on X (summed runs
                        # ended 29-1400x it, about the batch's rows; unscaled wine 0.99x)
INIT_LOSS_FAR = 10.0    # the loss before any update over a constant predictor's: fan-in scaled
                        # inits start near it (cross-entropy: log k against log k; mse on unit-
                        # scale targets 1-3x); N(0, 1) weights in a deep ReLU net start 1e6x above
LOSS_ROSE = 2.0         # a loss at twice the first one has risen: the steps overshoot
MIN_ACCUMULATED = 3     # steps on a stale .grad: one can be a deliberate odd step, three are a loop
ACCUMULATED_SHARE = 0.5 # ... and at least half the steps whose reset is known
MIN_LOGGED = 10         # steps logged with no optimizer.step() at all: the loop never updates
GRADLESS_SHARE = 0.5    # steps at which step() found no .grad at all, of the steps it ran (and
                        # >= MIN_LOGGED of them): a loss cut from the model or zero_grad() between
                        # backward() and step() leaves none at every step (420 of 420); a healthy
                        # loop at none (its first step holds backward's .grad too), and an
                        # LBFGS-style step(closure) at most its first
DECAYED = 1e-3          # the lr under 0.1% of where it started (diagnostics.checks.stability's)
PER_BATCH = 5           # decays: more than a few milestones, as a per-epoch schedule stepped per batch
DIED = 0.5              # a module whose batch has half its units dead, alive at the first sample
                        # and dead from then to the last sample: a 32-row batch's dead share
                        # swings (healthy circles: 6% -> 53% -> 19%), a dead unit stays dead
MIN_FALLING = 5         # finite losses before a NaN that came out of the blue: a trend, not a step
WHOLE = 1.0             # every unit dead: the layer passes nothing


def share(x: float, of: float) -> str:
    return f"{x / of:.3g}x" if of else "where it is 0"


def started_far_above(h: np.ndarray, start: float) -> bool:
    """The first of these finite losses is INIT_LOSS_FAR above ``start`` (what a fresh model
    scores) and the run never rose to LOSS_ROSE times its first 5% of steps: the model was wrong
    before any update, and training only brought it down. For a history of epoch means or
    logged after some steps, whose first value may hold an overshooting lr's rise; a watched
    run's step 0 is logged before any update and needs no such guard."""
    early = float(h[:max(1, len(h) // 20)].max())
    return bool(h[0] >= INIT_LOSS_FAR * start and h.max() < LOSS_ROSE * early)


def fresh_model_loss(tl: Timeline) -> float:
    """What a fresh model scores: the larger of a constant predictor's loss and that of a fresh
    zero-mean model's outputs (diagnose() fills both in)."""
    return max(tl.constant_loss, tl.untrained_loss or 0.0)


def check_loss_far_above_constant_at_step_0(tl: Timeline) -> Finding | None:
    """The loss before the first update against a fresh model's: an init wrong from the start,
    not weights the training grew, nor a loss summed over its batch."""
    if tl.constant_loss is None or len(tl.loss) == 0 or tl.failing is False \
            or summed_over_the_batch(tl):
        return None
    first, start = float(tl.loss[0]), fresh_model_loss(tl)
    if np.isfinite(first) and first < INIT_LOSS_FAR * start:
        return None
    return Finding(
        "bad-initialization", "error",
        f"The loss at step 0, before any update, is already far above a fresh model's "
        f"(> {INIT_LOSS_FAR:g}x): the initialisation is wrong from the start, whatever the "
        f"training did after. Found loss {first:.4g} at step "
        f"0 against {start:.4g} for the better of the best constant and a fresh zero-mean "
        f"model's outputs ({share(first, start)}).",
        {"at_step": 0, "first_loss": first, "constant_predictor_loss": tl.constant_loss,
         "untrained_loss": tl.untrained_loss, "wrong_at_step_0": True, "trained_steps": 0,
         "constant_layers": [], "one_sign": None},
        "Initialise with zero-mean fan-in scaled weights (torch's default, Xavier, or He for "
        "ReLU: std sqrt(2 / fan_in)), not N(0, 1), zeros, constants or uniform [0, 1).")


def summed_over_the_batch(tl: Timeline) -> tuple | None:
    """(step 0's loss, rows a batch, that loss a row) when step 0's loss is far above a fresh
    model's and, divided by the rows of a batch, within PER_ROW_BAND of it: the loss sums over
    its rows (reduction='sum'), so the logged loss, the gradient and each step are that many
    times a mean loss's."""
    if tl.constant_loss is None or len(tl.loss) == 0 or tl.failing is False \
            or not tl.batch_rows or tl.batch_rows < 2:
        return None
    first, start = float(tl.loss[0]), fresh_model_loss(tl)
    per_row = first / tl.batch_rows
    if not np.isfinite(first) or first < INIT_LOSS_FAR * start \
            or not start / PER_ROW_BAND <= per_row <= PER_ROW_BAND * start or logged_as_a_mean(tl):
        return None
    return first, tl.batch_rows, per_row


def logged_as_a_mean(tl: Timeline) -> bool:
    """The history's last finite losses within SAME_SCALE of the model's mean loss on X at its
    end: the logged loss is a mean, whatever step 0 read (unscaled inputs start far above too)."""
    h = tl.loss[np.isfinite(tl.loss)]
    if not len(h) or tl.final_loss is None or not np.isfinite(tl.final_loss) or tl.final_loss <= 0:
        return False
    end = float(np.mean(h[-max(1, len(h) // 20):]))
    return end <= SAME_SCALE * tl.final_loss


def check_loss_summed_over_the_batch(tl: Timeline) -> Finding | None:
    """A summed loss, named where its steps were too large: the loss rose or went non-finite,
    or a step was as large as the weights. (Summed at a small enough lr it trains; in a run
    failing from steps too small, averaging would make them smaller still.)"""
    summed = summed_over_the_batch(tl)
    if summed is None or (loss_rose(tl, LOSS_ROSE) is None and not steps_as_large_as_weights(tl)):
        return None
    first, rows, per_row = summed
    return Finding(
        "accumulated-gradient", "error",
        f"The loss sums over the rows of its batch instead of averaging them: the logged loss, "
        f"its gradient and so each step are as many times a mean loss's as the batch has rows. "
        f"Found loss {first:.4g} at step 0, before any update, over {rows:.4g} rows a batch: "
        f"{per_row:.4g} a row, what a fresh model scores ({fresh_model_loss(tl):.4g}).",
        {"at_step": 0, "first_loss": first, "batch_rows": rows, "per_row_loss": per_row,
         "summed_over_batch": True},
        "Average the loss over the batch (reduction='mean', the default of torch's losses; "
        ".mean() rather than .sum()), or divide the learning rate by the batch size.")


def steps_as_large_as_weights(tl: Timeline) -> bool:
    best = largest_update(tl, None)
    return best is not None and best[0] >= UPDATE_HUGE


def weights_wrong_of_their_own(ev: dict) -> bool:
    """bad-initialization evidence that no training or loss explains: constant, parallel
    (symmetric) or one-sign weights."""
    return bool(ev.get("constant_layers") or ev.get("parallel_units") or ev.get("one_sign"))


def started_high_by_the_sum(cause: Finding, symptom: Finding) -> bool:
    """bad-initialization read from the history's first loss alone, where that loss was summed
    over its batch: a sane start, multiplied by the rows."""
    ev = symptom.evidence
    return bool(cause.evidence.get("summed_over_batch")) and bool(ev.get("wrong_at_step_0")) \
        and not weights_wrong_of_their_own(ev)


def largest_update(tl: Timeline, before: int | None) -> tuple | None:
    """(ratio, parameter, step) of the largest |dw| / |w| at the sampled steps before ``before``."""
    mask = tl.before(before) if before is not None else np.ones(len(tl.sample_steps), bool)
    best = None
    for name, r in tl.update_ratio.items():
        r = against_scale(tl.weight_norm.get(name), r, tl.init_scale.get(name, 0.0))
        r = np.where(mask & np.isfinite(r), r, -1.0)
        if len(r) and r.max() >= 0 and (best is None or r.max() > best[0]):
            best = (float(r.max()), name, int(tl.sample_steps[int(np.argmax(r))]))
    return best


def against_scale(norms, ratios, fresh: float = 0.0) -> np.ndarray:
    """|dw| over the largest |w| so far, and at least over ``fresh``, the norm a fan-in scaled init
    gives the tensor, per sample: |dw| / |w| of a tensor passing near 0 (a healthy bias changing
    sign: |w| 2e-4, ratio 11) measures how near it passed, not the step; of weights initialised
    far below their fan-in's scale (N(0, 1e-3) under Adam: each step of lr moves them by 3x
    themselves), how small the init was. A tensor that started at 0 (zero init) has no scale of
    its own to step against: nan."""
    if norms is None or len(norms) != len(ratios):
        return ratios
    norms = np.asarray(norms, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.fmax(np.fmax.accumulate(norms), fresh)
        out = ratios * norms / scale
    return out if len(norms) and norms[0] > 0 else np.full(len(ratios), np.nan)


def check_updates_larger_than_weights(tl: Timeline) -> Finding | None:
    """Steps as large as the weights from a sane start, then a loss that rose or never learned:
    the learning rate, not the init."""
    rose = loss_rose(tl, LOSS_ROSE)
    start_far = tl.constant_loss is not None and len(tl.loss) and not (
        tl.loss[0] <= INIT_LOSS_FAR * tl.constant_loss)
    if start_far or (rose is None and not tl.failing):
        return None
    big = largest_update(tl, rose if rose is not None else None)
    if big is None or big[0] < UPDATE_HUGE:
        return None
    ratio, name, step = big
    after = f"; the loss rose past {LOSS_ROSE:g}x its first value (or went non-finite) at step " \
            f"{rose}" if rose is not None else "; the run failed"
    return Finding(
        "unstable-learning-rate", "error",
        f"Steps changed the weights by as much as the weights themselves (|dw| / |w| >= "
        f"{UPDATE_HUGE:g}) before the loss rose: the learning rate is far too high. Found "
        f"|dw| / |w| = {ratio:.3g} for {name} at step {step}{after}.",
        {"at_step": step, "update_ratio": ratio, "parameter": name, "loss_rose_at": rose,
         "lr": first_lr(tl), "update_ratio_bound": UPDATE_HUGE},
        f"Lower the learning rate (it was {first_lr(tl):.3g}) 10x at a time until |dw| / |w| "
        "stays near 1e-3 a step: Adam's usual range is 1e-4 to 1e-2, plain SGD's 1e-3 to 1e-1.")


def first_lr(tl: Timeline) -> float:
    lr = tl.lr[np.isfinite(tl.lr).all(axis=1)] if tl.lr.size else tl.lr
    return float(lr[0].max()) if len(lr) else float("nan")


def check_gradients_never_reset(tl: Timeline) -> Finding | None:
    """optimizer.step() ran on a .grad still holding the previous steps' gradients, whatever its
    size: zero_grad() is missing from the loop."""
    stale, known = tl.n_accumulated, tl.n_accumulated + tl.n_reset
    if stale < MIN_ACCUMULATED or stale < ACCUMULATED_SHARE * known:
        return None
    return Finding(
        "accumulated-gradient", "error",
        f"optimizer.step() stepped with a .grad that still held the previous steps' gradients: "
        f"loss.backward() adds to .grad until it is zeroed, so each step moves the weights by the "
        f"sum of every gradient so far. Found .grad not reset at {stale} of the {known} steps "
        f"whose reset was recorded, first at step {tl.first_accumulated}.",
        {"at_step": tl.first_accumulated, "steps_not_reset": stale, "steps_reset": tl.n_reset},
        "Call optimizer.zero_grad() every step, before loss.backward(). When accumulating "
        "micro-batches on purpose, divide each one's loss by their number and zero after each "
        "optimizer.step().")


NEVER_STEPPED_FIX = ("Call optimizer.step() after loss.backward() in every step (and "
                     "optimizer.zero_grad() before the backward); check that the optimizer given "
                     "is the one the loop uses.")


def check_step_never_called(tl: Timeline) -> Finding | None:
    """Losses logged, and optimizer.step() never ran: nothing ever updated the weights."""
    if tl.n_logged < MIN_LOGGED or tl.n_stepped > 0:
        return None
    return Finding(
        "step-never-called", "error",
        f"The optimizer never stepped, so the weights never changed: the loss only measures the "
        f"initial model. Found {tl.n_logged} steps logged and optimizer.step() called at none "
        f"of them.",
        {"at_step": 0, "steps_logged": tl.n_logged, "steps_stepped": tl.n_stepped},
        NEVER_STEPPED_FIX)


GRADLESS_FIX = ("Call optimizer.zero_grad() before loss.backward(), never between it and "
                "optimizer.step(); and call backward() on the loss the model's outputs computed, "
                "not on a copy cut from them (loss.detach(), torch.tensor(loss.item())): where "
                "backward() then raises 'does not require grad', find where the graph is cut "
                "instead of setting requires_grad on the loss.")


def check_steps_without_gradient(tl: Timeline) -> Finding | None:
    """optimizer.step() ran while no parameter held a .grad: torch's optimizers skip such a
    parameter, so every step left the weights as they were."""
    if tl.n_gradless < MIN_LOGGED or tl.n_gradless < GRADLESS_SHARE * tl.n_stepped:
        return None
    return Finding(
        "no-gradient-path", "error",
        f"optimizer.step() ran with no .grad on any parameter, and torch's optimizers skip a "
        f"parameter whose .grad is None: the weights never changed. Found {tl.n_gradless} of "
        f"the {tl.n_stepped} steps taken with no .grad at all, first at step "
        f"{tl.first_gradless}: backward() never reached the parameters (the loss was cut from "
        f"the model), or zero_grad() ran between backward() and step().",
        {"at_step": tl.first_gradless, "steps_without_grad": tl.n_gradless,
         "steps_stepped": tl.n_stepped},
        GRADLESS_FIX)


def lr_decays(tl: Timeline) -> tuple | None:
    """(start lr, end lr, step it fell under DECAYED x start, number of decreases)."""
    lr = tl.lr.max(axis=1) if tl.lr.size else np.zeros(0)
    keep = np.isfinite(lr)
    lr, steps = lr[keep], tl.steps[keep]
    if len(lr) < 2 or not lr[0] > 0 or lr[-1] >= DECAYED * lr[0]:
        return None
    fell = int(steps[np.flatnonzero(lr < DECAYED * lr[0])[0]])
    return float(lr[0]), float(lr[-1]), fell, int(np.sum(np.diff(lr) < 0))


def check_schedule_decayed_lr(tl: Timeline) -> Finding | None:
    """The lr series shows a schedule that took the lr to nothing while the run failed."""
    found = lr_decays(tl) if tl.failing else None
    if found is None:
        return None
    start, end, fell, decays = found
    per_batch = decays > PER_BATCH
    return Finding(
        "decayed-learning-rate", "warning",
        f"The learning-rate schedule shrank the steps to nothing while the run failed. Found lr "
        f"{end:.3g} at the end, {end / start:.2g} of the {start:.3g} it started from, under "
        f"{DECAYED:g}x from step {fell} of {tl.n_logged}; it fell at {decays} steps"
        + (", a decay every few steps: a per-epoch scheduler stepped every batch." if per_batch
           else "."),
        {"at_step": fell, "initial_lr": start, "lr": end, "lr_share": end / start,
         "decreases": decays, "stepped_per_batch": per_batch},
        ("Call scheduler.step() once per epoch, after the batch loop, not after every "
         "optimizer.step()" if per_batch else "Decay later or less (a larger step_size, a gamma "
         "closer to 1)") + ", or decay when the loss stops improving (ReduceLROnPlateau) with a "
        "min_lr.")


LOSS_OVERFLOW_FIX = ("Compute the loss on raw outputs with torch's stable functions: "
                     "F.binary_cross_entropy_with_logits (nn.BCEWithLogitsLoss) or F.cross_entropy "
                     "instead of a log of a sigmoid or softmax written out; or clamp the "
                     "probabilities, p.clamp(1e-7, 1 - 1e-7), before the log. Check any division "
                     "in the loss for a denominator that can reach 0.")


def out_of_the_blue(tl: Timeline) -> bool:
    """At a sampled step, whose layer outputs were read, the first non-finite value was not in
    them, and the loss had fallen until then (MIN_FALLING finite steps at least, never risen):
    the weights were not blowing up, so the loss computation itself overflowed."""
    h, step = tl.finite_loss, tl.first_nonfinite_step
    read = step in set(tl.sample_steps.tolist()) and bool(tl.dead or tl.saturated)
    return (read and not str(tl.first_nonfinite_tensor).startswith("outputs of")
            and len(h) >= MIN_FALLING and h[-1] < h[0] and loss_rose(tl, LOSS_ROSE) >= step)


def check_first_non_finite(tl: Timeline) -> Finding | None:
    """The first step and the first tensor that went NaN or Inf."""
    if tl.first_nonfinite_step is None:
        return None
    inside_loss = out_of_the_blue(tl)
    before = tl.finite_loss[-1] if len(tl.finite_loss) else math.nan
    return Finding(
        "non-finite", "error",
        f"Training produced NaN or Inf values, so it diverged. Found the first at step "
        f"{tl.first_nonfinite_step}, in {tl.first_nonfinite_tensor}" + (
            f", while every layer's outputs were finite and the loss had not risen (its last "
            f"finite value {before:.4g}, {share(before, float(tl.loss[0]))} its first): the "
            f"weights were not blowing up, the loss computation overflowed (a log of 0)."
            if inside_loss else "."),
        {"at_step": tl.first_nonfinite_step, "first_tensor": tl.first_nonfinite_tensor,
         "inside_the_loss": inside_loss},
        LOSS_OVERFLOW_FIX if inside_loss else
        "Lower the learning rate (or clip: torch.nn.utils.clip_grad_norm_(model.parameters(), "
        "1.0) between backward() and step()), and check the inputs and the loss for overflow "
        "(log of 0, exp of large values).")


def stayed_dead(dead: np.ndarray) -> np.ndarray:
    """The samples from the one where the dead share reached DIED and stayed there to the end."""
    alive = np.flatnonzero(~(np.nan_to_num(dead) >= DIED))
    start = int(alive[-1]) + 1 if len(alive) else 0
    return np.arange(start, len(dead))


def check_units_died(tl: Timeline) -> Finding | None:
    """A ReLU module alive at the first sample whose batch has most units dead from some sample
    to the last."""
    for name, dead in tl.dead.items():
        died = stayed_dead(dead)
        if len(dead) < 2 or not dead[0] < DIED or not len(died):
            continue
        step, big = int(tl.sample_steps[died[0]]), largest_update(tl, int(tl.sample_steps[died[0]]))
        whole = bool(np.nanmax(dead) >= WHOLE)
        return Finding(
            "dead-relu", "error" if whole else "warning",
            f"ReLU units that were alive at the start died during training: they pass no signal "
            f"and get no gradient again. Found {name} at {dead[0]:.0%} dead at step "
            f"{int(tl.sample_steps[0])}, {dead[died[0]]:.0%} at step {step}, "
            f"{np.nanmax(dead):.0%} at most"
            + (f"; the largest update before it |dw| / |w| = {big[0]:.3g} ({big[1]})." if big
               else "."),
            {"at_step": step, "module": name, "dead_share": [float(d) for d in dead[:3]],
             "largest_update_before": big and big[0]},
            "Lower the learning rate (e.g. 10x), or replace nn.ReLU with nn.LeakyReLU(0.01).",
            name)
    return None
