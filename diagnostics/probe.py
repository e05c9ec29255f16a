"""Probe data: what the adapters read off a model, as plain numpy, and all a check may look at.

Weights are stored as nn.Linear stores them, (fan_out, fan_in), whichever backend they came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from diagnostics.losses import CLASS_INDEX_LOSSES, NAMED
from diagnostics.reference import Reference

LOSSES = NAMED
# nll: F.nll_loss, on log-probabilities (a log_softmax head); cross_entropy = log_softmax + nll


def one_column_against_flat(y_shape: tuple, out_shape: tuple) -> bool:
    """One of y and the output is (n,) and the other (n, 1): a loss on them broadcasts."""
    shapes = sorted([tuple(y_shape), tuple(out_shape)], key=len)
    return len(shapes[0]) == 1 and len(shapes[1]) == 2 and shapes[1][1] == 1


@dataclass
class Layer:
    """One linear layer and the activation that follows it (the head's for the last one)."""
    name: str                       # as the user wrote it: "net.2 Linear(64->10)", "layer 1 (hidden, 64 relu)"
    weight: np.ndarray              # (fan_out, fan_in)
    bias: np.ndarray | None
    grad_weight: np.ndarray | None  # d(mean loss)/d(weight); None when it does not require grad
    pre: np.ndarray                 # (n, fan_out): z, what the activation receives
    post: np.ndarray                # (n, fan_out): act(z)
    activation: str                 # relu, leaky_relu, elu, gelu, sigmoid, tanh, softmax, ...
    is_output: bool = False
    path: str = ""                  # the module path ("net.2"): its parameters are "net.2.weight"
    feeds_norm: bool = False        # a BatchNorm/LayerNorm/GroupNorm module normalises its output
                                    # next: its weights' scale has no effect on the function

    @property
    def width(self) -> int:
        return self.weight.shape[0]

    @property
    def fan_in(self) -> int:
        return self.weight.shape[1]


@dataclass
class Probe:
    X: np.ndarray                   # the rows diagnosed (a subsample of the caller's when large)
    y: np.ndarray                   # class indices (n,) for index losses, else (n, k) floats
    out: np.ndarray                 # (n, k): the model's output, after its head
    loss_name: str                  # a name of LOSSES, or "custom"
    loss: float                     # mean loss on these rows
    baseline_loss: float            # loss of the best constant prediction (what "learned nothing" scores)
    layers: list                    # [Layer], in the order the forward pass calls them
    params: dict                    # name -> array, every parameter
    grads: dict                     # name -> array or None
    untrained_loss: float | None = None  # loss of a fresh zero-mean model's outputs (about 0 at the
                                         # last layer: equal scores, values 0); None: custom loss
    history: np.ndarray | None = None
    lr: float | None = None
    weight_decay: float = 0.0
    momentum: float = 0.0
    decoupled_decay: bool = False   # AdamW: p -= lr * wd * p beside the step, not wd * p in the gradient
    adaptive_step_rms: float | None = None  # Adam's normalised step m_hat/(sqrt(v_hat)+eps), RMS
    optimizer: str | None = None    # class name of the optimizer, when one was given
    initial_lr: float | None = None # the lr a torch lr scheduler started from, when there is one
    n_rows: int = 0                 # rows the caller passed
    y_shape: tuple = ()             # y's shape as the caller passed it, before any alignment
    out_shape: tuple = ()           # the model's output shape as its forward returned it
    stored_grads: dict | None = None      # the caller's own .grad per trainable parameter (torch),
                                          # None when no parameter holds one
    row_grad_norms: np.ndarray | None = None   # (n,): each row's own loss gradient norm over the
                                               # Linear parameters (None: no stored .grad to
                                               # bound, or rows not separable)
    unit_grad_bounds: dict = field(default_factory=dict)  # Linear parameter -> (fan_out,): per
                                               # unit, the largest norm one row's gradient gives
    steps_taken: int | None = None  # steps the optimizer's state counts (None: it cannot tell)
    optimizer_missing: tuple | None = None     # trainable parameters the given optimizer does not
                                               # hold; None when no optimizer was given
    stepped_loss: Callable[[float, float], float] | None = None   # lazy: (lr, wd) -> the loss
                                    # on these rows after one plain gradient step (torch models)
    sharpness: Callable[[], float] | None = None   # lazy: the largest Hessian eigenvalue of the loss
    reference: Reference | None = None     # what a linear and a nearest-neighbour fit of these rows
                                           # reach (diagnostics.reference); None: custom loss
    broadcast_loss: float | None = None    # a value loss of the outputs against y when one is (n,)
                                           # and the other (n, 1), broadcast (n, n) as a loop does
    dropout: dict = field(default_factory=dict)   # module -> p, each Dropout module's (torch)
    repeat_change: float | None = None     # RMS change of the eval-mode outputs on X between two
                                           # identical calls, over their RMS spread (torch)
    row_losses: Callable[[], np.ndarray | None] | None = None   # lazy: rows' own losses (a batch
                                                               # of one each), up to 256 rows
    harmonic_batch_rows: float | None = None  # a watched run's rows a batch, their harmonic mean:
                                              # what the batches' noise scales by
    batch_mean_scatter: float | None = None   # a watched run's sampled batches: how far their
    batches_measured: int = 0                 # mean inputs scatter (Timeline), over how many
    val_loss: float | None = None          # the model's loss on X_val, y_val when given
    val_baseline_loss: float | None = None # a constant predictor's loss on them
    notes: list = field(default_factory=list)

    @property
    def head(self) -> str:
        return self.layers[-1].activation if self.layers else "unknown"

    @property
    def hidden(self) -> list:
        return [layer for layer in self.layers if not layer.is_output]

    @property
    def index_targets(self) -> bool:
        return self.loss_name in CLASS_INDEX_LOSSES

    @property
    def loss_ratio(self) -> float:
        """Loss over the constant predictor's: 1 = learned nothing, 0 = perfect."""
        return ratio(self.loss, self.baseline_loss)

    @property
    def finite(self) -> bool:
        """Outputs, loss and parameters are finite: the model-based checks can read them."""
        return bool(np.isfinite(self.loss) and np.all(np.isfinite(self.out))
                    and all(np.all(np.isfinite(p)) for p in self.params.values()))


def ratio(a: float, b: float) -> float:
    if b > 0:
        return float(a / b)
    return 0.0 if a <= 0 else float("inf")
