"""What the diagnostics tests share: models in three kinds, the data sets, the loops people write.

A numpy MLP is run as itself, as an nn.Sequential and as a custom module whose forward calls its
activations as functions (`as_kind`); the torch loops train the way a user writes them (`train`).
Fixtures that train a model once per session are in conftest.py beside this module.
"""

from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cases.backends.numpy_mlp import MLP, Cache
from cases.backends.torch_train import from_numpy, to_numpy
from diagnostics import diagnose

KINDS = ("numpy", "sequential", "functional")
TORCH_KINDS = ("sequential", "functional")
SEEDS = (0, 1, 2)
RTOL = 1e-6            # float64 everywhere: the evidence and the recomputation differ by rounding

# Deliberately not read from a table: the activations as a user's forward calls them (F.relu,
# torch.sigmoid), independent of the modules and of activations.CANDIDATES that recognise them.
FUNCTIONS = {"identity": lambda z: z, "relu": F.relu, "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
             "elu": F.elu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
             "gelu": lambda z: F.gelu(z, approximate="tanh"),
             "softmax": lambda z: torch.softmax(z, dim=1)}


# ----------------------------------------------------------------- one MLP, three kinds of model
class Functional(nn.Module):
    """Linear layers in a ModuleList, the activations as function calls inside forward."""

    def __init__(self, sizes, acts):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.acts = acts

    @classmethod
    def copy_of(cls, mlp: MLP) -> "Functional":
        """The numpy MLP's weights in float64."""
        model = cls(mlp.sizes, mlp.activations).double()
        with torch.no_grad():
            for lin, W, b in zip(model.linears, mlp.W, mlp.b):
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(b))
        return model

    def forward(self, x):
        for lin, act in zip(self.linears, self.acts):
            x = FUNCTIONS[act](lin(x))
        return x


def as_kind(mlp: MLP, kind: str):
    if kind == "numpy":
        return mlp
    return from_numpy(mlp, dtype=torch.float64) if kind == "sequential" else Functional.copy_of(mlp)


def module_path(kind: str, mlp: MLP, i: int) -> str:
    """The module path of layer i's Linear, as its parameters are named."""
    if kind == "functional":
        return f"linears.{i}"
    seq = from_numpy(mlp)   # the numpy MLP's to_torch() is this Sequential
    return str([j for j, m in enumerate(seq) if isinstance(m, nn.Linear)][i])


def layer_name(kind: str, mlp: MLP, i: int) -> str:
    """How diagnose() names layer i: as the user wrote it (module path and shape), or by number,
    role, width and activation for the numpy MLP (read through its to_torch())."""
    fan_in, fan_out = mlp.sizes[i], mlp.sizes[i + 1]
    if kind == "numpy":
        role = "output" if i == len(mlp.W) - 1 else "hidden"
        return f"layer {i + 1} ({role}, {fan_out} {mlp.activations[i]})"
    if kind == "functional":
        return f"linears.{i} Linear({fan_in}->{fan_out})"
    seq = from_numpy(mlp)   # nn.Sequential numbers the activation modules too
    index = [j for j, m in enumerate(seq) if isinstance(m, nn.Linear)][i]
    return f"{index} Linear({fan_in}->{fan_out})"


def net(sizes, acts, init="torch_default", seed=0) -> MLP:
    return MLP.init(sizes, acts, init, np.random.default_rng(seed))


# ----------------------------------------------------------------- evidence recomputed here
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


# ----------------------------------------------------------------- data (numpy, float64)
def sin_data(n=200):
    x = np.linspace(-np.pi, np.pi, n)[:, None]
    return x, np.sin(x)


@lru_cache(maxsize=None)
def loaded_digits():
    """load_digits() parses its CSV on every call (30 ms; ~100 calls a session): once here."""
    from sklearn.datasets import load_digits
    return load_digits()


def digits_data():
    """Fresh arrays on each call (the division and astype copy), so no caller shares the cache's."""
    d = loaded_digits()
    return d.data / 16.0, d.target.astype(np.int64)


def xor_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, (n, 2))
    X = corners * 2.0 - 1 + 0.1 * rng.standard_normal((n, 2))
    return X, (corners[:, 0] ^ corners[:, 1]).astype(np.int64)


