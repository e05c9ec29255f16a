"""diagnostics.watch and the timeline checks: a watched loop never changes the training, and each
timeline rule names its cause where a healthy watched run stays quiet."""

import functools
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from diagnose_helpers import SEEDS, digits_data, finding, same_state
from diagnostics import TrainingFailed, diagnose, watch
from diagnostics.checks.timeline import (INIT_LOSS_FAR, LOSS_OVERFLOW_FIX,
                                         check_first_non_finite,
                                         check_loss_far_above_constant_at_step_0,
                                         check_units_died, check_updates_larger_than_weights,
                                         summed_over_the_batch)
from diagnostics.report import Finding
from diagnostics.timeline import ACCUMULATED, GRADLESS, RESET, UNKNOWN, Timeline
from diagnostics.watch_report import merged


def digits_mlp(hidden: int = 1, normal_init: bool = False) -> nn.Sequential:
    """64 -> ``hidden`` ReLU layers of 64 -> 10; ``normal_init``: every weight N(0, 1)."""
    layers = [m for _ in range(hidden) for m in (nn.Linear(64, 64), nn.ReLU())]
    model = nn.Sequential(*layers, nn.Linear(64, 10))
    if normal_init:
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight)
    return model


SCHEDULE = (10, 0.1)    # StepLR(step_size 10, gamma 0.1): a per-epoch schedule, meant for ~30 epochs


def digits_loop(seed, lr=1e-3, zero=True, step=True, watched=True, stop=False, epochs=5,
                hidden=1, normal_init=False, sgd=False, schedule=None, detach=False,
                zero_late=False, summed=False):
    """Adam (or plain SGD) on digits, batches of 64: (model, X, y, run). ``schedule``: "batch"
    or "epoch", where StepLR(*SCHEDULE) steps; ``detach``: the loss cut from the model before
    backward(); ``zero_late``: zero_grad() between backward() and step(); ``summed``: the loss
    summed over the batch's rows (reduction='sum')."""
    X, y = (torch.tensor(a) for a in digits_data())
    X = X.float()
    torch.manual_seed(seed)
    model = digits_mlp(hidden, normal_init)
    opt = (torch.optim.SGD if sgd else torch.optim.Adam)(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, *SCHEDULE) if schedule else None
    run = watch(model, opt, stop=stop) if watched else None
    for _ in range(epochs):
        for b in range(0, len(X), 64):
            if zero:
                opt.zero_grad()
            loss = F.cross_entropy(model(X[b:b + 64]), y[b:b + 64],
                                   reduction="sum" if summed else "mean")
            if detach:
                loss = loss.detach().requires_grad_()
            loss.backward()
            if zero_late:
                opt.zero_grad()
            if step:
                opt.step()
            if run:
                run.log(loss)
            if schedule == "batch":
                sched.step()
        if schedule == "epoch":
            sched.step()
    if run:
        run.close()
    return model, X, y, run


@functools.lru_cache(maxsize=None)
def diagnosed(seed, **loop):
    """digits_loop(seed, **loop) and diagnose()'s report of it, once per session (each worker)."""
    model, X, y, run = digits_loop(seed, **loop)
    return run, diagnose(model, X, y, loss="cross_entropy", run=run)


def test_a_watched_run_trains_bit_for_bit_as_an_unwatched_one():
    assert same_state(digits_loop(0)[0], digits_loop(0, watched=False)[0])


HEALTHY = {"lr": 1e-2}   # Adam at 1e-2 from torch's init: digits fitted in 5 epochs, no finding


@pytest.mark.parametrize("seed", SEEDS)
def test_a_healthy_watched_run_stays_quiet(seed):
    run, report = diagnosed(seed, **HEALTHY)
    assert not [f for f in report.findings if "at_step" in f.evidence], str(report)
    assert run.check().ok


SUMMED = {"sgd": True, "lr": 0.05, "summed": True}   # plain SGD at 0.05 on a summed loss: each
                                                     # step 64x a mean loss's, a run that fails


@pytest.mark.parametrize("seed", SEEDS)
def test_a_loss_summed_over_its_batch_is_named_at_step_0_not_an_init(seed):
    _, report = diagnosed(seed, **SUMMED)
    cause = report.causes[0]
    assert cause.code == "accumulated-gradient" and cause.evidence["at_step"] == 0, str(report)
    assert cause.evidence["batch_rows"] == pytest.approx(64, rel=0.05)     # 1797 = 28 x 64 + 5
    assert cause.evidence["per_row_loss"] == pytest.approx(np.log(10), rel=0.5)
    assert "reduction='mean'" in cause.fix and len(report.causes) == 1, str(report)


