"""What the reference fit costs, beside the diagnose() call it rides in.

One benchmark group per workload: the whole ``diagnose()`` call (reference included) and
``reference_of`` alone on the rows diagnose fits it on. Issue 24's bound: the reference must
not double the call, i.e. it takes at most half of it. As in tests/test_benchmarks.py, the
default run (timing disabled) runs each once as a test of its result, and the bound is judged
only inside a benchmark run, on the measured spread (BENCHMARKS.md, "diagnose()").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from diagnostics import diagnose
from diagnostics.diagnose import count_params
from diagnostics.inputs import subsample
from diagnostics.reference import REMEMBERED, reference_of

REFERENCE_SHARE_MAX = 0.5      # reference / whole call: at most half, so it never doubles it
BOUNDED = ("diagnose-987k-10000-rows",)   # the small net's whole call is ~40 ms, of which
                                          # scikit-learn's fixed cost per fit is most: reported
                                          # in BENCHMARKS.md, not bounded
MEASURED: dict = {}            # (group, impl) -> (fastest, upper quartile) seconds


def teacher_rows(n: int, d: int, classes: int, seed: int = 0):
    """n rows of N(0, 1) inputs labelled by a random linear teacher: learnable, cheap to make."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    return X, (X @ torch.randn(d, classes, generator=g)).argmax(1)


def workload_987k():
    """The 784-1024-177-10 MLP (987 045 parameters) on 10 000 rows of 784 inputs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 177), nn.ReLU(),
                          nn.Linear(177, 10))
    return model, *teacher_rows(10_000, 784, 10)


def workload_small():
    """A 2-16-3 tanh net on 400 rows: the size of the cases' nets."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 3)), *teacher_rows(400, 2, 3)


WORKLOADS = {"diagnose-987k-10000-rows": workload_987k, "diagnose-2-16-3-400-rows": workload_small}


@pytest.fixture(scope="module", params=list(WORKLOADS))
def workload(request):
    return request.param, WORKLOADS[request.param]()


def reference_alone(model, X, y):
    """reference_of on the rows diagnose() keeps (its subsample), as diagnose calls it."""
    keep = subsample(len(X), count_params(model))
    Xs, ys = (X, y) if keep is None else (X[keep], y[keep])
    return reference_of(Xs.double().numpy(), ys.numpy(), "cross_entropy", 10, np.log(10))


HISTORY = list(np.linspace(2.3, 2.0, 100))   # a run's losses, so the history's checks run too


def whole_call(model, X, y):
    """diagnose() as a user calls it after training: the loss, the history, the optimizer."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return diagnose(model, X, y, loss="cross_entropy", history=HISTORY, optimizer=opt)


IMPLS = {"diagnose": whole_call, "reference": reference_alone}


def record(benchmark, group, impl):
    if benchmark.enabled and benchmark.stats:
        stats = benchmark.stats.stats
        MEASURED[group, impl] = (stats.min, stats.q3)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_reference_cost(benchmark, workload, impl):
    group, (model, X, y) = workload
    benchmark.group = group
    result = benchmark.pedantic(IMPLS[impl], args=(model, X, y), rounds=5, iterations=1,
                                setup=REMEMBERED.clear)   # cold: the rows' first call each round
    record(benchmark, group, impl)
    if impl == "reference":
        assert result is not None and result.linear_cv < result.constant, result
    else:
        assert result.summary["linear_loss"] is not None, result


def test_the_reference_never_doubles_the_call():
    """Inside a benchmark run: the reference's fastest round against the call's upper quartile
    (the most favourable reading the spreads allow) must reach <= REFERENCE_SHARE_MAX."""
    if not MEASURED:
        pytest.skip("judged only in a benchmark run: --benchmark-enable")
    shares = {g: (MEASURED[g, "reference"][0] / MEASURED[g, "diagnose"][1],
                  MEASURED[g, "reference"][1] / MEASURED[g, "diagnose"][0])
              for g in BOUNDED if (g, "reference") in MEASURED and (g, "diagnose") in MEASURED}
    print(f"\nreference / diagnose spreads: {shares}")
    missed = {g: s for g, s in shares.items() if s[0] > REFERENCE_SHARE_MAX}
    assert shares and not missed, f"the reference takes over half the call: {missed}"
