"""diagnostics/checks/finite.py: non-finite.
"""

import numpy as np
import pytest

from diagnostics import diagnose

from diagnose_helpers import KINDS, as_kind, finding, layer_name, module_path, net, sin_data


@pytest.mark.parametrize("kind", KINDS)
def test_nan_parameters_are_non_finite(kind):
    X, y = sin_data()
    mlp = net((1, 16, 1), ("tanh", "identity"))
    mlp.W[1][[0, 3, 5], 0] = np.nan
    f = finding(diagnose(as_kind(mlp, kind), X, y), "non-finite")
    assert f.severity == "error" and f.evidence["parameters"] == 3
    assert f.evidence["outputs"] == len(X)
    assert f.evidence["first_parameter"] == f"{module_path(kind, mlp, 1)}.weight"
    assert f.layer == layer_name(kind, mlp, 1)


def test_a_nan_in_the_history_gives_its_first_step():
    X, y = sin_data()
    history = np.r_[np.linspace(1, 0.5, 40), np.inf, np.nan]
    f = finding(diagnose(net((1, 16, 1), ("tanh", "identity")), X, y, history=history),
                "non-finite")
    assert f.evidence["history"] == 2 and f.evidence["first_bad_step"] == 40
