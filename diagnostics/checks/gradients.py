"""Gradient sizes per layer: exploding, vanishing, and weight decay that outweighs the data.

Each verdict is given only when training is failing (see evidence.py): a healthy run near its
minimum has tiny gradients everywhere, and early layers of a healthy deep net have small ones.
"""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import LEARNED_NOTHING, failing_evidence, training_failing
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
EXPLODE_RATIO = 1e2     # first layer's RMS gradient 100x the last's: it grows layer by layer
MAX_RELATIVE_STEP = 1.0  # lr * |grad| > |weights|: one step would move a layer by more than its size
DECAY_DOMINATES = 0.5   # decay pull at least half the data gradient's...
DECAY_LEARNED_LITTLE = 0.5  # ...while the loss is still half a constant predictor's


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


def graded_layers(probe: Probe) -> list:
    return [layer for layer in probe.layers if layer.grad_weight is not None]


def layer_norms(layers) -> dict:
    return {layer.name: round(rms(layer.grad_weight), 9) for layer in layers}


def shrinks_every_layer(probe: Probe, ratio: float) -> bool:
    hops = len(graded_layers(probe)) - 1
    shrinking = sum(layer.activation in SHRINKING_KINDS for layer in probe.hidden)
    return min(hops, shrinking) >= MIN_HOPS and probe.loss_ratio >= LEARNED_NOTHING and \
        ratio ** (1 / hops) < PER_LAYER_SHRINK


def check_vanishing_gradient(probe: Probe) -> Finding | None:
    layers = graded_layers(probe)
    if len(layers) < 2 or not probe.finite or not training_failing(probe):
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
        "Use ReLU-family hidden activations (or fewer sigmoid layers), He/Xavier init, or a larger "
        "learning rate with cross-entropy.",
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
        "Lower the learning rate or clip the gradient norm; use fan-in scaled init and scaled inputs.",
        worst or layers[0].name)


def check_excessive_weight_decay(probe: Probe) -> Finding | None:
    wd = probe.weight_decay or 0.0
    names = [n for n, g in probe.grads.items() if g is not None]
    if wd <= 0 or not names or not probe.finite:
        return None
    pull = wd * np.sqrt(sum(np.sum(np.square(probe.params[n])) for n in names))
    push = np.sqrt(sum(np.sum(np.square(probe.grads[n])) for n in names))
    share = pull / max(push, 1e-300)
    if share < DECAY_DOMINATES or probe.loss_ratio < DECAY_LEARNED_LITTLE:
        return None
    return Finding(
        "excessive-weight-decay", "error",
        f"Weight decay {wd:g} pulls the weights to zero harder than the data pulls them to fit, "
        f"so the model learns little. Found decay pull wd*|w| = {pull:.3g} against a data "
        f"gradient of {push:.3g} (ratio {share:.3g}), loss at {probe.loss_ratio:.0%} of a "
        "constant predictor's.",
        dict(failing_evidence(probe), weight_decay=wd, decay_pull=float(pull),
             data_gradient=float(push), ratio=float(share)),
        "Lower the weight decay (typical values are 1e-5 to 1e-2).", None)
