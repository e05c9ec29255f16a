"""diagnose(): validate the call, read the model into probe data, run every check once, then
explain: root causes first, each with the findings that follow from it (diagnostics.explain)."""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch

from diagnostics import inputs, loaders, losses
from diagnostics.adapters import held_out_losses, torch_probe
from diagnostics.checks.evidence import (LEARNED_NOTHING, learned_little, reference_shortfall,
                                         training_failing)
from diagnostics.checks.outputs import history_shows_broadcast
from diagnostics.checks.units import layer_measurements
from diagnostics.explain import explain
from diagnostics.probe import Probe
from diagnostics.reference import PROB_EPS as REFERENCE_EPS, reference_of
from diagnostics.report import Report
from diagnostics.runner import run_checks
from diagnostics.timeline import Timeline
from diagnostics.watch import Run
from diagnostics.watch_report import merged, timeline_findings


TORCH_SCORED = ("l1", "smooth_l1", "huber")   # losses that reference.scorer has no numpy form of
ONE_THREAD_BELOW = 100_000   # parameters: smaller models gain nothing from threads, and on a busy
                             # machine torch's spinning threads make them 50x slower


@contextmanager
def one_thread_for_small(n_params: int):
    n = torch.get_num_threads()
    if n_params < ONE_THREAD_BELOW:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@contextmanager
def global_rng_untouched(model):
    """Whatever the caller's forward draws from torch, numpy or random is given back afterwards."""
    np_state, py_state = np.random.get_state(), random.getstate()
    devices = [p.device.index or 0 for p in model.parameters() if p.is_cuda][:1] \
        if isinstance(model, torch.nn.Module) else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def read_call(model, X, y, loss, history, optimizer, lr, weight_decay, X_val=None,
              y_val=None) -> dict:
    """Every argument checked and converted; raises ValueError/TypeError naming what was wrong."""
    kind, spec = inputs.model_kind(model), losses.read_loss(loss)
    rows = read_rows(model, kind, X, y, spec)
    Xn = rows["X"]
    val = inputs.checked_held_out(X_val, y_val, Xn.shape[1:], spec.name)
    settings = inputs.optimizer_settings(optimizer)
    lr = inputs.checked_rate(lr, "lr")
    wd = inputs.checked_rate(weight_decay, "weight_decay")
    return {"kind": kind, "name": spec.name, "loss": spec, **rows,
            "history": inputs.checked_history(history),
            "lr": lr if lr is not None else settings.get("lr"),
            "weight_decay": wd if wd is not None else settings.get("weight_decay", 0.0),
            "momentum": settings.get("momentum", 0.0), "optimizer": settings.get("optimizer"),
            "decoupled_decay": settings.get("decoupled_decay", False),
            "adaptive_step_rms": settings.get("adaptive_step_rms"),
            "initial_lr": settings.get("initial_lr"), "steps_taken": settings.get("steps_taken"),
            "optimizer_missing": inputs.parameters_outside(optimizer, model),
            "history_keeps_graphs": inputs.history_keeps_graphs(history), "val": val}


def read_rows(model, kind: str, X, y, spec) -> dict:
    """X, y (as the loss takes it), y as given, the rows given and the notes on how they were
    read: from arrays, tensors and DataFrames, or from a DataLoader or Dataset of (x, y) pairs."""
    notes, n_given = [], None
    if loaders.is_source(X):
        with global_rng_untouched(model):   # a shuffling loader or a random transform draws
            X, y, n_given, said = loaders.rows_of(X, y, count_params(inputs.as_module(model, kind)))
        notes.append(said)
    elif y is None:
        raise TypeError("y is missing; accepted: diagnose(model, X, y) with X and y arrays, "
                        f"tensors or DataFrames, or {loaders.PAIR_FORM}")
    Xn, converted = inputs.checked_X(X), inputs.needs_conversion(X)
    yn, y_raw = inputs.checked_y(y, len(Xn), spec.name), inputs.as_numpy(y, "y")
    Xn, yn, y_raw, ignored = inputs.without_ignored(Xn, yn, y_raw, spec.ignore_index)
    return {"X": Xn, "y": yn, "y_raw": y_raw, "converted": converted,
            "rows_given": len(Xn) if n_given is None or ignored else n_given,
            "read_notes": notes + [ignored] * (ignored is not None)}


