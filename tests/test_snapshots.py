"""Snapshots of every case's loss traces: a change to how any case trains shows up in the diff.

One snapshot per case x backend (numpy and torch, on the CPU) x run (failing
and each fix), at the case's first seed, named ``<case>[<backend>-<run>]``.
A snapshot is ``cases.trace.summarize``: the config line, 32 losses at
log-spaced steps, final metrics, the finding codes and a sparkline. Numbers
may move by ``syrupy_tolerance.REL_TOL`` (float noise); anything else fails.
Runs on CUDA are not snapshotted: a GPU's kernels sum in another order, and
the chaotic failing runs would need a tolerance of their own. A run a case lists
in ``Case.chaotic_runs`` (seed 002's failing run: one ulp grows to O(1) within
60 steps) keeps only its first ``cases.trace.CHAOS_HORIZON`` steps and the codes
the case requires, which rounding cannot change.

Review or accept a change: docs/testing.md, "Snapshots of loss traces" (``pytest --snapshot-update``).
"""

import pytest

from cases.registry import CASES
from cases.trace import finding_codes, summarize, summarize_chaotic
from syrupy_tolerance import TolerantAmberExtension

SNAPSHOT_BACKENDS = ("numpy", "torch")   # both on the CPU: the same numbers on every machine


def snapshot_params():
    for case in CASES:
        for backend in (b for b in SNAPSHOT_BACKENDS if b in case.backends):
            for run_name in case.runs:
                slow = (run_name, backend) in case.slow_runs
                yield pytest.param(case, backend, run_name, id=f"{case.id}[{backend}-{run_name}]",
                                   marks=[pytest.mark.slow] if slow else [])


@pytest.fixture
def snapshot(snapshot):
    return snapshot.use_extension(TolerantAmberExtension)


@pytest.mark.parametrize("case,backend,run_name", list(snapshot_params()))
def test_loss_trace(case, backend, run_name, snapshot, case_run):
    result = case_run(case, run_name, backend, case.seeds[0])   # device "cpu": the config's default
    run_id = f"{case.id}[{backend}-{run_name}]"
    if run_name in case.chaotic_runs:
        required = set(case.expected_codes) & set(finding_codes(result, case.loss_for_diagnose))
        assert summarize_chaotic(result, run_id, required) == snapshot
    else:
        assert summarize(result, run_id, loss=case.loss_for_diagnose) == snapshot