def test_a_summed_loss_under_adam_trains_and_is_not_named():
    """Adam divides the loss's scale out of its steps: summed, it trains as averaged."""
    _, report = diagnosed(0, **dict(SUMMED, sgd=False, lr=1e-2))
    assert "accumulated-gradient" not in report.codes and not report.errors, str(report)


@pytest.mark.parametrize("seed", SEEDS)
def test_step_never_called_is_named(seed):
    _, report = diagnosed(seed, **HEALTHY, step=False)
    assert report.causes[0].code == "step-never-called"
    finding(report, "step-never-called")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fault", ["detach", "zero_late"])
def test_steps_with_no_grad_are_named_at_step_0_with_their_count(fault, seed):
    run, report = diagnosed(seed, **HEALTHY, **{fault: True})
    tl = run.timeline()
    assert tl.n_stepped == tl.n_logged == 145 and (tl.reset == GRADLESS).all()
    assert report.causes[0].code == "no-gradient-path", str(report)
    assert report.verdict().startswith("at step 0:"), report.verdict()
    assert finding(report, "no-gradient-path").evidence["steps_without_grad"] == 145
    assert "step-never-called" not in codes(report), str(report)
    assert run.check().causes[0].code == "no-gradient-path"
    healthy, _ = diagnosed(seed, **HEALTHY)
    assert healthy.timeline().n_gradless == 0 and healthy.timeline().first_gradless is None


@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_never_reset_are_named_first(seed):
    _, report = diagnosed(seed, **HEALTHY, zero=False)
    assert report.causes[0].code == "accumulated-gradient", str(report)
    assert report.verdict().startswith("at step 1:")


@pytest.mark.parametrize("seed", SEEDS)
def test_adam_at_lr_half_is_named_an_lr_too_high(seed):
    _, report = diagnosed(seed, lr=0.5)
    assert report.causes[0].code == "unstable-learning-rate", str(report)


# Each timeline rule: (its failing loop, the healthy twin that differs by the fault alone, what
# the failing finding's evidence says).
# Measured over SEEDS: every twin free of its rule's code (3-layer default init: step-0 loss
# 2.29-2.30 against N(0, 1)'s 756-918; plain SGD at lr 0.5 keeps its ReLU layer 5-16% dead,
# at lr 2 95-98% dead by the end).
TWINS = {
    "bad-initialization": ({"hidden": 3, "normal_init": True}, {"hidden": 3},
                           {"at_step": 0, "wrong_at_step_0": True}),
    "unstable-learning-rate": ({"lr": 0.5}, HEALTHY, {"lr": 0.5}),
    "decayed-learning-rate": ({**HEALTHY, "schedule": "batch"}, {**HEALTHY, "schedule": "epoch"},
                              {"stepped_per_batch": True}),
    "accumulated-gradient": ({**HEALTHY, "zero": False}, HEALTHY, {"at_step": 1}),
    "step-never-called": ({**HEALTHY, "step": False}, HEALTHY, {"at_step": 0}),
    "no-gradient-path": ({**HEALTHY, "detach": True}, HEALTHY, {"at_step": 0}),
    "dead-relu": ({"sgd": True, "lr": 2.0}, {"sgd": True, "lr": 0.5}, {"module": "1"}),
}
SWEEP = [SEEDS[0], *(pytest.param(s, marks=pytest.mark.slow) for s in SEEDS[1:])]


def codes(report) -> set:
    return {f.code for f in report.findings}


@pytest.mark.parametrize("seed", SWEEP)
@pytest.mark.parametrize("code", list(TWINS))
def test_each_timeline_rule_names_its_fault_and_not_the_healthy_twin(code, seed):
    *loops, evidence = TWINS[code]
    failing, healthy = (diagnosed(seed, **loop)[1] for loop in loops)
    found = finding(failing, code).evidence
    assert "at_step" in found and evidence.items() <= found.items(), found   # a timeline finding
    assert code not in codes(healthy), str(healthy)


def test_stop_raises_at_the_step_a_recording_can_judge():
    with pytest.raises(TrainingFailed) as caught:
        digits_loop(0, zero=False, stop=True)
    verdict = caught.value.report.verdict()
    assert verdict.startswith("at step ") and "accumulated-gradient" in verdict


def test_close_removes_every_hook():
    model, X, y, run = digits_loop(0, epochs=1)
    assert not (run.handles or run.sampling_handles or run.grads.handles)
    assert run.timeline().n_logged == 29


