"""Seed 002: a hand-written numpy backprop net whose loss trace draws a bifurcation diagram.

Source: seeds/002_b6b73181da918b0a.txt. A numpy net [1, 4, 2, 2, 1] (LeakyReLU(0.1), then
sigmoids; every weight and bias in [0, 1)) fits sin(2 pi x)/4 + 0.5 on 41 points 0.05 apart,
full batch, lr 0.3 x 0.999 every 100 steps. It learns nothing, and its loss drawn as dots is a
period-doubling diagram run backwards; with points 0.1 apart it never appears.

Mechanism: the loss is sum/n but its gradient ``2 * (f - y)`` is not divided by n, so the step
is n x lr on the mean loss; halving the sampling step doubles it and puts lr 0.3 above the
stability edge 2/lambda_max (0.18 at 41 points, 0.35 at 21). The post's loop also steps each
layer before sending the gradient down through the updated weights (``layerwise_update``): the
chaos needs that slip too.

Fixes: ``mean-gradient`` (divide by n, lr 4 on the mean loss), ``lr-below-edge`` (lr 0.1),
``step-0.1`` (the author's coarser grid). The metric counts distinct loss values per 64-step
window. Measurements, the 40000-step cascade and the diagnosis: docs/cases.md, ``bifurcation``.
"""

from __future__ import annotations

import numpy as np

from cases import sources
from cases.case import Case, Sweep, Threshold
from cases.config import RunConfig, RunResult

WINDOW = 64            # steps per window: a cycle of period up to 64 shows as that many values
WINDOWS = 8            # windows in the measured tail (512 steps): a median ignores one burst
SAME_LOSS = 1e-3       # |log L1 - log L2| below this is one value: a smooth drift stays one
CHAOTIC = 16           # more distinct values than a period-16 cycle: measured 57-61.5 failing
SETTLED = 4            # at most a period-4 cycle: measured 1 on every fix
MEAN_LR = 4.0          # below the mean loss's edge 2/lambda_max (5.4-8 measured): ~0.1 per sample
STEPS = 1500           # the post's 40000, cut while its lr (0.3 -> 0.296) is still in the chaos
SWEEP_LRS = tuple(float(lr) for lr in np.linspace(0.02, 0.6, 59))  # around lr 0.3: both sides
                                                                   # of the edge
SWEEP_STEPS = 3000     # constant-lr steps per sweep point: long enough to reach the attractor

FAILING = RunConfig(
    data="sin_grid", data_kwargs={"step": 0.05, "target": "sin"},
    sizes=(1, 4, 2, 2, 1), activation=("leaky_relu", "sigmoid", "sigmoid"), leaky_slope=0.1,
    out_activation="sigmoid", loss="mse", init="uniform01",
    optimizer="sgd", lr=0.3, lr_decay=0.999, lr_decay_every=100, steps=STEPS,
    mean_gradient=False,            # dmse = 2 * (f - y): the summed loss's gradient
    layerwise_update=True,          # ConnectLayer.backward steps w, then returns w.T @ upstream
)


def distinct_in_window(losses: np.ndarray) -> int:
    """How many different values the loss takes in a window, up to SAME_LOSS in log."""
    logs = np.sort(np.log(losses))
    return 1 + int(np.sum(np.diff(logs) > SAME_LOSS))


def distinct_losses(result: RunResult) -> float:
    """Median over the last WINDOWS windows of the distinct losses per window (1: settled)."""
    tail = result.history[-WINDOW * WINDOWS:]
    if len(tail) < WINDOW * WINDOWS or not np.all(np.isfinite(tail)) or np.any(tail <= 0):
        return float("nan")          # a diverged or too short run draws no diagram
    return float(np.median([distinct_in_window(w) for w in tail.reshape(WINDOWS, WINDOW)]))


CASE = Case(
    id="bifurcation",
    source=sources.SEED_002,
    title="Loss trace draws a bifurcation diagram (summed gradient, 41 points)",
    story="A hand-written numpy net steps by the gradient of the summed loss, so its "
          "effective lr is n times the lr and lies above 2/lambda_max at 41 points but not "
          "at 21: the loss never settles and, as the lr decays, traces a period-doubling "
          "diagram. Averaging the gradient, an lr below the edge, or the coarser grid each "
          "make it settle.",
    failing=FAILING,
    fixes={
        # dividing by n makes lr a step on the MEAN loss, whose edge is 2/lambda ~ 5.4-8 on
        # either grid; at the post's 0.3 it also settles but learns nothing in 1500 steps
        "mean-gradient": FAILING.replace(mean_gradient=True, lr=MEAN_LR),
        "lr-below-edge": FAILING.replace(lr=0.1),
        "step-0.1": FAILING.replace(data_kwargs={"step": 0.1, "target": "sin"}),
    },
    failed_when=Threshold("distinct_losses", ">", CHAOTIC),
    fixed_when=Threshold("distinct_losses", "<=", SETTLED),
    expected_codes=frozenset({"loss-oscillation"}),
    metric=distinct_losses,
    # torch has no fused step for the layer-by-layer update (autograd once per layer, ~3x its
    # usual step): its fixes run with --runslow, its failing run in the default suite
    slow_runs=frozenset((fix, "torch") for fix in ("mean-gradient", "lr-below-edge", "step-0.1")),
    chaotic_runs=frozenset({"failing"}),   # one ulp grows to O(1) in ~60 steps: see cases.trace
    sweeps={"lr": Sweep(tuple((lr, {"lr": lr, "lr_decay": 1.0, "lr_decay_every": 0,
                                    "steps": SWEEP_STEPS}) for lr in SWEEP_LRS))},
    figures=("loss-trace-scatter", "lr-sweep-bifurcation"),
)
