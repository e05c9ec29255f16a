"""``Report.to_html()``: one self-contained page of a user's own run: the verdict, the summary and
yardstick lines, the notes, every finding (code, severity, message, evidence, fix; each root
cause with the findings that follow from it), and the run's figure as an inline PNG.
Every piece of text is escaped; nothing on the page points outside it."""

from __future__ import annotations

import json

from diagnostics.figures import DPI, png_bytes
from diagnostics.page import embedded_figure, escaped, page
from diagnostics.report_figures import panels, report_figure

TITLE = "diagnose: the report of one run"
FIGURE_CAPTION = ("The run: its loss history (dashed red: the steps the findings name), "
                  "per-layer gradient norms and dead or saturated units, and for a watched run "
                  "the update ratio |dw| / |w| and the dead units over the steps; x: the first "
                  "non-finite loss.")


def paragraph(label: str, text) -> str:
    return f"<p><b>{escaped(label)}</b> {escaped(text)}</p>"


def evidence_table(evidence: dict) -> str:
    """One row per evidence key; a nested value as compact JSON."""
    rows = "".join(f"<tr><th>{escaped(k)}</th><td><code>{escaped(json.dumps(v))}</code></td></tr>"
                   for k, v in evidence.items())
    return f'<table class="evidence">{rows}</table>' if rows else ""


def finding_section(f, follows: bool) -> str:
    """A finding as a section: 'ERROR code [layer]', its message, its evidence, its fix."""
    where = f" [{f.layer}]" if f.layer else ""
    head = f"<h3>{escaped(f.severity.upper())} <code>{escaped(f.code)}</code>{escaped(where)}</h3>"
    follows_from = paragraph("follows from:", f.explained_by) if follows else ""
    return (f'<section class="finding {escaped(f.severity)}{" follows" * follows}">{head}'
            f"{follows_from}<p>{escaped(f.message)}</p>{evidence_table(f.evidence)}"
            f"{paragraph('fix:', f.fix)}</section>")


def findings_html(report) -> str:
    if not report.findings:
        return "<p>No findings: nothing looks wrong.</p>"
    return "\n".join(finding_section(f, follows) for cause, rest in report.groups()
                     for f, follows in [(cause, False)] + [(r, True) for r in rest])


def summary_line(report) -> str:
    return ", ".join(f"{k}={v}" for k, v in report.summary.items())


def figure_html(report) -> str:
    """The run's figure inline, or nothing when the report has no data to draw."""
    if not panels(report):
        return ""
    fig = report_figure(report)
    return embedded_figure(png_bytes(fig), FIGURE_CAPTION, round(fig.get_figwidth() * DPI))


def report_page(report) -> str:
    parts = [f"<h1>{escaped(TITLE)}</h1>", paragraph("verdict:", report.verdict()),
             paragraph("summary:", summary_line(report))]
    if report.yardstick():
        parts.append(paragraph("yardstick:", report.yardstick()))
    parts += [paragraph("note:", n) for n in report.notes]
    figure = figure_html(report)
    parts += ["<h2>Findings</h2>", findings_html(report)]
    parts += ["<h2>The run</h2>", figure] if figure else []
    return page(TITLE, "\n".join(parts))
