"""Train K independent models of one architecture at once, for the casebook's sweeps.

>>> cfgs = [cfg.replace(seed=s, lr=lr) for s in range(8) for lr in (0.1, 0.3)]  # doctest: +SKIP
>>> results = run_batched(cfgs)     # one RunResult per config, as cases.runner.run gives

It stacks every model's weights on a leading model axis:
``W[i]`` has shape (K, d_in, d_out) and one ``np.matmul`` on (K, n, d_in) x
(K, d_in, d_out) does the layer for all K models. numpy's matmul calls the
same BLAS routine with the same sizes for every matrix of a stack as for one
2-D matrix, and the elementwise ops are the backend's own functions in the
backend's order, so each model's loss trace is bit-for-bit its sequential
``cases.runner.run`` (it has to be: the seed 002 traces are chaotic, an
error of one ulp grows to O(1) within 40000 steps).

What may differ between the models: seed (weights, data, the order of the
minibatches), init, lr and its decay, activations and the leaky slope, the loss
and hinge margin. What must be shared: everything that shapes the arrays or the
optimizer (see SHARED_FIELDS). Activations and losses that differ run once per
group of the models that share them, on a copy of those models' rows, written
back (:func:`index_groups`). Minibatch runs take each model's own rows of its
own data at every step, as its run draws them (one gather for all when they share
a seed); n and the batch size are shared, so every model's batch has one size,
the smaller last one of an epoch too. Which configs pay for stacking:
:data:`BATCH_MAX_WORK`; :func:`run_many` trains any list of configs in its groups.

numpy only: a torch run trains alone, in torch_train's plain loop (``cases.runner.run``).
"""

from __future__ import annotations

import math
import time

import numpy as np

from cases import runner
from cases.backends import numpy_train, schedule
from cases.config import RunConfig
from cases.backends.numpy_ops import activate, activation_backward, loss_and_grad
from cases import data as datasets

SHARED_FIELDS = ("backend", "sizes", "optimizer", "momentum", "weight_decay", "betas", "eps",
                 "batch_size", "steps", "epochs", "mean_gradient", "layerwise_update", "targets",
                 "dtype", "device", "data", "data_kwargs")
VARYING = ("seed, init, lr, lr_decay, lr_decay_every, activation, out_activation, leaky_slope, "
           "loss, hinge_margin, name")


# ---------------------------------------------------------------- checks
def check_configs(configs) -> list:
    """The configs as a list, or a ValueError naming the first field that differs."""
    configs = list(configs)
    if not configs or not all(isinstance(c, RunConfig) for c in configs):
        raise TypeError(f"configs must be a non-empty sequence of RunConfig; got {configs!r:.200}")
    first = configs[0]
    for i, c in enumerate(configs[1:], 1):
        for f in SHARED_FIELDS:
            if getattr(c, f) != getattr(first, f):
                raise ValueError(f"run_batched trains models of one architecture and one "
                                 f"training setup: configs[{i}].{f} = {getattr(c, f)!r} but "
                                 f"configs[0].{f} = {getattr(first, f)!r}; only {VARYING} "
                                 "may differ")
    return configs


def load_stacked(configs):
    """(sets, X, y, Xt, yt): X and Xt stacked on a leading model axis (seeds may draw different
    data), y and yt one array per model (class indices or one-hot, as the model's loss wants)."""
    loaded = [runner.load_data(c) for c in configs]
    shapes = {(loss_key(c), *(a.shape for a in ld[1:])) for c, ld in zip(configs, loaded)}
    # one shape of X and Xt for all the models, and of y and yt for the models of one loss
    if len({(s[1], s[3]) for s in shapes}) > 1 or len(shapes) > len({s[0] for s in shapes}):
        raise ValueError(f"run_batched needs data of one shape for every model; got {shapes}")
    sets, X, y, Xt, yt = (list(a) for a in zip(*loaded))
    return sets, np.stack(X), y, np.stack(Xt), yt


# ---------------------------------------------------------------- what differs per model
def index_groups(keys) -> list:
    """[(*key, model indices or None for all)]: the models of each key, in order of first
    appearance. The step runs an op once per group, on the group's models, and writes the
    results back in place (``None``: one group, no copies)."""
    if len(set(keys)) == 1:
        return [(*keys[0], None)]
    return [(*k, np.array([i for i, kk in enumerate(keys) if kk == k]))
            for k in dict.fromkeys(keys)]


