"""diagnostics/explain.py: checks measure once, the tables decide cause and consequence, and the
report leads with the cause whatever the severities."""

import functools
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from diagnostics import CODES, Finding, Report, diagnose, runner
from diagnostics.checks.record import by_any, never
from diagnostics.explain import EXPLAINED, PRECEDENCE, RULED_OUT_BY, explain, rank
from diagnostics.figures import layer_health


def f(code, severity="warning", **evidence):
    return Finding(code, severity, f"{code} message.", evidence, f"fix for {code}.")


def test_every_code_has_its_place_and_every_row_can_fire():
    assert sorted(PRECEDENCE) == sorted(CODES) and len(set(PRECEDENCE)) == len(PRECEDENCE)
    for cause, symptom in EXPLAINED:   # a symptom before its cause could never be explained
        assert rank(cause) < rank(symptom), (cause, symptom)
    for code, rows in RULED_OUT_BY.items():
        for row in rows:
            assert code in CODES and set(row.by) <= set(CODES) and code not in row.by


def unconditionally_ruled_out(symptom: str, cause: str) -> bool:
    return any(cause in row.by and row.when is by_any and row.unless is never
               for row in RULED_OUT_BY.get(symptom, ()))


def test_no_symptom_is_explained_by_a_cause_that_always_rules_it_out():
    """Such a pair could never fire: ruled_out() drops the symptom before direct_cause() looks."""
    assert [pair for pair in EXPLAINED if unconditionally_ruled_out(pair[1], pair[0])] == []
    assert unconditionally_ruled_out("learning-rate-too-small", "output-range-mismatch")


def test_a_cause_leads_its_consequences_whatever_their_severities():
    found = explain([f("non-finite", "error"), f("loss-plateau"), f("unscaled-data", "warning")])
    assert [x.code for x in found] == ["unscaled-data", "non-finite", "loss-plateau"]
    assert found[0].explains == ("non-finite", "loss-plateau") and found[0].is_cause
    assert {x.explained_by for x in found[1:]} == {"unscaled-data"}


def test_an_error_group_outranks_a_warning_that_explains_nothing():
    found = explain([f("generalization-gap"), f("unscaled-data"), f("non-finite", "error")])
    assert [x.code for x in found] == ["unscaled-data", "non-finite", "generalization-gap"]
    assert Report(found).causes == [found[0], found[2]]


def test_a_chain_hangs_under_its_root():
    found = explain([f("constant-output", "error"), f("dead-relu", "error"),
                     f("unstable-learning-rate", "error")])
    assert [x.code for x in found] == ["unstable-learning-rate", "dead-relu", "constant-output"]
    assert [x.explained_by for x in found] == [None, "unstable-learning-rate",
                                                 "unstable-learning-rate"]


def test_weights_grown_in_training_follow_the_lr_but_a_constant_init_is_its_own_cause():
    grown = f("bad-initialization", trained_steps=500, constant_layers=[], one_sign=None)
    const = f("bad-initialization", "error", trained_steps=500, constant_layers=["0"])
    assert explain([grown, f("unstable-learning-rate", "error")])[1].explained_by == \
        "unstable-learning-rate"
    assert all(x.is_cause for x in explain([const, f("unstable-learning-rate", "error")]))


def test_diagnoses_of_exclusion_give_way():
    assert [x.code for x in explain([f("learned-nothing"), f("dead-relu")])] == ["dead-relu"]
    assert [x.code for x in explain([f("low-capacity", "error"), f("constant-output", "error")])] \
        == ["low-capacity", "constant-output"]
    # single-class-output yields only to an error of the model, not to a warning
    kept = explain([f("single-class-output", "error"), f("saturated-activation", "warning")])
    assert "single-class-output" in [x.code for x in kept]
    assert [x.code for x in explain([f("single-class-output", "error"),
                                     f("saturated-activation", "error")])] == \
        ["saturated-activation"]


def test_the_verdict_names_the_cause_and_one_fix():
    report = Report(explain([f("non-finite", "error"), f("unscaled-data")]), failing=True)
    line = str(report).splitlines()[0]
    assert line == ("diagnose: training failed: unscaled-data, which explains 1 other "
                    "finding(s). Try first: fix for unscaled-data.")
    assert "follows from it: ERROR non-finite" in str(report)
    assert report.to_dict()["causes"] == ["unscaled-data"] and not report.ok
    assert str(Report()).splitlines()[0] == "diagnose: ok: nothing looks wrong" and Report().ok


def test_a_failed_run_is_never_ok_even_with_warnings_only():
    assert not Report([f("learned-nothing")], failing=True).ok
    assert Report([f("learned-nothing")], failing=False).ok


# ----------------------------------------------------------------- on real models
def dead_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
    with torch.no_grad():
        net[0].bias.fill_(-50.0)     # every hidden unit dead on unit-scale inputs
    return net


