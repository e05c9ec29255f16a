"""A one-line progress bar on stderr for the casebook's long loops (cases x seeds x runs).

The bar draws only when the stream is a terminal. Where it cannot (a pipe, a CI
log, ``| tee``), each finished case gets one plain line instead, so a long run
never sits silent: ``report: spiral-capacity done, 6 runs in 12.3 s (12 s so far)``.

>>> with Progress(3, "runs") as bar:
...     for name in ("a", "b", "c"):
...         bar.show(name)      # what runs now
...         bar.advance()       # one more done
...     bar.finished("abc", 3)  # a case done: one line, off a terminal only
"""

from __future__ import annotations

import sys
import time

BAR_WIDTH = 24           # characters of the bar itself: fits an 80-column terminal with the label
REDRAW_EVERY_S = 0.1     # at most ten redraws a second: drawing must not cost more than the work


class Progress:
    """``[#####.....] 12/40 spiral-capacity numpy failing seed 0  3.2 s``, redrawn in place."""

    def __init__(self, total: int, label: str = "", stream=None):
        self.total, self.label, self.done, self.what = max(int(total), 1), label, 0, ""
        self.stream = sys.stderr if stream is None else stream
        self.shown = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = self.last_draw = self.last_finished = time.perf_counter()

    def __enter__(self) -> "Progress":
        self.draw()
        return self

    def __exit__(self, *exc) -> None:
        if self.shown:
            self.stream.write("\r\033[K")   # erase the bar: what follows starts on a clean line
            self.stream.flush()

    def show(self, what: str) -> None:
        """Name the item that runs now (drawn at once: it may take seconds)."""
        self.what = what
        self.draw()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        self.done = min(self.done + n, self.total)
        if time.perf_counter() - self.last_draw >= REDRAW_EVERY_S or self.done == self.total:
            self.draw()

    def finished(self, what: str, runs: int) -> None:
        """A case is done: off a terminal, one line with its runs and seconds (the bar stands in
        for it on a terminal)."""
        now = time.perf_counter()
        took, self.last_finished = now - self.last_finished, now
        if self.shown:
            return
        self.stream.write(f"{self.label}: {what} done, {runs} runs in {took:.1f} s "
                          f"({now - self.start:.0f} s so far)\n")
        self.stream.flush()

    def draw(self) -> None:
        if not self.shown:
            return
        self.last_draw = time.perf_counter()
        filled = BAR_WIDTH * self.done // self.total
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        line = (f"{self.label} [{bar}] {self.done}/{self.total} {self.what}"
                f"  {self.last_draw - self.start:.1f} s")
        self.stream.write("\r\033[K" + line[:120])
        self.stream.flush()
