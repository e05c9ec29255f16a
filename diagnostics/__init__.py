"""Name what is wrong with an MLP's training run, with the numbers and the fix.

>>> from diagnostics import diagnose
>>> report = diagnose(model, X, y, loss="cross_entropy", history=losses, lr=0.01)  # doctest: +SKIP
>>> print(report)                                                                  # doctest: +SKIP

Watched (diagnostics.watch): ``run = watch(model, optimizer)``, ``run.log(loss)`` after each
``optimizer.step()``, ``run.close()``, then ``diagnose(model, X, y, loss=..., run=run)``.
"""

from diagnostics.diagnose import diagnose, sharpness
from diagnostics.pytest_helpers import assert_diagnosed, assert_healthy
from diagnostics.registry import CHECKS, CODES
from diagnostics.report import Finding, Report
from diagnostics.watch import Run, TrainingFailed, watch

__all__ = ["diagnose", "sharpness", "assert_healthy", "assert_diagnosed", "Report", "Finding",
           "CHECKS", "CODES", "watch", "Run", "TrainingFailed"]