def activation_groups(configs, layer: int) -> list:
    """[(name, slope, model indices or None for all)] for one layer."""
    return index_groups([(c.activations[layer], c.leaky_slope) for c in configs])


def loss_key(cfg) -> tuple:
    """(loss, margin): the margin only counts for the hinge loss, the one that reads it."""
    return cfg.loss, cfg.hinge_margin if cfg.loss == "hinge" else 1.0


def loss_groups(configs) -> list:
    """[(loss, margin, model indices or None for all)]."""
    return index_groups([loss_key(c) for c in configs])


def of_group(arrays, idx) -> np.ndarray:
    """The per-model ``arrays`` of one group's models, stacked."""
    return np.stack(arrays if idx is None else [arrays[k] for k in idx])


def losses_and_grads(groups, out, targets):
    """Every model's mean loss (K,) and dL/d(out), each model under its own loss; ``targets``
    holds each loss group's targets, stacked (numpy_ops' losses take K models at once)."""
    if groups[0][2] is None:
        return loss_and_grad(groups[0][0], out, targets[0], groups[0][1])
    L, dout = np.empty(len(out), out.dtype), np.empty_like(out)
    for (name, margin, idx), y in zip(groups, targets):
        L[idx], dout[idx] = loss_and_grad(name, out[idx], y, margin)
    return L, dout


def leaky_factor(z, slope):
    """1.0 where z > 0 else slope, without np.where's per-element branch (~10x slower on mixed
    signs), in z's dtype (slope * z of a float32 run is float32); None where the arithmetic
    would not give exactly 1.0."""
    one_minus, slope = z.dtype.type(1.0 - slope), z.dtype.type(slope)
    if one_minus + slope != 1.0 or slope < 0:
        return None
    return (z > 0) * one_minus + slope


def activate_fast(name, z, slope):
    """numpy_ops.activate, bit for bit, with cheaper ops where they give the same bits (a speed
    path, not a second definition: every other case falls through to numpy_ops)."""
    f = leaky_factor(z, slope) if name == "leaky_relu" else None
    if f is not None:
        return z * f                                  # z * 1.0 = z, z * slope = slope * z exactly
    if name == "sigmoid":                             # 1 / (1 + exp(-z)), fewer temporaries
        h = np.negative(z)
        np.exp(h, out=h)
        h += 1
        return np.divide(1, h, out=h)
    return activate(name, z, slope)


def activation_backward_fast(name, z, h, g, slope):
    f = leaky_factor(z, slope) if name == "leaky_relu" else None
    if f is not None:
        return g * f
    return activation_backward(name, z, h, g, slope)


def forward_act(groups, z):
    if groups[0][2] is None:
        return activate_fast(groups[0][0], z, groups[0][1])
    h = np.empty_like(z)
    for name, slope, idx in groups:            # z[idx] is a contiguous copy: same bits per model
        h[idx] = activate_fast(name, z[idx], slope)
    return h


def backward_act(groups, z, h, g):
    if groups[0][2] is None:
        return activation_backward_fast(groups[0][0], z, h, g, groups[0][1])
    out = np.empty_like(g)
    for name, slope, idx in groups:
        out[idx] = activation_backward_fast(name, z[idx], h[idx], g[idx], slope)
    return out


# ---------------------------------------------------------------- the step
# Arrays are (K, n, width): each model's matrix is contiguous, as in its own run, so
# np.matmul hands BLAS the same call (sizes and strides) for each model of the stack as
# the sequential run makes, and BLAS returns the same bits. (A sample-major layout makes
# the strides differ, and gemv's sums then differ in the last bit.)
def times(a, M):
    """a @ M for every model: a (K, n, d), M (K, d, w) -> (K, n, w)."""
    if M.shape[1] == 1:              # one term per sum: the product alone is what BLAS returns
        return a * M
    return np.matmul(a, M)


BIAS_BY_COLUMN_MAX = 4   # widths up to which the bias goes in column by column: numpy's
                         # broadcast of (K, 1, w) loops over the w numbers of each row, ~3x
                         # slower at w = 2 (65 against 21 us for K = 256, n = 41)


def add_bias(z, b):
    """z (K, n, w) += b (K, w) for every sample, the same sums as ``h @ W + b``."""
    if z.shape[2] > BIAS_BY_COLUMN_MAX:
        z += b[:, None, :]
        return
    for j in range(z.shape[2]):
        z[:, :, j] += b[:, j, None]


