"""diagnostics/checks/forward.py: random-forward, a model whose eval-mode outputs change from one
call to the next: F.dropout(h, p) in forward (its training argument defaults to True), trained
over three seeds as people write it, beside the same model with training=self.training."""

import functools

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from diagnostics import diagnose
from diagnostics.checks.forward import REPEATABLE

from diagnose_helpers import SEEDS, digits_tensors, finding, train


class DropoutNet(nn.Module):
    """64-64-10 relu with F.dropout after the hidden layer; ``in_eval``: the bug (no training=)."""
    def __init__(self, in_eval: bool):
        super().__init__()
        self.hidden, self.out, self.in_eval = nn.Linear(64, 64), nn.Linear(64, 10), in_eval

    def forward(self, x):
        h = F.relu(self.hidden(x))
        h = F.dropout(h, 0.5) if self.in_eval else F.dropout(h, 0.5, training=self.training)
        return self.out(h)


@functools.lru_cache(maxsize=None)
def dropout_run(in_eval: bool, seed: int):
    X, y = digits_tensors()
    torch.manual_seed(seed)
    model = DropoutNet(in_eval)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = train(model, X, y, F.cross_entropy, opt, 300, 32, seed=seed)
    return model, diagnose(model, X, y, loss="cross_entropy", history=history, optimizer=opt)


@pytest.mark.parametrize("seed", SEEDS)
def test_f_dropout_left_on_in_eval_is_named_first(seed):
    model, report = dropout_run(True, seed)
    X, _ = digits_tensors()
    with torch.no_grad():                      # what the rule reads: two calls, two answers
        assert not torch.equal(model.eval()(X), model(X))
    f = finding(report, "random-forward")
    assert report.causes[0].code == "random-forward", str(report)
    assert f.evidence["repeat_change"] > 100 * REPEATABLE
    assert "training=self.training" in f.fix
    _, healthy = dropout_run(False, seed)
    assert "random-forward" not in healthy.codes and not healthy.errors, str(healthy)
