"""Every diagnose() code on the situation people actually hit, and silence on healthy runs.

Each positive builds the classic mistake (a relu head on negative targets, softmax before
cross-entropy, x = 0..999, zero init, a deep sigmoid stack, ...) as a numpy MLP and runs it as
that MLP, as an nn.Sequential and as a custom module whose forward calls its activations as
functions; the evidence numbers are recomputed here from the weights and data, not read back.
The negatives are healthy trained models (digits, sin, XOR): no error, and no code of the table.
"""

from contextlib import contextmanager

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cases.backends.numpy_mlp import MLP, Cache
from cases.backends.torch_train import from_numpy, to_numpy
from cases.config import RunConfig, run
from diagnostics import CODES, assert_diagnosed, assert_healthy, diagnose, sharpness

KINDS = ("numpy", "sequential", "functional")
TORCH_KINDS = ("sequential", "functional")
RTOL = 1e-6            # float64 everywhere: the evidence and the recomputation differ by rounding
EIG_RTOL = 2e-2        # power iteration stops at a 1e-3 change; the eigenvalue is within ~1%

FUNCTIONS = {"identity": lambda z: z, "relu": F.relu, "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
             "elu": F.elu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
             "gelu": lambda z: F.gelu(z, approximate="tanh"),
             "softmax": lambda z: torch.softmax(z, dim=1)}


class Functional(nn.Module):
    """Linear layers in a ModuleList, the activations as function calls inside forward."""

    def __init__(self, mlp: MLP):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(i, o) for i, o in zip(mlp.sizes[:-1], mlp.sizes[1:]))
        self.acts = mlp.activations
        self.double()
        with torch.no_grad():
            for lin, W, b in zip(self.linears, mlp.W, mlp.b):
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(b))

    def forward(self, x):
        for lin, act in zip(self.linears, self.acts):
            x = FUNCTIONS[act](lin(x))
        return x


def as_kind(mlp: MLP, kind: str):
    if kind == "numpy":
        return mlp
    return from_numpy(mlp, dtype=torch.float64) if kind == "sequential" else Functional(mlp)


def layer_name(kind: str, mlp: MLP, i: int) -> str:
    if kind == "numpy":
        return f"layer{i}"
    if kind == "functional":
        return f"linears.{i}"
    seq = from_numpy(mlp)   # nn.Sequential numbers the activation modules too
    return str([j for j, m in enumerate(seq) if isinstance(m, nn.Linear)][i])


def net(sizes, acts, init="torch_default", seed=0) -> MLP:
    return MLP.init(sizes, acts, init, np.random.default_rng(seed))


def forward_cache(mlp: MLP, X) -> Cache:
    cache = Cache()
    mlp.forward(X, cache)
    return cache


def rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def weight_grads(mlp: MLP, X, y, loss="mse"):
    """d(mean loss)/dW per layer by torch autograd on a float64 copy, as (fan_out, fan_in)."""
    seq = from_numpy(mlp, dtype=torch.float64)
    out = seq(torch.from_numpy(X))
    yt = torch.from_numpy(y)
    L = F.cross_entropy(out, yt) if loss == "cross_entropy" else F.mse_loss(out, yt.reshape(out.shape))
    lins = [m for m in seq if isinstance(m, nn.Linear)]
    gs = torch.autograd.grad(L, [p for m in lins for p in (m.weight, m.bias)])
    return [g.numpy() for g in gs[0::2]], [g.numpy() for g in gs[1::2]]


def finding(report, code):
    found = [f for f in report.findings if f.code == code]
    assert found, f"{code} not reported:\n{report}"
    return found[0]


# ----------------------------------------------------------------- data
def sin_data(n=200):
    x = np.linspace(-np.pi, np.pi, n)[:, None]
    return x, np.sin(x)


def digits_data():
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.data / 16.0, d.target.astype(np.int64)


def xor_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, (n, 2))
    X = corners * 2.0 - 1 + 0.1 * rng.standard_normal((n, 2))
    return X, (corners[:, 0] ^ corners[:, 1]).astype(np.int64)


