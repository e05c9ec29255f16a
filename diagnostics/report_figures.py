"""``Report.plot()``: one figure of a user's own run, from what the report kept.

Panels, each only where the report has its data: the loss history with the steps the findings
name marked; per-layer gradient norms; per-layer dead or saturated units; and, for a watched run
(``diagnose(..., run=run)``), the update ratio |dw| / |w| and the dead units over the steps.
The drawing is diagnostics.figures', the casebook's too; matplotlib is imported only when a
figure is drawn, never by diagnose().
"""

from __future__ import annotations

import textwrap

import numpy as np

from diagnostics.figures import (draw_gradient_norms, draw_history, draw_unit_shares,
                                 gradients_all_finite, house_style, label_gradient_axis,
                                 label_units_axis, layer_health, log_scale, mark_divergence,
                                 new_figure, zero_line)
from diagnostics.timeline import UPDATE_HUGE

WIDTH = 9.0             # inches: 900 px at the figures' DPI, the page width
ROW_HEIGHT = 3.2        # inches per row of panels: room for a title, ticks and two-line labels
RUN_COLOR = "tab:blue"
LOG_SPAN = 10.0         # a loss axis is log when the losses span more than a decade: under one,
                        # a log axis has no major tick left to label and shows the same curve
WRONG_COLOR = "tab:red"  # the steps where the findings say it went wrong
WENT_WRONG = "went-wrong"   # gid of those marker lines: what a test or a reader looks them up by
LAYER_LABEL_CHARS = 14  # a layer's name wrapped at this width: five fit under a half-width panel
LABEL_RISE = 0.08       # axes fraction between stacked step labels: one line of 8 pt text
MAX_LEGEND_ENTRIES = 8  # more names than this in a legend cover the lines they name
WINDOW_CODES = ("loss-plateau", "loss-oscillation")   # their evidence's window ends at the last step
NOTHING_TO_PLOT = ("nothing to plot: the report holds no history, no layer measurements and no "
                   "timeline; diagnose(model, X, y, history=losses) or diagnose(..., run=run) "
                   "keeps them")


# ----------------------------------------------------------------- the steps it went wrong
def history_steps(report) -> np.ndarray:
    """The step of each history entry: a watched run's logged steps (a long run is thinned),
    else 0, 1, 2, ..."""
    tl, h = report.timeline, report.history
    if tl is not None and len(tl.steps) == len(h):
        return tl.steps
    return np.arange(len(h))


def step_of_finding(f, steps: np.ndarray, history: np.ndarray) -> int | None:
    """The step a finding says the run went wrong at: a watched run's ``at_step``, the first
    non-finite loss, or the start of a plateau's or an oscillation's window."""
    ev = f.evidence
    if ev.get("at_step") is not None:
        return int(ev["at_step"])
    if f.code == "non-finite" and ev.get("first_bad_step") is not None:
        return int(steps[ev["first_bad_step"]])
    if f.code in WINDOW_CODES and ev.get("window"):
        finite = np.flatnonzero(np.isfinite(history))
        return int(steps[finite[-min(int(ev["window"]), len(finite))]])
    return None


def went_wrong_at(report) -> dict:
    """{step: [the codes that name it]}, in the report's order."""
    steps, marks = history_steps(report), {}
    for f in report.findings:
        step = step_of_finding(f, steps, report.history)
        if step is not None:
            marks.setdefault(step, []).append(f.code)
    return marks


def first_non_finite_step(report) -> int | None:
    bad = np.flatnonzero(~np.isfinite(report.history))
    return int(history_steps(report)[bad[0]]) if len(bad) else None


# ----------------------------------------------------------------- the panels
def draw_loss_panel(ax, report) -> None:
    """The history over all its steps (log where its positive losses span decades), the steps
    the findings name as dashed red lines with their codes, an x where it went non-finite."""
    h, steps = report.history, history_steps(report)
    finite = h[np.isfinite(h)]
    draw_history(ax, steps, h, RUN_COLOR, "loss")
    if finite.min() > 0 and finite.max() > LOG_SPAN * finite.min():
        log_scale(ax)
    ax.set_xlim(steps[0] - 0.5, steps[-1] + 0.5)   # the whole run, its non-finite tail too
    for i, (step, codes) in enumerate(went_wrong_at(report).items()):
        mark_step(ax, step, ", ".join(codes), i, step > (steps[0] + steps[-1]) / 2)
    bad = first_non_finite_step(report)
    if bad is not None:
        mark_divergence(ax, bad, finite[-1], WRONG_COLOR)
    ax.set(title="loss history", xlabel="step", ylabel=f"loss ({report.summary.get('loss', '')})")
    ax.grid(alpha=0.3)


def mark_step(ax, step: int, label: str, i: int, on_the_right: bool) -> None:
    """A dashed line at the step, its label beside it near the bottom (a diverging loss fills
    the top), the i-th one LABEL_RISE above the one before (steps close together would print
    their labels over each other)."""
    ax.axvline(step, color=WRONG_COLOR, ls="--", lw=1, gid=WENT_WRONG)
    ax.text(step, 0.03 + LABEL_RISE * i, f" {label} (step {step}) ", color=WRONG_COLOR,
            fontsize=8, va="bottom", ha="right" if on_the_right else "left",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
            transform=ax.get_xaxis_transform())


