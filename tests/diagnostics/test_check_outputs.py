"""diagnostics/checks/outputs.py: output-range-mismatch, loss-target-mismatch, constant-output.

Each positive builds the classic mistake (a relu head on negative targets, softmax before
cross-entropy, class indices under MSE, zero init, ...) and runs it as a numpy MLP, as an
nn.Sequential and as a custom module; the evidence is recomputed here from weights and data.
"""

import functools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from diagnostics import diagnose

from diagnose_helpers import (KINDS, RTOL, SEEDS, TORCH_KINDS, as_kind, digits_data, digits_tensors,
                              finding, forward_cache, layer_name, net, relu_net, sin_data, train,
                              xor_data)


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


# ----------------------------------------------------------------- loss-target-mismatch: broadcasting
def mean_predictor(kind, y):
    """A 1-16-1 tanh net whose last layer outputs mean(y) whatever the input: where training a
    loss on (n, 1) outputs against (n,) targets ends (every output against every target)."""
    mlp = net((1, 16, 1), ("tanh", "identity"))
    mlp.W[-1][:], mlp.b[-1][:] = 0.0, y.mean()
    return as_kind(mlp, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_a_mean_predictor_whose_history_cannot_tell_is_read_with_y_reshaped(kind):
    # outputs all mean(y): the (n, n) broadcast loss and the reshaped one are both var(y), so the
    # history cannot show the loop broadcast; y is read as the outputs' shape, with a note (the
    # loops that did broadcast are named by the tests below, from their own histories)
    X, y = sin_data()
    y = y[:, 0] + 0.5
    report = diagnose(mean_predictor(kind, y), X, y, history=np.linspace(1, 0.3, 50))
    assert not [f for f in report.findings if "broadcast" in f.message]
    assert any("diagnosed with y as the outputs' shape" in n for n in report.notes), report.notes


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


class FlatOutput(nn.Module):
    """A regression net whose forward squeezes its one output to (n,)."""

    def __init__(self):
        super().__init__()
        self.net = relu_net(2, 1)

    def forward(self, x):
        return self.net(x).squeeze(-1)


@pytest.mark.parametrize("seed", SEEDS)
def test_an_n_output_against_n_1_targets_is_a_broadcasting_loss(seed):
    rng = np.random.default_rng(seed)
    X = torch.tensor(rng.uniform(-2, 2, (300, 2)), dtype=torch.float32)
    y = (torch.sin(X[:, :1]) + X[:, 1:] ** 2)         # (n, 1)
    torch.manual_seed(seed)
    model = FlatOutput()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with pytest.warns(UserWarning, match="target size"):
        history = train(model, X, y, F.mse_loss, opt, 300)
    f = finding(diagnose(model, X, y, history=history, optimizer=opt), "loss-target-mismatch")
    assert f.evidence["output_shape"] == [300] and f.evidence["y_shape"] == [300, 1]
    fixed = diagnose(model, X, y[:, 0], history=history, optimizer=opt)
    assert "loss-target-mismatch" not in fixed.codes


# ----------------------------------------------------------------- loss-target-mismatch: the head
HEAD_STEPS = 150    # batches of 32 (300 before): what is named is the head, not the fit; at 150
                    # steps nll on softmax outputs is already -0.49 to -0.56 (asserted < 0) and
                    # every check below holds over the 3 seeds, measured


def digits_classifier(seed: int, head: nn.Module | None, loss_fn, loss_arg, lr=1e-3):
    X, y = digits_tensors()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), *([head] if head else []))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = train(model, X, y, loss_fn, opt, HEAD_STEPS, batch=32, seed=seed)
    return diagnose(model, X, y, loss=loss_arg, history=history, optimizer=opt)


@pytest.mark.parametrize("seed", SEEDS)
def test_nll_loss_after_softmax_is_named_and_not_read_as_a_regression(seed):
    report = digits_classifier(seed, nn.Softmax(dim=1), F.nll_loss, F.nll_loss)
    f = finding(report, "loss-target-mismatch")
    assert f.evidence["loss_value"] < 0 and "log_softmax" in f.fix
    assert "output-range-mismatch" not in report.codes     # y are class indices, not values
    fixed = digits_classifier(seed, nn.LogSoftmax(dim=1), F.nll_loss, F.nll_loss)
    assert "loss-target-mismatch" not in fixed.codes, str(fixed)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_relu_on_the_logits_is_named(seed):
    report = digits_classifier(seed, nn.ReLU(), F.cross_entropy, "cross_entropy", lr=1e-2)
    f = finding(report, "loss-target-mismatch")
    assert f.evidence["head"] == "relu" and f.evidence["output_min"] >= 0
    assert "final ReLU" in f.fix
    fixed = digits_classifier(seed, None, F.cross_entropy, "cross_entropy", lr=1e-2)
    assert "loss-target-mismatch" not in fixed.codes, str(fixed)


class OneLogitNet(nn.Module):
    """2-16-16-16-1 tanh as a class, F.relu on its one logit when ``relu`` (no module to read)."""

    def __init__(self, relu: bool):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(2, 16), nn.Linear(16, 16), nn.Linear(16, 16)])
        self.out, self.relu = nn.Linear(16, 1), relu

    def forward(self, x):
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return F.relu(self.out(x)) if self.relu else self.out(x)


