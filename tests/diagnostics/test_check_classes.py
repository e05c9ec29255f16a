"""diagnostics/checks/classes.py: single-class-output, on batches sorted by label.
"""

import pytest
import torch
from torch.nn import functional as F

from diagnostics import diagnose

from diagnose_helpers import SEEDS, digits_tensors, finding, relu_net


def sorted_run(seed: int, shuffle: bool):
    """Five epochs of batches of 32 over digits sorted by label, in order unless shuffled."""
    X, y = digits_tensors()
    order = torch.argsort(y, stable=True)
    torch.manual_seed(seed)
    model = relu_net(64, 10)
    opt, history = torch.optim.SGD(model.parameters(), lr=0.1), []
    for _ in range(5):
        if shuffle:
            order = order[torch.randperm(len(order))]
        for i in range(0, len(order), 32):
            rows = order[i:i + 32]
            opt.zero_grad()
            loss = F.cross_entropy(model(X[rows]), y[rows])
            loss.backward()
            opt.step()
            history.append(loss.item())
    return diagnose(model, X, y, loss="cross_entropy", history=history, optimizer=opt)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_classifier_trained_on_label_sorted_batches_answers_the_last_class(seed):
    f = finding(sorted_run(seed, shuffle=False), "single-class-output")
    assert f.evidence["most_predicted_class"] == 9
    assert f.evidence["its_share_of_predictions"] >= 0.95 and f.evidence["loss_ratio"] > 1
    assert "single-class-output" not in sorted_run(seed, shuffle=True).codes
