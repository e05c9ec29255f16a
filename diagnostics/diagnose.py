"""diagnose(): validate the call, read the model into probe data, run every check once, then
explain: root causes first, each with the findings that follow from it (diagnostics.explain)."""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch

from diagnostics import inputs
from diagnostics.adapters import held_out_losses, torch_probe
from diagnostics.checks.evidence import (LEARNED_NOTHING, learned_little, reference_shortfall,
                                         training_failing)
from diagnostics.checks.units import layer_measurements
from diagnostics.explain import explain
from diagnostics.probe import Probe
from diagnostics.reference import reference_of
from diagnostics.registry import CHECKS
from diagnostics.report import Finding, Report
from diagnostics.watch import Run
from diagnostics.watch_report import merged, timeline_findings


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
    kind, name = inputs.model_kind(model), inputs.loss_name(loss)
    Xn, converted = inputs.checked_X(X), inputs.needs_conversion(X)
    yn = inputs.checked_y(y, len(Xn), name)
    val = inputs.checked_held_out(X_val, y_val, Xn.shape[1], name)
    settings = inputs.optimizer_settings(optimizer)
    lr = inputs.checked_rate(lr, "lr")
    wd = inputs.checked_rate(weight_decay, "weight_decay")
    return {"kind": kind, "name": name, "X": Xn, "y": yn, "y_raw": inputs.as_numpy(y, "y"),
            "history": inputs.checked_history(history), "converted": converted,
            "lr": lr if lr is not None else settings.get("lr"),
            "weight_decay": wd if wd is not None else settings.get("weight_decay", 0.0),
            "momentum": settings.get("momentum", 0.0), "optimizer": settings.get("optimizer"),
            "decoupled_decay": settings.get("decoupled_decay", False),
            "adaptive_step_rms": settings.get("adaptive_step_rms"),
            "initial_lr": settings.get("initial_lr"),
            "optimizer_missing": inputs.parameters_outside(optimizer, model),
            "history_keeps_graphs": inputs.history_keeps_graphs(history), "val": val}


@contextmanager
def module_of(model, kind: str):
    """The torch module to probe (to_torch() for other models: its init draws nothing from the
    caller's RNGs), with every global RNG given back afterwards and one thread for small ones."""
    with np.errstate(all="ignore"), global_rng_untouched(model):
        module = inputs.as_module(model, kind)
        with one_thread_for_small(count_params(module)):
            yield module


def build_probe(model, loss, call: dict, notes: list, reference: bool = True) -> Probe:
    X, y, y_raw = call["X"], call["y"], call["y_raw"]
    keep = inputs.subsample(len(X), count_params(model))
    if keep is not None:
        notes.append(f"X has {len(X)} rows; diagnosed on a fixed subsample of {len(keep)} "
                     f"(seed {inputs.SUBSAMPLE_SEED}) to stay within the cost budget")
        X, y, y_raw = X[keep], y[keep], y_raw[keep]
    if call["history_keeps_graphs"]:
        notes.append("history holds loss tensors that require grad: each keeps its step's autograd "
                     "graph, and the memory it holds, alive; append loss.item() instead")
    if call["converted"]:
        notes.append(f"X of dtype {call['converted']} was converted to the model's float dtype")
    data = torch_probe(model, X, y, loss, call["name"], notes, y_raw,
                       numbered=call["kind"] != "torch")  # converted: layers by number
    data["reference"] = reference_of(np.asarray(X, dtype=np.float64), data["y"], call["name"],
                                     data["out"].shape[1], data["baseline_loss"]) \
        if reference else None
    data["val_loss"], data["val_baseline_loss"] = validation(model, loss, call, notes)
    return Probe(X=np.asarray(X, dtype=np.float64), loss_name=call["name"], history=call["history"],
                 lr=call["lr"], weight_decay=call["weight_decay"], momentum=call["momentum"],
                 decoupled_decay=call["decoupled_decay"],
                 adaptive_step_rms=call["adaptive_step_rms"],
                 optimizer=call["optimizer"], n_rows=len(call["X"]),
                 y_shape=tuple(np.shape(call["y_raw"])), initial_lr=call["initial_lr"],
                 optimizer_missing=call["optimizer_missing"], notes=notes, **data)


