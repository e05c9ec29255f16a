"""diagnostics/checks/weights.py: bad-initialization.
"""

from functools import lru_cache

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from diagnostics import diagnose

from diagnose_helpers import (KINDS, RTOL, SEEDS, adam_digits, as_kind, diagnosed, digits_data,
                              digits_tensors, finding, layer_name, net, relu_net, rms, sin_data,
                              sin2x_tensors, train, xor_data)

@pytest.mark.parametrize("kind", KINDS)
def test_all_positive_uniform_init_is_bad(kind):
    X, y = sin_data()
    mlp = net((1, 16, 16, 1), ("relu", "relu", "identity"), init="uniform01")
    f = finding(diagnose(as_kind(mlp, kind), X, y), "bad-initialization")
    assert f.evidence["one_sign"] == "positive"


@pytest.mark.parametrize("kind", KINDS)
def test_zero_init_is_constant_weights(kind):
    X, y = sin_data()
    mlp = net((1, 16, 1), ("tanh", "identity"), init="zeros")
    f = finding(diagnose(as_kind(mlp, kind), X, y), "bad-initialization")
    assert f.severity == "error"
    assert f.evidence["constant_layers"] == [layer_name(kind, mlp, i) for i in range(2)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_scale_far_from_fan_in_is_bad_when_training_fails(kind):
    X, y = digits_data()
    mlp = net((64, 32, 10), ("relu", "identity"), init="randn")   # N(0, 1): 8x the fan-in scale
    mlp.W[1] *= 100
    f = finding(diagnose(as_kind(mlp, kind), X, y, loss="cross_entropy"), "bad-initialization")
    name = layer_name(kind, mlp, 1)
    assert f.evidence["scale"][name] == pytest.approx(rms(mlp.W[1]) * np.sqrt(32), rel=RTOL)
    assert f.evidence["trained_steps"] == 0 and "learning rate" not in f.fix


def test_a_scale_far_off_after_training_may_come_from_the_learning_rate():
    X, y = digits_data()
    mlp = net((64, 32, 10), ("relu", "identity"), init="randn")
    mlp.W[1] *= 100
    history = np.full(60, 2.3)                    # 60 steps that learned nothing
    f = finding(diagnose(mlp, X, y, loss="cross_entropy", history=history), "bad-initialization")
    assert f.evidence["trained_steps"] == 60 and "lower the learning rate" in f.fix
    assert "After 60 training steps" in f.message


@pytest.mark.parametrize("seed", SEEDS)
def test_a_uniform_0_1_init_stays_mostly_positive_through_training_and_is_named(adam_digits_run,
                                                                               seed):
    report = diagnosed(adam_digits(seed, init=lambda p: p.uniform_(0, 1)))
    f = finding(report, "bad-initialization")
    assert f.evidence["one_sign"] == "positive" and 0.9 <= f.evidence["one_sign_share"] < 1
    kept = diagnosed(adam_digits_run(seed))           # torch's default init, same loop
    assert "bad-initialization" not in kept.codes, str(kept)


# ----------------------------------------------------------------- the history's first loss
def falling_from(first: float, steps: int = 200) -> np.ndarray:
    return first * np.geomspace(1.0, 0.5, steps)


def test_a_history_that_starts_far_above_a_fresh_model_s_loss_names_the_init():
    X, y = sin_data()
    mlp = net((1, 16, 16, 1), ("relu", "relu", "identity"))
    untrained = float(np.mean(y ** 2))                  # mse of a zero output
    report = diagnose(mlp, X, y, history=falling_from(100 * untrained))
    f = finding(report, "bad-initialization")
    assert f.severity == "error" and f.evidence["wrong_at_step_0"]
    assert f.evidence["untrained_loss"] == pytest.approx(untrained, rel=RTOL)
    assert report.causes[0].code == "bad-initialization", str(report)


def test_a_history_that_starts_sane_and_rises_is_not_blamed_on_the_init():
    X, y = sin_data()
    mlp = net((1, 16, 16, 1), ("relu", "relu", "identity"))
    rising = np.geomspace(float(np.mean(y ** 2)), 1e4, 200)   # the lr's blow-up: starts sane
    assert "bad-initialization" not in diagnose(mlp, X, y, history=rising).codes


def test_off_centre_targets_start_far_above_the_constant_but_not_above_a_zero_output():
    """y around 1000: a fresh model's first loss is ~1e6, the constant's ~1; a zero output's is
    the same 1e6, so the first loss says nothing against the init."""
    X, y = sin_data()
    y = y + 1000.0
    mlp = net((1, 16, 16, 1), ("relu", "relu", "identity"))
    history = falling_from(float(np.mean(y ** 2)))
    report = diagnose(mlp, X, y, history=history)
    assert not any(f.evidence.get("wrong_at_step_0") for f in report.findings), str(report)


def test_a_model_gone_non_finite_is_judged_by_its_history_s_start():
    """No weights to read; a first loss 1e4x a fresh model's, falling, then NaN: the init."""
    X, y = sin_data()
    mlp = net((1, 16, 16, 1), ("relu", "relu", "identity"))
    mlp.W[0][:] = np.nan
    history = np.concatenate([falling_from(1e4 * float(np.mean(y ** 2)), 50), [np.nan] * 5])
    report = diagnose(mlp, X, y, history=history)
    assert report.causes[0].code == "bad-initialization", str(report)
    assert "non-finite" in report.causes[0].explains
    sane = np.concatenate([falling_from(float(np.mean(y ** 2)), 50), [np.nan] * 5])
    assert "bad-initialization" not in diagnose(mlp, X, y, history=sane).codes


# ----------------------------------------------------------------- units that are copies
@lru_cache(maxsize=None)
def xor_relu_run(seed: int, symmetric: bool):
    """XOR (400 rows) through a 2-32-32-2 relu net, Adam at 3e-3, 400 batches of 32; with
    ``symmetric``, every hidden unit starts as a copy of its layer's first (weights and bias)."""
    X, y = xor_data(400, seed)
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    torch.manual_seed(seed)
    model = relu_net(2, 2)
    if symmetric:
        with torch.no_grad():
            for lin in (model[0], model[2]):
                lin.weight.copy_(lin.weight[:1].expand_as(lin.weight))
                lin.bias.fill_(float(lin.bias[0]))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = train(model, X, y, F.cross_entropy, opt, 400, 32, seed=seed)
    return model, diagnose(model, X, y, loss="cross_entropy", history=history, optimizer=opt)


def mean_cos(lin: nn.Linear) -> float:
    rows = lin.weight.detach().double()
    unit = rows / rows.norm(dim=1, keepdim=True)
    n = len(rows)
    return float(((unit @ unit.T).sum() - n) / (n * (n - 1)))


@pytest.mark.parametrize("seed", SEEDS)
def test_hidden_units_copied_from_one_are_a_bad_initialization_named_first(seed):
    model, report = xor_relu_run(seed, True)
    assert report.causes[0].code == "bad-initialization", str(report)
    f = report.causes[0]
    first = f.evidence["parallel_units"]["0 Linear(2->32)"]
    assert f.severity == "error" and first["mean_cos"] == pytest.approx(mean_cos(model[0]))
    assert first["mean_cos"] >= 0.9 and "symmetry" in f.fix and "mean cos" in f.message
    _, kept = xor_relu_run(seed, False)                # torch's init, the same loop
    assert "bad-initialization" not in kept.codes and kept.ok, str(kept)


# ----------------------------------------------------------------- layers a norm follows
def digits_net(seed: int, norm: bool, scale: float) -> nn.Sequential:
    """64-32-10 relu, the first layer's weights and bias x ``scale``; with ``norm``, a
    BatchNorm1d between it and its relu."""
    torch.manual_seed(seed)
    first = nn.Linear(64, 32)
    with torch.no_grad():
        first.weight.mul_(scale), first.bias.mul_(scale)
    return nn.Sequential(first, *([nn.BatchNorm1d(32)] if norm else []), nn.ReLU(),
                         nn.Linear(32, 10))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_scale_of_a_layer_a_batch_norm_follows_is_not_judged(seed):
    """A fresh net (no history: it fails) with its first layer 100x the fan-in scale: named
    without the norm, which divides that scale out, and not with it."""
    X, y = digits_data()
    bare = finding(diagnose(digits_net(seed, False, 100.0), X, y, loss="cross_entropy"),
                   "bad-initialization")
    assert bare.evidence["scale"]["0 Linear(64->32)"] > 10
    normed = diagnose(digits_net(seed, True, 100.0).eval(), X, y, loss="cross_entropy")
    assert not any("0 Linear(64->32)" in f.evidence.get("scale", {}) for f in normed.findings), \
        str(normed)


@lru_cache(maxsize=None)
def batch_norm_run(seed: int, scale: float):
    X, y = digits_tensors()
    model = digits_net(seed, True, scale)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = train(model, X, y, F.cross_entropy, opt, 300, 32, seed=seed)
    return model, diagnose(model, X, y, loss="cross_entropy", history=history, optimizer=opt)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_batch_norm_net_whose_weights_grew_is_quiet_on_their_scale(seed):
    model, report = batch_norm_run(seed, 30.0)
    w = model[0].weight.detach()
    assert float(w.pow(2).mean().sqrt()) * 8 > 10          # RMS x sqrt(64): past SCALE_HIGH
    assert "bad-initialization" not in report.codes and report.ok, str(report)
    _, default = batch_norm_run(seed, 1.0)
    assert default.ok, str(default)


# ----------------------------------------------------------------- a head that shrank to output the mean
@lru_cache(maxsize=None)
def labels_drawn_anew_run(seed: int):
    """A tanh 1-64-64-1 net under Adam 1e-2, full batch, whose loop pairs the rows with targets
    permuted anew at every step (a bug in how it indexes y): nothing in X tells the target, so
    the model learns to output the mean, and its head shrinks to do so."""
    X, y = sin2x_tensors()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                          nn.Linear(64, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g, history = torch.Generator().manual_seed(seed), []
    for _ in range(500):
        opt.zero_grad()
        loss = F.mse_loss(model(X), y[torch.randperm(len(y), generator=g)])
        loss.backward()
        opt.step()
        history.append(loss.item())
    return model, X, y, history, opt


@pytest.mark.parametrize("seed", SEEDS)
def test_a_head_that_shrank_to_output_the_mean_is_not_a_bad_init(seed):
    """Its head ends at RMS x sqrt(fan_in) 0.06-0.09, under SCALE_LOW (0.1): bad-initialization
    read it as an init far too small, and vanishing-gradient sent its row signal back through it
    (0.0023 kept). A head under the fan-in scale regrows in one step (its own gradient does not
    pass through it), so neither names it: the run learned nothing of X, and learned-nothing
    leads with "look at the data"."""
    model, X, y, history, opt = labels_drawn_anew_run(seed)
    w = model[-1].weight.detach()
    assert float(w.pow(2).mean().sqrt()) * 8 < 0.1          # RMS x sqrt(64): under SCALE_LOW
    report = diagnose(model, X, y, history=history, optimizer=opt)
    assert report.causes[0].code == "learned-nothing", str(report)
    assert not {"bad-initialization", "vanishing-gradient"} & report.codes, str(report)
