"""Losses read by what they are (issue 22, item 2): every torch loss module, functional form and
common spelling gives the verdict of the string call on the same trained model, the options that
change the loss's value are scored in the constant predictor and the references too, and what
cannot be read gets an error saying what to write. docs/inputs.md is the table checked here."""

import functools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from diagnose_helpers import digits_tensors
from diagnostics import diagnose
from diagnostics.losses import constant_loss, fitted_constant_loss, read_loss

CE_FLOOR = 0.1   # label smoothing 0.1 over 10 classes: no prediction scores under the smoothed
                 # target's entropy, -(0.91 ln 0.91 + 9 x 0.01 ln 0.01) = 0.50


def verdict(report) -> dict:
    s = report.summary
    return {"codes": sorted(report.codes), "first_cause": [f.code for f in report.causes[:1]],
            "loss": s["loss"], "loss_value": s["loss_value"], "constant": s["constant_loss"],
            "linear": s.get("linear_loss")}


SPELLINGS = {   # run: (the string call's loss, the forms that must read as it)
    "digits": ("cross_entropy", ["ce", "CE", "CrossEntropyLoss", "cross-entropy", "Cross_Entropy",
                                 "crossentropy", nn.CrossEntropyLoss(), F.cross_entropy,
                                 functools.partial(F.cross_entropy, reduction="mean")]),
    "sin": ("mse", ["MSE", "l2", "MSELoss", "mean_squared_error", nn.MSELoss(), F.mse_loss]),
    "nll-on-log-softmax": ("nll", ["NLLLoss", "NLL", nn.NLLLoss(), F.nll_loss]),
    "nll-on-raw-outputs": ("nll", [nn.NLLLoss(), F.nll_loss]),
    "double-sigmoid": ("bce_with_logits", ["BCEWithLogitsLoss", "bce_logits",
                                           nn.BCEWithLogitsLoss(),
                                           F.binary_cross_entropy_with_logits]),
    "sigmoid-head-bce": ("bce", ["BCELoss", "binary_cross_entropy", nn.BCELoss(),
                                 F.binary_cross_entropy]),
    "sin-l1": ("l1", ["L1Loss", "mae", nn.L1Loss(), F.l1_loss]),
    "sin-smooth-l1": ("smooth_l1", ["SmoothL1Loss", nn.SmoothL1Loss(), F.smooth_l1_loss]),
    "sin-huber": ("huber", ["HuberLoss", nn.HuberLoss(), F.huber_loss]),
}
ROWS = [pytest.param(run, form, id=f"{run}-{form if isinstance(form, str) else type(form).__name__}"
                     f"{'' if isinstance(form, str) else i}")
        for run, (_, forms) in SPELLINGS.items() for i, form in enumerate(forms)]


@pytest.fixture(scope="module")
def runs(loop_run, input_run, reference_run):
    """name -> (model, X, y, history) of a trained run (the sigmoid-head runs share one model)."""
    def kept(run):
        return run[0], run[1], run[2], run[4]
    sigmoid = kept(input_run("double-sigmoid"))
    return {"digits": kept(loop_run("digits-batch-32-adam", 0)),
            "sin": kept(loop_run("sin-full-batch-adam", 0)),
            "nll-on-log-softmax": kept(reference_run("nll-on-log-softmax", 0)),
            "nll-on-raw-outputs": kept(reference_run("nll-on-raw-outputs", 0)),
            "double-sigmoid": sigmoid, "sigmoid-head-bce": sigmoid,
            "sin-l1": kept(input_run("sin-l1")), "sin-smooth-l1": kept(input_run("sin-l1")),
            "sin-huber": kept(input_run("sin-huber"))}


@pytest.mark.parametrize("run,form", ROWS)
def test_each_loss_module_and_spelling_gets_the_verdict_of_the_string_call(run, form, runs):
    model, X, y, history = runs[run]
    expected = diagnose(model, X, y, loss=SPELLINGS[run][0], history=history)
    got = diagnose(model, X, y, loss=form, history=history)
    assert verdict(got) == verdict(expected)
    assert got.summary["loss"] == SPELLINGS[run][0]


def test_a_loss_module_after_a_sigmoid_head_names_the_double_sigmoid(runs):
    model, X, y, history = runs["double-sigmoid"]
    report = diagnose(model, X, y, loss=nn.BCEWithLogitsLoss(), history=history)
    first = report.causes[0]
    assert first.code == "loss-target-mismatch" and "applies a sigmoid itself" in first.message


def test_nll_module_on_raw_outputs_is_named(runs):
    model, X, y, history = runs["nll-on-raw-outputs"]
    report = diagnose(model, X, y, loss=nn.NLLLoss(), history=history)
    assert report.causes[0].code == "loss-target-mismatch"
    assert "log-probabilities" in report.causes[0].message