# ----------------------------------------------------------------- output-range-mismatch
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("head", ["relu", "sigmoid"])
def test_a_relu_or_sigmoid_head_on_negative_targets_is_an_output_range_mismatch(kind, head):
    X, y = sin_data()
    mlp = net((1, 16, 1), ("tanh", head))
    f = finding(diagnose(as_kind(mlp, kind), X, y), "output-range-mismatch")
    assert f.severity == "error" and f.layer == layer_name(kind, mlp, 1)
    assert f.evidence["targets_out_of_range"] == int(np.sum(y < -1e-6))   # RANGE_TOL
    assert f.evidence["target_min"] == pytest.approx(y.min())


@pytest.mark.parametrize("kind", KINDS)
def test_a_sigmoid_head_on_targets_in_0_1_is_no_mismatch(kind):
    X, y = sin_data()
    report = diagnose(as_kind(net((1, 16, 1), ("tanh", "sigmoid")), kind), X, (y + 1) / 2)
    assert "output-range-mismatch" not in report.codes


# ----------------------------------------------------------------- loss-target-mismatch
@pytest.mark.parametrize("kind", KINDS)
def test_softmax_before_cross_entropy_is_a_loss_target_mismatch(kind):
    X, y = digits_data()
    mlp = net((64, 32, 10), ("relu", "softmax"))
    f = finding(diagnose(as_kind(mlp, kind), X, y, loss="cross_entropy"), "loss-target-mismatch")
    probs = mlp.forward(X)
    assert f.severity == "error" and f.evidence["head"] == "softmax"
    assert f.evidence["output_min"] == pytest.approx(probs.min(), rel=RTOL)
    assert f.evidence["output_max"] == pytest.approx(probs.max(), rel=RTOL)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("width,severity", [(10, "error"), (1, "warning")])
def test_mse_on_class_indices_is_a_loss_target_mismatch(kind, width, severity):
    X, y = digits_data()
    report = diagnose(as_kind(net((64, 32, width), ("relu", "identity")), kind), X, y.astype(float))
    f = finding(report, "loss-target-mismatch")
    assert f.severity == severity
    assert f.evidence["labels"] == len(np.unique(y)) and f.evidence["output_width"] == width


@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_bce_on_targets_outside_0_1_is_a_loss_target_mismatch(kind):
    X, y = sin_data()
    report = diagnose(as_kind(net((1, 16, 1), ("tanh", "sigmoid")), kind), X, y, loss="bce")
    f = finding(report, "loss-target-mismatch")
    assert f.evidence["target_min"] == pytest.approx(y.min())


@pytest.mark.parametrize("kind", KINDS)
def test_a_one_unit_softmax_is_a_loss_target_mismatch(kind):
    X, y = xor_data()
    report = diagnose(as_kind(net((2, 8, 1), ("tanh", "softmax")), kind), X, y.astype(float))
    assert finding(report, "loss-target-mismatch").evidence["output_width"] == 1


def mean_predictor(kind, y):
    """A 1-16-1 tanh net whose last layer outputs mean(y) whatever the input: where training a
    loss on (n, 1) outputs against (n,) targets ends (every output against every target)."""
    mlp = net((1, 16, 1), ("tanh", "identity"))
    mlp.W[-1][:], mlp.b[-1][:] = 0.0, y.mean()
    return as_kind(mlp, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_a_trained_model_on_mean_y_with_y_of_shape_n_is_a_broadcasting_loss(kind):
    X, y = sin_data()
    y = y[:, 0] + 0.5                                   # (n,), as the broadcasting loop had it
    f = finding(diagnose(mean_predictor(kind, y), X, y, history=np.linspace(1, 0.3, 50)),
                "loss-target-mismatch")
    assert f.severity == "warning" and f.evidence["y_shape"] == [len(y)]
    assert f.evidence["mean_gap"] == pytest.approx(0, abs=1e-12)
    assert f.evidence["loss_ratio"] == pytest.approx(1.0, rel=RTOL)


@pytest.mark.parametrize("y_shape, history", [("(n, 1)", True), ("(n,)", False)],
                         ids=["targets-of-the-output-shape", "a-model-not-trained"])
def test_mean_y_is_no_broadcasting_loss_with_targets_n_1_or_without_a_history(y_shape, history):
    X, y = sin_data()
    y = y + 0.5 if y_shape == "(n, 1)" else y[:, 0] + 0.5
    report = diagnose(mean_predictor("sequential", y), X, y,
                      history=np.linspace(1, 0.3, 50) if history else None)
    assert not [f for f in report.findings if "broadcast" in f.message]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_with_the_n_1_against_n_loss_is_named(seed):
    # the bug itself: torch's mse_loss of (n, 1) against (n,) (it warns, the loop goes on)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (300, 2))
    y = np.sin(X[:, 0]) + X[:, 1] ** 2
    model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1)).double()
    opt, Xt, yt, history = torch.optim.Adam(model.parameters(), 1e-2), torch.tensor(X), \
        torch.tensor(y), []
    with pytest.warns(UserWarning, match="target size"):
        for _ in range(150):
            loss = F.mse_loss(model(Xt), yt)
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append(loss.item())
    f = finding(diagnose(model, X, y, history=history, optimizer=opt), "loss-target-mismatch")
    assert f.evidence["output_shape"] == [300, 1] and f.evidence["spread_ratio"] < 0.2
    fixed = diagnose(model, X, y[:, None], history=history, optimizer=opt)
    assert "loss-target-mismatch" not in fixed.codes


