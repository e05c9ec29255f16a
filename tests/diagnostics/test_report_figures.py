"""Report.plot(): the panels a user's own run has data for, the steps the findings name marked,
and matplotlib left as the user set it (diagnose() does not even import it)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure as MplFigure

from diagnostics import Finding, Report
from diagnostics.figures import GRADIENT_TITLE, UNITS_TITLE
from diagnostics.report_figures import NOTHING_TO_PLOT, WENT_WRONG, went_wrong_at
from own_runs import own_report, watched_blow_up

ROOT = Path(__file__).resolve().parents[2]
UPDATE_TITLE = "update ratio |dw| / |w| (watched steps)"
UNITS_OVER_STEPS_TITLE = "units dead (solid) or saturated (dashed)"


def titles(fig) -> list:
    return [ax.get_title() for ax in fig.axes]


def marked_steps(fig) -> list:
    """The x of every went-wrong line of the loss panel."""
    loss = next(ax for ax in fig.axes if ax.get_title() == "loss history")
    return sorted(line.get_xdata()[0] for line in loss.get_lines() if line.get_gid() == WENT_WRONG)


def test_a_healthy_run_has_its_loss_gradients_and_units_and_no_marker():
    fig = own_report("healthy").plot()
    assert isinstance(fig, MplFigure)
    assert titles(fig) == ["loss history", GRADIENT_TITLE, UNITS_TITLE]
    assert marked_steps(fig) == []


def test_a_run_that_went_non_finite_is_marked_at_its_first_non_finite_step():
    report = own_report("diverged")
    first_nan = int(np.flatnonzero(~np.isfinite(report.history))[0])
    fig = report.plot()
    assert marked_steps(fig) == [first_nan]
    # its gradients are non-finite: no gradient or unit panel, rather than an empty one
    assert titles(fig) == ["loss history"]


def test_a_watched_run_has_the_timeline_panels_and_each_finding_s_step():
    report = own_report("watched")
    fig = report.plot()
    assert titles(fig) == ["loss history", UPDATE_TITLE, UNITS_OVER_STEPS_TITLE]
    at = sorted({f.evidence["at_step"] for f in report.findings})
    assert marked_steps(fig) == at
    ratio = next(ax for ax in fig.axes if ax.get_title() == UPDATE_TITLE)
    assert len(ratio.get_lines()) == len(report.timeline.update_ratio) + 1   # + the |dw| = |w| line


def test_the_report_of_a_recording_alone_draws_its_history_and_timeline():
    """run.check() (and TrainingFailed.report) has no layers measured on data: those panels go."""
    fig = watched_blow_up().check().plot()
    assert titles(fig) == ["loss history", UPDATE_TITLE, UNITS_OVER_STEPS_TITLE]


def test_a_plateau_is_marked_where_its_window_starts():
    history = np.r_[np.linspace(2.0, 1.0, 150), np.full(50, 1.0)]
    report = Report([Finding("loss-plateau", "warning", "m", {"window": 50})], history=history)
    assert went_wrong_at(report) == {150: ["loss-plateau"]}


def test_a_report_without_data_says_what_plot_needs():
    with pytest.raises(ValueError, match="nothing to plot") as e:
        Report().plot()
    assert str(e.value) == NOTHING_TO_PLOT


def test_the_kept_history_and_timeline_stay_out_of_to_dict():
    report = own_report("watched")
    assert set(report.to_dict()) == {"ok", "failing", "verdict", "summary", "notes", "causes",
                                     "findings", "layers"}
    assert Report() == Report(history=np.ones(3))   # compared by what the report says


def test_plot_leaves_the_rc_params_as_they_were():
    import matplotlib
    before = dict(matplotlib.rcParams)
    own_report("healthy").plot()
    assert dict(matplotlib.rcParams) == before


PROGRAM = """
import sys
import numpy as np
import diagnostics
from own_runs import data
X, y = data()
from torch import nn
report = diagnostics.diagnose(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)), X, y)
assert "matplotlib" not in sys.modules, "diagnose() imported matplotlib"
report.plot()
assert "matplotlib" in sys.modules and "matplotlib.pyplot" not in sys.modules, "plot() used pyplot"
"""


def test_diagnose_never_imports_matplotlib_and_plot_never_pyplot():
    """In a fresh interpreter: the suite's other tests have imported both long ago."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
