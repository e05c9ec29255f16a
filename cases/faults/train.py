"""The one training loop every program runs, written the way a PyTorch user writes it.

``train(program, seed)`` splits and scales the data, builds an ``nn.Sequential``, a
``torch.optim`` optimizer and, if asked, a scheduler, and runs the loop
``zero_grad -> forward -> loss -> backward -> step``. Each fault is a field of the program
read at exactly one place below, so a mutant differs from its base in that line only.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cases.faults.programs import TEST_SHARE, Program, dataset
from diagnostics.activations import ACTIVATIONS as TABLE
from diagnostics.losses import plain_losses

HUGE_INIT_STD = 10.0   # "torch.randn * 10": RMS x sqrt(fan_in) of 20-250 here, torch's is ~0.6
NORMAL_INIT_STD = 1.0  # "nn.init.normal_(w)": std 1 where He's is sqrt(2 / fan_in) ~ 0.2 at 32
ACTIVATIONS = {n: TABLE[n].module for n in ("relu", "tanh", "gelu", "sigmoid")}  # the programs' four
HEADS = {"none": [], "sigmoid": [nn.Sigmoid()], "softmax": [nn.Softmax(dim=1)],
         "log_softmax_over_batch": [nn.LogSoftmax(dim=0)]}   # normalises each class over the rows


@dataclass
class Split:
    """Tensors as the loop sees them: X float32, y int64 (n,) or float32 (n, k)."""
    X: torch.Tensor
    y: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: int                    # 0 for regression targets (class_values included)


@dataclass
class Trained:
    """What the loop leaves behind: the user calls diagnose() on these."""
    program: Program
    seed: int
    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: list
    data: Split
    run: object = None              # the diagnostics.watch recording, when the loop was watched


# ----------------------------------------------------------------- data
def split(program: Program, seed: int) -> Split:
    from sklearn.model_selection import train_test_split
    d = dataset(program.data)
    stratify = None if d.is_regression else d.y
    X, X_test, y, y_test = train_test_split(d.X, d.y, test_size=TEST_SHARE, random_state=seed,
                                            stratify=stratify)
    X, X_test = standardised(X, X_test)
    X, X_test = X * program.input_scale, X_test * program.input_scale
    if d.is_regression:
        y, y_test = standardised(y, y_test)
        y, y_test = y * program.target_scale, y_test * program.target_scale
    if program.labels_permuted:
        y = y[np.random.default_rng(seed).permutation(len(y))]
    return as_tensors(program, X, y, X_test, y_test, d.classes)


def standardised(train: np.ndarray, test: np.ndarray) -> tuple:
    """Scaled by the training rows' statistics; a column constant there (digits' border pixels)
    is only centred: dividing by ~0 would put its held-out values at ~1e12."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def as_tensors(program: Program, X, y, X_test, y_test, classes: int) -> Split:
    def targets(t):
        if program.takes_class_indices:
            return torch.as_tensor(t, dtype=torch.int64)
        return torch.as_tensor(t, dtype=torch.float32).reshape(len(t), -1)
    f32 = torch.float32
    return Split(torch.as_tensor(X, dtype=f32), targets(y), torch.as_tensor(X_test, dtype=f32),
                 targets(y_test), 0 if program.class_values else classes)


# ----------------------------------------------------------------- model
class Detach(nn.Module):
    """``x.detach()`` inside forward: the layers before it get no gradient."""

    def forward(self, x):
        return x.detach()


def build_model(program: Program, fan_in: int, fan_out: int) -> nn.Sequential:
    layers, width = [], fan_in
    for h in program.hidden:
        layers.append(nn.Linear(width, h))
        layers += [ACTIVATIONS[program.activation]()] if program.activation != "none" else []
        width = h
    layers += [Detach()] if program.detach_hidden else []
    layers += [nn.Linear(width, fan_out), *HEADS[program.head]]
    model = nn.Sequential(*layers)
    initialise(model, program)
    return model


def initialise(model: nn.Sequential, program: Program) -> None:
    linears = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for layer in linears:
            if program.init == "zeros":
                layer.weight.zero_()
                layer.bias.zero_()
            elif program.init == "huge":
                layer.weight.normal_(0, HUGE_INIT_STD)
            elif program.init == "normal":
                layer.weight.normal_(0, NORMAL_INIT_STD)
            elif program.init == "positive":
                layer.weight.uniform_(0, 1)
                layer.bias.uniform_(0, 1)
        for layer in linears[:-1]:
            if program.init == "symmetric":     # every hidden unit a copy of the first
                layer.weight.copy_(layer.weight[:1].expand_as(layer.weight))
                layer.bias.fill_(float(layer.bias[0]))
            if program.hidden_bias is not None:
                layer.bias.fill_(program.hidden_bias)
            layer.requires_grad_(not program.frozen_hidden)


