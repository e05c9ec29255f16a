"""The learning rate against the stability edge 2 / lambda_max of gradient descent."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import (ADAPTIVE, CRAWL, against_reference, effective_lr,
                                         learned_little,
                                         lr_against_curvature_applies, norm_over,
                                         training_failing)
from diagnostics.checks.history import ANTICORRELATED, oscillation
from diagnostics.checks.record import (BLOWUP, FAILING, FAILING_RUN, FINITE, HISTORY,
                                       STUCK, UNITS, Check, Explains, RuledOut)
from diagnostics.checks.weights import by_an_init_of_its_own, grown_in_training, layer_scales
from diagnostics.probe import Probe
from diagnostics.report import Finding

EDGE = 2.0              # GD on a quadratic diverges along curvature lambda when lr * lambda > 2
ADAPTIVE_REACH = 0.1    # lr x steps under 10% of the weights' RMS: healthy Adam runs reach 1-30x
                        # (lr 1e-3, 300-3000 steps, weights' RMS 0.1-0.3)
BLOWN_UP = 1e3          # weight scale RMS*sqrt(fan_in) 100x past bad-initialization's "far off"
                        # (10): weights that grew this far in training have left the region where
                        # their curvature says anything about the lr a fresh run can take


OVERSHOOT = 0.5         # one plain step's first-order decrease lr |g|^2 against the loss itself:
                        # at half the loss or more, a step at the last weights removes that much if
                        # the landscape were linear, so it lands far past any curvature measured
                        # there. Seed 002's summed-gradient net, saturated at its end: 0.97


BLEW_UP = 5.0           # a failing run's loss, averaged over WINDOW steps, peaked at 5x where it
                        # started (its first loss, or a constant predictor's if higher): healthy
                        # fault-matrix runs' single steps peaked at 1.0-1.64x (10 programs x 3
                        # seeds; diabetes' batches of 32 the highest), lr x 10-30 under SGD 2.3x
                        # to 1e34x, Adam at lr 0.5 68x to 3e7x
WINDOW = 10             # steps averaged: one row's loss can be many times the mean (a one-row
                        # batch's squared error passes 5x its mean with chance 2.5%), the mean of
                        # ten rows' with chance ~1e-7


def blow_up(probe: Probe) -> tuple | None:
    """(step, peak, start) where a failing run's history, up to its first non-finite loss and
    averaged over WINDOW steps, rose to BLEW_UP x its start: steps that overshot, though the run
    may have settled since (units dead, the curvature read at its end flat). None otherwise."""
    h = probe.history
    if h is None or len(h) < WINDOW or not np.isfinite(h[0]) or not training_failing(probe):
        return None
    h = h[:np.argmin(np.isfinite(h))] if not np.all(np.isfinite(h)) else h
    if len(h) < WINDOW:
        return None
    means = np.convolve(h, np.ones(WINDOW) / WINDOW, mode="valid")
    k, start = int(np.argmax(means)), max(float(h[0]), probe.baseline_loss)
    return (k, float(means[k]), start) if start > 0 and means[k] >= BLEW_UP * start else None


def step_against_loss(probe: Probe) -> float | None:
    """lr |g|^2 / loss at the last weights, where the history alternates up and down (GD's
    overshoot signature); None elsewhere or where the gradient is unknown."""
    osc = oscillation(probe)
    names = [n for n, g in probe.grads.items() if g is not None]
    if osc is None or osc["lag1_autocorrelation"] > ANTICORRELATED or not names \
            or probe.loss <= 0:
        return None
    one_step = probe.lr * norm_over(probe.grads, names) ** 2 / (1 - min(probe.momentum, 0.99))
    return one_step / probe.loss


def unsettled(probe: Probe) -> bool:
    """The run shows instability: its history oscillates or blows up; without a history, it fails.
    A history that settled proves the lr was stable where it ended (and edge-of-stability
    training sits at lr * lambda ~ 2 yet converges), so it is not flagged."""
    if probe.history is None:
        return training_failing(probe)
    return oscillation(probe) is not None or not np.all(np.isfinite(probe.history))


def check_unstable_learning_rate(probe: Probe) -> Finding | None:
    rose = blow_up(probe)
    if not lr_against_curvature_applies(probe):      # adaptive steps: the history alone
        return overshot(probe, rose) if rose else None
    ringing = momentum_outlasting_the_run(probe)
    if ringing is not None:
        return ringing
    if not unsettled(probe) and rose is None:
        return None
    lam = probe.sharpness()
    edge = EDGE * (1 + probe.momentum)  # heavy-ball momentum widens the stable range to 2(1+mu)
    if not np.isfinite(lam):
        return overshot(probe, rose) if rose else None
    if probe.lr * lam <= edge:
        return jumping_past_the_curvature(probe, lam, edge) or (
            overshot(probe, rose, probe.lr * lam) if rose else None)
    scale = max(layer_scales(probe).values(), default=0.0)
    found = (f"Found lr {probe.lr:.4g} x lambda_max {lam:.4g} = {probe.lr * lam:.3g} at the "
             "run's last weights")
    evidence = dict(lr=probe.lr, lambda_max=lam,
                    lr_times_lambda=probe.lr * lam, momentum=probe.momentum, weight_scale=scale)
    if scale > BLOWN_UP:
        return unstable(f"{found}, which have grown to scale {scale:.3g} (RMS*sqrt(fan_in); "
                        "fan-in scaled weights sit near 1): a bound computed there would say "
                        "nothing about the lr a fresh run can take, so none is given.",
                        evidence, "Lower the learning rate 10x at a time until the loss stops "
                        "jumping and the weights stay near their initial scale.", edge)
    return unstable(f"{found}; the edge is lr < {edge / lam:.4g}.",
                    dict(evidence, stable_lr_below=edge / lam),
                    f"Use a learning rate below {edge / lam:.3g} (or, if the loss is summed over "
                    "the batch, use its mean, reduction='mean': that divides the step by the "
                    "batch size).", edge)


RINGS = 0.5             # heavy-ball momentum m keeps a gradient in its buffer for ~1/(1 - m) steps
                        # and damps its swings by sqrt(m) a step: a memory of half the run or more
                        # leaves the weights swinging to its end (m = 0.999 over 300-450 steps on
                        # the outside probe's SGD programs: make_regression's R^2 ~0 against
                        # 0.99, digits' accuracy 0.1 against 0.96); m = 0.9 remembers 10 steps


def momentum_outlasting_the_run(probe: Probe) -> Finding | None:
    """A failing plain-SGD run whose momentum remembers its gradients for as long as the run
    lasts: its steps grow to lr / (1 - m) and swing back and forth without settling."""
    m, steps = probe.momentum or 0.0, 0 if probe.history is None else len(probe.history)
    if not (0 < m < 1) or steps == 0 or 1 / (1 - m) < RINGS * steps \
            or not training_failing(probe):
        return None
    return unstable(
        f"Found momentum {m:g}: its buffer keeps each gradient for about 1 / (1 - m) = "
        f"{1 / (1 - m):.4g} steps, {1 / (1 - m) / steps:.2g}x the run's {steps}, so the steps "
        f"build to lr / (1 - m) = {probe.lr / (1 - m):.3g} per unit of gradient and swing back "
        f"and forth for the whole run instead of settling.",
        dict(lr=probe.lr, momentum=m, momentum_memory=1 / (1 - m), steps=steps,
             effective_lr=probe.lr / (1 - m)),
        "Lower the momentum to 0.9 (its usual value; 0.99 only for runs of many thousand "
        "steps), or lower the learning rate by as much as the momentum multiplies it.",
        EDGE * (1 + m),
        "Heavy-ball momentum this close to 1 multiplies the step and barely damps it, so the "
        "weights overshoot back and forth.")


def jumping_past_the_curvature(probe: Probe, lam: float, edge: float) -> Finding | None:
    """lr x lambda_max under the edge at the last weights, while the loss alternates and one
    step there would remove OVERSHOOT of the loss or more: the curvature was read where the
    steps landed (units saturated, the landscape flat), not along the path they jump."""
    share = step_against_loss(probe)
    if share is None or share < OVERSHOOT:
        return None
    return unstable(
        f"Found the loss alternating up and down, and one step of lr {probe.lr:.4g} at the run's "
        f"last weights would lower it by {share:.3g}x its whole value if the landscape were "
        f"linear (lr x |grad|^2 over the loss), where lr x lambda_max is only "
        f"{probe.lr * lam:.3g}: the steps jump between far-apart weights.",
        dict(lr=probe.lr, lambda_max=lam, lr_times_lambda=probe.lr * lam,
             momentum=probe.momentum, step_over_loss=share),
        "Lower the learning rate 10x at a time until the loss stops alternating (or, if the loss "
        "is summed over the batch, use its mean, reduction='mean': that divides the step by the "
        "batch size).", edge,
        "The learning rate is too large for the path the steps take, so they overshoot, though "
        "the curvature at the last weights is under the stability edge.")


def overshot(probe: Probe, rose: tuple, lr_lambda: float | None = None) -> Finding:
    """The history rose to BLEW_UP x its start: the steps overshot, whatever the curvature where
    the run ended says (there units may be dead and the landscape flat)."""
    k, peak, start = rose
    lr = f" (it was {probe.lr:.3g})" if probe.lr else ""
    where = ("" if lr_lambda is None else f"; lr x lambda_max at the run's last weights is "
             f"{lr_lambda:.3g}, read where the steps ended, not along the path they jumped")
    return Finding(
        "unstable-learning-rate", "error",
        f"The learning rate is too large: the loss rose far above where it started, so the steps "
        f"overshoot. Found the history's loss at {peak:.4g} over steps {k}-{k + WINDOW - 1} (their "
        f"mean), {peak / start:.3g}x its start {start:.4g}{where}.",
        dict(loss_peak=peak, peak_step=k, peak_over_start=peak / start, lr=probe.lr,
             lr_times_lambda=lr_lambda),
        f"Lower the learning rate{lr} 10x at a time until the loss no longer rises above its "
        "start: Adam's usual range is 1e-4 to 1e-2, plain SGD's 1e-3 to 1e-1 (or, if the loss "
        "is summed over the batch, use its mean, reduction='mean').", None)


def unstable(found: str, evidence: dict, fix: str, edge: float, lead: str | None = None) -> Finding:
    lead = lead or (f"The learning rate is above the stability edge of gradient descent (lr x "
                    f"largest Hessian eigenvalue > {edge:g}), so steps overshoot.")
    return Finding("unstable-learning-rate", "error", f"{lead} {found}", evidence, fix, None)


def check_learning_rate_too_small(probe: Probe) -> Finding | None:
    """A run that learned nothing because its steps are tiny: against the curvature (plain
    gradient steps), or against the weights (adaptive steps). The history must prove it trained
    (a fresh model has learned nothing for another reason)."""
    if not learned_little(probe) or not probe.lr:
        return None
    if probe.optimizer in ADAPTIVE:
        return adaptive_steps_too_small(probe)
    if not lr_against_curvature_applies(probe):
        return None
    lam, step = probe.sharpness(), effective_lr(probe)
    if not np.isfinite(lam) or lam <= 0 or step * lam >= CRAWL:
        return None
    under = f" / (1 - momentum {probe.momentum:g})" if step != probe.lr else ""
    return Finding(
        "learning-rate-too-small", "warning",
        f"The run learned nothing and its steps are tiny against the loss's curvature (lr x "
        f"largest Hessian eigenvalue < {CRAWL:g}). Found lr {probe.lr:.4g}{under} x lambda_max "
        f"{lam:.4g} = {step * lam:.3g}, loss at {probe.loss_ratio:.0%} of a constant "
        f"predictor's{against_reference(probe)}, after {len(probe.history)} steps.",
        dict(lr=probe.lr, lambda_max=lam, lr_times_lambda=probe.lr * lam,
             effective_lr=step, stable_lr_below=EDGE / lam),
        f"Raise the learning rate toward 1/lambda_max = {1 / lam:.3g} (gradient descent stays "
        f"stable below {EDGE / lam:.3g}), or use torch.optim.Adam(model.parameters(), lr=1e-3).",
        None)


def adaptive_steps_too_small(probe: Probe) -> Finding | None:
    """Adam and its kin move each weight by at most about lr a step, so the whole run moved it by
    at most lr x steps: under a tenth of the weights' own size, training cannot have begun."""
    steps = len(probe.history)
    reach, size = probe.lr * steps, weight_rms(probe)
    if size == 0 or reach >= ADAPTIVE_REACH * size:
        return None
    return Finding(
        "learning-rate-too-small", "warning",
        f"The run learned nothing and its steps are tiny against the weights: {probe.optimizer} "
        f"moves each weight by at most about lr a step. Found lr {probe.lr:.3g} x {steps} steps "
        f"= {reach:.3g}, {reach / size:.2g} of the weights' RMS {size:.3g}, loss at "
        f"{probe.loss_ratio:.0%} of a constant predictor's{against_reference(probe)}.",
        dict(lr=probe.lr, steps=steps, reach=reach, weight_rms=size),
        f"Raise the learning rate ({probe.optimizer}'s usual range is 1e-4 to 1e-2; 1e-3 is its "
        "default).", None)


