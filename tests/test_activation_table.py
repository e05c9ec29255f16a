"""Issue 23: one table of activations (diagnostics/activations.py) that every consumer reads."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cases.backends import numpy_ops, torch_modules
from cases.faults import train
from cases.report import casefigs
from diagnostics import activations
from diagnostics.checks import outputs, units

TABLE = activations.ACTIVATIONS
watch = importlib.import_module("diagnostics.watch")   # the package exports watch() by this name


def test_the_numpy_definitions_cover_the_same_names_as_the_table():
    names = set(numpy_ops.HIDDEN_ACTIVATIONS) | set(numpy_ops.OUTPUT_ACTIVATIONS)
    assert names <= set(TABLE)
    assert set(torch_modules.BACKEND_NAMES) | {"identity"} == names


@pytest.mark.parametrize("name", sorted(set(torch_modules.BACKEND_NAMES)))
def test_the_torch_backend_builds_the_tables_module(name):
    assert type(torch_modules.activation_module(name)) is TABLE[name].module
    assert activations.module_kind(torch_modules.activation_module(name)) == name


def test_every_consumer_reads_the_table_not_a_copy():
    assert units.SATURATION_BANDS is activations.SATURATION_BANDS
    assert watch.DEAD_KINDS is activations.DEAD_KINDS
    assert outputs.HEAD_RANGES is activations.HEAD_RANGES
    assert casefigs.ACTIVATION_COLORS is activations.COLOURS
    assert all(train.ACTIVATIONS[n] is TABLE[n].module for n in train.ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(n for n in TABLE if TABLE[n].output_range != (
    -activations.INF, activations.INF) and n not in ("softmax", "log_softmax")))
def test_each_output_range_holds_what_the_module_outputs(name):
    lo, hi = TABLE[name].output_range
    h = TABLE[name].module()(torch.linspace(-30, 30, 601, dtype=torch.float64))
    assert float(h.min()) >= lo - 1e-12 and float(h.max()) <= hi + 1e-12


@pytest.mark.parametrize("name", ["relu", "relu6", "gelu", "sigmoid", "tanh", "elu"])
def test_dead_means_a_zero_slope_so_gelu_is_never_dead(name):
    """The one definition of a dead unit: z at or under the table's dead_below, where the slope
    is exactly 0. GELU's slope is small below -3 but never 0, so a GELU unit is never dead: the
    check, the layer figure and watch count the same units (issue 23: they disagreed on GELU)."""
    z = torch.full((8, 3), -4.0, dtype=torch.float64, requires_grad=True)
    TABLE[name].module()(z).sum().backward()
    exactly_flat = bool((z.grad == 0).all())
    assert (TABLE[name].dead_below is not None) == exactly_flat


def test_a_gelu_layer_far_below_zero_counts_no_dead_units_in_check_or_figure():
    pre = np.full((10, 4), -5.0)   # silent_units reads a layer's activation and pre only
    assert units.silent_units(SimpleNamespace(activation="gelu", pre=pre)) is None
    assert units.silent_units(SimpleNamespace(activation="relu", pre=pre)) == 4


@pytest.mark.parametrize("name", sorted(n for n in TABLE if TABLE[n].slope_of_output))
def test_each_slope_read_off_the_output_is_the_modules_derivative(name):
    z = torch.linspace(-4, 4, 81, dtype=torch.float64, requires_grad=True)
    h = TABLE[name].module()(z)
    h.sum().backward()
    slope = TABLE[name].slope_of_output(h.detach().numpy())
    np.testing.assert_allclose(slope, z.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n in TABLE if TABLE[n].slope_of_output))
def test_each_peak_slope_is_the_largest_slope_the_module_has(name):
    z = torch.linspace(-6, 6, 1201, dtype=torch.float64, requires_grad=True)
    TABLE[name].module()(z).sum().backward()
    assert TABLE[name].peak_slope == pytest.approx(float(z.grad.max()), abs=1e-9)


@pytest.mark.parametrize("name", sorted(activations.SATURATION_BANDS))
def test_pass_through_is_the_tables_slope_as_a_share_of_its_peak(name):
    """units.pass_through reads the table: a layer at z = 0 passes all, one at |z| = 8 ~none."""
    at = lambda z: SimpleNamespace(activation=name, post=TABLE[name].module()(  # noqa: E731
        torch.full((6, 3), z, dtype=torch.float64)).numpy())
    assert units.pass_through(at(0.0)) == pytest.approx(1.0)
    assert units.pass_through(at(8.0)) < units.FULLY_SATURATED
    layer = at(1.5)
    expected = np.mean(TABLE[name].slope_of_output(layer.post)) / TABLE[name].peak_slope
    assert units.pass_through(layer) == pytest.approx(expected, rel=1e-12)
