"""diagnose() never harms the caller's model, gives the same answer twice, and fails clearly.

Property tests (hypothesis) draw MLP shapes, activations, dtypes, losses and data; whatever they
draw, diagnose either returns a report or raises one of the documented ValueError/TypeError, and
the model, its .grad fields, flags, mode and hooks, and the global torch/numpy/random RNG states
are exactly as before. Then each bad input of issue 7 at the API level, with its message.
"""

import json
import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from cases.backends.numpy_mlp import MLP
from cases.backends.torch_train import from_numpy
from diagnostics import Report, diagnose, sharpness
from diagnostics.inputs import MAX_ROWS, SUBSAMPLE_SEED

from diagnose_helpers import Functional

HIDDEN = ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu")
HEADS = ("identity", "sigmoid", "tanh", "relu", "softmax")
LOSSES = ("mse", "half_mse", "cross_entropy", "nll", "bce", "bce_with_logits", "hinge", "custom")
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class WithSideEffects(Functional):
    """Activations as function calls inside forward, a dropout and a buffer for good measure."""

    def __init__(self, sizes, acts):
        super().__init__(sizes, acts)
        self.drop = nn.Dropout(0.5)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1                              # a forward with a side effect on a buffer
        return super().forward(self.drop(x))


# ----------------------------------------------------------------- snapshots of what must not change
def torch_state(model: nn.Module) -> dict:
    return {
        "params": {n: (p.detach().cpu().numpy().tobytes(), p.dtype, p.requires_grad,
                       None if p.grad is None else p.grad.cpu().numpy().tobytes())
                   for n, p in model.named_parameters()},
        "buffers": {n: b.cpu().numpy().tobytes() for n, b in model.named_buffers()},
        "modes": [m.training for m in model.modules()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
                   len(getattr(m, "_backward_pre_hooks", {}))) for m in model.modules()],
        "tensor_hooks": [p._backward_hooks for p in model.parameters()],
    }


def numpy_state(mlp: MLP) -> dict:
    return {"arrays": [(a.tobytes(), a.dtype, a.shape, a.flags.writeable) for a in mlp.parameters()],
            "activations": mlp.activations, "slope": mlp.slope}


def model_state(model) -> dict:
    return torch_state(model) if isinstance(model, nn.Module) else numpy_state(model)


def rng_state() -> tuple:
    return (torch.random.get_rng_state().numpy().tobytes(), json.dumps(
        np.random.get_state(legacy=False), default=str), random.getstate(),
        torch.get_num_threads())


def same_report(a: Report, b: Report) -> bool:
    return json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


# ----------------------------------------------------------------- what hypothesis draws
@st.composite
def calls(draw):
    hidden = draw(st.lists(st.integers(1, 8), min_size=0, max_size=3))
    d_in, d_out = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    sizes = (d_in, *hidden, d_out)
    acts = tuple(draw(st.sampled_from(HIDDEN)) for _ in hidden) + (draw(st.sampled_from(HEADS)),)
    kind = draw(st.sampled_from(("numpy", "sequential", "functional")))
    dtype = draw(st.sampled_from((np.float32, np.float64)))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    mlp = MLP.init(sizes, acts, draw(st.sampled_from(("torch_default", "randn", "zeros", "he"))),
                   rng, dtype=dtype)
    model = drawn_model(mlp, kind, draw)
    n = draw(st.integers(1, 40))
    X = rng.standard_normal((n, d_in)) * draw(st.sampled_from((1e-3, 1.0, 1e3)))
    loss = draw(st.sampled_from(LOSSES))
    y = targets(loss, n, d_out, rng, draw)
    X, y = as_inputs(X, y, draw)
    kw = {"loss": (lambda out, t: ((out - t.reshape(out.shape)) ** 2).mean()) if loss == "custom"
          else loss}
    if draw(st.booleans()):
        kw["history"] = np.abs(rng.standard_normal(draw(st.integers(0, 300)))).cumsum()[::-1]
    if draw(st.booleans()):
        kw["lr"] = draw(st.sampled_from((1e-3, 0.1, 10.0)))
    if draw(st.booleans()):
        kw["weight_decay"] = draw(st.sampled_from((0.0, 1e-4, 10.0)))
    if draw(st.booleans()):                      # held-out rows: here the same rows again
        kw["X_val"], kw["y_val"] = X, y
    return model, X, y, kw


