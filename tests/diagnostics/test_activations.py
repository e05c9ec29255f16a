"""diagnostics/activations.py: activations recognised from their values.
"""

import numpy as np
import torch
from torch import nn

from diagnostics import diagnose


def test_a_linear_head_with_all_positive_outputs_is_read_as_identity_not_relu():
    """Targets far above zero (raw diabetes-style values ~150) make a linear head's outputs all
    positive; read from values alone that looks like a relu, but no function ran after it."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
    with torch.no_grad():
        net[2].bias.fill_(150.0)
    X = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    y = np.full(64, 150.0, dtype=np.float32)
    assert (net(torch.as_tensor(X)) > 0).all()
    activations = diagnose(net, X, y).to_dict()["summary"]["activations"]
    assert activations.split("/")[-1] == "identity", activations


class ReluByCall(nn.Module):
    """F.relu called inside forward: recognised from its values, not from a module."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 8), nn.Linear(8, 1)

    def forward(self, x):
        return self.b(torch.nn.functional.relu(self.a(x)))


def test_activations_of_a_diverged_net_are_unknown_not_guessed():
    """NaN weights make every pre-activation NaN; NaN matches every candidate's NaN, so the
    values name no function: 'unknown' (the first candidate used to be reported)."""
    torch.manual_seed(0)
    net = ReluByCall()
    with torch.no_grad():
        net.a.weight.fill_(float("nan"))
    X = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    activations = diagnose(net, X, X[:, 0].copy()).to_dict()["summary"]["activations"]
    assert activations.split("/")[0] == "unknown", activations


def test_a_relu_call_is_recognised_from_the_rows_that_stayed_finite():
    """One row of X is inf: the other rows still show relu."""
    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    with torch.no_grad():
        z = ReluByCall().a(torch.as_tensor(X))
    from diagnostics.activations import kind_from_values
    z[0, 0] = float("inf")
    assert kind_from_values(z, torch.relu(z)) == "relu"
    assert kind_from_values(torch.full((4, 8), float("nan")), torch.full((4, 8), float("nan"))) \
        == "unknown"


def test_one_column_of_zeros_from_negative_inputs_is_a_relu_not_a_log_softmax():
    """Over one column softmax is 1 and log_softmax 0 whatever z: where a relu also gives the 0
    (every z <= 0), the relu is read; where z is positive somewhere, only log_softmax fits."""
    from diagnostics.activations import kind_from_values
    z = -torch.rand(50, 1) - 0.01
    assert kind_from_values(z, torch.relu(z)) == "relu"
    mixed = torch.randn(50, 1)
    assert kind_from_values(mixed, torch.log_softmax(mixed, dim=1)) == "log_softmax"
    assert kind_from_values(mixed, torch.softmax(mixed, dim=1)) == "softmax"
    wide = torch.randn(50, 3)
    assert kind_from_values(wide, torch.log_softmax(wide, dim=1)) == "log_softmax"
