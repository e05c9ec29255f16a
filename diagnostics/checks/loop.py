"""The training loop's bookkeeping, read off what it left behind: a .grad that kept summing over
steps, an optimizer that holds some other model's parameters, parameters the loss's gradient never
reaches (a cut graph, a module never called), and a model mostly frozen."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.evidence import (against_reference, finite_losses, norm_over,
                                         reference_shortfall, training_failing)
from diagnostics.checks.record import (BLOWUP, FAILING_RUN, FINITE, STUCK, UNITS, Check, Explains,
                                       RuledOut)
from diagnostics.checks.timeline import (GRADLESS_FIX, MIN_LOGGED, NEVER_STEPPED_FIX,
                                         started_high_by_the_sum)
from diagnostics.checks.weights import grown_in_training
from diagnostics.probe import Probe
from diagnostics.report import Finding

ACCUMULATED = 1.5   # stored .grad over the largest single row's gradient. A batch gradient of a
                    # mean loss is an average of row gradients, so at most the largest row's;
                    # normal loops measured 0.000-0.6 (17 loops x 5 seeds, SGD and Adam, batch 1 to
                    # full, held-out and subsampled rows); 1.5 leaves room for the one step taken
                    # since and for rows outside a subsample
UNREACHED_SHARE = 0.25  # or this share of its norm on units to which no row's gradient gives as
                        # much: the same normal loops measured 0-0.003 (0.003 where the lr made the
                        # loss jump); loops that never zero .grad 0.42-1, the sum staying on the
                        # units they killed
MOSTLY_FROZEN = 0.9     # >= 90% frozen: a backbone, not a layer or two
FROZEN_BEHIND = 0.05    # ...and >= 5% of the best reference's gain missed: a random 256-256 tanh
                        # backbone frozen on moons measured 0.107; a trained digits backbone
                        # frozen for its head stays below 0 (tests/diagnostics/test_check_loop.py)
FROZEN_SHARE = 0.5  # a failing run with half its parameters frozen: name it (freezing a feature
                   # extractor is a choice, but then it is the first suspect)
NAMES_SHOWN = 4     # parameter names listed in a message; the evidence has them all


def unit_norms(g: np.ndarray) -> np.ndarray:
    """Norm of each output unit's slice: a weight's row, a bias's entry."""
    return np.sqrt(np.sum(np.square(g.reshape(len(g), -1), dtype=np.float64), axis=1))


def excess_over_units(stored: dict, bounds: dict) -> float:
    """How much of the stored gradient no row's gradient can give, unit by unit: all of it on a
    unit that is dead on every row."""
    over = [np.maximum(unit_norms(stored[n]) - b, 0.0) for n, b in bounds.items()]
    return float(np.sqrt(sum(np.sum(np.square(o)) for o in over)))


def stored_and_rows(probe: Probe) -> tuple | None:
    """(stored .grad norm, its excess over the per-unit bounds, largest row gradient norm, this
    batch's gradient norm) over the Linear parameters; None when the model holds no .grad there."""
    held, bounds = probe.stored_grads, probe.unit_grad_bounds
    if held is None or probe.row_grad_norms is None or not all(n in held for n in bounds):
        return None
    if any(probe.grads.get(n) is None for n in bounds):
        return None
    return (norm_over(held, bounds), excess_over_units(held, bounds),
            float(np.max(probe.row_grad_norms)), norm_over(probe.grads, bounds))


def check_accumulated_gradient(probe: Probe) -> Finding | None:
    """The caller's .grad is larger than a batch gradient of the loss can be: it summed over steps."""
    norms = stored_and_rows(probe)
    if norms is None or not np.isfinite(norms[0]) or norms[0] == 0:
        return None
    stored, excess, largest_row, batch = norms
    if stored < ACCUMULATED * largest_row and excess < UNREACHED_SHARE * stored:
        return None
    return Finding(
        "accumulated-gradient", "error" if training_failing(probe) else "warning",
        f"The gradient left in the model's .grad is larger than a gradient of the mean "
        f"{probe.loss_name} loss can be: a batch's gradient averages its rows' gradients, so "
        f"neither it nor any unit's share of it exceeds the largest row's. Found |.grad| "
        f"{stored:.4g} against {largest_row:.4g} for the largest of {len(probe.X)} rows' "
        f"({times(stored, largest_row)}) and {batch:.4g} for all of them together "
        f"({times(stored, batch)}); {excess / stored:.0%} of it on units that no row's gradient "
        f"reaches as far. .grad adds up loss.backward()'s gradients until it is zeroed, so each "
        f"step has moved the weights by the sum of every gradient so far, or the training loss "
        f"sums over the rows instead of averaging them.",
        {"stored_grad_norm": stored, "largest_row_grad_norm": largest_row,
         "batch_grad_norm": batch, "unreached_share": excess / stored,
         "parameters": list(probe.unit_grad_bounds)},
        "Call optimizer.zero_grad() every step, before loss.backward(). When accumulating "
        "micro-batches on purpose, divide each one's loss by their number and zero after each "
        "optimizer.step(); with a summed loss (reduction='sum'), average it instead, or divide "
        "the learning rate by the batch size.")


