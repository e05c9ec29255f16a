"""Runs (and other costly fixtures) made once per test session and shared by the xdist workers.

Under ``pytest -n`` the tests that read one run land on either worker, and a per-process cache
trains it in each. Here the first worker that asks for a run trains it under a file lock and
writes it as a pickle; the other loads it (the pattern of ``tests/case_runs.py``). The folder is
new each session, so a changed test never reads a stale run. Within a process a run is loaded
once and shared, as a session fixture or an ``lru_cache`` shares it.

Pickling keeps each parameter's ``.grad``, which torch's own pickling drops: the loop checks read
the gradient a loop leaves behind. Objects pickled together (a model and its optimizer) stay
linked: the optimizer's parameters are the model's.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path

from filelock import FileLock
from torch import nn


def parameter(data, requires_grad: bool, grad):
    """A Parameter with its gradient, as it was pickled."""
    p = nn.Parameter(data, requires_grad=requires_grad)
    p.grad = grad
    return p


class GradPickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, nn.Parameter) and obj.grad is not None:
            return parameter, (obj.data, obj.requires_grad, obj.grad)
        return NotImplemented


def dumps(obj) -> bytes:
    buffer = io.BytesIO()
    GradPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def session_folder(tmp_path_factory, name: str) -> Path:
    """``name`` in this session's temp folder: one for all xdist workers (each worker's own
    temp folder sits in the session's)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


class SharedRuns:
    """``get(key, train)``: ``train()``'s result, computed at most once per session folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.loaded: dict = {}

    def get(self, key: str, train):
        if key not in self.loaded:
            self.loaded[key] = self.load_or_train(key, train)
        return self.loaded[key]

    def load_or_train(self, key: str, train):
        path = self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.pkl"
        with FileLock(path.with_suffix(".lock")):
            if not path.exists():
                partial = path.with_suffix(f".{os.getpid()}.part")
                partial.write_bytes(dumps(train()))
                partial.replace(path)          # atomic: a reader sees a whole file or none
        return pickle.loads(path.read_bytes())
