"""What a case's figure functions get: the case, its judged runs, where to write, the bar."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cases.report import figures
from cases.report.blocks import Figure


@dataclass
class CaseContext:
    case: object                      # cases.case.Case
    outcomes: list                    # Outcome of every run x backend x seed, in run order
    out: Path                         # the report's folder
    bar: object = None                # cases.progress.Progress, or None
    written: list = field(default_factory=list)   # files written, relative to out
    swept: dict = field(default_factory=dict)     # casefigs.sweep_key -> results() of a sweep
                                                  # trained early (runs.run_cases)

    @property
    def backend(self) -> str:
        return self.outcomes[0].backend

    @property
    def seed(self) -> int:
        return self.outcomes[0].seed

    def shown(self, backend: str | None = None) -> list:
        """One outcome per run (failing, then each fix) at the first seed: what figures show."""
        backend = backend or self.backend
        return [o for o in self.outcomes if o.backend == backend and o.seed == self.seed]

    def outcome(self, run_name: str = "failing"):
        return next(o for o in self.shown() if o.run_name == run_name)

    def figure(self, fig, name: str, caption: str) -> Figure:
        """Save ``fig`` as ``<case id>-<name>.png`` and return its report block."""
        file = f"{self.case.id}-{name}.png"
        figures.save(fig, self.out / file)
        self.written.append(file)
        return Figure(file, caption, width=round(fig.get_figwidth() * figures.DPI))

    def note(self, what: str) -> None:
        if self.bar:
            self.bar.show(f"{self.case.id}: {what}")
