"""What a watched run keeps, in bounded memory: every logged step (thinned past MAX_KEPT entries),
the sampled steps' per-layer numbers (thinned past MAX_SAMPLES, the period doubling) and how
their batches' mean inputs scatter (a running sum)."""

from __future__ import annotations

import math

import numpy as np
import torch

from diagnostics.timeline import ACCUMULATED, GRADLESS, RESET

MAX_KEPT = 2 ** 16      # logged steps kept (~3 MB); a longer run keeps every 2nd, 4th, ... step
                        # past the dense head, so a million steps stays within it
MAX_SAMPLES = 1024      # sampled steps kept; past it every other one goes and the period doubles
UNRESET_KINDS = {ACCUMULATED: "accumulated", GRADLESS: "gradless"}   # the counts they go to


def as_floats(tensors: list) -> list:
    """Detached one-value tensors as Python floats, with one wait for the device where they
    share one (torch.stack promotes their dtypes; tolist() reads each value exactly)."""
    if not tensors:
        return []
    try:
        return torch.stack(tensors).reshape(-1).tolist()
    except RuntimeError:                     # shapes () and (1,) mixed, or several devices
        return [float(t) for t in tensors]


def norms_of(tensors: list) -> list:
    """Each tensor's 2-norm, in one call (torch._foreach_norm, as clip_grad_norm_ uses)."""
    return list(torch._foreach_norm(tensors)) if tensors else []


class Entries:
    """One row per logged step: [step, loss, lr per group or None, stepped, reset]."""

    def __init__(self, dense: int):
        self.dense, self.stride, self.rows, self.unchecked = dense, 1, [], []
        self.counts = {"n_logged": 0, "n_stepped": 0, "n_accumulated": 0, "n_reset": 0,
                       "first_accumulated": None, "n_gradless": 0, "first_gradless": None}
        self.on_device = False

    def keeps(self, t: int) -> bool:
        return t < self.dense or (t - self.dense) % self.stride == 0

    def add(self, t: int, loss, lr, stepped: bool, reset: int) -> None:
        """Count the step and keep its row (it runs every step: the counts inline)."""
        row, c = [t, loss, lr, stepped, reset], self.counts
        c["n_logged"] += 1
        c["n_stepped"] += stepped
        if reset == RESET:                  # a healthy step: one comparison
            c["n_reset"] += 1
        elif reset < RESET:
            self.count_unreset(t, reset)
        if loss.__class__ is not float:      # a device's loss, read (and checked for finiteness,
            self.unchecked.append(row)       # kept or not) at resolve(); a float is checked now
            self.on_device = True
        if self.keeps(t):
            self.rows.append(row)
            if len(self.rows) > MAX_KEPT:
                self.stride *= 2
                self.rows = [r for r in self.rows if self.keeps(r[0])]

    def count_unreset(self, t: int, reset: int) -> None:
        """A step on a stale .grad, or with none: counted, and the first one kept."""
        kind = UNRESET_KINDS.get(reset)
        if kind is not None:
            self.counts[f"n_{kind}"] += 1
            if self.counts[f"first_{kind}"] is None:
                self.counts[f"first_{kind}"] = t

    def resolve(self) -> list:
        """[(step, loss)] of the device losses logged since the last call, as floats now."""
        rows, self.unchecked = self.unchecked, []
        for r, v in zip(rows, as_floats([r[1] for r in rows])):
            r[1] = v
        return [(r[0], r[1]) for r in rows]

    def alarming(self) -> bool:
        """The last step shows what a stopping run must judge now: a summed .grad or none, no
        step, or a non-finite loss."""
        last = self.rows[-1] if self.rows else None
        return last is not None and (last[4] in (ACCUMULATED, GRADLESS) or not last[3] or
                                     (isinstance(last[1], float) and not math.isfinite(last[1])))

    def arrays(self, groups: int) -> dict:
        rows = self.rows
        return dict(steps=np.array([r[0] for r in rows], dtype=np.int64),
                    loss=np.array([r[1] for r in rows], dtype=np.float64),
                    lr=lr_table([r[2] for r in rows], groups),
                    stepped=np.array([r[3] for r in rows], dtype=bool),
                    reset=np.array([r[4] for r in rows], dtype=np.int8), **self.counts)


def lr_table(lrs: list, groups: int) -> np.ndarray:
    """(steps, groups) lrs, nan where no step ran or the group was not there yet (a group that
    optimizer.add_param_group added mid-run)."""
    return np.array([(lr or []) + [math.nan] * (groups - len(lr or [])) for lr in lrs],
                    dtype=np.float64).reshape(-1, groups)


