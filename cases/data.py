"""The data sets of the cases, built as their source documents build them.

Each builder takes a ``numpy.random.Generator`` (for the random parts: which
points are sampled for training, noise) and keyword options, and returns a
:class:`Dataset`. ``load(name, seed, **kw)`` caches them, so the many runs of
a case share one copy.
"""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Dataset:
    X: np.ndarray          # (n, d) float64
    y: np.ndarray          # (n,) int class indices, or (n, k) float targets
    X_test: np.ndarray
    y_test: np.ndarray
    task: str              # "classification" or "regression"
    n_classes: int = 0
    note: str = ""         # where the data comes from, for the report

    @property
    def n(self) -> int:
        return len(self.X)


def spiral_map(rng, n: int = 5000, m: int = 2000) -> Dataset:
    """Seed 000: map each point of one spiral to the point of the same index on another."""
    def spiral(turns, r0, r1):
        theta, r = np.linspace(0, np.pi * turns, n), np.linspace(r0, r1, n)
        return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    src, dst = spiral(5, 0.2, 0.8), spiral(6, 0.1, 0.9)
    train = np.zeros(n, bool)
    train[rng.choice(n, m, replace=False)] = True
    return Dataset(src[train], dst[train], src[~train], dst[~train], "regression",
                   note=f"{m} of {n} points of a 5-turn spiral mapped to a 6-turn spiral")


def sin_points(rng, n: int = 50, m: int = 10) -> Dataset:
    """Seed 001: 10 of 50 points of sin on [-pi, pi], x in float32 as in the post."""
    x = np.linspace(-np.pi, np.pi, n).astype(np.float32).astype(np.float64)
    pick = np.sort(rng.choice(n, m, replace=False))
    X = x[:, None]
    return Dataset(X[pick], np.sin(X[pick]), X, np.sin(X), "regression",
                   note=f"{m} random points of sin(x) among {n} on [-pi, pi]; test on all {n}")


def sin_grid(rng, step: float = 0.05, target: str = "sin") -> Dataset:
    """Seed 002: x = arange(0, 2.001, step), y = sin(2 pi x)/4 + 0.5 (or the constant 0.5)."""
    def f(x):
        return np.sin(2 * np.pi * x) / 4 + 0.5 if target == "sin" else np.full_like(x, 0.5)
    if target not in ("sin", "const"):
        raise ValueError(f"target {target!r} is unknown; accepted: 'sin', 'const'")
    X = np.arange(0, 2.001, step)[:, None]
    Xt = np.linspace(0, 2, 201)[:, None]
    return Dataset(X, f(X), Xt, f(Xt), "regression",
                   note=f"{len(X)} points, step {step}, target {target}")


def noisy_spiral3(rng, m: int = 1000) -> Dataset:
    """Seed 004: a noisy spiral whose thirds are the classes 0, 1 and 2."""
    def draw():
        r = np.linspace(0, 5, m) + rng.random(m)
        theta = np.linspace(0, 8 * np.pi, m)
        return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    labels = np.repeat([0, 1, 2], [333, 333, m - 666])
    return Dataset(draw(), labels, draw(), labels, "classification", 3,
                   note=f"{m} points on a noisy spiral, labels 0/1/2 by thirds; test: fresh noise")


def digits(rng, test_share: float = 0.2) -> Dataset:
    """Seed 003's stand-in for MNIST: scikit-learn's bundled 8x8 digits, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    d = load_digits()
    X, y = d.data / 16.0, d.target.astype(np.int64)
    order = rng.permutation(len(X))
    k = int(round(len(X) * test_share))
    te, tr = order[:k], order[k:]
    return Dataset(X[tr], y[tr], X[te], y[te], "classification", 10,
                   note="scikit-learn's 8x8 digits (stand-in for MNIST), 1797 images")


def mnist(rng, path: str | os.PathLike | None = None, limit: int = 0) -> Dataset:
    """Real MNIST from the four IDX files in ``path`` (or $MNIST_DIR), pixels scaled to [0, 1]."""
    given = str(path or os.environ.get("MNIST_DIR", ""))  # Path("") would be the current folder
    root = Path(given)
    if not given or not root.is_dir():
        raise FileNotFoundError(f"MNIST needs a folder with the IDX files; got {given!r} "
                                "(pass path= or set MNIST_DIR)")
    X, y = (read_idx(_find(root, f"train-{k}")) for k in ("images", "labels"))
    Xt, yt = (read_idx(_find(root, f"t10k-{k}")) for k in ("images", "labels"))
    if limit:
        X, y, Xt, yt = X[:limit], y[:limit], Xt[:limit], yt[:limit]
    flat = lambda a: a.reshape(len(a), -1).astype(np.float64) / 255.0  # noqa: E731
    return Dataset(flat(X), y.astype(np.int64), flat(Xt), yt.astype(np.int64), "classification",
                   10, note=f"MNIST from {root}")


def synthetic(rng, n: int = 1000, d: int = 784, k: int = 10) -> Dataset:
    """Random inputs with labels from a random linear map: MNIST-sized work for benchmarks."""
    X = rng.random((2 * n, d))
    y = np.argmax(X @ rng.standard_normal((d, k)), axis=1)
    return Dataset(X[:n], y[:n], X[n:], y[n:], "classification", k,
                   note=f"synthetic {n} x {d}, {k} classes")


def _find(root: Path, stem: str) -> Path:
    for p in sorted(root.iterdir()):
        if p.name.startswith(stem) and "idx" in p.name:
            return p
    raise FileNotFoundError(f"no IDX file starting with {stem!r} in {root}")


IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzipped), the format MNIST ships in."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4]!r})")
    ndim, dtype = raw[3], np.dtype(IDX_DTYPES[raw[2]])
    start = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    found = (len(raw) - start) / dtype.itemsize  # checked before numpy reads: its errors name no file
    if len(raw) < start or found != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} of {dtype}, found {max(found, 0):g} values")
    return np.frombuffer(raw, dtype=dtype, offset=start).reshape(shape)


DATASETS = {f.__name__: f for f in (spiral_map, sin_points, sin_grid, noisy_spiral3, digits,
                                    mnist, synthetic)}


@functools.lru_cache(maxsize=64)
def _load(name: str, seed: int, kwargs: tuple) -> Dataset:
    return DATASETS[name](np.random.default_rng([seed, 0]), **dict(kwargs))


def load(name: str, seed: int = 0, **kwargs) -> Dataset:
    """The data set ``name`` for ``seed``, built once and cached."""
    if name not in DATASETS:
        raise ValueError(f"data set {name!r} is unknown; accepted: {sorted(DATASETS)}")
    return _load(name, seed, tuple(sorted(kwargs.items())))
