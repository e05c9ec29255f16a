"""The torch backend is the loop a user writes: nn.Sequential, loss.backward(), torch.optim.

Its runs must be the eager loop's bit for bit (reference.torch_loop, written out as a user
would), every step must pass through the module's ``__call__`` and the optimizer's ``step``
(where users' hooks and ``watch()`` observe), and every case's run must give the numpy
backend's loss trace to 1e-8 in float64.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from cases.backends import reference, torch_train
from cases.backends.schedule import initial_model
from cases.config import RunConfig
from cases.registry import CASES
from cases.runner import load_data, run
from test_benchmarks import WORKLOADS  # the benchmarked workloads, tests/ is on the path

PARITY_RTOL = 1e-8     # float64, numpy vs torch over PARITY_STEPS: rounding only (test_backends')
PARITY_STEPS = 50
CHAOTIC_STEPS = 20     # a case's chaotic run (case.chaotic_runs): one ulp grows ~10x in 4 steps
                       # (seed 002's failing run: 2e-8 apart at step 39, 5e-6 at 44)
EAGER_STEPS = 40


def train(cfg, model=None, record_curve=True):
    _, X, y, Xt, yt = load_data(cfg)
    return torch_train.train(cfg, X, y, Xt, yt, model, record_curve=record_curve)


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_the_backend_trains_as_the_eager_loop_bit_for_bit(workload):
    cfg = WORKLOADS[workload][0].replace(backend="torch", steps=EAGER_STEPS)
    _, X, y, _, _ = load_data(cfg)
    history = train(cfg, record_curve=False)[1]
    assert np.array_equal(history, reference.torch_loop(cfg, X, y))


@pytest.mark.parametrize("cfg, expected", [
    pytest.param(dict(optimizer="sgd", momentum=0.9, weight_decay=1e-3), (
        torch.optim.SGD, dict(momentum=0.9, weight_decay=1e-3, nesterov=False, dampening=0)),
        id="sgd-momentum-l2"),
    pytest.param(dict(optimizer="adam", weight_decay=1e-4, betas=(0.8, 0.99), eps=1e-6), (
        torch.optim.Adam, dict(weight_decay=1e-4, betas=(0.8, 0.99), eps=1e-6, amsgrad=False)),
        id="adam-l2"),
    pytest.param(dict(optimizer="adamw", weight_decay=0.0), (
        torch.optim.AdamW, dict(weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8)),
        id="adamw-no-decay"),   # not AdamW's own default decay of 0.01
])
def test_the_optimizer_is_torch_optim_built_from_the_config(cfg, expected):
    config = RunConfig(data="sin_points", sizes=(1, 4, 1), lr=0.05, **cfg)
    opt = torch_train.make_optimizer(config, nn.Linear(1, 1).parameters())
    kind, settings = expected
    assert type(opt) is kind
    group = opt.param_groups[0]
    assert group["lr"] == 0.05 and {k: group[k] for k in settings} == settings


def test_every_step_goes_through_the_modules_call_and_the_optimizers_step(monkeypatch):
    """Users' forward hooks and optimizer hooks (and watch()) see every step, and the lr the
    optimizer steps with is the schedule's."""
    cfg = RunConfig(data="sin_points", sizes=(1, 8, 1), activation="tanh", lr=0.1, steps=30,
                    lr_decay=0.5, lr_decay_every=10, backend="torch", batch_size=4)
    model = torch_train.from_numpy(initial_model(cfg))
    forwards, lrs = [], []
    model.register_forward_hook(lambda module, args, out: forwards.append(len(args[0])))
    hook = register_optimizer_step_post_hook(
        lambda opt, args, kwargs: lrs.append(opt.param_groups[0]["lr"]))
    try:
        history = train(cfg, model, record_curve=False)[1]
    finally:
        hook.remove()
    assert forwards == [4, 4, 2] * 10 and len(history) == cfg.steps    # 10 points an epoch
    assert lrs == [0.1] * 10 + [0.05] * 10 + [0.025] * 10


def test_a_users_in_place_activation_trains_as_the_plain_one():
    cfg = RunConfig(data="sin_points", sizes=(1, 8, 1), activation="relu", lr=0.05, steps=50,
                    batch_size=4, backend="torch")
    plain = torch_train.from_numpy(initial_model(cfg))
    inplace = copy.deepcopy(plain)
    inplace[1] = nn.ReLU(inplace=True)
    (a, history_a, curve_a), (b, history_b, curve_b) = train(cfg, plain), train(cfg, inplace)
    assert np.array_equal(history_a, history_b) and curve_a == curve_b
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def case_configs() -> list:
    """Every run of every case that trains on torch, at its first seed."""
    return [pytest.param(case.config(name, "torch", case.seeds[0]),
                         CHAOTIC_STEPS if name in case.chaotic_runs else PARITY_STEPS,
                         id=f"{case.id}-{name}")
            for case in CASES if "torch" in case.backends for name in case.runs]


@pytest.mark.parametrize("cfg, steps", case_configs())
def test_each_case_run_gives_the_numpy_trace_in_torch(cfg, steps):
    short = cfg.replace(epochs=None, steps=steps, dtype="float64")
    a, b = (run(short.replace(backend=backend), record_curve=False)
            for backend in ("numpy", "torch"))
    assert len(a.history) == len(b.history)
    np.testing.assert_allclose(b.history, a.history, rtol=PARITY_RTOL)


WATCHED = {   # optimizers, a minibatch, a summed gradient, a run that diverges
    "sgd-momentum-minibatch": dict(data="sin_points", sizes=(1, 8, 1), activation="tanh", lr=0.1,
                                   momentum=0.9, batch_size=4, steps=120),
    "adamw-full-batch": dict(data="spiral_map", sizes=(2, 4, 3, 2), activation="leaky_relu",
                             out_activation="tanh", optimizer="adamw", lr=1e-2,
                             weight_decay=0.01, steps=120),
    "adam-summed-gradient": dict(data="sin_grid", sizes=(1, 4, 2, 1), activation="sigmoid",
                                 optimizer="adam", lr=0.01, mean_gradient=False, steps=120),
    "diverging": dict(data="sin_points", sizes=(1, 50, 1), activation="relu", lr=50.0,
                      steps=200),
}


@pytest.mark.parametrize("spec", WATCHED.values(), ids=WATCHED)
def test_a_watched_run_trains_the_same_bits_as_an_unwatched_one(spec):
    cfg = RunConfig(**spec, backend="torch")
    net, history, curve = train(cfg)
    watched_net, watched_history, watched_curve, timeline = (
        torch_train.train(cfg, *load_data(cfg)[1:], watched=True))
    assert np.array_equal(history, watched_history, equal_nan=True)
    assert curve == watched_curve
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), watched_net.parameters()))
    assert timeline.n_logged == len(history) and len(timeline.sample_steps) > 0
    assert all(not m._forward_hooks for m in watched_net.modules())   # closed: no hook left


def test_the_runner_keeps_a_watched_torch_runs_timeline_and_nothing_else():
    cfg = RunConfig(data="sin_points", sizes=(1, 8, 1), activation="tanh", lr=0.1, steps=60)
    assert run(cfg.replace(backend="torch"), watched=True).timeline.n_logged == 60
    assert run(cfg.replace(backend="torch")).timeline is None
    assert run(cfg, watched=True).timeline is None      # numpy: nothing to watch
