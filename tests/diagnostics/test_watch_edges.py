"""watch() on the loops users write beyond the plain one: several parameter groups, BatchNorm and
Dropout, float64, zero_grad(set_to_none=False), a DataLoader with a scheduler, frozen parameters.
Each watched run trains bit for bit as the same loop unwatched, and records what the loop did."""

import functools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from diagnose_helpers import same_state
from diagnostics import watch
from diagnostics.timeline import ACCUMULATED, RESET, UNKNOWN
from diagnostics.watch import DENSE_STEPS

STEPS = DENSE_STEPS + 10   # past the dense head: unsampled steps and the sampled step 50 too
ROWS, FEATURES, CLASSES, BATCH = 256, 8, 3, 32


def blobs(dtype=torch.float32):
    """Seeded inputs, three classes by the signs of two features."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(ROWS, FEATURES, generator=g, dtype=dtype)
    return X, (X[:, 0] > 0).long() + (X[:, 1] > 0).long()


def mlp(*middle: nn.Module, dtype=torch.float32) -> nn.Sequential:
    return nn.Sequential(nn.Linear(FEATURES, 16), *middle, nn.ReLU(),
                         nn.Linear(16, CLASSES)).to(dtype)


def zero(opt) -> None:
    opt.zero_grad()


def batches(X, y, steps=STEPS):
    return ((X[i:i + BATCH], y[i:i + BATCH]) for i in
            (BATCH * t % ROWS for t in range(steps)))


def plain_loop(model, opt, data, log, reset=zero, scheduler=None, clip=None) -> list:
    """zero_grad (``reset``), forward, backward, [clip_grad_norm_], step, log; the lr of each
    group at each step."""
    lrs = []
    for X, y in data:
        reset(opt)
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        log(loss)
        if scheduler is not None:
            scheduler.step()
    return lrs


def twin_runs(build, loop=plain_loop, **kw):
    """The same seeded build (model, optimizer, data[, scheduler]) and loop, unwatched and then
    watched: (unwatched model, watched model, the closed run, the lrs the watched loop used)."""
    out = []
    for watched in (False, True):
        torch.manual_seed(0)
        model, opt, data, *scheduler = build()
        run = watch(model, opt) if watched else None
        lrs = loop(model, opt, data, run.log if run else (lambda loss: None), **kw,
                   **({"scheduler": scheduler[0]} if scheduler else {}))
        if run:
            run.close()
        out.append((model, run, lrs))
    (bare, _, _), (model, run, lrs) = out
    return bare, model, run, lrs


def adam(model, dtype=torch.float32):
    X, y = blobs(dtype)
    return model, torch.optim.Adam(model.parameters(), lr=1e-2), batches(X, y)


def test_each_parameter_group_keeps_its_own_lr():
    def build():
        model = mlp()
        groups = [{"params": model[0].parameters(), "lr": 0.1},
                  {"params": model[2].parameters(), "lr": 0.01}]
        opt = torch.optim.SGD(groups, lr=0.5, momentum=0.9)
        X, y = blobs()
        return model, opt, batches(X, y), torch.optim.lr_scheduler.StepLR(opt, 20, gamma=0.5)
    bare, model, run, lrs = twin_runs(build)
    tl = run.timeline()
    assert same_state(bare, model)
    assert tl.lr.shape == (STEPS, 2) and np.array_equal(tl.lr, np.array(lrs))
    assert tl.lr[0].tolist() == [0.1, 0.01] and tl.lr[-1].tolist() == [0.025, 0.0025]


ADDED_AT = 30   # the step before which the loop adds the head's parameter group


def head_added_mid_run(model, opt, data, log):
    """The loop that trains the first layer, then adds the head with its own lr."""
    lrs = []
    for t, batch in enumerate(data):
        if t == ADDED_AT:
            opt.add_param_group({"params": model[2].parameters(), "lr": 0.01})
        lrs += plain_loop(model, opt, [batch], log)
    return lrs


def test_a_parameter_group_added_mid_run_is_recorded_from_its_first_step():
    def build():
        model = mlp()
        X, y = blobs()
        return model, torch.optim.SGD(model[0].parameters(), lr=0.1), batches(X, y)
    bare, model, run, _ = twin_runs(build, head_added_mid_run)
    tl = run.timeline()
    assert same_state(bare, model)
    assert tl.lr.shape == (STEPS, 2) and (tl.lr[:, 0] == 0.1).all()
    assert np.isnan(tl.lr[:ADDED_AT, 1]).all() and (tl.lr[ADDED_AT:, 1] == 0.01).all()


def test_batchnorm_and_dropout_in_train_mode_train_as_unwatched():
    bare, model, run, _ = twin_runs(lambda: adam(mlp(nn.BatchNorm1d(16), nn.Dropout(0.3))))
    tl = run.timeline()
    assert same_state(bare, model)                  # the running statistics too
    assert model.training and tl.n_reset == STEPS - 1 and "3" in tl.dead   # nn.ReLU at index 3
    assert set(tl.grad_norm) == {n for n, _ in model.named_parameters()}


def test_a_float64_model_trains_as_unwatched_and_records_its_losses():
    def build():
        return adam(mlp(dtype=torch.float64), torch.float64)
    losses = []
    def loop(model, opt, data, log):
        return plain_loop(model, opt, data, lambda loss: (losses.append(loss.item()), log(loss)))
    bare, model, run, _ = twin_runs(build, loop)
    tl = run.timeline()
    assert same_state(bare, model) and model[0].weight.dtype == torch.float64
    assert tl.loss.tolist() == losses[STEPS:]       # the watched run's losses, exactly
    assert all(np.isfinite(r).all() and (r > 0).all() for r in tl.update_ratio.values())


def zero_in_place(opt) -> None:
    opt.zero_grad(set_to_none=False)


def no_reset(opt) -> None:
    """A loop that forgot zero_grad."""


CLIP = 0.5      # below the blobs' gradient norms: clip_grad_norm_ scales each .grad in place
clipped = functools.partial(plain_loop, clip=CLIP)
clipped.__name__ = "clipped"


@pytest.mark.parametrize("loop", [plain_loop, clipped], ids=["plain", "clip-grad-norm"])
@pytest.mark.parametrize("reset, recorded", [(zero, RESET), (zero_in_place, RESET),
                                             (no_reset, ACCUMULATED)],
                         ids=["set-to-none", "set-to-none-false", "missing"])
def test_a_grad_zeroed_in_place_is_reset_and_a_missing_zero_grad_is_not(loop, reset, recorded):
    """A .grad kept in place is told apart from the second step that keeps it (the first has
    no accumulation hook yet: it is judged only where one sum onto it is all that changed it,
    a plain loop that forgot zero_grad); a fresh .grad each step needs no hook at all."""
    bare, model, run, _ = twin_runs(lambda: adam(mlp()), loop, reset=reset)
    tl = run.timeline()
    assert same_state(bare, model)
    second = ACCUMULATED if (reset, loop) == (no_reset, plain_loop) else UNKNOWN
    assert tl.reset[0] == UNKNOWN and (tl.reset[2:] == recorded).all(), tl.reset
    assert tl.reset[1] == (RESET if reset is zero else second), tl.reset
    judged = STEPS - 1 if reset is zero or second != UNKNOWN else STEPS - 2
    assert (tl.n_reset, tl.n_accumulated) == ((judged, 0) if recorded == RESET else (0, judged))
    assert run.grads.hooked == (reset is not zero)      # hooked only where a .grad was kept


EPOCHS = 3


def loader_build():
    X, y = blobs()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(X, y), batch_size=BATCH, shuffle=True)   # torch's RNG
    return model, opt, loader, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)


def epoch_loop(model, opt, loader, log, scheduler):
    """The DataLoader loop, the scheduler stepped once an epoch."""
    lrs = []
    for _ in range(EPOCHS):
        lrs += plain_loop(model, opt, loader, log)
        scheduler.step()
    return lrs


def test_a_dataloader_loop_with_a_scheduler_trains_as_unwatched():
    bare, model, run, lrs = twin_runs(loader_build, epoch_loop)
    tl = run.timeline()
    per_epoch = ROWS // BATCH
    assert same_state(bare, model)
    assert tl.n_logged == tl.n_stepped == EPOCHS * per_epoch
    assert np.array_equal(tl.lr[:, 0], np.array(lrs)[:, 0])
    assert tl.lr[::per_epoch, 0].tolist() == [0.1, 0.05, 0.025] and \
        np.sum(np.diff(tl.lr[:, 0]) < 0) == EPOCHS - 1


@pytest.mark.parametrize("in_optimizer", [True, False], ids=["all-params", "trainable-only"])
def test_frozen_parameters_have_no_gradient_and_do_not_move(in_optimizer):
    def build():
        model = mlp()
        model[0].requires_grad_(False)
        params = model.parameters() if in_optimizer else \
            [p for p in model.parameters() if p.requires_grad]
        X, y = blobs()
        return model, torch.optim.Adam(params, lr=1e-2), batches(X, y)
    bare, model, run, _ = twin_runs(build)
    tl = run.timeline()
    frozen, trained = {"0.weight", "0.bias"}, {"2.weight", "2.bias"}
    assert same_state(bare, model)
    assert set(tl.grad_norm) == trained and tl.n_reset == STEPS - 1
    assert set(tl.update_ratio) == trained | (frozen if in_optimizer else set())
    assert all((tl.update_ratio[n] == 0).all() for n in frozen & set(tl.update_ratio))
    assert all((tl.update_ratio[n] > 0).all() for n in trained)
