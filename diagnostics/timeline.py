"""A watched run as plain numpy arrays: what diagnostics.watch recorded, and all a timeline check
may look at (the checks never see torch objects, so they stay small pure functions).

Every logged step (``run.log(loss)``) keeps its loss, the lr of each parameter group, whether
``optimizer.step()`` ran, whether the ``.grad`` it used had been reset since the step before, and
whether there was any ``.grad`` at all.
Sampled steps (the first ones densely, then every N) keep per-parameter gradient and weight norms,
the update ratio |dw| / |w|, per activation module the share of dead and saturated units, and
the model's input batch, whose mean beside the other sampled batches' tells whether the batches
were random draws of the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UPDATE_HUGE = 1.0       # |dw| / |w| in one step: the step as large as the weights themselves.
                        # Healthy runs measured 1e-4-0.1 (SGD) and up to 0.3 (Adam's first, sign-
                        # like steps on small weights at lr 1e-2); Adam at lr 0.5 2-30
RESET, ACCUMULATED, UNKNOWN, GRADLESS = 1, 0, -1, -2   # reset[t]: .grad fresh / summed onto the
                        # last step's / not known / no parameter held a .grad when step() ran


@dataclass(frozen=True)
class Timeline:
    steps: np.ndarray               # (n,) logged step of each kept entry (a long run is thinned)
    loss: np.ndarray                # (n,) the loss logged at that step
    lr: np.ndarray                  # (n, groups) lr each group stepped with (nan: no step)
    stepped: np.ndarray             # (n,) bool: optimizer.step() ran since the previous log
    reset: np.ndarray               # (n,) int8: RESET, ACCUMULATED, UNKNOWN or GRADLESS
    n_logged: int = 0               # steps logged in all (exact, whatever was thinned)
    n_stepped: int = 0              # of them, steps at which optimizer.step() ran
    n_accumulated: int = 0          # steps whose .grad summed onto the previous step's
    n_reset: int = 0                # steps whose .grad was fresh
    first_accumulated: int | None = None
    n_gradless: int = 0             # steps at which step() ran with no parameter holding a .grad
    first_gradless: int | None = None
    sample_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    grad_norm: dict = field(default_factory=dict)      # parameter -> (m,) at each sampled step
    weight_norm: dict = field(default_factory=dict)    # parameter -> (m,) before the step
    update_ratio: dict = field(default_factory=dict)   # parameter -> (m,) |dw| / |w|
    dead: dict = field(default_factory=dict)           # activation module -> (m,) share dead
    saturated: dict = field(default_factory=dict)      # activation module -> (m,) share saturated
    batch_mean_scatter: float | None = None  # sampled batches: rows x squared distance of each
                                    # batch's mean input from theirs, per batch (BatchMeans)
    batches_measured: int = 0       # the sampled batches it was read from
    batch_rows: float | None = None # their mean rows: what a loss summed over its batch multiplies
    harmonic_batch_rows: float | None = None    # their harmonic mean: what batch noise scales by
    first_nonfinite_step: int | None = None
    first_nonfinite_tensor: str | None = None
    constant_loss: float | None = None  # a constant predictor's loss on X: diagnose() fills it in
    untrained_loss: float | None = None # ...and a fresh zero-mean model's (Probe.untrained_loss)
    failing: bool | None = None         # the run failed, as diagnose() judges the model at its end
    final_loss: float | None = None     # the mean loss of the model at its end on X (diagnose())
    init_scale: dict = field(default_factory=dict)  # weight -> the norm torch's default init gives
                                        # it (diagnose() fills it in from the model's shapes)

    @property
    def finite_loss(self) -> np.ndarray:
        return self.loss[np.isfinite(self.loss)]

    def before(self, step: int) -> np.ndarray:
        """Mask of the sampled steps before ``step``."""
        return self.sample_steps < step


def loss_rose(tl: Timeline, factor: float) -> int | None:
    """The first logged step whose loss is non-finite or ``factor`` x the first one, or None."""
    if len(tl.loss) == 0:
        return None
    bad = ~np.isfinite(tl.loss) | (tl.loss > factor * abs(tl.loss[0]))
    hit = np.flatnonzero(bad)
    return int(tl.steps[hit[0]]) if len(hit) else None
