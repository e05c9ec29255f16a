"""Training loops side by side: the backends against the loops a user would write.

One benchmark group per workload (taken from the cases), the implementation as
the parameter: the numpy backend, the torch backend on CPU and on CUDA (itself a plain
torch loop, cases/backends/torch_train.py), a bare numpy loop and the eager PyTorch loop
written out as a user would (cases/backends/reference.py).
In the default run (no ``--benchmark-*`` flag: conftest.py disables timing) each
runs once as a test that asserts training progressed; measure with
``--benchmark-enable`` or ``--benchmark-only`` (BENCHMARKS.md).

Speed is never asserted from one timing: ``test_ratio_target`` compares the
groups only inside a benchmark run, after every group ran, and fails only when
the whole measured spread of a ratio is past its bound. Regressions against a
saved run are ``--benchmark-compare-fail``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import threadpoolctl
import torch
from torch.nn import functional as F

from cases.backends import numpy_train, reference, torch_train
from cases.batched import run_batched
from cases.backends.schedule import batch_schedule, initial_model
from cases.config import RunConfig
from cases.runner import load_data, run
from diagnostics.watch import DENSE_STEPS, EVERY, watch


# Workloads: (config, steps per benchmark round). Few steps keep the default run cheap;
# a round still lasts milliseconds, far above the timer's resolution.
WORKLOADS = {
    "000-spiral-2-4-3-2-full": (RunConfig(
        data="spiral_map", sizes=(2, 4, 3, 2), activation="leaky_relu", out_activation="tanh",
        optimizer="adamw", lr=1e-2, weight_decay=0.01), 30),
    "001-sin-1-50-1-per-sample": (RunConfig(
        data="sin_points", sizes=(1, 50, 1), activation="tanh", lr=0.05, batch_size=1), 200),
    "002-1-4-2-2-1-41pts": (RunConfig(
        data="sin_grid", sizes=(1, 4, 2, 2, 1), activation=("leaky_relu", "sigmoid", "sigmoid"),
        out_activation="sigmoid", init="uniform01", lr=0.3, lr_decay=0.999, lr_decay_every=100,
        mean_gradient=False, leaky_slope=0.1), 200),
    "003-digits-64-100-100-10-batch10": (RunConfig(
        data="digits", sizes=(64, 100, 100, 10), activation="relu", loss="cross_entropy",
        lr=0.05, batch_size=10), 100),
    "003-digits-64-100-100-10-batch200": (RunConfig(
        data="digits", sizes=(64, 100, 100, 10), activation="relu", loss="cross_entropy",
        lr=0.1, batch_size=200), 20),
    "mnist-784-100-10-synthetic-batch10": (RunConfig(
        data="synthetic", sizes=(784, 100, 10), activation="relu", loss="cross_entropy",
        lr=0.01, batch_size=10), 100),
    "mnist-784-100-10-synthetic-batch200": (RunConfig(
        data="synthetic", sizes=(784, 100, 10), activation="relu", loss="cross_entropy",
        lr=0.05, batch_size=200), 20),
}

# Targets of issue 8, judged on each ratio's measured spread (see ratio_spread)
NUMPY_OVER_BARE_MAX = 1.3      # the numpy backend's abstraction costs almost nothing
WATCH_OVER_BARE_MAX = 1.10     # issue 21: watch() at its default sampling costs <= 10% of a loop
# The torch backend's <= 0.5x of the eager loop is retired (issue 23): the backend is the eager
# loop now (nn.Module, loss.backward(), torch.optim), so torch-cpu / ref-eager-torch is ~1 and
# only reported. The batched sweep's >= 30x target is retired (issue 16): with every chaotic
# trace bit for bit its sequential run the ceiling is ~25x (BENCHMARKS.md); the batched group
# stays as a regression guard for --benchmark-compare-fail.

MEASURED: dict = {}            # (group, impl) -> Spread of seconds per step (per model-step)


@dataclass(frozen=True)
class Spread:
    """A benchmark's rounds per unit of work: the fastest, and the upper quartile (the rounds
    a shared machine disturbed least lie between them)."""
    fastest: float
    upper_quartile: float


def train_numpy(cfg, data, steps):
    return numpy_train.train(cfg.replace(steps=steps), *data, record_curve=False)[1]


def train_torch(device):
    def train(cfg, data, steps):
        c = cfg.replace(steps=steps, backend="torch", device=device)
        history = torch_train.train(c, *data, record_curve=False)[1]  # returns on the CPU: synced
        return history
    return train


def bare_numpy(cfg, data, steps):
    return reference.numpy_loop(cfg, data[0], data[1], steps)


def eager_torch(cfg, data, steps):
    return reference.torch_loop(cfg, data[0], data[1], steps)


IMPLEMENTATIONS = {
    "numpy": train_numpy,
    "torch-cpu": train_torch("cpu"),
    "torch-cuda": train_torch("cuda"),
    "ref-bare-numpy": bare_numpy,
    "ref-eager-torch": eager_torch,
}
NEEDS_CUDA = [pytest.mark.cuda]       # conftest skips it where torch sees no GPU
IMPL_PARAMS = [pytest.param(name, marks=NEEDS_CUDA if "cuda" in name else ())
               for name in IMPLEMENTATIONS]


def progressed(history) -> bool:
    """The last quarter's mean batch loss below the first quarter's: training went somewhere."""
    q = max(1, len(history) // 4)
    return bool(np.all(np.isfinite(history)) and history[-q:].mean() < history[:q].mean())


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """Every implementation on one core (conftest pins torch to one thread): on a shared
    2-core machine a second BLAS thread waits on the other users and slows small matmuls ~10x."""
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def datasets():
    return {name: load_data(cfg)[1:] for name, (cfg, _) in WORKLOADS.items()}


def record(benchmark, group, impl, units):
    """Remember the rounds' spread per unit of work, for the ratio check of this run."""
    benchmark.extra_info["units"] = units
    if benchmark.enabled and benchmark.stats:
        stats = benchmark.stats.stats
        MEASURED[group, impl] = Spread(stats.min / units, stats.q3 / units)


