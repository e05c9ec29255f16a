"""Figures only some cases have, by figure name: the per-case hook of the report.

A case names its figures (``Case.figures``) and declares the sweeps they draw
(``Case.sweeps``); each function here takes the case's
:class:`~cases.report.context.CaseContext` and returns report blocks (figures,
tables). A case without figures still gets the generic section; adding a case
needs no code here. Sweeps run on the numpy backend at the report's first seed,
whatever backends the report shows; :data:`SWEEPS` names the sweeps each figure
trains, so the casebook trains them early in its worker processes.
"""

from __future__ import annotations

import textwrap

import numpy as np

from cases.batched import batch_groups
from cases.config import RunConfig
from cases.runner import load_data
from cases.report import figures
from diagnostics.activations import COLOURS
from cases.report.blocks import Table
from cases.report.runs import train_sweep

ACTIVATION_COLORS = COLOURS   # diagnostics.activations: one colour per activation
BIFURCATION_TAIL = 64      # last losses drawn per lr: a period up to 64 shows as distinct points

def sweep(configs, ctx, what: str, *, record_curve: bool = True) -> list:
    """Run every config (numpy), results in the configs' order; the progress bar names the sweep.

    The casebook trains the sweeps its figures declare (:data:`SWEEPS`) early, in its worker
    processes (``runs.run_cases``): those come back from ``ctx.swept``. Any other sweep trains
    here: the configs that share an architecture and setup at once (``run_many``: stacked, bit
    for bit as one by one, a config given twice once), the others one at a time.
    ``record_curve=False`` skips the curves' evaluations, for a figure that draws none.
    One BLAS thread (``runs.train_sweep``), as in the case runs' workers: a second one spins
    while it waits (the digits curves: 9 s of CPU with one, 21 s with two; same results).
    """
    ctx.note(f"{what} ({len(configs)} runs in {len(batch_groups(configs))} groups)")
    early = ctx.swept.get(sweep_key(configs, record_curve))
    return early() if early is not None else train_sweep(configs, record_curve)


def sweep_key(configs, record_curve: bool) -> tuple:
    return tuple(configs), record_curve


def sweep_base(case, seed: int, run_name: str = "failing") -> RunConfig:
    return case.config(run_name, "numpy", seed)


def first_fix(case) -> str:
    return next(iter(case.fixes))


# ----------------------------------------------------------------- seed 001: activations
def activation_fits(ctx) -> list:
    """The failing run and the first fix, each trained with the five activations of the post."""
    runs = ["failing", first_fix(ctx.case)]
    fig = figures.new_figure("wide")
    axes = figures.panels(fig, len(runs))
    for ax, run_name, configs in zip(axes, runs, activation_sweeps(ctx.case, ctx.seed)):
        results = sweep(configs, ctx, f"{run_name} across activations", record_curve=False)
        draw_fits(ax, results, run_name)
    return [ctx.figure(fig, "activations", "The same run with each activation of the post "
                       f"(numpy, seed {ctx.seed}): left the failing configuration, right the fix.")]


def activation_sweeps(case, seed: int) -> list:
    return [case.sweeps["activations"].configs(sweep_base(case, seed, run_name))
            for run_name in ("failing", first_fix(case))]


def draw_fits(ax, results, title: str) -> None:
    ds = results[0].data
    x = np.linspace(ds.X_test.min(), ds.X_test.max(), figures.GRID_POINTS)[:, None]
    ax.plot(ds.X_test[:, 0], ds.y_test[:, 0], ":", color="black", lw=1, label="target")
    ax.plot(ds.X[:, 0], ds.y[:, 0], "o", color="black", mfc="none", label="training points")
    diverged = []
    for r in results:
        act = r.config.hidden_activations[0]
        y = figures.finite_prediction(r, x[:, 0])
        if y is None:
            diverged.append(act)
        else:
            ax.plot(x[:, 0], y, color=ACTIVATION_COLORS[act], lw=1.6,
                    label=f"{act}: test {r.test_loss:.2g}")
    if diverged:   # one legend line for them all: five would cover the training points
        ax.plot([], [], ls="", label=textwrap.fill("diverged (non-finite), not drawn: "
                                                    + ", ".join(diverged), 30))
    ax.set(xlabel="input x", ylabel="output y", title=title,
           ylim=figures.padded(ds.y_test[:, 0]))
    ax.grid(alpha=0.3)
    # sin over [-pi, pi] leaves the upper left empty (x < 0 gives y < 0)
    ax.legend(loc="upper left", fontsize=8)


