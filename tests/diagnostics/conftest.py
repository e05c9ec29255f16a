"""Models the diagnostics tests share, each trained once per session (shared_runs.py: once for
all xdist workers)."""

import pytest
import torch

from cases.config import RunConfig
from cases.runner import run
from diagnose_helpers import HEALTHY, LOOPS, HEALTHY_LOOPS, adam_digits, as_kind, fit, net, \
    sin_data, train_steps, trained
from shared_runs import SharedRuns, session_folder


@pytest.fixture(scope="session")
def one_torch_thread():
    """The suite's autouse pin is per test and runs after session fixtures: tiny models train 50x
    slower when torch's threads fight other processes for 2 cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory, one_torch_thread) -> SharedRuns:
    """A folder of this session's temp folder, one for all xdist workers."""
    return SharedRuns(session_folder(tmp_path_factory, "diagnostics-runs"))


@pytest.fixture(scope="session")
def loop_run(shared_runs):
    """``loop_run(name, seed, zero_grad=True)``: a loop of LOOPS or HEALTHY_LOOPS as trained(),
    (model, X, y, loss, history, opt)."""
    def get(name: str, seed: int, zero_grad: bool = True):
        loop = {**LOOPS, **HEALTHY_LOOPS}[name]
        return shared_runs.get(f"loop {name} seed {seed} zero_grad {zero_grad}",
                               lambda: trained(loop, seed, zero_grad))
    return get


@pytest.fixture(scope="session")
def adam_digits_run(shared_runs):
    """``adam_digits_run(seed)``: diagnose_helpers.adam_digits at Adam's default lr from torch's
    init, the negative of a stability test and of a weights test."""
    return lambda seed: shared_runs.get(f"adam_digits seed {seed}", lambda: adam_digits(seed))


@pytest.fixture(scope="session", params=list(HEALTHY))
def healthy(request, shared_runs):
    """Digits, sin and XOR, each fitted by full-batch Adam: (mlp, X, y, loss, history, lr)."""
    def train():
        mlp, X, y, loss, steps = HEALTHY[request.param]()
        trained_mlp, history, lr = fit(mlp, X, y, loss, steps)
        return trained_mlp, X, y, loss, history, lr
    return shared_runs.get(f"healthy {request.param}", train)


@pytest.fixture(scope="session")
def decayed(shared_runs):
    """Trained to equilibrium under weight decay 1: the decay pull equals the data gradient."""
    def train():
        X, y = sin_data()
        model = as_kind(net((1, 16, 1), ("tanh", "identity")), "sequential")
        opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1.0)
        train_steps(model, opt, torch.from_numpy(X), torch.from_numpy(y), 300)
        return model, opt, X, y
    return shared_runs.get("decayed", train)


@pytest.fixture(scope="session")
def tiny_spiral(shared_runs):
    """Seed 000: a 2-4-3-2 leaky-relu net with a tanh head, AdamW, on the spiral-to-spiral map."""
    cfg = RunConfig(data="spiral_map", sizes=(2, 4, 3, 2), activation="leaky_relu",
                    out_activation="tanh", optimizer="adamw", lr=0.01, steps=1500)
    return shared_runs.get(f"tiny_spiral {cfg!r}", lambda: run(cfg))