@pytest.mark.parametrize("impl", IMPL_PARAMS)
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_training_loop(benchmark, datasets, workload, impl):
    cfg, steps = WORKLOADS[workload]
    benchmark.group = workload
    history = benchmark(IMPLEMENTATIONS[impl], cfg, datasets[workload], steps)
    record(benchmark, workload, impl, steps)
    assert len(history) == steps and progressed(history)


# ---------------------------------------------------------------- batched sweeps
SEED_002, _ = WORKLOADS["002-1-4-2-2-1-41pts"]
BATCH_K = 256          # the sweep size
SEQUENTIAL_K = 4       # sequential runs timed per round; their time per model-step is what counts
BATCH_STEPS = 1000     # per round: the setup (data, init, final metrics: ~0.1 s for K = 256)
                       # costs 0.4 us per model-step over 1000 steps, 2 us over 200


def sweep(k, steps):
    return [SEED_002.replace(seed=s, lr=0.3 + 0.001 * s, steps=steps) for s in range(k)]


def batched(configs, record_curve=False):
    return [r.history for r in run_batched(configs, record_curve=record_curve)]


def sequential(configs, record_curve=False):
    """One run after another. Without the curve (~100 full-set evaluations a run, more work
    than 200 steps) both sides time the steps, as a 40000-step run spends its time."""
    if record_curve:
        return [run(c).history for c in configs]
    return [numpy_train.train(c, *load_data(c)[1:], record_curve=False)[1] for c in configs]


# The ids say how many models one round trains: pytest-benchmark's table shows time per round,
# so compare the rows per model (BENCHMARKS.md gives us per model-step).
SWEEP_IDS = [f"batched-{BATCH_K}-models-per-round", f"sequential-{SEQUENTIAL_K}-models-per-round"]


@pytest.mark.parametrize("impl, k", [(batched, BATCH_K), (sequential, SEQUENTIAL_K)],
                         ids=SWEEP_IDS)
def test_batched_sweep(benchmark, impl, k):
    benchmark.group = "batched-002-sweep"
    histories = benchmark(impl, sweep(k, BATCH_STEPS))
    record(benchmark, "batched-002-sweep", impl.__name__, k * BATCH_STEPS)
    assert len(histories) == k and np.mean([progressed(h) for h in histories]) > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("impl, k", [(batched, BATCH_K), (sequential, SEQUENTIAL_K)],
                         ids=SWEEP_IDS)
