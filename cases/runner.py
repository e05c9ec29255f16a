"""Train a :class:`~cases.config.RunConfig` on its backend: ``run(cfg)`` -> :class:`RunResult`.

>>> from cases.config import RunConfig
>>> cfg = RunConfig(data="sin_points", sizes=(1, 50, 1), activation="tanh", lr=0.01, steps=200)
>>> result = run(cfg)                       # numpy backend by default
>>> result.history.shape
(200,)
>>> run(cfg.replace(backend="torch")).train_loss  # same math in torch  # doctest: +SKIP

The backends are imported when a run asks for them (torch only for torch runs), and import
nothing from here: config <- runner -> backends, no loop.
"""

from __future__ import annotations

import time

import numpy as np

from cases import data as datasets
from cases.backends import numpy_ops
from cases.config import RunConfig, RunResult, accuracy, predict


def numpy_trainer():
    from cases.backends import numpy_train
    return numpy_train.train


def torch_trainer():
    from cases.backends import torch_train
    return torch_train.train


TRAINERS = {   # RunConfig.backend -> the backend's train(cfg, X, y, Xt, yt, model)
    "numpy": numpy_trainer,
    "torch": torch_trainer,
}


def run(cfg: RunConfig, model=None, *, record_curve: bool = True,
        watched: bool = False) -> RunResult:
    """Train ``cfg`` on its backend; ``model`` (same backend) replaces the seeded init.
    ``record_curve=False`` skips the curve's full-set evaluations (its result has none).
    ``watched=True`` records a torch run with ``diagnostics.watch`` (``result.timeline``);
    a numpy run has nothing to watch and ignores it."""
    start = time.perf_counter()
    ds, X, y, Xt, yt = load_data(cfg)
    train = TRAINERS[cfg.backend]()
    timeline = None
    if watched and cfg.backend == "torch":
        model, history, curve, timeline = train(cfg, X, y, Xt, yt, model,
                                                record_curve=record_curve, watched=True)
    else:
        model, history, curve = train(cfg, X, y, Xt, yt, model, record_curve=record_curve)
    result = finish(cfg, ds, model, history, curve, X, y, Xt, yt)
    result.timeline = timeline
    result.seconds = time.perf_counter() - start
    return result


# ----------------------------------------------------------------- data, targets
def encode_targets(cfg: RunConfig, ds: datasets.Dataset):
    """Training targets as the loss wants them: indices, one-hot, or a value column."""
    mode = cfg.targets
    if mode == "auto":
        mode = ("index" if cfg.loss in ("cross_entropy", "hinge") else "onehot") \
            if ds.task == "classification" else "value"
    def enc(y):
        if mode == "index" or ds.task == "regression":
            return y if ds.task == "classification" else y.astype(cfg.dtype)
        if mode == "onehot":
            return np.eye(ds.n_classes, dtype=cfg.dtype)[y]
        return y.astype(cfg.dtype)[:, None]  # "value": the label itself as a regression target
    return enc(ds.y), enc(ds.y_test)


def load_data(cfg: RunConfig):
    ds = datasets.load(cfg.data, cfg.seed, **dict(cfg.data_kwargs))
    y, y_test = encode_targets(cfg, ds)
    return ds, ds.X.astype(cfg.dtype), y, ds.X_test.astype(cfg.dtype), y_test


def finish(cfg, ds, model, history, curve, X, y, Xt, yt) -> RunResult:
    out, out_t = predict(model, X), predict(model, Xt)
    def loss(o, t):
        with np.errstate(all="ignore"):  # a diverged run's loss is inf or nan: that is its result
            return float(numpy_ops.loss_and_grad(cfg.loss, o, t, cfg.hinge_margin)[0])
    r = RunResult(cfg, model, np.asarray(history, dtype=np.float64), curve, loss(out, y),
                  loss(out_t, yt), data=ds)
    r.diverged = not (np.all(np.isfinite(r.history)) and np.isfinite(r.train_loss))
    if ds.task == "classification":
        r.train_acc, r.test_acc = accuracy(out, ds.y), accuracy(out_t, ds.y_test)
    return r