def validation(model, loss, call: dict, notes: list) -> tuple:
    """(loss, constant predictor's loss) on X_val, y_val, or (None, None) without them."""
    if call["val"] is None:
        return None, None
    X, y, y_raw = call["val"]
    keep = inputs.subsample(len(X), count_params(model))
    if keep is not None:
        notes.append(f"X_val has {len(X)} rows; its loss is measured on a fixed subsample of "
                     f"{len(keep)}")
        X, y, y_raw = X[keep], y[keep], y_raw[keep]
    return held_out_losses(model, X, y, loss, call["name"], y_raw)


def run_checks(probe: Probe) -> list:
    """Every check once, in the registry's order: the measuring phase."""
    findings = []
    for check in CHECKS:
        result = check(probe)
        if isinstance(result, Finding):
            findings.append(result)
        elif result:
            findings.extend(result)
    return findings


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


def diagnose(model, X, y, *, loss="mse", history=None, optimizer=None, lr=None,
             weight_decay=None, X_val=None, y_val=None, run=None) -> Report:
    """Name what is wrong with a model and its training run, with the numbers and the fix.

    ``model`` is a torch.nn.Module, or any model with a ``to_torch()`` method that returns an
    equivalent torch.nn.Module (the project's numpy MLP has one); ``X`` (n, d) and ``y`` numpy
    arrays or tensors; ``loss`` a name ("mse", "half_mse", "cross_entropy", "nll", "bce",
    "bce_with_logits", "hinge") or a callable (outputs, y) -> scalar; ``history`` the per-step
    losses; ``optimizer`` a torch optimizer (lr, weight decay and momentum are read from it);
    ``lr`` and ``weight_decay`` say the same for numpy runs, or override the optimizer's;
    ``X_val``, ``y_val`` held-out rows, when there are some (memorisation is read from them).
    Every report measures the run against what the same rows allow: a constant predictor, and a
    linear and a nearest-neighbour model scored on held-out folds (diagnostics.reference).
    ``run`` a recording of the training (diagnostics.watch): the history and the optimizer are
    read from it when not given, and the timeline checks judge the run as it happened.
    The model is left exactly as it was (parameters, .grad, flags, mode, hooks, global RNGs).
    The report lists the root causes first, each followed by the findings it explains.
    """
    history, optimizer, notes = from_run(run, history, optimizer)
    call = read_call(model, X, y, loss, history, optimizer, lr, weight_decay, X_val, y_val)
    with module_of(model, call["kind"]) as module, recording_paused(run):
        probe = build_probe(module, loss, call, notes)
        findings = explain(with_timeline(run_checks(probe), probe, run))
        layers = layer_measurements(probe)
    if not probe.finite:
        notes.append("the model's outputs or parameters are not finite: the checks that read them "
                     "were skipped")
    return Report(findings, notes, summary(probe, call), run_failed(probe), layers)


def from_run(run, history, optimizer) -> tuple:
    """(history, optimizer, notes): the run's own where the caller gave none."""
    if run is None:
        return history, optimizer, []
    if not isinstance(run, Run):
        raise TypeError(f"run must be what diagnostics.watch(model, optimizer) returns; got "
                        f"{type(run).__name__}")
    tl = run.timeline()
    note = f"a watched run of {tl.n_logged} steps ({tl.n_stepped} optimizer steps)" + (
        f"; its history keeps {len(tl.loss)} of them" if len(tl.loss) < tl.n_logged else "")
    return (tl.loss if history is None else history,
            run.optimizer if optimizer is None else optimizer, [note])


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


def with_timeline(findings: list, probe: Probe, run) -> list:
    """The timeline checks' findings in place of the post-hoc ones of the same codes."""
    if run is None:
        return findings
    tl = replace(run.timeline(), constant_loss=probe.baseline_loss,
                 failing=bool(training_failing(probe) or run_failed(probe)))
    return merged(findings, timeline_findings(tl))


def summary(probe: Probe, call: dict) -> dict:
    return {"model": call["kind"], "rows": len(probe.X), "rows_given": probe.n_rows,
            "loss": probe.loss_name, "loss_value": round(probe.loss, 6) if np.isfinite(probe.loss)
            else str(probe.loss), "widths": "-".join(str(w) for w in
                                                     [probe.X.shape[1]] + [la.width for la in probe.layers]),
            "activations": "/".join(la.activation for la in probe.layers),
            **yardsticks(probe)}


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
        return float(build_probe(module, loss, call, [], reference=False).sharpness())