def drawn_model(mlp: MLP, kind: str, draw):
    if kind == "numpy":
        return mlp
    dtype = torch.float32 if mlp.dtype == np.float32 else torch.float64
    if kind == "sequential":
        model = from_numpy(mlp, dtype=dtype)
    else:
        model = WithSideEffects(mlp.sizes, mlp.activations).to(dtype)
    model.train(draw(st.booleans()))
    params = list(model.parameters())
    if draw(st.booleans()):                      # a .grad left over from the caller's last step
        for p in params:
            p.grad = torch.full_like(p, 0.5)
    if draw(st.booleans()):                      # a frozen layer
        params[0].requires_grad_(False)
    if draw(st.booleans()):                      # the caller's own hook
        model.register_forward_hook(lambda m, i, o: None)
    return model


def targets(loss, n, k, rng, draw):
    if loss in ("cross_entropy", "nll", "hinge"):
        return rng.integers(0, k, n)
    if loss in ("bce", "bce_with_logits"):
        return rng.random((n, k))
    return rng.standard_normal((n, k)) * draw(st.sampled_from((1.0, 1e3)))


def as_inputs(X, y, draw):
    """numpy arrays, or tensors of any float dtype (bfloat16 included), or integer X."""
    form = draw(st.sampled_from(("numpy", "float32", "float16", "bfloat16", "int")))
    if form == "numpy":
        return X, y
    if form == "int":
        return X.round().astype(np.int64), y
    dtype = getattr(torch, form)
    return torch.as_tensor(X).to(dtype), torch.as_tensor(y)


# ----------------------------------------------------------------- the properties
@PROPERTY
@given(calls())
def test_diagnose_leaves_the_model_and_the_global_rngs_as_they_were(call):
    model, X, y, kw = call
    before, rngs = model_state(model), rng_state()
    try:
        diagnose(model, X, y, **kw)
    except (ValueError, TypeError) as e:       # the documented errors, each saying what is accepted
        assert "accepted" in str(e), str(e)
    after = model_state(model)
    assert after == before
    assert rng_state() == rngs


@PROPERTY
@given(calls())
def test_the_same_call_twice_gives_the_same_report(call):
    model, X, y, kw = call
    try:
        first = diagnose(model, X, y, **kw)
    except (ValueError, TypeError):
        return
    assert same_report(first, diagnose(model, X, y, **kw))
    json.dumps(first.to_dict())                  # JSON-able as promised
    assert str(first).startswith("diagnose:")


@PROPERTY
@given(calls())
def test_sharpness_leaves_the_model_as_it_was(call):
    model, X, y, kw = call
    if kw["loss"] not in ("mse", "cross_entropy"):
        return
    before, rngs = model_state(model), rng_state()
    try:
        lam = sharpness(model, X, y, loss=kw["loss"])
    except (ValueError, TypeError):
        return
    assert isinstance(lam, float)
    assert model_state(model) == before and rng_state() == rngs


def test_a_model_with_a_dropout_reads_the_same_in_train_mode():
    """Dropout would make every call differ: the probe runs a copy in eval mode."""
    torch.manual_seed(0)
    model = WithSideEffects((3, 16, 2), ("relu", "identity")).double().train()
    X, y = np.random.default_rng(0).standard_normal((50, 3)), np.arange(50) % 2
    assert same_report(diagnose(model, X, y, loss="cross_entropy"),
                       diagnose(model.eval(), X, y, loss="cross_entropy"))
    assert model.calls == 0


# ----------------------------------------------------------------- bad inputs, each named
def small():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 3)).double()


def data(n=20):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)), rng.integers(0, 3, n)


def raises(exc, *words, model=None, X=None, y=None, **kw):
    X0, y0 = data()
    with pytest.raises(exc) as info:
        diagnose(small() if model is None else model, X0 if X is None else X,
                 y0 if y is None else y, **kw)
    text = str(info.value)
    for word in words:
        assert word in text, text
    return info.value


