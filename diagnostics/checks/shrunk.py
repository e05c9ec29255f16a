"""A gradient shrunk between backward() and step(): the .grad the optimizer stepped with is a
small fraction of the loss's gradient on the same rows, so plain gradient steps barely move.

Two measurements that no end-of-run statistic gives alone: the gradient left in the model's .grad
by the loop's last step (what clip_grad_norm_, clip_grad_value_ or a loss scaled down before
backward() made of it), and the gradient of the mean loss on X at the same weights. A batch
gradient of a mean loss is about as large as the whole set's, larger by its noise; one 1/100 of
it was scaled down. Adaptive optimizers (Adam, RMSprop, ...) divide the scale out of every step,
so only plain and momentum gradient descent are judged, and only a run that did not learn on its
own batches: a loop that fitted its batches (one batch repeated) leaves a small .grad of its own.

clip_grad_value_ far below the gradient leaves a signature of its own, failing run or not: most
of the .grad entries sit at exactly +-clip_value, where a gradient left alone has one entry at
its largest magnitude. Each step then moves most weights by lr x clip_value, whatever the
gradient says, and a weak linear fit of the rows can make such a run look on par.
"""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import ADAPTIVE, finite_history, norm_over, training_failing
from diagnostics.checks.record import FAILING_RUN, FINITE, STUCK, UNITS, Check, Explains, Need
from diagnostics.probe import Probe
from diagnostics.report import Finding

SHRUNK = 0.01       # the stepped .grad at most 1/100 of the loss's gradient on X. The 10 healthy
                    # fault-matrix programs left 0.13-14x over 3 seeds (exactly 1 in full batch: a
                    # batch's gradient is the set's plus its noise); clip_grad_norm_(max_norm=1e-3)
                    # on the SGD programs left 0.00045-0.0042
PINNED = 0.5        # most of the .grad entries at its largest magnitude. A gradient left alone has
                    # one entry there: the 10 fault-matrix programs and the 8 programs of an
                    # outside probe measured 1/n (0.0001-0.0076) over 3 seeds, unclipped and
                    # under a harmless clip_grad_value_(1.0) alike; clip_grad_value_(1e-4) on
                    # the plain and momentum SGD ones 0.76-1.0 (Adam's: 0.0004-0.85, not judged)
PIN_ROUNDING = 1e-6 # relative: a clamped entry is +-clip_value exactly; float32 keeps ~7 digits
MIN_ENTRIES = 10    # entries in all: with n, a gradient left alone pins 1/n, 0.1 at most here
LOGGED_SCALED = 0.1 # the history's first LOGGED_START losses (the fresh model, before the steps
                    # moved it) under 1/10 of what a constant or a zero-output model scores on X:
                    # a fan-in scaled init starts at 1-3x the latter (docs/checks.md,
                    # bad-initialization), a batch of rows near its set's loss; the loop's loss
                    # was scaled down (a mean divided by the batch size again: 1/32 of it)
LOGGED_START = 10   # ...averaged over 10 steps: one-row batches' losses swing with their rows
STILL_HIGH = 0.5    # the history's last quarter still at half its first steps' level or above:
                    # the loop learned little on its own batches (one batch repeated falls 1e4x)


def stepped_and_full(probe: Probe) -> tuple | None:
    """(norm of the .grad left by the last step, norm of the loss's gradient on X), over the
    parameters that hold both; None when none does or either is 0."""
    held = probe.stored_grads or {}
    names = [n for n, g in held.items() if g is not None and probe.grads.get(n) is not None]
    if not names:
        return None
    stepped, full = norm_over(held, names), norm_over(probe.grads, names)
    return (stepped, full) if stepped > 0 and full > 0 and np.isfinite(stepped) else None