def weight_rms(probe: Probe) -> float:
    w = [la.weight.ravel() for la in probe.layers]
    return float(np.sqrt(np.mean(np.square(np.concatenate(w))))) if w else 0.0


DECAYED = 1e-3          # a schedule that left under 0.1% of the starting lr (three x0.1 decays):
                        # every step 1000x shorter than the first ones, too short to leave a
                        # plateau the first ones could not
NEGLIGIBLE_LR = 1e-7    # where no start is recorded: runs start at 1e-6 or more (fine-tuning's
                        # smallest), and ReduceLROnPlateau, which records none, stops where a
                        # decay would change the lr by under its eps 1e-8: at 1e-8 (factor 0.1)
                        # to 2e-8 (factor 0.5)


def check_decayed_learning_rate(probe: Probe) -> Finding | None:
    """A scheduler that shrank the lr to nothing while the loss is still far above zero."""
    start, lr = probe.initial_lr, probe.lr
    if not start and lr is not None and 0 < lr < NEGLIGIBLE_LR:
        return decayed_from_an_unknown_start(probe, lr)
    if not start or lr is None or lr >= DECAYED * start:
        return None
    return Finding(
        "decayed-learning-rate", "warning",
        f"The learning-rate schedule has shrunk the steps to nothing while the loss is still far "
        f"above zero. Found lr {lr:.3g}, {lr / start:.2g} of the {start:.3g} it started from, "
        f"loss at {probe.loss_ratio:.0%} of a constant predictor's.",
        dict(lr=lr, initial_lr=start, lr_share=lr / start),
        "Decay later or less (a larger step_size, a gamma closer to 1, more epochs per "
        "milestone), or decay when the loss stops improving (ReduceLROnPlateau) with a min_lr.",
        None)


