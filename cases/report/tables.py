"""Rows of the casebook's tables, and plain-text rendering for the terminal."""

from __future__ import annotations

OUTCOME_HEADER = ("case", "backend", "run", "seed", "metric", "value", "threshold",
                  "as documented", "findings")


def documented_note(o) -> str:
    """``yes``, or ``no`` with what went the other way."""
    if o.as_documented:
        return "yes"
    why = [] if o.metric_ok else ["metric"]
    if o.diagnose_error:
        why.append("diagnose() raised")
    if o.missing:
        why.append("missed " + ", ".join(sorted(o.missing)))
    if o.unwanted:
        why.append("errors " + ", ".join(sorted(o.unwanted)))
    return f"no ({'; '.join(why)})"


def outcome_row(o) -> tuple:
    t = o.threshold
    findings = o.diagnose_error or (", ".join(o.codes) if o.codes else "none")
    return (o.case.id, o.backend, o.run_name, str(o.seed), t.metric, f"{o.value:.4g}",
            f"{t.op} {t.value:g}", documented_note(o), findings)


def outcome_rows(outcomes) -> list:
    return [outcome_row(o) for o in outcomes]


CASE_HEADER = ("case", "source", "backends", "seeds", "runs", "title")


def case_rows(cases) -> list:
    return [(c.id, c.source.short(), "/".join(c.backends), " ".join(map(str, c.seeds)),
             ", ".join(c.runs), c.title) for c in cases]


def text_table(header, rows) -> str:
    """Columns padded to their widest cell, a rule under the header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line("-" * w for w in widths), *map(line, rows)])


def cited_sources(cases) -> list:
    """The cases' source documents, each once, in the order the cases cite them."""
    return list({c.source.seed: c.source for c in cases}.values())


def case_list(cases) -> str:
    """The cases' table, then the full citation of every source document it names."""
    rows = case_rows(cases)
    if not rows:
        return "no cases are registered"
    citations = [f"seed {s.seed}: {s.citation()}" for s in cited_sources(cases)]
    return "\n".join([text_table(CASE_HEADER, rows), "", "sources:", *citations])


def outcome_table(outcomes) -> str:
    return text_table(OUTCOME_HEADER, outcome_rows(outcomes))
