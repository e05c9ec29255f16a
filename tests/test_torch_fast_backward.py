"""The torch backend's hand-written backward (cases/backends/torch_backward.py) against autograd.

Its gradients must be autograd's bit for bit: every covered activation, output
activation and loss, in float64 and float32, on a whole set, a gathered
minibatch and one sample, as a mean and as a summed gradient, with units sitting
exactly on the activations' kinks. Training through ``torch_train.train`` must
then give autograd's loss history, curve and weights, and anything the
hand-written path does not cover must take autograd's path and still train right.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from cases.backends import numpy_ops, torch_backward, torch_train
from cases.backends.numpy_mlp import MLP
from cases.backends.schedule import initial_model
from cases.config import RunConfig
from cases.runner import load_data, run
from test_benchmarks import TINY, WORKLOADS  # the benchmarked workloads, tests/ is on the path

SIZES = (3, 5, 4, 3)       # two hidden layers: the gradient goes through a hidden activation twice
N_SET = 12                 # samples of the "whole set"
MINIBATCH = (7, 0, 3, 11, 5)   # rows gathered from it, as Run.batch gathers a minibatch
SLOPE = 0.1                # a leaky slope unlike the default, so a wrong one would show
PARITY_RTOL = 1e-8         # torch vs numpy backend over a short float64 run (test_backends')

# each covered loss with the output activations it is used with
LOSS_HEADS = [("mse", head) for head in numpy_ops.OUTPUT_ACTIVATIONS] + \
             [("bce", "sigmoid"), ("bce", "softmax")] + \
             [("cross_entropy", head) for head in ("identity", "softmax")]
VARIANTS = list(itertools.product((torch.float64, torch.float32), ("set", "minibatch", "one"),
                                  (True, False), (torch.no_grad, torch.inference_mode)))
# dtype, batch, mean gradient, the mode the hand-written backward runs in


def module_with_kinks(act, head, dtype):
    """Seeded weights; unit 0 of every layer has a zero weight row and bias, so its
    pre-activation is exactly 0 for every sample: relu's and leaky_relu's kink."""
    rng = np.random.default_rng(3)
    net = MLP.init(SIZES, (act, act, head), "torch_default", rng, np.dtype("float64"), SLOPE)
    module = torch_train.from_numpy(net, dtype=dtype)
    with torch.no_grad():
        for lin in (m for m in module if isinstance(m, nn.Linear)):
            lin.weight[0] = 0
            lin.bias[0] = 0
    return module


def data(loss, dtype, batch):
    """(x, y) of the whole set, a gathered minibatch, or one sample; sample 0 is all zeros."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(N_SET, SIZES[0], generator=g, dtype=dtype)
    x[0] = 0
    if loss == "cross_entropy":
        y = torch.randint(0, SIZES[-1], (N_SET,), generator=g)
    else:
        y = torch.rand(N_SET, SIZES[-1], generator=g, dtype=dtype)
    rows = {"set": range(N_SET), "minibatch": MINIBATCH, "one": (0,)}[batch]
    idx = torch.tensor(rows)
    return x.index_select(0, idx), y.index_select(0, idx)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bits, not just equal values: torch.equal takes -0.0 for 0.0."""
    as_int = {torch.float64: torch.int64, torch.float32: torch.int32}[a.dtype]
    return a.dtype == b.dtype and a.shape == b.shape and \
        torch.equal(a.contiguous().view(as_int), b.contiguous().view(as_int))


def autograd_and_manual(module, loss, x, y, mean, grad_off):
    params = list(module.parameters())
    L = torch_train.loss_fn(loss)(module(x), y)
    expected = torch.autograd.grad(L if mean else L * len(x), params)
    manual = torch_backward.manual_backward_for(module, loss, y)
    with grad_off():
        L_manual, grads = manual.loss_and_gradients(x, y, None if mean else len(x))
    return (L, expected), (L_manual, grads)


@pytest.mark.parametrize("loss, head", LOSS_HEADS, ids=["-".join(pair) for pair in LOSS_HEADS])
@pytest.mark.parametrize("act", numpy_ops.HIDDEN_ACTIVATIONS)
def test_gradients_equal_autograd_bit_for_bit(act, loss, head):
    for dtype, batch, mean, grad_off in VARIANTS:
        module = module_with_kinks(act, head, dtype)
        x, y = data(loss, dtype, batch)
        (L, expected), (L_manual, grads) = autograd_and_manual(module, loss, x, y, mean, grad_off)
        where = f"{dtype} {batch} {'mean' if mean else 'summed'} {grad_off.__name__}"
        assert same_bits(L_manual, L.detach()), where
        assert len(grads) == len(expected), where
        assert all(same_bits(g, e) for g, e in zip(grads, expected)), where


def test_a_one_unit_layer_on_one_sample():
    """A 1 x 1 hidden input is column-major too, where autograd's mm_mat1_backward takes its
    other branch: the one product is the same either way."""
    net = MLP.init((1, 1, 1), ("tanh", "identity"), "torch_default", np.random.default_rng(5))
    module = torch_train.from_numpy(net)
    x, y = torch.full((1, 1), 0.5, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    (L, expected), (_, grads) = autograd_and_manual(module, "mse", x, y, True, torch.no_grad)
    assert module[1](module[0](x)).stride() == (1, 1)
    assert all(same_bits(g, e) for g, e in zip(grads, expected))


def test_kinks_are_hit():
    """The zero unit really sits on the kink, and a sample's whole input is zero."""
    module = module_with_kinks("relu", "identity", torch.float64)
    x, _ = data("mse", torch.float64, "set")
    z = module[0](x)
    assert torch.all(z[:, 0] == 0) and torch.all(x[0] == 0)


