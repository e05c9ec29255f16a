"""The named losses in torch (mean over samples, as the project's numpy losses), how a caller's
loss argument is read (a name, a torch loss module, a functional form), and what the best constant
prediction scores on each: the yardstick for "training has learned nothing".

A loss is read by what it is, so that every loss-specific check applies: ``nn.CrossEntropyLoss(
label_smoothing=0.1)``, ``F.cross_entropy``, ``"CrossEntropyLoss"`` and ``"ce"`` are all
``cross_entropy``. The options that change the loss's value (``weight``, ``label_smoothing``,
``pos_weight``, ``beta``, ``delta``) travel with it, and the constant predictor is scored under the
same options; ``ignore_index`` rows are left out of the probe. Any other callable is ``custom``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import numpy as np

PROB_EPS = 1e-12      # clip the constant predictor's probabilities (float64 numpy) off 0 and 1
CONSTANT_STEPS = 200  # L-BFGS iterations for a constant under options without a closed form: the
                      # problem is convex in k numbers and converges in ~20
KINDS = {"mse": "regression", "half_mse": "regression", "cross_entropy": "class_index",
         "nll": "class_index", "bce": "binary", "bce_with_logits": "binary",
         "hinge": "class_index", "l1": "regression", "smooth_l1": "regression",
         "huber": "regression"}   # what y holds: values, class indices, 0/1 per output column
NAMED = tuple(KINDS)
REGRESSION_LOSSES = tuple(n for n, kind in KINDS.items() if kind == "regression")
CLASS_INDEX_LOSSES = tuple(n for n, kind in KINDS.items() if kind == "class_index")
BINARY_LOSSES = tuple(n for n, kind in KINDS.items() if kind == "binary")
OPTIONS = {"weight": None, "pos_weight": None, "label_smoothing": 0.0, "beta": 1.0, "delta": 1.0}
# each option's default: an option at its default changes nothing and is not carried
ALIASES = {"ce": "cross_entropy", "categoricalcrossentropy": "cross_entropy",
           "softmaxcrossentropy": "cross_entropy", "l2": "mse", "meansquarederror": "mse",
           "negativeloglikelihood": "nll", "binarycrossentropy": "bce",
           "bcelogits": "bce_with_logits", "binarycrossentropywithlogits": "bce_with_logits",
           "mae": "l1", "meanabsoluteerror": "l1", "multiclasshinge": "hinge"}


@dataclass(frozen=True)
class LossSpec:
    """A loss as diagnose() reads it: a name of NAMED (or "custom"), the options that change its
    value, the class index whose rows it ignores, and the caller's callable for a custom loss."""
    name: str
    options: dict = field(default_factory=dict)
    ignore_index: int | None = None
    fn: object = None

    @property
    def plain(self) -> bool:
        """No option changes the value: the closed forms and the numpy scorers apply."""
        return not self.options


def compact(name: str) -> str:
    """'CrossEntropyLoss', 'cross-entropy', 'Cross_Entropy' -> 'crossentropy'."""
    return re.sub(r"[\s_\-]", "", name.lower()).removesuffix("loss") or name.lower()


def name_of(text: str) -> str:
    """The loss a spelling names, case-insensitive; ValueError listing the accepted ones."""
    table = {**{compact(n): n for n in NAMED}, **ALIASES}
    found = table.get(compact(text))
    if found is None:
        raise ValueError(f"loss={text!r} is unknown; accepted: {', '.join(NAMED)} (any case, "
                         "'-' or '_', a 'Loss' suffix: 'CrossEntropyLoss', 'ce', 'MSE'), a torch "
                         "loss module such as nn.CrossEntropyLoss(), or a callable "
                         "(outputs, y) -> scalar")
    return found


def module_names() -> dict:
    from torch import nn
    return {nn.CrossEntropyLoss: "cross_entropy", nn.NLLLoss: "nll", nn.MSELoss: "mse",
            nn.BCELoss: "bce", nn.BCEWithLogitsLoss: "bce_with_logits", nn.L1Loss: "l1",
            nn.SmoothL1Loss: "smooth_l1", nn.HuberLoss: "huber"}


def functional_names() -> dict:
    from torch.nn import functional as F
    return {F.cross_entropy: "cross_entropy", F.nll_loss: "nll", F.mse_loss: "mse",
            F.binary_cross_entropy: "bce", F.binary_cross_entropy_with_logits: "bce_with_logits",
            F.l1_loss: "l1", F.smooth_l1_loss: "smooth_l1", F.huber_loss: "huber"}


