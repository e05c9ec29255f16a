"""The fault operators: each one real fault, injected into a healthy program as one change.

They come from DeepCrime's mutation operators (Humbatova et al., ISSTA 2021: change learning
rate, weights initialisation, activation function, remove activation, loss function, layer
size, add weight regularisation, unscale/shuffle the training data, change labels, freeze
layers), from AUTOTRAINER's symptoms (Zhang et al., ICSE 2021: vanishing and exploding
gradient, dying ReLU, oscillating loss, slow convergence) and DeepDiagnosis's (Wardat et al.,
ICSE 2022: improper data, wrong activation, wrong loss, wrong initialisation), and from the
loop bugs users ask about on forums (no ``zero_grad``, ``.detach()`` in forward, an optimizer
holding an old model's parameters, batches in label order, a scheduler that kills the lr).

``causes`` is written here, before any scoring, from what the fault *is*: the codes of
``diagnostics.CODES`` whose rule and fix name that cause (a consequence, such as a constant
output or a plateau, does not name it). They are the matrix's ground truth, not a record of
what diagnose() says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from cases.faults.programs import Program, dataset

LR_FACTOR = 100          # lr x100 or /1000: far outside the 10x a user might mistype, as in
LR_LOW_FACTOR = 1000     # DeepCrime's learning-rate mutants that kill training
UNSCALED_FACTOR = 1000   # "the same data in other units": metres read as millimetres
DECAY_SHRINK = 0.1       # lr x wd = 0.1: weight decay alone shrinks every weight by 10% a step
DEAD_BIAS = -10.0        # standardised inputs through torch's init give |z| < ~3: -10 kills all
DEEP_SIGMOID_LAYERS = 8  # the course report's sigmoid stack was 2 deep at <= 1/4 per layer
SCHEDULE_STEPS = 10      # StepLR(10, 0.1): after 100 steps the lr is 1e-10 of its start
BACKBONE = (256, 256)    # a random "pretrained" backbone left frozen: 97-99% of the parameters
ADAM_LR_FACTOR = 500     # Adam 1e-3 -> 0.5 (docs/watch.md's case): Adam moves every weight by
                         # ~lr a step whatever the gradient, and these weights are ~0.1-0.3
TINY_CLIP_NORM = 1e-3    # a max_norm 1/240-1/2200 of the SGD programs' gradient norms (0.24-2.2)
ADAM_LR = 1e-3           # torch's default Adam lr: what a user switching to Adam keeps
DEEP_RELU_LAYERS = 6     # N(0, 1) weights multiply the signal by ~sqrt(fan_in / 2) = 4-6 a layer:
                         # 6 layers start the loss 1e5x a constant's (docs/watch.md measured)
TINY_CLIP_VALUE = 1e-4  # 1/14-1/1400 of the SGD programs' largest .grad entries at their healthy
                        # end (0.0014-0.14 over 3 seeds), more at the start
EPOCH_DECAY = (5, 0.5)   # StepLR "halve every 5 epochs", meant per epoch (2-3 halvings here);
                         # stepped per batch it halves every 5 steps: under 1e-3 by step 50


@dataclass(frozen=True)
class Operator:
    name: str
    source: str                             # where this fault is documented
    mutate: Callable[[Program], Program]
    causes: frozenset                       # codes that name the cause (ground truth)
    applies: Callable[[Program], bool] = lambda p: True

    def __call__(self, program: Program) -> Program:
        if not self.applies(program):
            raise ValueError(f"operator {self.name} does not apply to program {program.name}")
        return replace(self.mutate(program), name=f"{program.name}+{self.name}")


# ----------------------------------------------------------------- where an operator applies
def is_classifier(p: Program) -> bool:
    return p.loss in ("cross_entropy", "bce_with_logits")


def is_multiclass(p: Program) -> bool:
    return p.loss == "cross_entropy" and dataset(p.data).classes >= 3


def is_regression(p: Program) -> bool:
    return p.loss == "mse"


def has_minibatches(p: Program) -> bool:
    return p.batch_size is not None


def uses_relu(p: Program) -> bool:
    return p.activation == "relu"


def uses_adam(p: Program) -> bool:
    return p.optimizer in ("adam", "adamw")


# ----------------------------------------------------------------- the operators
LR_CAUSES = frozenset({"unstable-learning-rate", "non-finite", "exploding-gradient",
                       "loss-oscillation"})

OPERATORS = {op.name: op for op in (
    # Every fix of these four says "lower the learning rate": a blow-up (non-finite), steps
    # larger than the weights (exploding-gradient), lr x lambda_max past 2 (unstable-learning-
    # rate), and overshooting up and down (loss-oscillation) each name an lr far too high.
    Operator("lr-too-high", "DeepCrime change-learning-rate; AUTOTRAINER oscillating loss",
             lambda p: replace(p, lr=p.lr * LR_FACTOR), LR_CAUSES),
    # Only learning-rate-too-small says the step is too short; a plateau is its symptom.
    Operator("lr-too-low", "DeepCrime change-learning-rate; AUTOTRAINER slow convergence",
             lambda p: replace(p, lr=p.lr / LR_LOW_FACTOR),
             frozenset({"learning-rate-too-small"})),
    # The weights were set wrong: bad-initialization names it. The dead, saturated or
    # symmetric units and the constant output that follow are its consequences.
    Operator("zero-init", "DeepCrime change-weights-initialisation (zeros); forum classic",
             lambda p: replace(p, init="zeros"), frozenset({"bad-initialization"})),
    Operator("huge-init", "DeepCrime change-weights-initialisation; DeepDiagnosis wrong init",
             lambda p: replace(p, init="huge"), frozenset({"bad-initialization"})),
    Operator("positive-init", "uniform[0, 1) weights and biases (the casebook's seed 002 post)",
             lambda p: replace(p, init="positive"), frozenset({"bad-initialization"})),
    # A bias of -10 kills every ReLU: dead-relu names the dead units, bad-initialization the
    # init that killed them; either is the cause a user can act on.
    Operator("dead-relu-bias", "AUTOTRAINER dying ReLU; forum: a large negative bias",
             lambda p: replace(p, hidden_bias=DEAD_BIAS),
             frozenset({"dead-relu", "bad-initialization"}), uses_relu),
    # A net without nonlinearity is a linear model; width 1 is a bottleneck: low-capacity's
    # rule names "no nonlinearity" and "a hidden layer <= 8 units".
    Operator("no-activation", "DeepCrime remove-activation-function",
             lambda p: replace(p, activation="none"), frozenset({"low-capacity"})),
    Operator("bottleneck", "DeepCrime change-layer-size (to 1 unit)",
             lambda p: replace(p, hidden=(1,) * len(p.hidden)), frozenset({"low-capacity"})),
    # Sigmoids stacked deep pass at most 1/4 of the gradient per layer: vanishing-gradient.
    Operator("deep-sigmoid-stack", "AUTOTRAINER vanishing gradient; the casebook's seed 003",
             lambda p: replace(p, activation="sigmoid",
                               hidden=(max(p.hidden),) * DEEP_SIGMOID_LAYERS),
             frozenset({"vanishing-gradient"})),
    # A probability head under a loss that takes logits (softmax twice, sigmoid into
    # bce_with_logits): loss-target-mismatch's rule names exactly this.
    Operator("sigmoid-head-on-logits", "DeepCrime change-activation (last layer); DeepDiagnosis",
             lambda p: replace(p, head="sigmoid"), frozenset({"loss-target-mismatch"}),
             is_classifier),
    Operator("softmax-head-under-ce", "forum classic: nn.Softmax before nn.CrossEntropyLoss",
             lambda p: replace(p, head="softmax"), frozenset({"loss-target-mismatch"}),
             lambda p: p.loss == "cross_entropy"),
    # Standardised targets lie on both sides of [0, 1]: output-range-mismatch.
    Operator("sigmoid-head-on-regression", "DeepDiagnosis wrong activation; the seed 004 thread",
             lambda p: replace(p, head="sigmoid"), frozenset({"output-range-mismatch"}),
             is_regression),
    # Class indices regressed as numbers under MSE: loss-target-mismatch (3..100 integers).
    Operator("mse-on-class-indices", "DeepCrime change-loss-function; the seed 004 thread",
             lambda p: replace(p, loss="mse", class_values=True),
             frozenset({"loss-target-mismatch"}), is_multiclass),
    # The .grad the loop leaves is larger than one batch's can be: accumulated-gradient.
    Operator("no-zero-grad", "forum classic: optimizer.zero_grad() forgotten",
             lambda p: replace(p, zero_grad=False), frozenset({"accumulated-gradient"})),
    # A summed loss makes the step batch-size times larger: accumulated-gradient's rule names
    # the summed loss; unstable-learning-rate names the step (lr x n) beyond the edge.
    Operator("summed-loss", "the casebook's seed 002 post: gradient not divided by n",
             lambda p: replace(p, summed_loss=True),
             frozenset({"accumulated-gradient", "unstable-learning-rate"})),
    Operator("unscaled-inputs", "DeepCrime unscale-training-data; DeepDiagnosis improper data",
             lambda p: replace(p, input_scale=p.input_scale * UNSCALED_FACTOR),
             frozenset({"unscaled-data"})),
    Operator("unscaled-targets", "forum classic: regression on raw targets (prices, counts)",
             lambda p: replace(p, target_scale=p.target_scale * UNSCALED_FACTOR),
             frozenset({"unscaled-data"}), is_regression),
    # Labels that do not depend on X: unpredictable-targets names it (neither a linear fit nor
    # nearest neighbours predicts held-out rows); learned-nothing's fix says "y shuffled apart".
    Operator("shuffled-labels", "DeepCrime change-labels / shuffle; forum: y permuted alone",
             lambda p: replace(p, labels_permuted=True),
             frozenset({"unpredictable-targets", "learned-nothing"})),
    Operator("excessive-weight-decay", "DeepCrime add-weights-regularisation; seed 003 report",
             lambda p: replace(p, weight_decay=DECAY_SHRINK / p.lr),
             frozenset({"excessive-weight-decay"})),
    Operator("detach-in-forward", "forum classic: .detach() / .item() / numpy inside forward",
             lambda p: replace(p, detach_hidden=True), frozenset({"no-gradient-path"})),
    Operator("stale-optimizer", "forum classic: the notebook cell that builds the model re-run",
             lambda p: replace(p, stale_optimizer=True), frozenset({"optimizer-mismatch"})),
    # Batches in label order: the net predicts the last batch's class. single-class-output's
    # fix is the one that names batches sorted by label.
    Operator("label-sorted-batches", "DeepCrime shuffle-training-data (removed); forum classic",
             lambda p: replace(p, label_sorted=True),
             frozenset({"unshuffled-batches", "single-class-output"}),
             lambda p: is_classifier(p) and has_minibatches(p)),
    Operator("lr-schedule-collapse", "forum classic: StepLR stepped every batch, not every epoch",
             lambda p: replace(p, lr_decay=(SCHEDULE_STEPS, 0.1), scheduler_per_batch=True),
             frozenset({"decayed-learning-rate"})),
    Operator("frozen-hidden-layers", "DeepCrime freeze layers; forum: requires_grad left False",
             lambda p: replace(p, frozen_hidden=True), frozenset({"frozen-parameters"})),
    # A backbone of two 256-unit layers frozen by mistake, only the head training: most of the
    # parameters never move, and the loss creeps down from a random features' fit.
    Operator("frozen-backbone", "forum: a backbone frozen for fine-tuning and never unfrozen",
             lambda p: replace(p, hidden=BACKBONE, frozen_hidden=True),
             frozenset({"frozen-parameters"})),
    # F.nll_loss on raw outputs (no log_softmax): it rewards the right class's score without
    # bound, and the loss runs below zero. loss-target-mismatch names the missing log_softmax.
    Operator("nll-on-raw-outputs", "forum classic: nll_loss without log_softmax",
             lambda p: replace(p, loss="nll"), frozenset({"loss-target-mismatch"}),
             lambda p: p.loss == "cross_entropy"),
    # ---- issue 21's watched cases (docs/watch.md), written before the matrix scored them
    # Adam's lr far too high: the same four codes as lr-too-high, each fix "lower the lr".
    Operator("adam-lr-too-high", "docs/watch.md: Adam at lr 0.5; forum: Adam with SGD's lr",
             lambda p: replace(p, lr=p.lr * ADAM_LR_FACTOR), LR_CAUSES, uses_adam),
    # N(0, 1) weights in a deep ReLU net: the init is the cause, as for huge-init. The blow-up
    # that may follow (non-finite, exploding-gradient) is its consequence, and their fixes lead
    # with the learning rate, which is not what is wrong here.
    Operator("normal-init-deep-relu", "docs/watch.md: N(0, 1) init, 6 ReLU layers; forum classic",
             lambda p: replace(p, activation="relu", init="normal",
                               hidden=(max(p.hidden),) * DEEP_RELU_LAYERS),
             frozenset({"bad-initialization"})),
    # The loop switched to Adam (torch's default lr) and zero_grad() left out: Adam normalises
    # the step, so the summed .grad is no larger a step, only a stale direction. Only
    # accumulated-gradient names it. On the SGD programs: Adam ones have no-zero-grad. The
    # switch to Adam alone (zero_grad kept) hurt 1 of those 15 runs (iris seed 1, 2026-12-03).
    Operator("no-zero-grad-adam", "docs/watch.md: no zero_grad under Adam; forum classic",
             lambda p: replace(p, optimizer="adam", lr=ADAM_LR, zero_grad=False),
             frozenset({"accumulated-gradient"}), lambda p: not uses_adam(p)),
    # loss.backward() and no optimizer.step(): the weights never move. Only step-never-called
    # (a watched run's code) names it; after the fact a model that never trained looks like
    # its init.
    Operator("no-optimizer-step", "docs/watch.md: step() never called; forum classic",
             lambda p: replace(p, optimizer_step=False), frozenset({"step-never-called"})),
    # clip_grad_norm_ with a max_norm far below the gradient's norm (1e-3 where the SGD programs'
    # gradients measure 0.24-2.2): every plain or momentum step a crawl. Adam divides the scale out
    # of its steps, so its programs are left out. Only shrunk-gradient names the clipping.
    Operator("clip-norm-tiny", "forum: clip_grad_norm_(max_norm) far below the gradient's norm",
             lambda p: replace(p, clip_norm=TINY_CLIP_NORM), frozenset({"shrunk-gradient"}),
             lambda p: not uses_adam(p)),
    # A per-epoch schedule stepped after every batch: decayed-learning-rate's fix names it.
    Operator("scheduler-per-batch", "docs/watch.md: StepLR stepped per batch; forum classic",
             lambda p: replace(p, lr_decay=EPOCH_DECAY, scheduler_per_batch=True),
             frozenset({"decayed-learning-rate"}), has_minibatches),
    # Every hidden unit a copy of its layer's first (weights and bias): the units get the same
    # gradient up to a scale where one output reads them, and the layer stays one function.
    # bad-initialization names the init; the plateau or constant output are its consequences.
    Operator("symmetric-init", "forum classic: rows initialised alike (w.data[:] = w.data[0])",
             lambda p: replace(p, init="symmetric"), frozenset({"bad-initialization"})),
    # nn.LogSoftmax(dim=0) before nll_loss: each class normalised over the batch's rows, so a
    # row's log-probabilities depend on its batch. loss-target-mismatch's rule names the dim.
    Operator("softmax-over-batch", "forum classic: LogSoftmax(dim=0) / F.log_softmax(x, dim=0)",
             lambda p: replace(p, head="log_softmax_over_batch", loss="nll"),
             frozenset({"loss-target-mismatch"}),
             lambda p: p.loss == "cross_entropy" and has_minibatches(p)),
    # ---- the probe's loop faults: step() ran and found no .grad to step with
    # loss.detach().requires_grad_() "fixes" backward's error: the .grad never reaches the
    # parameters, each step skips them all. no-gradient-path names the cut; step-never-called
    # reads the same empty optimizer state, and its fix (call step()) is not the one.
    Operator("detached-loss", "forum classic: loss.detach() / torch.tensor(loss.item()) before "
             "backward()", lambda p: replace(p, detached_loss=True),
             frozenset({"no-gradient-path"})),
    # zero_grad() moved between backward() and step(): every step finds .grad None.
    Operator("zero-grad-before-step", "forum classic: optimizer.zero_grad() just before step()",
             lambda p: replace(p, zero_grad=False, zero_grad_late=True),
             frozenset({"no-gradient-path"})),
    # clip_grad_value_ far below the gradient's entries: each plain or momentum step moves most
    # weights by lr x clip_value. Adam divides the scale out, so its programs are left out.
    Operator("clip-value-tiny", "forum: clip_grad_value_(clip_value) far below the gradient",
             lambda p: replace(p, clip_value=TINY_CLIP_VALUE), frozenset({"shrunk-gradient"}),
             lambda p: not uses_adam(p)),
)}


def applicable(program: Program) -> list:
    """The operators that apply to ``program``, in OPERATORS order."""
    return [op for op in OPERATORS.values() if op.applies(program)]