def times(a: float, b: float) -> str:
    return f"{a / b:.3g}x" if b > 0 else "where it is 0"


def grown_or_summed(cause: Finding, symptom: Finding) -> bool:
    """bad-initialization of weights grown in training, or of a first loss summed over its batch."""
    return grown_in_training(cause, symptom) or started_high_by_the_sum(cause, symptom)


def check_optimizer_mismatch(probe: Probe) -> Finding | None:
    """Trainable parameters that the optimizer given does not hold never change in training."""
    missing, trainable = probe.optimizer_missing, list(probe.grads)
    if not missing or not trainable:
        return None
    every = len(missing) >= len(trainable)
    return Finding(
        "optimizer-mismatch", "error" if every or training_failing(probe) else "warning",
        f"Parameters that the optimizer does not hold are never changed by optimizer.step(), and "
        f"optimizer.zero_grad() leaves their .grad summing. "
        f"Found {len(missing)} of the model's {len(trainable)} trainable parameter tensors "
        f"missing from the {probe.optimizer} given ({listed(missing)})"
        + (": it updates some other parameters, not this model's." if every else "."),
        {"missing": list(missing), "trainable": len(trainable)},
        "Build the optimizer from this model's parameters, after the model is made: "
        "torch.optim.Adam(model.parameters(), ...). A model made again after its optimizer (in "
        "a function, a loop or a notebook cell) leaves the optimizer updating the old one. To "
        "freeze parameters on purpose, call requires_grad_(False) on them.")


def listed(names) -> str:
    return ", ".join(names[:NAMES_SHOWN]) + (", ..." if len(names) > NAMES_SHOWN else "")


def check_no_gradient_path(probe: Probe) -> list:
    """Parameters the loss does not reach, in the model or in the loop."""
    return [f for f in (check_cut_in_forward(probe), check_no_grad_at_step(probe),
                        check_cut_in_loop(probe)) if f]


def check_cut_in_forward(probe: Probe) -> Finding | None:
    """Parameters that require grad but get none: the loss does not reach them."""
    unreached = [n for n, g in probe.grads.items() if g is None]
    if not unreached:
        return None
    called = {layer.path: layer.name for layer in probe.layers}
    cut = [n for n in unreached if n.rpartition(".")[0] in called]
    unused = [n for n in unreached if n not in cut]
    return Finding(
        "no-gradient-path", "error" if cut else "info",
        f"Parameters that require grad but get no gradient from the loss never train. Found "
        + (f"{len(cut)} in layers the forward pass calls, so the graph is cut between them and "
           f"the loss ({listed(cut)}: a .detach(), .data, .item(), a numpy round trip or "
           f"torch.no_grad() inside forward)" if cut else "")
        + ("; " if cut and unused else "")
        + (f"{len(unused)} in modules forward never uses ({listed(unused)})" if unused else "")
        + ".",
        {"cut": cut, "unused": unused, "requires_grad": len(probe.grads)},
        "Keep forward differentiable from every trained layer to the output: no .detach(), "
        ".data, .item() or numpy conversion of activations, no torch.no_grad() in forward; "
        "remove modules forward does not use, or call them.",
        called[cut[0].rpartition(".")[0]] if cut else None)


def stepped_without_grad(probe: Probe) -> bool:
    """A history of losses, no trainable parameter holding a .grad, and steps that moved nothing:
    an optimizer whose state shows no update, or (plain SGD keeps none) the optimizer given and
    every loss the first to the bit (a model without torch's .grad, the numpy one, holds none).
    step() found no .grad to step with: it skips a parameter whose .grad is None. A loop that
    never calls step() leaves backward's .grad filled."""
    logged = 0 if probe.history is None else len(probe.history)
    return logged >= MIN_LOGGED and bool(probe.grads) and probe.stored_grads is None and (
        probe.steps_taken == 0 or (probe.optimizer is not None and probe.lr != 0
                                   and (history_unchanged(probe) or unapplied(probe))))


