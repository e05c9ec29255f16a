"""diagnostics/checks/gradients.py: exploding-gradient, vanishing-gradient, excessive-weight-decay.
"""

import functools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cases.backends.numpy_mlp import MLP
from cases.backends.torch_train import from_numpy, to_numpy
from diagnostics import assert_diagnosed, diagnose
from diagnostics.checks.gradients import COLLAPSED, SIGNAL_SEED

from diagnose_helpers import (KINDS, RTOL, SEEDS, as_kind, digits_data, finding, layer_name, net, rms,
                              sin_data, weight_grads, digits_tensors, relu_net, train)


# ----------------------------------------------------------------- exploding-gradient
def exploding_net() -> MLP:
    """Six relu layers at 3x He scale: signal and gradient triple at every layer."""
    mlp = net((1,) + (64,) * 6 + (1,), ("relu",) * 6 + ("identity",), init="he")
    mlp.W = [3 * W for W in mlp.W]
    return mlp


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_larger_than_the_weights_are_exploding(kind):
    X, y = sin_data()
    mlp, lr = exploding_net(), 0.1
    f = finding(diagnose(as_kind(mlp, kind), X, y, lr=lr), "exploding-gradient")
    gW, _ = weight_grads(mlp, X, y)
    steps = [lr * rms(g.T) / rms(W) for g, W in zip(gW, mlp.W)]
    names = [layer_name(kind, mlp, i) for i in range(len(mlp.W))]
    assert f.evidence["relative_step"] == pytest.approx(dict(zip(names, steps)), rel=RTOL)
    assert f.layer == names[int(np.argmax(steps))] and max(steps) > 1
    assert f.evidence["growth"] == pytest.approx(rms(gW[0]) / rms(gW[-1]), rel=RTOL)


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_net_at_a_small_lr_is_not_exploding(kind):
    X, y = sin_data()
    mlp = exploding_net()
    gW, _ = weight_grads(mlp, X, y)
    lr = 0.5 / max(rms(g.T) / rms(W) for g, W in zip(gW, mlp.W))
    assert "exploding-gradient" not in diagnose(as_kind(mlp, kind), X, y, lr=lr).codes


# ----------------------------------------------------------------- vanishing-gradient
def deep_sigmoid() -> MLP:
    return net((64,) + (32,) * 8 + (10,), ("sigmoid",) * 8 + ("identity",))


@pytest.mark.parametrize("kind", KINDS)
def test_a_deep_sigmoid_stack_has_vanishing_gradients(kind):
    X, y = digits_data()
    mlp = deep_sigmoid()
    f = finding(diagnose(as_kind(mlp, kind), X, y, loss="cross_entropy"), "vanishing-gradient")
    gW, _ = weight_grads(mlp, X, y, "cross_entropy")
    assert f.evidence["ratio"] == pytest.approx(rms(gW[0]) / rms(gW[-1]), rel=RTOL)
    assert f.layer == layer_name(kind, mlp, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_two_sigmoid_layers_that_learned_nothing_shrink_the_gradient_every_layer(kind):
    """Seed 003's course report: 64-100-100-10 sigmoid that learned nothing; at Xavier init each
    layer keeps ~1/6 of the gradient, 1/40 over two layers (so the 1/100 overall rule misses it)."""
    X, y = digits_data()
    mlp = net((64, 100, 100, 10), ("sigmoid", "sigmoid", "identity"), init="xavier")
    f = finding(diagnose(as_kind(mlp, kind), X, y, loss="cross_entropy"), "vanishing-gradient")
    gW, _ = weight_grads(mlp, X, y, "cross_entropy")
    assert rms(gW[0]) / rms(gW[-1]) > 1e-2                     # not caught by the overall ratio
    assert f.evidence["per_layer"] == pytest.approx((rms(gW[0]) / rms(gW[-1])) ** 0.5, rel=RTOL)


@pytest.mark.parametrize("act", ["relu", "tanh", "elu"])
def test_fresh_relu_tanh_elu_stacks_keep_their_gradient(act):
    X, y = digits_data()
    for seed in range(3):
        mlp = net((64, 100, 100, 10), (act, act, "identity"), seed=seed)
        assert "vanishing-gradient" not in diagnose(mlp, X, y, loss="cross_entropy").codes


def test_a_wide_he_relu_net_on_noise_labels_is_not_vanishing():
    """Its gradient reads 0.14 per layer (row statistics of noise labels) and it trains fine."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((500, 784)), rng.integers(0, 10, 500)
    mlp = net((784, 256, 256, 10), ("relu", "relu", "identity"), init="he")
    assert "vanishing-gradient" not in diagnose(mlp, X, y, loss="cross_entropy").codes


def at_the_constant_optimum(mlp: MLP, X, y) -> MLP:
    """The deep stack's (near-constant) output moved onto the best constant's logits, log p:
    the mean loss's gradient then cancels over the rows in every layer."""
    seq = from_numpy(mlp, dtype=torch.float64)
    with torch.no_grad():
        mean_logits = seq(torch.from_numpy(X)).mean(0).numpy()
    p = np.bincount(y, minlength=10) / len(y)
    mlp.b[-1] = mlp.b[-1] + np.log(p) - mean_logits
    return mlp


def row_signal_by_autograd(mlp: MLP, X) -> list:
    """The same fixed random signal at the output sent back by torch (a vector-Jacobian
    product into each Linear's output z), RMS per layer, output first."""
    seq = from_numpy(mlp, dtype=torch.float64)
    zs, h = [], torch.from_numpy(X)
    for m in seq:
        h = m(h)
        if isinstance(m, nn.Linear):
            zs.append(h)
    v = torch.from_numpy(np.random.default_rng(SIGNAL_SEED).standard_normal(zs[-1].shape))
    gs = torch.autograd.grad(zs[-1], zs, v)
    return [rms(g.numpy()) for g in gs[::-1]]


@pytest.mark.parametrize("kind", KINDS)
def test_a_deep_sigmoid_stack_at_the_constant_optimum_vanishes_row_by_row(kind):
    """The summed gradient is ~0 everywhere (a stationary point, which the first-over-last rule
    must not read); each row's own gradient signal still fades layer by layer."""
    X, y = digits_data()
    mlp = at_the_constant_optimum(net((64,) + (16,) * 8 + (10,), ("sigmoid",) * 8 + ("identity",)),
                                  X, y)
    f = finding(diagnose(as_kind(mlp, kind), X, y, loss="cross_entropy"), "vanishing-gradient")
    kept = row_signal_by_autograd(mlp, X)
    weakest = int(np.argmin(kept[1:])) + 1
    assert f.evidence["through_depth"] and f.evidence["row_ratio"] < 1e-2
    assert f.evidence["row_ratio"] == pytest.approx(kept[weakest] / kept[0], rel=RTOL)


def test_the_row_signal_is_sent_only_through_sigmoid_tanh_or_linear_layers():
    X, y = digits_data()
    relu = net((64,) + (16,) * 8 + (10,), ("relu",) * 8 + ("identity",))
    assert "vanishing-gradient" not in diagnose(at_the_constant_optimum(relu, X, y), X, y,
                                                loss="cross_entropy").codes


@pytest.mark.parametrize("seed", SEEDS)
def test_a_deep_sigmoid_stack_that_trained_is_not_vanishing(seed):
    """Healthy negative: 3 sigmoid layers that fit the sin curve (loss under 5% of a constant's)."""
    X, y = sin_data()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(1, 16), nn.Sigmoid(), *[m for _ in range(2) for m in
                          (nn.Linear(16, 16), nn.Sigmoid())], nn.Linear(16, 1)).double()
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(1000):
        opt.zero_grad()
        loss = F.mse_loss(model(Xt), yt)
        loss.backward()
        opt.step()
    report = diagnose(model, X, y, optimizer=opt)
    assert loss.item() < 0.05 * np.var(y) and "vanishing-gradient" not in report.codes, str(report)


