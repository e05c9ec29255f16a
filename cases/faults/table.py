"""The matrix's tables, computed from the per-run records only (so they can be recomputed).

Per operator: mutants tried, harmful mutants, cause named, cause named first.
Per healthy program over its seeds: runs, errors, warnings, and the codes reported.
Totals: cause named first on X% of harmful mutants, errors on healthy runs, warnings per run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cases.faults.matrix import HEALTHY, POST_HOC


@dataclass(frozen=True)
class Totals:
    harmful: int
    named: int
    named_first: int
    healthy_runs: int
    healthy_errors: int
    healthy_warnings: int
    crashes: int            # runs where diagnose() raised

    @property
    def named_first_share(self) -> float:
        return self.named_first / self.harmful if self.harmful else 0.0

    @property
    def named_share(self) -> float:
        return self.named / self.harmful if self.harmful else 0.0

    @property
    def warnings_per_healthy_run(self) -> float:
        return self.healthy_warnings / self.healthy_runs if self.healthy_runs else 0.0


def healthy(records) -> list:
    return [r for r in records if r.operator == HEALTHY]


def mutants(records) -> list:
    return [r for r in records if r.operator != HEALTHY]


def count(records, severity: str) -> int:
    return sum(r.severities.count(severity) for r in records)


def totals(records) -> Totals:
    bad = [r for r in mutants(records) if r.hurt]
    ok = healthy(records)
    return Totals(len(bad), sum(r.named for r in bad), sum(r.named_first for r in bad),
                  len(ok), count(ok, "error"), count(ok, "warning"),
                  sum(bool(r.diagnose_error) for r in records))


def operator_rows(records) -> list:
    """[operator, cause codes, tried, harmful, named, named first] in the records' order."""
    rows = {}
    for r in mutants(records):
        row = rows.setdefault(r.operator, [r.operator, ", ".join(r.causes), 0, 0, 0, 0])
        row[2] += 1
        row[3] += bool(r.hurt)
        row[4] += bool(r.hurt and r.named)
        row[5] += bool(r.hurt and r.named_first)
    return list(rows.values())


def program_rows(records) -> list:
    """[program, runs, errors, warnings, codes reported (with counts)] per healthy program."""
    rows = {}
    for r in healthy(records):
        rows.setdefault(r.program, []).append(r)
    return [[name, len(rs), count(rs, "error"), count(rs, "warning"), codes_seen(rs)]
            for name, rs in rows.items()]


def codes_seen(records) -> str:
    seen = Counter(f"{c} ({s})" for r in records for c, s in zip(r.codes, r.severities))
    return ", ".join(f"{k} x{n}" if n > 1 else k for k, n in seen.items()) or "-"


def misses(records) -> list:
    """Harmful mutants whose cause was not named first, per (operator, program):
    [operator, program, seeds, what diagnose() said first (with counts)]."""
    groups = {}
    for r in mutants(records):
        if r.hurt and not r.named_first:
            groups.setdefault((r.operator, r.program), []).append(r)
    return [[op, program, " ".join(str(r.seed) for r in rs), said_first(rs)]
            for (op, program), rs in groups.items()]


def said_first(records) -> str:
    """What came first instead: a code, '(no finding)', or 'raised <error>'."""
    said = Counter(r.first or (f"raised {r.diagnose_error.split(':')[0]}" if r.diagnose_error
                               else "(no finding)") for r in records)
    return ", ".join(f"{k} x{n}" if n > 1 else k for k, n in said.items())


# ----------------------------------------------------------------- rendering
OPERATOR_HEADER = ["operator", "cause codes", "mutants", "harmful", "cause named", "named first"]
PROGRAM_HEADER = ["healthy program", "runs", "errors", "warnings", "findings"]
MISS_HEADER = ["cause not named first: operator", "program", "seeds", "diagnose() said first"]


def percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "-"


def rendered_operator_rows(records) -> list:
    return [[op, causes, str(tried), str(bad), percent(named, bad), percent(first, bad)]
            for op, causes, tried, bad, named, first in operator_rows(records)]


def summary_lines(t: Totals) -> list:
    return [f"cause named first on {percent(t.named_first, t.harmful)} harmful mutants "
            f"(named at all: {percent(t.named, t.harmful)})",
            f"healthy runs: {t.healthy_runs}, errors {t.healthy_errors}, warnings "
            f"{t.healthy_warnings} ({t.warnings_per_healthy_run:.2f} per run)",
            f"diagnose() raised on {t.crashes} run(s)"]


def text_table(header, rows) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def markdown_table(header, rows) -> str:
    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header))] + [line(r) for r in rows])


def mode_line(records) -> list:
    """["mode: watched"] when some record is not post hoc: the post-hoc printout is unchanged."""
    modes = sorted({r.mode for r in records})
    return [] if modes in ([], [POST_HOC]) else [f"mode: {', '.join(modes)} (diagnose(..., "
                                                 f"run=watch(model, optimizer)))"]


def render(records, markdown: bool = False) -> str:
    """The whole printout: the mode when watched, operators, healthy programs, totals, then
    the misses."""
    table = markdown_table if markdown else text_table
    parts = mode_line(records) + [table(OPERATOR_HEADER, rendered_operator_rows(records)),
             table(PROGRAM_HEADER, program_rows(records)),
             "\n".join(("- " if markdown else "") + s for s in summary_lines(totals(records)))]
    missed = misses(records)
    if missed:
        parts.append(table(MISS_HEADER, missed))
    return "\n\n".join(parts)
