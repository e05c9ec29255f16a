"""Gradient sizes per layer: exploding, vanishing, and weight decay that outweighs the data.

Each verdict is given only when training is failing (see evidence.py): a healthy run near its
minimum has tiny gradients everywhere, and early layers of a healthy deep net have small ones.
"""

from __future__ import annotations

import numpy as np

from diagnostics.activations import ACTIVATIONS, SATURATION_BANDS
from diagnostics.checks.evidence import learned_little, norm_over, training_failing
from diagnostics.checks.record import (FAILING, FAILING_RUN, FINITE, STUCK, UNITS, Check,
                                       Explains, RuledOut, by_steps_seen_overshooting,
                                       where_steps_tiny)
from diagnostics.checks.units import saturated_at_the_input, starts_inside
from diagnostics.checks.weights import (SCALE_LOW, fan_in_scale, first_loss_far, layer_scales,
                                        trained, trained_steps)
from diagnostics.probe import Probe
from diagnostics.report import Finding

VANISH_RATIO = 1e-2     # first layer's RMS gradient under 1% of the last's: early layers barely learn
PER_LAYER_SHRINK = 0.3  # or under 30% kept per layer back, over >= 2 layers, in a model that learned
                        # nothing: fresh relu/tanh/elu MLPs keep 0.36-1.1 per layer, sigmoid stacks
                        # 0.09-0.3 (measured over torch/Xavier/He inits, 3 widths, 3 seeds)
MIN_HOPS = 2            # one layer's drop is normal (a sigmoid's slope is at most 1/4)
SATURATING = tuple(SATURATION_BANDS)  # sigmoid, tanh: slopes <= 1 everywhere: a stack of them can only fade a signal
SHRINKING_KINDS = ("sigmoid",)  # the per-layer rule needs >= 2 such layers, whose slope <= 1/4 is
                        # the mechanism; wide He-init ReLU nets on noise labels also read 0.14 per
                        # layer (row statistics, not the chain rule) and train fine
STATIONARY = 1e-3      # |grad| |w| / loss over every parameter: the loss's relative change for a
                        # relative move of the weights. A 2-8-1 linear net at XOR's best linear
                        # fit measured 5e-7 to 7e-7 (3 seeds); deep sigmoid stacks stuck at chance
                        # 0.33-1.2 (fresh and trained, 2 seeds): under 1e-3 the model sits at a
                        # minimum it can reach, and small gradients there did not vanish
HEAD_READ_AT = 3 ** -0.5  # a head under SCALE_LOW is read at torch's default scale (RMS x sqrt(fan
                         # in) of uniform +-1/sqrt(fan_in)): its own gradient does not pass through
                         # it, so one step regrows it; trained to output the targets' mean (labels
                         # drawn anew each step) it shrank to 0.06-0.09
SIGNAL_SEED = 0         # the fixed random signal sent back through the layers: the same answer twice
SLOPES = {n: a.slope_of_output for n, a in ACTIVATIONS.items()   # act'(z), read off h
          if a.slope_of_output is not None}
EXPLODE_RATIO = 1e2     # first layer's RMS gradient 100x the last's: it grows layer by layer
MAX_RELATIVE_STEP = 1.0  # lr * |grad| > |weights|: one step would move a layer by more than its size
DECAY_DOMINATES = 0.5   # decay pull at least half the data gradient's...
DECAY_LEARNED_LITTLE = 0.5  # ...while the loss is still half a constant predictor's
FORGETS = 0.1           # lr * wd: each step multiplies the weights by 1 - lr*wd, so at 0.1 they keep
                        # ~10 steps of what they learned (at lr*wd = 1: nothing). Healthy decay
                        # sits at lr*wd ~ 1e-5 to 1e-3
LOWER_LR = "Lower the learning rate or clip the gradient norm; "   # exploding-gradient's fix,
                        # dropped where the steps are already tiny (record.where_steps_tiny)
COLLAPSED = 0.01        # every layer's RMS x sqrt(fan_in) under 1/100 of the fan-in scale (~1),
                        # after a history that started far above what the outputs score: an L2
                        # penalty of 1.0 added to digits' loss left 0.0000 (3 seeds); 0.01 and
                        # 0.001, which train, 0.48-1.5, as a healthy run's 0.95-1.3
DECAY_HORIZON = 1.0     # lr * wd * steps: decoupled decay has shrunk the weights by e^-1 at most


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


def graded_layers(probe: Probe) -> list:
    return [layer for layer in probe.layers if layer.grad_weight is not None]


