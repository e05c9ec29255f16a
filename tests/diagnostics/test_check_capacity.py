"""diagnostics/checks/capacity.py: low-capacity (with the plateau it explains).
"""

import numpy as np
import pytest

from diagnostics import diagnose

from diagnose_helpers import KINDS, RTOL, as_kind, finding, net, xor_data


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
