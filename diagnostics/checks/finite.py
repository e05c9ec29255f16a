"""NaN and Inf anywhere the run left a number."""

from __future__ import annotations

import numpy as np

from diagnostics.checks.record import Check, Explains
from diagnostics.probe import Probe
from diagnostics.report import Finding


def nonfinite_count(a) -> int:
    return 0 if a is None else int(np.size(a) - np.isfinite(a).sum())


def check_non_finite(probe: Probe) -> Finding | None:
    bad_params = {n: nonfinite_count(p) for n, p in probe.params.items() if nonfinite_count(p)}
    bad_grads = {n: nonfinite_count(g) for n, g in probe.grads.items() if nonfinite_count(g)}
    counts = {"outputs": nonfinite_count(probe.out), "loss": nonfinite_count(probe.loss),
              "parameters": sum(bad_params.values()), "gradients": sum(bad_grads.values()),
              "history": nonfinite_count(probe.history)}
    if not any(counts.values()):
        return None
    where = ", ".join(f"{v} in {k}" for k, v in counts.items() if v)
    evidence = dict(counts, first_parameter=next(iter(bad_params), None),
                    first_gradient=next(iter(bad_grads), None))
    if counts["history"]:
        evidence["first_bad_step"] = int(np.flatnonzero(~np.isfinite(probe.history))[0])
        where += (f" (the history ran {evidence['first_bad_step']} finite steps, then went "
                  "non-finite)")
    return Finding(
        "non-finite", "error",
        f"Training produced NaN or Inf values, so it diverged. Found {where}.", evidence,
        "Lower the learning rate (or clip: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) "
        "between backward() and step()), and check the inputs and the loss for "
        "overflow (log of 0, exp of large values).",
        layer_of(probe, evidence["first_parameter"]))


def layer_of(probe: Probe, parameter: str | None) -> str | None:
    """The layer, named as the user wrote it, that holds this parameter."""
    if parameter is None:
        return None
    path = parameter.rpartition(".")[0]
    return next((la.name for la in probe.layers if la.path == path), parameter)


NON_FINITE_CHECK = Check("non-finite", check_non_finite,
                         explains=(Explains(("loss-oscillation", "loss-plateau")),))