def test_batched_sweep_40000_steps(benchmark, impl, k):
    """The issue's sweep in full: one round each (minutes); the sequential side runs
    SEQUENTIAL_K of the K models and is compared per model-step."""
    benchmark.group = "batched-002-sweep-40000"
    histories = benchmark.pedantic(impl, args=(sweep(k, 40000), True), rounds=1, iterations=1)
    record(benchmark, "batched-002-sweep-40000", impl.__name__, k * 40000)
    assert len(histories) == k and all(len(h) == 40000 for h in histories)


# ---------------------------------------------------------------- watch() overhead (issue 21)
# The case nets of WORKLOADS, and a user's MNIST MLP in float32 at batch 64 on random data.
WATCH_NETS = {**{name: cfg for name, (cfg, _) in WORKLOADS.items()},
              "784-512-256-10-batch64": RunConfig(
                  data="synthetic", sizes=(784, 512, 256, 10), activation="relu",
                  loss="cross_entropy", lr=0.01, batch_size=64, dtype="float32")}
WATCH_STEPS = 2 * EVERY    # per round, past the dense head: 2 sampled steps in each, as in a
                           # long run (a round starts at a multiple of EVERY, so every round alike)
WATCH_BATCHES = 64         # distinct batches, cycled: indexing them costs both loops the same
WATCH_IMPLS = {"bare": ("cpu", False), "watched": ("cpu", True),
               "bare-cuda": ("cuda", False), "watched-cuda": ("cuda", True)}
WATCH_PARAMS = [pytest.param(name, marks=NEEDS_CUDA if "cuda" in name else ())
                for name in WATCH_IMPLS]


def watch_group(net: str) -> str:
    return f"watch-overhead-{net}"


class Loop:
    """The plain torch loop a user writes (zero_grad, forward, loss, backward, step), with
    ``run.log(loss)`` after the step when watched. Built past watch's dense head
    (DENSE_STEPS), so the rounds time the steps a long run spends its time on."""

    def __init__(self, cfg, data, device: str, watched: bool):
        X, y = data[0], data[1]
        self.model = torch_train.from_numpy(initial_model(cfg), device,
                                            torch_train.DTYPES[cfg.dtype])
        self.opt = (torch.optim.SGD(self.model.parameters(), lr=cfg.lr) if cfg.optimizer == "sgd"
                    else torch.optim.AdamW(self.model.parameters(), lr=cfg.lr))
        self.criterion = F.mse_loss if cfg.loss == "mse" else F.cross_entropy
        _, next_batch = batch_schedule(len(X), cfg)
        Xt, yt = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
        self.batches = [(Xt[i], yt[i]) for i in
                        (torch.as_tensor(next_batch(t), device=device)
                         for t in range(WATCH_BATCHES))]
        self.run = watch(self.model, self.opt) if watched else None
        self.t, self.device = 0, device
        self(DENSE_STEPS)

    def __call__(self, steps: int) -> torch.Tensor:
        model, opt, criterion, run = self.model, self.opt, self.criterion, self.run
        for _ in range(steps):
            X, y = self.batches[self.t % WATCH_BATCHES]
            opt.zero_grad()
            loss = criterion(model(X), y)
            loss.backward()
            opt.step()
            if run is not None:
                run.log(loss)
            self.t += 1
        if self.device == "cuda":
            torch.cuda.synchronize()
        return loss


@pytest.mark.parametrize("impl", WATCH_PARAMS)
@pytest.mark.parametrize("net", list(WATCH_NETS))
def test_watch_overhead(benchmark, net, impl):
    cfg = WATCH_NETS[net]
    device, watched = WATCH_IMPLS[impl]
    loop = Loop(cfg, load_data(cfg)[1:3], device, watched)
    benchmark.group = watch_group(net)
    loss = benchmark(loop, WATCH_STEPS)
    record(benchmark, watch_group(net), impl, WATCH_STEPS)
    assert torch.isfinite(loss).all()
    if watched:
        tl = loop.run.timeline()
        assert tl.n_logged == tl.n_stepped == tl.n_reset + 1 == loop.t     # step 0's is unknown


