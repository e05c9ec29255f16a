"""diagnostics/checks/shrunk.py: shrunk-gradient, a .grad scaled down between backward() and step().

Digits in batches of 32 through a 64-32-32-10 ReLU net under SGD, as people write the loop,
over three seeds: clip_grad_norm_ with max_norm 1e-3, and a loss multiplied by 1e-4 before
backward(), must be named first, and so must clip_grad_value_(1e-4) under SGD and momentum,
failing or not, from the share of .grad entries pinned at +-1e-4. The negatives: the same loop
unclipped and with a max_norm of 1 (clipping at the gradient's scale), clip_grad_value_(1), max_norm
1e-3 and clip_value 1e-4 under Adam (which divides the scale out), and one batch repeated (a .grad
small because the loop fitted its batch, not because it was scaled).
"""

import functools

import pytest
import torch
from torch.nn import functional as F

from diagnostics import diagnose
from diagnostics.checks.shrunk import PINNED, SHRUNK

from diagnose_helpers import SEEDS, digits_tensors, finding, relu_net, train

STEPS, BATCH = 300, 32
VARIANTS = {    # name: (optimizer: sgd, momentum 0.9 or adam; clip max_norm, loss factor, one batch repeated)
    "clip-1e-3": ("sgd", 1e-3, 1.0, False),
    "loss-times-1e-4": ("sgd", None, 1e-4, False),
    "unclipped": ("sgd", None, 1.0, False),
    "clip-1": ("sgd", 1.0, 1.0, False),
    "adam-clip-1e-3": ("adam", 1e-3, 1.0, False),
    "one-batch": ("momentum", None, 1.0, True),
    # clip_grad_value_ (the 5th field): far below the gradient's entries, and at 1 (harmless)
    "clip-value-1e-4": ("momentum", None, 1.0, False, 1e-4),
    "sgd-clip-value-1e-4": ("sgd", None, 1.0, False, 1e-4),
    "clip-value-1": ("momentum", None, 1.0, False, 1.0),
    "sgd-clip-value-1": ("sgd", None, 1.0, False, 1.0),
    "adam-clip-value-1e-4": ("adam", None, 1.0, False, 1e-4),
}


def clipped_loop(variant: str, seed: int):
    """(model, X, y, loss, history, optimizer) of one VARIANTS loop."""
    name, clip, factor, one_batch, *value = VARIANTS[variant]
    X, y = digits_tensors()
    torch.manual_seed(seed)
    model = relu_net(64, 10)
    opt = (torch.optim.Adam(model.parameters(), lr=1e-3) if name == "adam" else
           torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9 if name == "momentum" else 0))
    g, history, first = torch.Generator().manual_seed(seed), [], None
    for _ in range(STEPS):
        rows = torch.randint(0, len(X), (BATCH,), generator=g)
        first = rows if first is None or not one_batch else first
        opt.zero_grad()
        loss = F.cross_entropy(model(X[first]), y[first]) * factor
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        if value:
            torch.nn.utils.clip_grad_value_(model.parameters(), value[0])
        opt.step()
        history.append(loss.item())
    return model, X, y, "cross_entropy", history, opt


@pytest.fixture(scope="module")
def diagnosed(shared_runs):
    def get(variant: str, seed: int):
        run = shared_runs.get(f"shrunk {variant} seed {seed}", lambda: clipped_loop(variant, seed))
        model, X, y, loss, history, opt = run
        return run, diagnose(model, X, y, loss=loss, history=history, optimizer=opt)
    return get


def loss_gradient_norm(model, X, y) -> float:
    """The mean loss's gradient on all rows, by autograd, over every parameter."""
    grads = torch.autograd.grad(F.cross_entropy(model(X), y), list(model.parameters()))
    return torch.sqrt(sum(g.double().pow(2).sum() for g in grads)).item()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_max_norm_far_below_the_gradient_is_named_first_with_the_clipped_norm(diagnosed, seed):
    (model, X, y, *_), report = diagnosed("clip-1e-3", seed)
    assert report.findings[0].code == "shrunk-gradient", report.verdict()
    ev = finding(report, "shrunk-gradient").evidence
    assert ev["stepped_grad_norm"] == pytest.approx(1e-3, rel=1e-4)    # clip pins the total norm
    assert ev["loss_grad_norm"] == pytest.approx(loss_gradient_norm(model, X, y), rel=1e-4)
    assert ev["shrink"] <= SHRUNK
    assert "clip_grad_norm_" in report.findings[0].fix


