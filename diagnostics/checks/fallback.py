"""The last word: a run that learned nothing although no check found a cause in the model. Then
the cause is in the data or the loop, and a report that said "nothing looks wrong" would mislead.
It is a diagnosis of exclusion: its record is ruled out by every finding that names a cause."""

from __future__ import annotations

from diagnostics.checks.capacity import structure
from diagnostics.checks.evidence import (LEARNED_NOTHING, against_reference, finite_history,
                                         history_improving, learned_little)
from diagnostics.checks.record import (FAILING_RUN, FINITE, HISTORY, Check, EveryCodeBut,
                                       Explains, RuledOut)
from diagnostics.probe import Probe
from diagnostics.report import Finding

DATA_FIX = ("Look at the data: X and y must be shuffled together (a label permutation teaches "
            "nothing), y must depend on X, and be the target the loss expects. Then train on 10 "
            "rows: a model that cannot drive their loss to ~0 has a bug in its loop; one that can "
            "fit them but not the whole set finds no signal in it.")
PLATEAU_FIX = ("Train longer, or cross the plateau faster: a larger learning rate, momentum or "
               "Adam, another seed.")
MEMORISED_FIX = ("The loop's own losses are far below the loss on these rows: the model fits the "
                 "rows it trained on, not these, and more steps only fit those closer. Check that "
                 "X is prepared as in the loop, and use more data, weight decay, dropout or a "
                 "smaller model.")
MEMORISED = 0.2         # the history's recent level under 1/5 of the loss on X: the loop's batches
                        # are fitted, these rows are not. Healthy loops' loss on their own rows
                        # measured 0.4-1.6x the history's level, 5.0 on heavy-tailed targets
                        # (see history.GAP): 1/5 is past all of them


def check_learned_nothing(probe: Probe) -> Finding | None:
    """A trained run at a constant predictor's loss, or far behind a simple fit of the same rows,
    with no cause found: still creeping down (a plateau), fitting other rows than these
    (memorised), or stopped (look at the data and the loop)."""
    h = finite_history(probe)
    if not learned_little(probe):
        return None
    tail = h[-max(1, len(h) // 20):].mean()
    memorised = tail < MEMORISED * probe.loss
    creeping = history_improving(probe) is True and not memorised
    return Finding(
        "learned-nothing", "warning",
        f"The trained model does {'no' if probe.loss_ratio >= LEARNED_NOTHING else 'little'} better on the X "
        f"given than a constant prediction, and no check found a cause in the model, its "
        f"gradients or its learning rate. Found loss {probe.loss:.4g} against a constant "
        f"predictor's {probe.baseline_loss:.4g} ({probe.loss_ratio:.0%}){against_reference(probe)}"
        f", after {len(h)} steps whose history went from {h[:max(1, len(h) // 20)].mean():.4g} "
        f"to {tail:.4g}" + (", still falling: the run sits on a plateau it has not left yet."
                            if creeping else "."),
        dict(history_level=float(tail), memorised=memorised),
        MEMORISED_FIX if memorised else PLATEAU_FIX + narrow_note(probe) if creeping
        else DATA_FIX)


def narrow_note(probe: Probe) -> str:
    why = structure(probe)
    return f" With {why}, plateaus like this one last long: widen it." if why else ""


# the last word: a run that learned nothing although nothing in the model explains it (the
# symptoms it describes itself, a plateau and swings, do not rule it out)
LEARNED_NOTHING_CHECK = Check(
    "learned-nothing", check_learned_nothing, needs=(HISTORY, FINITE), evidence=(FAILING_RUN,),
    explains=(Explains(("loss-plateau",)),),
    ruled_out_by=(RuledOut(EveryCodeBut(("loss-plateau", "loss-oscillation"))),))
