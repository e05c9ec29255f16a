"""One description of a training run for both backends, and what a run returns.

>>> cfg = RunConfig(data="sin_points", sizes=(1, 50, 1), activation="tanh", lr=0.01, steps=200)
>>> cfg.replace(backend="torch").backend
'torch'

``cases.runner.run(cfg)`` trains it and returns a :class:`RunResult`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cases.backends import numpy_mlp, numpy_ops

BACKENDS = ("numpy", "torch")
OPTIMIZERS = ("sgd", "adam", "adamw")
DTYPES = ("float32", "float64")
TARGETS = ("auto", "index", "onehot", "value")


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides how a run trains. ``replace(**changes)`` derives a fix."""
    data: str                                   # a name in cases.data.DATASETS
    sizes: tuple                                # widths: input, hidden..., output
    activation: Any = "relu"                    # hidden layers: one name, or one per hidden layer
    out_activation: str = "identity"
    loss: str = "mse"
    init: str = "torch_default"
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0                   # L2 for sgd/adam, decoupled for adamw
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    lr_decay: float = 1.0                       # lr *= lr_decay every lr_decay_every steps
    lr_decay_every: int = 0
    batch_size: int | None = None               # None: full batch; 1: one sample per step
    steps: int = 1000                           # optimizer steps (ignored when epochs is set)
    epochs: int | None = None
    mean_gradient: bool = True                  # False: gradient of the loss summed over the batch
    layerwise_update: bool = False              # seed 002's loop: each layer steps, then passes the
                                                # gradient down through its NEW weights (plain SGD)
    leaky_slope: float = 0.01
    hinge_margin: float = 1.0
    targets: str = "auto"                       # class labels as index, onehot, or value column
    seed: int = 0
    backend: str = "numpy"
    device: str = "cpu"
    dtype: str = "float64"
    data_kwargs: tuple = ()                     # options of the data builder, as (key, value) pairs
    name: str = ""

    def __post_init__(self):
        if isinstance(self.data_kwargs, dict):
            object.__setattr__(self, "data_kwargs", tuple(sorted(self.data_kwargs.items())))
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        self.validate()

    def validate(self) -> None:
        def need(ok, what, got, accepted):
            if not ok:
                raise ValueError(f"RunConfig.{what} = {got!r} is not accepted; accepted: {accepted}")
        need(self.backend in BACKENDS, "backend", self.backend, BACKENDS)
        need(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, OPTIMIZERS)
        need(self.dtype in DTYPES, "dtype", self.dtype, DTYPES)
        need(self.loss in numpy_ops.LOSSES, "loss", self.loss, numpy_ops.LOSSES)
        need(self.init in numpy_mlp.INITS, "init", self.init, numpy_mlp.INITS)
        need(self.targets in TARGETS, "targets", self.targets, TARGETS)
        need(self.out_activation in numpy_ops.OUTPUT_ACTIVATIONS, "out_activation",
             self.out_activation, numpy_ops.OUTPUT_ACTIVATIONS)
        need(len(self.sizes) >= 2 and min(self.sizes) > 0, "sizes", self.sizes,
             "at least two positive widths")
        for a in self.hidden_activations:
            need(a in numpy_ops.HIDDEN_ACTIVATIONS, "activation", a, numpy_ops.HIDDEN_ACTIVATIONS)
        need(self.batch_size is None or self.batch_size >= 1, "batch_size", self.batch_size,
             "None (full batch) or a positive int")
        need(self.lr > 0, "lr", self.lr, "a positive float")
        need(not self.layerwise_update or (self.optimizer == "sgd" and not self.momentum
                                           and not self.weight_decay),
             "layerwise_update", self.layerwise_update, "True only with plain sgd (no momentum, "
             "no weight decay)")

    @property
    def hidden_activations(self) -> tuple:
        n_hidden = len(self.sizes) - 2
        if isinstance(self.activation, str):
            return (self.activation,) * n_hidden
        if len(self.activation) != n_hidden:
            raise ValueError(f"RunConfig.activation has {len(self.activation)} names for "
                             f"{n_hidden} hidden layers; give one name or one per hidden layer")
        return tuple(self.activation)

    @property
    def activations(self) -> tuple:
        """One per layer, the output's last."""
        return self.hidden_activations + (self.out_activation,)

    @property
    def np_dtype(self):
        return np.dtype(self.dtype)

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def summary(self) -> str:
        """One line that says what this run is."""
        acts = "/".join(dict.fromkeys(self.hidden_activations)) or "none"
        batch = "full" if self.batch_size is None else self.batch_size
        length = f"{self.epochs} epochs" if self.epochs else f"{self.steps} steps"
        extra = "".join([
            f" momentum={self.momentum}" if self.momentum else "",
            f" wd={self.weight_decay}" if self.weight_decay else "",
            f" decay={self.lr_decay}/{self.lr_decay_every}" if self.lr_decay_every else "",
            "" if self.mean_gradient else " summed-gradient",
            " layerwise-update" if self.layerwise_update else "",
        ])
        return (f"{self.data} {'-'.join(map(str, self.sizes))} {acts}->{self.out_activation} "
                f"{self.loss} init={self.init} {self.optimizer} lr={self.lr:g}{extra} "
                f"batch={batch} {length} {self.dtype}")


@dataclass
class RunResult:
    config: RunConfig
    model: Any                  # numpy_mlp.MLP or torch.nn.Module
    history: np.ndarray         # loss of the batch at every step, before that step's update
    curve: dict                 # {"step": [...], "train": [...], "test": [...]} full-set losses
    train_loss: float
    test_loss: float
    train_acc: float | None = None
    test_acc: float | None = None
    diverged: bool = False
    seconds: float = 0.0
    data: Any = field(default=None, repr=False)
    timeline: Any = field(default=None, repr=False, compare=False)  # a watched torch run's recording

    def predict(self, X) -> np.ndarray:
        """The trained model's output (after its output activation) on X, as numpy."""
        return predict(self.model, np.asarray(X, dtype=self.config.np_dtype))


def accuracy(out: np.ndarray, labels: np.ndarray) -> float:
    """Share of correct classes: argmax of a multi-unit output, else the rounded value."""
    if out.ndim == 2 and out.shape[1] > 1:
        pred = out.argmax(axis=1)
    else:
        pred = np.rint(np.nan_to_num(out.reshape(-1)))
    return float(np.mean(pred == labels))


def predict(model, X: np.ndarray) -> np.ndarray:
    if isinstance(model, numpy_mlp.MLP):
        with np.errstate(all="ignore"):
            return model.forward(X.astype(model.dtype))
    import torch
    p = next(model.parameters())
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=p.dtype, device=p.device)).cpu().numpy()
