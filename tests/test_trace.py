"""The plain-data run summary, its sparkline, and the tolerant snapshot extension that compares it.

The extension is tested twice: directly (serialize a summary, perturb its
numbers, call ``matches`` and ``diff_lines``) and end to end in a pytester run,
where a snapshot written with ``--snapshot-update`` must pass a perturbation
inside the tolerance and fail one beyond it with a readable diff.
"""

import math

import numpy as np
import pytest
from syrupy.terminal import disable_color

from cases import trace
from cases.config import RunConfig
from cases.runner import run
from cases.trace import round_sig, sparkline, summarize, trace_steps
from syrupy_tolerance import LEVEL_TOL, REL_TOL, TolerantAmberExtension

pytest_plugins = ["pytester"]

DEMO = RunConfig(data="sin_points", sizes=(1, 20, 1), activation="tanh", lr=0.05, steps=400)
DIVERGING = DEMO.replace(lr=40.0, activation="relu", steps=200)   # overflows to inf, then nan
PLAIN = (str, int, float, bool)


def is_plain(x) -> bool:
    """str/int/float/bool, and lists and dicts (with plain keys) of them: nothing else."""
    if isinstance(x, dict):
        return all(isinstance(k, PLAIN) and is_plain(v) for k, v in x.items())
    if isinstance(x, list):
        return all(map(is_plain, x))
    return type(x) in PLAIN


@pytest.fixture(scope="module")
def demo_summary():
    return summarize(run(DEMO), "sin-demo[numpy-failing]", codes=())


# ---------------------------------------------------------------- the numbers
@pytest.mark.parametrize("x,expected", [(0.123456, 0.1235), (98765.4, 98770.0), (-1.00049, -1.0),
                                        (0.0, 0.0), (1e-300, 1e-300)])
def test_round_sig_keeps_four_significant_digits(x, expected):
    assert round_sig(x) == expected and type(round_sig(x)) is float


def test_round_sig_passes_nan_and_inf_through():
    assert math.isnan(round_sig(float("nan"))) and round_sig(-math.inf) == -math.inf


@pytest.mark.parametrize("n", [1, 2, 31, 32, 33, 100, 1000, 3000, 10**6])
def test_trace_steps_are_log_spaced_from_first_to_last(n):
    steps = trace_steps(n)
    assert steps[0] == 0 and steps[-1] == n - 1
    assert len(steps) == min(n, trace.TRACE_POINTS)
    assert np.all(np.diff(steps) > 0)
    gaps = np.diff(steps)
    assert np.all(gaps[1:] >= gaps[:-1] - 1)  # never closer later than earlier: log-spaced


def test_trace_steps_refuses_an_empty_history():
    with pytest.raises(ValueError, match="n_steps"):
        trace_steps(0)


# ---------------------------------------------------------------- sparkline
def test_sparkline_draws_highest_and_lowest_and_marks_non_finite():
    line = sparkline([4.0, 2.0, 1.0, math.inf, math.nan, -math.inf])
    assert line == "█▃▁" + trace.INF_MARK + trace.NAN_MARK + trace.NEG_INF_MARK


def test_sparkline_uses_log_scale_only_across_a_decade():
    decades = [1.0, 0.1, 0.01, 0.001]
    assert trace.uses_log_scale(decades) and sparkline(decades) == "█▆▃▁"
    assert not trace.uses_log_scale([1.0, 0.5, 0.2])       # less than a decade: linear
    assert not trace.uses_log_scale([1.0, 0.0, 0.001])     # zero has no log: linear
    assert sparkline([1.0, 0.1, 0.01, 0.001], log=False) == "█▁▁▁"


def test_a_flat_trace_is_a_flat_line():
    assert sparkline([0.3] * 5) == "▁" * 5 and sparkline([]) == ""


# ---------------------------------------------------------------- the summary
def test_summary_is_plain_data_of_the_real_trace(demo_summary):
    assert is_plain(demo_summary)
    history = run(DEMO).history
    assert demo_summary["steps"] == len(history) == DEMO.steps
    assert demo_summary["loss"][0] == round_sig(history[0])
    assert demo_summary["loss"][DEMO.steps - 1] == round_sig(history[-1])
    assert demo_summary["config"] == DEMO.summary()


def test_summary_sparkline_has_one_height_per_sampled_loss(demo_summary):
    line, scale = demo_summary["sparkline"].split(" ")
    assert len(line) == len(demo_summary["loss"]) == trace.TRACE_POINTS
    assert scale in ("log", "linear") and line[0] > line[-1]   # the demo run learns


def test_summary_of_a_diverged_run_ends_on_its_non_finite_loss():
    result = run(DIVERGING)
    s = summarize(result, "diverging[numpy]", codes=())
    last = s["loss"][s["steps"] - 1]
    assert s["final"]["diverged"] and s["steps"] < DIVERGING.steps and not math.isfinite(last)
    assert s["sparkline"].split(" ")[0][-1] in (trace.NAN_MARK, trace.INF_MARK)


def test_classification_summary_has_accuracies():
    cfg = RunConfig(data="noisy_spiral3", sizes=(2, 16, 3), loss="cross_entropy", steps=50)
    final = summarize(run(cfg), "spiral[numpy]", codes=())["final"]
    assert set(final) == {"train_loss", "test_loss", "train_acc", "test_acc", "diverged"}
    assert 0.0 <= final["test_acc"] <= 1.0


