"""Initialisation, judged from the weights as they are now (the caller may pass a trained model)."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import finite_losses, training_failing
from diagnostics.checks.record import BLOWUP, FAILING_RUN, STUCK, UNITS, Check, Explains
from diagnostics.checks.timeline import (INIT_LOSS_FAR, started_far_above,
                                         weights_wrong_of_their_own)
from diagnostics.probe import Probe
from diagnostics.report import Finding

ONE_SIGN_MIN = 8        # fewer weights than this can share a sign by chance (1 in 2^8)
MOSTLY_ONE_SIGN = 0.9   # or 90% of >= 100 weights: zero-mean inits give 50% +- 5% at 100 weights
MOSTLY_MIN = 100        # and training keeps that balance; uniform [0, 1) stays mostly positive
SCALE_LOW, SCALE_HIGH = 0.1, 10.0   # RMS * sqrt(fan_in): LeCun/He/torch give 0.6-1.4; 10x off is far
PARALLEL_ROWS = 0.9     # a layer's units whose weight rows reach this mean cos compute one
                        # function. Trained healthy nets' layers of fan-in >= 2 measured -0.05-0.12
                        # (the 10 fault-matrix programs, 3 seeds; 8 other programs' |cos| with the
                        # bias <= 0.66, top singular share <= 0.73); rows copied from the first
                        # 0.15-1.0 after training, 0.93-1.0 in the runs the copy hurt. Signed: w
                        # and -w differ under relu. Without the bias: a bias of -50 in every unit
                        # (a dead layer) lines up [w, b] with any w
PARALLEL_MIN_UNITS = 4  # mean of >= 6 pairs: units pointing one way by chance do not reach 0.9


def constant_layers(probe: Probe) -> list:
    return [la.name for la in probe.layers if la.weight.size >= 2 and np.ptp(la.weight) == 0]


def mean_cos(rows: np.ndarray) -> float:
    """The mean cos between distinct rows: |sum of the unit rows|^2 counts every pair twice and
    each row once with itself (O(n d), no n x n matrix)."""
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    n = len(rows)
    return float((np.sum(unit.sum(axis=0) ** 2) - n) / (n * (n - 1)))


def top_share(rows: np.ndarray) -> float:
    """The top singular value's share of the squared norm (1: the rows span one direction)."""
    s = np.linalg.svd(rows, compute_uv=False)
    return float(s[0] ** 2 / np.sum(s ** 2))


def parallel_layers(probe: Probe) -> dict:
    """layer -> (mean cos, top share), for layers of >= PARALLEL_MIN_UNITS non-zero units whose
    weight rows all point one way: a symmetric init (every unit a copy of one) that never broke."""
    found = {}
    for la in probe.layers:
        rows = la.weight[np.linalg.norm(la.weight, axis=1) > 0].astype(np.float64)
        if len(rows) < PARALLEL_MIN_UNITS or la.fan_in < 2 or np.ptp(la.weight) == 0:
            continue    # one input: every row is parallel, the units differ by their bias
        cos = mean_cos(rows)
        if cos >= PARALLEL_ROWS:
            found[la.name] = (cos, top_share(rows))
    return found


def one_sign(probe: Probe):
    """(sign, weights, share) when (almost) every weight has one sign: an init drawn from
    [0, 1) or from |N|, which training moves only a little; else None."""
    w = np.concatenate([la.weight.ravel() for la in probe.layers if la.weight.size >= 2] or [[]])
    if w.size < ONE_SIGN_MIN:
        return None
    positive = float(np.mean(w > 0))
    share = max(positive, float(np.mean(w < 0)))
    if share < 1.0 and (w.size < MOSTLY_MIN or share < MOSTLY_ONE_SIGN):
        return None
    return ("positive" if positive >= share else "negative"), w.size, share


def fan_in_scale(layer) -> float:
    """RMS * sqrt(fan_in) of a layer's weights: 0.6-1.4 for fan-in scaled weights."""
    return float(np.sqrt(np.mean(layer.weight ** 2)) * np.sqrt(layer.fan_in))


def layer_scales(probe: Probe) -> dict:
    """layer -> fan_in_scale."""
    return {la.name: fan_in_scale(la) for la in probe.layers if la.weight.size >= 2}