def read_loss(loss) -> LossSpec:
    """The caller's loss argument as a LossSpec; TypeError/ValueError naming what is accepted."""
    if isinstance(loss, str):
        return LossSpec(name_of(loss))
    if isinstance(loss, type):
        raise TypeError(f"loss is the class {loss.__module__}.{loss.__name__}, not a loss; "
                        f"accepted: an instance, loss={short_path(loss)}() (note the "
                        "parentheses), a name such as 'cross_entropy', or a callable")
    if type(loss) in module_names():
        return LossSpec(module_names()[type(loss)], *module_options(loss))
    if isinstance(loss, functools.partial) and loss.func in functional_names() and not loss.args:
        name = functional_names()[loss.func]
        return LossSpec(name, *keyword_options(name, dict(loss.keywords)))
    if callable(loss):
        known = [n for f, n in functional_names().items() if f is loss]
        return LossSpec(known[0] if known else "custom", fn=loss)
    raise TypeError(f"loss is a {type(loss).__name__}; accepted: one of {', '.join(NAMED)}, a "
                    "torch loss module such as nn.CrossEntropyLoss(), or a callable "
                    "(outputs, y) -> scalar")


def short_path(cls: type) -> str:
    return f"nn.{cls.__name__}" if cls.__module__.startswith("torch.nn") else cls.__name__


def module_options(module) -> tuple:
    """(options, ignore_index) of a torch loss module: its attributes, as its forward reads them."""
    found = {k: getattr(module, k) for k in OPTIONS if hasattr(module, k)}
    found["reduction"] = module.reduction
    if hasattr(module, "ignore_index"):
        found["ignore_index"] = module.ignore_index
    return keyword_options(module_names()[type(module)], found)


def keyword_options(name: str, found: dict) -> tuple:
    """(the options that change the value, ignore_index), refusing a reduction other than mean."""
    reduction = found.pop("reduction", "mean")
    if reduction != "mean":
        raise ValueError(f"the {name} loss has reduction={reduction!r}; accepted: reduction='mean' "
                         "(the default). diagnose() compares the loss per row with a constant "
                         "predictor's and the history's; a 'sum' scales the loss and every "
                         "gradient by the batch size, which no yardstick shares. Pass the same "
                         "loss with reduction='mean'")
    ignore = found.pop("ignore_index", None)
    unknown = set(found) - set(OPTIONS)
    if unknown:
        raise ValueError(f"the {name} loss has options {sorted(unknown)} that diagnose() does not "
                         f"read; accepted: {sorted(OPTIONS)}, reduction='mean', ignore_index")
    options = {k: v for k, v in found.items() if not at_default(v, OPTIONS[k])}
    return options, ignore


def at_default(value, default) -> bool:
    return value is None if default is None else (value is not None and float(value) == default)


# ----------------------------------------------------------------- the losses, in torch
def torch_loss(name: str, options: dict | None = None):
    """(out (n, k), y) -> scalar tensor; y is (n,) int64 for index losses (or (n, k) class
    probabilities for cross_entropy), (n, k) float otherwise. ``options`` as the torch loss takes
    them (weight, label_smoothing, pos_weight, beta, delta)."""
    fn = plain_losses()[name]
    if not options:
        return fn
    def with_options(out, y):
        kw = {k: (v.to(out) if hasattr(v, "to") else v) for k, v in options.items()}
        return fn(out, y, **kw)    # a weight on the outputs' device and dtype (a copy)
    return with_options


def plain_losses() -> dict:
    from torch.nn import functional as F
    return {
        "mse": F.mse_loss,
        "half_mse": lambda out, y: 0.5 * ((out - y) ** 2).sum() / out.shape[0],
        "cross_entropy": F.cross_entropy,
        "nll": F.nll_loss,
        "bce": bce,
        "bce_with_logits": F.binary_cross_entropy_with_logits,
        "hinge": hinge,
        "l1": F.l1_loss,
        "smooth_l1": F.smooth_l1_loss,
        "huber": F.huber_loss,
    }


def bce(out, y, **options):
    """outputs outside [0, 1] are a finding, not a crash; torch's BCELoss clamps each log at -100,
    so a float32 output of exactly 1.0 (a confident, healthy classifier) stays finite; targets
    outside [0, 1] are clamped here too: loss-target-mismatch names them. A NaN output (which
    BCELoss refuses) gives a NaN loss, for the non-finite check to name."""
    import torch
    from torch.nn import functional as F
    if not bool(torch.isnan(out).any()):
        return F.binary_cross_entropy(out.clamp(0, 1), y.clamp(0, 1), **options)
    return out.sum() * float("nan")


def hinge(out, y, margin: float = 1.0):
    """sum_{j != y} max(0, margin + s_j - s_y), mean over rows, as the numpy backend's; written
    out because F.multi_margin_loss has no double backward, which the sharpness needs."""
    import torch
    s_y = out.gather(1, y.reshape(-1, 1))
    m = torch.relu(margin + out - s_y)
    return (m.sum() - margin * len(out)) / len(out)   # the j = y terms are each max(0, margin)


