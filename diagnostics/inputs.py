"""Checks on what the caller passed: each mistake gets one ValueError/TypeError that names the
argument, what was received and what is accepted. Accepted conversions (documented in docs/inputs.md and docs/checks.md):
integer, float16 and bfloat16 inputs are converted to the model's dtype; torch tensors on any device
are read and moved to the model's device; more rows than the cost budget are subsampled.
"""

from __future__ import annotations

import numpy as np

from diagnostics.losses import CLASS_INDEX_LOSSES

ROW_BUDGET = 2_000_000_000   # rows x parameters one probe may touch: ~1 s of forward+backward on 2 cores
MIN_ROWS, MAX_ROWS = 256, 10_000  # never fewer (statistics need rows), never more (1 s for tiny models)
SUBSAMPLE_SEED = 0           # a fixed local generator: the same rows every call, global RNGs untouched
PROB_SUM_TOL = 1e-4          # a row of class probabilities sums to 1 within float32 rounding


def model_kind(model) -> str:
    """'torch' for a torch module, else the class name of a model that converts itself with
    ``to_torch()``; TypeError for anything else, ValueError for a model without parameters."""
    import torch
    if isinstance(model, torch.nn.Module):
        if not any(True for _ in model.parameters()):
            raise ValueError(f"model is a {type(model).__name__} without parameters; accepted: a "
                             "module with at least one parameter (e.g. an nn.Linear inside)")
        return "torch"
    if callable(getattr(model, "to_torch", None)):
        return type(model).__name__
    raise TypeError(f"model is a {type(model).__module__}.{type(model).__name__}; accepted: a "
                    "torch.nn.Module, or a model with a to_torch() method that returns one (such "
                    "as the project's numpy MLP, cases.backends.numpy_mlp.MLP)")


def as_module(model, kind: str):
    """The torch module diagnose() reads: the model itself, or what its to_torch() returns (a new
    module: the caller's model is never touched)."""
    import torch
    if kind == "torch":
        return model
    module = model.to_torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{kind}.to_torch() returned a {type(module).__name__}; accepted: a "
                        "torch.nn.Module computing the same function as the model")
    model_kind(module)      # refused as any torch model would be: no parameters, no probe
    return module


def as_numpy(a, name: str) -> np.ndarray:
    """A copy-free numpy view of an array-like or tensor (bfloat16, which numpy lacks, goes via
    float32; a tensor on another device is copied to the CPU); a pandas DataFrame or Series (or
    anything with ``to_numpy()``) by its ``to_numpy()``."""
    import torch
    if isinstance(a, torch.Tensor):
        a = a.detach()
        if a.dtype == torch.bfloat16:
            a = a.float()
        return a.cpu().numpy()
    table = a if callable(getattr(a, "to_numpy", None)) and not isinstance(a, np.ndarray) else None
    try:
        arr = np.asarray(a.to_numpy() if table is not None else a)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name} could not be read as an array ({e}); accepted: a numpy array, "
                        "torch tensor or pandas DataFrame/Series of numbers") from e
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {arr.dtype}{non_numeric_columns(table)}; accepted: a "
                        "numeric array (bool, int or float), a DataLoader or Dataset of (x, y) "
                        "pairs, or a DataFrame of numeric columns")
    return arr


def non_numeric_columns(table) -> str:
    """' (a DataFrame whose columns ['city'] are not numeric)', read off its dtypes; '' else."""
    dtypes = getattr(table, "dtypes", None)
    if table is None or not hasattr(dtypes, "items"):
        return ""
    bad = [str(c) for c, d in dtypes.items() if getattr(d, "kind", "O") not in "biuf"]
    return f" (a {type(table).__name__} whose columns {bad} are not numeric)"


def needs_conversion(X) -> str | None:
    """The dtype name of X when diagnose converts it to the model's float dtype (integer, bool,
    float16, bfloat16), else None; read before as_numpy, which turns bfloat16 into float32."""
    import torch
    if isinstance(X, torch.Tensor):
        ok = X.is_floating_point() and X.dtype not in (torch.float16, torch.bfloat16)
        return None if ok else str(X.dtype).removeprefix("torch.")
    dt = np.asarray(X).dtype
    return None if dt.kind == "f" and dt != np.float16 else str(dt)


def count_nonfinite(a: np.ndarray, name: str) -> None:
    if a.dtype.kind != "f":
        return
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        raise ValueError(f"{name} holds {n_nan} NaN and {n_inf} Inf of {a.size} values, the first at "
                         f"index {first}; accepted: finite values only (drop or impute those rows)")


def checked_X(X) -> np.ndarray:
    """X as numpy: 2-D (n, features), or N-D rows (n, ...) that the model's forward takes (an
    nn.Flatten() or a stem in front of the MLP; the forward refuses the others)."""
    X = as_numpy(X, "X")
    if X.ndim < 2:
        raise ValueError(f"X has shape {X.shape} ({X.ndim}-D); accepted: a 2-D array (n_samples, "
                         "n_features), or N-D rows for a model that starts with nn.Flatten(); "
                         "reshape a single feature with X.reshape(-1, 1)")
    if X.shape[0] == 0 or 0 in X.shape[1:]:
        raise ValueError(f"X is empty (shape {X.shape}); accepted: at least one row and one column")
    count_nonfinite(X, "X")
    return X


