"""Every case run trained once per test session, and shared by every test that reads it.

``test_cases.py`` and ``test_snapshots.py`` (and any test that asks the ``case_run``
fixture) read the same runs: the first test that needs one trains it, together with
the other seeds and fixes of its case that share its architecture and setup
(``cases.batched.batch_groups``: numpy, small steps, full batch or minibatch,
bit for bit as one by one), and writes each result as a pickle; every later test, in any xdist worker,
loads its own fresh copy. A file lock per group makes the workers wait for a group
in training instead of training it twice.

The folder is keyed by a hash of the source of ``cases/`` and the versions of the
libraries that compute the numbers, and each file by its ``RunConfig``: a changed
line of the training code or of a config trains anew, never reads a stale result.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path

from filelock import FileLock

import cases
from cases.batched import batch_groups, run_group

LIBRARIES = ("numpy", "torch", "scikit-learn")   # their kernels and data decide the bits too


def code_hash() -> str:
    """A hash of every source file of ``cases/``, the libraries' versions, Python and the CPU."""
    root = Path(cases.__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    for lib in LIBRARIES:
        h.update(f"{lib}={metadata.version(lib)}\0".encode())
    h.update(f"{sys.version}\0{platform.machine()}".encode())
    return h.hexdigest()[:16]


def config_key(cfg) -> str:
    """A file name for one config: its repr holds every field, data options and name included."""
    return hashlib.sha256(repr(cfg).encode()).hexdigest()[:24]


def prune_other_versions(folder: Path, keep: str) -> None:
    """Remove the runs of other code versions (they can never be read again)."""
    if folder.is_dir():
        for old in folder.iterdir():
            if old.is_dir() and old.name != keep:
                shutil.rmtree(old, ignore_errors=True)


class CaseRuns:
    """``get(case, run_name, backend, seed)``: the case's run, trained at most once per folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder) / code_hash()
        self.folder.mkdir(parents=True, exist_ok=True)

    def get(self, case, run_name: str, backend: str, seed: int):
        cfg = case.config(run_name, backend, seed)
        path = self.folder / f"{config_key(cfg)}.pkl"
        group = group_of(case, cfg)
        with FileLock(self.folder / f"{config_key(group[0])}.lock"):
            if not path.exists():
                self.train(group)
        return pickle.loads(path.read_bytes())

    def train(self, group) -> None:
        for cfg, result in zip(group, run_group(group)):
            path = self.folder / f"{config_key(cfg)}.pkl"
            partial = path.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
            partial.replace(path)          # atomic: a reader sees a whole file or none


def group_of(case, cfg) -> list:
    """The configs that train together with ``cfg``: its case's runs x seeds on its backend."""
    configs = [case.config(r, cfg.backend, s) for r in case.runs for s in case.seeds]
    for group in batch_groups(configs):
        if cfg in (configs[i] for i in group):
            return [configs[i] for i in group]
    return [cfg]
