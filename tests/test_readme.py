"""Every python block of the README runs, in order, in one namespace holding what its names
stand for: a user's digits model trained by a DataLoader loop, its optimizer and losses, and
held-out rows. A block that no longer matches the API fails here."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def users_namespace() -> dict:
    """What the README's names mean: a trained 64-32-10 relu net on 1500 digits rows."""
    digits = load_digits()
    X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loader = DataLoader(TensorDataset(X[:1500], y[:1500]), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    losses = []
    for _ in range(5):
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return dict(model=model, X=X[:1500], y=y[:1500], X_val=X[1500:], y_val=y[1500:], opt=opt,
                losses=losses, loader=loader, loss_fn=F.cross_entropy)


def test_every_python_block_of_the_readme_runs():
    blocks = python_blocks()
    assert len(blocks) >= 3
    namespace = users_namespace()
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    report = namespace["report"]          # the last diagnose() of the README: the watched run
    assert report.summary["loss"] is not None and "watched run" in " ".join(report.notes)