def test_held_out_rows_need_both_halves_and_the_columns_of_x():
    X, y = data()
    raises(ValueError, "X_val was given without y_val", "both", X_val=X)
    raises(ValueError, "y_val was given without X_val", "both", y_val=y)
    raises(ValueError, f"X_val has 1 columns but X has {X.shape[1]}", "columns of X",
           X_val=X[:, :1], y_val=y)
    raises(ValueError, "X_val has 5 rows but y_val has 20", X_val=X[:5], y_val=y)


def test_x_and_y_of_different_lengths():
    X, y = data()
    raises(ValueError, "X has 20 rows but y has 19", "accepted", y=y[:19], loss="cross_entropy")


def test_x_not_2d():
    X, y = data()
    raises(ValueError, "X has shape (20,)", "2-D", "reshape", X=X[:, 0])
    raises(ValueError, "(20, 3, 1)", "2-D", X=X[:, :, None])


def test_empty_x():
    raises(ValueError, "X is empty", "(0, 3)", "at least one row", X=np.zeros((0, 3)),
           y=np.zeros(0, int))


@pytest.mark.parametrize("where", ["X", "y"])
def test_nan_and_inf_are_counted_and_located(where):
    X, y = data()
    a = (X if where == "X" else y.astype(float)).copy()
    a.flat[[4, 7]] = np.nan
    a.flat[9] = np.inf
    first = np.unravel_index(4, a.shape)
    kw = {"X": a} if where == "X" else {"y": a, "loss": "mse"}
    raises(ValueError, f"{where} holds 2 NaN and 1 Inf of {a.size} values",
           f"index {tuple(int(i) for i in first)}", "finite values only", **kw)


def test_class_indices_out_of_range_or_negative():
    X, y = data()
    raises(ValueError, "y holds 1 class indices outside [0, 2]", "max 3", "3 outputs", "accepted",
           y=np.r_[y[:-1], 3], loss="cross_entropy")
    raises(ValueError, "outside [0, 2]", "min -1", y=np.r_[-1, y[1:]], loss="hinge")


def test_float_targets_with_a_classification_loss():
    X, y = data()
    raises(TypeError, "float dtype", "cross_entropy", "integer class indices", "accepted",
           y=y.astype(float) + 0.5, loss="cross_entropy")


def test_one_hot_rows_are_read_as_class_indices():
    X, y = data()
    model = small()
    assert same_report(diagnose(model, X, np.eye(3)[y], loss="cross_entropy"),
                       diagnose(model, X, y, loss="cross_entropy"))


def test_unknown_loss_lists_the_valid_ones():
    raises(ValueError, "loss='l7' is unknown", "mse, half_mse, cross_entropy, nll, bce, "
           "bce_with_logits, hinge", "callable", loss="l7")
    raises(TypeError, "loss is a int", "accepted", loss=3)


@pytest.mark.parametrize("model,words", [
    (object(), ("builtins.object", "torch.nn.Module", "numpy_mlp.MLP")),
    (lambda x: x, ("function", "accepted")),
], ids=["object", "function"])
def test_a_model_that_is_neither_a_module_nor_the_numpy_mlp(model, words):
    raises(TypeError, *words, model=model)


def test_a_model_without_parameters():
    raises(ValueError, "ReLU without parameters", "at least one parameter", model=nn.ReLU())


def test_a_forward_that_raises_is_wrapped_with_the_shape_and_chained():
    model = nn.Sequential(nn.Linear(5, 2)).double()
    err = raises(ValueError, "model(X) raised RuntimeError", "shape (20, 3)", "accepted",
                 model=model)
    assert isinstance(err.__cause__, RuntimeError)


def test_the_numpy_mlp_with_the_wrong_width_names_it():
    mlp = MLP.init((5, 4, 3), ("relu", "identity"), "he", np.random.default_rng(0))
    raises(ValueError, "X has 3 columns", "takes 5 inputs", "accepted", model=mlp)