def decayed_from_an_unknown_start(probe: Probe, lr: float) -> Finding:
    return Finding(
        "decayed-learning-rate", "warning",
        f"The learning rate is far below any a run starts at, while the loss is still far above "
        f"zero: a schedule that leaves no record of its start in the optimizer "
        f"(ReduceLROnPlateau) shrank it to nothing. Found lr {lr:.3g}, under {NEGLIGIBLE_LR:g}, "
        f"loss at {probe.loss_ratio:.0%} of a constant predictor's.",
        dict(lr=lr, initial_lr=None, lr_share=None, negligible_below=NEGLIGIBLE_LR),
        "Step ReduceLROnPlateau once an epoch on a validation loss, with patience of a few epochs "
        "and a min_lr, not after every batch; or decay later or less.", None)


def started_wrong(ruled: Finding, by: Finding) -> bool:
    return bool(by.evidence.get("wrong_at_step_0"))


def not_from_the_history(f: Finding) -> bool:
    """An unstable-learning-rate finding read from the curvature, not from a history's rise."""
    return "peak_step" not in f.evidence


DECAYED_LEARNING_RATE_CHECK = Check("decayed-learning-rate", check_decayed_learning_rate,
                                    needs=(FAILING,), evidence=(FAILING_RUN,),
                                    explains=(Explains(STUCK),))
