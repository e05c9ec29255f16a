"""Models the diagnostics tests share, each trained once per session (shared_runs.py: once for
all xdist workers)."""

import pytest
import torch

from cases.config import RunConfig
from cases.runner import run
from diagnose_helpers import HEALTHY, LOOPS, HEALTHY_LOOPS, adam_digits, as_kind, digits_head_run, \
    input_form_run, \
    fit, memorising_run, net, tanh_surface_run, \
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


@pytest.fixture(scope="session")
def reference_run(shared_runs):
    """``reference_run(name, seed)``: a run judged against what a linear or neighbour fit of its
    rows reaches, as (model, X, y, loss, history, opt[, X_val, y_val])."""
    programs = {
        "frozen-backbone": lambda s: digits_head_run(s, hidden=(256, 256), frozen=True),
        "open-backbone": lambda s: digits_head_run(s, hidden=(256, 256)),
        "nll-on-raw-outputs": lambda s: digits_head_run(s, loss="nll"),
        "nll-on-log-softmax": lambda s: digits_head_run(s, loss="nll", log_softmax=True, steps=400),
        "digits-1-unit": lambda s: digits_head_run(s, hidden=(1,), steps=400),
        "tanh-2-units": lambda s: tanh_surface_run(s, 2),
        "tanh-32-units": lambda s: tanh_surface_run(s, 32),
        "memorised-permuted": lambda s: memorising_run(s, permuted=True),
        "memorised-own": lambda s: memorising_run(s, permuted=False),
    }
    return lambda name, seed: shared_runs.get(f"reference {name} seed {seed}",
                                              lambda: programs[name](seed))


@pytest.fixture(scope="session")
def input_run(shared_runs):
    """``input_run(name)``: diagnose_helpers.input_form_run, trained once per session."""
    return lambda name: shared_runs.get(f"input form {name}", lambda: input_form_run(name))
