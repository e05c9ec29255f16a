"""syrupy's amber snapshots, with numbers compared by a relative tolerance.

The snapshot file is syrupy's own ``.ambr`` text; only two things change:
``matches`` reads both texts as text and floats, wants the text identical and
each pair of floats within ``REL_TOL`` (ints, and everything inside a quoted
string such as the config line, are text: they must not move at all; only a
sparkline's heights may move, by one); ``diff_lines`` shows the numbers that
stayed inside the tolerance as the snapshot has them, so a failing test's diff
lists only what really changed, under a header naming the worst number.

>>> ext = TolerantAmberExtension()
>>> old = ext.serialize({"loss": [0.5, 0.25]})
>>> ext.matches(serialized_data=old.replace("0.25", "0.2501"), snapshot_data=old)
True
>>> ext.matches(serialized_data=old.replace("0.25", "0.26"), snapshot_data=old)
False
"""

from __future__ import annotations

import difflib
import math
import re

from syrupy.extensions.amber import AmberSnapshotExtension

# Losses are snapshotted to 4 significant digits, so float noise of ~1e-12 can still flip the
# 4th digit when a value sits on a rounding edge: up to 1e-3 relative (1.000 vs 1.001). 5e-3 clears
# that with a margin, and a real change to a loop, an init or a loss moves some of the 32 losses
# of a trace by far more than half a percent.
REL_TOL = 5e-3
# Below this, two numbers are the same zero (a loss that reached zero, an accuracy of 0.0).
ABS_TOL = 1e-12
# A sparkline has eight heights; a value on the edge of two may be drawn one step higher or lower.
LEVEL_TOL = 1
LEVELS = "▁▂▃▄▅▆▇█"

# What may move: a float outside quotes (ints, and numbers inside strings such as the config line,
# are text and must not move), and the heights of a sparkline inside its string.
FLOAT = r"(?<![\w.])-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|nan|inf)(?![\w.])"
QUOTED = r"'(?:[^'\\]|\\.)*'"
TOKEN = re.compile(f"(?P<quoted>{QUOTED})|(?P<float>{FLOAT})")
HEIGHT = re.compile(f"([{LEVELS}])")


def split_numbers(text: str) -> tuple[list[str], list[str]]:
    """(the text between tolerant tokens, the tokens): "'a': 0.5," -> (["'a': ", ","], ["0.5"])."""
    out, pos = [""], 0
    for m in TOKEN.finditer(text):
        parts = HEIGHT.split(m["quoted"]) if m["quoted"] else ["", m["float"], ""]
        out[-1] += text[pos:m.start()] + parts[0]
        out += parts[1:]
        pos = m.end()
    out[-1] += text[pos:]
    return out[0::2], out[1::2]


def masked(line: str) -> str:
    """The line with its tolerant tokens replaced by #: lines that differ only in numbers look alike."""
    return "#".join(split_numbers(line)[0])


def close(snapshot_token: str, received_token: str) -> bool:
    """Two numbers within REL_TOL (NaN only matches NaN), or two sparkline heights within LEVEL_TOL."""
    a, b = snapshot_token, received_token
    if a in LEVELS or b in LEVELS:
        return a in LEVELS and b in LEVELS and abs(LEVELS.index(a) - LEVELS.index(b)) <= LEVEL_TOL
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def texts_match(received: str, snapshot: str) -> bool:
    """Same text between the numbers, and every pair of numbers close."""
    text_r, nums_r = split_numbers(received)
    text_s, nums_s = split_numbers(snapshot)
    return text_r == text_s and all(map(close, nums_s, nums_r))


def relative_change(snapshot_token: str, received_token: str) -> float:
    if snapshot_token in LEVELS or received_token in LEVELS:
        return math.inf
    x, y = float(snapshot_token), float(received_token)
    return abs(y - x) / max(abs(x), abs(y), ABS_TOL) if math.isfinite(x - y) else math.inf


def snap_line(received: str, snapshot: str, changes: list) -> str:
    """``received`` with its numbers that are close to ``snapshot``'s written as the snapshot has them.

    Lines whose text differs are returned as received. The numbers beyond the
    tolerance are appended to ``changes`` as (relative change, old, new).
    """
    text_r, nums_r = split_numbers(received)
    text_s, nums_s = split_numbers(snapshot)
    if text_r != text_s:
        return received
    kept = [s if close(s, r) else r for s, r in zip(nums_s, nums_r)]
    changes += [(relative_change(s, r), s, r) for s, r in zip(nums_s, nums_r) if not close(s, r)]
    return "".join(t + n for t, n in zip(text_r, kept + [""]))


def snap_to_snapshot(received: str, snapshot: str) -> tuple[str, list]:
    """``received`` with every within-tolerance number replaced by the snapshot's, and the rest listed."""
    new, old = received.splitlines(keepends=True), snapshot.splitlines(keepends=True)
    mask = [masked(line) for line in new], [masked(line) for line in old]
    out, changes = list(new), []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, *mask, autojunk=False).get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2)):
                out[i] = snap_line(new[i], old[j], changes)
    return "".join(out), changes


def describe_changes(changes: list) -> str:
    """``3 numbers moved by more than REL_TOL=0.005; the most: 0.0695 -> 0.0712 (+2.4%)``."""
    worst, old, new = max(changes, key=lambda c: c[0])
    size = f"{worst:.1%}" if math.isfinite(worst) else "not comparable"
    return (f"{len(changes)} number(s) moved by more than REL_TOL={REL_TOL:g} (relative) or "
            f"{LEVEL_TOL} sparkline height; the most: {old} -> {new} ({size})")


class TolerantAmberExtension(AmberSnapshotExtension):
    """Amber snapshots whose numbers may move by ``REL_TOL`` (relative) and sparklines by one height."""

    def matches(self, *, serialized_data, snapshot_data) -> bool:
        return texts_match(str(serialized_data), str(snapshot_data))

    def diff_lines(self, serialized_data, snapshot_data):
        received, changes = snap_to_snapshot(str(serialized_data), str(snapshot_data))
        if changes:
            yield describe_changes(changes)
        yield from super().diff_lines(received, snapshot_data)
