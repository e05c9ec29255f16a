"""diagnostics/checks/batches.py: unshuffled-batches, from the batches a watched run fed its model
(diagnostics.watch_store.BatchMeans), beside the same loop over the rows in their given order."""

import functools

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from diagnose_helpers import SEEDS, digits_tensors, finding, relu_net
from diagnostics import diagnose, watch
from diagnostics.checks.batches import MIN_BATCHES, ORDERED
from diagnostics.watch_store import BatchMeans

RANDOM_AT_MOST = 1.5    # random batches' scatter over the rows' variance: ~1 (measured 0.6-1.1)


def scatter_ratio(X: torch.Tensor, batches: list) -> float:
    means = BatchMeans()
    for rows in batches:
        means.add(X[rows])
    return means.arrays()["batch_mean_scatter"] / float(X.double().var(0, unbiased=False).sum())


@pytest.mark.parametrize("seed", SEEDS)
def test_random_batches_scatter_as_the_rows_do_and_sorted_ones_far_more(seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(2000, 3, generator=g)
    random = [torch.randperm(2000, generator=g)[:32] for _ in range(60)]
    by_column = torch.argsort(X[:, 0]).split(32)
    assert scatter_ratio(X, random) < RANDOM_AT_MOST
    # sorted by one of 3 unit columns: batch means sweep its range, ~32 rows x 1 / 3 = 10.7
    assert scatter_ratio(X, list(by_column)) > 2 * ORDERED


def test_the_scatter_weighs_each_batch_by_its_rows():
    """Two batches of 1 and 3 rows: 1 x 2^2 + 3 x (2/3)^2 around their row-weighted mean; their
    harmonic mean rows 2 / (1/1 + 1/3) = 1.5, what the short batch's noise weighs."""
    means = BatchMeans()
    means.add(torch.tensor([[4.0]]))
    means.add(torch.tensor([[0.0], [0.0], [0.0]]))
    assert means.arrays() == {"batch_mean_scatter": pytest.approx(1 * 3 ** 2 + 3 * 1 ** 2),
                              "batches_measured": 2, "batch_rows": 2.0,
                              "harmonic_batch_rows": pytest.approx(1.5)}


def test_batches_folded_in_groups_scatter_as_computed_all_at_once():
    """More batches than BatchMeans.FOLD, of uneven rows and an offset mean: the pairwise folds
    give the scatter of the row-weighted means computed in one pass."""
    g = torch.Generator().manual_seed(0)
    batches = [100 + torch.randn(int(n), 4, generator=g)
               for n in torch.randint(1, 40, (2 * BatchMeans.FOLD + 7,), generator=g)]
    means = BatchMeans()
    for x in batches:
        means.add(x)
    w = np.array([len(x) for x in batches], float)
    m = np.stack([x.double().mean(0).numpy() for x in batches])
    direct = w @ ((m - w @ m / w.sum()) ** 2).sum(1) / (len(batches) - 1)
    assert means.arrays() == {"batch_mean_scatter": pytest.approx(direct, rel=1e-9),
                              "batches_measured": len(batches), "batch_rows": w.mean(),
                              "harmonic_batch_rows": pytest.approx(len(w) / (1 / w).sum())}


STEPS = 145     # 5 epochs of 29 batches

def digits_loop(seed: int, label_sorted: bool, steps: int = STEPS):
    """Adam at 1e-2, ``steps`` batches of 64 over digits, in label order or in the order given
    (fixed, but not sorted), watched: (model, X, y, run)."""
    X, y = digits_tensors()
    order = torch.argsort(y, stable=True) if label_sorted else torch.arange(len(y))
    torch.manual_seed(seed)
    model = relu_net(64, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batches = order.split(64)
    with watch(model, opt) as run:
        for t in range(steps):
            rows = batches[t % len(batches)]
            opt.zero_grad()
            loss = F.cross_entropy(model(X[rows]), y[rows])
            loss.backward()
            opt.step()
            run.log(loss)
    return model, X, y, run


@functools.lru_cache(maxsize=None)
def diagnosed(seed: int, label_sorted: bool):
    model, X, y, run = digits_loop(seed, label_sorted)
    return diagnose(model, X, y, loss="cross_entropy", run=run), run


@pytest.mark.parametrize("seed", SEEDS)
def test_label_sorted_batches_are_named_first_and_the_given_order_stays_quiet(seed):
    report, _ = diagnosed(seed, label_sorted=True)
    assert report.findings[0].code == "unshuffled-batches", str(report)
    assert finding(report, "unshuffled-batches").evidence["batch_scatter_ratio"] > 2 * ORDERED
    healthy, _ = diagnosed(seed, label_sorted=False)
    assert "unshuffled-batches" not in healthy.codes, str(healthy)


def test_without_a_recording_or_with_too_few_batches_nothing_is_said():
    model, X, y, run = digits_loop(0, label_sorted=True, steps=MIN_BATCHES - 1)
    assert run.timeline().batches_measured < MIN_BATCHES
    assert "unshuffled-batches" not in diagnose(model, X, y, loss="cross_entropy", run=run).codes
    model, X, y, run = digits_loop(0, label_sorted=True)
    assert "unshuffled-batches" not in diagnose(model, X, y, loss="cross_entropy").codes
    assert "unshuffled-batches" in diagnose(model, X, y, loss="cross_entropy", run=run).codes
