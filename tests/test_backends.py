"""The numpy backward pass against torch autograd, and both backends against each other."""

import numpy as np
import pytest
import torch

from cases.backends import numpy_ops, reference, torch_modules, torch_train
from cases.backends.numpy_mlp import MLP, Cache
from cases.backends.numpy_ops import loss_and_grad
from cases.config import RunConfig
from cases.runner import load_data, run

GRAD_RTOL = 1e-6      # float64 backprop vs autograd: differences are rounding, ~1e-14
PARITY_RTOL = 1e-8    # 50 float64 steps: rounding grows, but stays far below this

# each loss with the output activation it is used with, and the target it takes
LOSS_HEADS = [("mse", "identity"), ("mse", "tanh"), ("mse", "relu"), ("mse", "softmax"),
              ("half_mse", "sigmoid"), ("cross_entropy", "identity"), ("hinge", "identity"),
              ("bce", "sigmoid")]


def targets(loss, n, k, rng):
    if loss in ("cross_entropy", "hinge"):
        return rng.integers(0, k, n)
    if loss == "bce":
        return rng.random((n, k))
    return rng.standard_normal((n, k))


def relative_error(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


def numpy_and_autograd_grads(net, X, y, loss):
    cache = Cache()
    out = net.forward(X, cache)
    L, dout = loss_and_grad(loss, out, y, 1.0)
    dW, db, _ = net.backward(cache, dout)
    mod = torch_train.from_numpy(net)
    Lt = torch_train.loss_fn(loss, 1.0)(mod(torch.from_numpy(X)), torch.from_numpy(y))
    Lt.backward()
    linears = [m for m in mod if isinstance(m, torch.nn.Linear)]
    return (L, dW, db), (Lt.item(), [m.weight.grad.numpy().T for m in linears],
                         [m.bias.grad.numpy() for m in linears])


@pytest.mark.parametrize("act", numpy_ops.HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss,head", LOSS_HEADS, ids=[f"{l}-{h}" for l, h in LOSS_HEADS])
def test_backward_matches_autograd(act, loss, head):
    rng = np.random.default_rng(1)
    net = MLP.init((3, 7, 5, 4), (act, act, head), "torch_default", rng)
    X, y = rng.standard_normal((11, 3)), targets(loss, 11, 4, rng)
    (L, dW, db), (Lt, dWt, dbt) = numpy_and_autograd_grads(net, X, y, loss)
    assert abs(L - Lt) <= GRAD_RTOL * abs(Lt)
    for g, gt in zip(dW + db, dWt + dbt):
        assert relative_error(g, gt) < GRAD_RTOL


TO_TORCH_ATOL = 1e-12   # float64: the same ops in another library, rounding apart (~1e-16)


@pytest.mark.parametrize("act", numpy_ops.HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("head", numpy_ops.OUTPUT_ACTIVATIONS)
def test_to_torch_computes_the_numpy_forward(act, head):
    rng = np.random.default_rng(3)
    net = MLP.init((3, 6, 5, 4), (act, act, head), "torch_default", rng, slope=0.2)
    X = 2 * rng.standard_normal((13, 3))
    module = net.to_torch()
    assert isinstance(module, torch.nn.Sequential) and next(module.parameters()).dtype == \
        torch.float64
    with torch.no_grad():
        out = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, net.forward(X), rtol=0, atol=TO_TORCH_ATOL)


def test_to_torch_takes_the_dtype_and_leaves_the_numpy_weights_alone():
    net = MLP.init((2, 3, 1), ("relu", "identity"), "he", np.random.default_rng(0))
    before = [p.copy() for p in net.parameters()]
    module = net.to_torch(dtype=torch.float32)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    assert next(module.parameters()).dtype == torch.float32
    assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))


def test_backward_matches_finite_differences():
    rng = np.random.default_rng(2)
    net = MLP.init((2, 5, 3), ("gelu", "softmax"), "xavier", rng)
    X, y = rng.standard_normal((6, 2)), rng.standard_normal((6, 3))
    cache = Cache()
    _, dout = loss_and_grad("mse", net.forward(X, cache), y)
    dW, _, _ = net.backward(cache, dout)
    eps, W = 1e-6, net.W[0]
    numeric = np.zeros_like(W)
    for ij in np.ndindex(W.shape):
        W[ij] += eps
        up = loss_and_grad("mse", net.forward(X), y)[0]
        W[ij] -= 2 * eps
        down = loss_and_grad("mse", net.forward(X), y)[0]
        W[ij] += eps
        numeric[ij] = (up - down) / (2 * eps)
    assert relative_error(dW[0], numeric) < GRAD_RTOL