# ----------------------------------------------------------------- non-finite
@pytest.mark.parametrize("kind", KINDS)
def test_nan_parameters_are_non_finite(kind):
    X, y = sin_data()
    mlp = net((1, 16, 1), ("tanh", "identity"))
    mlp.W[1][[0, 3, 5], 0] = np.nan
    f = finding(diagnose(as_kind(mlp, kind), X, y), "non-finite")
    assert f.severity == "error" and f.evidence["parameters"] == 3
    assert f.evidence["outputs"] == len(X)
    assert f.evidence["first_parameter"] == f"{layer_name(kind, mlp, 1)}.weight"


def test_a_nan_in_the_history_gives_its_first_step():
    X, y = sin_data()
    history = np.r_[np.linspace(1, 0.5, 40), np.inf, np.nan]
    f = finding(diagnose(net((1, 16, 1), ("tanh", "identity")), X, y, history=history),
                "non-finite")
    assert f.evidence["history"] == 2 and f.evidence["first_bad_step"] == 40


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


# ----------------------------------------------------------------- constant-output
@pytest.mark.parametrize("kind", KINDS)
def test_zero_init_gives_a_constant_output(kind):
    X, y = sin_data()
    mlp = net((1, 16, 1), ("relu", "identity"), init="zeros")
    report = diagnose(as_kind(mlp, kind), X, y)
    f = finding(report, "constant-output")
    assert f.evidence["output_std"] == 0 and f.evidence["target_std"] == pytest.approx(y.std())
    assert "bad-initialization" in report.codes