def forward(W, b, groups, X):
    """Output and (z, h) of every layer for all K models; h[0] = X."""
    zs, hs = [], [X]
    for Wi, bi, gr in zip(W, b, groups):
        z = times(hs[-1], Wi)
        add_bias(z, bi)
        zs.append(z)
        hs.append(forward_act(gr, z))
    return hs[-1], zs, hs


def sum_over_samples(g):
    """(K, n, w) -> (K, w) in the order of one model's (n, w).sum(axis=0)."""
    if g.shape[2] == 1:              # numpy sums one contiguous column pairwise
        return g.sum(axis=1)
    return np.einsum("knw->kw", g)   # row after row, as numpy's axis-0 sum; 6x faster than sum


def backward(W, groups, zs, hs, dout):
    """(dW, db) per layer for all K models, numpy_mlp.MLP.backward's order of operations."""
    dW, db, g = [None] * len(W), [None] * len(W), dout
    for i in reversed(range(len(W))):
        g = backward_act(groups[i], zs[i], hs[i + 1], g)
        dW[i] = np.matmul(hs[i].transpose(0, 2, 1), g)
        db[i] = sum_over_samples(g)
        if i:
            g = times(g, W[i].transpose(0, 2, 1))
    return dW, db


def step_layerwise(W, b, groups, zs, hs, dout, lrs):
    """numpy_train.step_layerwise for all K models: each layer steps, then passes the gradient
    down through its updated weights."""
    lrs = lrs.astype(W[0].dtype, copy=False)     # as numpy_train.in_dtype
    g, lr_W, lr_b = dout, lrs[:, None, None], lrs[:, None]
    for i in reversed(range(len(W))):
        g = backward_act(groups[i], zs[i], hs[i + 1], g)
        W[i] -= lr_W * np.matmul(hs[i].transpose(0, 2, 1), g)
        b[i] -= lr_b * sum_over_samples(g)
        g = times(g, W[i].transpose(0, 2, 1))


# ---------------------------------------------------------------- learning rates
def per_model(lrs, params) -> list:
    """Every model's lr, shaped to broadcast over each stacked parameter (K, ...)."""
    return [lrs.reshape((-1,) + (1,) * (p.ndim - 1)) for p in params]


def lr_schedule(configs):
    """lrs(t) -> every model's lr (K,), rebuilt only at the steps where one of them decays."""
    everys = sorted({c.lr_decay_every for c in configs if c.lr_decay_every})
    current = {}
    def lrs(t):
        if not current or any(t % e == 0 for e in everys):
            current["lr"] = np.array([schedule.lr_at(c, t) for c in configs])
        return current["lr"]
    return lrs


# ---------------------------------------------------------------- minibatches
def stacked_batches(configs, n: int):
    """(steps, rows(t)): the rows each model trains on at step t, as its own run draws them
    (schedule.batch_schedule; the models share n and the batch size, so the order depends on
    the seed alone, and every model's batch at a step, the last of an epoch too, has one size):
    None for the full batch, one index array when the models share a seed, else (K, b) indices."""
    schedules = {c.seed: schedule.batch_schedule(n, c) for c in configs}
    steps, first = next(iter(schedules.values()))
    if (configs[0].batch_size or n) >= n:
        return steps, lambda t: None
    if len(schedules) == 1:
        return steps, first
    draws = [next_batch for _, next_batch in schedules.values()]
    seed_of_model = [list(schedules).index(c.seed) for c in configs]
    return steps, lambda t: np.stack([draw(t) for draw in draws])[seed_of_model]


def take_rows(A, rows):
    """Each model's rows of A (K, n, ...), a contiguous copy as a run's X[idx]: all of A (rows
    None), the same rows of every model (rows 1-D), or each model's own (rows (K, b))."""
    if rows is None:
        return A
    if rows.ndim == 1:
        return A.take(rows, axis=1)
    return A[np.arange(len(A))[:, None], rows]


def group_rows(targets, groups, rows) -> list:
    """Each loss group's stacked targets at the rows of its models."""
    if rows is None or rows.ndim == 1:
        return [take_rows(y, rows) for y in targets]
    return [take_rows(y, rows if idx is None else rows[idx])
            for y, (*_, idx) in zip(targets, groups)]