@pytest.mark.parametrize("seed", SEEDS)
def test_a_loss_scaled_down_before_backward_is_named_first(diagnosed, seed):
    _, report = diagnosed("loss-times-1e-4", seed)
    assert report.findings[0].code == "shrunk-gradient", report.verdict()
    assert "small factor" in report.findings[0].fix


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("variant", ["unclipped", "clip-1", "adam-clip-1e-3"])
def test_loops_that_train_are_not_called_shrunk(diagnosed, variant, seed):
    (model, X, y, *_), report = diagnosed(variant, seed)
    assert "shrunk-gradient" not in report.codes, report.verdict()
    assert not report.errors, report.verdict()       # they trained: the negative is a real one


@pytest.mark.parametrize("seed", SEEDS)
def test_one_batch_repeated_leaves_a_small_grad_that_is_not_called_shrunk(diagnosed, seed):
    (model, X, y, _, history, _), report = diagnosed("one-batch", seed)
    stepped = torch.sqrt(sum(p.grad.double().pow(2).sum() for p in model.parameters())).item()
    assert stepped < SHRUNK * loss_gradient_norm(model, X, y)     # the ratio alone would fire
    assert history[-1] < 0.01 * history[0]                        # ...but the batch was fitted
    assert "shrunk-gradient" not in report.codes, report.verdict()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("optimizer", ["", "sgd-"])
def test_a_clip_value_far_below_the_entries_is_named_from_the_pinned_share(diagnosed, optimizer,
                                                                           seed):
    (model, *_), report = diagnosed(f"{optimizer}clip-value-1e-4", seed)
    g = torch.cat([p.grad.reshape(-1).abs() for p in model.parameters()])
    assert report.findings[0].code == "shrunk-gradient", report.verdict()
    ev = finding(report, "shrunk-gradient").evidence
    assert ev["pinned_share"] == pytest.approx((g == 1e-4).double().mean().item())
    assert ev["pinned_share"] >= PINNED and ev["pinned_at"] == pytest.approx(1e-4)
    assert ev["loss_grad_largest_entry"] > 10 * ev["pinned_at"]    # the fix's "far above"
    assert "clip_value" in report.findings[0].fix and "clip_grad_norm_" in report.findings[0].fix
    (twin, *_), healthy = diagnosed(f"{optimizer}clip-value-1", seed)
    assert "shrunk-gradient" not in healthy.codes and not healthy.errors, healthy.verdict()
    g = torch.cat([p.grad.reshape(-1).abs() for p in twin.parameters()])
    assert (g >= g.max()).double().mean().item() < 0.01    # one entry at its largest: 1/n


def test_a_pinned_grad_under_adam_is_not_judged(diagnosed):
    """Adam divides the scale out of its steps: a clipped .grad still gives sign-like steps."""
    _, report = diagnosed("adam-clip-value-1e-4", 0)
    assert "shrunk-gradient" not in report.codes, report.verdict()


@functools.lru_cache(maxsize=None)
def divided_loss_run(seed: int, divided: bool):
    """Digits through relu_net (64-32-32-10), SGD lr 0.02 momentum 0.9, batches of 32 for 420
    steps; ``divided``: F.cross_entropy(...) / len(xb), the mean divided by the batch size again."""
    X, y = digits_tensors()
    torch.manual_seed(seed)
    model = relu_net(64, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    loss_fn = (lambda out, t: F.cross_entropy(out, t) / len(t)) if divided else F.cross_entropy
    history = train(model, X, y, loss_fn, opt, 420, batch=32, seed=seed)
    return diagnose(model, X, y, loss="cross_entropy", history=history, optimizer=opt)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_mean_loss_divided_by_the_batch_size_again_is_named_from_the_history(seed):
    """Its .grad is 1/32 of the mean loss's (above SHRUNK), but the history starts at 1/32 of
    what the fresh model scores: the loss was scaled, and the gap to the loss on X is its."""
    report = divided_loss_run(seed, True)
    first = report.causes[0]
    assert first.code == "shrunk-gradient", str(report)
    assert first.evidence["history_scale"] == pytest.approx(1 / 32, rel=0.2)
    assert "generalization-gap" not in {c.code for c in report.causes}
    healthy = divided_loss_run(seed, False)
    assert "shrunk-gradient" not in healthy.codes and not healthy.errors, str(healthy)
