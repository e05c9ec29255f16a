"""The report's generic figures: loss curves, predictions vs target, per-layer health.

Figures are built with ``matplotlib.figure.Figure`` (the Agg canvas, no pyplot
and no display), at a fixed size in pixels so the report shows them 1:1. The
drawing helpers a user's own report shares (``Report.plot()``) live in
:mod:`diagnostics.figures`; this module draws the casebook's runs with them.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display, ever; before anything imports pyplot
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from diagnostics import figures as shared  # noqa: E402
from diagnostics.figures import (  # noqa: E402, F401  (DPI, pixel_size, save: the sections')
    DPI, RC, SIZES, draw_gradient_norms, draw_history, draw_unit_shares, label_gradient_axis,
    label_units_axis, layer_health, log_scale, mark_divergence, mark_exact_zero, pixel_size, save,
    zero_line)

FAILING_COLOR = "tab:red"
FIX_COLORS = ("tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:cyan")
RUN_MARKERS = ("o", "s", "^", "D", "v", "P")   # a second cue beside colour, where points overlap
MAX_PANELS = 4          # more runs than this in a row of panels get too small to read
GRID_POINTS = 200       # per axis, for class regions and 1-D fits
matplotlib.rcParams.update(RC)   # the casebook is a program of its own: its style is global


def new_figure(kind: str = "wide") -> Figure:
    return shared.new_figure(SIZES[kind])


def run_color(run_names, run_name: str) -> str:
    if run_name == "failing":
        return FAILING_COLOR
    fixes = [r for r in run_names if r != "failing"]
    return FIX_COLORS[fixes.index(run_name) % len(FIX_COLORS)] if run_name in fixes else "gray"


def loss_label(cfg) -> str:
    return f"loss ({cfg.loss.replace('_', ' ')})"


# ----------------------------------------------------------------- loss curves
def plot_history(ax, o, color) -> None:
    """The train loss on the whole training set, bold.

    A full-batch run's per-step loss is that same loss, so every step is drawn (a loss that
    jumps between values each step shows as a band). A mini-batch run's per-step losses are
    each one batch's, noise around the curve that would bury the other runs: only its logged
    full-set points are drawn."""
    h, c, cfg = o.result.history, o.result.curve, o.result.config
    label = o.run_name + (" (diverged)" if o.result.diverged else "")
    if cfg.batch_size is None or cfg.batch_size >= len(o.result.data.X):
        draw_history(ax, np.arange(1, len(h) + 1), h, color, label)
    else:
        ax.plot(np.asarray(c["step"]) + 1, c["train"], color=color, lw=1.8, label=label)
    if o.result.diverged:
        finite = np.flatnonzero(np.isfinite(h))
        if finite.size:
            mark_divergence(ax, finite[-1] + 1, min(h[finite[-1]], loss_ceiling([o]) * 0.9), color)


def loss_floor(outcomes) -> float:
    """Bottom of the loss axis: a tenth of the lowest full-set loss (a single sample's loss
    can be 1e-15 and would stretch the axis over decades nobody reads)."""
    lows = [v for o in outcomes for v in o.result.curve["train"] + o.result.curve["test"]
            if np.isfinite(v) and v > 0]
    return min(lows) / 10 if lows else 1e-12


def loss_ceiling(outcomes) -> float:
    """Top of the loss axis: 100x the start or the worst run that stayed finite. A diverged
    run's 1e100 would flatten every other curve into a line."""
    return shared.loss_ceiling([o.result.curve["train"][0] for o in outcomes],
                      [max(o.result.curve["train"] + o.result.curve["test"]) for o in outcomes
                       if not o.result.diverged])


def loss_figure(outcomes) -> Figure:
    """Train (left) and test (right) loss against steps, failing vs each fix, log-log."""
    fig = new_figure("wide")
    ax_train, ax_test = fig.subplots(1, 2)
    names = [o.run_name for o in outcomes]
    for o in outcomes:
        color = run_color(names, o.run_name)
        plot_history(ax_train, o, color)
        c = o.result.curve
        ax_test.plot(np.asarray(c["step"]) + 1, c["test"], color=color, lw=1.8, label=o.run_name)
    cfg = outcomes[0].result.config
    for ax, title in ((ax_train, "train loss (whole training set)"), (ax_test, "test loss")):
        log_scale(ax, "xy")
        ax.set(xlabel="optimizer step (count, log)", ylabel=loss_label(cfg) + ", log", title=title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="best")
        ax.set_ylim(loss_floor(outcomes), loss_ceiling(outcomes))
    return fig


