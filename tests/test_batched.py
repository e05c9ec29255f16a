"""run_batched: K models at once, each equal to its own sequential run."""

import numpy as np
import pytest

from cases import digits_course, sin_activations, sin_deep_collapse, spiral_capacity
from cases import batched
from cases.batched import batch_groups, run_batched, run_many
from cases.backends.numpy_ops import activate, activation_backward
from cases.config import RunConfig
from cases.runner import run

# seed 002's net: 41 points, full batch, summed-loss gradient, all-positive init, lr decay
SEED_002 = RunConfig(data="sin_grid", sizes=(1, 4, 2, 2, 1),
                     activation=("leaky_relu", "sigmoid", "sigmoid"), out_activation="sigmoid",
                     init="uniform01", lr=0.3, lr_decay=0.999, lr_decay_every=100, steps=400,
                     mean_gradient=False, leaky_slope=0.1)
DIGITS = RunConfig(data="digits", sizes=(64, 16, 16, 10), activation="relu",
                   loss="cross_entropy", lr=0.05, batch_size=10, steps=40, hinge_margin=5.0)
SIN_DEEP = sin_deep_collapse.FAILING.replace(steps=100)   # float32, one sample per step, Adam
SWEEPS = {
    "seed002-seeds-lrs-activations": [SEED_002.replace(seed=s, lr=lr) for s in (0, 1, 2)
                                      for lr in (0.3, 0.9)]
    + [SEED_002.replace(activation="tanh", seed=3), SEED_002.replace(activation="relu", seed=4),
       SEED_002.replace(leaky_slope=0.3, seed=5, lr_decay_every=7)],
    "seed002-layerwise-update": [SEED_002.replace(layerwise_update=True, seed=s, lr=lr)
                                 for s, lr in ((0, 0.3), (1, 0.1))],
    "spiral-adamw-momentumless": [RunConfig(data="spiral_map", sizes=(2, 4, 3, 2),
                                            activation="leaky_relu", out_activation="tanh",
                                            optimizer="adamw", lr=lr, weight_decay=0.01,
                                            steps=60, seed=s)
                                  for s, lr in ((0, 1e-2), (1, 3e-2))],
    "digits-cross-entropy-momentum": [RunConfig(data="digits", sizes=(64, 16, 10), activation=a,
                                                loss="cross_entropy", lr=0.1, momentum=0.9,
                                                steps=15, seed=s)
                                      for s, a in ((0, "relu"), (1, "gelu"))],
    # softmax sums over classes, elu/gelu take the backend's own functions, a width-1 hidden
    # layer sums single columns, and a width-8 layer goes through BLAS: every path of the step
    # minibatches: each model its own rows (seeds differ) under its own loss and activation
    "digits-minibatch-seeds-losses-activations": [
        DIGITS.replace(seed=s, loss=loss, activation=a)
        for s, loss, a in ((0, "half_mse", "sigmoid"), (1, "cross_entropy", "relu"),
                           (2, "hinge", "gelu"), (0, "mse", "tanh"), (1, "hinge", "sigmoid"),
                           (2, "cross_entropy", "sigmoid"))],
    "digits-minibatch-one-seed": [DIGITS.replace(lr=lr, loss=loss, activation=a)     # one gather
                                  for lr, loss, a in ((0.01, "half_mse", "sigmoid"),
                                                      (0.1, "cross_entropy", "relu"),
                                                      (0.02, "hinge", "relu"))],
    # 1438 rows in batches of 400: the fourth of every epoch has 238, and the summed-loss
    # gradient scales by the batch's own size
    "digits-last-partial-batch-summed-gradient": [
        DIGITS.replace(batch_size=400, steps=None, epochs=2, mean_gradient=False, lr=1e-4,
                       seed=s, loss=loss) for s, loss in ((0, "cross_entropy"), (1, "hinge"),
                                                          (0, "half_mse"))],
    "digits-minibatch-momentum-weight-decay": [
        DIGITS.replace(momentum=0.9, weight_decay=1e-3, seed=s, loss=loss)
        for s, loss in ((0, "hinge"), (1, "cross_entropy"))],
    # float32 runs: each model's lr and leaky slope enter its update in float32, as its run's
    "sin-per-sample-float32-adam": [SIN_DEEP.replace(seed=s, lr=lr, activation=a)
                                    for s, lr, a in ((0, 0.1, "relu"), (10, 0.01, "relu"),
                                                     (0, 0.1, "leaky_relu"))],
    "sin-per-sample-float32-adamw": [SIN_DEEP.replace(optimizer="adamw", weight_decay=0.01,
                                                      seed=s, lr=lr)
                                     for s, lr in ((0, 0.1), (1, 0.02))],
    "sin-per-sample-float32-sgd": [SIN_DEEP.replace(optimizer="sgd", seed=s, lr=lr)
                                   for s, lr in ((0, 0.1), (1, 0.02))],
    "noisy-spiral-bce-mse-minibatch": [
        RunConfig(data="noisy_spiral3", sizes=(2, 8, 1), activation="sigmoid",
                  out_activation="sigmoid", loss=loss, targets="value", batch_size=32, steps=40,
                  lr=0.3, seed=s)
        for s, loss in ((0, "bce"), (1, "mse"), (2, "bce"), (0, "half_mse"))],
    "sin-mixed-activations-half-mse-adam": [
        RunConfig(data="sin_points", sizes=(1, 8, 1, 3), activation=a, out_activation=o,
                  loss="half_mse", optimizer="adam", lr=0.02, steps=40, seed=s)
        for s, a, o in ((0, "elu", "softmax"), (1, "gelu", "softmax"), (2, "tanh", "sigmoid"),
                        (3, "sigmoid", "identity"))],
}