def layer_norms(layers) -> dict:
    return {layer.name: round(rms(layer.grad_weight), 9) for layer in layers}


def shrinks_every_layer(probe: Probe, ratio: float) -> bool:
    hops = len(graded_layers(probe)) - 1
    shrinking = sum(layer.activation in SHRINKING_KINDS for layer in probe.hidden)
    return min(hops, shrinking) >= MIN_HOPS and learned_little(probe) and \
        ratio ** (1 / hops) < PER_LAYER_SHRINK


def at_a_stationary_point(probe: Probe) -> bool:
    """The whole gradient is tiny against the loss and the weights: a minimum, not a vanishing."""
    names = [n for n, g in probe.grads.items() if g is not None]
    g, w = norm_over(probe.grads, names), norm_over(probe.params, names)
    return probe.loss > 0 and g * w / probe.loss < STATIONARY


def is_a_chain(layers: list) -> bool:
    """Each layer reads the one before it (an nn.Sequential-like MLP), so a signal can be sent
    back through them in order."""
    return all(a.width == b.fan_in for a, b in zip(layers, layers[1:]))


def row_signal_back(probe: Probe) -> list | None:
    """A unit random signal at the output's z, sent back row by row through W and each hidden
    layer's slope act'(z): its RMS at each hidden layer's z, last layer first. The gradient of a
    row's loss takes this path (delta_l = (delta_{l+1} W) * act'(z_l)); unlike the gradient of
    the mean loss it does not cancel over rows at a constant predictor's optimum. None unless
    every hidden layer is sigmoid, tanh or linear and the layers form a chain."""
    layers = probe.layers
    if len(layers) < 2 or not is_a_chain(layers) or not all(
            layer.activation in SLOPES for layer in probe.hidden):
        return None
    delta = np.random.default_rng(SIGNAL_SEED).standard_normal(layers[-1].post.shape)
    kept = [rms(delta)]
    weights = [regrown_head(layers[-1])] + [u.weight for u in layers[-2:0:-1]]
    for w, layer in zip(weights, layers[-2::-1]):
        delta = (delta @ w.astype(np.float64)) * SLOPES[layer.activation](
            layer.post.astype(np.float64))
        kept.append(rms(delta))
    return kept


def regrown_head(head) -> np.ndarray:
    """The output layer's weights, at HEAD_READ_AT where their fan-in scale is under SCALE_LOW."""
    scale = fan_in_scale(head)
    return head.weight * (HEAD_READ_AT / scale) if 0 < scale < SCALE_LOW else head.weight


def fades_through_the_stack(probe: Probe) -> tuple | None:
    """(ratio, per layer, hops): the row signal's RMS at its weakest hidden layer against the
    output's, when >= MIN_HOPS sigmoid/tanh layers pass back under VANISH_RATIO of it; else None.
    The caller gates it as the first-over-last rule (training failing), with the same bound.
    The weakest layer, not the first: Adam's steps grow the early layers' weights until they
    amplify again what the middle of the stack let through (an 8-deep sigmoid stack on digits
    kept 0.0014 at its 4th layer back, 0.077 at its first)."""
    kept = row_signal_back(probe)
    saturating = sum(layer.activation in SATURATING for layer in probe.hidden)
    if kept is None or saturating < MIN_HOPS or kept[0] == 0:
        return None
    hops = int(np.argmin(kept[1:])) + 1
    ratio = kept[hops] / kept[0]
    return (ratio, ratio ** (1 / hops), hops) if ratio < VANISH_RATIO else None


def check_vanishing_gradient(probe: Probe) -> Finding | None:
    layers = graded_layers(probe)
    if len(layers) < 2:
        return None
    first, last = rms(layers[0].grad_weight), rms(layers[-1].grad_weight)
    summed = not at_a_stationary_point(probe) and last > 0 and (
        first < VANISH_RATIO * last or shrinks_every_layer(probe, first / last))
    rows = fades_through_the_stack(probe)
    if not summed and rows is None:
        return None
    return Finding(
        "vanishing-gradient", "error",
        "The gradient shrinks on its way back to the first layer, which barely learns while the "
        "loss stays high. Found " + vanishing_numbers(layers, first, last, summed, rows) + ".",
        dict(ratio=first / last if last else None,
             per_layer=(first / last) ** (1 / (len(layers) - 1)) if last else None,
             row_ratio=rows and rows[0], row_per_layer=rows and rows[1],
             through_depth=rows is not None, grad_rms=layer_norms(layers),
             activations=[layer.activation for layer in probe.layers]),
        "Replace the hidden Sigmoid layers with ReLU (or use fewer of them) and keep fan-in "
        "scaled init (torch's default; He for ReLU); keeping the sigmoids, try a 10x larger "
        "learning rate.",
        layers[0].name)


