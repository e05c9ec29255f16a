"""The last word: a run that learned nothing although no check found a cause in the model. Then
the cause is in the data or the loop, and a report that said "nothing looks wrong" would mislead.
It is a diagnosis of exclusion: explain.RULED_OUT_BY drops it when any cause is found."""

from __future__ import annotations

from diagnostics.checks.capacity import structure
from diagnostics.checks.evidence import (LEARNED_NOTHING, failing_evidence, finite_history,
                                         history_improving)
from diagnostics.probe import Probe
from diagnostics.report import Finding

DATA_FIX = ("Look at the data: X and y must be shuffled together (a label permutation teaches "
            "nothing), y must depend on X, and be the target the loss expects. Then train on 10 "
            "rows: a model that cannot drive their loss to ~0 has a bug in its loop; one that can "
            "fit them but not the whole set finds no signal in it.")
PLATEAU_FIX = ("Train longer, or cross the plateau faster: a larger learning rate, momentum or "
               "Adam, another seed.")


def check_learned_nothing(probe: Probe) -> Finding | None:
    """A trained run at a constant predictor's loss with no cause found: still creeping down
    (a plateau), or stopped (look at the data and the loop)."""
    h = finite_history(probe)
    if h is None or not probe.finite or probe.loss_ratio < LEARNED_NOTHING:
        return None
    first, last = h[:max(1, len(h) // 20)].mean(), h[-max(1, len(h) // 20):].mean()
    creeping = history_improving(probe) is True
    return Finding(
        "learned-nothing", "warning",
        f"The trained model does no better on the X given than a constant prediction, and no "
        f"check found a cause in the model, its gradients or its learning rate. Found loss "
        f"{probe.loss:.4g} against a constant predictor's {probe.baseline_loss:.4g} "
        f"({probe.loss_ratio:.0%}) after {len(h)} steps, whose history went from {first:.4g} to "
        f"{last:.4g}" + (", still falling: the run sits on a plateau it has not left yet."
                         if creeping else "."),
        failing_evidence(probe),
        PLATEAU_FIX + narrow_note(probe) if creeping else DATA_FIX)


def narrow_note(probe: Probe) -> str:
    why = structure(probe)
    return f" With {why}, plateaus like this one last long: widen it." if why else ""
