"""Seed 003 beyond its two cases: the report's grid, the batch-size comparison, Euclidean at lr 1.

The grid is the report's basic experiment: 0/1/2 hidden layers of 100 units x
Sigmoid/ReLU/GeLU x Euclidean/SoftmaxCE/Hinge at SGD lr 1e-2, batch 10: the case's
own ``sweeps["grid"]``, which the report's table draws, so the test checks what it shows. The full grid at the report's 50 epochs is slow; the default suite keeps
the cheap part that tells the story (2 Sigmoid layers: Hinge learns where
SoftmaxCE and Euclidean do not). Numbers quoted are test accuracies on the 8x8
digits stand-in (numpy), measured over seeds 0-2.
"""

import numpy as np
import pytest

from cases.backends.schedule import batch_schedule
from cases.case import diagnose_result
from cases.digits_course import CASE, GRID_EPOCHS
from cases.runner import load_data, run

REPORT_EPOCHS = GRID_EPOCHS   # the report's max_epoch
SEEDS = (0, 1, 2)
# The report: every cell trains except 2_Sigmoid_SoftmaxCE and 2_Sigmoid_Euclidean.
UNTRAINABLE = {(2, "sigmoid", "SoftmaxCE"), (2, "sigmoid", "Euclidean")}
STUCK_50 = 0.7                # 50 epochs, untrainable cells: worst 0.526 (Euclidean, seed 1)
TRAINS_50 = 0.8               # 50 epochs, every other cell: worst 0.866 (1 Sigmoid SoftmaxCE, seed 2)
NEAR_CHANCE = 0.3             # 10 epochs, 2 Sigmoid CE/Euclidean: worst 0.242 (Euclidean, seed 0)
HINGE_LEARNS = 0.35           # 10 epochs, 2 Sigmoid Hinge: worst 0.418 (seed 2)
ROUGHER = 5.0                 # batch 10's loss trace at least 5x rougher than batch 200's
COMPARED_STEPS = 300          # the report zooms in on the first 300 steps


GRID = dict(CASE.sweeps["grid"].points)   # the report table's cells: (depth, activation, loss
                                            # name) -> its changes of the failing run


def grid_cells():
    return list(GRID)


def cell_accuracy(depth, activation, loss_name, seed, epochs=CASE.failing.epochs) -> float:
    changes = GRID[(depth, activation, loss_name)]
    return run(CASE.config("failing", "numpy", seed).replace(**{**changes, "epochs": epochs})
               ).test_acc


@pytest.mark.slow
@pytest.mark.parametrize("depth,activation,loss_name", list(grid_cells()),
                         ids=[f"{d}-{a}-{n}" for d, a, n in grid_cells()])
def test_report_grid_pattern_after_50_epochs(depth, activation, loss_name):
    accs = [cell_accuracy(depth, activation, loss_name, s, epochs=REPORT_EPOCHS) for s in SEEDS]
    if (depth, activation, loss_name) in UNTRAINABLE:
        assert max(accs) < STUCK_50, f"documented as untrainable, reached {accs}"
    else:
        assert min(accs) > TRAINS_50, f"documented as training, reached only {accs}"


@pytest.mark.parametrize("seed", [pytest.param(0, id="seed0"),
                                  *(pytest.param(s, id=f"seed{s}", marks=pytest.mark.slow)
                                    for s in SEEDS[1:])])
def test_two_sigmoid_layers_learn_with_hinge_only(seed):
    """The report: 2_Sigmoid_Hinge trains, 2_Sigmoid_SoftmaxCE and 2_Sigmoid_Euclidean do not."""
    hinge = cell_accuracy(2, "sigmoid", "Hinge", seed)
    euclidean = cell_accuracy(2, "sigmoid", "Euclidean", seed)
    assert hinge > HINGE_LEARNS and euclidean < NEAR_CHANCE, (hinge, euclidean)


@pytest.mark.parametrize("seed", [pytest.param(0, id="seed0"),
                                  *(pytest.param(s, id=f"seed{s}", marks=pytest.mark.slow)
                                    for s in SEEDS[1:])])
def test_euclidean_at_lr_1_stays_at_chance_with_saturated_sigmoids(seed):
    """The report: raising the lr trains 2_Sigmoid_SoftmaxCE but not 2_Sigmoid_Euclidean.

    Measured: 0.100 / 0.106 / 0.095, no overflow (the loss stays finite near a constant
    predictor's); the sigmoids saturate, which diagnose() names.
    """
    result = CASE.run("lr-1", "numpy", seed, loss="half_mse")
    assert result.test_acc < NEAR_CHANCE and not result.diverged
    assert "saturated-activation" in diagnose_result(result).codes


def roughness(h: np.ndarray) -> float:
    """Total variation of a loss trace over its overall drop: 1 for a monotone descent."""
    return float(np.sum(np.abs(np.diff(h))) / max(h[0] - h.min(), 1e-12))


@pytest.mark.parametrize("run_name,loss", [("lr-1", "cross_entropy"), ("failing", "half_mse")],
                         ids=["2-sigmoid-softmax-lr1", "2-sigmoid-euclidean-lr0.01"])
def test_batch_200_steps_fewer_times_per_epoch_with_a_smoother_trace(run_name, loss):
    """The report (2.3): batch 200 runs 20x fewer steps per MNIST epoch (60000 images) and its
    loss curve over the first 300 steps wobbles less than batch 10's. Here 1438 images: 144
    steps per epoch against 8 (18x). Wall time is not compared: it depends on the machine."""
    cfg = CASE.config(run_name, "numpy", 0, loss=loss, epochs=1)
    n = len(load_data(cfg)[1])
    steps_10 = batch_schedule(n, cfg.replace(batch_size=10))[0]
    steps_200 = batch_schedule(n, cfg.replace(batch_size=200))[0]
    assert (steps_10, steps_200) == (-(-n // 10), -(-n // 200)) and steps_10 >= 18 * steps_200
    traces = {b: run(cfg.replace(batch_size=b, epochs=None, steps=COMPARED_STEPS)).history
              for b in (10, 200)}
    assert len(traces[10]) == len(traces[200]) == COMPARED_STEPS
    assert roughness(traces[10]) > ROUGHER * roughness(traces[200]), \
        {b: roughness(h) for b, h in traces.items()}