# ----------------------------------------------------------------- excessive-weight-decay
@pytest.mark.parametrize("kind", KINDS)
def test_huge_weight_decay_is_excessive(decayed, kind):
    model, opt, X, y = decayed
    mlp = to_numpy(model, ("tanh", "identity"))
    f = finding(diagnose(as_kind(mlp, kind), X, y, lr=0.1, weight_decay=1.0),
                "excessive-weight-decay")
    gW, gb = weight_grads(mlp, X, y)
    pull = np.sqrt(sum(np.sum(p ** 2) for p in mlp.parameters()))
    push = np.sqrt(sum(np.sum(g ** 2) for g in gW + gb))
    assert f.evidence["decay_pull"] == pytest.approx(pull, rel=RTOL)
    assert f.evidence["data_gradient"] == pytest.approx(push, rel=RTOL)


def test_the_weight_decay_is_read_from_the_optimizer(decayed):
    model, opt, X, y = decayed
    assert_diagnosed(model, X, y, "excessive-weight-decay", optimizer=opt)


PENALTY_STEPS = 300     # SGD at lr 0.1 in batches of 64: a penalty of 1.0 shrinks the weights by
                        # 0.8 a step (0.8^300 ~ 1e-29); 1e-3 trains digits to 0.13 of a constant


@functools.lru_cache(maxsize=None)
def penalised_digits(lam: float, seed: int):
    """A 64-64-64-10 ReLU net on digits whose loop adds lam * sum(w ** 2) to the cross-entropy,
    under SGD without weight decay: (model, X, y, history, opt)."""
    X, y = digits_tensors()
    torch.manual_seed(seed)
    model = relu_net(64, 10, width=64)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    def penalised(out, t):
        return F.cross_entropy(out, t) + lam * sum((p ** 2).sum() for p in model.parameters())
    history = train(model, X, y, penalised, opt, PENALTY_STEPS, batch=64, seed=seed)
    return model, X, y, history, opt


@pytest.mark.parametrize("seed", SEEDS)
def test_an_l2_penalty_in_the_loss_that_collapsed_the_weights_is_named_first(seed):
    model, X, y, history, opt = penalised_digits(1.0, seed)
    report = diagnose(model, X, y, loss="cross_entropy", history=history, optimizer=opt)
    first = report.findings[0]
    assert first.code == "excessive-weight-decay" and first.evidence["penalty_in_loss"], str(report)
    assert first.evidence["largest_scale"] < COLLAPSED
    assert first.evidence["first_loss"] == pytest.approx(history[0])
    assert "bad-initialization" not in {f.code for f in report.causes}, str(report)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_small_penalty_in_the_loss_trains_and_stays_quiet(seed):
    model, X, y, history, opt = penalised_digits(1e-3, seed)
    report = diagnose(model, X, y, loss="cross_entropy", history=history, optimizer=opt)
    assert report.ok and "excessive-weight-decay" not in report.codes, str(report)