class Samples:
    """The sampled steps: per parameter the gradient and weight norms and the update ratio
    |dw| / |w|, per activation module the batch's dead and saturated shares."""

    def __init__(self, dense: int, every: int):
        self.dense, self.every, self.records, self.pending = dense, int(every), [], None
        self.copies: list = []          # the weights before a sampled step, one buffer each,
                                        # reused: a fresh copy each time pays its page faults

    def sampled(self, t: int) -> bool:
        return t < self.dense or t % self.every == 0

    def before_step(self, params: list) -> None:
        with torch.no_grad():
            if len(self.copies) != len(params) or any(
                    c.shape != p.shape or c.dtype != p.dtype or c.device != p.device
                    for c, p in zip(self.copies, params)):
                self.copies = [torch.empty_like(p, memory_format=torch.preserve_format)
                               for p in params]
            torch._foreach_copy_(self.copies, params)    # one call for every tensor: a sampled
            grads = [p.grad for p in params]             # step costs ~10 ops, not ~5 a tensor
            norms = iter(norms_of([g for g in grads if g is not None]))
            self.pending = (self.copies, [None if g is None else next(norms) for g in grads])

    def after_step(self, t: int, params: list, names: list, units: dict) -> dict:
        before, grads = self.pending
        self.pending = None
        with torch.no_grad():
            norms = norms_of(before)
            torch._foreach_sub_(before, params)
            norms += norms_of(before)
        flat = as_floats(norms + [g for g in grads if g is not None])
        grad_values = iter(flat[2 * len(params):])
        record = {"step": t, "grad_norm": {n: next(grad_values) for n, g in zip(names, grads)
                                           if g is not None},
                  "weight_norm": dict(zip(names, flat[:len(params)])),
                  "update_ratio": {n: ratio(d, w) for n, w, d in
                                   zip(names, flat[:len(params)], flat[len(params):])},
                  "dead": {m: u[0] for m, u in units.items()},
                  "saturated": {m: u[1] for m, u in units.items()}}
        record["non_finite"] = first_non_finite(record, units)
        self.keep(record)
        return record

    def keep(self, record: dict) -> None:
        self.records.append(record)
        if len(self.records) > MAX_SAMPLES:
            self.every *= 2
            self.records = [r for r in self.records if self.sampled(r["step"])]

    def arrays(self) -> dict:
        steps = np.array([r["step"] for r in self.records], dtype=np.int64)
        out = {"sample_steps": steps}
        for key in ("grad_norm", "weight_norm", "update_ratio", "dead", "saturated"):
            names = dict.fromkeys(n for r in self.records for n in r[key])
            out[key] = {n: np.array([r[key].get(n, math.nan) for r in self.records])
                        for n in names}
        return out


class BatchMeans:
    """The sampled steps' batches beside each other: each batch's mean input, and how far the
    means scatter (rows x squared distance from the mean of them all, in float64 on the
    batches' device: no wait for it). Batches drawn at random from rows of total variance v
    scatter by v on average; batches that come class by class (or sorted by any column)
    scatter by the distances between the classes, many times more. A sampled step costs one
    mean; FOLD of them at a time are folded into the running sums (Chan's pairwise update of a
    weighted mean and its scatter), so the memory stays bounded on any run."""

    FOLD = 64           # batch means held before folding: ~6 ops for 64 batches, not 6 a batch

    def __init__(self):
        self.batches, self.rows, self.mean, self.scatter = 0, 0, None, None
        self.inverse_rows = 0.0         # sum of 1 / rows: a short last batch scatters the most
        self.held: list = []            # (rows, mean) of the batches not folded in yet

    def add(self, x: torch.Tensor) -> None:
        rows = len(x)
        self.held.append((rows, x.detach().reshape(rows, -1).mean(0, dtype=wide(x.device))))
        self.batches += 1
        self.inverse_rows += 1 / rows
        if len(self.held) >= self.FOLD:
            self.fold()

    def fold(self) -> None:
        """The held means' own weighted mean and scatter, combined with the running ones."""
        if not self.held:
            return
        means = torch.stack([m for _, m in self.held])
        w = torch.tensor([r for r, _ in self.held], dtype=means.dtype, device=means.device)
        rows = sum(r for r, _ in self.held)
        mean = (w @ means) / rows
        scatter = w @ ((means - mean) ** 2).sum(1)
        self.held = []
        if self.mean is not None:
            delta = mean - self.mean
            scatter = self.scatter + scatter + (self.rows * rows / (self.rows + rows)) * delta.dot(delta)
            mean = self.mean + delta * (rows / (self.rows + rows))
        self.mean, self.scatter, self.rows = mean, scatter, self.rows + rows

    def arrays(self) -> dict:
        """The mean scatter per batch (None under 2 batches), and the batches measured."""
        self.fold()
        scatter = float(self.scatter) / (self.batches - 1) if self.batches > 1 else None
        return {"batch_mean_scatter": scatter, "batches_measured": self.batches,
                "batch_rows": self.rows / self.batches if self.batches else None,
                "harmonic_batch_rows": self.batches / self.inverse_rows if self.batches else None}


def wide(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64   # MPS has no float64


def ratio(change: float, size: float) -> float:
    return change / size if size > 0 else (0.0 if change == 0 else math.inf)


def first_non_finite(record: dict, units: dict) -> str | None:
    """The first tensor of this sampled step that is not finite: a layer's outputs, a gradient,
    then a parameter (after the step)."""
    for name, (_, _, finite) in units.items():
        if not finite:
            return f"outputs of {name}"
    for name, g in record["grad_norm"].items():
        if not math.isfinite(g):
            return f"gradient of {name}"
    return next((n for n, w in record["weight_norm"].items() if not math.isfinite(w)), None)