def unapplied(probe: Probe) -> bool:
    """Plain SGD keeps no state: weights that one step would still move, which the logged
    steps never moved (unapplied_gain)."""
    return probe.steps_taken is None and unapplied_gain(probe) is not None


def history_unchanged(probe: Probe) -> bool:
    """Every logged loss finite and equal to the first: weights a step moves change the loss of
    the batch they are scored on (a full batch's at every step)."""
    h = np.asarray(probe.history, dtype=np.float64)
    return bool(np.all(np.isfinite(h)) and np.all(h == h[0]))


def check_no_grad_at_step(probe: Probe) -> Finding | None:
    """The loop's loss never reached the parameters, or its .grad was gone when step() ran."""
    if not stepped_without_grad(probe):
        return None
    reached, n = sum(g is not None for g in probe.grads.values()), len(probe.history)
    unchanged = probe.steps_taken != 0 and history_unchanged(probe)
    unapplied_step = None if probe.steps_taken == 0 or unchanged else unapplied_gain(probe)
    moved = f"a {probe.optimizer} whose state holds no update" if probe.steps_taken == 0 else \
        f"all {n} losses equal to the first, to the bit (a step that moves the weights changes " \
        f"them)" if unchanged else unapplied_in_words(unapplied_step, n)
    return Finding(
        "no-gradient-path", "error",
        f"No parameter holds a .grad after the loop, and torch's optimizers skip a parameter "
        f"whose .grad is None: step() left the weights as they were. Found .grad None on all "
        f"{len(probe.grads)} trainable parameter tensors after a history of {n} losses, "
        f"{moved}, and diagnose()'s own backward of the loss reaching {reached} of them: the "
        f"loop's backward() never reached the parameters (its loss cut from the model), or "
        f"zero_grad() ran between backward() and step().",
        {"steps_logged": n, "grads_none": len(probe.grads), "reached_by_loss": reached,
         "optimizer": probe.optimizer, "steps_taken": probe.steps_taken,
         "history_unchanged": unchanged, "unapplied_step": unapplied_step},
        GRADLESS_FIX)


def cut_in_loop(probe: Probe) -> list:
    """Trainable parameters the optimizer holds and diagnose()'s own backward of the loss reaches,
    left with .grad None after a loop whose backward() filled the .grad of others: zero_grad()
    resets every parameter at once, so the loop's graph never reached these (torch.no_grad() or a
    .detach() around part of the model in the loop, not in forward)."""
    logged = 0 if probe.history is None else len(probe.history)
    held, missing = probe.stored_grads, set(probe.optimizer_missing or ())
    if held is None or logged < MIN_LOGGED:
        return []
    return [n for n, g in probe.grads.items() if g is not None and n not in held
            and n not in missing]


def check_cut_in_loop(probe: Probe) -> Finding | None:
    """Part of the model the loop's loss never reached, though the model's forward reaches it."""
    cut = cut_in_loop(probe)
    if not cut:
        return None
    called = {layer.path: layer.name for layer in probe.layers}
    return Finding(
        "no-gradient-path", "error" if training_failing(probe) else "warning",
        f"Parameters that the loop's backward() never reaches keep their initial values. Found "
        f".grad None after the loop on {len(cut)} of {len(probe.grads)} trainable parameter "
        f"tensors ({listed(cut)}) while {len(probe.stored_grads)} hold one, though the "
        f"optimizer holds them and diagnose()'s own backward of the loss through forward "
        f"reaches them: the loop computed those layers under torch.no_grad() or cut them off "
        f"with .detach() before the loss.",
        {"cut_in_loop": cut, "holding_grad": len(probe.stored_grads),
         "requires_grad": len(probe.grads)},
        "Compute every layer you train with gradients on: no torch.no_grad(), .detach() or "
        ".data around part of the model in the training loop; to freeze those layers on "
        "purpose, call requires_grad_(False) on their parameters and leave them out of the "
        "optimizer.", called.get(cut[0].rpartition(".")[0]))


def frozen_features_limit(probe: Probe, share: float) -> bool:
    """Nearly all of the model frozen, and the run short of what nearest neighbours or a linear
    fit reach on held-out rows: the frozen features, not the data, set the limit."""
    shortfall = reference_shortfall(probe)
    return share >= MOSTLY_FROZEN and shortfall is not None and shortfall >= FROZEN_BEHIND