def assert_same_run(batched_result, sequential_result):
    __tracebackhide__ = True
    b, s = batched_result, sequential_result
    np.testing.assert_array_equal(b.history, s.history)
    assert b.curve.keys() == s.curve.keys()
    for key in s.curve:                # a diverging run's last points may be nan: equal as such
        np.testing.assert_array_equal(b.curve[key], s.curve[key])
    for Wb, Ws in zip(b.model.parameters(), s.model.parameters()):
        np.testing.assert_array_equal(Wb, Ws)
    assert (b.diverged, b.train_acc) == (s.diverged, s.train_acc)


@pytest.mark.parametrize("sweep", list(SWEEPS), ids=list(SWEEPS))
def test_each_model_equals_its_sequential_run(sweep):
    configs = SWEEPS[sweep]
    for b, cfg in zip(run_batched(configs), configs):
        assert_same_run(b, run(cfg))


def test_the_chaotic_seed_002_trace_keeps_its_bits_over_thousands_of_steps():
    # one ulp in the initial weights grows to 1e-11 by step 1000 and O(1) by step 40000:
    # the 40000-step sweep is equal to 1e-10 only if every step gives the same bits
    configs = [SEED_002.replace(seed=s, steps=4000) for s in (0, 7)]
    for b, cfg in zip(run_batched(configs), configs):
        seq = run(cfg)
        np.testing.assert_array_equal(b.history, seq.history)
        for Wb, Ws in zip(b.model.parameters(), seq.model.parameters()):
            np.testing.assert_array_equal(Wb, Ws)


def test_a_diverging_model_stops_where_its_run_stops_and_the_others_go_on():
    configs = [SEED_002.replace(activation="identity", out_activation="identity", lr=40.0),
               SEED_002.replace(seed=1)]
    results = run_batched(configs)
    assert results[0].diverged and not results[1].diverged
    for b, cfg in zip(results, configs):
        seq = run(cfg)
        assert len(b.history) == len(seq.history)
        np.testing.assert_array_equal(b.history, seq.history)


def test_a_diverging_model_of_a_minibatch_stack_stops_where_its_run_stops():
    configs = [DIGITS.replace(activation="identity", lr=1.0, loss="half_mse"),
               DIGITS.replace(seed=1, loss="hinge"),
               DIGITS.replace(activation="identity", lr=0.5, loss="half_mse", seed=2)]
    results = run_batched(configs)
    assert [r.diverged for r in results] == [True, False, True]
    for b, cfg in zip(results, configs):
        assert_same_run(b, run(cfg))


# ------------------------------------------------------------------ groups
def test_the_digits_grid_trains_as_one_stack_per_depth():
    grid = digits_course.CASE.sweeps["grid"].configs(digits_course.CASE.config())
    assert [[len(grid[i].sizes) for i in g] for g in batch_groups(grid)] == \
        [[2] * 3, [3] * 9, [4] * 9]


def test_the_grids_two_layer_stack_gives_each_cell_its_run():
    # three activations x three losses, the hinge at the course's margin 5, one seed
    grid = digits_course.CASE.sweeps["grid"].configs(digits_course.CASE.config(), epochs=None,
                                                      steps=6)
    deepest = [c for c in grid if len(c.sizes) == 4]
    for b, cfg in zip(run_many(deepest), deepest):
        assert_same_run(b, run(cfg))


@pytest.mark.slow
def test_the_whole_digits_grid_trains_bit_for_bit_for_an_epoch():
    grid = digits_course.CASE.sweeps["grid"].configs(digits_course.CASE.config(), epochs=1)
    for b, cfg in zip(run_many(grid), grid):
        assert_same_run(b, run(cfg))


def runs_of(case, names=None) -> list:
    return [case.CASE.config(r, "numpy", s) for r in names or case.CASE.runs
            for s in case.CASE.seeds]


