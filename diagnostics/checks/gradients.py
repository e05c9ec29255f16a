"""Gradient sizes per layer: exploding, vanishing, and weight decay that outweighs the data.

Each verdict is given only when training is failing (see evidence.py): a healthy run near its
minimum has tiny gradients everywhere, and early layers of a healthy deep net have small ones.
"""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import (failing_evidence, learned_little,
                                         norm_over, training_failing, unless_lr_tiny)
from diagnostics.probe import Probe
from diagnostics.report import Finding

VANISH_RATIO = 1e-2     # first layer's RMS gradient under 1% of the last's: early layers barely learn
PER_LAYER_SHRINK = 0.3  # or under 30% kept per layer back, over >= 2 layers, in a model that learned
                        # nothing: fresh relu/tanh/elu MLPs keep 0.36-1.1 per layer, sigmoid stacks
                        # 0.09-0.3 (measured over torch/Xavier/He inits, 3 widths, 3 seeds)
MIN_HOPS = 2            # one layer's drop is normal (a sigmoid's slope is at most 1/4)
SHRINKING_KINDS = ("sigmoid",)  # the per-layer rule needs >= 2 such layers, whose slope <= 1/4 is
                        # the mechanism; wide He-init ReLU nets on noise labels also read 0.14 per
                        # layer (row statistics, not the chain rule) and train fine
STATIONARY = 1e-3      # |grad| |w| / loss over every parameter: the loss's relative change for a
                        # relative move of the weights. A 2-8-1 linear net at XOR's best linear
                        # fit measured 5e-7 to 7e-7 (3 seeds); deep sigmoid stacks stuck at chance
                        # 0.33-1.2 (fresh and trained, 2 seeds): under 1e-3 the model sits at a
                        # minimum it can reach, and small gradients there did not vanish
EXPLODE_RATIO = 1e2     # first layer's RMS gradient 100x the last's: it grows layer by layer
MAX_RELATIVE_STEP = 1.0  # lr * |grad| > |weights|: one step would move a layer by more than its size
DECAY_DOMINATES = 0.5   # decay pull at least half the data gradient's...
DECAY_LEARNED_LITTLE = 0.5  # ...while the loss is still half a constant predictor's
FORGETS = 0.1           # lr * wd: each step multiplies the weights by 1 - lr*wd, so at 0.1 they keep
                        # ~10 steps of what they learned (at lr*wd = 1: nothing). Healthy decay
                        # sits at lr*wd ~ 1e-5 to 1e-3
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


def check_vanishing_gradient(probe: Probe) -> Finding | None:
    layers = graded_layers(probe)
    if len(layers) < 2 or not probe.finite or not training_failing(probe) \
            or at_a_stationary_point(probe):
        return None
    first, last = rms(layers[0].grad_weight), rms(layers[-1].grad_weight)
    if last == 0 or not (first < VANISH_RATIO * last or shrinks_every_layer(probe, first / last)):
        return None
    return Finding(
        "vanishing-gradient", "error",
        f"The gradient shrinks on its way back to the first layer, which barely learns while the "
        f"loss stays high. Found a first-layer RMS gradient {first:.3g}, {first / last:.2g} of the "
        f"last layer's {last:.3g} ({(first / last) ** (1 / (len(layers) - 1)):.2g} kept per layer).",
        dict(failing_evidence(probe), ratio=first / last,
             per_layer=(first / last) ** (1 / (len(layers) - 1)), grad_rms=layer_norms(layers),
             activations=[layer.activation for layer in probe.layers]),
        "Replace the hidden Sigmoid layers with ReLU (or use fewer of them) and keep fan-in "
        "scaled init (torch's default; He for ReLU); keeping the sigmoids, try a 10x larger "
        "learning rate.",
        layers[0].name)


def check_exploding_gradient(probe: Probe) -> Finding | None:
    layers = graded_layers(probe)
    if not layers or not probe.finite or not training_failing(probe):
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
        dict(failing_evidence(probe), growth=growth, relative_step=steps,
             grad_rms=layer_norms(layers)),
        unless_lr_tiny(probe, "Lower the learning rate or clip the gradient norm; ")
        + "use fan-in scaled init and scaled inputs.",
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


def check_excessive_weight_decay(probe: Probe) -> Finding | None:
    wd = probe.weight_decay or 0.0
    names = [n for n, g in probe.grads.items() if g is not None]
    if wd <= 0 or not names or not probe.finite or not decay_had_time(probe):
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
        dict(failing_evidence(probe), weight_decay=wd, decay_pull=float(pull),
             data_gradient=float(push), ratio=float(share), decoupled=probe.decoupled_decay,
             lr_times_wd=forgets),
        "Lower the weight decay (typical values are 1e-5 to 1e-2).", None)
