"""watch(model, optimizer): record a training run as it happens, through torch's public hooks.

>>> run = watch(model, optimizer)          # doctest: +SKIP
>>> for X, y in loader:                    # doctest: +SKIP
...     optimizer.zero_grad(); loss = F.cross_entropy(model(X), y); loss.backward()
...     optimizer.step(); run.log(loss)
>>> run.close(); diagnose(model, X, y, loss="cross_entropy", run=run)   # doctest: +SKIP

Every step costs a few Python calls (the optimizer's step post-hook and ``log``): the loss, the
lr of each group, whether step() ran, whether each .grad was reset and whether any .grad was
there at all (a loop that keeps its .grads in place, zero_grad(set_to_none=False) or none, adds
one gradient-accumulation hook per parameter). Sampled steps (the first ``dense``, then every
``every``-th) also copy the weights before the step (a step pre-hook) and read the norms,
forward hooks on the activation modules read the batch's dead and saturated units, and one on
the model the batch's mean input; only they wait for a GPU. Nothing the training computes
changes.
"""

from __future__ import annotations

import math
import weakref

import torch
from torch import nn

from diagnostics.activations import module_kind
from diagnostics.activations import DEAD_KINDS, SATURATION_BANDS
from diagnostics.checks.units import PINNED_ROWS
from diagnostics.timeline import ACCUMULATED, GRADLESS, RESET, UNKNOWN, Timeline
from diagnostics.watch_report import judge
from diagnostics.watch_store import BatchMeans, Entries, Samples, as_floats

DENSE_STEPS = 50    # sampled densely first: most faults show in the first 10-50 steps
EVERY = 50          # then every 50th step: 2% of steps copy the weights and wait for the device


class TrainingFailed(RuntimeError):
    """Raised by ``run.log`` under ``watch(..., stop=True)``; ``.report`` says what and at which step."""

    def __init__(self, report):
        super().__init__(report.verdict())
        self.report = report


# ----------------------------------------------------------------- was each .grad reset?
ACCUMULATION = 1    # versions one backward's in-place sum into an existing .grad adds


