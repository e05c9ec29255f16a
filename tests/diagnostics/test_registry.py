"""diagnostics/registry.py: every code of the registry has a positive test among the check tests."""

import ast
from pathlib import Path

from diagnostics import CODES

ASSERTING_CALLS = {"finding", "assert_diagnosed"}   # each fails when its code is not reported


def codes_asserted(path: Path) -> set:
    """The code strings passed to finding(report, code) or assert_diagnosed(..., code)."""
    calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id in ASSERTING_CALLS]
    return {a.value for call in calls for a in call.args
            if isinstance(a, ast.Constant) and a.value in CODES}


def test_every_code_has_a_positive_in_the_check_tests():
    here = Path(__file__).parent
    asserted = set().union(*(codes_asserted(p) for p in here.glob("test_check_*.py")))
    assert sorted(set(CODES) - asserted) == []