def scale_off(probe: Probe) -> dict:
    """layer -> RMS * sqrt(fan_in), for layers far from the fan-in scale. An output layer far
    under it is not one: a head started near zero trains (its gradient is the hidden units times
    the error, whatever its weights), and a trained head shrinks so to output the targets' mean
    when the inputs told it nothing (labels drawn anew each step: 0.07)."""
    free = {la.name for la in probe.layers if not la.feeds_norm}   # a norm divides the scale out
    head = probe.layers[-1].name if probe.layers else None
    return {n: s for n, s in layer_scales(probe).items()
            if n in free and (s > SCALE_HIGH or (s < SCALE_LOW and n != head))}


def history_start(probe: Probe) -> tuple | None:
    """(the finite losses, the first one, what a fresh model scores: the larger of a constant
    predictor's loss and that of a fresh zero-mean model's outputs, about 0 at the last layer),
    when the history begins with a finite loss and that score is known; else None."""
    h = finite_losses(probe)
    start = max(probe.baseline_loss, probe.untrained_loss or 0.0)
    if len(h) == 0 or start <= 0 or not np.isfinite(probe.history[0]):
        return None
    return h, float(h[0]), start


def first_loss_sane(probe: Probe) -> bool:
    """The history starts within INIT_LOSS_FAR of what a fresh model scores: whatever the
    weights' sign, the init did not start the run wrong."""
    begun = history_start(probe)
    return begun is not None and begun[1] < INIT_LOSS_FAR * begun[2]


def first_loss_far(probe: Probe) -> tuple | None:
    """(first loss, what a fresh model scores) when the history started far above it and only
    came down (checks/timeline.started_far_above): the model was wrong before any update (an
    epoch history's first mean may hold a rise that a step-by-step one shows)."""
    begun = history_start(probe)
    if begun is None or not started_far_above(begun[0], begun[2]):
        return None
    return begun[1], begun[2]


def pattern_broken(seen: dict) -> list:
    """What each piece of evidence found, in words."""
    early, sign = seen["early"], seen["sign"]
    found = [] if early is None else [
        f"the history's first loss {early[0]:.4g}, before any update, is {early[0] / early[1]:.3g}x "
        f"what a fresh zero-mean model's outputs score ({early[1]:.4g}), and the run never rose far "
        "above its first steps"]
    if seen["const"]:
        found.append(f"constant weights in {', '.join(seen['const'])}: every unit computes the "
                     "same thing")
    if seen["parallel"]:
        found.append("units whose weight rows all point one way, so the layer computes one "
                     "function: " + ", ".join(f"{n}: mean cos {c:.3f} between its units, "
                                              f"{t:.1%} of |W|^2 in the top singular value"
                                              for n, (c, t) in seen["parallel"].items()))
    if sign:
        found.append(f"all {sign[1]} weights {sign[0]}" if sign[2] == 1.0 else
                     f"{sign[2]:.0%} of {sign[1]} weights {sign[0]}")
    if seen["off"]:
        found.append("weight scale RMS*sqrt(fan_in) " + ", ".join(f"{n}: {s:.3g}"
                                                                  for n, s in seen["off"].items()))
    return found


def check_bad_initialization(probe: Probe) -> Finding | None:
    """The weights as they are, or a history that started far too high. A model gone
    non-finite has no weights to read, but its history's start still tells."""
    if not probe.layers:
        return None
    failing = training_failing(probe)
    seen = dict(const=[], sign=None, off={}, parallel={},
                early=first_loss_far(probe) if failing else None)
    if probe.finite:
        seen.update(const=constant_layers(probe), sign=one_sign(probe),
                    off=scale_off(probe) if failing else {}, parallel=parallel_layers(probe))
    if not any(seen.values()):
        return None
    return init_finding(probe, seen, failing)