def output_width(program: Program, data: Split) -> int:
    if program.takes_class_indices:
        return data.classes
    return data.y.shape[1]


# ----------------------------------------------------------------- optimizer and loss
def make_optimizer(program: Program, params) -> torch.optim.Optimizer:
    decay = {} if program.weight_decay is None else {"weight_decay": program.weight_decay}
    if program.optimizer == "sgd":
        return torch.optim.SGD(params, lr=program.lr, **decay)
    if program.optimizer == "momentum":
        return torch.optim.SGD(params, lr=program.lr, momentum=0.9, **decay)
    if program.optimizer == "adam":
        return torch.optim.Adam(params, lr=program.lr, **decay)
    if program.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=program.lr, **decay)
    raise ValueError(f"unknown optimizer {program.optimizer!r}; known: sgd, momentum, adam, adamw")


LOSSES = {name: plain_losses()[name] for name in ("cross_entropy", "nll", "bce_with_logits",
                                                  "mse")}   # diagnostics' torch functions


def loss_value(program: Program, out, y, reduction: str = "mean"):
    return LOSSES[program.loss](out, y, reduction=reduction)


# ----------------------------------------------------------------- batches
def batches(program: Program, y: torch.Tensor, seed: int):
    """Row indices of each step: shuffled every epoch (or in label order), or the full batch."""
    n, g = len(y), torch.Generator().manual_seed(seed)
    if program.batch_size is None:
        while True:
            yield slice(None)
    order = torch.argsort(y.reshape(n, -1)[:, 0], stable=True) if program.label_sorted else None
    while True:
        epoch = order if order is not None else torch.randperm(n, generator=g)
        yield from epoch.split(program.batch_size)


# ----------------------------------------------------------------- the loop
def batches_per_epoch(program: Program, rows: int) -> int:
    """Steps in one pass over the rows (1 for the full batch): when an epoch's scheduler steps."""
    return 1 if program.batch_size is None else -(-rows // program.batch_size)


def train(program: Program, seed: int, watched: bool = False) -> Trained:
    """The program's run; ``watched``: recorded by diagnostics.watch, which changes nothing."""
    with one_thread():
        torch.manual_seed(seed)
        data = split(program, seed)
        fan_in, fan_out = data.X.shape[1], output_width(program, data)
        model = build_model(program, fan_in, fan_out)
        params = model.parameters()
        if program.stale_optimizer:   # a notebook cell run twice: a new model, the old optimizer
            model = build_model(program, fan_in, fan_out)
        opt = make_optimizer(program, params)
        scheduler = torch.optim.lr_scheduler.StepLR(opt, *program.lr_decay) \
            if program.lr_decay else None
        run = watched_run(model, opt) if watched else None
        history = loop(program, model, opt, scheduler, data, seed, run)
        if run is not None:
            run.close()
    return Trained(program, seed, model, opt, history, data, run)


def watched_run(model, opt):
    from diagnostics import watch
    return watch(model, opt)


def loop(program: Program, model, opt, scheduler, data: Split, seed: int, run=None) -> list:
    history, rows = [], batches(program, data.y, seed)
    reduction = "sum" if program.summed_loss else "mean"
    epoch = batches_per_epoch(program, len(data.y))
    for t, batch in zip(range(program.steps), rows):
        if program.zero_grad:
            opt.zero_grad()
        # forward
        loss = loss_value(program, model(data.X[batch]), data.y[batch], reduction)
        # backward
        if program.detached_loss:   # "fixes" backward's "does not require grad" error
            loss = loss.detach().requires_grad_()
        loss.backward()
        if program.clip_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), program.clip_norm)
        if program.clip_value is not None:
            nn.utils.clip_grad_value_(model.parameters(), program.clip_value)
        if program.zero_grad_late:  # the .grad just computed gone before the step reads it
            opt.zero_grad()
        # update
        if program.optimizer_step:
            opt.step()
        if scheduler and (program.scheduler_per_batch or (t + 1) % epoch == 0):
            scheduler.step()
        history.append(loss.item())
        if run is not None:
            run.log(loss)
    return history


@contextmanager
def one_thread():
    """One torch thread for tiny nets (more only add overhead); the caller's setting restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
