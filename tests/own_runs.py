"""A user's own runs, diagnosed, for the tests of ``Report.plot()`` and ``Report.to_html()``: a
healthy fit, one that went non-finite, and the same blow-up watched (``diagnose(..., run=run)``).
Each trains a 4-16-16-1 ReLU net for STEPS full-batch SGD steps (well under a second) and is
diagnosed once per process."""

from functools import lru_cache

import numpy as np
import torch
from torch import nn

from diagnostics import diagnose, watch

STEPS = 120
HEALTHY_LR = 0.05       # measured: the loss falls from 4 to 0.1, no finding
DIVERGING_LR = 3.0      # measured: the loss passes 1e30 and is NaN from step 13


def data() -> tuple:
    X = np.random.default_rng(0).standard_normal((128, 4))
    return X, X[:, :1] ** 2 + X[:, 1:2]


def trained(lr: float, watched: bool) -> tuple:
    """(model, optimizer, history, run or None) after STEPS steps at ``lr``."""
    X, y = data()
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    run, history = (watch(model, opt) if watched else None), []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(Xt), yt)
        loss.backward()
        opt.step()
        history.append(loss.item())
        if run is not None:
            run.log(loss)
    if run is not None:
        run.close()
    return model, opt, history, run


def watched_blow_up():
    """The run of "watched", its recording only (closed), for run.check()."""
    with torch.random.fork_rng():
        return trained(DIVERGING_LR, watched=True)[3]


@lru_cache(maxsize=None)
def own_report(name: str):
    """The Report of "healthy", "diverged" or "watched" (the diverging run, recorded)."""
    lr, watched = {"healthy": (HEALTHY_LR, False), "diverged": (DIVERGING_LR, False),
                   "watched": (DIVERGING_LR, True)}[name]
    with torch.random.fork_rng():       # the seed it trains from is not the caller's
        model, opt, history, run = trained(lr, watched)
    X, y = data()
    return diagnose(model, X, y, history=None if watched else history, optimizer=opt, run=run)
