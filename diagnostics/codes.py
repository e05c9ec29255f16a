"""Every code, as its record and the explanation's tables see it: what it needs, the evidence the
runner adds, the rewrites of its fix, what it explains, what explains it, what rules it out and
what it rules out.

    python -m diagnostics.codes                  every code, in the order of precedence
    python -m diagnostics.codes dead-relu ...    only these
"""

from __future__ import annotations

import sys

from diagnostics.explain import EXPLAINED, PRECEDENCE, RULED_OUT_BY
from diagnostics.registry import CHECKS

UNCONDITIONAL = ("always", "by_any", "never")   # conditions that hold (or fail) for every finding
BY_CODE = {check.code: check for check in CHECKS}


def condition(name: str, word: str) -> str:
    """' [when grown in training]' for a condition function's name; nothing for one that always
    holds."""
    return "" if name in UNCONDITIONAL else f" [{word} {name.replace('_', ' ')}]"


def explains(code: str) -> list:
    return [s + condition(w.__name__, "when") for (c, s), w in EXPLAINED.items() if c == code]


def explained_by(code: str) -> list:
    return [c + condition(w.__name__, "when") for (c, s), w in EXPLAINED.items() if s == code]


def ruled_out_by(code: str) -> list:
    return [", ".join(row.by) + condition(row.when.__name__, "when")
            + condition(row.unless.__name__, "unless") for row in RULED_OUT_BY.get(code, ())]


def rules_out(code: str) -> list:
    return [c for c, rows in RULED_OUT_BY.items() if any(code in row.by for row in rows)]


def view_of(code: str) -> str:
    check = BY_CODE[code]
    lines = [f"{code} ({PRECEDENCE.index(code) + 1} of {len(PRECEDENCE)} in the precedence; "
             f"{check.measure.__module__}.{check.measure.__name__})",
             "  needs: " + ("; ".join(n.said for n in check.needs) or "-"),
             "  evidence added: " + ("; ".join(e.said for e in check.evidence) or "-"),
             "  fix rewritten: " + ("; ".join(r.said for r in check.rewrites) or "-"),
             "  explains: " + (", ".join(explains(code)) or "-"),
             "  explained by: " + (", ".join(explained_by(code)) or "-"),
             "  ruled out by: " + ("; ".join(ruled_out_by(code)) or "-"),
             "  rules out: " + (", ".join(rules_out(code)) or "-")]
    return "\n".join(lines)


def view(codes=PRECEDENCE) -> str:
    return "\n\n".join(view_of(code) for code in codes)


def main(argv: list) -> int:
    unknown = [c for c in argv if c not in BY_CODE]
    if unknown:
        print(f"unknown code(s) {', '.join(unknown)}; accepted: {', '.join(PRECEDENCE)}",
              file=sys.stderr)
        return 2
    print(view(argv or PRECEDENCE))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