# ---------------------------------------------------------------- the loop
class Stack:
    """K models of one architecture: the weights stacked on a leading model axis, and what
    differs between the models grouped (each layer's activations, the losses)."""

    def __init__(self, configs, nets):
        self.W = [np.stack([net.W[i] for net in nets]) for i in range(len(nets[0].W))]
        self.b = [np.stack([net.b[i] for net in nets]) for i in range(len(nets[0].b))]
        self.acts = [activation_groups(configs, i) for i in range(len(self.W))]
        self.losses = loss_groups(configs)

    def forward(self, X):
        return forward(self.W, self.b, self.acts, X)

    def loss_and_grad(self, out, targets):
        return losses_and_grads(self.losses, out, targets)

    def full_loss(self, X, targets):
        """Every model's mean loss on a whole set (a curve's point)."""
        return self.loss_and_grad(self.forward(X)[0], targets)[0]

    def targets(self, ys) -> list:
        """Each loss group's targets, stacked, from one array per model."""
        return [of_group(ys, idx) for *_, idx in self.losses]

    def weights(self, k) -> tuple:
        return [w[k] for w in self.W], [v[k] for v in self.b]


def run_batched(configs, *, record_curve: bool = True) -> list:
    """Train every config at once; one ``RunResult`` per config, equal to ``cases.runner.run``'s.

    ``seconds`` of each result is the batch's wall time divided by K. ``record_curve=False``
    skips the curve's ~100 full-set evaluations, as numpy_train.train's option:
    for a sweep whose figure draws no curve, and for benchmarks that time the steps alone.
    """
    configs = check_configs(configs)
    if configs[0].backend != "numpy":
        raise ValueError(f"run_batched trains numpy configs; got backend="
                         f"{configs[0].backend!r} (a torch run trains alone: cases.runner.run)")
    start = time.perf_counter()
    sets, X, y, Xt, yt = load_stacked(configs)
    nets = [schedule.initial_model(c) for c in configs]
    net = Stack(configs, nets)
    history, curves, stopped = train_numpy(configs, net, (X, y, Xt, yt), record_curve)
    seconds = (time.perf_counter() - start) / len(configs)
    results = []
    for k, (cfg, ds, model) in enumerate(zip(configs, sets, nets)):
        model.W, model.b = stopped.get(k) or net.weights(k)
        r = runner.finish(cfg, ds, model, history[k], curves[k], X[k], y[k], Xt[k], yt[k])
        r.seconds = seconds
        results.append(r)
    return results


def train_numpy(configs, net, data, record_curve=True):
    """The loop; returns (per-model histories, curves, {k: weights where model k stopped})."""
    cfg, K, (X, y, Xt, yt) = configs[0], len(configs), data
    y, yt, update = net.targets(y), net.targets(yt), updater(configs, net)
    steps, rows_at = stacked_batches(configs, X.shape[1])
    marks = set(schedule.record_steps(steps).tolist()) if record_curve else set()
    losses, curves, stopped = np.empty((steps, K)), [schedule.new_curve() for _ in configs], {}
    with np.errstate(all="ignore"):    # overflow is a finding of a run, not an error here
        for t in range(steps):
            rows = rows_at(t)
            xb = take_rows(X, rows)
            out, zs, hs = net.forward(xb)
            L, dout = net.loss_and_grad(out, group_rows(y, net.losses, rows))
            losses[t] = L
            if t in marks:
                record(curves, t, net.full_loss(X, y), net.full_loss(Xt, yt), stopped)
            if not math.isfinite(L.sum()):     # one Python check per step; rare path below
                stop_diverged(L, t, net, stopped)
                if len(stopped) == K:
                    break
            # the gradient of the summed loss, unless the mean's
            update(t, zs, hs, dout if cfg.mean_gradient else dout * xb.shape[1])
        else:
            if record_curve:
                record(curves, steps, net.full_loss(X, y), net.full_loss(Xt, yt), stopped)
    ends = {k: w[1] + 1 for k, w in stopped.items()}
    return [losses[:ends.get(k, steps), k] for k in range(K)], curves, \
        {k: w[0] for k, w in stopped.items()}