def test_a_forward_that_returns_no_tensor():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3).double()

        def forward(self, x):
            return self.lin(x), x
    raises(TypeError, "returned a tuple", "one tensor", model=Pair())


@pytest.mark.parametrize("arg,value,exc,words", [
    ("lr", -1.0, ValueError, ("lr=-1.0", "finite float >= 0")),
    ("lr", "0.1", TypeError, ("lr is a str", "float or None")),
    ("weight_decay", float("nan"), ValueError, ("weight_decay=nan",)),
    ("optimizer", "sgd", TypeError, ("optimizer is a str", "torch.optim.Optimizer")),
    ("history", np.ones((3, 3)), ValueError, ("history has shape (3, 3)", "1-D")),
])
def test_bad_keyword_arguments(arg, value, exc, words):
    raises(exc, *words, loss="cross_entropy", **{arg: value})


@pytest.mark.parametrize("dtype", [torch.int64, torch.float16, torch.bfloat16])
def test_int_float16_and_bfloat16_inputs_are_converted_and_said(dtype):
    X, y = data()
    model = small()
    Xc = torch.as_tensor(X * (10 if dtype == torch.int64 else 1)).to(dtype)
    report = diagnose(model, Xc, y, loss="cross_entropy")
    assert any("converted to the model's float dtype" in n for n in report.notes), report.notes
    exact = diagnose(model, Xc.to(torch.float64), y, loss="cross_entropy")
    assert report.findings == exact.findings   # converted exactly as the caller's .double() would


def test_a_float16_model_is_diagnosed_without_changing_it():
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3)).half()
    X, y = data()
    before = torch_state(model)
    report = diagnose(model, X, y, loss="cross_entropy")
    assert report.summary["widths"] == "3-8-3" and torch_state(model) == before


def test_a_very_large_x_is_subsampled_deterministically_and_said():
    rng = np.random.default_rng(1)
    n = 3 * MAX_ROWS
    X, y = rng.standard_normal((n, 3)), rng.integers(0, 3, n)
    model = small()
    report = diagnose(model, X, y, loss="cross_entropy")
    assert report.summary["rows"] == MAX_ROWS and report.summary["rows_given"] == n
    assert any(f"subsample of {MAX_ROWS}" in note and f"seed {SUBSAMPLE_SEED}" in note
               for note in report.notes), report.notes
    assert same_report(report, diagnose(model, X, y, loss="cross_entropy"))
    keep = np.sort(np.random.default_rng(SUBSAMPLE_SEED).choice(n, MAX_ROWS, replace=False))
    alone = diagnose(model, X[keep], y[keep], loss="cross_entropy")
    assert alone.summary["loss_value"] == report.summary["loss_value"]


def test_a_tensor_that_requires_grad_is_read_without_touching_it():
    X, y = data()
    Xt = torch.as_tensor(X).requires_grad_(True)
    diagnose(small(), Xt, y, loss="cross_entropy")
    assert Xt.grad is None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_data_on_the_cpu_is_moved_to_a_cuda_model_and_back_nothing_changes():
    X, y = data()
    model = small().cuda()
    before, rngs = torch_state(model), rng_state()
    cuda_rng = torch.cuda.get_rng_state()
    on_gpu = diagnose(model, torch.as_tensor(X), torch.as_tensor(y), loss="cross_entropy", lr=0.1)
    on_cpu = diagnose(small(), X, y, loss="cross_entropy", lr=0.1)
    assert on_gpu.codes == on_cpu.codes
    assert on_gpu.summary["loss_value"] == pytest.approx(on_cpu.summary["loss_value"], rel=1e-6)
    assert torch_state(model) == before and rng_state() == rngs
    assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)
    X_gpu = torch.as_tensor(X).cuda()
    assert diagnose(small(), X_gpu, y, loss="cross_entropy").codes == on_cpu.codes


def test_the_hinge_loss_has_a_sharpness():
    """Found by the property test: F.multi_margin_loss has no double backward."""
    X, y = data()
    lam = sharpness(MLP.init((3, 4, 3), ("relu", "identity"), "he", np.random.default_rng(0)), X, y,
                    loss="hinge")
    assert np.isfinite(lam)
