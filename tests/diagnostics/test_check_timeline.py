"""diagnostics.watch and the timeline checks: a watched loop never changes the training, and each
timeline rule names its cause where a healthy watched run stays quiet."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from diagnose_helpers import SEEDS, digits_data, finding
from diagnostics import TrainingFailed, diagnose, watch
from diagnostics.checks.timeline import check_units_died, check_updates_larger_than_weights
from diagnostics.timeline import Timeline


def digits_loop(seed, lr=1e-3, zero=True, step=True, watched=True, stop=False, epochs=5):
    """Adam on digits, batches of 64: (model, X, y, run)."""
    X, y = (torch.tensor(a) for a in digits_data())
    X = X.float()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    run = watch(model, opt, stop=stop) if watched else None
    for _ in range(epochs):
        for b in range(0, len(X), 64):
            if zero:
                opt.zero_grad()
            loss = F.cross_entropy(model(X[b:b + 64]), y[b:b + 64])
            loss.backward()
            if step:
                opt.step()
            if run:
                run.log(loss)
    if run:
        run.close()
    return model, X, y, run


def test_a_watched_run_trains_bit_for_bit_as_an_unwatched_one():
    watched, unwatched = digits_loop(0)[0], digits_loop(0, watched=False)[0]
    assert all(torch.equal(p, q) for p, q in zip(watched.parameters(), unwatched.parameters()))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_healthy_watched_run_stays_quiet(seed):
    model, X, y, run = digits_loop(seed, lr=1e-2)
    report = diagnose(model, X, y, loss="cross_entropy", run=run)
    assert not [f for f in report.findings if "at_step" in f.evidence], str(report)
    assert run.check().ok


@pytest.mark.parametrize("seed", SEEDS)
def test_step_never_called_is_named(seed):
    model, X, y, run = digits_loop(seed, step=False)
    report = diagnose(model, X, y, loss="cross_entropy", run=run)
    assert report.causes[0].code == "step-never-called"
    finding(report, "step-never-called")


@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_never_reset_are_named_first(seed):
    model, X, y, run = digits_loop(seed, zero=False)
    report = diagnose(model, X, y, loss="cross_entropy", run=run)
    assert report.causes[0].code == "accumulated-gradient", str(report)
    assert report.verdict().startswith("at step 1:")


@pytest.mark.parametrize("seed", SEEDS)
def test_adam_at_lr_half_is_named_an_lr_too_high(seed):
    model, X, y, run = digits_loop(seed, lr=0.5)
    report = diagnose(model, X, y, loss="cross_entropy", run=run)
    assert report.causes[0].code == "unstable-learning-rate", str(report)


def test_stop_raises_at_the_step_a_recording_can_judge():
    with pytest.raises(TrainingFailed) as caught:
        digits_loop(0, zero=False, stop=True)
    verdict = caught.value.report.verdict()
    assert verdict.startswith("at step ") and "accumulated-gradient" in verdict


def test_close_removes_every_hook():
    model, X, y, run = digits_loop(0, epochs=1)
    assert not run.handles and not run.forward_handles and run.timeline().n_logged == 29


# ----------------------------------------------------------------- the rules on plain timelines
def timeline(loss, weight_norm=None, update_ratio=None, dead=None, failing=True):
    """A Timeline of len(loss) logged steps, each one sampled."""
    n = len(loss)
    return Timeline(steps=np.arange(n), loss=np.array(loss, float), lr=np.full((n, 1), 1e-3),
                    stepped=np.ones(n, bool), reset=np.ones(n, np.int8), n_logged=n, n_stepped=n,
                    sample_steps=np.arange(n), weight_norm=weight_norm or {},
                    update_ratio=update_ratio or {}, dead=dead or {}, constant_loss=1.0,
                    failing=failing)


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