def updater(configs, net):
    """update(t, zs, hs, dout): backward and the optimizer's step of every model at step t."""
    cfg, params = configs[0], [p for Wb in zip(net.W, net.b) for p in Wb]
    opt, lrs = numpy_train.make_optimizer(cfg, params), lr_schedule(configs)
    def update(t, zs, hs, dout):
        if cfg.layerwise_update:           # backward and update interleaved (seed 002)
            return step_layerwise(net.W, net.b, net.acts, zs, hs, dout, lrs(t))
        dW, db = backward(net.W, net.acts, zs, hs, dout)
        opt.step([g for pair in zip(dW, db) for g in pair], per_model(lrs(t), params))
    return update


def stop_diverged(L, t, net, stopped):
    """Keep the weights of models whose loss just became non-finite, as the sequential run stops."""
    for k in np.flatnonzero(~np.isfinite(L)):
        if k not in stopped:
            stopped[int(k)] = (tuple([a.copy() for a in w] for w in net.weights(k)), t)


def record(curves, t, train_losses, test_losses, stopped):
    for k, c in enumerate(curves):
        if k not in stopped:
            c["step"].append(int(t))
            c["train"].append(float(train_losses[k]))
            c["test"].append(float(test_losses[k]))


# ---------------------------------------------------------------- many configs, grouped
BATCH_MAX_WORK = 12_000    # rows x units of one model-step (the activations it computes) up to
    # which stacking pays: the step is then numpy call overhead, which the K models share.
    # Measured (CPU of K stacked against K runs, results included, curves off, min of 3-5 on
    # this loaded 2-core machine): sin per-sample (51, 22) 1.2-1.9x, under Adam 4.2-5.1x;
    # seed 002 (369) 2.0x; seed 004 (6000) 1.4x; digits batch 10 at the grid's depths (100,
    # 1100, 2100) 1.0-1.4x (K = 3), 2.0-2.2x, 1.8-1.9x (K = 9); digits batch 50 (10500) 2.0x.
    # Above it the step is arithmetic on arrays that spill the caches once stacked: digits
    # batch 200 (42000) 1.1x; the 2000-row spiral nets stay alone (18000: 1.0-1.5x, earlier
    # 1.9x slower; 132000: 0.86-0.94x).


def samples(cfg) -> int:
    """The number of training samples of ``cfg``'s data."""
    return len(datasets.load(cfg.data, cfg.seed, **dict(cfg.data_kwargs)).X)


def step_work(cfg) -> int:
    """Rows x units: the activations one step of ``cfg`` computes (its batch, every layer)."""
    n = samples(cfg)
    return min(cfg.batch_size or n, n) * sum(cfg.sizes[1:])


def batch_key(cfg):
    """Configs with one key train together in :func:`run_batched`, each bit for bit its own
    run (numpy, small steps, full batch or not); None: the config trains alone (torch, steps
    large enough that stacking is no faster)."""
    if cfg.backend != "numpy" or step_work(cfg) > BATCH_MAX_WORK:
        return None
    return tuple(getattr(cfg, f) for f in SHARED_FIELDS)


def batch_groups(configs) -> list:
    """Indices of the configs, grouped by :func:`batch_key`, in order of first appearance."""
    groups = {}
    for i, cfg in enumerate(configs):
        key = batch_key(cfg)
        groups.setdefault(("alone", i) if key is None else key, []).append(i)
    return list(groups.values())


def run_group(configs, *, record_curve: bool = True, watched: bool = False) -> list:
    """One group of :func:`batch_groups`: run_batched for two or more, else cases.runner.run
    (``watched``: a torch run recorded with diagnostics.watch, runner.run's option)."""
    configs = list(configs)
    if len(configs) > 1 and batch_key(configs[0]) is not None:
        try:
            return run_batched(configs, record_curve=record_curve)
        except ValueError:       # data of different shapes per seed: one run at a time
            pass
    return [runner.run(c, record_curve=record_curve, watched=watched) for c in configs]


def run_many(configs, *, record_curve: bool = True) -> list:
    """One RunResult per config, in order, equal to ``cases.runner.run``'s: the configs that
    share an architecture and setup train at once (:func:`batch_groups`), and a config given
    twice trains once (both places get the one result)."""
    configs = list(configs)
    unique = list({repr(c): c for c in configs}.values())   # repr: every field, hashable or not
    results = {}
    for group in batch_groups(unique):
        trained = run_group([unique[i] for i in group], record_curve=record_curve)
        results.update((repr(unique[i]), r) for i, r in zip(group, trained))
    return [results[repr(c)] for c in configs]
