"""diagnostics/reference.py: what a linear and a nearest-neighbour fit of the same rows reach,
under the run's own loss, and how diagnose() reports it beside the constant predictor's."""

import numpy as np
import pytest
import torch
from torch import nn

from diagnostics import diagnose
from diagnostics.losses import constant_loss
from diagnostics.reference import (MIN_ROWS, REMEMBERED, REMEMBERED_MAX, fitted_predictions,
                                   hinge_of_probabilities, reference_of)

from diagnose_helpers import SEEDS, digits_data

LINEAR_NOISE = 0.05     # y = X w + 5% noise: a linear fit leaves ~0.25% of the variance
NO_SIGNAL = 0.97        # data.UNPREDICTABLE: no reference beats the constant by 3% on noise


def linear_rows(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    return X, X @ rng.standard_normal((5, 1)) + LINEAR_NOISE * rng.standard_normal((n, 1))


def reference(X, y, loss, width):
    return reference_of(X, y, loss, width, constant_loss(loss, y, width))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_linear_target_is_predicted_by_the_linear_reference_on_held_out_rows(seed):
    X, y = linear_rows(seed)
    ref = reference(X, y, "mse", 1)
    assert ref.linear_cv < 0.01 * ref.constant
    assert ref.linear_cv < ref.neighbours_cv < ref.constant


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce_with_logits"])
def test_targets_permuted_apart_from_x_beat_the_constant_in_no_reference(seed, loss):
    X, labels = digits_data()
    labels = np.random.default_rng(seed).permutation(labels)
    y, width = {"cross_entropy": (labels, 10), "mse": (labels[:, None] / 9.0, 1),
                "bce_with_logits": ((labels[:, None] >= 5).astype(float), 1)}[loss]
    ref = reference(X, y, loss, width)
    assert min(ref.linear_cv, ref.neighbours_cv) >= NO_SIGNAL * ref.constant, ref


def test_digits_are_predicted_by_both_references():
    X, y = digits_data()
    ref = reference(X, y, "cross_entropy", 10)
    assert ref.linear_cv < 0.1 * ref.constant and ref.neighbours_cv < 0.2 * ref.constant


def test_the_references_do_not_see_the_scale_of_the_inputs():
    X, y = linear_rows(0)
    a, b = reference(X, y, "mse", 1), reference(1000 * X + 7, y, "mse", 1)
    assert a.linear_cv == pytest.approx(b.linear_cv, rel=1e-6)
    assert a.neighbours_cv == pytest.approx(b.neighbours_cv, rel=1e-6)


def test_the_same_rows_give_the_same_reference_twice():
    X, y = digits_data()
    REMEMBERED.clear()
    first = reference(X, y, "cross_entropy", 10)
    REMEMBERED.clear()                                 # fitted again, not remembered
    assert reference(X, y, "cross_entropy", 10) == first


def test_the_same_rows_are_fitted_once_and_other_rows_or_targets_are_fitted_anew():
    X, y = linear_rows(0)
    REMEMBERED.clear()
    first = reference(X, y, "mse", 1)
    assert len(REMEMBERED) == 1 and reference(X.copy(), y.copy(), "mse", 1) == first
    assert len(REMEMBERED) == 1 and reference(X, y, "half_mse", 1).linear_cv == \
        pytest.approx(first.linear_cv / 2)            # the same fit, scored under half_mse
    nudged = y.copy()
    nudged[0] += 1e-9                                  # one target changed: fitted again
    assert reference(X, nudged, "mse", 1) != first and len(REMEMBERED) == 2
    remembered, fresh = REMEMBERED[next(iter(REMEMBERED))], fitted_predictions(X, y, "mse", 1)
    assert all(np.array_equal(a, b) for a, b in zip(remembered, fresh))
    for seed in range(REMEMBERED_MAX + 2):
        reference(*linear_rows(seed, n=40), "mse", 1)
    assert len(REMEMBERED) == REMEMBERED_MAX


def test_no_reference_for_a_custom_loss_too_few_rows_or_soft_targets():
    X, y = linear_rows(0)
    assert reference_of(X, y, "custom", 1, 1.0) is None
    assert reference(X[:MIN_ROWS - 1], y[:MIN_ROWS - 1], "mse", 1) is None
    soft = np.full((len(X), 3), 1 / 3)
    assert reference_of(X, soft, "cross_entropy", 3, 1.0) is None


def test_the_hinge_of_probabilities_is_0_when_right_and_the_constant_s_when_even():
    y = np.array([0, 1, 2, 1])
    assert hinge_of_probabilities(np.eye(3)[y], y) == 0.0
    assert hinge_of_probabilities(np.full((4, 3), 1 / 3), y) == pytest.approx(2.0)


def test_the_report_sets_the_run_beside_a_constant_a_linear_and_a_neighbour_fit():
    X, y = digits_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).double()
    report = diagnose(model, X, y, loss="cross_entropy")
    s = report.summary
    ref = reference(X, y, "cross_entropy", 10)
    assert s["constant_loss"] == pytest.approx(ref.constant, rel=1e-6)
    assert s["linear_loss"] == pytest.approx(ref.linear_cv, rel=1e-5)
    assert s["neighbours_loss"] == pytest.approx(ref.neighbours_cv, rel=1e-5)
    expected = (s["loss_value"] - ref.linear_cv) / (ref.constant - ref.linear_cv)
    assert s["reference_shortfall"] == pytest.approx(expected, abs=2e-3)
    assert "a linear model" in str(report) and "nearest neighbours" in str(report)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_class_of_one_row_leaves_a_fold_without_it_and_still_gets_a_reference(seed):
    """The fold that holds the class's only row trains without it: its fit starts afresh."""
    X, y = digits_data()
    y = y.copy()
    y[np.random.default_rng(seed).integers(len(y))] = 10     # an eleventh class, of one row
    ref = reference(X, y, "cross_entropy", 11)
    assert np.isfinite(ref.linear_cv) and ref.linear_cv < 0.1 * ref.constant, ref