# ----------------------------------------------------------------- the constant predictor
def constant_loss(name: str, y: np.ndarray, width: int, options: dict | None = None) -> float:
    """The loss of the best prediction that ignores the input; y as the loss reads it."""
    if options:
        return fitted_constant_loss(name, y, width, options)
    if name in ("mse", "half_mse"):
        var = np.mean((y - y.mean(axis=0)) ** 2, axis=0)
        return float(var.mean() if name == "mse" else 0.5 * var.sum())
    if name in ("cross_entropy", "nll"):   # nll: the best constant log-probabilities
        p = np.bincount(y, minlength=width) / len(y) if y.ndim == 1 else y.mean(axis=0)
        return float(-np.sum(p[p > 0] * np.log(p[p > 0])))   # soft targets: their mean row
    if name in BINARY_LOSSES:
        p = np.clip(y.mean(axis=0), PROB_EPS, 1 - PROB_EPS)
        return float(np.mean(-(p * np.log(p) + (1 - p) * np.log1p(-p))))
    if name == "hinge":
        return float(width - 1)  # all scores equal: every wrong class costs the margin, 1
    if name == "l1":
        return float(np.mean(np.abs(y - np.median(y, axis=0))))   # the median minimises it
    if name in ("smooth_l1", "huber"):
        return fitted_constant_loss(name, y, width, {})
    raise ValueError(f"loss {name!r} has no constant baseline")


def fitted_constant_loss(name: str, y: np.ndarray, width: int, options: dict) -> float:
    """The loss's minimum over one output row given to every row, found by L-BFGS on the same
    torch loss (convex in that row), so options such as weight or label_smoothing are scored as
    the model's loss is."""
    import torch
    fn, yt = torch_loss(name, options), torch.as_tensor(np.ascontiguousarray(y))
    yt = yt.double() if yt.is_floating_point() else yt
    theta = torch.tensor(start_row(name, y, width), dtype=torch.float64).reshape(1, width)
    theta.requires_grad_(True)
    opt = torch.optim.LBFGS([theta], max_iter=CONSTANT_STEPS, line_search_fn="strong_wolfe")
    def objective():
        return fn(constant_output(name, theta).expand(len(y), width), yt)
    def closure():
        opt.zero_grad()
        L = objective()
        L.backward()
        return L
    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return float(objective())


def untrained_output_loss(name: str, y: np.ndarray, width: int,
                          options: dict | None = None) -> float | None:
    """The loss of what a fresh zero-mean, fan-in scaled model outputs: about 0 at its last
    layer (equal class scores, p = 0.5, values 0), whatever the targets. None for a custom loss."""
    import torch
    if name not in NAMED or (y.ndim == 2 and y.shape[1] != width):
        return None     # a custom loss, or value targets the outputs do not match (a mismatch)
    yt = torch.as_tensor(np.ascontiguousarray(y))
    yt = yt.double() if yt.is_floating_point() else yt
    zero = constant_output(name, torch.zeros(1, width, dtype=torch.float64))
    with torch.no_grad():
        return float(torch_loss(name, options or {})(zero.expand(len(y), width), yt))


def start_row(name: str, y: np.ndarray, width: int) -> np.ndarray:
    """Where L-BFGS starts: the median of value targets (the l1 and huber optimum for small
    residuals), zeros (equal class scores, p = 0.5) for the others."""
    if y.dtype.kind == "f" and name not in ("cross_entropy", "nll", "bce", "bce_with_logits"):
        return np.broadcast_to(np.median(y.reshape(len(y), -1), axis=0), (width,)).copy()
    return np.zeros(width)


def constant_output(name: str, theta):
    """The output a constant row of free numbers stands for: probabilities for bce,
    log-probabilities for nll, the values themselves for the rest."""
    import torch
    if name == "bce":
        return torch.sigmoid(theta)
    if name == "nll":
        return torch.log_softmax(theta, dim=1)
    return theta


def prediction_loss(name: str, options: dict, pred: np.ndarray, y: np.ndarray,
                    eps: float) -> float:
    """The loss of a reference's predictions (values; class probabilities (n, k); P(1) per column
    for 0/1 targets), as the network's outputs would carry them: log-probabilities, logits."""
    import torch
    p = torch.as_tensor(np.asarray(pred, dtype=np.float64))
    if name in ("cross_entropy", "nll", "bce", "bce_with_logits"):
        p = p.clamp(eps, 1 - eps if name.startswith("bce") else 1.0)
    out = {"cross_entropy": torch.log, "nll": torch.log, "bce_with_logits": torch.logit}.get(
        name, lambda t: t)(p)
    yt = torch.as_tensor(np.ascontiguousarray(y))
    with torch.no_grad():
        return float(torch_loss(name, options)(out, yt.double() if yt.is_floating_point() else yt))
