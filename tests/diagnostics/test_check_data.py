"""diagnostics/checks/data.py: unscaled-data, unpredictable-targets.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes
from torch import nn

from diagnostics import diagnose
from diagnostics.checks.data import UNPREDICTABLE

from diagnose_helpers import KINDS, RTOL, as_kind, digits_data, finding, net, rms, sin_data


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


# ----------------------------------------------------------------- targets that X cannot predict
def digits_model(seed: int):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).double()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_permuted_apart_from_x_are_unpredictable_targets(seed):
    X, y = digits_data()
    y = np.random.default_rng(seed).permutation(y)
    f = finding(diagnose(digits_model(seed), X, y, loss="cross_entropy"), "unpredictable-targets")
    assert f.severity == "error" and "rows of X and y correspond" in f.fix
    assert min(f.evidence["linear_cv_ratio"], f.evidence["neighbours_cv_ratio"]) >= UNPREDICTABLE


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_regression_target_permuted_apart_from_x_is_unpredictable(seed):
    X, y = sin_data(300)
    y = np.random.default_rng(seed).permutation(y)
    report = diagnose(as_kind(net((1, 16, 1), ("tanh", "identity"), seed=seed), "sequential"), X, y)
    assert "unpredictable-targets" in report.codes, str(report)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_digits_with_their_own_labels_and_a_weak_but_real_signal_are_predictable(seed):
    """Digits, and diabetes (a linear fit explains ~0.4 of the variance): both stay quiet."""
    X, y = digits_data()
    assert "unpredictable-targets" not in diagnose(digits_model(seed), X, y,
                                                   loss="cross_entropy").codes
    Xd, yd = load_diabetes(return_X_y=True)
    Xd, yd = (Xd - Xd.mean(0)) / Xd.std(0), (yd - yd.mean()) / yd.std()
    mlp = as_kind(net((10, 16, 1), ("relu", "identity"), seed=seed), "sequential")
    assert "unpredictable-targets" not in diagnose(mlp, Xd, yd[:, None]).codes


def test_a_model_that_predicts_the_held_out_rows_is_not_told_y_is_unpredictable():
    """The references see nothing, the model's loss on X_val does: y depends on X in a way
    neither a linear fit nor neighbours finds, so the check defers to the held-out rows."""
    X, y = digits_data()
    y = np.random.default_rng(0).permutation(y)
    model = digits_model(0)
    with torch.no_grad():   # X_val: rows the model predicts (its own argmax as their label),
        model[2].weight.mul_(100)              # confidently
        y_val = model(torch.from_numpy(X)).argmax(1).numpy()
    report = diagnose(model, X, y, loss="cross_entropy", X_val=X, y_val=y_val)
    assert "unpredictable-targets" in diagnose(model, X, y, loss="cross_entropy").codes
    assert report.summary["val_loss"] < UNPREDICTABLE * report.summary["val_constant_loss"]
    assert "unpredictable-targets" not in report.codes, str(report)