# ----------------------------------------------------------------- predictions
def predictions_figure(outcomes):
    """What the nets predict vs the target, drawn the way the data's shape asks; or None."""
    ds = outcomes[0].result.data
    d_in = ds.X.shape[1]
    if ds.task == "regression" and d_in == 1:
        return fit_1d_figure(outcomes)
    if ds.task == "regression" and d_in == 2 and np.ndim(ds.y) == 2 and ds.y.shape[1] == 2:
        return map_2d_figure(outcomes)
    if ds.task == "classification" and d_in == 2:
        return regions_figure(outcomes)
    if ds.task == "classification":
        return confusion_figure(outcomes)
    return None


def fit_1d_figure(outcomes, title: str = "") -> Figure:
    """Each run's curve over the input range, the target, and the training points."""
    ds = outcomes[0].result.data
    fig = new_figure("wide")
    ax = fig.subplots()
    lo, hi = min(ds.X.min(), ds.X_test.min()), max(ds.X.max(), ds.X_test.max())
    x = np.linspace(lo, hi, GRID_POINTS)[:, None]
    order = np.argsort(ds.X_test[:, 0])
    ax.plot(ds.X_test[order, 0], ds.y_test[order, 0], color="black", lw=1, ls=":",
            label="target (test points)")
    ax.plot(ds.X[:, 0], ds.y[:, 0], "o", color="black", ms=6, mfc="none", label="training points")
    names = [o.run_name for o in outcomes]
    for o in outcomes:
        draw_curve(ax, x[:, 0], o.result, run_color(names, o.run_name), o.run_name)
    ax.set(xlabel="input x", ylabel="output y", title=title or "prediction vs target")
    ax.set_ylim(*padded(np.concatenate([ds.y_test[:, 0], ds.y[:, 0]])))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", ncol=2)
    return fig


def finite_prediction(result, x):
    """The net's output over the 1-D inputs x, or None when it diverged (non-finite output)."""
    y = result.predict(x[:, None])[:, 0]
    return None if result.diverged or not np.all(np.isfinite(y)) else y


def draw_curve(ax, x, result, color, label: str) -> None:
    """The net's output over x; a diverged net (non-finite output) only gets a legend entry."""
    y = finite_prediction(result, x)
    if y is None:
        ax.plot([], [], color=color, ls="--", label=f"{label}: diverged, not drawn")
    else:
        ax.plot(x, y, color=color, lw=1.6, label=label)


def padded(values, share: float = 0.35) -> tuple:
    """Axis limits around the target with room: a diverged fit must not squash the picture."""
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = share * (hi - lo or 1.0)
    return lo - pad, hi + pad


def panels(fig: Figure, n: int):
    axes = fig.subplots(1, n, squeeze=False)[0]
    return list(axes)


def map_2d_figure(outcomes) -> Figure:
    """A 2-D -> 2-D map (the spirals): where each test point lands, coloured by its index."""
    ds = outcomes[0].result.data
    shown = outcomes[:MAX_PANELS - 1]
    fig = new_figure("wide")
    axes = panels(fig, 1 + len(shown))
    index = np.arange(len(ds.X_test))
    def draw(ax, pts, title):
        sc = ax.scatter(pts[:, 0], pts[:, 1], c=index, s=2, cmap="viridis")
        ax.set(xlabel="output x", ylabel="output y", title=title, aspect="equal")
        return sc
    sc = draw(axes[0], ds.y_test, "target")
    for ax, o in zip(axes[1:], shown):
        draw(ax, o.result.predict(ds.X_test), f"{o.run_name}: test {o.result.test_loss:.2g}")
    fig.colorbar(sc, ax=axes, label="point index along the source spiral", shrink=0.8)
    return fig


def predicted_classes(result, X) -> np.ndarray:
    """argmax of several outputs, else the rounded value (as the run's accuracy reads it)."""
    out = np.nan_to_num(result.predict(X))
    if out.shape[1] > 1:
        return out.argmax(axis=1)
    return np.clip(np.rint(out[:, 0]), 0, max(result.data.n_classes - 1, 1)).astype(int)


def regions_figure(outcomes) -> Figure:
    """The class each net assigns to every point of the plane, with the test points on top."""
    ds = outcomes[0].result.data
    shown = outcomes[:MAX_PANELS]
    fig = new_figure("wide")
    axes = panels(fig, len(shown))
    (x0, x1), (y0, y1) = [padded(ds.X_test[:, j], 0.05) for j in (0, 1)]
    gx, gy = np.meshgrid(np.linspace(x0, x1, GRID_POINTS), np.linspace(y0, y1, GRID_POINTS))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    k = ds.n_classes
    levels = np.arange(k + 1) - 0.5
    for ax, o in zip(axes, shown):
        cls = predicted_classes(o.result, grid).reshape(gx.shape)
        ax.contourf(gx, gy, cls, levels=levels, cmap="Pastel1", vmin=-0.5, vmax=8.5)
        sc = ax.scatter(ds.X_test[:, 0], ds.X_test[:, 1], c=ds.y_test, s=3, cmap="Set1",
                        vmin=-0.5, vmax=8.5)
        ax.set(xlabel="input x1", ylabel="input x2", aspect="equal",
               title=f"{o.run_name}: test acc {o.result.test_acc:.2f}")
    handles = [matplotlib.lines.Line2D([], [], ls="", marker="o", color=sc.cmap(sc.norm(c)))
               for c in range(k)]
    fig.legend(handles, [f"class {c}" for c in range(k)], loc="outside right center",
               title="points: true\nshade: predicted")
    return fig