@pytest.mark.parametrize("configs, sizes", [
    (runs_of(digits_course), [9]),                     # batch 10, three seeds, two activations
    (runs_of(sin_activations), [6]),                   # one sample per step, float32
    (runs_of(sin_deep_collapse), [9, 3]),              # Adam's runs, and SGD's
    (runs_of(spiral_capacity), [1] * 6),               # 2000 rows a step: alone
    ([digits_course.CASE.config("relu", batch_size=b) for b in (200, 200)], [1, 1]),
], ids=["digits-course", "sin-activations", "sin-deep-collapse", "spiral", "digits-batch-200"])
def test_runs_stack_where_it_pays(configs, sizes):
    assert sorted(len(g) for g in batch_groups(configs)) == sorted(sizes)


def test_run_many_keeps_the_order_and_trains_a_repeated_config_once():
    configs = [DIGITS.replace(steps=5), DIGITS.replace(steps=5, seed=1),
               SEED_002.replace(steps=20), DIGITS.replace(steps=5),
               DIGITS.replace(steps=5, batch_size=400)]
    results = run_many(configs, record_curve=False)
    assert results[0] is results[3]
    for b, cfg in zip(results, configs):
        seq = run(cfg)
        assert b.config == cfg and b.curve == {"step": [], "train": [], "test": []}
        np.testing.assert_array_equal(b.history, seq.history)
        for Wb, Ws in zip(b.model.parameters(), seq.model.parameters()):
            np.testing.assert_array_equal(Wb, Ws)


@pytest.mark.parametrize("name", ["leaky_relu", "sigmoid", "relu", "tanh"])
@pytest.mark.parametrize("slope", [0.01, 0.1, 0.3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_cheaper_activation_ops_give_numpy_mlps_bits(name, slope, dtype):
    z = np.concatenate([np.random.default_rng(0).standard_normal(1000) * 5,
                        [0.0, -0.0, np.inf, -np.inf, 1e-310, -1e-310]]).astype(dtype)
    with np.errstate(all="ignore"):
        h = activate(name, z, slope)
        np.testing.assert_array_equal(batched.activate_fast(name, z, slope), h)
        assert batched.activate_fast(name, z, slope).dtype == h.dtype
        g = np.random.default_rng(1).standard_normal(len(z)).astype(dtype)
        np.testing.assert_array_equal(batched.activation_backward_fast(name, z, h, g, slope),
                                      activation_backward(name, z, h, g, slope))


@pytest.mark.parametrize("width", [1, 2, 4, 5])
def test_the_bias_goes_in_as_in_one_models_forward_pass(width):
    rng = np.random.default_rng(4)
    z, b = rng.standard_normal((3, 41, width)), rng.standard_normal((3, width))
    expected = [z[k] + b[k] for k in range(3)]
    batched.add_bias(z, b)
    for k in range(3):
        np.testing.assert_array_equal(z[k], expected[k])


@pytest.mark.parametrize("shape", [(41, 1), (41, 2), (41, 4), (2000, 1), (7, 1), (1, 3)])
def test_sums_over_samples_take_each_models_own_order(shape):
    # numpy sums a lone column pairwise and a wider array row after row: each model must get
    # the order its own array gets, bit for bit
    x = np.random.default_rng(2).standard_normal((5,) + shape) ** 3
    summed = batched.sum_over_samples(x)
    for k in range(5):
        np.testing.assert_array_equal(summed[k], x[k].sum(axis=0))
    if shape in ((41, 1), (2000, 1)):   # the data tell the orders apart: the test can fail
        row_order = np.cumsum(x, axis=1)[:, -1]
        assert any(not np.array_equal(row_order[k], x[k].sum(axis=0)) for k in range(5))


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("change, field", [
    (dict(sizes=(1, 8, 2, 2, 1)), "sizes"),
    (dict(batch_size=10), "batch_size"),
    (dict(steps=10), "steps"),
    (dict(backend="torch"), "backend"),
    (dict(mean_gradient=True), "mean_gradient"),
], ids=["architecture", "batch_size", "steps", "backend", "mean_gradient"])
def test_mixed_setups_are_refused_naming_the_field(change, field):
    with pytest.raises(ValueError, match=rf"configs\[1\]\.{field} = .* but configs\[0\]\.{field}"):
        run_batched([SEED_002, SEED_002.replace(**change)])


@pytest.mark.parametrize("configs, error, match", [
    ([], TypeError, "non-empty sequence of RunConfig"),
    ([SEED_002, "seed 002"], TypeError, "non-empty sequence of RunConfig"),
    ([SEED_002.replace(backend="torch")], ValueError, "trains numpy configs"),
], ids=["empty", "not-a-config", "torch"])
def test_bad_input_is_refused_clearly(configs, error, match):
    with pytest.raises(error, match=match):
        run_batched(configs)
