"""run_batched: K models at once, each equal to its own sequential run."""

import numpy as np
import pytest

from cases.backends import batched
from cases.backends.batched import run_batched
from cases.backends.numpy_ops import activate, activation_backward
from cases.config import RunConfig
from cases.runner import run

# seed 002's net: 41 points, full batch, summed-loss gradient, all-positive init, lr decay
SEED_002 = RunConfig(data="sin_grid", sizes=(1, 4, 2, 2, 1),
                     activation=("leaky_relu", "sigmoid", "sigmoid"), out_activation="sigmoid",
                     init="uniform01", lr=0.3, lr_decay=0.999, lr_decay_every=100, steps=400,
                     mean_gradient=False, leaky_slope=0.1)
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
    assert b.curve == s.curve
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


@pytest.mark.parametrize("name", ["leaky_relu", "sigmoid", "relu", "tanh"])
@pytest.mark.parametrize("slope", [0.01, 0.1, 0.3])
def test_the_cheaper_activation_ops_give_numpy_mlps_bits(name, slope):
    z = np.concatenate([np.random.default_rng(0).standard_normal(1000) * 5,
                        [0.0, -0.0, np.inf, -np.inf, 1e-310, -1e-310]])
    with np.errstate(all="ignore"):
        h = activate(name, z, slope)
        np.testing.assert_array_equal(batched.activate_fast(name, z, slope), h)
        g = np.random.default_rng(1).standard_normal(len(z))
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


def test_torch_path_equals_sequential_torch_runs_to_rounding():
    configs = [SEED_002.replace(backend="torch", seed=s, lr=lr, steps=100)
               for s, lr in ((0, 0.3), (1, 0.6))] + \
              [SEED_002.replace(backend="torch", activation="tanh", steps=100, seed=2)]
    for b, cfg in zip(run_batched(configs), configs):
        np.testing.assert_allclose(b.history, run(cfg).history, rtol=1e-8)


@pytest.mark.cuda
def test_cuda_batched_sweep_of_4096_models_trains():
    configs = [SEED_002.replace(backend="torch", device="cuda", seed=s, steps=200)
               for s in range(4096)]
    results = run_batched(configs)
    assert np.mean([r.history[-1] < r.history[0] for r in results]) > 0.9


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("change, field", [
    (dict(sizes=(1, 8, 2, 2, 1)), "sizes"),
    (dict(loss="half_mse"), "loss"),
    (dict(steps=10), "steps"),
    (dict(backend="torch"), "backend"),
    (dict(mean_gradient=True), "mean_gradient"),
], ids=["architecture", "loss", "steps", "backend", "mean_gradient"])
def test_mixed_setups_are_refused_naming_the_field(change, field):
    with pytest.raises(ValueError, match=rf"configs\[1\]\.{field} = .* but configs\[0\]\.{field}"):
        run_batched([SEED_002, SEED_002.replace(**change)])


@pytest.mark.parametrize("configs, error, match", [
    ([], TypeError, "non-empty sequence of RunConfig"),
    ([SEED_002, "seed 002"], TypeError, "non-empty sequence of RunConfig"),
    ([SEED_002.replace(loss="bce")], ValueError, "supports losses"),
    ([SEED_002.replace(batch_size=5)], ValueError, "trains full batches"),
    ([SEED_002.replace(backend="torch", optimizer="adam")], ValueError, "optimizer='sgd'"),
    ([SEED_002.replace(backend="torch", layerwise_update=True)], ValueError, "layerwise_update"),
], ids=["empty", "not-a-config", "loss", "minibatch", "torch-adam", "torch-layerwise"])
def test_bad_input_is_refused_clearly(configs, error, match):
    with pytest.raises(error, match=match):
        run_batched(configs)
