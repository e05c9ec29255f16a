"""What both training loops share: the seeded initial weights, the batches of each step, the
learning rate of each step, and the steps at which the full-set losses are recorded.

Used by numpy_train, torch_train, batched and the reference loops; it imports no loop.
"""

from __future__ import annotations

import numpy as np

from cases.backends import numpy_mlp

CURVE_POINTS = 100  # full train/test evaluations recorded per run: enough for a smooth figure


def initial_model(cfg) -> numpy_mlp.MLP:
    """The seeded initial weights both backends start from."""
    return numpy_mlp.MLP.init(cfg.sizes, cfg.activations, cfg.init,
                              np.random.default_rng([cfg.seed, 1]), cfg.np_dtype, cfg.leaky_slope)


def batch_schedule(n: int, cfg):
    """(steps, next_batch): index arrays, one per step, reshuffled every epoch."""
    bs = cfg.batch_size or n
    per_epoch = -(-n // bs)
    steps = cfg.epochs * per_epoch if cfg.epochs else cfg.steps
    if bs >= n:
        full = np.arange(n)
        return steps, lambda t: full
    rng = np.random.default_rng([cfg.seed, 2])
    order = []
    def next_batch(t):
        k = t % per_epoch
        if k == 0:
            order[:] = [rng.permutation(n)]
        return order[0][k * bs:(k + 1) * bs]
    return steps, next_batch


def lr_at(cfg, t: int) -> float:
    if cfg.lr_decay_every:
        return cfg.lr * cfg.lr_decay ** (t // cfg.lr_decay_every)
    return cfg.lr


def record_steps(steps: int) -> np.ndarray:
    """About CURVE_POINTS log-spaced steps in [0, steps], first and last included."""
    pts = np.unique(np.round(np.geomspace(1, steps + 1, CURVE_POINTS)).astype(int) - 1)
    return pts


def new_curve() -> dict:
    """The full-set losses of a run at its recorded steps."""
    return {"step": [], "train": [], "test": []}


def record(curve: dict, t, train_loss, test_loss) -> None:
    curve["step"].append(int(t))
    curve["train"].append(float(train_loss))
    curve["test"].append(float(test_loss))
