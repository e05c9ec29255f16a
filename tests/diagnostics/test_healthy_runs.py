"""Silence on healthy runs: trained digits, sin and XOR models get no code at all, and normal
training loops over three seeds get none of the training-loop codes.
"""

import numpy as np
import pytest

from diagnostics import assert_healthy, diagnose

from diagnose_helpers import HEALTHY_LOOPS, KINDS, LOOPS, SEEDS, as_kind


# ----------------------------------------------------------------- the healthy models (trained once per session in conftest.py)
def test_the_healthy_models_are_trained(healthy):
    mlp, X, y, loss, history, _ = healthy
    out = mlp.forward(X)
    if loss == "cross_entropy":
        assert np.mean(out.argmax(axis=1) == y) > 0.97
    else:
        assert np.mean((out - y) ** 2) < 1e-3 * y.var()


@pytest.mark.parametrize("kind", KINDS)
def test_healthy_trained_models_have_no_error(healthy, kind):
    mlp, X, y, loss, history, lr = healthy
    assert_healthy(as_kind(mlp, kind), X, y, loss=loss, history=history, lr=lr)


@pytest.mark.parametrize("kind", KINDS)
def test_healthy_trained_models_show_no_code_at_all(healthy, kind):
    mlp, X, y, loss, history, lr = healthy
    report = diagnose(as_kind(mlp, kind), X, y, loss=loss, history=history, lr=lr)
    assert report.codes == set(), str(report)


# ----------------------------------------------------------------- normal training loops
LOOP_CODES = {"accumulated-gradient", "optimizer-mismatch", "no-gradient-path", "frozen-parameters",
              "single-class-output", "decayed-learning-rate", "generalization-gap",
              "learned-nothing", "loss-target-mismatch"}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("loop", list(LOOPS) + list(HEALTHY_LOOPS))
def test_a_loop_that_zeroes_the_gradient_gets_none_of_the_loop_codes(loop_run, loop, seed):
    model, X, y, loss, history, opt = loop_run(loop, seed)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    report = diagnose(model, X, y, loss=loss, history=history, optimizer=opt)
    assert not report.codes & LOOP_CODES, str(report)
