"""A run as plain data a reviewer can read: its loss trace, final metrics, findings, and a sparkline.

>>> from cases.config import RunConfig
>>> from cases.runner import run
>>> result = run(RunConfig(data="sin_points", sizes=(1, 20, 1), activation="tanh", steps=300))
>>> summary = summarize(result, "sin-demo[numpy]", codes=())
>>> sorted(summary)
['codes', 'config', 'final', 'id', 'loss', 'sparkline', 'steps']
>>> len(summary["loss"]), summary["loss"][0] == round_sig(result.history[0])
(32, True)
>>> summary["loss"][299] == round_sig(result.history[-1])   # step -> loss, the last step included
True
>>> sparkline([1.0, 0.5, 0.1, 0.01, float("nan")])
'█▇▅▁×'

The summary holds only str, int, bool, float and lists or dicts of them (never
arrays, tensors or dataclasses), so a syrupy snapshot of it is a readable diff.
``summary["loss"]`` maps a step to the batch loss of ``result.history`` there, at
``TRACE_POINTS`` log-spaced steps: early steps, where most of the change
happens, are seen closely, and the first and last step are always there.
"""

from __future__ import annotations

import math

import numpy as np

TRACE_POINTS = 32          # losses kept per run: a screen of diff, and every decade of steps sampled
SIGNIFICANT_DIGITS = 4     # float noise (BLAS, threads) sits ~10 digits further down; a real change not
LOG_SCALE_RATIO = 10.0     # draw on a log scale once the finite losses span a decade or more
LEVELS = "▁▂▃▄▅▆▇█"        # eight heights, lowest to highest
NAN_MARK = "×"             # a NaN loss: the run broke here (a run stops at its first non-finite loss)
INF_MARK = "↑"             # +inf: the loss overflowed upward
NEG_INF_MARK = "↓"         # -inf: only a loss without a floor can do this
CHAOS_HORIZON = 32         # steps of a chaotic run kept: a 1e-15 nudge of one weight of seed 002's
                           # failing run moves its loss by 1e-12 at step 21 and 1e-3 at step 58
DIAGNOSTICS_MISSING = "diagnostics-not-importable"  # the codes field while diagnostics/ is absent