def check_frozen_parameters(probe: Probe) -> Finding | None:
    """A failing run on a model whose parameters mostly do not require grad."""
    frozen = [n for n in probe.params if n not in probe.grads]
    sizes = {n: np.size(p) for n, p in probe.params.items()}
    share = sum(sizes[n] for n in frozen) / max(sum(sizes.values()), 1)
    if share < FROZEN_SHARE or not (training_failing(probe) or frozen_features_limit(probe, share)):
        return None
    return Finding(
        "frozen-parameters", "warning",
        f"Parameters with requires_grad=False never train, and training is failing or behind a "
        f"simple fit of the same rows. Found {share:.0%} of the model's {sum(sizes.values())} "
        f"parameters frozen, in {len(frozen)} of {len(sizes)} tensors ({listed(frozen)}), loss at "
        f"{probe.loss_ratio:.0%} of a constant predictor's{against_reference(probe)}.",
        {"frozen": frozen, "frozen_share": share},
        "Unfreeze them (p.requires_grad_(True)) and give them to the optimizer, or, if they are "
        "frozen on purpose, check that the trainable part can fit the data on its own.")


def check_step_never_called(probe: Probe) -> Finding | None:
    """A history of losses, and an optimizer whose state shows no step, or (plain SGD keeps no
    state) weights still where one gradient step would gain more than every logged step did:
    the weights are the initial ones (a watched run tells it for every optimizer,
    diagnostics.checks.timeline)."""
    logged = 0 if probe.history is None else len(probe.history)
    if logged < MIN_LOGGED or stepped_without_grad(probe):
        return None
    if probe.steps_taken is None:
        return never_applied(probe, logged)
    if probe.steps_taken != 0:
        return None
    return Finding(
        "step-never-called", "error",
        f"The optimizer never stepped, so the weights never changed: the loss only measures the "
        f"initial model. Found a history of {logged} losses and a {probe.optimizer} whose state "
        "holds no update (step() writes it on every call).",
        {"steps_logged": logged, "steps_taken": 0, "optimizer": probe.optimizer},
        NEVER_STEPPED_FIX)


STEP_GAIN = 0.001       # one step at the run's lr gains >= 0.1% of the loss on X: more than
                        # rounding (never-stepped SGD runs measured 0.24% on digits at init, 1.2-19%
                        # on the fault matrix's programs)...
APPLIED_SHARE = 0.1     # ...and the logged steps moved the loss by under a tenth of what as many
                        # steps gaining that much would: steps taken gain about as much as the next
                        # one would (a slow lr's history moves by their sum, an escape from a
                        # plateau gains more as it goes), so a tenth leaves a wide margin; read over
                        # the whole history and over its last half, the last to see a recent start
QUARTER = 4             # each span compares quarter means: a mini-batch history's noise (one
                        # batch's loss) averages out over 50 of 200 steps
LEVEL_AS_NOW = 0.02     # and the history's level is within 2% of the loss of the model as it is
                        # now: the logged losses were scored on these weights (never-stepped runs
                        # measured 0-0.3%; a loop that never zeroed .grad 4-35%; one that fed the
                        # model its batches scrambled, xb.t().reshape, 4.8% on moons)


def quarter_means(h: np.ndarray) -> list:
    k = len(h) // QUARTER
    return [float(np.mean(h[i * k:(i + 1) * k])) for i in range(QUARTER)]


def unapplied_gain(probe: Probe) -> dict | None:
    """One plain gradient step at the run's lr (its L2 decay included) from the weights as they
    are, against the logged history: where as many steps gaining that much would have moved the
    loss ten times as far as the history moved, on weights whose loss the history kept
    measuring, the steps were never taken."""
    h, lr = finite_losses(probe), probe.lr
    if probe.stepped_loss is None or probe.optimizer is None or not lr or lr <= 0 \
            or len(h) < max(MIN_LOGGED, QUARTER) \
            or not np.isfinite(probe.loss) or probe.loss <= 0 or not training_failing(probe):
        return None
    after = probe.stepped_loss(lr, 0.0 if probe.decoupled_decay else probe.weight_decay)
    gain, q, span = probe.loss - after, quarter_means(h), len(h) // QUARTER
    moved = {"history_start": q[0], "history_third_quarter": q[2], "history_end": q[-1]}
    if not np.isfinite(gain) or gain < STEP_GAIN * probe.loss \
            or q[0] - q[-1] >= APPLIED_SHARE * (QUARTER - 1) * span * gain \
            or q[2] - q[-1] >= APPLIED_SHARE * span * gain \
            or abs(float(np.mean(h)) - probe.loss) > LEVEL_AS_NOW * probe.loss:
        return None
    return {"loss": probe.loss, "loss_after_one_step": after, **moved,
            "history_mean": float(np.mean(h)), "lr": lr, "steps_apart": span}