# ----------------------------------------------------------------- the rules on plain timelines
def timeline(loss, weight_norm=None, update_ratio=None, dead=None, failing=True, untrained=None):
    """A Timeline of len(loss) logged steps, each one sampled."""
    n = len(loss)
    return Timeline(steps=np.arange(n), loss=np.array(loss, float), lr=np.full((n, 1), 1e-3),
                    stepped=np.ones(n, bool), reset=np.ones(n, np.int8), n_logged=n, n_stepped=n,
                    sample_steps=np.arange(n), weight_norm=weight_norm or {},
                    update_ratio=update_ratio or {}, dead=dead or {}, constant_loss=1.0,
                    untrained_loss=untrained, failing=failing)


def ratios(w, dw) -> np.ndarray:
    """|dw| / |w| as watch records it: inf where |w| is 0."""
    with np.errstate(divide="ignore"):
        return np.array(dw) / np.array(w)


def test_a_bias_passing_near_zero_is_not_a_step_as_large_as_the_weights():
    w, dw = [0.013, 0.009, 0.0002, 0.002, 0.006], [0.003, 0.003, 0.002, 0.002, 0.002]
    tl = timeline([1.0] * 5, {"2.bias": np.array(w)}, {"2.bias": ratios(w, dw)})
    assert ratios(w, dw).max() >= 10 and check_updates_larger_than_weights(tl) is None


def test_a_tensor_that_started_at_zero_has_no_scale_to_step_against():
    w, dw = [0.0, 1e-3, 2e-3, 4e-3], [1e-3, 1e-3, 2e-3, 2e-3]
    tl = timeline([1.0] * 4, {"4.bias": np.array(w)}, {"4.bias": ratios(w, dw)})
    assert check_updates_larger_than_weights(tl) is None


def test_steps_larger_than_weights_that_keep_their_scale_are_named():
    w, dw = [0.5, 3.0, 20.0, 90.0], [3.0, 20.0, 90.0, 400.0]
    tl = timeline([1.0, 3.0, 9.0, 30.0], {"0.weight": np.array(w)}, {"0.weight": ratios(w, dw)})
    found = check_updates_larger_than_weights(tl)
    assert found.code == "unstable-learning-rate" and found.evidence["update_ratio"] == 6.0


def test_a_batch_whose_dead_share_swings_up_and_back_is_not_units_that_died():
    tl = timeline([1.0] * 5, dead={"3": np.array([0.06, 0.1, 0.53, 0.2, 0.19])})
    assert check_units_died(tl) is None


def test_units_that_died_and_stayed_dead_are_named_from_the_step_they_stayed():
    tl = timeline([1.0] * 5, dead={"1": np.array([0.1, 0.6, 0.3, 0.7, 1.0])})
    found = check_units_died(tl)
    assert found.code == "dead-relu" and found.evidence["at_step"] == 3
    assert found.severity == "error"     # every unit dead at the end: the layer passes nothing


# The step-0 rule against a constant predictor's loss of 1.0 (timeline()'s).
FAR = 3 * INIT_LOSS_FAR


@pytest.mark.parametrize("then", [[FAR / 3, FAR / 10, 2.0, 1.0], [FAR * 10, 1e9, float("nan")]],
                         ids=["came-down", "blew-up"])
def test_a_first_loss_far_above_a_fresh_models_is_an_init_wrong_from_step_0(then):
    """Step 0's loss is logged before any update: whatever came after (N(0, 1) in a deep ReLU
    net starts at 1e6x and often blows up), the init was wrong."""
    found = check_loss_far_above_constant_at_step_0(timeline([FAR, *then]))
    assert found.code == "bad-initialization" and found.evidence["wrong_at_step_0"]


def test_targets_whose_zero_output_loss_is_huge_are_not_an_init_wrong_from_step_0():
    """Targets around 1000: a fresh zero-mean model's outputs score ~1e6, a constant's 1.0."""
    tl = timeline([1.1e6, 3e5, 1e4, 50.0, 2.0], untrained=1.0e6)
    assert check_loss_far_above_constant_at_step_0(tl) is None
    assert check_loss_far_above_constant_at_step_0(timeline(tl.loss.tolist())) is not None


def went_nan(loss, tensor="gradient of 0.weight", sampled=True):
    """A timeline whose last logged loss is the first non-finite value, found in ``tensor``; the
    layer outputs read at every step (or, ``sampled=False``, at none)."""
    tl = timeline(loss, dead={"1": np.zeros(len(loss))})
    return replace(tl, first_nonfinite_step=len(loss) - 1, first_nonfinite_tensor=tensor,
                   sample_steps=tl.sample_steps if sampled else np.zeros(0, int))


FALLING = [0.7, 0.5, 0.3, 0.2, 0.15, 0.12]