def uncovered_cases():
    y_values, y_classes = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    plain = lambda *extra: nn.Sequential(nn.Linear(2, 3), *extra)  # noqa: E731
    frozen = plain(nn.Tanh())
    frozen[0].bias.requires_grad_(False)
    shared = plain(nn.Tanh())
    shared.append(shared[0])
    return {
        "loss-half_mse": (plain(nn.Tanh()), "half_mse", y_values),
        "loss-hinge": (plain(), "hinge", y_classes),
        "cross_entropy-onehot-targets": (plain(), "cross_entropy", y_values),
        "mse-broadcast-targets": (plain(), "mse", torch.zeros(4)),
        "inplace-relu": (plain(nn.ReLU(inplace=True)), "mse", y_values),
        "softmax-implicit-dim": (plain(nn.Softmax()), "mse", y_values),
        "two-activations": (plain(nn.Tanh(), nn.Tanh()), "mse", y_values),
        "linear-without-bias": (nn.Sequential(nn.Linear(2, 3, bias=False)), "mse", y_values),
        "not-a-sequential": (nn.Linear(2, 3), "mse", y_values),
        "frozen-bias": (frozen, "mse", y_values),
        "shared-linear": (shared, "mse", torch.zeros(4, 2)),
    }


@pytest.mark.parametrize("case", list(uncovered_cases()))
def test_uncovered_modules_and_losses_are_left_to_autograd(case):
    module, loss, y = uncovered_cases()[case]
    assert torch_backward.manual_backward_for(module, loss, y) is None


# ---------------------------------------------------------------- training runs
TRAIN_STEPS = {"000-spiral-2-4-3-2-full": 30, "001-sin-1-50-1-per-sample": 150,
               "002-1-4-2-2-1-41pts": 150}   # a benchmark round's worth: well under a second


def train(cfg, model=None):
    _, X, y, Xt, yt = load_data(cfg)
    return torch_train.train(cfg, X, y, Xt, yt, model)


def autograd_only(monkeypatch):
    monkeypatch.setattr(torch_train, "manual_backward_for", lambda *args: None)


def takes_manual_path(cfg, model=None) -> bool:
    _, X, y, Xt, yt = load_data(cfg)
    return torch_train.manual_backward_of(torch_train.Run(cfg, X, y, Xt, yt, model, False)) \
        is not None


def assert_same_run(a, b):
    """Equal histories and curves (NaN where the other has NaN), weights bit for bit."""
    (net_a, history_a, curve_a), (net_b, history_b, curve_b) = a, b
    assert np.array_equal(history_a, history_b, equal_nan=True)
    assert curve_a.keys() == curve_b.keys()
    assert all(np.array_equal(curve_a[k], curve_b[k], equal_nan=True) for k in curve_a)
    assert all(same_bits(p.detach(), q.detach())
               for p, q in zip(net_a.parameters(), net_b.parameters()))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("workload", TINY)
def test_tiny_workloads_train_as_with_autograd(workload, dtype, monkeypatch):
    cfg = WORKLOADS[workload][0].replace(backend="torch", steps=TRAIN_STEPS[workload],
                                         dtype=dtype)
    assert takes_manual_path(cfg)
    fast = train(cfg)
    autograd_only(monkeypatch)
    assert not takes_manual_path(cfg)
    assert_same_run(fast, train(cfg))
    assert len(fast[1]) == cfg.steps and fast[1][-1] < fast[1][0]


def test_a_diverging_run_stops_as_with_autograd(monkeypatch):
    """History up to and including the first non-finite loss, curve and weights as autograd's."""
    cfg = RunConfig(data="sin_points", sizes=(1, 50, 1), activation="relu", lr=50.0, steps=200,
                    backend="torch", batch_size=8, mean_gradient=False)
    fast = train(cfg)
    autograd_only(monkeypatch)
    slow = train(cfg)
    assert_same_run(fast, slow)
    assert len(fast[1]) < cfg.steps and not np.isfinite(fast[1][-1])


def test_an_uncovered_loss_trains_through_autograd():
    cfg = RunConfig(data="sin_points", sizes=(1, 8, 1), activation="tanh", loss="half_mse",
                    lr=0.1, steps=50, backend="torch")
    assert not takes_manual_path(cfg)
    torch_result, numpy_result = run(cfg), run(cfg.replace(backend="numpy"))
    np.testing.assert_allclose(torch_result.history, numpy_result.history, rtol=PARITY_RTOL)


def test_a_user_module_it_does_not_cover_trains_through_autograd():
    """An in-place ReLU is left to autograd, whose run equals the covered plain ReLU's."""
    cfg = RunConfig(data="sin_points", sizes=(1, 8, 1), activation="relu", lr=0.05, steps=50,
                    batch_size=4, backend="torch")
    plain = torch_train.from_numpy(initial_model(cfg))
    inplace = copy.deepcopy(plain)
    inplace[1] = nn.ReLU(inplace=True)
    assert takes_manual_path(cfg, plain) and not takes_manual_path(cfg, inplace)
    assert_same_run(train(cfg, plain), train(cfg, inplace))