@pytest.mark.parametrize("kind", KINDS)
def test_a_dead_relu_layer_gives_a_constant_output(kind):
    X, y = sin_data()
    mlp = net((1, 16, 1), ("relu", "identity"))
    mlp.b[0][:] = -10.0
    f = finding(diagnose(as_kind(mlp, kind), X, y), "constant-output")
    assert f.evidence["output_std"] == pytest.approx(mlp.forward(X).std(), abs=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_a_constant_output_says_where_the_inputs_differences_fade(kind):
    # ten sigmoid layers at torch's default init: each keeps ~0.15 of the rows' spread
    X, y = sin_data()
    mlp = net((1,) + (32,) * 10 + (1,), ("sigmoid",) * 10 + ("identity",))
    f = finding(diagnose(as_kind(mlp, kind), X, y), "constant-output")
    spreads = [h.std(axis=0).mean() for h in forward_cache(mlp, X).h[1:-1]]
    first_faded = next(i for i, s in enumerate(spreads) if s < 1e-2 * spreads[0])
    assert f.layer == f.evidence["faded_at"] == layer_name(kind, mlp, first_faded)
    assert list(f.evidence["hidden_row_std"].values()) == pytest.approx(spreads, rel=RTOL)
    assert "fade in the forward pass" in f.message


def test_a_dead_layer_names_no_fading():
    X, y = sin_data()
    mlp = net((1, 16, 16, 1), ("relu", "relu", "identity"))
    mlp.b[0][:] = -10.0                          # every row gives zeros from the first layer on
    f = finding(diagnose(mlp, X, y), "constant-output")
    assert f.evidence["faded_at"] is None and "fade" not in f.message


# ----------------------------------------------------------------- dead-relu
@pytest.mark.parametrize("kind", KINDS)
def test_a_dead_relu_layer_is_reported_with_count_and_share(kind):
    X, y = sin_data()
    mlp = net((1, 32, 32, 1), ("relu", "relu", "identity"), seed=1)
    mlp.b[1][:20] = -50.0                        # 20 of the 32 second-layer units never fire
    f = finding(diagnose(as_kind(mlp, kind), X, y), "dead-relu")
    z = forward_cache(mlp, X).z
    dead = [int(np.sum(np.all(zi <= 0, axis=0))) for zi in z[:2]]
    assert dead[1] >= 20
    names = [layer_name(kind, mlp, i) for i in range(2)]
    for name, d in zip(names, dead):
        assert f.evidence["dead"][name] == {"dead": d, "width": 32, "share": round(d / 32, 4)}
    assert f.layer == names[1]


# ----------------------------------------------------------------- saturated-activation
@pytest.mark.parametrize("kind", KINDS)
def test_tanh_on_unscaled_inputs_is_saturated(kind):
    X = np.arange(1000.0)[:, None]
    y = np.sin(X / 100)
    mlp = net((1, 16, 1), ("tanh", "identity"))
    report = diagnose(as_kind(mlp, kind), X, y)
    f = finding(report, "saturated-activation")
    h = forward_cache(mlp, X).h[1]
    name = layer_name(kind, mlp, 0)
    assert f.evidence["pass_through"][name] == pytest.approx(np.mean(1 - h * h), rel=RTOL)
    assert f.evidence["pinned_units"][name] == int(np.sum(np.mean(np.abs(h) >= 0.99, axis=0) >= 0.9))
    assert "unscaled-data" in report.codes


# ----------------------------------------------------------------- unstable-learning-rate
def exact_sharpness(mlp: MLP, X, y) -> float:
    """The largest eigenvalue of the full Hessian of the MSE, from torch.autograd.functional."""
    sizes = mlp.sizes
    shapes = [(o, i) for i, o in zip(sizes[:-1], sizes[1:])]
    flat = torch.cat([torch.from_numpy(np.r_[W.T.ravel(), b]) for W, b in zip(mlp.W, mlp.b)])
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def loss(theta):
        h, k = Xt, 0
        for (o, i), act in zip(shapes, mlp.activations):
            W = theta[k:k + o * i].reshape(o, i)
            b = theta[k + o * i:k + o * i + o]
            k += o * i + o
            h = FUNCTIONS[act](h @ W.T + b)
        return F.mse_loss(h, yt)
    H = torch.autograd.functional.hessian(loss, flat)
    return float(torch.linalg.eigvalsh(H)[-1])


@pytest.mark.parametrize("kind", KINDS)
def test_lr_above_2_over_lambda_max_is_unstable(kind):
    X, y = sin_data(50)
    mlp = net((1, 4, 1), ("tanh", "identity"))
    lam = exact_sharpness(mlp, X, y)
    lr = 3.0 / lam
    f = finding(diagnose(as_kind(mlp, kind), X, y, lr=lr), "unstable-learning-rate")
    assert f.evidence["lambda_max"] == pytest.approx(lam, rel=EIG_RTOL)
    assert f.evidence["stable_lr_below"] == pytest.approx(2 / lam, rel=EIG_RTOL)


@pytest.mark.parametrize("kind", KINDS)
def test_lambda_max_of_a_larger_net_matches_the_full_hessian(kind):
    X, y = sin_data(50)
    mlp = net((1, 16, 16, 1), ("tanh", "tanh", "identity"))     # 321 parameters: Lanczos
    assert sharpness(as_kind(mlp, kind), X, y) == pytest.approx(exact_sharpness(mlp, X, y),
                                                                rel=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_lr_below_the_edge_is_not_unstable(kind):
    X, y = sin_data(50)
    mlp = net((1, 4, 1), ("tanh", "identity"))
    lr = 1.0 / exact_sharpness(mlp, X, y)
    assert "unstable-learning-rate" not in diagnose(as_kind(mlp, kind), X, y, lr=lr).codes


def test_the_optimizer_gives_lr_and_momentum_widens_the_edge():
    X, y = sin_data(50)
    mlp = net((1, 4, 1), ("tanh", "identity"))
    lam = exact_sharpness(mlp, X, y)
    model = as_kind(mlp, "sequential")
    plain = torch.optim.SGD(model.parameters(), lr=3.0 / lam)
    heavy = torch.optim.SGD(model.parameters(), lr=3.0 / lam, momentum=0.9)
    adam = torch.optim.Adam(model.parameters(), lr=3.0 / lam)
    assert "unstable-learning-rate" in diagnose(model, X, y, optimizer=plain).codes
    assert "unstable-learning-rate" not in diagnose(model, X, y, optimizer=heavy).codes
    assert "unstable-learning-rate" not in diagnose(model, X, y, optimizer=adam).codes


# ----------------------------------------------------------------- history: oscillation, plateau
def oscillating_history(level, n=400, seed=0):
    """Gradient descent past the edge: the loss jumps up and down around a level, no trend."""
    rng = np.random.default_rng(seed)
    return level * (1 + 0.3 * (-1) ** np.arange(n) + 0.05 * rng.standard_normal(n))


def lag1(w):
    d = w - w.mean()
    return float(np.dot(d[:-1], d[1:]) / np.dot(d, d))


@pytest.mark.parametrize("kind", KINDS)
def test_an_up_down_history_without_trend_is_oscillation(kind):
    X, y = sin_data()
    history = oscillating_history(0.8 * y.var())
    report = diagnose(as_kind(net((1, 16, 1), ("tanh", "identity")), kind), X, y, history=history)
    f = finding(report, "loss-oscillation")
    assert f.evidence["window"] == 200
    assert f.evidence["lag1_autocorrelation"] == pytest.approx(lag1(history[-200:]), rel=RTOL)
    assert "loss-plateau" not in report.codes


def chaotic_history(level, n=1500, drift=0.03):
    """Seed 002's bifurcation: a logistic-map loss (std/mean ~0.5) whose run falls only 3%."""
    x = np.empty(n)
    x[0] = 0.3
    for t in range(1, n):
        x[t] = 3.9 * x[t - 1] * (1 - x[t - 1])
    return level * (1 - drift * np.linspace(0, 1, n)) * (0.5 + x)


@pytest.mark.parametrize("kind", KINDS)
def test_a_chaotic_history_whose_drop_is_within_its_noise_is_oscillation(kind):
    X, y = sin_data()
    history = chaotic_history(0.8 * y.var())
    report = diagnose(as_kind(net((1, 16, 1), ("tanh", "identity")), kind), X, y, history=history)
    assert finding(report, "loss-oscillation").evidence["lag1_autocorrelation"] < -0.3


@pytest.fixture(scope="module")
def tiny_spiral():
    """Seed 000: a 2-4-3-2 leaky-relu net with a tanh head, AdamW, on the spiral-to-spiral map."""
    cfg = RunConfig(data="spiral_map", sizes=(2, 4, 3, 2), activation="leaky_relu",
                    out_activation="tanh", optimizer="adamw", lr=0.01, steps=1500)
    return run(cfg)


@pytest.mark.parametrize("kind", KINDS)
def test_a_tiny_net_on_the_spiral_map_plateaus_for_lack_of_capacity(tiny_spiral, kind):
    r = tiny_spiral
    X, y = r.data.X, r.data.y
    report = diagnose(as_kind(r.model, kind), X, y, history=r.history)
    plateau, capacity = finding(report, "loss-plateau"), finding(report, "low-capacity")
    k = min(200, len(r.history) // 4)
    assert plateau.evidence["level"] == pytest.approx(np.mean(r.history[-k:]), rel=RTOL)
    assert capacity.evidence["widths"] == [4, 3, 2]
    loss = np.mean((r.model.forward(X) - y) ** 2)
    assert capacity.evidence["loss_ratio"] == pytest.approx(loss / np.mean(y.var(axis=0)), abs=1e-4)
    assert capacity.severity == "error"


@pytest.mark.parametrize("kind", KINDS)
def test_a_linear_model_on_xor_has_low_capacity(kind):
    X, y = xor_data()
    mlp = net((2, 16, 2), ("identity", "identity"))
    f = finding(diagnose(as_kind(mlp, kind), X, y, loss="cross_entropy"), "low-capacity")
    assert f.evidence["activations"] == ["identity", "identity"]


# ----------------------------------------------------------------- bad-initialization
@pytest.mark.parametrize("kind", KINDS)
def test_all_positive_uniform_init_is_bad(kind):
    X, y = sin_data()
    mlp = net((1, 16, 16, 1), ("relu", "relu", "identity"), init="uniform01")
    f = finding(diagnose(as_kind(mlp, kind), X, y), "bad-initialization")
    assert f.evidence["one_sign"] == "positive"


@pytest.mark.parametrize("kind", KINDS)
def test_zero_init_is_constant_weights(kind):
    X, y = sin_data()
    mlp = net((1, 16, 1), ("tanh", "identity"), init="zeros")
    f = finding(diagnose(as_kind(mlp, kind), X, y), "bad-initialization")
    assert f.severity == "error"
    assert f.evidence["constant_layers"] == [layer_name(kind, mlp, i) for i in range(2)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_scale_far_from_fan_in_is_bad_when_training_fails(kind):
    X, y = digits_data()
    mlp = net((64, 32, 10), ("relu", "identity"), init="randn")   # N(0, 1): 8x the fan-in scale
    mlp.W[1] *= 100
    f = finding(diagnose(as_kind(mlp, kind), X, y, loss="cross_entropy"), "bad-initialization")
    name = layer_name(kind, mlp, 1)
    assert f.evidence["scale"][name] == pytest.approx(rms(mlp.W[1]) * np.sqrt(32), rel=RTOL)
    assert f.evidence["trained_steps"] == 0 and "learning rate" not in f.fix


def test_a_scale_far_off_after_training_may_come_from_the_learning_rate():
    X, y = digits_data()
    mlp = net((64, 32, 10), ("relu", "identity"), init="randn")
    mlp.W[1] *= 100
    history = np.full(60, 2.3)                    # 60 steps that learned nothing
    f = finding(diagnose(mlp, X, y, loss="cross_entropy", history=history), "bad-initialization")
    assert f.evidence["trained_steps"] == 60 and "lower the learning rate" in f.fix
    assert "After 60 training steps" in f.message


# ----------------------------------------------------------------- excessive-weight-decay
@pytest.fixture(scope="module")
def decayed():
    """Trained to equilibrium under weight decay 1: the decay pull equals the data gradient."""
    X, y = sin_data()
    model = as_kind(net((1, 16, 1), ("tanh", "identity")), "sequential")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1.0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    with one_thread():
        train_steps(model, opt, Xt, yt, 300)
    return model, opt, X, y


def train_steps(model, opt, Xt, yt, steps):
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(Xt), yt).backward()
        opt.step()


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


# ----------------------------------------------------------------- unscaled-data
@pytest.mark.parametrize("kind", KINDS)
def test_x_from_0_to_999_is_unscaled(kind):
    X = np.arange(1000.0)[:, None]
    y = np.sin(X / 100)
    f = finding(diagnose(as_kind(net((1, 16, 1), ("relu", "identity")), kind), X, y),
                "unscaled-data")
    assert f.evidence["input_rms_max"] == pytest.approx(np.sqrt(np.mean(X ** 2)), rel=RTOL)


@pytest.mark.parametrize("kind", KINDS)
def test_targets_in_the_thousands_are_unscaled(kind):
    X, y = sin_data()
    f = finding(diagnose(as_kind(net((1, 16, 1), ("tanh", "identity")), kind), X, 1000 * y),
                "unscaled-data")
    assert f.evidence["target_rms_max"] == pytest.approx(rms(1000 * y), rel=RTOL)


# ----------------------------------------------------------------- healthy runs: the negatives
@contextmanager
def one_thread():
    """Tiny models train 50x slower when torch's threads fight other processes for 2 cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@one_thread()
def fit(mlp: MLP, X, y, loss, steps, lr=0.01):
    """Adam on the full batch in torch; the trained weights back as a numpy MLP, and the history."""
    model = as_kind(mlp, "sequential")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    objective = F.cross_entropy if loss == "cross_entropy" else F.mse_loss
    history = []
    for _ in range(steps):
        opt.zero_grad()
        L = objective(model(Xt), yt)
        L.backward()
        opt.step()
        history.append(float(L.detach()))
    return to_numpy(model, mlp.activations), np.array(history), lr


HEALTHY = {
    "digits": lambda: (net((64, 32, 10), ("relu", "identity")), *digits_data(), "cross_entropy", 300),
    "sin": lambda: (net((1, 32, 32, 1), ("tanh", "tanh", "identity")), *sin_data(), "mse", 1500),
    "xor": lambda: (net((2, 16, 2), ("relu", "identity")), *xor_data(), "cross_entropy", 300),
}


@pytest.fixture(scope="module", params=list(HEALTHY))
def healthy(request):
    mlp, X, y, loss, steps = HEALTHY[request.param]()
    trained, history, lr = fit(mlp, X, y, loss, steps)
    return trained, X, y, loss, history, lr


def test_the_healthy_models_are_trained(healthy):
    mlp, X, y, loss, history, _ = healthy
    out = mlp.forward(X)
    if loss == "cross_entropy":
        assert np.mean(out.argmax(axis=1) == y) > 0.97
    else:
        assert np.mean((out - y) ** 2) < 1e-3 * y.var()


@pytest.mark.parametrize("kind", KINDS)
def test_healthy_trained_models_have_no_error(healthy, kind):
    mlp, X, y, loss, history, lr = healthy
    assert_healthy(as_kind(mlp, kind), X, y, loss=loss, history=history, lr=lr)


@pytest.mark.parametrize("kind", KINDS)
def test_healthy_trained_models_show_no_code_at_all(healthy, kind):
    mlp, X, y, loss, history, lr = healthy
    report = diagnose(as_kind(mlp, kind), X, y, loss=loss, history=history, lr=lr)
    assert report.codes == set(), str(report)


def test_every_code_has_a_positive_here_or_in_the_training_loop_tests():
    from pathlib import Path
    here = Path(__file__)
    source = here.read_text() + (here.parent / "test_diagnose_training_loops.py").read_text()
    assert set(CODES) == {c for c in CODES if f'"{c}"' in source}


@pytest.mark.parametrize("history,improving", [
    (1 + np.exp(-np.arange(400) / 300), True),            # still falling
    (1 + np.exp(-np.arange(400) / 10), False),            # flat for the last 300 steps
    (chaotic_history(1.0), False),                        # noise around a level
    (np.arange(10.0), None),                              # too short to say
], ids=["falling", "flat", "chaotic", "short"])
def test_history_improving_is_a_plain_verdict(history, improving):
    """The verdict is compared with `is True`: a numpy bool there once made every run 'failing'."""
    from types import SimpleNamespace

    from diagnostics.checks.evidence import history_improving
    assert history_improving(SimpleNamespace(history=history)) is improving


def test_a_linear_head_with_all_positive_outputs_is_read_as_identity_not_relu():
    """Targets far above zero (raw diabetes-style values ~150) make a linear head's outputs all
    positive; read from values alone that looks like a relu, but no function ran after it."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
    with torch.no_grad():
        net[2].bias.fill_(150.0)
    X = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    y = np.full(64, 150.0, dtype=np.float32)
    assert (net(torch.as_tensor(X)) > 0).all()
    activations = diagnose(net, X, y).to_dict()["summary"]["activations"]
    assert activations.split("/")[-1] == "identity", activations


# ----------------------------------------------------------------- learning-rate-too-small
def crawling_run(lr: float):
    """A 1-20-1 tanh net trained 300 full-batch SGD steps on sin: at lr 1e-4 it learns nothing."""
    return run(RunConfig(data="sin_points", sizes=(1, 20, 1), activation="tanh", lr=lr, steps=300))


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_that_crawls_far_below_the_edge_has_a_learning_rate_too_small(kind):
    r = crawling_run(1e-4)
    X, y = r.data.X, r.data.y.reshape(-1, 1)
    lam = exact_sharpness(r.model, X, y)
    f = finding(diagnose(as_kind(r.model, kind), X, y, history=r.history, lr=1e-4),
                "learning-rate-too-small")
    assert f.severity == "warning" and 1e-4 * lam < 0.01
    assert f.evidence["lambda_max"] == pytest.approx(lam, rel=EIG_RTOL)


def test_the_same_run_at_a_fitting_lr_or_without_a_history_is_not_too_small():
    r = crawling_run(0.3)
    X, y = r.data.X, r.data.y
    assert "learning-rate-too-small" not in diagnose(r.model, X, y, history=r.history, lr=0.3).codes
    slow = crawling_run(1e-4)
    assert "learning-rate-too-small" not in diagnose(slow.model, X, y, lr=1e-4).codes  # fresh-like
    assert "learning-rate-too-small" not in diagnose(slow.model, X, y, history=slow.history).codes
