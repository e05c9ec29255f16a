"""Models the diagnostics tests share, each trained once per session."""

import pytest
import torch

from cases.config import RunConfig
from cases.runner import run
from diagnose_helpers import HEALTHY, as_kind, fit, net, sin_data, train_steps


@pytest.fixture(scope="session")
def one_torch_thread():
    """The suite's autouse pin is per test and runs after session fixtures: tiny models train 50x
    slower when torch's threads fight other processes for 2 cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session", params=list(HEALTHY))
def healthy(request, one_torch_thread):
    """Digits, sin and XOR, each fitted by full-batch Adam: (mlp, X, y, loss, history, lr)."""
    mlp, X, y, loss, steps = HEALTHY[request.param]()
    trained, history, lr = fit(mlp, X, y, loss, steps)
    return trained, X, y, loss, history, lr


@pytest.fixture(scope="session")
def decayed(one_torch_thread):
    """Trained to equilibrium under weight decay 1: the decay pull equals the data gradient."""
    X, y = sin_data()
    model = as_kind(net((1, 16, 1), ("tanh", "identity")), "sequential")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1.0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    train_steps(model, opt, Xt, yt, 300)
    return model, opt, X, y


@pytest.fixture(scope="session")
def tiny_spiral():
    """Seed 000: a 2-4-3-2 leaky-relu net with a tanh head, AdamW, on the spiral-to-spiral map."""
    cfg = RunConfig(data="spiral_map", sizes=(2, 4, 3, 2), activation="leaky_relu",
                    out_activation="tanh", optimizer="adamw", lr=0.01, steps=1500)
    return run(cfg)