def checked_y(y, n: int, loss: str, names: tuple = ("X", "y")) -> np.ndarray:
    """y as the loss reads it: class indices (n,) or class probabilities (n, k) for the index
    losses, integers for a custom loss, float64 otherwise."""
    x_name, y_name = names
    y = as_numpy(y, y_name)
    if y.ndim == 0 or y.ndim > 2:
        raise ValueError(f"{y_name} has shape {y.shape}; accepted: (n,) or (n, k)")
    if len(y) != n:
        raise ValueError(f"{x_name} has {n} rows but {y_name} has {len(y)}; accepted: one target "
                         f"per row of {x_name}")
    count_nonfinite(y, y_name)
    if loss in CLASS_INDEX_LOSSES:
        return class_indices(y, loss)
    if loss == "custom" and y.dtype.kind in "iu":
        return y.astype(np.int64)       # the caller's loss may take them as class indices
    return y.astype(np.float64)


def checked_held_out(X_val, y_val, n_features: tuple, loss: str):
    """(X_val, y_val as the loss takes it, y_val as given), None when neither is given."""
    if X_val is None and y_val is None:
        return None
    if X_val is None or y_val is None:
        given, missing = ("X_val", "y_val") if y_val is None else ("y_val", "X_val")
        raise ValueError(f"{given} was given without {missing}; accepted: both (held-out rows and "
                         "their targets) or neither")
    X = checked_X(X_val)
    if X.shape[1:] != n_features:
        what = f"{X.shape[1]} columns but X has {n_features[0]}" if len(n_features) == 1 \
            and X.ndim == 2 else f"rows of shape {X.shape[1:]} but X has {n_features}"
        raise ValueError(f"X_val has {what}; accepted: held-out rows with the columns of X")
    return X, checked_y(y_val, len(X), loss, ("X_val", "y_val")), as_numpy(y_val, "y_val")


def class_indices(y: np.ndarray, loss: str) -> np.ndarray:
    """Integer class indices from indices or one-hot rows; for cross_entropy, rows of class
    probabilities (soft or label-smoothed targets, as F.cross_entropy takes them) as float64;
    TypeError for other floats."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        if np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
            return y.argmax(axis=1).astype(np.int64)
        if loss == "cross_entropy" and are_class_probabilities(y):
            return y.astype(np.float64)
        soft = (", or rows of class probabilities in [0, 1] summing to 1" if loss == "cross_entropy"
                else "; only cross_entropy takes rows of class probabilities")
        raise TypeError(f"y has shape {y.shape} but is not one-hot or class probabilities; {loss} "
                        f"accepts integer class indices (n,) or one-hot rows (n, k){soft}")
    if y.dtype.kind == "f":
        raise TypeError(f"y has float dtype {y.dtype} but loss={loss!r} needs integer class indices; "
                        "accepted: an int array (n,) such as y.astype(int), or one-hot rows; for "
                        "float targets use loss='mse' or 'bce'")
    return y.astype(np.int64)


def are_class_probabilities(y: np.ndarray) -> bool:
    """Every row in [0, 1] and summing to 1 (within float32 rounding)."""
    return bool(y.min() >= 0 and y.max() <= 1
                and np.all(np.abs(y.sum(axis=1) - 1) < PROB_SUM_TOL))


def without_ignored(X: np.ndarray, y: np.ndarray, y_raw: np.ndarray, ignore_index) -> tuple:
    """(X, y, y_raw, note) without the rows whose class index is the loss's ignore_index (the
    loss reads nothing from them); note None when there are none."""
    if ignore_index is None or y.ndim != 1 or not np.any(y == ignore_index):
        return X, y, y_raw, None
    keep = y != ignore_index
    if not keep.any():
        raise ValueError(f"every one of the {len(y)} targets is ignore_index={ignore_index}; "
                         "accepted: at least one row whose class the loss reads")
    return X[keep], y[keep], y_raw[keep], (
        f"{int((~keep).sum())} of {len(y)} rows have y == ignore_index ({ignore_index}) and were "
        "left out: the loss reads nothing from them")


def check_class_width(y: np.ndarray, width: int, loss: str) -> None:
    if y.shape[1] != width:
        raise ValueError(f"y holds {y.shape[1]} class probabilities per row but the model has "
                         f"{width} outputs and loss={loss!r}; accepted: rows of {width} "
                         "probabilities, one per output unit")


def check_class_range(y: np.ndarray, width: int, loss: str) -> None:
    bad = (y < 0) | (y >= width)
    if bad.any():
        raise ValueError(f"y holds {int(bad.sum())} class indices outside [0, {width - 1}] (min "
                         f"{int(y.min())}, max {int(y.max())}) for a model with {width} outputs and "
                         f"loss={loss!r}; accepted: indices 0..{width - 1}, one per output unit")


def row_cap(n_params: int) -> int:
    """The most rows one probe of a model of n_params parameters reads."""
    return int(np.clip(ROW_BUDGET // max(n_params, 1), MIN_ROWS, MAX_ROWS))


def subsample(n: int, n_params: int) -> np.ndarray | None:
    """Sorted row indices to keep when n rows exceed the cost budget, else None."""
    keep = row_cap(n_params)
    if n <= keep:
        return None
    return np.sort(np.random.default_rng(SUBSAMPLE_SEED).choice(n, keep, replace=False))


def losses_as_floats(history):
    """A list of loss tensors (losses.append(loss)) as plain floats; anything else as it is."""
    import torch
    if not isinstance(history, (list, tuple)) or not any(isinstance(v, torch.Tensor)
                                                         for v in history):
        return history
    try:
        return [float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for v in history]
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"history could not be read as one loss per step ({e}); accepted: a "
                        "sequence of numbers or of one-element tensors") from e


def history_keeps_graphs(history) -> bool:
    """The history holds losses still attached to autograd: each keeps its step's graph alive."""
    return isinstance(history, (list, tuple)) and any(getattr(v, "requires_grad", False)
                                                      for v in history)