PARITY = {
    "tanh-mse-sgd": dict(data="sin_points", sizes=(1, 16, 8, 1), activation="tanh", lr=0.05),
    "relu-mse-momentum-wd": dict(data="spiral_map", sizes=(2, 8, 2), activation="relu", lr=0.1,
                                 momentum=0.9, weight_decay=1e-3),
    "leaky-tanh-adamw": dict(data="spiral_map", sizes=(2, 4, 3, 2), activation="leaky_relu",
                             out_activation="tanh", optimizer="adamw", lr=1e-2,
                             weight_decay=0.01),
    "sigmoid-summed-grad-decay": dict(data="sin_grid", sizes=(1, 4, 2, 1),
                                      activation=("leaky_relu", "sigmoid"),
                                      out_activation="sigmoid", init="uniform01", lr=0.3,
                                      mean_gradient=False, lr_decay=0.9, lr_decay_every=10,
                                      leaky_slope=0.1),
    "gelu-ce-adam": dict(data="digits", sizes=(64, 32, 10), activation="gelu",
                         loss="cross_entropy", optimizer="adam", lr=1e-3, weight_decay=1e-4),
    "elu-hinge-minibatch": dict(data="digits", sizes=(64, 16, 10), activation="elu",
                                loss="hinge", lr=0.05, batch_size=32, hinge_margin=5.0),
    "sigmoid-halfmse-value": dict(data="noisy_spiral3", sizes=(2, 5, 1), activation="sigmoid",
                                  out_activation="sigmoid", loss="half_mse", init="randn",
                                  targets="value", lr=0.1),
    "sigmoid-bce-onehot": dict(data="noisy_spiral3", sizes=(2, 8, 3), activation="sigmoid",
                               out_activation="sigmoid", loss="bce", lr=0.5),
}


@pytest.mark.parametrize("spec", PARITY.values(), ids=PARITY.keys())
def test_numpy_and_torch_give_the_same_trace(spec):
    cfg = RunConfig(**spec, steps=50)
    a, b = run(cfg), run(cfg.replace(backend="torch"))
    assert len(a.history) == len(b.history) == 50
    assert np.all(np.isfinite(a.history))
    np.testing.assert_allclose(a.history, b.history, rtol=PARITY_RTOL)
    assert a.history[-1] != a.history[0]  # it trained: equal traces of a frozen run prove little


def test_a_run_repeats_exactly_and_seeds_differ():
    cfg = RunConfig(data="sin_points", sizes=(1, 20, 1), activation="relu", batch_size=1,
                    lr=0.05, steps=300)
    a, b, c = run(cfg), run(cfg), run(cfg.replace(seed=1))
    assert np.array_equal(a.history, b.history)
    assert not np.array_equal(a.history, c.history)


def test_float32_runs_in_float32():
    cfg = RunConfig(data="sin_points", sizes=(1, 20, 1), activation="tanh", steps=20,
                    dtype="float32")
    for backend in ("numpy", "torch"):
        r = run(cfg.replace(backend=backend))
        assert r.predict(np.zeros((1, 1))).dtype == np.float32
    assert run(cfg).model.W[0].dtype == np.float32


def test_divergence_stops_the_run_in_both_backends():
    cfg = RunConfig(data="sin_points", sizes=(1, 50, 1), activation="relu", lr=50.0, steps=200)
    a, b = run(cfg), run(cfg.replace(backend="torch"))
    assert a.diverged and b.diverged
    assert len(a.history) == len(b.history) < 200


def test_torch_module_is_plain_sequential_like_users_write():
    mod = torch_modules.build_module((2, 4, 3, 2), ("leaky_relu", "leaky_relu", "tanh"))
    kinds = [type(m).__name__ for m in mod]
    assert kinds == ["Linear", "LeakyReLU", "Linear", "LeakyReLU", "Linear", "Tanh"]


def test_cuda_is_refused_clearly_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    cfg = RunConfig(data="sin_points", sizes=(1, 4, 1), backend="torch", device="cuda")
    with pytest.raises(ValueError, match="no CUDA device"):
        run(cfg)


@pytest.mark.cuda
def test_cuda_trace_matches_cpu():
    cfg = RunConfig(data="sin_points", sizes=(1, 16, 1), activation="tanh", steps=50,
                    backend="torch")
    a, b = run(cfg), run(cfg.replace(device="cuda"))
    np.testing.assert_allclose(a.history, b.history, rtol=1e-6)


@pytest.mark.parametrize("field,value", [("backend", "jax"), ("loss", "l1"), ("init", "ortho"),
                                         ("optimizer", "lbfgs"), ("activation", "swish"),
                                         ("dtype", "float16"), ("sizes", (3,))])
def test_bad_config_names_the_field_and_what_is_accepted(field, value):
    spec = dict(data="sin_points", sizes=(1, 4, 1))
    spec[field] = value
    with pytest.raises(ValueError, match=rf"RunConfig\.{field} = .* accepted"):
        RunConfig(**spec)


REFERENCE_RTOL = 1e-10   # the same float64 math in another order of ops: rounding, ~1e-15
REFERENCE_CONFIGS = {
    "sgd-mse-relu-full": dict(data="sin_points", sizes=(1, 16, 1), activation="relu", lr=0.05,
                              steps=60),
    "adamw-ce-leaky-minibatch": dict(data="noisy_spiral3", sizes=(2, 12, 3), activation="leaky_relu",
                                     loss="cross_entropy", optimizer="adamw", lr=0.01,
                                     weight_decay=0.01, batch_size=64, steps=60),
}


@pytest.mark.parametrize("spec", REFERENCE_CONFIGS.values(), ids=REFERENCE_CONFIGS)
def test_the_reference_loops_train_what_the_backends_train(spec):
    """reference.py's bare loops are the deliberate copies of the math: they must stay equal."""
    cfg = RunConfig(**spec)
    _, X, y, _, _ = load_data(cfg)
    np.testing.assert_allclose(reference.numpy_loop(cfg, X, y), run(cfg).history,
                               rtol=REFERENCE_RTOL)
    np.testing.assert_allclose(reference.torch_loop(cfg, X, y),
                               run(cfg.replace(backend="torch")).history, rtol=REFERENCE_RTOL)
