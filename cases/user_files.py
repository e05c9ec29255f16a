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


def load_history(path: str) -> np.ndarray:
    """A loss history from .npy (an array) or .csv (the last column; a header is skipped)."""
    p = existing_file(path, "--history")
    try:
        if p.suffix == ".npy":
            h = np.load(p, allow_pickle=False)
        elif p.suffix == ".csv":
            h = np.genfromtxt(p, delimiter=",", ndmin=2, skip_header=int(has_header(p)))[:, -1]
        else:
            raise UsageError(f"--history {path}: accepted: a .npy or .csv file")
    except UsageError:
        raise
    except Exception as e:
        raise UsageError(f"--history {path} could not be read: {type(e).__name__}: {e}") from e
    h = np.asarray(h, dtype=np.float64).reshape(-1)
    if h.size == 0:
        raise UsageError(f"--history {path} holds no numbers")
    return h


def has_header(path: Path) -> bool:
    """A first line with words in it (not just numbers, nan or inf) is a header."""
    with open(path) as f:
        first = f.readline().lower().replace("nan", "").replace("inf", "")
    return any(c.isalpha() for c in first)


def run_diagnose(model, X, y, loss: str, lr, history):
    """diagnose(); its complaints about the inputs are the user's bad input (exit 2)."""
    from diagnostics import diagnose
    try:
        return diagnose(model, X, y, loss=loss, history=history, lr=lr)
    except (ValueError, TypeError) as e:
        raise UsageError(f"diagnose() refused the input: {e}") from e
