"""What diagnose() returns: the root causes first, each with the findings it explains beneath it,
readable as text and as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SEVERITIES = ("error", "warning", "info")
YARDSTICK_KEYS = ("constant_loss", "linear_loss", "neighbours_loss", "reference_shortfall",
                  "val_loss", "val_constant_loss")   # summary keys printed on the yardstick line   # error: cannot train as configured; warning: likely to hurt


def plain(value):
    """numpy scalars and arrays as plain Python numbers and lists, so evidence is JSON-able."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return value if value is None or isinstance(value, str) else str(value)


@dataclass(frozen=True)
class Finding:
    """One thing wrong: ``message`` is ``<subject> <rule>. Found <numbers>.``, ``fix`` one sentence.

    ``explained_by`` is the code of the root cause this finding follows from (None for a root
    cause); ``explains`` the codes of the findings that follow from this one."""
    code: str
    severity: str
    message: str
    evidence: dict = field(default_factory=dict)
    fix: str = ""
    layer: str | None = None
    explained_by: str | None = None
    explains: tuple = ()

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is unknown; accepted: {SEVERITIES}")
        object.__setattr__(self, "evidence", plain(self.evidence))
        object.__setattr__(self, "explains", tuple(self.explains))

    @property
    def is_cause(self) -> bool:
        return self.explained_by is None

    def to_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "evidence": self.evidence, "fix": self.fix, "layer": self.layer,
                "explained_by": self.explained_by, "explains": list(self.explains)}

    def headline(self) -> str:
        where = f" [{self.layer}]" if self.layer else ""
        return f"{self.severity.upper()} {self.code}{where}: {self.message}"

    def __str__(self) -> str:
        return f"{self.headline()}\n    fix: {self.fix}"


@dataclass
class Report:
    """Findings in the order to act on them: each root cause, then the findings it explains.

    ``failing`` is True when the run is known to have failed whatever the findings' severities
    (a history was given and the loss on X is not finite, no better than a constant's or far
    behind a linear or nearest-neighbour fit of the same rows, or no better than a constant's on
    the held-out rows);
    ``notes`` say how the data was read (e.g. subsampling); ``layers`` holds every layer's
    measurements (gradient, dead and saturated units), finding or not; ``history`` the losses
    diagnosed and ``timeline`` a watched run's recording (diagnostics.timeline), kept for
    :meth:`plot` and :meth:`to_html` (not in :meth:`to_dict`, whose output they would swell)."""
    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    failing: bool = False
    layers: list = field(default_factory=list)
    history: np.ndarray | None = field(default=None, compare=False)
    timeline: object = field(default=None, compare=False)

    @property
    def codes(self) -> set:
        return {f.code for f in self.findings}

    @property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def causes(self) -> list:
        """The root causes, the one to act on first first."""
        return [f for f in self.findings if f.is_cause]

    @property
    def ok(self) -> bool:
        """No error, and not a run that failed: a run that learned nothing is never ok."""
        return not self.errors and not self.failing

    def groups(self) -> list:
        """[(cause, [the findings that follow from it])], in the report's order."""
        groups = []
        for f in self.findings:
            if f.is_cause or not groups:
                groups.append((f, []))
            else:
                groups[-1][1].append(f)
        return groups

    def verdict(self) -> str:
        """One line: what is wrong and the one fix to try first."""
        if not self.findings:
            return "ok: nothing looks wrong"
        first = self.causes[0]
        state = "training failed" if self.failing else \
            "errors found" if self.errors else "warnings only"
        more = len(self.causes) - 1
        explains = f", which explains {len(first.explains)} other finding(s)" if first.explains \
            else ""
        others = f"; {more} other cause(s) below" if more else ""
        at = first.evidence.get("at_step")   # a watched run's finding names its step
        when = f"at step {at}: " if at is not None else ""
        return f"{when}{state}: {first.code}{explains}{others}. Try first: {first.fix}"

    def to_dict(self) -> dict:
        return {"ok": self.ok, "failing": self.failing, "verdict": self.verdict(),
                "summary": plain(self.summary), "notes": list(self.notes),
                "causes": [f.code for f in self.causes],
                "findings": [f.to_dict() for f in self.findings],
                "layers": plain(self.layers)}

    def yardstick(self) -> str | None:
        """The run's loss beside what the same rows allow, in one line, when it was measured."""
        s = self.summary
        if "linear_loss" not in s:
            return None
        val = f"; on X_val {s['val_loss']:.4g} (a constant: {s['val_constant_loss']:.4g})" \
            if "val_loss" in s else ""
        return (f"loss {s['loss_value']} on X against a constant predictor's "
                f"{s['constant_loss']:.4g}; a linear model reaches {s['linear_loss']:.4g} and "
                f"nearest neighbours {s['neighbours_loss']:.4g} on held-out folds of the same "
                f"rows{val}")

    def plot(self):
        """A matplotlib Figure of the run: the loss history with the steps the findings name
        marked, per-layer gradient norms and dead or saturated units, and a watched run's update
        ratios and dead units over the steps; panels without data are left out."""
        from diagnostics.report_figures import report_figure
        return report_figure(self)

    def to_html(self) -> str:
        """One self-contained HTML page: the verdict, every finding, the yardstick and the
        figure (inline PNG); nothing in it is fetched from elsewhere."""
        from diagnostics.report_page import report_page
        return report_page(self)

    def __str__(self) -> str:
        head = ", ".join(f"{k}={v}" for k, v in self.summary.items() if k not in YARDSTICK_KEYS)
        lines = [f"diagnose: {self.verdict()}", f"  ({head})"]
        lines += [f"  yardstick: {self.yardstick()}"] if self.yardstick() else []
        lines += [f"  note: {n}" for n in self.notes]
        for cause, consequences in self.groups():
            lines.append("  " + str(cause).replace("\n", "\n  "))
            lines += ["      follows from it: " + f.headline() for f in consequences]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Report(ok={self.ok}, causes={[f.code for f in self.causes]}, " \
               f"codes={sorted(self.codes)})"