def history_kept_high(probe: Probe) -> tuple | None:
    """(mean of the history's first 5%, of its last quarter) when the last is still STILL_HIGH
    of the first or more: the loop learned little on the batches it trained on."""
    h = finite_history(probe)
    if h is None:
        return None
    start, end = float(np.mean(h[:max(1, len(h) // 20)])), float(np.mean(h[-(len(h) // 4):]))
    return (start, end) if start > 0 and end >= STILL_HIGH * start else None


def plain_steps(probe: Probe) -> bool:
    """Plain or momentum gradient descent: an optimizer given, and not an adaptive one."""
    return probe.optimizer is not None and probe.optimizer not in ADAPTIVE


def pinned_entries(probe: Probe) -> tuple | None:
    """(share of the stored .grad entries within rounding of the largest magnitude, entries,
    that magnitude); None without MIN_ENTRIES finite entries, not all 0."""
    held = [np.ravel(g) for g in (probe.stored_grads or {}).values() if g is not None]
    g = np.abs(np.concatenate(held)).astype(np.float64) if held else np.zeros(0)
    top = float(g.max()) if g.size >= MIN_ENTRIES else 0.0
    if not (np.isfinite(top) and top > 0):
        return None
    return float(np.mean(g >= top * (1 - PIN_ROUNDING))), int(g.size), top


def pinned_by_value(probe: Probe) -> tuple | None:
    """pinned_entries where PINNED of them or more sit at the largest, under plain steps."""
    pinned = pinned_entries(probe) if plain_steps(probe) else None
    return pinned if pinned is not None and pinned[0] >= PINNED else None


def check_shrunk_gradient(probe: Probe) -> Finding | None:
    """A .grad pinned at one magnitude by clip_grad_value_, or a failing run's .grad far smaller
    than the loss's gradient on X."""
    pinned = pinned_by_value(probe)
    if pinned is not None:
        return clipped_by_value(probe, pinned)
    if not training_failing(probe):
        return None
    return scaled_down(probe) or scaled_loss(probe)


def clipped_by_value(probe: Probe, pinned: tuple) -> Finding:
    share, entries, top = pinned
    norms, largest = stepped_and_full(probe), largest_entry(probe.grads)
    ratio = f"; the stepped .grad is {norms[0] / norms[1]:.2g} of the loss's gradient on these " \
            f"rows" if norms else ""
    return Finding(
        "shrunk-gradient", "error" if training_failing(probe) else "warning",
        f"The .grad the optimizer stepped with is clipped by value far below the gradient: "
        f"most of its entries sit at one magnitude, so each {probe.optimizer} step moves them "
        f"by lr x that value whatever the gradient says. Found {share:.0%} of its {entries} "
        f"entries at +-{top:.3g} within float rounding (a gradient left alone has one entry at "
        f"its largest, 1/{entries} of them), where the loss's gradient on {len(probe.X)} rows "
        f"has entries up to {largest:.3g}{ratio}.",
        {"pinned_share": share, "pinned_at": top, "grad_entries": entries,
         "loss_grad_largest_entry": largest, "optimizer": probe.optimizer,
         "shrink": norms[0] / norms[1] if norms else None},
        f"Raise clip_grad_value_'s clip_value far above the gradient's entries (up to "
        f"{largest:.2g} here), or clip by norm instead: clip_grad_norm_(model.parameters(), "
        f"max_norm) with max_norm at the gradient's norm or above.")


def largest_entry(grads: dict) -> float:
    held = [np.max(np.abs(g)) for g in grads.values() if g is not None and np.size(g)]
    return float(max(held)) if held else 0.0


def scaled_down(probe: Probe) -> Finding | None:
    """The optimizer stepped with a .grad far smaller than the loss's gradient on X."""
    norms = stepped_and_full(probe) if plain_steps(probe) else None
    kept = history_kept_high(probe) if norms is not None else None
    if kept is None or norms[0] > SHRUNK * norms[1]:
        return None
    (stepped, full), (start, end) = norms, kept
    return Finding(
        "shrunk-gradient", "error",
        f"The gradient the optimizer stepped with is {stepped / full:.2g} of the {probe.loss_name} "
        f"loss's gradient on these rows: something scaled it down between loss.backward() and "
        f"optimizer.step(), so each {probe.optimizer} step moves the weights by that fraction of "
        f"a gradient step. Found |.grad| {stepped:.4g} left by the last step against "
        f"{full:.4g} for the mean loss on {len(probe.X)} rows at the same weights (a batch's "
        f"gradient is about the whole set's, plus its noise); the logged loss went only from "
        f"{start:.4g} to {end:.4g} on the batches it trained on.",
        {"stepped_grad_norm": stepped, "loss_grad_norm": full, "shrink": stepped / full,
         "optimizer": probe.optimizer, "history_start": start, "history_end": end},
        f"Look between backward() and step(): a clip_grad_norm_ max_norm (or clip_grad_value_ "
        f"clip) far below the gradient's norm, about {full:.2g} here, clips every step to a "
        f"crawl: raise it to the gradient's scale or remove it; a loss multiplied by a small "
        f"factor before backward() does the same: drop the factor.")


def history_scale(probe: Probe) -> tuple | None:
    """(the history's first LOGGED_START losses' mean, the lower of a constant predictor's and a
    zero-output model's loss on X) when the first is under LOGGED_SCALED of the second: the loop
    logged, and stepped on, a loss far below any loss its fresh model could score here."""
    h = finite_history(probe)
    fresh = [v for v in (probe.baseline_loss, probe.untrained_loss) if v is not None and v > 0]
    if h is None or not fresh or len(h) < LOGGED_START or probe.loss_name == "custom" \
            or np.any(h < 0):   # a loss that goes below 0 is no scaled mean loss (nll on raw
        return None             # outputs: loss-target-mismatch)
    start, floor = float(np.mean(h[:LOGGED_START])), min(fresh)
    return (start, floor) if 0 <= start < LOGGED_SCALED * floor else None


def scaled_loss(probe: Probe) -> Finding | None:
    """Plain or momentum steps on a loss scaled far down: the history starts far below what its
    fresh model could score, and each step is that much shorter."""
    scale = history_scale(probe) if plain_steps(probe) else None
    if scale is None:
        return None
    start, floor = scale
    return Finding(
        "shrunk-gradient", "error",
        f"The loss the loop stepped on is scaled far down, so each {probe.optimizer} step "
        f"moves the weights by that fraction of a gradient step. Found its first "
        f"{LOGGED_START} losses at {start:.4g} on average, {start / floor:.2g} of the "
        f"{floor:.4g} that a constant prediction scores on these rows (a fresh model, before "
        f"its first steps, scores about that or more): the {probe.loss_name} loss divided again "
        f"(by the batch size after its mean) or multiplied by a small factor before backward().",
        {"history_start": start, "fresh_loss": floor, "history_scale": start / floor,
         "optimizer": probe.optimizer},
        "Step on the loss as the loss function returns it: its default reduction='mean' already "
        "divides by the batch size, so drop the extra division or factor (or raise the "
        "learning rate by as much).")


def of_a_scaled_history(cause: Finding, symptom: Finding) -> bool:
    """A history scaled down sits far below the loss on X: the gap to it, and the last batches'
    losses far under it, are the scale's, not memorised rows or class-ordered batches."""
    return "history_scale" in cause.evidence


def failing_or_pinned(probe: Probe) -> bool:
    return training_failing(probe) or pinned_by_value(probe) is not None


FAILING_OR_PINNED = Need("a failing run (evidence.training_failing), or most .grad entries at one "
                         "magnitude under plain steps (PINNED)", failing_or_pinned)
# every step a crawl, whatever the lr: the model keeps what it started as
SHRUNK_GRADIENT_CHECK = Check("shrunk-gradient", check_shrunk_gradient,
                              needs=(FINITE, FAILING_OR_PINNED), evidence=(FAILING_RUN,),
                              explains=(Explains(STUCK + UNITS),
                                        Explains(("generalization-gap", "single-class-output"),
                                                 of_a_scaled_history)))