# ------------------------------------------------------------------ numbers
def round_sig(x: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """``x`` rounded to ``digits`` significant digits, as a plain float (NaN and inf pass through)."""
    x = float(x)
    if not math.isfinite(x) or x == 0.0:
        return x
    return float(f"{x:.{digits - 1}e}")


def trace_steps(n_steps: int, points: int = TRACE_POINTS) -> list[int]:
    """About ``points`` log-spaced indices into a history of ``n_steps``, first and last included."""
    if n_steps < 1:
        raise ValueError(f"n_steps = {n_steps!r}: a trace needs a history of at least one step")
    if n_steps <= points:
        return list(range(n_steps))
    # low steps collide after rounding: take more geometric points until ``points`` distinct remain
    for k in range(points, 4 * points + 1):
        steps = np.unique(np.round(np.geomspace(1, n_steps, k)).astype(int) - 1)
        if len(steps) >= points:
            break
    return [int(s) for s in steps]


def sampled_trace(history, points: int = TRACE_POINTS) -> dict:
    """{step: loss rounded to SIGNIFICANT_DIGITS} at log-spaced steps of ``history``."""
    history = np.asarray(history, dtype=np.float64).reshape(-1)
    return {s: round_sig(history[s]) for s in trace_steps(len(history), points)}


# ---------------------------------------------------------------- sparkline
def uses_log_scale(values) -> bool:
    """Log heights when every finite value is positive and they span LOG_SCALE_RATIO or more."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return bool(len(v) and v.min() > 0 and v.max() / v.min() >= LOG_SCALE_RATIO)


def sparkline(values, log: bool | None = None) -> str:
    """One character per value: ▁ (lowest) to █ (highest); NaN is ×, +inf ↑, -inf ↓.

    ``log`` None chooses with :func:`uses_log_scale`. A flat line is drawn as ▁.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    log = uses_log_scale(v) if log is None else log
    finite = np.isfinite(v) & ((v > 0) if log else True)
    y = np.where(finite, np.log10(np.where(finite, v, 1.0)) if log else v, np.nan)
    lo, hi = (np.nanmin(y), np.nanmax(y)) if finite.any() else (0.0, 0.0)
    span = hi - lo if hi > lo else 1.0
    return "".join(draw_one(x, yi, lo, span) for x, yi in zip(v, y))


def draw_one(x: float, y: float, lo: float, span: float) -> str:
    if math.isnan(x):
        return NAN_MARK
    if math.isinf(x):
        return INF_MARK if x > 0 else NEG_INF_MARK
    if math.isnan(y):          # a finite value a log scale cannot draw (zero): the floor
        return LEVELS[0]
    return LEVELS[min(int((y - lo) / span * len(LEVELS)), len(LEVELS) - 1)]


def labelled_sparkline(values) -> str:
    """The sparkline followed by its scale: ``'█▆▃▁▁ log'`` or ``'█▆▃▁▁ linear'``."""
    return f"{sparkline(values)} {'log' if uses_log_scale(values) else 'linear'}"


# ------------------------------------------------------------------ summary
def final_metrics(result) -> dict:
    """Final full-set train/test loss, and accuracy where the task has classes, rounded."""
    names = ["train_loss", "test_loss"]
    if result.train_acc is not None:
        names += ["train_acc", "test_acc"]
    return {n: round_sig(getattr(result, n)) for n in names}


def finding_codes(result, loss=None) -> list[str]:
    """The codes of ``cases.case.diagnose_result(result, loss)`` in the report's order: each
    root cause, then what follows from it, as ``"code (from cause)"``.

    While ``diagnostics.diagnose`` cannot be imported the list is ``[DIAGNOSTICS_MISSING]``:
    a snapshot holding it stops matching as soon as diagnostics exists, so the
    gap shows up as a failure, never as a silent skip. An error inside
    diagnostics is raised, not hidden.
    """
    try:
        from diagnostics import diagnose  # noqa: F401
    except ImportError as e:
        if e.name != "diagnostics":   # the package or its diagnose is absent; anything else is a bug
            raise
        return [DIAGNOSTICS_MISSING]
    from cases.case import diagnose_result
    report = diagnose_result(result, loss)
    return list(dict.fromkeys(f.code if f.is_cause else f"{f.code} (from {f.explained_by})"
                              for f in report.findings))


def summarize(result, run_id: str, codes=None, loss=None) -> dict:
    """The plain-data summary of a run; ``codes`` None diagnoses it (told ``loss``, if given)."""
    codes = finding_codes(result, loss) if codes is None else codes
    return summary(result, run_id, sampled_trace(result.history),
                   final_metrics(result) | {"diverged": bool(result.diverged)}, codes)


def summarize_chaotic(result, run_id: str, codes) -> dict:
    """The summary of a chaotic run: only what one ulp of rounding cannot change.

    Past ``CHAOS_HORIZON`` steps the trace of a chaotic run is decided by rounding (another CPU's
    BLAS kernel, another numpy build), so the losses stop there, the final metrics are left out,
    and ``codes`` should be the ones the case requires (the others depend on where the orbit ends).
    """
    final = {"diverged": bool(result.diverged),
             "chaotic": f"losses after step {CHAOS_HORIZON} are rounding-dependent: not kept"}
    return summary(result, run_id, sampled_trace(result.history[:CHAOS_HORIZON]), final, codes)


def summary(result, run_id: str, losses: dict, final: dict, codes) -> dict:
    return {
        "id": run_id,
        "config": result.config.summary(),
        "steps": len(result.history),             # fewer than configured: stopped at a non-finite loss
        "loss": losses,
        "final": final,
        "codes": list(codes),      # the report's order: cause first
        "sparkline": labelled_sparkline(list(losses.values())),
    }
