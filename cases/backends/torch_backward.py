"""Autograd's backward pass for the torch backend's MLP, written out with autograd's own kernels.

On the tiny nets of the cases, autograd's machinery (recording the graph in the
forward, running its engine in the backward) costs more than the arithmetic.
:class:`ManualBackward` reads an ``nn.Sequential`` of ``nn.Linear`` and activation
modules, runs the forward with autograd off (``torch.no_grad()`` or
``torch.inference_mode()``) keeping what autograd would save, and calls the aten
kernels that autograd's derivative formulas call (torch's
``tools/autograd/derivatives.yaml``) with the same arguments in the same layouts,
so its loss and gradients are bit for bit those of the module's forward and
``torch.autograd.grad`` (tests/test_torch_fast_backward.py checks every covered case).

Covered: ``nn.Linear`` with bias; ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.ELU``,
``nn.Sigmoid``, ``nn.Tanh``, ``nn.GELU``, ``nn.Softmax`` (none in place); the
losses ``mse`` and ``bce`` with targets of the output's shape, ``cross_entropy``
with class-index targets. :func:`manual_backward_for` returns None for anything
else, and the caller keeps autograd.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

aten = torch.ops.aten  # the backward kernels, by the names derivatives.yaml calls them
MEAN = 1              # at::Reduction::Mean: loss_fn's losses all average over the batch
IGNORE_INDEX = -100   # F.cross_entropy's default ignore_index, which loss_fn keeps


class Activation(NamedTuple):
    forward: Callable     # z -> a: the op the module's forward calls
    backward: Callable    # (g, z, a) -> gradient at z: autograd's formula for that op


def relu(m) -> Activation:
    return Activation(torch.relu, lambda g, z, a: aten.threshold_backward.default(g, a, 0))


def sigmoid(m) -> Activation:
    return Activation(torch.sigmoid, lambda g, z, a: aten.sigmoid_backward.default(g, a))


def tanh(m) -> Activation:
    return Activation(torch.tanh, lambda g, z, a: aten.tanh_backward.default(g, a))


def leaky_relu(m) -> Activation:
    s = m.negative_slope
    return Activation(lambda z: torch._C._nn.leaky_relu(z, s),
                      lambda g, z, a: aten.leaky_relu_backward.default(g, z, s, False))


def elu(m) -> Activation:
    alpha = m.alpha
    return Activation(lambda z: torch._C._nn.elu(z, alpha),        # scale and input_scale 1
                      lambda g, z, a: aten.elu_backward.default(g, alpha, 1, 1, False, z))


def gelu(m) -> Activation:
    approximate = m.approximate
    return Activation(lambda z: F.gelu(z, approximate=approximate),
                      lambda g, z, a: aten.gelu_backward.default(g, z, approximate=approximate))


def softmax(m) -> Activation | None:
    dim = m.dim
    if dim is None:                     # softmax's implicit dim: not worth the cases
        return None
    return Activation(lambda z: z.softmax(dim),
                      lambda g, z, a: torch._softmax_backward_data(g, a, dim, z.dtype))


ACTIVATIONS = {   # module type -> its Activation, built from the module's settings
    nn.ReLU: relu,
    nn.LeakyReLU: leaky_relu,
    nn.ELU: elu,
    nn.GELU: gelu,
    nn.Softmax: softmax,
    nn.Sigmoid: sigmoid,
    nn.Tanh: tanh,
}


def activation_of(module) -> Activation | None:
    """The covered activation of ``module`` (exact type, not in place), else None."""
    make = ACTIVATIONS.get(type(module))
    if make is None or getattr(module, "inplace", False):
        return None
    return make(module)


class Loss(NamedTuple):
    forward: Callable     # (out, y) -> (L, saved): loss_fn's value from the same kernel
    backward: Callable    # (seed, out, y, saved) -> gradient at out: autograd's formula
    takes: Callable       # (y, n_out) -> whether loss_fn would call that same kernel on y


def cross_entropy_forward(out, y):
    """F.cross_entropy on class indices: nll_loss of _log_softmax over dim 1."""
    logp = torch._log_softmax(out, 1, False)
    L, total_weight = aten.nll_loss_forward.default(logp, y, None, MEAN, IGNORE_INDEX)
    return L, (logp, total_weight)


def cross_entropy_backward(seed, out, y, saved):
    logp, total_weight = saved
    g = aten.nll_loss_backward.default(seed, logp, y, None, MEAN, IGNORE_INDEX, total_weight)
    return torch._log_softmax_backward_data(g, logp, 1, out.dtype)


def same_shape(y, n_out) -> bool:
    """Targets of the output's shape: F.mse_loss would broadcast others, F.bce refuse them."""
    return y.dim() == 2 and y.shape[1] == n_out


