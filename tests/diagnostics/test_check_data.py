"""diagnostics/checks/data.py: unscaled-data.
"""

import numpy as np
import pytest

from diagnostics import diagnose

from diagnose_helpers import KINDS, RTOL, as_kind, finding, net, rms, sin_data


@pytest.mark.parametrize("kind", KINDS)
def test_x_from_0_to_999_is_unscaled(kind):
    X = np.arange(1000.0)[:, None]
    y = np.sin(X / 100)
    f = finding(diagnose(as_kind(net((1, 16, 1), ("relu", "identity")), kind), X, y),
                "unscaled-data")
    assert f.evidence["input_rms_max"] == pytest.approx(np.sqrt(np.mean(X ** 2)), rel=RTOL)


@pytest.mark.parametrize("kind", KINDS)
def test_targets_in_the_thousands_are_unscaled(kind):
    X, y = sin_data()
    f = finding(diagnose(as_kind(net((1, 16, 1), ("tanh", "identity")), kind), X, 1000 * y),
                "unscaled-data")
    assert f.evidence["target_rms_max"] == pytest.approx(rms(1000 * y), rel=RTOL)
