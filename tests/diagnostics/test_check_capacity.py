"""diagnostics/checks/capacity.py: low-capacity (with the plateau it explains).
"""

import functools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from diagnostics import diagnose
from diagnostics.checks.capacity import HEAVY_DROPOUT

from diagnose_helpers import (KINDS, RTOL, SEEDS, as_kind, digits_tensors, finding, net, train,
                              xor_data)


@pytest.mark.parametrize("kind", KINDS)
def test_a_tiny_net_on_the_spiral_map_plateaus_for_lack_of_capacity(tiny_spiral, kind):
    r = tiny_spiral
    X, y = r.data.X, r.data.y
    report = diagnose(as_kind(r.model, kind), X, y, history=r.history)
    plateau, capacity = finding(report, "loss-plateau"), finding(report, "low-capacity")
    k = min(200, len(r.history) // 4)
    assert plateau.evidence["level"] == pytest.approx(np.mean(r.history[-k:]), rel=RTOL)
    assert capacity.evidence["widths"] == [4, 3, 2]
    loss = np.mean((r.model.forward(X) - y) ** 2)
    assert capacity.evidence["loss_ratio"] == pytest.approx(loss / np.mean(y.var(axis=0)), abs=1e-4)
    assert capacity.severity == "error"


@pytest.mark.parametrize("kind", KINDS)
def test_a_linear_model_on_xor_has_low_capacity(kind):
    X, y = xor_data()
    mlp = net((2, 16, 2), ("identity", "identity"))
    f = finding(diagnose(as_kind(mlp, kind), X, y, loss="cross_entropy"), "low-capacity")
    assert f.evidence["activations"] == ["identity", "identity"]


# ----------------------------------------------------------------- capacity read off the architecture
def reference_report(reference_run, name, seed):
    model, X, y, loss, history, opt = reference_run(name, seed)[:6]
    return diagnose(model, X, y, loss=loss, history=history, optimizer=opt)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_one_unit_layer_on_digits_is_named_first_as_a_bottleneck(reference_run, seed):
    report = reference_report(reference_run, "digits-1-unit", seed)
    first = report.causes[0]
    assert first.code == "low-capacity" and first.evidence["bottleneck"], str(report)
    assert report.failing and "1 unit" in first.message


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_tanh_units_on_a_surface_lead_with_capacity_their_saturation_beneath(reference_run,
                                                                                  seed):
    """The saturation a narrow layer produces follows from it; 15 nearest neighbours fit the
    surface that the two units cannot (the reference shows the data is learnable)."""
    report = reference_report(reference_run, "tanh-2-units", seed)
    assert report.causes[0].code == "low-capacity", str(report)
    assert all(f.explained_by == "low-capacity" for f in report.findings[1:]), str(report)
    assert report.summary["reference_shortfall"] >= 0.25


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thirty_two_tanh_units_on_the_same_surface_stay_quiet(reference_run, seed):
    report = reference_report(reference_run, "tanh-32-units", seed)
    assert report.ok and not report.findings, str(report)


# ----------------------------------------------------------------- dropout
DROPOUT_STEPS = 600     # Adam batches of 64 on digits: at p = 0.2 the loss on X falls under 0.1 of
                        # a constant's; at p = 0.95 it stays at 0.41-0.44 (the linear fit: ~0.1)


@functools.lru_cache(maxsize=None)
def dropout_run(p: float, seed: int):
    """A 64-64-64-10 ReLU net with Dropout(p) after its first layer, trained on digits."""
    X, y = digits_tensors()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(p), nn.Linear(64, 64),
                          nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = train(model, X, y, F.cross_entropy, opt, DROPOUT_STEPS, batch=64, seed=seed)
    return diagnose(model.eval(), X, y, loss="cross_entropy", history=history, optimizer=opt)


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_that_keeps_1_unit_in_20_is_the_cause_and_its_fix_lowers_it(seed):
    report = dropout_run(0.95, seed)
    first = report.findings[0]
    assert first.code == "low-capacity" and first.evidence["dropout"] == {"2": 0.95}, str(report)
    assert first.fix.startswith("Lower the dropout rate")
    assert HEAVY_DROPOUT <= 0.95


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_of_a_fifth_trains_and_stays_quiet(seed):
    report = dropout_run(0.2, seed)
    assert report.ok and "low-capacity" not in report.codes, str(report)


@functools.lru_cache(maxsize=None)
def tanh_dropout_run(p: float, seed: int):
    """sin(2x) on 400 points through 1-64-64-1 tanh with Dropout(p) after each hidden layer, Adam
    lr 3e-3, 500 full-batch steps."""
    torch.manual_seed(seed)
    X = torch.linspace(-3, 3, 400)[:, None]
    y = torch.sin(2 * X) + 0.1 * torch.randn(400, 1)
    model = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Dropout(p), nn.Linear(64, 64),
                          nn.Tanh(), nn.Dropout(p), nn.Linear(64, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = train(model, X, y, F.mse_loss, opt, 500, seed=seed)
    return diagnose(model, X, y, loss="mse", history=history, optimizer=opt)


@pytest.mark.parametrize("seed", SEEDS)
def test_units_that_heavy_dropout_drives_to_their_limits_follow_from_it(seed):
    """Dropout(0.9) scales each kept unit x10: the tanh layer after it saturates or its gradient
    fades, and those findings sit beneath the dropout instead of ruling it out."""
    report = tanh_dropout_run(0.9, seed)
    first = report.causes[0]
    assert first.code == "low-capacity" and first.evidence["heavy_dropout"], str(report)
    assert first.fix.startswith("Lower the dropout rate")
    assert {f.explained_by for f in report.findings if f.code in
            ("saturated-activation", "vanishing-gradient", "dead-relu")} <= {"low-capacity"}
    healthy = tanh_dropout_run(0.2, seed)
    assert "low-capacity" not in healthy.codes and not healthy.errors, str(healthy)