@functools.lru_cache(maxsize=None)
def moons_logit_run(seed: int, relu: bool):
    """make_moons(600, noise 0.25), standardised; SGD lr 0.05 momentum 0.9, batches of 32, 450
    steps under bce_with_logits."""
    from sklearn.datasets import make_moons
    X, y = make_moons(600, noise=0.25, random_state=seed)
    X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)[:, None]
    torch.manual_seed(seed)
    model = OneLogitNet(relu)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = train(model, X, y, F.binary_cross_entropy_with_logits, opt, 450, 32, seed=seed)
    return diagnose(model, X, y, loss="bce_with_logits", history=history, optimizer=opt)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_relu_on_one_logit_that_died_is_named_not_a_constant_output(seed):
    """Every output 0 on one column: a relu whose input is negative on every row, not the
    log_softmax over one column that gives 0 too (read first before)."""
    report = moons_logit_run(seed, True)
    first = report.causes[0]
    assert first.code == "loss-target-mismatch" and first.evidence["head"] == "relu", str(report)
    assert "final ReLU" in first.fix
    fixed = moons_logit_run(seed, False)
    assert "loss-target-mismatch" not in fixed.codes and not fixed.errors, str(fixed)


class LogSoftmaxInChunks(nn.Module):
    """F.log_softmax(x, dim) inside forward, on ``chunks`` pieces of the rows it is given: a
    functional head (no module to read its kind from) that a chunked forward also shows."""

    def __init__(self, dim: int, chunks: int = 1):
        super().__init__()
        self.dim, self.chunks = dim, chunks

    def forward(self, x):
        return torch.cat([F.log_softmax(c, dim=self.dim) for c in x.chunk(self.chunks)])


OVER_THE_BATCH = {   # id: (the head normalising over dim 0, its twin over dim 1, forward calls)
    "LogSoftmax(dim=0)": (nn.LogSoftmax(dim=0), nn.LogSoftmax(dim=1), 1),
    "F.log_softmax(x, dim=0)": (LogSoftmaxInChunks(0), LogSoftmaxInChunks(1), 1),
    "in 3 chunks": (LogSoftmaxInChunks(0, 3), LogSoftmaxInChunks(1, 3), 3),
}


@pytest.mark.parametrize("head", list(OVER_THE_BATCH))
@pytest.mark.parametrize("seed", SEEDS)
def test_a_log_softmax_over_the_batch_is_a_loss_target_mismatch(seed, head):
    over_rows, over_classes, calls = OVER_THE_BATCH[head]
    report = digits_classifier(seed, over_rows, F.nll_loss, "nll", lr=1e-2)
    f = report.causes[0]
    assert f.code == "loss-target-mismatch" and f.severity == "error", str(report)
    assert f.evidence["normalised_over"] == "rows" and f.evidence["column_sum"] == calls
    assert f.evidence["row_sum_max"] < 0.5 and "dim=1" in f.fix
    fixed = digits_classifier(seed, over_classes, F.nll_loss, "nll", lr=1e-2)
    assert "loss-target-mismatch" not in fixed.codes and fixed.ok, str(fixed)


def test_saturated_sigmoid_outputs_whose_columns_sum_to_whole_numbers_are_no_softmax():
    """Outputs all 0 or 1 (a sure multi-label net) sum to counts over the rows: not a softmax
    over the batch, which spreads each column's 1 over its rows."""
    X = np.eye(4)
    model = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid())
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(4) * 60 - 30), model[0].bias.zero_()
    report = diagnose(model, X, np.eye(4), loss="mse")
    assert not any(f.evidence.get("normalised_over") for f in report.findings), str(report)


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


# ----------------------------------------------------------------- losses that cannot be
@pytest.mark.parametrize("seed", SEEDS)
def test_nll_on_raw_outputs_runs_below_zero_and_is_told_to_add_log_softmax(reference_run, seed):
    model, X, y, loss, history, opt = reference_run("nll-on-raw-outputs", seed)
    report = diagnose(model, X, y, loss=loss, history=history, optimizer=opt)
    first = report.causes[0]
    assert first.code == "loss-target-mismatch" and first.severity == "error", str(report)
    assert first.evidence["loss_value"] < 0 and abs(first.evidence["logsumexp_max"]) > 1
    assert "log_softmax" in first.fix.lower() and not report.ok


@pytest.mark.parametrize("seed", SEEDS)
def test_nll_on_log_softmax_is_quiet(reference_run, seed):
    model, X, y, loss, history, opt = reference_run("nll-on-log-softmax", seed)
    report = diagnose(model, X, y, loss=loss, history=history, optimizer=opt)
    assert report.ok and not report.findings, str(report)


def test_a_history_below_zero_is_not_the_loss_diagnose_was_given():
    X, y = digits_tensors()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    history = list(np.linspace(0.5, -3.0, 100))      # what nll of raw scores records
    f = finding(diagnose(model, X, y, loss="cross_entropy", history=history),
                "loss-target-mismatch")
    assert f.severity == "error" and f.evidence["history_min"] == pytest.approx(-3.0)
    assert f.evidence["steps_below_zero"] == int(np.sum(np.array(history) < 0))


def test_a_history_at_zero_is_within_the_bound():
    X, y = digits_tensors()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    report = diagnose(model, X, y, loss="cross_entropy", history=list(np.linspace(2.3, 0.0, 100)))
    assert "loss-target-mismatch" not in report.codes, str(report)