# ----------------------------------------------------------------- seed 002: bifurcation
def loss_trace_scatter(ctx) -> list:
    """The author's picture: every step's loss as a dot, for the failing run and each fix."""
    shown = ctx.shown("numpy") or ctx.shown()
    fig = figures.new_figure("tall")
    axes = fig.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    for ax, o in zip(axes, shown):
        h = o.result.history
        ax.scatter(np.arange(len(h)), h, s=0.4, color=figures.run_color(ctx.case.runs, o.run_name),
                   rasterized=True, label=o.run_name)
        figures.log_scale(ax)
        ax.set(ylabel=figures.loss_label(o.result.config))
        ax.legend(loc="upper right", markerscale=12)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("optimizer step (count)")
    return [ctx.figure(fig, "loss-trace", f"Loss at every step, drawn as dots as in the post "
                       f"({ctx.backend}, seed {ctx.seed}): bands of dots are the loss jumping "
                       "between values every step.")]


def stability_edge(ctx, base: RunConfig) -> tuple:
    """(edge lr, lambda_max) at the minimum a fix converged to, in units of the base's lr."""
    from diagnostics import sharpness
    fixed = next((o for o in ctx.shown("numpy") + ctx.shown()
                  if o.run_name != "failing" and not o.result.diverged), None)
    if fixed is None:
        return float("nan"), float("nan")
    _, X, y, _, _ = load_data(fixed.result.config)
    lam = sharpness(fixed.result.model, X, y, loss=fixed.result.config.loss)
    n = 1 if base.mean_gradient else len(X)   # a summed gradient steps lr * n times the mean's
    return 2.0 / (lam * n), lam


def lr_sweeps(case, seed: int) -> list:
    return [case.sweeps["lr"].configs(sweep_base(case, seed))]


def lr_sweep_bifurcation(ctx) -> list:
    """Final losses against a constant lr: the period-doubling cascade, and 2/lambda_max."""
    lrs = ctx.case.sweeps["lr"]
    results = sweep(*lr_sweeps(ctx.case, ctx.seed), ctx, "lr sweep", record_curve=False)
    base = results[0].config
    edge, lam = stability_edge(ctx, base)
    fig = figures.new_figure("wide")
    ax = fig.subplots()
    for lr, r in zip(lrs.labels, results):
        tail = r.history[-BIFURCATION_TAIL:]
        ax.scatter(np.full(len(tail), lr), tail, s=2, color="tab:blue", rasterized=True)
    ax.axvline(edge, color="tab:red", ls="--",
               label=f"stability edge 2/(n·λmax) = {edge:.3g} (λmax = {lam:.3g})")
    ax.axvline(ctx.case.failing.lr, color="black", ls=":", label=f"the post's lr {ctx.case.failing.lr:g}")
    figures.log_scale(ax)
    ax.set(xlabel="learning rate (constant)", ylabel=f"last {BIFURCATION_TAIL} losses "
           f"({base.loss}, log)",
           title=f"{base.steps} steps per lr, {base.summary().split(' init=')[0]}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return [ctx.figure(fig, "bifurcation", "The bifurcation diagram: for each constant learning "
                       "rate, the losses of the last steps. One dot: the loss settles; several: "
                       "it cycles or is chaotic. λmax is the largest Hessian eigenvalue of the "
                       "mean loss at the minimum the fix converged to (diagnostics.sharpness); "
                       "n the number of samples the summed gradient adds up.")]


# ----------------------------------------------------------------- seed 003: the grid
def grid_sweeps(case, seed: int) -> list:
    return [case.sweeps["grid"].configs(sweep_base(case, seed))]