def class_indices(y, n_out) -> bool:
    """Targets F.cross_entropy reads as class indices (one-hot ones are soft targets)."""
    return y.dim() == 1 and not y.is_floating_point()


LOSSES = {        # loss_fn's names -> Loss
    "mse": Loss(lambda out, y: (torch._C._nn.mse_loss(out, y, MEAN), None),
                lambda seed, out, y, _: aten.mse_loss_backward.default(seed, out, y, MEAN),
                same_shape),
    "bce": Loss(lambda out, y: (torch._C._nn.binary_cross_entropy(out, y, None, MEAN), None),
                lambda seed, out, y, _: aten.binary_cross_entropy_backward.default(
                    seed, out, y, None, MEAN),
                same_shape),
    "cross_entropy": Loss(cross_entropy_forward, cross_entropy_backward, class_indices),
}


def linear_layers(net) -> list | None:
    """[(weight, bias, Activation | None)] of a Sequential of covered blocks, else None."""
    if type(net) is not nn.Sequential or len(net) == 0:
        return None
    layers = []
    for m in net:
        act = activation_of(m)
        if type(m) is nn.Linear and m.bias is not None:
            layers.append([m.weight, m.bias, None])
        elif act is not None and layers and layers[-1][2] is None:
            layers[-1][2] = act
        else:
            return None
    return [tuple(layer) for layer in layers]


def manual_backward_for(net, loss: str, y: torch.Tensor) -> ManualBackward | None:
    """A :class:`ManualBackward` of ``net`` with loss_fn's ``loss`` on targets like ``y``, or
    None where it would not be autograd's result (then train keeps autograd)."""
    layers, spec = linear_layers(net), LOSSES.get(loss)
    if layers is None or spec is None or not spec.takes(y, layers[-1][0].shape[0]):
        return None
    own = [p for weight, bias, _ in layers for p in (weight, bias)]
    params = list(net.parameters())     # the order train's update zips the gradients with
    if list(map(id, params)) != list(map(id, own)) or not all(p.requires_grad for p in params):
        return None                     # shared or frozen weights: autograd's business
    return ManualBackward(layers, spec)


class ManualBackward:
    """The loss and the parameter gradients of an MLP, as ``torch.autograd.grad`` gives them."""

    def __init__(self, layers, loss: Loss):
        self.layers, self.loss = layers, loss
        self.seeds = {}                 # the backward's first gradient, per summed-batch size

    def loss_and_gradients(self, x, y, summed_over: int | None = None):
        """(L, gradients in ``net.parameters()`` order) of the mean loss, or of the loss
        times ``summed_over`` (a summed-gradient batch). Call under ``torch.no_grad()`` or
        ``torch.inference_mode()``."""
        out, saved = self.forward(x)
        L, loss_saved = self.loss.forward(out, y)
        g = self.loss.backward(self.seed(L, summed_over), out, y, loss_saved)
        return L, self.parameter_gradients(g, saved)

    def forward(self, x):
        """The output and, per layer, what autograd saves: the Linear's input, its output z,
        and the activation's output a."""
        saved = []
        for weight, bias, act in self.layers:
            z = F.linear(x, weight, bias)
            a = z if act is None else act.forward(z)
            saved.append((x, z, a))
            x = a
        return x, saved

    def seed(self, L, summed_over):
        """autograd's gradient of the loss: ones_like(L), times n where the loss is L * n."""
        if summed_over not in self.seeds:
            one = torch.ones_like(L)
            self.seeds[summed_over] = one if summed_over is None else one * summed_over
        return self.seeds[summed_over]

    def parameter_gradients(self, g, saved) -> list:
        """From the output layer down: the activation's backward, then nn.Linear's.

        nn.Linear's forward is addmm(bias, x, weight.t()). autograd's gradients: the weight's
        is mm_mat2_backward of the column-major weight.t(), g.t().mm(x) (transposed there and
        back); the bias's is the engine's sum_to of g over the batch; x's is mm_mat1_backward's
        g.mm(weight) (its branch for a column-major x: a hidden x is an op's fresh row-major
        output, column-major only when 1 x 1, where both are the one product). The net's
        input needs no gradient.
        """
        grads = []
        for i in reversed(range(len(self.layers))):
            weight, _, act = self.layers[i]
            x, z, a = saved[i]
            if act is not None:
                g = act.backward(g, z, a)
            grads += [g.sum(0), g.t().mm(x)]          # bias, weight: reversed below
            if i > 0:
                g = g.mm(weight)
        grads.reverse()
        return grads