@contextmanager
def module_of(model, kind: str):
    """The torch module to probe (to_torch() for other models: its init draws nothing from the
    caller's RNGs), with every global RNG given back afterwards and one thread for small ones."""
    with np.errstate(all="ignore"), global_rng_untouched(model):
        module = inputs.as_module(model, kind)
        with one_thread_for_small(count_params(module)):
            yield module


def build_probe(model, call: dict, notes: list, reference: bool = True) -> Probe:
    X, y, y_raw = probe_rows(call, count_params(model), notes)
    spec = call["loss"]
    data = torch_probe(model, X, y, spec, notes, y_raw,
                       numbered=call["kind"] != "torch",  # converted: layers by number
                       step_back=plain_sgd_step(call))
    flat = np.asarray(X, dtype=np.float64).reshape(len(X), -1)   # N-D rows: one row a vector
    y_loss = data.pop("y_loss")
    data["reference"] = reference_of(flat, data["y"], spec.name, data["out"].shape[1],
                                     data["baseline_loss"], *reference_scoring(spec, data["y"],
                                                                               y_loss)) \
        if reference else None
    data["val_loss"], data["val_baseline_loss"] = validation(model, call, notes)
    return Probe(X=flat, loss_name=spec.name, history=call["history"],
                 lr=call["lr"], weight_decay=call["weight_decay"], momentum=call["momentum"],
                 decoupled_decay=call["decoupled_decay"],
                 adaptive_step_rms=call["adaptive_step_rms"],
                 optimizer=call["optimizer"], n_rows=call["rows_given"],
                 y_shape=tuple(np.shape(call["y_raw"])), initial_lr=call["initial_lr"],
                 optimizer_missing=call["optimizer_missing"], steps_taken=call["steps_taken"],
                 notes=notes, **data)


def plain_sgd_step(call: dict) -> float | None:
    """The lr when the last step is known to be plain SGD's (torch.optim.SGD, or an lr given
    without an optimizer; no momentum, no weight decay, no scheduler moving the lr after it),
    else None. Weight decay is left out: at lr x wd = 1 the step erases the weights it came from."""
    plain = call["optimizer"] in (None, "SGD") and not call["momentum"] \
        and not call["weight_decay"] and call["initial_lr"] is None and call["lr"]
    return float(call["lr"]) if plain else None


def probe_rows(call: dict, n_params: int, notes: list) -> tuple:
    """(X, y, y as given): the call's rows, a fixed subsample of them past the cost budget; the
    notes on how the rows were read."""
    X, y, y_raw = call["X"], call["y"], call["y_raw"]
    notes.extend(call["read_notes"])
    keep = inputs.subsample(len(X), n_params)
    if keep is not None:
        notes.append(f"X has {len(X)} rows; diagnosed on a fixed subsample of {len(keep)} "
                     f"(seed {inputs.SUBSAMPLE_SEED}) to stay within the cost budget")
        X, y, y_raw = X[keep], y[keep], y_raw[keep]
    if call["history_keeps_graphs"]:
        notes.append("history holds loss tensors that require grad: each keeps its step's autograd "
                     "graph, and the memory it holds, alive; append loss.item() instead")
    if call["converted"]:
        notes.append(f"X of dtype {call['converted']} was converted to the model's float dtype")
    return X, y, y_raw


def reference_scoring(spec, y_probe: np.ndarray, y_loss: np.ndarray) -> tuple:
    """(score, y_score) for reference_of: the numpy scorers for a plain loss on the targets the
    checks read; the run's own torch loss for options, soft targets and the losses numpy lacks."""
    if spec.plain and y_loss is y_probe and spec.name not in TORCH_SCORED:
        return None, None
    return (lambda pred, t: losses.prediction_loss(spec.name, spec.options, pred, t,
                                                   REFERENCE_EPS)), y_loss


def validation(model, call: dict, notes: list) -> tuple:
    """(loss, constant predictor's loss) on X_val, y_val, or (None, None) without them."""
    if call["val"] is None:
        return None, None
    X, y, y_raw = call["val"]
    keep = inputs.subsample(len(X), count_params(model))
    if keep is not None:
        notes.append(f"X_val has {len(X)} rows; its loss is measured on a fixed subsample of "
                     f"{len(keep)}")
        X, y, y_raw = X[keep], y[keep], y_raw[keep]
    return held_out_losses(model, X, y, call["loss"], y_raw)


