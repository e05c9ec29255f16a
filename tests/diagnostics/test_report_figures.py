"""Report.plot(): the panels a user's own run has data for, the steps the findings name marked,
and matplotlib left as the user set it (diagnose() does not even import it)."""

import ast
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


def imports_at_import_time(tree: ast.AST) -> set:
    """The top-level names of the modules a module imports as it is imported (function bodies,
    which run only when called, left out)."""
    found, todo = set(), [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        todo += [c for c in ast.iter_child_nodes(node)
                 if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    return found


def test_the_reader_sees_module_level_imports_and_skips_function_bodies():
    source = "import a.b\nif x:\n    from c import d\ndef f():\n    import e\nclass K:\n    import g\n"
    assert imports_at_import_time(ast.parse(source)) == {"a", "c", "g"}


def test_no_diagnostics_module_imports_matplotlib_as_it_is_imported():
    """The fast half of the test below: read from the source."""
    eager = [p.name for p in sorted((ROOT / "diagnostics").rglob("*.py"))
             if "matplotlib" in imports_at_import_time(ast.parse(p.read_text()))]
    assert eager == []


@pytest.mark.slow(reason="a fresh interpreter that imports torch, scikit-learn and matplotlib: "
                         "5 s alone, 12 s in the default run on 2 loaded cores; the test above "
                         "reads the same from the source")
def test_diagnose_never_imports_matplotlib_and_plot_never_pyplot():
    """In a fresh interpreter: the suite's other tests have imported both long ago."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
