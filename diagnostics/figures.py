"""Drawing helpers shared by ``Report.plot()`` and the casebook's figures: new figures, PNG bytes,
log axes, a loss history, and per-layer gradient norms and dead or saturated units.

matplotlib is imported inside the functions, never at import time: ``diagnose()`` must not load
it. Figures are ``matplotlib.figure.Figure`` objects on the Agg canvas (no pyplot, no display),
so a user's own backend choice is left as it is; their text sizes come from :data:`RC`, applied
while a figure is drawn (:func:`house_style`), not set globally.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DPI = 100
SIZES = {"wide": (9.0, 3.6), "tall": (9.0, 5.6)}   # inches; at DPI 100: 900 px, the page width
RC = {"font.size": 10, "axes.titlesize": 10, "legend.fontsize": 9, "svg.hashsalt": "casebook"}
LOG_MINOR_SUBS = (2, 5)  # minor ticks at 2x and 5x each decade: matplotlib's eight per decade
                         # made ~60% of a loss figure's savefig (1.0-1.4 s against 0.6 s, measured)
CEILING_OVER_START = 100  # top of a loss axis: 100x the first loss. A diverged run's 1e30 before
                          # its NaN would flatten every other value into a line
MAX_DRAWN_POINTS = 4000   # a history longer than this is drawn every n-th step: a few thousand
                          # points draw the same picture, and a million would take seconds


@contextmanager
def house_style():
    """The figures' text sizes while a figure is built, the caller's rcParams untouched after."""
    import matplotlib
    with matplotlib.rc_context(RC):
        yield


def new_figure(size=SIZES["wide"]):
    """A constrained-layout Figure of ``size`` inches, not registered with pyplot."""
    from matplotlib.figure import Figure
    return Figure(figsize=size, dpi=DPI, layout="constrained")


def pixel_size(kind: str) -> tuple:
    w, h = SIZES[kind]
    return round(w * DPI), round(h * DPI)


def png_bytes(fig) -> bytes:
    """The figure as PNG, without the Software tag (the bytes stay the same run to run), in the
    house style: tick labels are made as it draws, and take their size from the rcParams then."""
    buffer = io.BytesIO()
    with house_style():
        fig.savefig(buffer, dpi=DPI, format="png", metadata={"Software": None})
    return buffer.getvalue()


def save(fig, path: Path) -> Path:
    Path(path).write_bytes(png_bytes(fig))
    return path


def log_scale(ax, axes: str = "y") -> None:
    """Log scale on the named axes ("x", "y" or "xy"), with a few minor ticks per decade."""
    from matplotlib.ticker import LogLocator
    for name in axes:
        ax.set(**{f"{name}scale": "log"})
        getattr(ax, f"{name}axis").set_minor_locator(LogLocator(subs=LOG_MINOR_SUBS))


# ----------------------------------------------------------------- a loss history
def drawn_every(n: int) -> int:
    """The stride that draws at most MAX_DRAWN_POINTS of n points."""
    return max(1, -(-n // MAX_DRAWN_POINTS))


def draw_history(ax, steps, losses, color, label: str, lw: float = 1.2) -> None:
    """Every step's loss as one line (thinned past MAX_DRAWN_POINTS); non-finite ones leave gaps."""
    stride = drawn_every(len(losses))
    ax.plot(np.asarray(steps)[::stride], np.asarray(losses)[::stride], color=color, lw=lw,
            label=label)


def mark_divergence(ax, step, y, color) -> None:
    """An x where a run went non-finite, at height y (drawn even at the axis' edge)."""
    ax.plot(step, y, "x", color=color, ms=9, mew=2, clip_on=False)


def loss_ceiling(first_losses, finite_tops) -> float:
    """CEILING_OVER_START x the largest first loss, or the largest top of a run that stayed
    finite when that is higher."""
    tops = [CEILING_OVER_START * t for t in first_losses] + list(finite_tops)
    tops = [t for t in tops if np.isfinite(t)]
    return max(tops) if tops else 1.0


