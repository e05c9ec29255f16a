"""Options, markers and fixtures for the whole suite (pytest's conventions: nothing else here)."""

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run the tests marked slow (long sweeps)")


# ---------------------------------------------------------------- benchmarks: timed only when asked
# pytest-benchmark's own flags that ask for timings; without one, each benchmark runs once as a
# plain test (quick), as --benchmark-disable would make it, and the flags below keep their meaning.
BENCHMARK_FLAGS = ("benchmark_enable", "benchmark_only", "benchmark_autosave", "benchmark_save",
                   "benchmark_compare", "benchmark_compare_fail", "benchmark_json",
                   "benchmark_histogram", "benchmark_csv")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Before pytest-benchmark reads its options: disable timing unless a benchmark flag is given.

    (``--benchmark-disable`` in addopts would make ``--benchmark-only`` a usage error.)"""
    if not any(config.getoption(flag, None) for flag in BENCHMARK_FLAGS):
        config.option.benchmark_disable = True


def pytest_collection_modifyitems(config, items):
    skip_cuda = None if cuda_available() else pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if skip_cuda is not None and "cuda" in item.keywords:
            item.add_marker(skip_cuda)
    if config.getoption("--runslow") or "slow" in (config.option.markexpr or ""):
        return
    for item in items:
        slow = item.get_closest_marker("slow")
        if slow is not None:
            why = slow.kwargs.get("reason", "a long sweep")
            item.add_marker(pytest.mark.skip(reason=f"slow ({why}): run with --runslow or -m slow"))


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return torch.cuda.is_available()


@pytest.fixture(autouse=True)
def _pin_torch_threads():
    """One torch thread per worker: deterministic traces, and no oversubscription under -n auto."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    """One BLAS thread per worker too: under -n the workers are the parallelism, and OpenBLAS's
    second thread spins while it waits (digits-course relu on numpy: 5.6 s of CPU with two
    threads, 3.1 s with one, the same result, on the shared 2-core machine)."""
    import threadpoolctl
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