def run_failed(probe: Probe) -> bool:
    """With a history given, a loss on X that is not finite, no better than a constant's, or far
    behind what a linear or nearest-neighbour fit of the same rows reaches: the run failed,
    whatever the severities of the findings."""
    if probe.history is None:
        return False
    return not np.isfinite(probe.loss) or learned_little(probe) or nothing_carries_over(probe)


def nothing_carries_over(probe: Probe) -> bool:
    """Held-out rows given, and the model no better on them than a constant predictor."""
    return probe.val_loss is not None and not (
        probe.val_loss < LEARNED_NOTHING * probe.val_baseline_loss)


def diagnose(model, X, y=None, *, loss="mse", history=None, optimizer=None, lr=None,
             weight_decay=None, X_val=None, y_val=None, run=None) -> Report:
    """Name what is wrong with a model and its training run, with the numbers and the fix.

    ``model`` is a torch.nn.Module, or any model with a ``to_torch()`` method that returns an
    equivalent torch.nn.Module (the project's numpy MLP has one); ``X`` (n, d) and ``y`` numpy
    arrays, tensors (on any device) or pandas DataFrame/Series, X N-D when the model flattens
    it; or ``X`` a DataLoader or Dataset yielding (x, y) pairs and ``y`` omitted;
    ``loss`` a name ("mse", "half_mse", "cross_entropy", "nll", "bce", "bce_with_logits",
    "hinge", "l1", "smooth_l1", "huber", in common spellings), a torch loss module with its
    options, a functional form, or a callable (outputs, y) -> scalar (docs/inputs.md);
    ``history`` the per-step losses; ``optimizer`` a torch optimizer (lr, weight decay and
    momentum are read from it);
    ``lr`` and ``weight_decay`` say the same for numpy runs, or override the optimizer's;
    ``X_val``, ``y_val`` held-out rows, when there are some (memorisation is read from them).
    Every report measures the run against what the same rows allow: a constant predictor, and a
    linear and a nearest-neighbour model scored on held-out folds (diagnostics.reference).
    ``run`` a recording of the training (diagnostics.watch): the history and the optimizer are
    read from it when not given, and the timeline checks judge the run as it happened.
    The model is left exactly as it was (parameters, .grad, flags, mode, hooks, global RNGs).
    The report lists the root causes first, each followed by the findings it explains.
    """
    history, optimizer, notes, tl = from_run(run, history, optimizer)
    call = read_call(model, X, y, loss, history, optimizer, lr, weight_decay, X_val, y_val)
    with module_of(model, call["kind"]) as module, recording_paused(run):
        probe = with_recorded_batches(build_probe(module, call, notes), tl)
        findings = explain(with_timeline(run_checks(probe), probe, tl))
        layers = layer_measurements(probe)
    notes.extend(filter(None, [reshape_note(probe)]))
    if not probe.finite:
        notes.append("the model's outputs or parameters are not finite: the checks that read them "
                     "were skipped")
    return Report(findings, notes, summary(probe, call), run_failed(probe), layers,
                  history=probe.history, timeline=tl)


def reshape_note(probe: Probe) -> str | None:
    """How y of shape (n,) against outputs (n, 1) (or the reverse) was read: as the outputs' shape,
    unless the history's last loss is the (n, n) broadcast one (then loss-target-mismatch says so).
    Without a history the reshape is still taken: users pass the natural (n,) column (df["price"])
    of what their loop held as (n, 1), and a broadcast loop ends at mean(y), which learned-nothing
    and the references name from the loss alone; a broadcast warning on no evidence misleads."""
    shows = history_shows_broadcast(probe)
    if probe.broadcast_loss is None or shows:
        return None
    why = (f"as the history's last loss {probe.history[np.isfinite(probe.history)][-1]:.4g} "
           "matches" if shows is False else "what a loop almost always means (no history to "
           "tell); that loss is")
    return (f"y has shape {probe.y_shape} and the outputs {probe.out_shape}: diagnosed with y as "
            f"the outputs' shape, {why} {probe.loss:.4g}, where a loss broadcasting them to "
            f"(n, n) gives {probe.broadcast_loss:.4g}")