def test_a_nan_after_a_falling_loss_with_finite_outputs_is_the_loss_overflowing():
    found = check_first_non_finite(went_nan(FALLING + [float("nan")]))
    assert found.evidence["inside_the_loss"] and found.fix == LOSS_OVERFLOW_FIX
    assert "log of 0" in found.message


@pytest.mark.parametrize("loss, tensor, sampled", [
    ([0.7, 0.9, 1.6, 5.0, 40.0, 900.0, float("nan")], "gradient of 0.weight", True),
    (FALLING + [float("nan")], "outputs of 1", True),
    (FALLING + [float("nan")], "gradient of 0.weight", False),
], ids=["loss-rose-first", "outputs-went-first", "outputs-not-read"])
def test_a_nan_that_the_steps_or_the_outputs_show_coming_keeps_the_lr_fix(loss, tensor, sampled):
    found = check_first_non_finite(went_nan(loss, tensor, sampled))
    assert not found.evidence["inside_the_loss"] and found.fix.startswith("Lower the learning rate")


# ----------------------------------------------------------------- what the recording contradicts
def post_hoc_accumulated() -> Finding:
    return Finding("accumulated-gradient", "error", "m", {"stored_grad_norm": 3.0}, "fix")


@pytest.mark.parametrize("reset, kept", [(RESET, False), (ACCUMULATED, True), (UNKNOWN, True)],
                         ids=["every-step-reset", "not-reset", "unknown"])
def test_a_post_hoc_accumulated_gradient_goes_where_every_step_was_seen_reset(reset, kept):
    """The .grad left behind read as summed over steps, where the recording saw it reset at
    every step: the last step moved the weights the bound was read at. Where it saw a stale
    .grad, or could not tell, the finding stays."""
    n = 50
    tl = replace(timeline([1.0] * n), reset=np.full(n, reset, np.int8),
                 n_reset=n if reset == RESET else 0,
                 n_accumulated=n if reset == ACCUMULATED else 0)
    kept_codes = [f.code for f in merged([post_hoc_accumulated()], [], tl)]
    assert kept_codes == (["accumulated-gradient"] if kept else [])


@pytest.mark.parametrize("end, summed", [(15.0, True), (1.0, False)], ids=["ends-15x", "ends-1x"])
def test_a_step_0_loss_the_batch_s_rows_times_a_fresh_one_is_summed_unless_it_ends_as_a_mean(
        end, summed):
    """Step 0 at 18x a fresh model's loss over batches of 15 rows: 1.2x a row. A history that
    ends 15x the model's loss on X was logged summed; one that ends at it was logged as a mean
    (unscaled inputs start far above too), and step 0 was an init's own."""
    loss = [18.0] + [end] * 49
    tl = replace(timeline(loss), batch_rows=15.0, final_loss=1.0)
    assert (summed_over_the_batch(tl) is not None) == summed
    assert (check_loss_far_above_constant_at_step_0(tl) is None) == summed


@functools.lru_cache(maxsize=None)
def tiny_init_sin_run(seed: int, std: float | None):
    """sin(2x) on 400 points, 1-64-64-64-64-1 tanh, Adam lr 3e-3, 500 full-batch steps, watched;
    ``std``: every weight N(0, std), every bias 0 (None: torch's init)."""
    torch.manual_seed(seed)
    X = torch.linspace(-3, 3, 400)[:, None]
    y = torch.sin(2 * X) + 0.1 * torch.randn(400, 1)
    layers = [nn.Linear(1, 64), nn.Tanh()] + [m for _ in range(3) for m in (nn.Linear(64, 64),
                                                                            nn.Tanh())]
    model = nn.Sequential(*layers, nn.Linear(64, 1))
    if std is not None:
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    run = watch(model, opt)
    for _ in range(500):
        opt.zero_grad()
        loss = F.mse_loss(model(X), y)
        loss.backward()
        opt.step()
        run.log(loss)
    run.close()
    return run, diagnose(model, X, y, loss="mse", run=run)


@pytest.mark.parametrize("seed", SEEDS)
def test_steps_large_against_a_tiny_init_name_the_init_not_the_lr(seed):
    """Adam moves N(0, 1e-3) weights by 3x themselves a step: |dw| / |w| is large because |w| is
    far below its fan-in's scale, so the step is read against that scale, and the init is named."""
    run, report = tiny_init_sin_run(seed, 1e-3)
    raw = max(float(np.nanmax(r)) for n, r in run.timeline().update_ratio.items()
              if n.endswith("weight"))
    assert raw >= 1, "the unscaled ratio alone would read as steps past the weights"
    assert report.causes[0].code == "bad-initialization", str(report)
    assert "unstable-learning-rate" not in report.codes, str(report)
    _, healthy = tiny_init_sin_run(seed, None)
    assert not healthy.codes, str(healthy)