def test_codes_keep_the_report_order_and_say_when_diagnostics_is_missing():
    s = summarize(run(DEMO.replace(steps=5)), "x",
                  codes=["dead-relu", "loss-plateau (from dead-relu)"])
    assert s["codes"] == ["dead-relu", "loss-plateau (from dead-relu)"]
    try:
        from diagnostics import diagnose  # noqa: F401
    except ImportError:
        assert trace.finding_codes(run(DEMO.replace(steps=5))) == [trace.DIAGNOSTICS_MISSING]
    else:
        assert trace.DIAGNOSTICS_MISSING not in trace.finding_codes(run(DEMO.replace(steps=5)))


def test_summary_does_not_depend_on_what_ran_before():
    """What snapshots under -n 2, reversed or random order rely on: no state leaks between runs."""
    first = summarize(run(DEMO.replace(backend="torch")), "a", codes=())
    run(DIVERGING), run(DEMO.replace(seed=7, backend="torch", dtype="float32"))
    assert summarize(run(DEMO.replace(backend="torch")), "a", codes=()) == first


# ------------------------------------------------------ the extension, directly
def perturbed(summary: dict, factor: float, at: int = -1) -> dict:
    """``summary`` with its loss at the ``at``-th sampled step multiplied by ``factor``."""
    loss = dict(summary["loss"])
    step = list(loss)[at]
    loss[step] *= factor
    return summary | {"loss": loss}


def match(received: dict, snapshot: dict) -> bool:
    ext = TolerantAmberExtension()
    return ext.matches(serialized_data=ext.serialize(received), snapshot_data=ext.serialize(snapshot))


def test_noise_inside_the_tolerance_matches(demo_summary):
    noisy = demo_summary | {"loss": {k: v * (1 + REL_TOL / 2) for k, v in demo_summary["loss"].items()},
                            "final": {k: v if type(v) is bool else v * (1 - REL_TOL / 2)
                                      for k, v in demo_summary["final"].items()}}
    assert match(noisy, demo_summary)


@pytest.mark.parametrize("factor", [1 + 2 * REL_TOL, 1 - 2 * REL_TOL, 10.0, math.nan])
def test_a_change_beyond_the_tolerance_fails(demo_summary, factor):
    assert not match(perturbed(demo_summary, factor), demo_summary)


@pytest.mark.parametrize("field,value", [("codes", ["dead-relu"]), ("steps", 399),
                                         ("config", DEMO.replace(lr=0.06).summary()),
                                         ("id", "sin-demo[torch-failing]")])
def test_any_change_of_text_or_count_fails(demo_summary, field, value):
    assert not match(demo_summary | {field: value}, demo_summary)


def test_sparkline_may_move_one_height_not_two():
    one, two = {"sparkline": "▁▃▅█ log"}, {"sparkline": "▁▄▅█ log"}
    assert match(two, one) and LEVEL_TOL == 1
    assert not match({"sparkline": "▁▅▅█ log"}, one) and not match({"sparkline": "▁▃▅█ linear"}, one)


def test_diff_shows_only_what_moved_beyond_the_tolerance(demo_summary):
    ext = TolerantAmberExtension()
    old = ext.serialize(demo_summary)
    noisy = perturbed(perturbed(demo_summary, 1 + REL_TOL / 2, at=0), 1.1, at=-1)
    new = ext.serialize(noisy)
    with disable_color():
        diff = "\n".join(ext.diff_lines(new, old))
    last = list(demo_summary["loss"])[-1]
    assert diff.startswith("1 number(s) moved by more than REL_TOL")
    assert f"{last}: {noisy['loss'][last]}" in diff                  # the real change is shown
    assert f"0: {noisy['loss'][0]}" not in diff                       # the noise is not


# --------------------------------------------------- the extension, end to end
SNAPSHOT_TEST = """
import ast, pathlib, pytest
from syrupy_tolerance import TolerantAmberExtension

@pytest.fixture
def snapshot(snapshot):
    return snapshot.use_extension(TolerantAmberExtension)

@pytest.mark.parametrize("name", [pytest.param("demo", id="demo[numpy-failing]")])
def test_trace(name, snapshot):
    assert ast.literal_eval(pathlib.Path("summary.txt").read_text()) == snapshot
"""


@pytest.fixture
def snapshot_project(pytester, demo_summary, request):
    pytester.syspathinsert(request.path.parent)
    pytester.makepyfile(test_demo=SNAPSHOT_TEST)
    return pytester


def write_summary(pytester, summary):
    pytester.path.joinpath("summary.txt").write_text(repr(summary))


def test_written_snapshot_passes_noise_and_fails_a_change(snapshot_project, demo_summary):
    p = snapshot_project
    write_summary(p, demo_summary)
    p.runpytest("--snapshot-update", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    stored = next(p.path.joinpath("__snapshots__").glob("*.ambr")).read_text()
    assert "test_trace[demo[numpy-failing]]" in stored and "'sparkline'" in stored

    write_summary(p, perturbed(demo_summary, 1 + REL_TOL / 5))
    p.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)

    write_summary(p, perturbed(demo_summary, 1 + 10 * REL_TOL))
    failed = p.runpytest("-p", "no:cacheprovider", "--snapshot-no-colors")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*1 number(s) moved by more than REL_TOL*",
                                 "*- *399: *", "*+ *399: *"])


def test_a_chaotic_run_keeps_only_what_rounding_cannot_change():
    from cases.config import RunConfig
    from cases.runner import run
    from cases.trace import CHAOS_HORIZON, summarize_chaotic
    result = run(RunConfig(data="sin_points", sizes=(1, 8, 1), activation="tanh", steps=200))
    summary = summarize_chaotic(result, "demo[numpy-failing]", {"loss-oscillation"})
    assert max(summary["loss"]) == CHAOS_HORIZON - 1 < len(result.history) - 1
    assert summary["steps"] == 200 and summary["codes"] == ["loss-oscillation"]
    assert "train_loss" not in summary["final"] and "rounding" in summary["final"]["chaotic"]
