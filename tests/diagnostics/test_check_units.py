"""diagnostics/checks/units.py: dead-relu, saturated-activation.
"""

import numpy as np
import pytest

from diagnostics import diagnose

from diagnose_helpers import KINDS, RTOL, as_kind, finding, forward_cache, layer_name, net, sin_data


# ----------------------------------------------------------------- dead-relu
@pytest.mark.parametrize("kind", KINDS)
def test_a_dead_relu_layer_is_reported_with_count_and_share(kind):
    X, y = sin_data()
    mlp = net((1, 32, 32, 1), ("relu", "relu", "identity"), seed=1)
    mlp.b[1][:20] = -50.0                        # 20 of the 32 second-layer units never fire
    f = finding(diagnose(as_kind(mlp, kind), X, y), "dead-relu")
    z = forward_cache(mlp, X).z
    dead = [int(np.sum(np.all(zi <= 0, axis=0))) for zi in z[:2]]
    assert dead[1] >= 20
    names = [layer_name(kind, mlp, i) for i in range(2)]
    for name, d in zip(names, dead):
        assert f.evidence["dead"][name] == {"dead": d, "width": 32, "share": round(d / 32, 4)}
    assert f.layer == names[1]


# ----------------------------------------------------------------- saturated-activation
@pytest.mark.parametrize("kind", KINDS)
def test_tanh_on_unscaled_inputs_is_saturated(kind):
    X = np.arange(1000.0)[:, None]
    y = np.sin(X / 100)
    mlp = net((1, 16, 1), ("tanh", "identity"))
    report = diagnose(as_kind(mlp, kind), X, y)
    f = finding(report, "saturated-activation")
    h = forward_cache(mlp, X).h[1]
    name = layer_name(kind, mlp, 0)
    # tanh' = 1 - h^2 written out on purpose: an independent reference for the table's slope
    assert f.evidence["pass_through"][name] == pytest.approx(np.mean(1 - h * h), rel=RTOL)
    assert f.evidence["pinned_units"][name] == int(np.sum(np.mean(np.abs(h) >= 0.99, axis=0) >= 0.9))
    assert "unscaled-data" in report.codes