def digits_grid(ctx) -> list:
    """Test accuracy of every depth x activation x loss at the post's lr, batch and length."""
    grid = ctx.case.sweeps["grid"]                  # labels (depth, activation, loss name)
    results = sweep(*grid_sweeps(ctx.case, ctx.seed), ctx, "grid", record_curve=False)
    acc = {k: r.test_acc for k, r in zip(grid.labels, results)}
    depths, activations, losses = (tuple(dict.fromkeys(k[i] for k in grid.labels))
                                   for i in range(3))
    rows = []
    for d in depths:
        for a in (activations if d else ("none",)):
            rows.append((str(d), a, *(f"{acc[(d, a if d else activations[0], n)]:.3f}"
                                      for n in losses)))
    widest = max(results, key=lambda r: len(r.config.sizes)).config
    return [Table(("hidden layers", "activation", *losses), rows,
                  caption=f"Test accuracy after {widest.epochs} epochs, lr {widest.lr:g}, batch "
                  f"{widest.batch_size}, hidden width {widest.sizes[1]} (numpy, seed {ctx.seed}); "
                  "chance is 0.1")]


CURVE_STYLES = ("-", (0, (5, 2)), (0, (1, 1.5)), "-.", (0, (8, 2, 1, 2)))  # the runs that learn
                           # nothing lie on one line (ln 10): each dash pattern lets the one below show
CURVE_WIDTHS = (3.0, 2.2, 1.8, 1.6, 1.4)   # and each one below is wider: its edges show too


def curve_panel(ax, results, label) -> None:
    for k, r in enumerate(results):
        per_epoch = -(-len(r.data.X) // (r.config.batch_size or len(r.data.X)))
        epochs = np.asarray(r.curve["step"]) / per_epoch
        ax.plot(epochs, r.curve["train"], lw=CURVE_WIDTHS[k % len(CURVE_WIDTHS)],
                ls=CURVE_STYLES[k % len(CURVE_STYLES)],
                label=f"{label(r.config)}: acc {r.test_acc:.2f}" + (" (div.)" if r.diverged else ""))
    figures.log_scale(ax)
    ax.set(xlabel="epoch")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)


CURVE_SWEEPS = ("lr", "weight_decay", "batch_size")    # one panel each, in this order


def curve_sweeps(case, seed: int) -> list:
    """One sweep for the three panels: the base config, a point of each, trains once."""
    base = sweep_base(case, seed, first_fix(case))
    return [[c for name in CURVE_SWEEPS for c in case.sweeps[name].configs(base)]]


def digits_curves(ctx) -> list:
    """Train loss per epoch across learning rates, weight decays and batch sizes."""
    base = sweep_base(ctx.case, ctx.seed, first_fix(ctx.case))
    fig = figures.new_figure("wide")
    ax_lr, ax_wd, ax_bs = fig.subplots(1, 3, sharey=True)
    labels = {"lr": lambda c: f"lr {c.lr:g}", "weight_decay": lambda c: f"wd {c.weight_decay:g}",
              "batch_size": lambda c: f"batch {c.batch_size}"}
    results = iter(sweep(*curve_sweeps(ctx.case, ctx.seed), ctx, "curves"))
    for name, ax in zip(CURVE_SWEEPS, (ax_lr, ax_wd, ax_bs)):
        curve_panel(ax, [next(results) for _ in ctx.case.sweeps[name].labels], labels[name])
    ax_lr.set_ylabel(figures.loss_label(base) + " on the train set, log")
    for ax, t in ((ax_lr, "learning rate"), (ax_wd, "weight decay"), (ax_bs, "batch size")):
        ax.set_title(t)
    return [ctx.figure(fig, "curves", f"Train loss per epoch of the fix "
                       f"({next(iter(ctx.case.fixes))}: {base.summary()}) while one setting "
                       f"varies; the legend gives the test accuracy (numpy, seed {ctx.seed}).")]


SWEEPS = {    # Case.figures names -> (the sweeps the figure trains, whether it draws their curves)
    "activation-fits": (activation_sweeps, False),
    "lr-sweep-bifurcation": (lr_sweeps, False),
    "digits-grid": (grid_sweeps, False),
    "digits-curves": (curve_sweeps, True),
}


def planned_sweeps(case, seed: int) -> list:
    """[(configs, record_curve)] of every sweep the case's figures train: known before its runs
    finish, so the casebook trains them early, beside the runs, in its worker processes."""
    return [(configs, curve) for name in case.figures if name in SWEEPS
            for plan, curve in [SWEEPS[name]] for configs in plan(case, seed)]


FIGURES = {   # Case.figures names -> the function that draws them
    "activation-fits": activation_fits,
    "loss-trace-scatter": loss_trace_scatter,
    "lr-sweep-bifurcation": lr_sweep_bifurcation,
    "digits-grid": digits_grid,
    "digits-curves": digits_curves,
}
