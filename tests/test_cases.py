"""Every case: the failing run still fails and is diagnosed; every fix still fixes and goes quiet.

Ids read ``<case>[<backend>-<run>-seed<k>]``. The default run covers every run
of every case on both backends at the case's first seed, and every seed on
numpy; the remaining seeds on torch are marked slow. Each run is trained once
per session and shared with the snapshot tests (the ``case_run`` fixture,
tests/case_runs.py).
"""

import pytest

from cases.case import diagnose_result
from cases.registry import CASES


def case_params():
    for case in CASES:
        for backend in case.backends:
            for run_name in case.runs:
                for k, seed in enumerate(case.seeds):
                    slow = (backend != "numpy" and k > 0) or (run_name, backend) in \
                        case.extra.get("slow_runs", ())
                    marks = [pytest.mark.slow] if slow else []
                    yield pytest.param(case, backend, run_name, seed, marks=marks,
                                       id=f"{case.id}[{backend}-{run_name}-seed{seed}]")


PARAMS = list(case_params())


@pytest.mark.parametrize("case,backend,run_name,seed", PARAMS)
def test_case_behaves_as_documented(case, backend, run_name, seed, case_run):
    result = case_run(case, run_name, backend, seed)
    value, rule = case.measure(result), case.threshold(run_name)
    assert rule.holds(value), f"{case.id} {run_name}: expected {rule}, measured {value:.4g}"
    report = diagnose_result(result, case.loss_for_diagnose)
    errors = {f.code for f in report.findings if f.severity == "error"}
    if run_name == "failing":
        missing = set(case.expected_codes) - report.codes
        assert not missing, f"diagnose() missed {sorted(missing)}; it said:\n{report}"
    else:
        assert report.ok, f"the fix {run_name!r} still has errors:\n{report}"
        assert not errors & set(case.expected_codes)


def test_every_case_is_registered_once_with_a_story():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert case.story and case.source and case.fixes
        assert case.failing.name == "" and len(case.seeds) >= 3
