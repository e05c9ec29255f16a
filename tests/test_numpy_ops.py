"""Issue 23: the numpy tables (cases/backends/numpy_ops.py) against the torch side of each name
(diagnostics/activations.py, diagnostics/losses.py): the same names, the same derivatives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cases.backends import numpy_ops, torch_modules
from cases.config import RunConfig
from cases.faults import train
from diagnostics import activations, adapters, inputs, losses, probe, reference
from diagnostics.checks import data, outputs, units

RNG = np.random.default_rng(0)
Z = RNG.standard_normal((6, 4)) * 3
INDEX_LOSSES = ("cross_entropy", "hinge")   # the numpy losses whose y is class indices


def torch_activation(name: str, slope: float):
    module = torch_modules.activation_module(name, slope)
    return (lambda z: z) if module is None else module


@pytest.mark.parametrize("name", list(numpy_ops.ACTIVATIONS))
def test_each_numpy_activation_and_backward_match_torch_autograd(name):
    slope = 0.2
    z = torch.tensor(Z, requires_grad=True)
    g = RNG.standard_normal(Z.shape)
    h = torch_activation(name, slope)(z)
    h.backward(torch.tensor(g))
    h_np = numpy_ops.activate(name, Z, slope)
    np.testing.assert_allclose(h_np, h.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(numpy_ops.activation_backward(name, Z, h_np, g, slope),
                               z.grad.numpy(), rtol=1e-10, atol=1e-12)


def loss_inputs(name: str):
    out = numpy_ops.activate("sigmoid", Z, 0.0) if name == "bce" else Z
    y = RNG.integers(0, Z.shape[1], len(Z)) if name in INDEX_LOSSES else RNG.random(Z.shape)
    return out, y


@pytest.mark.parametrize("name", numpy_ops.LOSSES)
def test_each_numpy_loss_and_gradient_match_the_diagnostics_torch_loss(name):
    out, y = loss_inputs(name)
    t = torch.tensor(out, requires_grad=True)
    L = losses.torch_loss(name)(t, torch.tensor(y))   # hinge: margin 1, as numpy_ops
    L.backward()
    L_np, grad = numpy_ops.loss_and_grad(name, out, y)
    assert float(L_np) == pytest.approx(L.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "identity"])
def test_the_numpy_backward_and_the_diagnostics_slope_agree(name):
    """Two definitions on purpose (diagnostics never imports cases): held to each other."""
    h = numpy_ops.activate(name, Z)
    np.testing.assert_allclose(numpy_ops.activation_backward(name, Z, h, np.ones_like(Z)),
                               activations.ACTIVATIONS[name].slope_of_output(h), rtol=1e-15)


def test_every_numpy_name_is_in_the_torch_side_tables():
    assert set(numpy_ops.ACTIVATIONS) <= set(activations.ACTIVATIONS)
    assert set(numpy_ops.LOSSES) <= set(losses.KINDS)
    assert set(losses.plain_losses()) == set(losses.KINDS)
    assert {n for n in numpy_ops.LOSSES if losses.KINDS[n] == "class_index"} == set(INDEX_LOSSES)


def test_the_loss_kinds_are_read_not_copied():
    for consumer in (units, outputs, data, adapters):
        assert consumer.REGRESSION_LOSSES is losses.REGRESSION_LOSSES, consumer.__name__
    for consumer in (probe, reference, inputs, adapters):
        assert consumer.CLASS_INDEX_LOSSES is losses.CLASS_INDEX_LOSSES, consumer.__name__
    assert set(losses.REGRESSION_LOSSES + losses.CLASS_INDEX_LOSSES + losses.BINARY_LOSSES) \
        == set(losses.NAMED)


def test_a_name_the_table_lacks_is_refused_with_what_is_accepted():
    for call in (lambda: numpy_ops.activate("swish", Z),
                 lambda: numpy_ops.activation_backward("swish", Z, Z, Z),
                 lambda: numpy_ops.loss_and_grad("l2", Z, Z)):
        with pytest.raises(ValueError, match="unknown; accepted: .*'(relu|mse)'"):
            call()
    with pytest.raises(ValueError, match="accepted"):
        RunConfig(data="sin_points", sizes=(1, 3, 1), activation="swish")


def test_the_fault_programs_take_their_losses_from_the_diagnostics_table():
    assert all(train.LOSSES[n] is losses.plain_losses()[n] for n in train.LOSSES)
