"""diagnostics.watch and the timeline checks: a watched loop never changes the training, and each
timeline rule names its cause where a healthy watched run stays quiet."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from diagnose_helpers import SEEDS, digits_data, finding, same_state
from diagnostics import TrainingFailed, diagnose, watch


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
    assert same_state(digits_loop(0)[0], digits_loop(0, watched=False)[0])


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