def init_finding(probe: Probe, seen: dict, failing: bool) -> Finding:
    const, off, sign, parallel = seen["const"], seen["off"], seen["sign"], seen["parallel"]
    own = const or parallel or seen["early"]
    grown = trained_steps(probe) if off and not (own or sign) else 0
    return Finding(
        "bad-initialization", "error" if const or seen["early"] or (parallel and failing)
        else "warning",
        "The weights (judged as they are now, which for a fresh model is its initialisation) break "
        "the fan-in scaled, zero-mean pattern training needs. Found "
        f"{'; '.join(pattern_broken(seen))}."
        + (f" After {grown} training steps that scale may come from the training (a large "
           "learning rate, or weight decay) rather than the initialisation." if grown else ""),
        dict(constant_layers=const, one_sign=sign and sign[0], one_sign_share=sign and sign[2],
             parallel_units={n: {"mean_cos": c, "top_singular_share": t}
                             for n, (c, t) in parallel.items()},
             scale=off, expected_scale=[SCALE_LOW, SCALE_HIGH],
             trained_steps=trained_steps(probe), wrong_at_step_0=seen["early"] is not None,
             first_loss=seen["early"] and seen["early"][0], untrained_loss=probe.untrained_loss,
             started_sane=first_loss_sane(probe)),
        init_fix(parallel and not sign, grown), (const or list(parallel) or list(off) or [None])[0])


def init_fix(symmetric: bool, grown: int) -> str:
    if symmetric:
        return ("Break the symmetry: initialise each unit's weights independently at random, "
                "zero-mean and fan-in scaled (torch's default nn.Linear init, Xavier, or He for "
                "ReLU), never copied from one unit or set to one value.")
    return ("Initialise with zero-mean fan-in scaled weights (torch's default, Xavier, or He for "
            "ReLU), not zeros, constants or uniform [0, 1)"
            + ("; if the weights grew in training, lower the learning rate." if grown else "."))


def trained_steps(probe: Probe) -> int:
    """Steps of the history given with the model: 0 for a model judged at its initialisation."""
    return 0 if probe.history is None else len(probe.history)


# The conditions of other checks' rows on bad-initialization: which weights it judged.
def grown_in_training(cause: Finding, symptom: Finding) -> bool:
    """bad-initialization only for the scale of weights the history shows were trained: a
    constant or one-sign init is a cause of its own, whatever the learning rate did."""
    ev = symptom.evidence
    return bool(ev.get("trained_steps")) and not weights_wrong_of_their_own(ev) \
        and not ev.get("wrong_at_step_0")


def scale_of_outputs(cause: Finding, symptom: Finding) -> bool:
    """bad-initialization for any scale the inputs set, a first loss far too high included:
    unscaled inputs blow up what a sane init outputs. A constant or one-sign init is still a
    cause of its own."""
    return not weights_wrong_of_their_own(symptom.evidence)


def trained(cause: Finding, symptom: Finding) -> bool:
    """bad-initialization of weights the history shows were trained: weight decay that outweighs
    the data pulls them to zero, and at lr x wd = 1 sets each to -lr x its gradient (constant or
    one-signed layers included). A penalty inside the logged loss also made its first value far
    too high (a watched run's step 0 included)."""
    return bool(symptom.evidence.get("trained_steps") or cause.evidence.get("penalty_in_loss"))


def init_of_its_own(f: Finding) -> bool:
    """bad-initialization that no training explains: constant or one-sign weights, or a loss
    far too high before the first update (not a weight scale read after training)."""
    return weights_wrong_of_their_own(f.evidence) or bool(f.evidence.get("wrong_at_step_0"))


def by_an_init_of_its_own(ruled: Finding, by: Finding) -> bool:
    return init_of_its_own(by)


def init_explains(cause: Finding, symptom: Finding = None) -> bool:
    """An init judged only by its weights' sign, in a run whose history started sane, is a
    warning of its own: nothing shows it drove what came after (seed 002's all-positive init
    trains once the step is averaged). Constant weights, a scale far off or a start far too high
    explain what follows."""
    ev = cause.evidence
    only_sign = bool(ev.get("one_sign")) and not (
        ev.get("constant_layers") or ev.get("parallel_units") or ev.get("scale")
        or ev.get("wrong_at_step_0"))
    return not (only_sign and ev.get("started_sane"))


BAD_INITIALIZATION_CHECK = Check("bad-initialization", check_bad_initialization,
                                 evidence=(FAILING_RUN,),
                                 explains=(Explains(STUCK + UNITS + BLOWUP, init_explains),))
