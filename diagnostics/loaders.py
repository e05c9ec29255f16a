"""Rows read from what a training script holds its data in: a torch DataLoader, or a map-style or
iterable Dataset, yielding (x, y) pairs. diagnose(model, loader) reads them into arrays, up to the
row cap it uses for arrays (diagnostics.inputs.row_cap), and says how many it read.

A map-style dataset (and a DataLoader that only batches or shuffles one) is read by index: every
row when it has no more than the cap, else the fixed subsample diagnose() takes of an array of
that length, so the report equals the one on the stacked arrays. Anything else (an iterable
dataset, a sampler that picks rows, a custom collate_fn) is read in the order it yields, the first
rows up to the cap. The caller's global RNGs are restored by diagnose() around the reading.
"""

from __future__ import annotations

import numpy as np

from diagnostics.inputs import as_numpy, row_cap, subsample

PAIR_FORM = ("a DataLoader or Dataset yielding (x, y) pairs, such as "
             "DataLoader(TensorDataset(X, y)), with y omitted: diagnose(model, loader)")


def is_source(data) -> bool:
    """A torch DataLoader or Dataset (map-style or iterable)."""
    from torch.utils.data import DataLoader, Dataset
    return isinstance(data, (DataLoader, Dataset))


def kind_of(data) -> str:
    return type(data).__name__


def rows_of(data, y, n_params: int) -> tuple:
    """(X, y, rows the source holds (None when it cannot tell), a note saying what was read)."""
    if y is not None:
        raise TypeError(f"X is a {kind_of(data)} and y was given too; accepted: {PAIR_FORM}, or "
                        "X and y as arrays")
    indexed = map_style(data)
    if indexed is not None:
        return indexed_rows(data, indexed, n_params)
    X, y, more = first_rows(data, row_cap(n_params))
    said = (f"the first {len(X)} rows it yields (the row cap for {n_params} parameters); it "
            "holds more") if more else f"all {len(X)} rows it yields"
    return X, y, None if more else len(X), f"X is a {kind_of(data)}: diagnosed on {said}"


def map_style(data):
    """The dataset to read by index: a map-style Dataset, or the one a DataLoader only batches
    or shuffles (default collate, every row once); None when only iterating says which rows."""
    from torch.utils.data import (DataLoader, IterableDataset, RandomSampler, SequentialSampler,
                                  default_collate)
    if isinstance(data, DataLoader):
        sampler = data.sampler
        every_row = isinstance(sampler, SequentialSampler) or (
            isinstance(sampler, RandomSampler) and not sampler.replacement
            and sampler.num_samples == len(data.dataset))
        plain = every_row and data.collate_fn is default_collate and not data.drop_last
        return map_style(data.dataset) if plain else None
    if isinstance(data, IterableDataset) or not hasattr(data, "__len__"):
        return None
    return data


def indexed_rows(data, dataset, n_params: int) -> tuple:
    n = len(dataset)
    if n == 0:
        raise ValueError(f"X is a {kind_of(data)} of 0 rows; accepted: at least one (x, y) pair")
    keep = subsample(n, n_params)
    rows = range(n) if keep is None else keep
    X, y = stacked([pair_of(dataset[int(i)], data) for i in rows], data)
    said = f"its {n} rows" if keep is None else (
        f"a fixed subsample of {len(keep)} of its {n} rows (as of an array of {n} rows)")
    via = f" (the {kind_of(dataset)} it loads, by index)" if dataset is not data else ""
    return X, y, n, f"X is a {kind_of(data)}{via}: diagnosed on {said}"


def first_rows(data, cap: int) -> tuple:
    """(X, y, whether more rows follow) from the first ``cap`` rows the source yields."""
    from torch.utils.data import DataLoader
    batched = isinstance(data, DataLoader) and data.batch_sampler is not None   # else rows
    xs, ys, n, more = [], [], 0, False
    for item in data:
        if n >= cap:
            more = True
            break
        x, t = (as_numpy(v, name) for v, name in zip(pair_of(item, data), ("x", "y")))
        xs.append(x if batched else x[None])
        ys.append(t.reshape(len(x), *t.shape[1:]) if batched else t[None])
        n += len(xs[-1])
    if not xs:
        raise ValueError(f"X is a {kind_of(data)} that yields no rows; accepted: {PAIR_FORM}")
    return np.concatenate(xs)[:cap], np.concatenate(ys)[:cap], more or n > cap


def pair_of(item, data) -> tuple:
    """The (x, y) of one item; TypeError naming what the source yields instead."""
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return tuple(item)
    if isinstance(item, dict):
        got = f"dicts (keys {sorted(map(str, item))})"
        hint = "; for dict batches pass the arrays: diagnose(model, X, y)"
    else:
        got = f"{len(item)}-tuples" if isinstance(item, (tuple, list)) else type(item).__name__
        hint = ""
    raise TypeError(f"X is a {kind_of(data)} whose items are {got}; accepted: {PAIR_FORM}{hint}")


def stacked(pairs: list, data) -> tuple:
    """(X, y) from one (x, y) pair per row."""
    try:
        X = np.stack([as_numpy(x, "x") for x, _ in pairs])
        y = np.stack([as_numpy(t, "y") for _, t in pairs])
    except ValueError as e:    # rows of different shapes
        raise ValueError(f"X is a {kind_of(data)} whose rows differ in shape ({e}); accepted: "
                         f"{PAIR_FORM}, every x of one shape") from e
    return X, y