def from_run(run, history, optimizer) -> tuple:
    """(history, optimizer, notes, the run's timeline): the run's own history and optimizer where
    the caller gave none. The timeline is read once: diagnose()'s own forwards add nothing to it."""
    if run is None:
        return history, optimizer, [], None
    if not isinstance(run, Run):
        raise TypeError(f"run must be what diagnostics.watch(model, optimizer) returns; got "
                        f"{type(run).__name__}")
    tl = run.timeline()
    note = f"a watched run of {tl.n_logged} steps ({tl.n_stepped} optimizer steps)" + (
        f"; its history keeps {len(tl.loss)} of them" if len(tl.loss) < tl.n_logged else "")
    return (tl.loss if history is None else history,
            run.optimizer if optimizer is None else optimizer, [note], tl)


@contextmanager
def recording_paused(run):
    """diagnose()'s own forward passes are not steps of the run."""
    was = run is not None and run.paused
    if run is not None:
        run.paused = True
    try:
        yield
    finally:
        if run is not None:
            run.paused = was


def with_recorded_batches(probe: Probe, tl: Timeline | None) -> Probe:
    """The watched run's batches (how far their mean inputs scatter) beside the rows."""
    if tl is None:
        return probe
    return replace(probe, batch_mean_scatter=tl.batch_mean_scatter,
                   batches_measured=tl.batches_measured, harmonic_batch_rows=tl.harmonic_batch_rows)


def with_timeline(findings: list, probe: Probe, tl: Timeline | None) -> list:
    """The timeline checks' findings in place of the post-hoc ones of the same codes."""
    if tl is None:
        return findings
    tl = replace(tl, constant_loss=probe.baseline_loss, final_loss=probe.loss,
                 untrained_loss=probe.untrained_loss, failing=bool(training_failing(probe) or run_failed(probe)),
                 init_scale=fresh_init_norms(probe.params))
    return merged(findings, timeline_findings(tl), tl)


DEFAULT_INIT_RMS = 1 / np.sqrt(3)   # torch's default Linear/Conv init, U(-1/sqrt(fan_in),
                                    # 1/sqrt(fan_in)), has RMS 1/sqrt(3 fan_in)


def fresh_init_norms(params: dict) -> dict:
    """The norm torch's default init gives each weight of >= 2 dimensions: numel entries of RMS
    DEFAULT_INIT_RMS / sqrt(fan_in), fan_in = numel / shape[0], i.e. DEFAULT_INIT_RMS x
    sqrt(shape[0]). Biases (no fan-in of their own) are left out."""
    return {n: float(DEFAULT_INIT_RMS * np.sqrt(p.shape[0])) for n, p in params.items()
            if np.ndim(p) >= 2 and np.size(p)}


def summary(probe: Probe, call: dict) -> dict:
    return {"model": call["kind"], "rows": len(probe.X), "rows_given": probe.n_rows,
            "loss": probe.loss_name, "loss_value": round(probe.loss, 6) if np.isfinite(probe.loss)
            else str(probe.loss), "widths": "-".join(str(w) for w in
                                                     [probe.X.shape[1]] + [la.width for la in probe.layers]),
            "activations": "/".join(la.activation for la in probe.layers),
            **loss_options(call["loss"]), **yardsticks(probe)}


def loss_options(spec) -> dict:
    """{"loss_options": {...}} when options change the loss's value (weights as lists), else {}."""
    if spec.plain:
        return {}
    return {"loss_options": {k: inputs.as_numpy(v, k).round(6).tolist() if hasattr(v, "shape")
                             else v for k, v in spec.options.items()}}


def yardsticks(probe: Probe) -> dict:
    """What the same rows allow, beside the run's loss: a constant predictor, and a linear and a
    nearest-neighbour fit scored on held-out folds; the model's held-out loss when given."""
    ref, out = probe.reference, {"constant_loss": round(probe.baseline_loss, 6)}
    if ref is not None:
        shortfall = reference_shortfall(probe)
        out.update(linear_loss=round(ref.linear_cv, 6), neighbours_loss=round(ref.neighbours_cv, 6),
                   reference_shortfall=None if shortfall is None else round(shortfall, 3))
    if probe.val_loss is not None:
        out.update(val_loss=round(probe.val_loss, 6), val_constant_loss=round(probe.val_baseline_loss, 6))
    return out


def sharpness(model, X, y, loss="mse") -> float:
    """The largest eigenvalue of the Hessian of the mean loss w.r.t. all parameters."""
    call = read_call(model, X, y, loss, None, None, None, None)
    with module_of(model, call["kind"]) as module:
        return float(build_probe(module, call, [], reference=False).sharpness())