def checked_history(history) -> np.ndarray | None:
    if history is None:
        return None
    h = as_numpy(losses_as_floats(history), "history")
    if h.ndim != 1:
        raise ValueError(f"history has shape {h.shape}; accepted: a 1-D sequence of losses, one per "
                         "step or epoch")
    return h.astype(np.float64)


def checked_rate(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} is a {type(value).__name__}; accepted: a float or None")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r}; accepted: a finite float >= 0, or None")
    return float(value)


def optimizer_settings(optimizer) -> dict:
    """lr, weight decay, momentum and class name read from a torch optimizer's first group."""
    if optimizer is None:
        return {}
    import torch
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer is a {type(optimizer).__name__}; accepted: a "
                        "torch.optim.Optimizer or None (pass lr= for numpy runs)")
    g = optimizer.param_groups[0]
    lr, start = g.get("lr"), g.get("initial_lr")    # a torch lr scheduler sets initial_lr
    return {"lr": float(lr) if lr is not None else None,
            "initial_lr": float(start) if isinstance(start, (int, float)) else None,
            "weight_decay": float(g.get("weight_decay", 0.0) or 0.0),
            "momentum": float(g.get("momentum", 0.0) or 0.0),
            "optimizer": type(optimizer).__name__,
            "decoupled_decay": isinstance(optimizer, torch.optim.AdamW)
            or bool(g.get("decoupled_weight_decay", False)),
            "adaptive_step_rms": adaptive_step_rms(optimizer),
            "steps_taken": steps_taken(optimizer)}


STATE_ON_STEP = ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adadelta")
# optimizers whose step() writes per-parameter state (SGD too, when momentum > 0): no state at
# all after a loop means step() never ran


def steps_taken(optimizer) -> int | None:
    """How many steps the optimizer's state says it took: the largest 'step' it counts, 0 when an
    optimizer that writes state on every step holds none; None where the state cannot tell."""
    states = [optimizer.state.get(p, {}) for g in optimizer.param_groups for p in g["params"]]
    counted = [float(st["step"]) for st in states if "step" in st]
    if counted:
        return int(max(counted))
    writes = type(optimizer).__name__ in STATE_ON_STEP or any(
        g.get("momentum", 0) for g in optimizer.param_groups)
    return 0 if writes and not any(states) else None


def adaptive_step_rms(optimizer) -> float | None:
    """RMS over every weight of Adam's normalised step m_hat / (sqrt(v_hat) + eps), read from the
    optimizer's state; None for optimizers that keep no such state (or before the first step)."""
    import torch
    sq, n = 0.0, 0
    for group in optimizer.param_groups:
        b1, b2 = group.get("betas", (None, None))
        for p in group["params"]:
            st = optimizer.state.get(p, {})
            if "exp_avg" not in st or "exp_avg_sq" not in st or b1 is None:
                continue
            t = float(st.get("step", 1))
            m = st["exp_avg"].detach().double() / (1 - b1 ** t)
            v = st["exp_avg_sq"].detach().double() / (1 - b2 ** t)
            sq += float(torch.sum((m / (v.sqrt() + group.get("eps", 1e-8))) ** 2))
            n += p.numel()
    return float(np.sqrt(sq / n)) if n else None


def parameters_outside(optimizer, model) -> tuple | None:
    """Names of the torch model's trainable parameters that the optimizer does not hold (by
    identity, as optimizer.step() finds them); None without an optimizer or a torch model."""
    import torch
    if optimizer is None or not isinstance(model, torch.nn.Module):
        return None
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    return tuple(n for n, p in model.named_parameters() if p.requires_grad and id(p) not in held)
