"""diagnostics/codes.py: the per-code view names every code of the registry, each row of it a
known code, and the relations it prints have no cycle."""

import re
import runpy
import sys

import pytest

from diagnostics import CODES
from diagnostics.codes import main, view, view_of
from diagnostics.explain import EXPLAINED, RULED_OUT_BY

RELATIONS = ("explains", "explained by", "ruled out by", "rules out")


def named_in(line: str) -> list:
    """The codes a relation line lists, conditions ([when ...]) left out."""
    listed = re.sub(r"\[[^]]*\]", "", line.split(": ", 1)[1])
    return [c.strip() for c in re.split(r"[,;]", listed) if c.strip() not in ("", "-")]


def test_every_code_has_a_block_in_the_order_of_precedence():
    headings = [block.split(" ", 1)[0] for block in view().split("\n\n")]
    assert headings == list(CODES)


def test_every_row_of_the_view_names_known_codes():
    rows = [line.strip() for line in view().splitlines() if line.strip().startswith(RELATIONS)]
    assert len(rows) == len(RELATIONS) * len(CODES)
    unknown = {c for row in rows for c in named_in(row) if c not in CODES}
    assert unknown == set()


def test_the_view_reads_the_tables_both_ways():
    block = view_of("accumulated-gradient").splitlines()
    assert "  ruled out by: optimizer-mismatch [when of parameters it lacks]" in block
    assert "bad-initialization [when grown or summed]" in next(
        line for line in block if line.startswith("  explains:"))
    assert "  ruled out by: loss-oscillation" in view_of("loss-plateau").splitlines()
    fallback = next(line for line in view_of("learned-nothing").splitlines()
                    if line.startswith("  ruled out by:"))
    assert named_in(fallback) == [c for c in CODES if c not in (
        "loss-plateau", "loss-oscillation", "learned-nothing")]


def has_a_cycle(edges: set) -> bool:
    nodes = {a for a, _ in edges} | {b for _, b in edges}
    later = {n: {b for a, b in edges if a == n} for n in nodes}
    done, on_path = set(), set()
    def visit(n):
        if n in on_path:
            return True
        if n in done:
            return False
        on_path.add(n)
        found = any(visit(m) for m in later[n])
        on_path.discard(n)
        done.add(n)
        return found
    return any(visit(n) for n in nodes)


def test_the_cycle_finder_finds_one():
    assert has_a_cycle({("a", "b"), ("b", "c"), ("c", "a")})
    assert not has_a_cycle({("a", "b"), ("b", "c"), ("a", "c")})


def test_neither_explaining_nor_ruling_out_goes_round_in_a_circle():
    assert not has_a_cycle(set(EXPLAINED))
    assert not has_a_cycle({(by, code) for code, rows in RULED_OUT_BY.items()
                            for row in rows for by in row.by})


@pytest.mark.filterwarnings("ignore:'diagnostics.codes' found in sys.modules:RuntimeWarning")
def test_the_command_prints_the_view_and_refuses_an_unknown_code(capsys, monkeypatch):
    assert main(["dead-relu"]) == 0 and capsys.readouterr().out == view_of("dead-relu") + "\n"
    assert main(["dead-rectifier"]) == 2
    assert "accepted: loss-target-mismatch" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["diagnostics.codes"])    # `python -m diagnostics.codes`,
    with pytest.raises(SystemExit) as done:                    # its __main__ block in-process
        runpy.run_module("diagnostics.codes", run_name="__main__")
    assert done.value.code == 0 and capsys.readouterr().out == view() + "\n"
