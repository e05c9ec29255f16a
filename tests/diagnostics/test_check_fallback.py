"""diagnostics/checks/fallback.py: learned-nothing, for a run that learned nothing and no other
check names why: labels shuffled apart from X, and XOR's plateau.
"""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from diagnostics import diagnose

from diagnose_helpers import LOOPS, SEEDS, digits_tensors, finding, relu_net, train


def shuffled_labels_run(seed: int):
    """The loop digits-batch-32-adam (diagnose_helpers.LOOPS) trained on y shuffled without X;
    the model is diagnosed on X and its own labels."""
    _, _, make_opt, steps, batch = LOOPS["digits-batch-32-adam"]
    X, y = digits_tensors()
    y_train = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(100 + seed))]
    torch.manual_seed(seed)
    model = relu_net(64, 10)
    history = train(model, X, y_train, F.cross_entropy, make_opt(model.parameters()), steps,
                    batch=batch, seed=seed)
    return model, X, y, history


@pytest.mark.parametrize("seed", SEEDS)
def test_a_run_on_labels_shuffled_apart_from_x_learned_nothing(loop_run, seed):
    model, X, y, history = shuffled_labels_run(seed)
    report = diagnose(model, X, y, loss="cross_entropy", history=history)
    f = finding(report, "learned-nothing")
    assert f.evidence["loss_ratio"] >= 0.9
    assert not [g for g in report.findings if g.severity == "error"]
    assert "learned-nothing" not in diagnose(model, X, y, loss="cross_entropy").codes  # no history
    model, X, y, _, history, _ = loop_run("digits-batch-32-adam", seed)    # the same loop on y
    assert diagnose(model, X, y, loss="cross_entropy", history=history).codes == set()


def xor_run(seed: int):
    """The 2-2-1 sigmoid XOR net under full-batch SGD: some seeds sit on the 0.25 plateau."""
    X = torch.tensor([[0.0, 0], [0, 1], [1, 0], [1, 1]])
    y = torch.tensor([[0.0], [1], [1], [0]])
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1), nn.Sigmoid())
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    history = train(model, X, y, F.mse_loss, opt, 2000)
    return history, diagnose(model, X, y, history=history, optimizer=opt)


def test_a_run_still_creeping_on_a_plateau_is_told_to_cross_it_not_to_check_its_data():
    runs = [xor_run(seed) for seed in range(6)]
    stuck = [report for history, report in runs if report.summary["loss_value"] >= 0.9 * 0.25]
    assert len(stuck) >= 2                      # measured: 2 of 6 seeds
    for report in stuck:
        f = finding(report, "learned-nothing")
        assert f.evidence["history_improving"] is True
        assert "plateau" in f.message and "widen" in f.fix and "shuffled" not in f.fix
    fitted = [report for history, report in runs if report.summary["loss_value"] < 0.05]
    assert fitted and all("learned-nothing" not in report.codes for report in fitted)