# ----------------------------------------------------------------- options honoured
def test_label_smoothing_scores_the_constant_and_the_references_under_the_same_loss(input_run):
    model, X, y, loss, history, _ = input_run("digits-smoothed")
    report = diagnose(model, X, y, loss=loss, history=history)
    s = report.summary
    with torch.no_grad():
        assert s["loss_value"] == pytest.approx(float(loss(model(X), y)), rel=1e-5)
    p = np.bincount(y.numpy(), minlength=10) / len(y)
    smoothed = 0.9 * p + 0.01
    assert s["constant_loss"] == pytest.approx(-np.sum(smoothed * np.log(smoothed)), rel=1e-5)
    assert s["linear_loss"] > 5 * CE_FLOOR       # unsmoothed, the linear reference scores ~0.1
    assert s["loss_options"] == {"label_smoothing": 0.1}


def test_class_weights_score_the_weighted_mean_and_its_constant(runs):
    model, X, y, history = runs["digits"]
    w = torch.linspace(0.5, 2.0, 10)
    report = diagnose(model, X, y, loss=nn.CrossEntropyLoss(weight=w), history=history)
    with torch.no_grad():
        assert report.summary["loss_value"] == pytest.approx(
            float(F.cross_entropy(model(X), y, weight=w)), rel=1e-5)
    shares = np.bincount(y.numpy(), minlength=10) * w.numpy()
    q = shares / shares.sum()    # the weighted constant is the weighted class shares
    assert report.summary["constant_loss"] == pytest.approx(-np.sum(q * np.log(q)), rel=1e-5)


def test_pos_weight_has_the_closed_form_constant():
    rng = np.random.default_rng(0)
    y = (rng.random((400, 2)) < [0.2, 0.6]).astype(np.float64)
    pw = torch.tensor([3.0, 0.5], dtype=torch.float64)
    m = y.mean(axis=0)
    p = pw.numpy() * m / (pw.numpy() * m + 1 - m)   # where d/dp of the weighted log-loss is 0
    expected = np.mean(-(pw.numpy() * m * np.log(p) + (1 - m) * np.log1p(-p)))
    got = fitted_constant_loss("bce_with_logits", y, 2, {"pos_weight": pw})
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name,options", [("l1", {}), ("huber", {"delta": 0.3}),
                                          ("smooth_l1", {"beta": 0.3}), ("huber", {})])
def test_the_constant_of_a_robust_loss_is_its_minimum_over_a_grid(name, options):
    y = np.random.default_rng(1).standard_t(2, (300, 1))    # heavy tails: median != mean
    fn = {"l1": F.l1_loss, "huber": F.huber_loss, "smooth_l1": F.smooth_l1_loss}[name]
    grid = np.linspace(-2, 2, 4001)
    yt = torch.as_tensor(y)
    best = min(float(fn(torch.full_like(yt, c), yt, **options)) for c in grid)
    assert constant_loss(name, y, 1, options) == pytest.approx(best, rel=1e-4, abs=1e-6)


def test_ignore_index_and_the_defaults_are_not_carried_as_options():
    spec = read_loss(nn.CrossEntropyLoss())
    assert spec.name == "cross_entropy" and spec.plain and spec.ignore_index == -100
    assert read_loss(nn.HuberLoss(delta=0.5)).options == {"delta": 0.5}
    assert read_loss(functools.partial(F.cross_entropy, label_smoothing=0.2)).options == \
        {"label_smoothing": 0.2}
    assert read_loss(lambda out, t: (out - t).abs().mean()).name == "custom"


# ----------------------------------------------------------------- what cannot be read
BAD = {
    "class-not-instance": (nn.CrossEntropyLoss, TypeError,
                           ("the class torch.nn.modules.loss.CrossEntropyLoss",
                            "loss=nn.CrossEntropyLoss()")),
    "reduction-sum": (nn.MSELoss(reduction="sum"), ValueError,
                      ("reduction='sum'", "accepted: reduction='mean'", "batch size")),
    "reduction-none": (nn.CrossEntropyLoss(reduction="none"), ValueError, ("reduction='none'",)),
    "unknown-spelling": ("cross_entropie", ValueError,
                         ("loss='cross_entropie' is unknown", "'CrossEntropyLoss'", "nn.CrossEntropyLoss()")),
    "partial-unknown-option": (functools.partial(F.mse_loss, size_average=False), ValueError,
                               ("['size_average']", "does not read")),
    "not-a-loss": (3, TypeError, ("loss is a int", "accepted")),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_loss_that_cannot_be_read_says_what_to_write(case):
    loss, exc, words = BAD[case]
    X, y = digits_tensors()
    with pytest.raises(exc) as info:
        diagnose(nn.Sequential(nn.Linear(64, 10)), X[:50], y[:50], loss=loss)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_a_sigmoid_head_gone_nan_under_bce_is_named_non_finite_not_a_crash():
    """A hand-written log(p) loop drove the weights to NaN: BCELoss itself refuses NaN inputs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    with torch.no_grad():
        model[2].weight[0, 0] = float("nan")
    X = torch.randn(64, 4)
    y = (X[:, :1] > 0).float()
    report = diagnose(model, X, y, loss="bce")
    assert report.findings[0].code == "non-finite", str(report)
