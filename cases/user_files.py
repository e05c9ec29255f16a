"""The ``diagnose`` command's inputs: a user's model code, weights file, data and loss history.

Every bad input becomes a :class:`~cases.errors.UsageError` naming the option,
what was received and what is accepted. A weights file is opened with
``torch.load(weights_only=True)``, which refuses to build anything but
tensors and plain containers; a file that needs more (a whole pickled module)
is refused before anything in it is unpickled, unless ``--trust-pickle``.
"""

from __future__ import annotations

import importlib
import os
import pickle
import pickletools
import sys
import zipfile
from pathlib import Path

import numpy as np

from cases.errors import UsageError

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")  # where checkpoints nest one


def existing_file(path: str, option: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{option} {path}: no such file")
    return p


def writable_file(path: str, option: str) -> Path:
    """A file the report can be written to: its folder exists, and it is not itself a folder.
    Checked before anything is loaded or diagnosed, so a typo costs no wait."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name, e.g. {path}/report"
                         f"{OUTPUT_SUFFIXES[option]}")
    if not p.parent.is_dir():
        raise UsageError(f"{option} {path}: the folder {p.parent} does not exist")
    return p


OUTPUT_SUFFIXES = {"--json": ".json", "--html": ".html"}


def write_outputs(report, outputs: dict) -> None:
    """The report as JSON (``to_dict()``) and as its HTML page, to the files asked for."""
    import json
    texts = {"--json": lambda: json.dumps(report.to_dict(), indent=2) + "\n",
             "--html": report.to_html}
    for option, path in outputs.items():
        try:
            path.write_text(texts[option](), encoding="utf-8")
        except OSError as e:
            raise UsageError(f"{option} {path} could not be written: {e.strerror or e}") from e


# ----------------------------------------------------------------- the model
def import_object(spec: str):
    """``package.module:attr`` -> the object, imported from the current folder like uvicorn."""
    module_name, sep, attr = spec.partition(":")
    if not (sep and module_name and attr):
        raise UsageError(f"--model {spec!r} is not MODULE:FACTORY; e.g. mypkg.nets:make_mlp")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except Exception as e:  # ImportError, or the user's module raised while importing
        raise UsageError(f"--model {spec!r}: importing {module_name!r} failed: "
                         f"{type(e).__name__}: {e}") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"--model {spec!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def build_model(spec: str):
    """Call the factory (or take the module instance) that ``spec`` names."""
    from torch import nn
    obj = import_object(spec)
    if not isinstance(obj, nn.Module):
        if not callable(obj):
            raise UsageError(f"--model {spec!r} names a {type(obj).__name__}; accepted: a "
                             "function that returns a torch.nn.Module, or a module instance")
        try:
            obj = obj()
        except Exception as e:
            raise UsageError(f"--model {spec!r}: calling it raised {type(e).__name__}: {e}") from e
    if not isinstance(obj, nn.Module):
        raise UsageError(f"--model {spec!r} returned a {type(obj).__name__}; accepted: a "
                         "torch.nn.Module")
    return obj


def pickled_globals(path: Path) -> list:
    """The classes and functions a torch.save archive names, read without unpickling."""
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        data = archive.read(name)
    found, strings = [], []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.append(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.append(".".join(strings[-2:]))
        elif isinstance(arg, str):
            strings.append(arg)
    return list(dict.fromkeys(found))


SAFE_GLOBAL_PREFIXES = ("torch._utils.", "torch.", "collections.OrderedDict", "builtins.")


def unsafe_globals(path: Path) -> list:
    return [g for g in pickled_globals(path)
            if not g.startswith(SAFE_GLOBAL_PREFIXES) or g.startswith("torch.nn.")]


def read_weights(path: str, trust_pickle: bool):
    """What the weights file holds: a state dict, or (trusted) a whole pickled module."""
    import torch
    p = existing_file(path, "--weights")
    if not zipfile.is_zipfile(p):
        raise UsageError(f"--weights {path} is not a torch.save file (it is not a zip archive); "
                         "accepted: torch.save(model.state_dict(), FILE)")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = e
    except Exception as e:
        raise UsageError(f"--weights {path} could not be read by torch.load: "
                         f"{type(e).__name__}: {e}") from e
    if not trust_pickle:
        names = ", ".join(unsafe_globals(p)[:3]) or "objects other than tensors"
        raise UsageError(f"--weights {path} is a pickled object naming {names}; loading it would "
                         "run code from the file, so it was not loaded. Pass --trust-pickle if you "
                         "trust the file, or save torch.save(model.state_dict(), FILE)") from refused
    return torch.load(p, map_location="cpu", weights_only=False)


def state_dict_of(obj, path: str) -> dict:
    """The tensors of a state dict, also when a checkpoint nests it under a usual key."""
    import torch
    if isinstance(obj, dict):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for key in STATE_DICT_KEYS:
            if isinstance(obj.get(key), dict):
                return state_dict_of(obj[key], path)
    raise UsageError(f"--weights {path} holds a {type(obj).__name__} that is not a state dict "
                     "(a dict of tensors); accepted: torch.save(model.state_dict(), FILE)")


def load_model(spec, weights, trust_pickle: bool, device: str = "cpu"):
    """The user's model in eval-ready form, built by ``spec`` and/or read from ``weights``."""
    from torch import nn
    if not spec and not weights:
        raise UsageError("give --model MODULE:FACTORY (and --weights FILE for its state dict), "
                         "or --weights FILE --trust-pickle for a whole pickled module")
    model = build_model(spec) if spec else None
    obj = read_weights(weights, trust_pickle) if weights else None
    if isinstance(obj, nn.Module):
        model = model or obj
        obj = obj.state_dict() if model is not obj else None
    if obj is not None:
        if model is None:
            raise UsageError(f"--weights {weights} holds a state dict; name the code that builds "
                             "the model with --model MODULE:FACTORY")
        load_state(model, state_dict_of(obj, weights), spec, weights)
    return move_to(model, device)


def load_state(model, state: dict, spec: str, weights: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UsageError(f"--weights {weights} does not fit the model built by --model {spec}: "
                         f"{str(e).splitlines()[0]} {' '.join(str(e).split()[1:12])}...") from e


def move_to(model, device: str):
    import torch
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but torch sees no CUDA device")
    return model.to(device)


# ----------------------------------------------------------------- data and history
def load_arrays(path: str):
    """X and y from an .npz, without allowing pickled (object) arrays."""
    p = existing_file(path, "--data")
    try:
        with np.load(p, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise UsageError(f"--data {path} holds one array; accepted: an .npz with X and "
                                 "y, e.g. np.savez(FILE, X=X, y=y)")
            missing = [k for k in ("X", "y") if k not in z.files]
            if missing:
                raise UsageError(f"--data {path} has arrays {sorted(z.files)} but lacks "
                                 f"{missing}; accepted: np.savez(FILE, X=X, y=y)")
            return z["X"], z["y"]
    except UsageError:
        raise
    except Exception as e:  # BadZipFile, a truncated member, object arrays, not numpy at all
        raise UsageError(f"--data {path} is not a readable .npz file: "
                         f"{type(e).__name__}: {e}") from e


LOSS_NAMES = ("loss", "train_loss", "training_loss", "train_loss_step", "train_loss_epoch",
              "train/loss", "loss_step", "loss_epoch")   # what loggers call the training loss
NOT_A_LOSS = ("step", "epoch", "lr", "learning_rate", "iteration", "iter", "batch", "time",
              "wall_time", "timestamp")   # columns a history file holds beside the loss
HISTORY_FORMATS = ("accepted: a .npy array of losses, or a .csv of numbers: one column, or a "
                   "header naming the loss column (loss, train_loss, ...; --history-column NAME)")


def load_history(path: str, column: str | None = None) -> tuple:
    """(losses, notes) from .npy (an array) or .csv (one column, or the named loss column of a
    header; empty cells skipped with a note)."""
    p = existing_file(path, "--history")
    if p.suffix not in (".npy", ".csv"):
        raise UsageError(f"--history {path}: {HISTORY_FORMATS}")
    try:
        h, notes = (np.load(p, allow_pickle=False), []) if p.suffix == ".npy" else \
            csv_history(p, path, column)
        h = np.asarray(h, dtype=np.float64).reshape(-1)
    except UsageError:
        raise
    except Exception as e:
        raise UsageError(f"--history {path} could not be read: {type(e).__name__}: {e}; "
                         f"{HISTORY_FORMATS}") from e
    if h.size == 0:
        raise UsageError(f"--history {path} holds no numbers; {HISTORY_FORMATS}")
    return h, notes


def csv_history(p: Path, path: str, column: str | None) -> tuple:
    rows = [line.rstrip("\r\n").split(",") for line in p.read_text().splitlines() if line.strip()]
    header = [c.strip() for c in rows[0]] if rows and has_header(rows[0]) else None
    j = loss_column(header, rows, path, column)
    cells = [r[j].strip() if j < len(r) else "" for r in rows[header is not None:]]
    values = [number_or_refuse(c, i, path) for i, c in enumerate(cells) if c != ""]
    empty = len(cells) - len(values)
    name = f"column {header[j]!r}" if header else f"column {j + 1}"
    notes = [f"--history: read {name} of {path}"] + \
        ([f"--history: skipped {empty} empty cell(s) of {name} (a logger writes a row per "
          "metric)"] if empty else [])
    return np.array(values, dtype=np.float64), notes


def has_header(first: list) -> bool:
    """A first row with words in it (not just numbers, nan or inf) is a header."""
    text = ",".join(first).lower().replace("nan", "").replace("inf", "")
    return any(c.isalpha() for c in text)


def loss_column(header, rows: list, path: str, column: str | None) -> int:
    """The index of the loss column: --history-column, a header's loss name, the one column that
    is not a step, epoch or lr, or the only column."""
    if header is None:
        if column is not None or len(rows[0]) > 1:
            raise UsageError(f"--history {path} has {len(rows[0])} columns and no header to say "
                             f"which is the loss; {HISTORY_FORMATS}")
        return 0
    if column is not None:
        if column not in header:
            raise UsageError(f"--history-column {column!r} is not in {path}'s header {header}")
        return header.index(column)
    named = [i for i, c in enumerate(header) if c.lower() in LOSS_NAMES]
    rest = [i for i, c in enumerate(header) if c.lower() not in NOT_A_LOSS]
    if named or len(rest) == 1:
        return (named or rest)[0]
    raise UsageError(f"--history {path}: cannot tell the loss column among {header}; pass "
                     f"--history-column NAME")


def number_or_refuse(cell: str, i: int, path: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise UsageError(f"--history {path}: row {i + 1} holds {cell!r}, not a number; "
                         f"{HISTORY_FORMATS}") from None


def run_diagnose(model, X, y, loss: str, lr, history, optimizer=None):
    """diagnose(); its complaints about the inputs are the user's bad input (exit 2)."""
    from diagnostics import diagnose
    try:
        return diagnose(model, X, y, loss=loss, history=history, lr=None if optimizer else lr,
                        optimizer=optimizer)
    except (ValueError, TypeError) as e:
        raise UsageError(f"diagnose() refused the input: {e}") from e


def make_optimizer(model, name: str | None, lr, momentum, weight_decay):
    """The torch optimizer the loop used, rebuilt from --optimizer, --lr, --momentum and
    --weight-decay so that the rules for Adam and decay apply; None without --optimizer."""
    import torch
    if name is None:
        if momentum or weight_decay:
            raise UsageError("--momentum and --weight-decay need --optimizer sgd|adam|adamw")
        return None
    if lr is None:
        raise UsageError(f"--optimizer {name} needs --lr, the learning rate the loop used")
    kinds = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    extra = {"momentum": momentum or 0.0} if name == "sgd" else {}
    if momentum and name != "sgd":
        raise UsageError(f"--momentum is SGD's; {name} has betas (leave --momentum out)")
    decay = weight_decay if weight_decay is not None else (0.01 if name == "adamw" else 0.0)
    return kinds[name](model.parameters(), lr=lr, weight_decay=decay, **extra)


def default_loss(model, X, y) -> str:
    """mse, unless y is integer class labels for a model of several outputs: then say which
    --loss to pass rather than fit labels as numbers."""
    import torch
    labels = np.issubdtype(y.dtype, np.integer) or (y.ndim == 1 and np.all(y == np.round(y)))
    if not labels or y.ndim != 1:
        return "mse"
    with torch.no_grad():
        p = next(model.parameters())
        width = model(torch.as_tensor(X[:2], dtype=p.dtype, device=p.device)).shape[-1]
    if width > 1:
        raise UsageError(f"y holds integer labels {int(y.min())}..{int(y.max())} and the model has "
                         f"{width} outputs: pass --loss cross_entropy (class indices; nll if the "
                         f"model ends in log_softmax), or --loss mse if they are numbers to fit")
    return "mse"