UNSTABLE_LEARNING_RATE_CHECK = Check(
    "unstable-learning-rate", check_unstable_learning_rate, needs=(FINITE,),
    evidence=(FAILING_RUN,),
    explains=(Explains(STUCK + UNITS + BLOWUP),
              Explains(("bad-initialization",), grown_in_training)),
    # a history that rose from a start already far too high: the init's gradients threw the
    # steps, at an lr a sane init trains with (huge-init on wine: the timeline's step-0 loss)
    ruled_out_by=(RuledOut(("bad-initialization",), started_wrong, unless=not_from_the_history),))

LEARNING_RATE_TOO_SMALL_CHECK = Check(
    "learning-rate-too-small", check_learning_rate_too_small, needs=(HISTORY, FINITE),
    evidence=(FAILING_RUN,), explains=(Explains(STUCK),),
    ruled_out_by=(
        # saturated or dead units, a vanishing gradient or an unreachable target also make the
        # curvature tiny; there a larger lr is not the fix
        RuledOut(("output-range-mismatch", "saturated-activation", "dead-relu",
                  "vanishing-gradient", "optimizer-mismatch", "frozen-parameters",
                  "no-gradient-path", "shrunk-gradient", "decayed-learning-rate",
                  "unpredictable-targets")),
        # ... and so does an init wrong of its own (zero or constant weights have a flat,
        # degenerate Hessian; huge ones a saturated head): a larger lr leaves it where it is
        RuledOut(("bad-initialization",), by_an_init_of_its_own)))