def chaotic_history(level, n=1500, drift=0.03):
    """Seed 002's bifurcation: a logistic-map loss (std/mean ~0.5) whose run falls only 3%."""
    x = np.empty(n)
    x[0] = 0.3
    for t in range(1, n):
        x[t] = 3.9 * x[t - 1] * (1 - x[t - 1])
    return level * (1 - drift * np.linspace(0, 1, n)) * (0.5 + x)


# ----------------------------------------------------------------- training the numpy MLP in torch
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


def train_steps(model, opt, Xt, yt, steps):
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(Xt), yt).backward()
        opt.step()


HEALTHY = {
    "digits": lambda: (net((64, 32, 10), ("relu", "identity")), *digits_data(), "cross_entropy", 300),
    "sin": lambda: (net((1, 32, 32, 1), ("tanh", "tanh", "identity")), *sin_data(), "mse", 1500),
    "xor": lambda: (net((2, 16, 2), ("relu", "identity")), *xor_data(), "cross_entropy", 300),
}


# ----------------------------------------------------------------- the loops people write (torch)
def sin2x_tensors(n=200):
    x = torch.linspace(-3, 3, n)[:, None]
    return x, torch.sin(2 * x)


def digits_tensors():
    X, y = digits_data()
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def relu_net(fan_in: int, fan_out: int, width: int = 32) -> nn.Sequential:
    return nn.Sequential(nn.Linear(fan_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, fan_out))


def train(model, X, y, loss_fn, opt, steps, batch=None, zero_grad=True, seed=0, inputs=None):
    """The loop people write; zero_grad=False is the bug; ``inputs``: what the loop does to each
    batch's rows before the model sees them. Returns the per-step losses."""
    g, history = torch.Generator().manual_seed(seed), []
    for _ in range(steps):
        rows = torch.randint(0, len(X), (batch,), generator=g) if batch else slice(None)
        if zero_grad:
            opt.zero_grad()
        xb = X[rows] if inputs is None else inputs(X[rows])
        loss = loss_fn(model(xb), y[rows])
        loss.backward()
        opt.step()
        history.append(loss.item())
    return history


# Each loop's length (from 2000, 500, 1000, 3000, 1500 and 1500 steps before) keeps a margin over
# the three seeds (measured): zeroing the gradient, the loss on X is at most 0.43 of a constant
# predictor's (learned-nothing: 0.9), the stored .grad at most 0.65 of the largest row's
# (accumulated-gradient: 1.5) and the loss on X at most 1.3x the history's (generalization-gap:
# 20x); never zeroing it, the .grad of LOOPS is 1.7-49x the largest row's, with at least 0.73 of
# it on units no row's gradient reaches (accumulated-gradient: 0.25).
LOOPS = {   # name: (data, loss name, optimizer, steps, batch)
    "sin-full-batch-sgd": (sin2x_tensors, "mse", lambda p: torch.optim.SGD(p, lr=0.01), 500, None),
    "sin-full-batch-adam": (sin2x_tensors, "mse", lambda p: torch.optim.Adam(p, lr=1e-3), 300, None),
    "digits-batch-32-adam": (digits_tensors, "cross_entropy",
                             lambda p: torch.optim.Adam(p, lr=1e-3), 600, 32),
}
HEALTHY_LOOPS = {
    "sin-one-row-sgd": (sin2x_tensors, "mse", lambda p: torch.optim.SGD(p, lr=0.01), 750, 1),
    "digits-batch-10-sgd": (digits_tensors, "cross_entropy",
                            lambda p: torch.optim.SGD(p, lr=0.1), 375, 10),
    "digits-one-row-adam": (digits_tensors, "cross_entropy",
                            lambda p: torch.optim.Adam(p, lr=1e-2), 750, 1),
}
LOSS_FNS = {"mse": F.mse_loss, "cross_entropy": F.cross_entropy}


def adam_digits(seed: int, lr: float = 1e-3, init=None):
    """A user's Adam loop on digits: 300 batches of 32 through a 64-64-10 relu net, from torch's
    init or from the values `init` writes into each parameter, as trained() returns it."""
    X, y = digits_tensors()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    if init is not None:
        with torch.no_grad():
            for p in model.parameters():
                init(p)
    opt = torch.optim.Adam(model.parameters(), lr)
    history = train(model, X, y, F.cross_entropy, opt, 300, 32, seed=seed)
    return model, X, y, "cross_entropy", history, opt


