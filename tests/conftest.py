"""Fixtures of the tests folder (the options and markers live in the root conftest.py)."""

from pathlib import Path

import pytest

from case_runs import CaseRuns, code_hash, prune_other_versions
from shared_runs import session_folder


# ---------------------------------------------------------------- case runs, trained once
def case_runs_folder(config, tmp_path_factory) -> Path:
    """pytest's cache folder (kept between sessions: keyed by the code's hash), or without the
    cache plugin (``-p no:cacheprovider``) this session's temp folder, shared by xdist workers."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        folder = cache.mkdir("case-runs")
        prune_other_versions(folder, keep=code_hash())
        return folder
    return session_folder(tmp_path_factory, "case-runs")


@pytest.fixture(scope="session")
def case_runs(request, tmp_path_factory) -> CaseRuns:
    return CaseRuns(case_runs_folder(request.config, tmp_path_factory))


@pytest.fixture
def case_run(case_runs):
    """``case_run(case, run_name, backend, seed)``: the trained RunResult, a fresh copy per call."""
    return case_runs.get