def vanishing_numbers(layers: list, first: float, last: float, summed: bool, rows) -> str:
    said = []
    if summed:
        said.append(f"a first-layer RMS gradient {first:.3g}, {first / last:.2g} of the last "
                    f"layer's {last:.3g} ({(first / last) ** (1 / (len(layers) - 1)):.2g} kept "
                    "per layer)")
    if rows is not None:
        said.append(f"a row's gradient signal, sent back from the output, keeps {rows[0]:.2g} of "
                    f"its size {rows[2]} layer(s) back, through sigmoid/tanh slopes and weights "
                    f"({rows[1]:.2g} kept per layer)")
    return "; ".join(said)


def check_exploding_gradient(probe: Probe) -> Finding | None:
    layers = graded_layers(probe)
    if not layers:
        return None
    steps = {layer.name: probe.lr * rms(layer.grad_weight) / max(rms(layer.weight), 1e-12)
             for layer in layers} if probe.lr else {}
    growth = rms(layers[0].grad_weight) / max(rms(layers[-1].grad_weight), 1e-300) \
        if len(layers) > 1 else 0.0
    worst = max(steps, key=steps.get) if steps else None
    if growth <= EXPLODE_RATIO and (worst is None or steps[worst] <= MAX_RELATIVE_STEP):
        return None
    found = f"first/last RMS gradient {growth:.3g}"
    if worst:
        found += f", lr*|grad|/|weights| = {steps[worst]:.3g} in {worst}"
    return Finding(
        "exploding-gradient", "error",
        f"Gradients are large enough to throw the weights around. Found {found}.",
        dict(growth=growth, relative_step=steps, grad_rms=layer_norms(layers)),
        LOWER_LR + "use fan-in scaled init and scaled inputs.",
        worst or layers[0].name)


def decay_against_data(probe: Probe, names: list) -> tuple:
    """(pull, push): the decay's pull on the weights and the data's push, in the units the
    optimizer steps in. L2 decay (SGD, Adam's weight_decay) adds wd*w to the data gradient, so the
    two gradients compare. Decoupled decay (AdamW) shrinks p by lr*wd*p beside a normalised step of
    about lr per weight, so wd*|w| compares with that step's size (Adam's m_hat/sqrt(v_hat), read
    from the optimizer's state, else its upper bound 1 per weight)."""
    wd = probe.weight_decay
    w = norm_over(probe.params, names)
    if not probe.decoupled_decay:
        return wd * w, norm_over(probe.grads, names)
    size = sum(np.size(probe.params[n]) for n in names)
    step = probe.adaptive_step_rms if probe.adaptive_step_rms is not None else 1.0
    return wd * w / np.sqrt(size), step


def decay_had_time(probe: Probe) -> bool:
    """Decoupled decay shrinks the weights by (1 - lr*wd) a step: over fewer than 1/(lr*wd) steps
    it cannot have pulled them far (AdamW's default 0.01 at lr 1e-3 needs 100 000 steps)."""
    if not probe.decoupled_decay:
        return True
    steps = 0 if probe.history is None else len(probe.history)
    return bool(probe.lr) and probe.lr * probe.weight_decay * steps >= DECAY_HORIZON


def collapsed_by_a_penalty(probe: Probe) -> tuple | None:
    """(largest layer scale, first loss, what a fresh model scores) when every layer shrank to
    COLLAPSED of the fan-in scale in a failing run whose history started far above what outputs
    score: a pull to zero that is not the optimizer's, a penalty inside the logged loss."""
    scales = layer_scales(probe) if training_failing(probe) else {}
    early = first_loss_far(probe) if scales else None
    if early is None or max(scales.values()) >= COLLAPSED:
        return None
    return max(scales.values()), *early