class GradWatch:
    """At each optimizer.step(): was every .grad reset since the previous step? A new tensor
    (zero_grad(set_to_none=True), torch's default) is fresh: told by identity alone, with no
    hook. The same tensor again was either zeroed in place (zero_grad(set_to_none=False)) or
    not reset at all, and only where backward summed into it first tells which: from the first
    step that keeps a .grad in place, one gradient-accumulation hook per parameter reads the
    version just after backward's first sum (a zero_() before it adds one, the accumulation
    one; writes after it, such as clip_grad_norm_'s scaling, do not count). On that first step
    itself, without the hook yet, one version more than the last step's is one sum onto it."""

    def __init__(self, params: list):
        self.params = params
        self.refs, self.versions = [None] * len(params), [0] * len(params)
        self.accums, self.first = [0] * len(params), [0] * len(params)
        self.handles: list = []         # the accumulation hooks, once a .grad is kept in place
        self.hooked = False

    def hook(self) -> None:
        self.hooked = True
        self.handles = [p.register_post_accumulate_grad_hook(self.counter(i))
                        for i, p in enumerate(self.params) if p.requires_grad]

    def counter(self, i: int):
        def count(p):
            if not self.accums[i]:              # the version just after the first accumulation
                self.first[i] = p.grad._version
            self.accums[i] += 1
        return count

    def step(self) -> int:
        """This step's verdict on the .grads, and each one (weakly: a freed one was reset) and
        its version remembered for the next (it runs every step: one loop, no call a tensor):
        RESET, ACCUMULATED, UNKNOWN (first step, or no backward since the last step) or
        GRADLESS: no parameter holds a .grad, so step() skips them all."""
        refs, versions, accums, first, hooked = (self.refs, self.versions, self.accums,
                                                 self.first, self.hooked)
        self.refs, self.versions = now_refs, now_versions = [], []
        fresh = stale = kept = held = False
        for p, ref, version, summed, at_first in zip(self.params, refs, versions, accums, first):
            g = p.grad
            now_refs.append(None if g is None else weakref.ref(g))
            now_versions.append(0 if g is None else g._version)
            if g is None:
                continue
            held = True
            if ref is None:
                continue
            if ref() is not g:
                fresh = True
            elif not hooked:                    # kept in place, no hook yet: one sum onto it?
                kept = True
                stale = stale or now_versions[-1] - version == ACCUMULATION
            elif summed:                        # zeroed before backward's first sum, or not
                fresh, stale = (True, stale) if at_first - version > ACCUMULATION else (fresh, True)
        if hooked:
            self.accums = [0] * len(refs)
        if kept:
            self.hook()
        return verdict(fresh, stale, kept, held)

    def close(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def verdict(fresh: bool, stale: bool, kept: bool, held: bool) -> int:
    """One step's .grad state from what the parameters showed."""
    if stale:
        return ACCUMULATED
    if fresh and not kept:
        return RESET
    return UNKNOWN if held else GRADLESS


# ----------------------------------------------------------------- the batch's units
def unit_shares(kind: str, out: torch.Tensor) -> tuple:
    """(share of units dead, share saturated, outputs all finite) on this batch, as tensors."""
    h = out.detach().reshape(-1, out.shape[-1]) if out.dim() > 1 else out.detach()[None]
    zero = torch.zeros((), device=h.device)
    dead = (h <= 0).all(0).float().mean() if kind in DEAD_KINDS else zero
    if kind in SATURATION_BANDS:
        lo, hi = SATURATION_BANDS[kind]
        pinned = ((h <= lo) | (h >= hi)).float().mean(0) >= PINNED_ROWS
        return dead, pinned.float().mean(), torch.isfinite(h).all()
    return dead, zero, torch.isfinite(h).all()


def activation_modules(model: nn.Module) -> dict:
    """module path -> (module, kind) for the activation modules whose units can die or saturate."""
    kinds = DEAD_KINDS + tuple(SATURATION_BANDS)
    return {name or type(m).__name__: (m, module_kind(m)) for name, m in model.named_modules()
            if module_kind(m) in kinds}


def parameter_names(model: nn.Module, optimizer) -> tuple:
    """(the optimizer's parameters, each one's name in the model or 'group g, tensor i')."""
    names = {id(p): n for n, p in model.named_parameters()}
    params = [p for g in optimizer.param_groups for p in g["params"]]
    labels = [names.get(id(p), f"group {gi}, tensor {i}")
              for gi, g in enumerate(optimizer.param_groups) for i, p in enumerate(g["params"])]
    return params, labels


# ----------------------------------------------------------------- the run
class Run:
    """The recording of one training run. ``log(loss)`` after each optimizer.step();
    ``timeline()`` the recording as arrays; ``check()`` a Report of what it shows so far;
    ``close()`` removes every hook (the recording stays readable). A context manager."""

    def __init__(self, model, optimizer, stop=False, every=EVERY, dense=DENSE_STEPS):
        checked_arguments(model, optimizer, every, dense)
        self.model, self.optimizer, self.stop = model, optimizer, stop
        self.params, self.names = parameter_names(model, optimizer)
        self.grads = GradWatch(self.params)
        self.entries, self.samples = Entries(dense), Samples(dense, every)
        self.batches = BatchMeans()
        self.acts = activation_modules(model)
        self.t, self.closed, self.paused = 0, False, False
        self.new_step()
        self.first_bad = (None, None)           # (step, tensor) that went non-finite first
        self.handles = [optimizer.register_step_post_hook(self.after_step)]
        self.sampling_handles: list = []    # the step pre-hook and forward hooks: sampled steps
        self.arm(self.sampled)

    def new_step(self) -> None:
        """What the hooks gather until the next log: steps taken, .grad reset (the least fresh
        of them), each group's lr, the activation modules' shares (sampled steps)."""
        self.count, self.reset, self.lr, self.act = 0, UNKNOWN, None, {}
        self.batch_seen = False
        self.sampled = self.samples.sampled(self.t)

    # the optimizer's hooks: after every step, before a sampled one
    def before_step(self, optimizer, args, kwargs) -> None:
        if not self.paused:
            self.samples.before_step(self.params)

    def after_step(self, optimizer, args, kwargs) -> None:
        """step() reads the .grads and leaves them as they are: judged here, one hook a step."""
        if self.paused:
            return
        state = self.grads.step()
        self.reset = min(self.reset, state) if self.count else state
        self.lr = [float(g.get("lr", math.nan)) for g in optimizer.param_groups]    # a tensor lr too
        self.count += 1
        if self.sampled and self.samples.pending is not None:
            record = self.samples.after_step(self.t, self.params, self.names, self.unit_floats())
            self.note_non_finite(self.t, record.get("non_finite"))

    # the user's one line
    def log(self, loss) -> None:
        """Record this step's loss (a float or a tensor); call it after optimizer.step()."""
        if self.closed or self.paused:
            return
        value, sampled = loss_value(loss), self.sampled
        self.entries.add(self.t, value, self.lr, self.count > 0, self.reset)
        if isinstance(value, float):            # a CUDA tensor waits for a sampled step
            if not math.isfinite(value):
                self.find_non_finite([(self.t, value)])
        elif sampled:
            self.find_non_finite(self.entries.resolve())
        self.t += 1
        self.new_step()
        if self.sampled != bool(self.sampling_handles):
            self.arm(self.sampled)
        if self.stop and (sampled or self.entries.alarming()):
            self.stop_if_failed()

    # non-finite values: the first step and the first tensor
    def find_non_finite(self, resolved: list) -> None:
        bad = [t for t, v in resolved if not math.isfinite(v)]
        if bad and self.first_bad[0] is None:
            self.note_non_finite(bad[0], self.first_non_finite_tensor())

    def note_non_finite(self, step: int, tensor: str | None) -> None:
        if tensor is not None and (self.first_bad[0] is None or step < self.first_bad[0]):
            self.first_bad = (step, tensor)

    def first_non_finite_tensor(self) -> str:
        """The first of: an activation's outputs this step, a .grad, a parameter; else the loss."""
        for name, (_, _, finite) in self.act.items():
            if not bool(finite):
                return f"outputs of {name}"
        with torch.no_grad():
            for kind, tensors in (("gradient", [p.grad for p in self.params]), ("", self.params)):
                for name, t in zip(self.names, tensors):
                    if t is not None and not bool(torch.isfinite(t).all()):
                        return f"{kind} of {name}" if kind else name
        return "loss"

    # the step pre-hook and the forward hooks, present on sampled steps only
    def arm(self, on: bool) -> None:
        if on and not self.sampling_handles and not self.closed:
            self.sampling_handles = [m.register_forward_hook(self.unit_hook(name, kind))
                                     for name, (m, kind) in self.acts.items()]
            self.sampling_handles += [self.model.register_forward_pre_hook(self.batch_hook),
                                      self.optimizer.register_step_pre_hook(self.before_step)]
        elif not on:
            self.disarm()

    def disarm(self) -> None:
        for h in self.sampling_handles:
            h.remove()
        self.sampling_handles = []

    def unit_hook(self, name: str, kind: str):
        def hook(module, args, out):
            if not self.paused and name not in self.act and torch.is_tensor(out):
                with torch.no_grad():
                    self.act[name] = unit_shares(kind, out)
        return hook

    def batch_hook(self, module, args) -> None:
        """The step's first training batch (grad enabled: not an evaluation in the loop), when
        the model's first argument is a float tensor of rows."""
        x = args[0] if args else None
        if self.paused or self.batch_seen or not torch.is_grad_enabled() or not rows_of(x):
            return
        self.batch_seen = True
        with torch.no_grad():
            self.batches.add(x)

    def unit_floats(self) -> dict:
        """module -> (dead share, saturated share, finite) as floats, this step's first batch."""
        acts = self.act
        flat = as_floats([v for shares in acts.values() for v in shares])
        return {name: tuple(flat[3 * i:3 * i + 3]) for i, name in enumerate(acts)}

    # reading the recording
    def timeline(self) -> Timeline:
        """The recording so far as plain arrays (diagnostics.timeline)."""
        self.find_non_finite(self.entries.resolve())
        return Timeline(**self.entries.arrays(len(self.optimizer.param_groups)),
                        **self.samples.arrays(), **self.batches.arrays(),
                        first_nonfinite_step=self.first_bad[0],
                        first_nonfinite_tensor=self.first_bad[1])

    def history(self):
        return self.timeline().loss

    def check(self):
        """A Report of what the recording can already judge, without the data: each error's
        verdict names its step."""
        return judge(self.timeline())

    def stop_if_failed(self) -> None:
        report = self.check()
        if report.errors:
            raise TrainingFailed(report)

    def close(self) -> None:
        """Remove every hook; the recording stays readable."""
        for h in self.handles:
            h.remove()
        self.grads.close()
        self.disarm()
        self.handles, self.closed = [], True

    def __getstate__(self) -> dict:
        """A closed run pickles (with its model and optimizer): its hooks are gone already."""
        if not self.closed:
            raise TypeError("close() the run before pickling it: its hooks cannot be pickled")
        return dict(self.__dict__, grads=None, handles=[], sampling_handles=[])

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Run(steps={self.t}, closed={self.closed})"


def rows_of(x) -> bool:
    """x is a batch of rows: a floating-point tensor of at least 2 dimensions."""
    return torch.is_tensor(x) and x.is_floating_point() and x.dim() >= 2 and len(x) > 0


def loss_value(loss):
    """A float; a CUDA tensor stays a tensor (detached) until a sampled step reads it."""
    if isinstance(loss, torch.Tensor):
        return loss.detach() if loss.is_cuda else float(loss.item())
    return float(loss)


def checked_arguments(model, optimizer, every, dense) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"watch() records a torch.nn.Module's training; got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError("watch() needs the torch.optim.Optimizer that trains the model; got "
                        f"{type(optimizer).__name__}")
    if int(every) < 1 or int(dense) < 0:
        raise ValueError(f"every must be >= 1 and dense >= 0; got every={every}, dense={dense}")


def watch(model, optimizer, stop=False, every=EVERY, dense=DENSE_STEPS) -> Run:
    """Record ``model``'s training by ``optimizer``: ``run.log(loss)`` after each step.

    ``stop=True``: ``run.log`` raises TrainingFailed (with ``.report``) at the first step where
    the recording already shows an error. ``dense``: the first steps sampled; ``every``: the
    sampling period after them (doubled as a long run's samples are thinned)."""
    return Run(model, optimizer, stop=stop, every=every, dense=dense)