# ---------------------------------------------------------------- the machine
MATMUL_N = 2048        # float32 (2048 x 2048) @ (2048 x 2048): 17 GFLOP, BLAS at full speed


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_matmul_throughput(benchmark, lib):
    rng = np.random.default_rng(0)
    A, B = (rng.standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32) for _ in range(2))
    if lib == "torch":
        A, B = torch.from_numpy(A), torch.from_numpy(B)
    benchmark.group = "machine-matmul-float32"
    C = benchmark(lambda: A @ B)
    flops = 2 * MATMUL_N ** 3
    benchmark.extra_info["gflop"] = flops / 1e9
    record(benchmark, "machine-matmul-float32", lib, flops)
    assert np.allclose(np.asarray(C)[:3, :3], (np.asarray(A)[:3] @ np.asarray(B)[:, :3]),
                       rtol=1e-3, atol=1e-2)


# ---------------------------------------------------------------- ratios, in a benchmark run
def ratio(group, impl, ref):
    """The ratio of the fastest rounds: the figure BENCHMARKS.md reports."""
    return MEASURED[group, impl].fastest / MEASURED[group, ref].fastest


def ratio_spread(group, impl, ref) -> tuple:
    """(lowest, highest) ratio the two spreads allow: impl's fastest round against ref's upper
    quartile, and impl's upper quartile against ref's fastest."""
    a, b = MEASURED[group, impl], MEASURED[group, ref]
    return a.fastest / b.upper_quartile, a.upper_quartile / b.fastest


def ratio_table() -> dict:
    """Every measured ratio of this run, by group: what BENCHMARKS.md reports."""
    table = {}
    for group in dict.fromkeys(g for g, _ in MEASURED):
        impls = {i for g, i in MEASURED if g == group}
        row = {f"{i}/{r}": ratio(group, i, r) for i in ("numpy", "torch-cpu", "torch-cuda")
               for r in ("ref-bare-numpy", "ref-eager-torch") if {i, r} <= impls}
        for watched, bare in (("watched", "bare"), ("watched-cuda", "bare-cuda")):
            if {watched, bare} <= impls:
                row[f"{watched}/{bare}"] = ratio(group, watched, bare)
        if {"batched", "sequential"} <= impls:
            row["sequential/batched"] = ratio(group, "sequential", "batched")
        table[group] = row
    return table


def measured_table(pairs: dict) -> dict:
    """This run's ratio table, or a skip: only a benchmark run of every group a target compares
    has one. ``pairs``: label -> (group, impl, reference)."""
    if not MEASURED:
        pytest.skip("ratios are judged only in a benchmark run: --benchmark-enable")
    missing = [(g, i) for g, *impls in pairs.values() for i in impls if (g, i) not in MEASURED]
    if missing:
        pytest.skip(f"not every group ran in this run (first missing: {missing[0]})")
    return ratio_table()


# Each target: the ratios it bounds (label -> (group, impl, reference)) and the bound.
TARGETS = {
    "numpy-over-bare": ({w: (w, "numpy", "ref-bare-numpy") for w in WORKLOADS},
                        NUMPY_OVER_BARE_MAX),
    "watch-over-bare": ({n: (watch_group(n), "watched", "bare") for n in WATCH_NETS},
                        WATCH_OVER_BARE_MAX),
}


def past_bound(spreads: dict, bound: float) -> dict:
    """The ratios whose whole spread lies above ``bound``: missed whatever the machine did."""
    return {k: (round(lo, 2), round(hi, 2)) for k, (lo, hi) in spreads.items() if lo > bound}


@pytest.mark.parametrize("target", list(TARGETS))
def test_ratio_target(target):
    """Runs after the groups (it is last in the file) and reads their spreads; it skips in
    the default run and when a filter left a group out, so it can never fail there. Inside a
    benchmark run it fails only when a ratio's whole spread is past its issue's bound; the
    spreads are printed (``-s`` or ``-rA`` shows them)."""
    pairs, bound = TARGETS[target]
    table = measured_table(pairs)
    spreads = {k: ratio_spread(*pair) for k, pair in pairs.items()}
    print(f"\nratios of the fastest rounds: {table}\n{target} spreads (bound {bound}): "
          + ", ".join(f"{k}: {lo:.2f}-{hi:.2f}" for k, (lo, hi) in spreads.items()))
    missed = past_bound(spreads, bound)
    assert not missed, f"{target}: every ratio's spread should reach <= {bound}; " \
                       f"wholly above it: {missed}"