def diagnosed(run):
    """diagnose() of a run as trained() returns it: (model, X, y, loss, history, opt)."""
    model, X, y, loss, history, opt = run
    return diagnose(model, X, y, loss=loss, history=history, optimizer=opt)


def trained(loop, seed, zero_grad=True):
    data, loss, make_opt, steps, batch = loop
    X, y = data()
    torch.manual_seed(seed)
    model = relu_net(X.shape[1], 1 if loss == "mse" else 10)
    opt = make_opt(model.parameters())
    history = train(model, X, y, LOSS_FNS[loss], opt, steps, batch, zero_grad, seed)
    return model, X, y, loss, history, opt


# ----------------------------------------------------------------- runs judged against a reference
def digits_head_run(seed: int, hidden=(64,), frozen: bool = False, loss: str = "cross_entropy",
                    log_softmax: bool = False, steps: int = 200):
    """A user's digits loop: Adam 1e-3, batches of 64 from a relu net of ``hidden`` widths; the
    bugs: hidden layers frozen (requires_grad False), nll_loss with or without log_softmax."""
    X, y = digits_tensors()
    torch.manual_seed(seed)
    layers, width = [], 64
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    model = nn.Sequential(*layers, nn.Linear(width, 10), *([nn.LogSoftmax(dim=1)] if log_softmax
                                                           else []))
    for layer in model[:-2 if log_softmax else -1]:
        layer.requires_grad_(not frozen)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss_fn = F.nll_loss if loss == "nll" else F.cross_entropy
    history = train(model, X, y, loss_fn, opt, steps, 64, seed=seed)
    return model, X, y, loss, history, opt


def tanh_surface_run(seed: int, width: int):
    """y = sin(2 x1) cos(2 x2) on 400 points of [-2, 2]^2, a 2-width-1 tanh net, Adam 1e-2."""
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(400, 2, generator=g) * 4 - 2
    y = (torch.sin(2 * X[:, :1]) * torch.cos(2 * X[:, 1:]))
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, X, y, "mse", train(model, X, y, F.mse_loss, opt, 1500, seed=seed), opt


def memorising_run(seed: int, permuted: bool):
    """300 digits rows (labels permuted apart from X, or their own) fitted by a 64-256-10 relu net
    with Adam 1e-2, full batch, 300 steps; the other rows held out with their true labels."""
    X, y = digits_tensors()
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    train_rows, val_rows = order[:300], order[300:]
    y_train = y[train_rows]
    if permuted:
        y_train = y_train[torch.randperm(300, generator=torch.Generator().manual_seed(100 + seed))]
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = train(model, X[train_rows], y_train, F.cross_entropy, opt, 300, seed=seed)
    return model, X[train_rows], y_train, "cross_entropy", history, opt, X[val_rows], y[val_rows]


# ----------------------------------------------------------------- runs read through other inputs
def input_form_run(name: str, seed: int = 0):
    """A run trained as a tutorial writes it, with a loss module, as (model, X, y, loss module,
    history, opt): digits under label smoothing, digits as 1x8x8 images behind nn.Flatten(), a
    Sigmoid head under BCEWithLogitsLoss (the double sigmoid), sin(2x) under L1 and Huber."""
    X, y = digits_tensors()
    torch.manual_seed(seed)
    if name == "digits-smoothed":
        model, loss = relu_net(64, 10), nn.CrossEntropyLoss(label_smoothing=0.1)
    elif name == "images-flatten":
        X, loss = X.reshape(-1, 1, 8, 8), nn.CrossEntropyLoss()
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    elif name == "double-sigmoid":
        y, loss = (y < 5).float()[:, None], nn.BCEWithLogitsLoss()
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
    else:   # "sin-l1", "sin-huber"
        X, y = sin2x_tensors()
        model, loss = relu_net(1, 1), nn.L1Loss() if name == "sin-l1" else nn.HuberLoss(delta=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, X, y, loss, train(model, X, y, loss, opt, 200), opt


def same_state(a: nn.Module, b: nn.Module) -> bool:
    """Bit for bit the same parameters and buffers (BatchNorm's running statistics too)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