# ----------------------------------------------------------------- per-layer health
@dataclass
class LayerHealth:
    name: str               # as diagnose() names it: "layer 1 (hidden, 64 relu)"
    grad_norm: float        # Frobenius norm of dL/dW (mean loss over the training set)
    weight_norm: float
    dead_share: float       # share of its units dead (rectifiers) or saturated (squashing), or nan
    kind: str               # "dead", "saturated" or "" (the share does not apply)


def health_of(layer: dict) -> LayerHealth:
    """One of ``Report.layers`` (diagnose()'s own measurements) as a LayerHealth."""
    grad = layer["grad_norm"] if layer["grad_norm"] is not None else float("nan")
    for key, kind in (("dead_units", "dead"), ("saturated_units", "saturated")):
        if layer[key] is not None:
            return LayerHealth(layer["layer"], grad, layer["weight_norm"],
                               layer[key] / layer["width"], kind)
    return LayerHealth(layer["layer"], grad, layer["weight_norm"], float("nan"), "")


def layer_health(report) -> list:
    """One :class:`LayerHealth` per layer of the diagnosed model; none without a report."""
    return [] if report is None else [health_of(layer) for layer in report.layers]


def share_label(layer: LayerHealth) -> str:
    """A bar's label: its share, or n/a where the activation cannot die or saturate."""
    return "n/a" if not layer.kind else f"{100 * layer.dead_share:.0f}%"


def zero_line(healths) -> float:
    """Where an exactly-zero gradient norm is drawn on the log axis: 100x below the smallest
    non-zero one (a dead net's 0 has no place on a log axis, and 1e-16 would stretch it)."""
    norms = [la.grad_norm for layers in healths for la in layers
             if np.isfinite(la.grad_norm) and la.grad_norm > 0]
    return min(norms) / 100 if norms else 1e-16


def gradients_all_finite(layers) -> bool:
    return all(np.isfinite(la.grad_norm) for la in layers)


def draw_gradient_norms(ax, x, layers, zero: float, color, marker: str, label: str) -> None:
    """Each layer's gradient norm as a point (an exact 0 on the zero line); a net with a
    non-finite one gets only a legend entry saying so."""
    sick = not gradients_all_finite(layers)
    norms = [] if sick else [la.grad_norm or zero for la in layers]
    ax.plot(x[:len(norms)], norms, color=color, marker=marker, ms=7, lw=1,
            label=label + (": non-finite, not drawn" if sick else ""))


def draw_unit_shares(ax, x, layers, width: float, color) -> None:
    """Each layer's share of dead or saturated units as a labelled bar (n/a where none apply).
    A net with non-finite gradients has units neither dead nor alive: nothing is counted."""
    if not gradients_all_finite(layers):
        layers = [LayerHealth(la.name, la.grad_norm, la.weight_norm, float("nan"), "")
                  for la in layers]
    bars = ax.bar(x, [100 * np.nan_to_num(la.dead_share) for la in layers], width, color=color)
    ax.bar_label(bars, [share_label(la) for la in layers], fontsize=7)


def mark_exact_zero(ax, healths, zero: float) -> None:
    """A dotted 'exactly 0' line where some layer's gradient norm is 0."""
    if any(la.grad_norm == 0 for layers in healths for la in layers):
        ax.axhline(zero, color="gray", ls=":", lw=1)
        ax.text(0.99, zero, "exactly 0", color="gray", fontsize=8, ha="right", va="bottom",
                transform=ax.get_yaxis_transform())


GRADIENT_TITLE = "gradient norm per layer"
UNITS_TITLE = "dead (ReLU) or saturated (sigmoid/tanh) units"


def label_gradient_axis(ax, ticks) -> None:
    log_scale(ax)
    ax.set(ylabel="‖dL/dW‖ (Frobenius, log)", title=GRADIENT_TITLE)
    label_layers(ax, ticks)


def label_units_axis(ax, ticks) -> None:
    ax.set(ylabel="units (%)", ylim=(0, 105), title=UNITS_TITLE)
    label_layers(ax, ticks)


def label_layers(ax, ticks) -> None:
    ax.set_xticks(range(len(ticks)), ticks, fontsize=8)
    ax.set_xlim(-0.5, len(ticks) - 0.5)
    ax.grid(axis="y", alpha=0.3)