def test_each_check_measures_at_most_once_and_only_where_its_needs_hold(monkeypatch):
    """Counted wherever a measuring function can be reached: the registry's records and every
    diagnostics module that imports it, so a check that called another would count twice."""
    calls = {}
    def counted(measure):
        @functools.wraps(measure)
        def wrapper(probe):
            calls[measure.__name__] = calls.get(measure.__name__, 0) + 1
            return measure(probe)
        return wrapper
    wrapped = {c.measure: counted(c.measure) for c in runner.CHECKS}
    for name, module in list(sys.modules.items()):
        for attr, value in list(vars(module).items()) if name.startswith("diagnostics") else ():
            if callable(value) and value in wrapped:
                monkeypatch.setattr(module, attr, wrapped[value])
    monkeypatch.setattr(runner, "CHECKS", tuple(replace(c, measure=wrapped[c.measure])
                                                for c in runner.CHECKS))
    probes, needs_hold = [], runner.needs_hold
    def recorded(check, probe):
        probes.append(probe)
        return needs_hold(check, probe)
    monkeypatch.setattr(runner, "needs_hold", recorded)
    X = np.random.default_rng(0).standard_normal((64, 3))
    diagnose(dead_net(), X, X[:, :1], history=np.linspace(1, 0.9, 100), lr=0.1)
    measured = {c.measure.__name__ for c in runner.CHECKS if needs_hold(c, probes[0])}
    assert set(calls.values()) == {1} and set(calls) == measured, calls
    assert len(measured) > len(runner.CHECKS) // 2     # the dead net is finite and failing


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_model_at_the_constant_predictor_with_a_history_is_not_ok(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, 3))
    y = X[:, :1] + 0.1 * rng.standard_normal((64, 1))  # y depends on X: the dead net is the cause
    report = diagnose(dead_net(), X, y, history=np.full(100, float(np.var(y))), lr=0.1)
    assert report.failing and not report.ok and report.causes[0].code == "dead-relu"


def test_the_layer_figure_reads_diagnose_s_own_counts():
    X = np.random.default_rng(0).standard_normal((64, 3))
    report = diagnose(dead_net(), X, X[:, :1], history=np.full(100, 1.0), lr=0.1)
    health = layer_health(report)
    dead = next(x for x in report.findings if x.code == "dead-relu").evidence["dead"]
    assert health[0].name == "0 Linear(3->16)" and health[0].kind == "dead"
    assert health[0].dead_share == dead["0 Linear(3->16)"]["share"] == 1.0
    assert health[1].kind == "" and np.isnan(health[1].dead_share)


def test_a_sigmoid_stack_that_fades_leads_the_saturation_that_starts_inside_it():
    deep = f("vanishing-gradient", "error", through_depth=True)
    inside = f("saturated-activation", "error", starts_inside=True)
    found = explain([inside, deep])
    assert [x.code for x in found] == ["vanishing-gradient", "saturated-activation"]
    assert found[1].explained_by == "vanishing-gradient"


def test_saturation_at_the_input_or_dead_units_rule_the_vanishing_gradient_out():
    at_input = f("saturated-activation", "error", starts_inside=False)
    assert [x.code for x in explain([f("vanishing-gradient", "error", through_depth=True),
                                     at_input])] == ["saturated-activation"]
    dead = f("dead-relu", "error")
    assert [x.code for x in explain([f("vanishing-gradient", "error"), dead])] == ["dead-relu"]
    assert "vanishing-gradient" in [x.code for x in explain(
        [f("vanishing-gradient", "error", through_depth=True), dead])]


def test_unscaled_inputs_explain_a_first_loss_far_too_high_but_not_a_one_sign_init():
    early = f("bad-initialization", "error", wrong_at_step_0=True, constant_layers=[],
              one_sign=None)
    assert explain([early, f("unscaled-data", "error")])[1].explained_by == "unscaled-data"
    positive = f("bad-initialization", "warning", wrong_at_step_0=True, constant_layers=[],
                 one_sign="positive")
    assert all(x.is_cause for x in explain([positive, f("unscaled-data", "error")]))


def test_a_strict_bottleneck_is_not_ruled_out_by_a_tiny_lr_or_a_trained_weight_scale():
    squeeze = f("low-capacity", "error", bottleneck=True, strict_bottleneck=True)
    narrow = f("low-capacity", "error", bottleneck=True, strict_bottleneck=False)
    tiny_lr = f("learning-rate-too-small")
    grown = f("bad-initialization", trained_steps=400, constant_layers=[], one_sign=None)
    assert [x.code for x in explain([tiny_lr, grown, squeeze])][0] == "low-capacity"
    assert "low-capacity" not in [x.code for x in explain([tiny_lr, narrow])]
    zeros = f("bad-initialization", "error", constant_layers=["0"])
    assert "low-capacity" not in [x.code for x in explain([zeros, squeeze])]


def test_an_init_wrong_of_its_own_rules_out_a_tiny_learning_rate():
    zeros = f("bad-initialization", "error", constant_layers=["0"])
    grown = f("bad-initialization", trained_steps=400, constant_layers=[], one_sign=None)
    assert [x.code for x in explain([f("learning-rate-too-small"), zeros])] == \
        ["bad-initialization"]
    assert "learning-rate-too-small" in [x.code for x in explain([f("learning-rate-too-small"),
                                                                   grown])]


def test_a_one_sign_init_whose_run_started_sane_explains_nothing_after_it():
    sane = f("bad-initialization", one_sign="positive", constant_layers=[], scale={},
             started_sane=True)
    found = explain([sane, f("saturated-activation", "error"), f("loss-oscillation")])
    assert [x.code for x in found][0] == "saturated-activation"
    assert all(x.explained_by != "bad-initialization" for x in found)
    fresh = f("bad-initialization", one_sign="positive", constant_layers=[], scale={},
              started_sane=False)      # no history, or a start far off: the init explains
    assert explain([fresh, f("saturated-activation", "error")])[1].explained_by == \
        "bad-initialization"


def test_decay_that_outweighs_the_data_after_steps_past_the_edge_gives_way_to_the_lr():
    decay = f("excessive-weight-decay", "error", forgets_alone=False)
    seen = f("unstable-learning-rate", "error", at_step=0)
    assert [x.code for x in explain([decay, seen])] == ["unstable-learning-rate"]
    assert "excessive-weight-decay" in [x.code for x in explain(
        [f("excessive-weight-decay", "error", forgets_alone=True), seen])]
    assert "excessive-weight-decay" in [x.code for x in explain(
        [decay, f("unstable-learning-rate", "error")])]       # post hoc: no step to read