def unapplied_in_words(seen: dict, logged: int) -> str:
    return (f"one plain step at lr {seen['lr']:.4g} (along the loop's last .grad, or the "
            f"gradient on X where it left none) taking the loss on X from {seen['loss']:.4g} "
            f"to {seen['loss_after_one_step']:.4g}, while {logged} logged steps moved it from "
            f"{seen['history_start']:.4g} (their first quarter's mean) to "
            f"{seen['history_end']:.4g} (their last), not a tenth of what as many such steps "
            f"would, the history's mean {seen['history_mean']:.4g} the loss of the model as it "
            f"is now")


def never_applied(probe: Probe, logged: int) -> Finding | None:
    seen = unapplied_gain(probe)
    if seen is None:
        return None
    return Finding(
        "step-never-called", "error",
        f"The weights are where one gradient step would still move the loss, yet the logged steps "
        f"never moved it: the loop's steps did not reach these weights. Found "
        f"{unapplied_in_words(seen, logged)} (a {probe.optimizer or 'plain SGD'} keeps no state "
        f"that would count its steps).",
        dict(seen, steps_logged=logged, steps_taken=None, optimizer=probe.optimizer),
        NEVER_STEPPED_FIX)


def inferred_from_a_step(ruled: Finding, by: Finding) -> bool:
    """step-never-called read from the weights a step would still move (no optimizer state to
    count steps): a clipped step, a .grad summed over steps or an optimizer holding other
    parameters leaves the weights so too, and steps that overshoot (past the stability edge,
    jumping up and down) or that weight decay undoes (at lr x wd = 1 each step replaces the
    weights) do not add up either: each names the cause itself."""
    return "loss_after_one_step" in ruled.evidence


STEPS_THAT_DO_NOT_ADD_UP = ("optimizer-mismatch", "shrunk-gradient", "accumulated-gradient",
                            "unstable-learning-rate", "loss-oscillation", "excessive-weight-decay")

def of_parameters_it_lacks(ruled: Finding, by: Finding) -> bool:
    """accumulated-gradient on parameters the optimizer does not hold: its zero_grad() never
    reaches them, so the summed .grad is optimizer-mismatch's consequence, not a loop of its own."""
    return bool(set(by.evidence.get("missing", ())) & set(ruled.evidence.get("parameters", ())))


def at_the_step(cause: Finding, symptom: Finding) -> bool:
    """no-gradient-path of the loop (no .grad when step() ran): the weights are the initial ones."""
    return "grads_none" in cause.evidence or "steps_without_grad" in cause.evidence


# nothing updated the weights: whatever the initial model does, it keeps doing
INITIAL_MODEL = ("single-class-output", "bad-initialization", "unstable-learning-rate")
STEP_NEVER_CALLED_CHECK = Check(
    "step-never-called", check_step_never_called,
    explains=(Explains(STUCK + UNITS + INITIAL_MODEL + ("learning-rate-too-small",
                                                        "low-capacity")),),
    ruled_out_by=(RuledOut(STEPS_THAT_DO_NOT_ADD_UP, inferred_from_a_step),))
OPTIMIZER_MISMATCH_CHECK = Check("optimizer-mismatch", check_optimizer_mismatch,
                                 evidence=(FAILING_RUN,), explains=(Explains(STUCK + UNITS),))
NO_GRADIENT_PATH_CHECK = Check("no-gradient-path", check_no_gradient_path,
                               explains=(Explains(STUCK + UNITS),
                                         Explains(INITIAL_MODEL, at_the_step)))
ACCUMULATED_GRADIENT_CHECK = Check(
    "accumulated-gradient", check_accumulated_gradient, needs=(FINITE,), evidence=(FAILING_RUN,),
    explains=(Explains(STUCK + UNITS + BLOWUP + ("unstable-learning-rate",)),
              Explains(("bad-initialization",), grown_or_summed)),
    ruled_out_by=(RuledOut(("optimizer-mismatch",), of_parameters_it_lacks),))
FROZEN_PARAMETERS_CHECK = Check("frozen-parameters", check_frozen_parameters,
                                evidence=(FAILING_RUN,), explains=(Explains(STUCK + UNITS),))
