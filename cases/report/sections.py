"""The casebook's text: a front page, then one section per case.

Every case gets the generic section (story, configurations, verdicts, loss
curves, predictions, layer health, findings); the figures a case names in
``Case.figures`` (drawn by ``cases.report.casefigs.FIGURES``) add what only that case has.
"""

from __future__ import annotations

import numpy as np
import torch

from cases.report import figures
from cases.report.blocks import Code, Heading, Table, Text
from cases.report.casefigs import FIGURES
from cases.report.tables import OUTCOME_HEADER, outcome_rows

TITLE = "mlp-casebook: how small MLPs fail to train, and the fixes"
FINDING_HEADER = ("severity", "code", "follows from", "layer", "message", "fix")


def front_matter(cases, outcomes, command: str) -> list:
    good = sum(o.as_documented for o in outcomes)
    rows = []
    for c in cases:
        mine = [o for o in outcomes if o.case is c]
        rows.append((f"[{c.id}](#{c.id})", source_cell(c.source), c.title,
                     f"{sum(o.as_documented for o in mine)} of {len(mine)}"))
    return [
        Heading(TITLE, 1),
        Text("Each case is a documented failure of a small multilayer perceptron, taken from a "
             "blog post, a course report or a Q&A thread, reproduced here with its data, the "
             "failing configuration, and the fixes. For each: the loss curves, what the nets "
             "predict, per-layer gradients and dead or saturated units, and what `diagnose()` "
             "reports on the failing and the fixed runs."),
        Text(f"Made by `{command}` with numpy {np.__version__} and torch {torch.__version__}. "
             f"{good} of {len(outcomes)} runs behaved as documented."),
        Table(("case", "source document", "what failed", "runs as documented"), rows),
    ]


def source_cell(source) -> str:
    """Title (English for a Chinese one), kind and year, and the document's first URL as a link
    named by where it goes (it may be the author's code rather than the post)."""
    title = source.english or source.title
    title = title if len(title) <= 60 else title[:57].rstrip() + "..."
    text = f"seed {source.seed}: {title} ({source.kind}, {source.year or 'undated'})"
    if not source.url:
        return text
    return f"{text}, [{source.url.split('://', 1)[-1].rstrip('/')}]({source.url})"


def case_section(ctx) -> list:
    case = ctx.case
    blocks = [Heading(f"{case.id}: {case.title}", 2, anchor=case.id),
              Text(f"Source (seed {case.source.seed}): {case.source.markdown()}"),
              Text(case.story),
              configurations(case),
              Table(OUTCOME_HEADER, outcome_rows(ctx.outcomes),
                    caption="Every run: the metric against its threshold, and the finding "
                    "codes of diagnose() (errors first)")]
    for backend in dict.fromkeys(o.backend for o in ctx.outcomes):
        blocks += generic_figures(ctx, backend)
    for name in case.figures:
        make = FIGURES[name]
        ctx.note(make.__name__.replace("_", " "))
        blocks += make(ctx)
    return blocks + findings(ctx)


def configurations(case) -> Table:
    rows = [("failing", case.failing.summary())]
    rows += [(name, cfg.summary()) for name, cfg in case.fixes.items()]
    return Table(("run", "configuration"), rows,
                 caption=f"failing when {case.failed_when}; fixed when {case.fixed_when}")


def generic_figures(ctx, backend: str) -> list:
    """Loss curves, predictions and layer health of every run at the first seed."""
    shown = ctx.shown(backend)
    tag = f"{backend}, seed {ctx.seed}"
    suffix = "" if backend == ctx.backend else f"-{backend}"
    ctx.note(f"figures ({backend})")
    blocks = [ctx.figure(figures.loss_figure(shown), "loss" + suffix,
                         f"Loss against optimizer steps, failing vs fixed ({tag}).")]
    fig = figures.predictions_figure(shown)
    if fig is not None:
        blocks.append(ctx.figure(fig, "predictions" + suffix,
                                 f"What the trained nets predict vs the target ({tag})."))
    blocks.append(ctx.figure(figures.health_figure(shown), "layers" + suffix,
                             f"Per-layer gradient norm of the trained nets on the training set, "
                             f"and the share of units that pass no gradient ({tag})."))
    return blocks + timeline_figures(ctx, shown, suffix, tag)


def timeline_figures(ctx, shown, suffix: str, tag: str) -> list:
    """The failing run's timeline, where it was watched (a torch run with an optimizer)."""
    blocks = []
    for o in (o for o in shown if o.run_name == "failing"):
        fig = figures.timeline_figure(o)
        if fig is None:
            continue
        marked = ("dashed red: the step the recording says it went wrong at"
                  if figures.went_wrong_steps(o.result.timeline) else
                  "the recording alone names no step where it went wrong: what failed is the "
                  "trained model, as diagnose() says below")
        blocks.append(ctx.figure(
            fig, "timeline" + suffix,
            f"The failing run as diagnostics.watch recorded it ({tag}): each parameter's update "
            f"against its size, and each activation's dead (solid) or saturated (dashed) units, "
            f"at the sampled steps; {marked}."))
    return blocks


def findings(ctx) -> list:
    """diagnose()'s report on the failing run and on each fix (first backend, first seed)."""
    blocks = [Heading("What diagnose() says", 3)]
    for o in ctx.shown():
        title = f"{o.run_name} ({o.backend}, seed {o.seed})"
        if o.report is None:
            blocks.append(Text(f"{title}: {o.diagnose_error}"))
        elif not o.report.findings:
            blocks.append(Text(f"{title}: no findings."))
        else:
            rows = [(f.severity, f.code, f.explained_by or "root cause", f.layer or "",
                     f.message, f.fix if f.is_cause else "")
                    for f in o.report.findings]     # each cause, then what follows from it
            blocks.append(Table(FINDING_HEADER, rows, caption=f"{title}: "
                                f"{o.report.verdict()}"))
    return blocks