def layer_ticks(layers) -> list:
    return [textwrap.fill(la.name, LAYER_LABEL_CHARS) for la in layers]


def draw_gradient_panel(ax, layers) -> None:
    x = np.arange(len(layers))
    draw_gradient_norms(ax, x, layers, zero_line([layers]), RUN_COLOR, "o", "")
    label_gradient_axis(ax, layer_ticks(layers))
    label_minor_ticks_within_a_decade(ax)


def label_minor_ticks_within_a_decade(ax) -> None:
    """Numbers on the 2x and 5x ticks too when the axis spans under a decade: one run's layers
    often lie within one, and matplotlib would label a single tick or none."""
    from matplotlib.ticker import LogFormatterSciNotation
    ax.yaxis.set_minor_formatter(LogFormatterSciNotation(minor_thresholds=(1, 1)))


def draw_units_panel(ax, layers) -> None:
    draw_unit_shares(ax, np.arange(len(layers)), layers, 0.6, RUN_COLOR)
    label_units_axis(ax, layer_ticks(layers))


def over_the_run(ax, tl) -> None:
    """The x axis of a timeline panel: every logged step, as the loss history's."""
    if len(tl.steps):
        ax.set_xlim(tl.steps[0] - 0.5, tl.steps[-1] + 0.5)


def draw_update_ratio_panel(ax, tl) -> None:
    """|dw| / |w| of every parameter at the sampled steps, the weights' own size as a line."""
    for i, (name, r) in enumerate(tl.update_ratio.items()):
        ax.plot(tl.sample_steps, r, lw=1, label=legend_label(name, i))
    ax.axhline(UPDATE_HUGE, color=WRONG_COLOR, ls=":", lw=1, label="|dw| = |w|")
    if any(np.nanmax(r, initial=0) > 0 for r in tl.update_ratio.values()):
        log_scale(ax)
    ax.set(title="update ratio |dw| / |w| (watched steps)", xlabel="step", ylabel="|dw| / |w|")
    finish_legend(ax, len(tl.update_ratio), "parameter")
    over_the_run(ax, tl)


def draw_units_over_steps_panel(ax, tl) -> None:
    """Each activation module's dead share (solid) and saturated share (dashed, where any)."""
    for i, (name, dead) in enumerate(tl.dead.items()):
        color = f"C{i % 10}"
        ax.plot(tl.sample_steps, 100 * dead, color=color, lw=1.2, label=legend_label(name, i))
        saturated = tl.saturated.get(name)
        if saturated is not None and np.nanmax(saturated, initial=0) > 0:
            ax.plot(tl.sample_steps, 100 * saturated, color=color, lw=1.2, ls="--")
    ax.set(title="units dead (solid) or saturated (dashed)", xlabel="step",
           ylabel="units of the batch (%)", ylim=(-3, 103))
    finish_legend(ax, len(tl.dead), "activation module")
    over_the_run(ax, tl)


def legend_label(name: str, i: int) -> str:
    """The name, or hidden from the legend past MAX_LEGEND_ENTRIES (matplotlib's '_' prefix)."""
    return name if i < MAX_LEGEND_ENTRIES else f"_{name}"


def finish_legend(ax, n: int, what: str) -> None:
    """The legend (titled ``what``) and the grid."""
    title = what + (f" (first {MAX_LEGEND_ENTRIES} of {n})" if n > MAX_LEGEND_ENTRIES else "")
    ax.legend(loc="best", fontsize=7, title=title, title_fontsize=7)
    ax.grid(alpha=0.3)


# ----------------------------------------------------------------- the figure
def panels(report) -> list:
    """[(title, draw(ax))] of the panels the report has data for, the loss history first."""
    layers, tl = layer_health(report), report.timeline
    has_history = report.history is not None and np.isfinite(report.history).any()
    grads = bool(layers) and gradients_all_finite(layers)
    units = grads and any(la.kind for la in layers)
    sampled = tl is not None and len(tl.sample_steps) > 0
    found = [("loss history", has_history, lambda ax: draw_loss_panel(ax, report)),
             ("gradient norm per layer", grads, lambda ax: draw_gradient_panel(ax, layers)),
             ("dead or saturated units", units, lambda ax: draw_units_panel(ax, layers)),
             ("update ratio", sampled and bool(tl.update_ratio),
              lambda ax: draw_update_ratio_panel(ax, tl)),
             ("units over steps", sampled and bool(tl.dead),
              lambda ax: draw_units_over_steps_panel(ax, tl))]
    return [(title, draw) for title, present, draw in found if present]


def rows_of(drawers: list) -> list:
    """The loss history alone on the first row (when present), the others two to a row."""
    first = drawers[:1] if drawers and drawers[0][0] == "loss history" else []
    rest = drawers[len(first):]
    return ([first] if first else []) + [rest[i:i + 2] for i in range(0, len(rest), 2)]


def report_figure(report):
    """The run's figure (a matplotlib Figure); ValueError when the report holds nothing to draw."""
    rows = rows_of(panels(report))
    if not rows:
        raise ValueError(NOTHING_TO_PLOT)
    with house_style():
        fig = new_figure((WIDTH, ROW_HEIGHT * len(rows)))
        grid = fig.add_gridspec(len(rows), 2)
        for r, row in enumerate(rows):
            for c, (_, draw) in enumerate(row):
                draw(fig.add_subplot(grid[r, c] if len(row) == 2 else grid[r, :]))
    return fig
