"""Seeds 000 and 004 beyond their threshold: the mechanism each case claims.

spiral-capacity: the plateau is a capacity limit, not a matter of time (10x
the steps stay on the failing side) and width fixes it (the post's own [64, 64]
too); the diagnosis holds on every seed that has reached its plateau by step
1000, 10 of seeds 0-11. sigmoid-head-labels: a sigmoid head cannot say 2, so
every label-2 point keeps an error above 1 and the net settles on the mean
label; softmax cross-entropy does say 2. Numbers quoted are measured on numpy
(torch gives the same digits).
"""

import numpy as np
import pytest

from cases import sigmoid_head_labels, spiral_capacity
from cases.case import diagnose_result

SPIRAL = spiral_capacity.CASE
LABELS = sigmoid_head_labels.CASE
SEEDS = (0, 1, 2)

# spiral-capacity
MORE_STEPS = 10            # 10x the documented 1000 steps: test MSE 0.012-0.025 (seeds 0-5)
FEW_MORE_STEPS = 3         # the default suite's cheap version: 0.0154 (seed 0)
DIAGNOSED_SEEDS = 10       # of seeds 0-11, low-capacity fires at step 1000 on 10 (not 2 and 8)
STILL_FALLING = 0.1        # seeds 2 and 8 drop 30% and 27% over the last 200 steps; plateaus <6%
WINDOW = 200               # diagnose's plateau window: the last 200 steps

# sigmoid-head-labels
LABEL_TWO = 2
SIGMOID_CEILING = 1.0      # a sigmoid's supremum: the largest output measured is 0.991 (seed 2)
NEAR_CONSTANT = 0.05       # failing cost within 5% of the constant predictor's: 0.97-1.006x
SAYS_TWO = 0.3             # the fix predicts 2 for 49-75% of label-2 points (seeds 0-9)


def seed_params(seeds=SEEDS):
    """The first seed in the default run, the others slow."""
    return [pytest.param(s, id=f"seed{s}", marks=[pytest.mark.slow] if k else [])
            for k, s in enumerate(seeds)]


@pytest.fixture
def labels_run(case_run):
    """``labels_run(run_name, seed, backend="numpy")``: the case's run, as test_cases.py trained it
    (the session's run cache: tests/case_runs.py)."""
    return lambda run_name, seed, backend="numpy": case_run(LABELS, run_name, backend, seed)


def predicted_classes(result) -> np.ndarray:
    out = result.predict(result.data.X)
    return out.argmax(axis=1) if out.shape[1] > 1 else np.rint(out[:, 0]).astype(int)


# ------------------------------------------------------------------ spiral-capacity
def test_three_times_the_steps_stay_on_the_plateau():
    result = SPIRAL.run("failing", "numpy", 0, steps=FEW_MORE_STEPS * SPIRAL.failing.steps)
    assert SPIRAL.failed_when.holds(result.test_loss), result.test_loss


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_ten_times_the_steps_do_not_fix_the_bottleneck(seed):
    result = SPIRAL.run("failing", "numpy", seed, steps=MORE_STEPS * SPIRAL.failing.steps)
    assert SPIRAL.failed_when.holds(result.test_loss), result.test_loss


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_the_posts_64x64_width_fits_too(seed):
    """CASES.md's [64, 64]: 9e-6 / 1.8e-4 / 6e-6 at 1000 steps (seeds 0-2)."""
    result = SPIRAL.run("failing", "numpy", seed, sizes=(2, 64, 64, 2))
    assert SPIRAL.fixed_when.holds(result.test_loss), result.test_loss


def falling_share(history: np.ndarray) -> float:
    """How much the loss fell over the last WINDOW steps, as a share of where it started."""
    return float((history[-WINDOW] - history[-1]) / history[-WINDOW])


@pytest.mark.slow
def test_plateau_diagnosed_on_10_of_12_seeds_and_every_miss_still_falls():
    diagnosed = 0
    for seed in range(12):
        result = SPIRAL.run("failing", "numpy", seed)
        assert SPIRAL.failed_when.holds(result.test_loss), (seed, result.test_loss)
        if SPIRAL.expected_codes <= diagnose_result(result).codes:
            diagnosed += 1
        else:
            assert falling_share(result.history) > STILL_FALLING, f"seed {seed} missed on a plateau"
    assert diagnosed == DIAGNOSED_SEEDS


# -------------------------------------------------------------- sigmoid-head-labels
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_sigmoid_head_never_reaches_label_two(seed, labels_run):
    result = labels_run("failing", seed)
    out, y = result.predict(result.data.X)[:, 0], result.data.y
    assert out.max() < SIGMOID_CEILING
    assert np.all(np.abs(out[y == LABEL_TWO] - LABEL_TWO) > 1)     # every label-2 point stays wrong
    assert not np.any(predicted_classes(result) == LABEL_TWO)


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_sigmoid_head_settles_on_the_mean_label(seed, labels_run):
    """The cost flattens at the constant predictor's: output ~1 = the mean label everywhere."""
    result = labels_run("failing", seed)
    y = result.data.y.astype(float)
    constant = 0.5 * np.mean((y - y.mean()) ** 2)
    assert abs(result.train_loss / constant - 1) < NEAR_CONSTANT, (result.train_loss, constant)
    assert np.all(predicted_classes(result) == round(y.mean()))


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_softmax_cross_entropy_predicts_label_two(seed, labels_run):
    result = labels_run("softmax-cross-entropy", seed)
    said_two = predicted_classes(result)[result.data.y == LABEL_TWO] == LABEL_TWO
    assert said_two.mean() > SAYS_TWO, said_two.mean()


@pytest.mark.parametrize("seed", seed_params())
def test_torch_head_agrees_with_numpy(seed, labels_run):
    """Both backends start from the same randn weights and end at the same outputs."""
    for run_name in LABELS.runs:
        a, b = labels_run(run_name, seed), labels_run(run_name, seed, "torch")
        np.testing.assert_allclose(a.predict(a.data.X), b.predict(b.data.X), atol=1e-6)
