"""The healthy training programs: each one small declarative description of a PyTorch run.

A :class:`Program` says what a user's script does: which data, which net, which loss and
optimizer, how many steps over which batches. Its last group of fields holds what the fault
operators change (their healthy values are the defaults), so that an operator is one
``dataclasses.replace`` and the loop in :mod:`cases.faults.train` reads every run the same way.

The data come bundled with scikit-learn (nothing is downloaded) or are drawn here (sin). Each
program holds a quarter of its rows out, standardises its inputs (and regression targets) with
statistics of the training rows, and trains in well under a second on one CPU thread.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

TEST_SHARE = 0.25   # rows held out to judge what the net learned (the harm rule's score)


@dataclass(frozen=True)
class Program:
    name: str
    data: str                       # a key of DATASETS
    loss: str                       # "cross_entropy", "nll", "bce_with_logits" or "mse"
    hidden: tuple = (32,)           # hidden layer widths
    activation: str = "relu"        # "relu", "tanh", "gelu", "sigmoid", or "none" (a linear model)
    optimizer: str = "adam"         # "sgd", "momentum" (SGD, momentum 0.9), "adam", "adamw"
    lr: float = 1e-3
    steps: int = 300
    batch_size: int | None = None   # None: full batch
    weight_decay: float | None = None   # None: the optimizer's default
    # ---- what the fault operators change; the defaults are the healthy program
    input_scale: float = 1.0        # inputs multiplied after standardising (e.g. other units)
    target_scale: float = 1.0       # regression targets multiplied after standardising
    labels_permuted: bool = False   # training targets shuffled apart from their rows
    class_values: bool = False      # class indices fed to the loss as regression values
    init: str = "default"           # "default" (torch's), "zeros", "huge" (std 10), "positive",
                                    # "normal" (N(0, 1) weights, torch's biases), "symmetric"
                                    # (every hidden unit a copy of its layer's first)
    hidden_bias: float | None = None    # a constant bias in every hidden layer
    head: str = "none"              # an output activation: "none", "sigmoid", "softmax",
                                    # "log_softmax_over_batch" (nn.LogSoftmax(dim=0))
    detach_hidden: bool = False     # forward detaches the last hidden layer's output
    frozen_hidden: bool = False     # hidden layers' requires_grad=False
    zero_grad: bool = True          # the loop calls optimizer.zero_grad() before backward
    optimizer_step: bool = True     # the loop calls optimizer.step() after backward
    summed_loss: bool = False       # the loss sums over the batch instead of averaging
    stale_optimizer: bool = False   # the optimizer holds a model built before this one
    label_sorted: bool = False      # mini-batches taken in label order, not shuffled
    lr_decay: tuple | None = None   # (step_size, gamma) of a torch StepLR scheduler
    scheduler_per_batch: bool = False   # scheduler.step() after every batch, not every epoch
    clip_norm: float | None = None  # clip_grad_norm_(model.parameters(), clip_norm) after backward
    clip_value: float | None = None     # clip_grad_value_(model.parameters(), clip_value) after it
    detached_loss: bool = False     # the loss detached and made to require grad before backward
    zero_grad_late: bool = False    # optimizer.zero_grad() between backward and step

    @property
    def takes_class_indices(self) -> bool:
        return self.loss in ("cross_entropy", "nll")

    def describe(self) -> str:
        batch = f"batch {self.batch_size}" if self.batch_size else "full batch"
        widths = "-".join(map(str, self.hidden)) or "none"
        return (f"{self.data}, {self.loss}, hidden {widths} {self.activation}, "
                f"{self.optimizer} lr {self.lr:g}, {self.steps} steps, {batch}")


# ----------------------------------------------------------------- data
@dataclass(frozen=True)
class Dataset:
    """Raw rows: X (n, d) float, y (n,) int class indices or (n, k) float targets."""
    X: np.ndarray
    y: np.ndarray
    classes: int = 0                # 0 for regression
    note: str = field(default="", compare=False)

    @property
    def is_regression(self) -> bool:
        return self.classes == 0


def sklearn_set(loader: str, **kw):
    def load() -> Dataset:
        import sklearn.datasets
        if loader.startswith("load_"):
            kw["return_X_y"] = True   # the bundled sets; the make_* generators return (X, y)
        X, y = getattr(sklearn.datasets, loader)(**kw)
        if y.dtype.kind == "f":
            return Dataset(X, y.reshape(len(y), -1), 0, f"sklearn {loader}")
        return Dataset(X, y.astype(np.int64), int(y.max()) + 1, f"sklearn {loader}")
    return load


def sin_curve() -> Dataset:
    """y = sin(2x) + noise 0.05 at 400 random x in [-3, 3] (drawn with a fixed seed)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (400, 1))
    return Dataset(x, np.sin(2 * x) + 0.05 * rng.standard_normal(x.shape), 0, "sin(2x) + noise")


DATASETS = {
    "digits": sklearn_set("load_digits"),
    "iris": sklearn_set("load_iris"),
    "wine": sklearn_set("load_wine"),
    "breast_cancer": sklearn_set("load_breast_cancer"),
    "diabetes": sklearn_set("load_diabetes"),
    "moons": sklearn_set("make_moons", n_samples=600, noise=0.2, random_state=0),
    "circles": sklearn_set("make_circles", n_samples=600, noise=0.08, factor=0.5, random_state=0),
    "blobs": sklearn_set("make_blobs", n_samples=600, centers=4, cluster_std=2.0, random_state=0),
    "regression": sklearn_set("make_regression", n_samples=500, n_features=8, n_informative=5,
                              noise=10.0, random_state=0),
    "sin": sin_curve,
}


@functools.lru_cache(maxsize=None)
def dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]()


# ----------------------------------------------------------------- the healthy programs
PROGRAMS = {p.name: p for p in (
    Program("digits-adam-relu", "digits", "cross_entropy", hidden=(64,), activation="relu",
            optimizer="adam", lr=1e-3, steps=300, batch_size=64),
    Program("iris-sgd-tanh", "iris", "cross_entropy", hidden=(16,), activation="tanh",
            optimizer="sgd", lr=0.1, steps=400),
    Program("wine-momentum-gelu", "wine", "cross_entropy", hidden=(32, 32), activation="gelu",
            optimizer="momentum", lr=0.01, steps=300, batch_size=16),
    Program("blobs-sgd-relu", "blobs", "cross_entropy", hidden=(32,), activation="relu",
            optimizer="sgd", lr=0.05, steps=400, batch_size=32),
    Program("circles-adam-relu3", "circles", "cross_entropy", hidden=(32, 32, 32),
            activation="relu", optimizer="adam", lr=3e-3, steps=400, batch_size=32),
    Program("cancer-adamw-relu-bce", "breast_cancer", "bce_with_logits", hidden=(32, 16),
            activation="relu", optimizer="adamw", lr=1e-3, steps=300, batch_size=32),
    Program("moons-momentum-tanh-bce", "moons", "bce_with_logits", hidden=(32, 32),
            activation="tanh", optimizer="momentum", lr=0.05, steps=500),
    Program("regression-sgd-tanh-mse", "regression", "mse", hidden=(32,), activation="tanh",
            optimizer="sgd", lr=0.05, steps=400),
    Program("diabetes-adam-relu-mse", "diabetes", "mse", hidden=(32,), activation="relu",
            optimizer="adam", lr=3e-3, steps=300, batch_size=32),
    Program("sin-adamw-gelu-mse", "sin", "mse", hidden=(64, 64), activation="gelu",
            optimizer="adamw", lr=3e-3, steps=600, batch_size=32),
)}
