"""What diagnose() returns: findings, most severe first, readable as text and as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SEVERITIES = ("error", "warning", "info")   # error: cannot train as configured; warning: likely to hurt


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
    """One thing wrong: ``message`` is ``<subject> <rule>. Found <numbers>.``, ``fix`` one sentence."""
    code: str
    severity: str
    message: str
    evidence: dict = field(default_factory=dict)
    fix: str = ""
    layer: str | None = None

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is unknown; accepted: {SEVERITIES}")
        object.__setattr__(self, "evidence", plain(self.evidence))

    def to_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "evidence": self.evidence, "fix": self.fix, "layer": self.layer}

    def __str__(self) -> str:
        where = f" [{self.layer}]" if self.layer else ""
        return f"{self.severity.upper()} {self.code}{where}: {self.message}\n    fix: {self.fix}"


def severity_rank(f: Finding):
    return (SEVERITIES.index(f.severity), f.code, f.layer or "")


@dataclass
class Report:
    """Findings sorted most severe first; ``notes`` say how the data was read (e.g. subsampling)."""
    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    def __post_init__(self):
        self.findings = sorted(self.findings, key=severity_rank)

    @property
    def codes(self) -> set:
        return {f.code for f in self.findings}

    @property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"ok": self.ok, "summary": plain(self.summary), "notes": list(self.notes),
                "findings": [f.to_dict() for f in self.findings]}

    def __str__(self) -> str:
        head = ", ".join(f"{k}={v}" for k, v in self.summary.items())
        n_err = len(self.errors)
        verdict = "ok" if not self.findings else f"{n_err} error(s), {len(self.findings) - n_err} other"
        lines = [f"diagnose: {verdict} ({head})"]
        lines += [f"  note: {n}" for n in self.notes]
        lines += ["  " + str(f).replace("\n", "\n  ") for f in self.findings]
        if not self.findings:
            lines.append("  no finding: nothing looks wrong")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Report(ok={self.ok}, codes={sorted(self.codes)})"