def confusion_figure(outcomes) -> Figure:
    """Test-set confusion matrix of each run: rows true class, columns predicted, row shares."""
    ds = outcomes[0].result.data
    shown = outcomes[:MAX_PANELS]
    fig = new_figure("wide")
    axes = panels(fig, len(shown))
    k = ds.n_classes
    for ax, o in zip(axes, shown):
        pred = predicted_classes(o.result, ds.X_test)
        m = np.zeros((k, k))
        np.add.at(m, (ds.y_test, pred), 1)
        im = ax.imshow(m / np.maximum(m.sum(axis=1, keepdims=True), 1), cmap="Blues",
                       vmin=0, vmax=1)
        ax.set(xlabel="predicted class", ylabel="true class", xticks=range(k), yticks=range(k),
               title=f"{o.run_name}: test acc {o.result.test_acc:.2f}")
        ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=axes, label="share of the true class", shrink=0.8)
    return fig


# ----------------------------------------------------------------- layer health
def health_figure(outcomes) -> Figure:
    """Per-layer gradient norm (left, points on a log axis) and share of dead/saturated units
    (right, bars from 0%), per run; one legend above both panels, clear of the data."""
    fig = new_figure("wide")
    ax_g, ax_d = fig.subplots(1, 2)
    names = [o.run_name for o in outcomes]
    width = 0.8 / len(outcomes)
    healths = [layer_health(o.report) for o in outcomes]
    zero = zero_line(healths)
    for j, (o, layers) in enumerate(zip(outcomes, healths)):
        x = np.arange(len(layers)) + (j - (len(outcomes) - 1) / 2) * width
        color = run_color(names, o.run_name)
        draw_gradient_norms(ax_g, x, layers, zero, color, RUN_MARKERS[j % len(RUN_MARKERS)],
                            o.run_name)
        draw_unit_shares(ax_d, x, layers, width, color)
    mark_exact_zero(ax_g, healths, zero)
    n_layers = max(len(o.result.config.sizes) - 1 for o in outcomes)
    ticks = [f"layer {i + 1}" for i in range(n_layers - 1)] + [f"layer {n_layers}\n(output)"]
    label_gradient_axis(ax_g, ticks)
    label_units_axis(ax_d, ticks)
    fig.legend(*ax_g.get_legend_handles_labels(), loc="outside upper center",
               ncol=len(outcomes), frameon=False)
    return fig


# ----------------------------------------------------------------- a watched run's timeline
def timeline_figure(outcome) -> Figure | None:
    """A watched run over its steps: the update ratio |dw| / |w| of every parameter (left) and
    the dead or saturated share of each activation module (right), at the sampled steps, with
    the steps the recording says it went wrong at marked (a dashed red line with the codes:
    diagnostics.watch's own verdict, ``judge`` of its timeline). None without a recording."""
    from diagnostics.report_figures import (draw_units_over_steps_panel,
                                            draw_update_ratio_panel, mark_step)
    tl = outcome.result.timeline
    if tl is None or not len(tl.sample_steps):
        return None
    fig = new_figure("wide")
    ax_u, ax_d = fig.subplots(1, 2)
    draw_update_ratio_panel(ax_u, tl)
    draw_units_over_steps_panel(ax_d, tl)
    ax_u.set_title("update ratio |dw| / |w|")
    marks = went_wrong_steps(tl)
    last = tl.steps[-1] if len(tl.steps) else 0
    for ax in (ax_u, ax_d):
        for i, (step, codes) in enumerate(marks.items()):
            mark_step(ax, step, ", ".join(codes), i, step > last / 2)
    return fig


def went_wrong_steps(tl) -> dict:
    """{step: [codes]} of the recording's own verdict (diagnostics.watch_report.judge), and the
    first non-finite step where no finding names it."""
    from diagnostics.report_figures import went_wrong_at
    from diagnostics.watch_report import judge
    marks = went_wrong_at(judge(tl))
    bad = tl.first_nonfinite_step
    if bad is not None and bad not in marks:
        marks[int(bad)] = ["non-finite"]
    return marks
