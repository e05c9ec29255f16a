"""Per-layer health of a trained model, for the report's figure: gradient norms, dead and
saturated units, from one forward/backward pass over the training set.

Torch models built by the torch backend are copied to the numpy MLP first, so
both backends are measured by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cases.backends import numpy_mlp
from cases.case import training_targets

# A unit is dead when its activation's slope is zero on every training input: it can never
# learn again (ReLU with z <= 0 everywhere). GELU's slope is ~0 below this:
GELU_DEAD_Z = -3.0
# A sigmoid/tanh unit is saturated when its slope is under 1% of the activation's largest
# slope on at least 90% of the inputs: the gradient through it is cut a hundredfold.
SATURATED_SLOPE = 0.01
SATURATED_SHARE = 0.9
SQUASHING = {"sigmoid": 0.25, "tanh": 1.0}       # largest slope of each
RECTIFIERS = ("relu", "gelu")                     # leaky_relu and elu always pass a gradient


@dataclass
class LayerHealth:
    name: str               # "layer 1 (relu)"
    grad_norm: float        # Frobenius norm of dL/dW (mean loss over the training set)
    weight_norm: float
    dead_share: float       # share of its units dead (rectifiers) or saturated (squashing), or nan
    kind: str               # "dead", "saturated" or "" (the share does not apply)


def as_numpy_mlp(result):
    model = result.model
    if isinstance(model, numpy_mlp.MLP):
        return model
    from cases.backends.torch_train import to_numpy
    cfg = result.config
    return to_numpy(model, cfg.activations, cfg.leaky_slope)


def stuck_share(act: str, z: np.ndarray, h: np.ndarray) -> tuple:
    """(share, kind): the share of a layer's units that pass no gradient."""
    if act in RECTIFIERS:
        cut = 0.0 if act == "relu" else GELU_DEAD_Z
        return float(np.mean(np.all(z <= cut, axis=0))), "dead"
    if act in SQUASHING:
        slope = h * (1 - h) if act == "sigmoid" else 1 - h * h
        flat = slope < SATURATED_SLOPE * SQUASHING[act]
        return float(np.mean(flat.mean(axis=0) >= SATURATED_SHARE)), "saturated"
    return float("nan"), ""


def layer_health(result) -> list:
    """One :class:`LayerHealth` per layer of the trained model, on its training data."""
    cfg, net = result.config, as_numpy_mlp(result)
    X, y = training_targets(result)
    cache = numpy_mlp.Cache()
    with np.errstate(all="ignore"):  # a diverged model gives nan norms: the figure says so
        out = net.forward(X.astype(net.dtype), cache)
        _, dout = numpy_mlp.loss_and_grad(cfg.loss, out, y, cfg.hinge_margin)
        dW, _, _ = net.backward(cache, dout)
    layers = []
    with np.errstate(all="ignore"):
        for i, act in enumerate(net.activations):
            share, kind = stuck_share(act, cache.z[i], cache.h[i + 1])
            layers.append(LayerHealth(f"layer {i + 1} ({act})", float(np.linalg.norm(dW[i])),
                                      float(np.linalg.norm(net.W[i])), share, kind))
    return layers
