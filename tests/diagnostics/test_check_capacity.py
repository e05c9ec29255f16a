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