def penalty_in_the_loss(probe: Probe) -> Finding | None:
    found = collapsed_by_a_penalty(probe)
    if found is None:
        return None
    scale, first, start = found
    return Finding(
        "excessive-weight-decay", "error",
        f"Something pulled every weight to zero, and it is not the optimizer (its weight decay "
        f"is 0): a penalty inside the loss the loop minimised. Found every layer's RMS x "
        f"sqrt(fan_in) at {scale:.2g} or less (fan-in scaled weights: ~1), after a history that "
        f"started at {first:.4g}, {first / start:.3g}x what a fresh model's outputs score "
        f"({start:.4g}): the excess was the penalty on the initial weights, and the model now "
        f"outputs a constant's loss ({probe.loss_ratio:.0%} of it).",
        dict(weight_decay=0.0, penalty_in_loss=True, largest_scale=scale, first_loss=first,
             trained_steps=trained_steps(probe), forgets_alone=True),
        "Lower the penalty's coefficient (an L2 term lambda * sum(w ** 2) in the loss wants "
        "lambda about 1e-5 to 1e-3), or drop it and set the optimizer's weight_decay instead.",
        None)


def check_excessive_weight_decay(probe: Probe) -> Finding | None:
    wd = probe.weight_decay or 0.0
    names = [n for n, g in probe.grads.items() if g is not None]
    if wd <= 0:
        return penalty_in_the_loss(probe)
    if not names or not decay_had_time(probe):
        return None
    pull, push = decay_against_data(probe, names)
    share, forgets = pull / max(push, 1e-300), (probe.lr or 0.0) * wd
    if (share < DECAY_DOMINATES and forgets < FORGETS) or probe.loss_ratio < DECAY_LEARNED_LITTLE:
        return None
    against = "Adam's normalised step" if probe.decoupled_decay else "a data gradient"
    return Finding(
        "excessive-weight-decay", "error",
        f"Weight decay {wd:g} pulls the weights to zero harder than the data pulls them to fit, "
        f"so the model learns little. Found decay pull {pull:.3g} against {against} of "
        f"{push:.3g} (ratio {share:.3g})"
        + (f"; lr x wd = {forgets:.3g}: each step keeps {max(1 - forgets, 0):.0%} of the weights"
           if forgets >= FORGETS else "")
        + f", loss at {probe.loss_ratio:.0%} of a constant predictor's.",
        dict(weight_decay=wd, decay_pull=float(pull),
             data_gradient=float(push), ratio=float(share), decoupled=probe.decoupled_decay,
             lr_times_wd=forgets, forgets_alone=forgets >= FORGETS),
        "Lower the weight decay (typical values are 1e-5 to 1e-2).", None)


def through_depth(f: Finding) -> bool:
    return bool(f.evidence.get("through_depth"))


def forgets_alone(f: Finding) -> bool:
    """Weight decay whose lr x wd alone shrinks the weights fast, whatever else happened."""
    return bool(f.evidence.get("forgets_alone"))


EXCESSIVE_WEIGHT_DECAY_CHECK = Check(
    "excessive-weight-decay", check_excessive_weight_decay, needs=(FINITE,),
    evidence=(FAILING_RUN,),
    explains=(Explains(STUCK + UNITS + ("unstable-learning-rate", "learning-rate-too-small",
                                        "exploding-gradient")),
              Explains(("bad-initialization",), trained)),
    # decay that outweighs the data only because steps past the edge (seen at their step, or
    # in a history that rose far above its start) grew the weights it pulls on: AdamW's
    # default 0.01 under a lr x500, the lr's consequence
    ruled_out_by=(RuledOut(("unstable-learning-rate",), by_steps_seen_overshooting,
                           unless=forgets_alone),))
EXPLODING_GRADIENT_CHECK = Check(
    "exploding-gradient", check_exploding_gradient, needs=(FINITE, FAILING),
    evidence=(FAILING_RUN,), rewrites=(where_steps_tiny(LOWER_LR),),
    explains=(Explains(STUCK + ("non-finite", "loss-oscillation", "dead-relu",
                                "saturated-activation")),))
# a stack of sigmoid/tanh layers that loses a row's gradient signal on its way back; the units
# that saturate inside it, behind a first layer that passes, follow from its depth
VANISHING_GRADIENT_CHECK = Check(
    "vanishing-gradient", check_vanishing_gradient, needs=(FINITE, FAILING),
    evidence=(FAILING_RUN,),
    explains=(Explains(STUCK), Explains(("saturated-activation",), starts_inside)),
    # units that stopped passing signal shrink the gradient behind them: the gradient is not a
    # cause of its own there, unless the row signal fades through a sigmoid/tanh stack and the
    # saturation starts inside it
    ruled_out_by=(RuledOut(("saturated-activation",), saturated_at_the_input),
                  RuledOut(("dead-relu",), unless=through_depth)))
