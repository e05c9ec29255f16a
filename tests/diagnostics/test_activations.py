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
