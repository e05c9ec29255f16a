"""The forward pass itself: a model whose outputs change between two identical calls in eval
mode. Every evaluation of it is a random draw: its held-out score, its predictions, and every
measurement diagnose() takes of it (F.dropout(x, p) without training=self.training, a torch.rand
or randn_like in forward, noise added to the inputs inside the model)."""

from __future__ import annotations

from diagnostics.checks.record import BLOWUP, FINITE, STUCK, UNITS, Check, Explains
from diagnostics.probe import Probe
from diagnostics.report import Finding

REPEATABLE = 1e-3   # RMS change between two eval-mode calls on the same rows, over the outputs'
                    # RMS spread about their mean. The same forward on the same rows repeats to the
                    # bit on a CPU (the outside probe's 10 healthy programs x 3 seeds: 0, dropout
                    # and batch norm included: eval mode freezes them); a GPU's reductions may
                    # differ in the last bits, ~1e-7 in float32. F.dropout(h, 0.5) in forward
                    # measured 0.33-0.97 (10 programs x 3 seeds)


def check_random_forward(probe: Probe) -> Finding | None:
    """The model's eval-mode outputs on X differ from one call to the next."""
    change = probe.repeat_change
    if change is None or change < REPEATABLE:
        return None
    return Finding(
        "random-forward", "error",
        f"The model's outputs change between two identical calls in eval mode, so every "
        f"prediction and evaluation of it (held-out accuracy, this report's measurements) is a "
        f"random draw. Found outputs on the same {len(probe.X)} rows differing by "
        f"{change:.3g} of their spread (RMS) from one call of model.eval()(X) to the next: a "
        f"random operation in forward that model.eval() does not switch off.",
        {"repeat_change": change},
        "Make forward deterministic in eval mode: use nn.Dropout modules, or "
        "F.dropout(x, p, training=self.training) (F.dropout's training defaults to True); "
        "add input noise or other randomness only when self.training is True. For Monte Carlo "
        "dropout on purpose, average many calls.")


# a random forward makes the loss on X a draw from its noise: the units, the gap to the history
# and the curvature measured on it follow from it (learned-nothing is ruled out by any cause)
RANDOM_FORWARD_CHECK = Check(
    "random-forward", check_random_forward, needs=(FINITE,),
    explains=(Explains(STUCK + UNITS + BLOWUP + ("generalization-gap", "low-capacity",
                                                 "learning-rate-too-small",
                                                 "single-class-output")),))
