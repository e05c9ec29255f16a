"""The adapter: turn a torch module into probe data (plain numpy). Other models reach it
through their to_torch() (diagnostics.inputs.as_module).

The torch adapter works on a deep copy of the module in eval mode, so hooks, ``.grad``, flags,
mode and buffers of the caller's module are never touched; gradients come from
``torch.autograd.grad``, which fills no ``.grad`` field at all. The caller's ``.grad`` fields are
read (copied), never written.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from diagnostics import activations, losses
from diagnostics.inputs import check_class_range, check_class_width
from diagnostics.losses import CLASS_INDEX_LOSSES, REGRESSION_LOSSES, LossSpec
from diagnostics.probe import Layer, one_column_against_flat
from diagnostics.sharpness import top_eigenvalue


MODE_ROWS = 64      # rows compared in train and eval mode: dropout on 64 rows shows at once
BROADCAST_ROWS = 2000   # rows of the (n, n) broadcast loss: 2000 x 2000 float32 is 16 MB, and a
                        # mean over 4 million pairs is within ~1e-3 of the full one


def to_np(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    return (t.float() if t.dtype in (torch.float16, torch.bfloat16) else t).cpu().numpy()


def float_dtype(net: nn.Module) -> torch.dtype:
    for p in net.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def input_width(net: nn.Module) -> int | None:
    first = next((m for m in net.modules() if isinstance(m, nn.Linear)), None)
    return None if first is None else first.in_features


def run_forward(net, X: torch.Tensor):
    try:
        out = net(X)
    except Exception as e:
        width = input_width(net)
        if X.ndim == 2 and width is not None and X.shape[1] != width:
            raise ValueError(f"model(X) raised {type(e).__name__} on X of shape {tuple(X.shape)}: "
                             f"X has {X.shape[1]} columns but the model's first Linear layer takes "
                             f"{width} inputs; accepted: X with {width} columns") from e
        accepted = "X whose columns match the model's input" if X.ndim == 2 else (
            "X of the shape the model's forward takes: 2-D (n, features) for an MLP "
            "(X.reshape(len(X), -1)), N-D rows for one that starts with nn.Flatten() or a stem")
        raise ValueError(f"model(X) raised {type(e).__name__} on X of shape {tuple(X.shape)} and dtype "
                         f"{X.dtype}: {e}; accepted: {accepted}") from e
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model(X) returned a {type(out).__name__}; accepted: a model whose forward "
                        "returns one tensor of outputs")
    if X.ndim > 2 and out.ndim > 2:     # an nn.Linear maps the last axis and keeps the others
        raise ValueError(f"model(X) on X of shape {tuple(X.shape)} returned an output of shape "
                         f"{tuple(out.shape)}: the rows' extra axes reached the output; accepted: "
                         "N-D rows for a model that flattens them (nn.Flatten() first), or 2-D "
                         "X (X.reshape(len(X), -1))")
    return out


def record_leaves(net: nn.Module, X: torch.Tensor):
    """The forward pass with every leaf module's (name, module, input, output), in call order."""
    calls = []
    def hook(name):
        def record(module, inputs, output):
            if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor):
                calls.append((name, module, inputs[0], output))
        return record
    leaves = [(n, m) for n, m in net.named_modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook(n)) for n, m in leaves]
    try:
        out = run_forward(net, X)
    finally:
        for h in handles:
            h.remove()
    return out, calls


def layer_label(path: str, lin: nn.Linear, index: int, kind: str, is_output: bool,
                numbered: bool) -> str:
    """How the user wrote the layer: its module path and shape (``net.2 Linear(64->10)``), or,
    for a model converted with to_torch(), its number, role, width and activation."""
    if numbered:
        return f"layer {index + 1} ({'output' if is_output else 'hidden'}, {lin.out_features} {kind})"
    return f"{path} Linear({lin.in_features}->{lin.out_features})"


def linear_layers(calls, out2: torch.Tensor, grads: dict, numbered: bool = False):
    """One Layer per nn.Linear call (first call of each), with the activation that follows it."""
    at = [i for i, c in enumerate(calls) if isinstance(c[1], nn.Linear)]
    seen, layers = set(), []
    for j, i in enumerate(at):
        name, lin, _, z = calls[i]
        if id(lin) in seen:
            continue
        seen.add(id(lin))
        end = at[j + 1] if j + 1 < len(at) else len(calls)
        nxt = calls[end][2] if end < len(calls) else out2
        kind, pre, post = following_activation(calls[i + 1:end], z, nxt)
        last = end == len(calls)
        layers.append(Layer(layer_label(name, lin, len(layers), kind, last, numbered),
                            to_np(lin.weight), None if lin.bias is None else to_np(lin.bias),
                            grads.get(f"{name}.weight"), to_np(pre), to_np(post), kind,
                            is_output=last, path=name, feeds_norm=feeds_norm(calls[i + 1:end], z)))
    return layers


NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
         nn.modules.instancenorm._InstanceNorm)


def feeds_norm(between, z: torch.Tensor) -> bool:
    """The first module called on the linear's own output is a normalisation layer: it divides
    out any scale of the weights (and the bias) before the next layer sees them."""
    first = next(((m, i) for _, m, i, _ in between if i.shape == z.shape), None)
    return first is not None and isinstance(first[0], NORMS) and same_memory(z, first[1])


def following_activation(between, z, nxt):
    """(kind, pre, post): the last activation module between two linears, else read from values."""
    acts = [(m, i, o) for _, m, i, o in between if activations.module_kind(m)]
    if acts:
        m, i, o = acts[-1]
        kind = activations.module_kind(m)
        if i.shape == o.shape and i.ndim == 2:
            return kind, i, o
    if nxt.shape == z.shape and same_memory(z, nxt):
        return "identity", z, nxt       # no op ran in between: a linear head or a bare stack
    if nxt.shape == z.shape:
        return activations.kind_from_values(z, nxt), z, nxt
    return "unknown", z, z


def same_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    """b is a view of a's values (a reshape at most): no function was applied between them. A
    relu head whose inputs happen to be all positive on the probe rows still writes new memory."""
    return a.data_ptr() == b.data_ptr() and a.stride() == b.stride()


def aligned_targets(y: np.ndarray, width: int, notes: list) -> np.ndarray:
    """Float targets as (n, k) with k the output width; one column is broadcast (as torch does)."""
    y2 = y.reshape(len(y), -1)
    if y2.shape[1] == width:
        return y2
    if y2.shape[1] == 1:
        notes.append(f"y has one column and the model {width} outputs: the loss broadcasts it")
        return np.broadcast_to(y2, (len(y), width))
    raise ValueError(f"y has shape {y.shape} but the model outputs {width} values per row; "
                     f"accepted: y of shape (n,) or (n, {width})")


def target_tensor(y: np.ndarray, name: str, width: int, dev, dtype, notes) -> tuple:
    """(the tensor the loss reads, targets as the checks read them, as the constant reads them)."""
    if name in CLASS_INDEX_LOSSES and y.ndim == 2:     # class probabilities: the checks read
        check_class_width(y, width, name)              # each row's most probable class
        return torch.as_tensor(y, device=dev, dtype=dtype), y.argmax(axis=1), y
    if name in CLASS_INDEX_LOSSES:
        check_class_range(y, width, name)
        return torch.as_tensor(y, device=dev), y, y
    y2, y_probe = aligned_targets(y, width, notes), y.reshape(len(y), -1)
    return torch.as_tensor(np.ascontiguousarray(y2), device=dev, dtype=dtype), y_probe, y_probe


def torch_probe(model: nn.Module, X: np.ndarray, y: np.ndarray, spec: LossSpec, notes: list,
                y_raw=None, numbered: bool = False, step_back: float | None = None) -> dict:
    """``step_back``: the lr of a plain SGD step, to read the rows' gradient bounds at the
    weights the caller's .grad was computed at, before the last step moved them."""
    net = copy.deepcopy(model).eval()   # eval: dropout off and batch-norm statistics frozen
    dev, dtype = next(net.parameters()).device, float_dtype(net)
    Xt = torch.as_tensor(X, device=dev).to(dtype)
    held = stored_grads(model)
    with torch.enable_grad():
        out, calls = record_leaves(net, Xt)
        out2 = out.reshape(len(X), -1)
        objective, targets = make_objective(spec, y, y_raw, out2, dev, dtype, notes)
        L = objective(out)
        named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
        lins = separable_linears(calls, len(X)) if held and spec.name != "custom" \
            and not trains_differently(model, Xt) else None   # row bounds serve only .grad
        if lins and step_back:
            grads, _ = gradients(L, named, [])
            norms, bounds = row_bounds(stepped_back(net, held, step_back), Xt, objective)
        else:
            grads, dzs = gradients(L, named, [z for _, _, _, z in lins or ()])
            norms, bounds = row_gradient_norms(lins, dzs, len(X)) if dzs else (None, {})
    return {
        "out": to_np(out2), "out_shape": tuple(out.shape), "y": targets[0], "loss": float(L.detach()),
        "y_loss": targets[1], "stored_grads": held, "row_grad_norms": norms,
        "unit_grad_bounds": bounds, "baseline_loss": baseline(spec, targets[1], objective, out),
        "untrained_loss": losses.untrained_output_loss(spec.name, targets[1], out2.shape[1],
                                                       spec.options),
        "broadcast_loss": broadcast_loss(spec, out, y_raw), "dropout": dropout_rates(model),
        "repeat_change": repeat_change(net, Xt, out2),
        "layers": linear_layers(calls, out2, grads, numbered),
        "params": {n: to_np(p) for n, p in net.named_parameters()}, "grads": grads,
        "sharpness": memo(lambda: top_eigenvalue(net, Xt, objective)),
        "stepped_loss": loss_after_a_step(net, Xt, objective, held or grads),
        "row_losses": memo(lambda: row_losses(out.detach(), objective)),
    }


NOISE_ROWS = 256    # rows whose own losses tell how far batches of them scatter: the spread's
                    # estimate within ~5% (1 / sqrt(2 x 256)); at most 256 loss calls


def row_losses(out: torch.Tensor, objective) -> np.ndarray | None:
    """Each of up to NOISE_ROWS evenly spaced rows' own loss (a batch of one row), None where the
    loss does not take a single row."""
    rows = np.unique(np.linspace(0, len(out) - 1, min(NOISE_ROWS, len(out))).astype(int))
    try:
        with torch.no_grad():
            return np.array([float(objective(out[i:i + 1], [i])) for i in rows])
    except Exception:       # a caller's own loss may refuse one row in any way it likes
        return None


def loss_after_a_step(net: nn.Module, Xt: torch.Tensor, objective, grads: dict):
    """Lazy: (lr, wd) -> the loss on X after one plain step from net's weights along ``grads``,
    w - lr (g + wd w), on a copy (torch.func.functional_call: net is not touched). diagnose()
    steps along the loop's own last .grad where it left one (a step the loop computed but, if
    the weights never moved, never took; a loop that fed the model other inputs than X computed
    one that does not lower the loss on X), else along the gradient on X."""
    seen: dict = {}     # (lr, wd) -> the loss: several checks ask for the same step

    def stepped(lr: float, wd: float) -> float:
        if (lr, wd) not in seen:
            with torch.no_grad():
                moved = {n: p - lr * (torch.as_tensor(grads[n], device=p.device, dtype=p.dtype)
                                      + wd * p)
                         for n, p in net.named_parameters() if grads.get(n) is not None}
                seen[lr, wd] = float(objective(torch.func.functional_call(net, moved, (Xt,))))
        return seen[lr, wd]
    return stepped


def repeat_change(net: nn.Module, X: torch.Tensor, out: torch.Tensor) -> float | None:
    """How far a second eval-mode call on the same rows moves the outputs: RMS of the change over
    the RMS spread of the first call's outputs about their mean (0: a deterministic forward)."""
    with torch.no_grad():
        again = run_forward(net, X)
        if not isinstance(again, torch.Tensor) or again.numel() != out.numel():
            return None
        first = out.detach().double()
        change = (again.reshape(first.shape).double() - first).pow(2).mean().sqrt()
        spread = (first - first.mean(0)).pow(2).mean().sqrt()
    if change == 0 or not torch.isfinite(change):
        return 0.0 if change == 0 else None
    return float(change / spread) if spread > 0 else float("inf")


def broadcast_loss(spec: LossSpec, out: torch.Tensor, y_raw) -> float | None:
    """The loss a loop computes when one of y and the output is (n,) and the other (n, 1): every
    output against every target, an (m, m) mean over evenly spaced rows (m <= BROADCAST_ROWS).
    None for other shapes, and for losses that are not value losses (or a custom one)."""
    if spec.name not in REGRESSION_LOSSES or y_raw is None \
            or not one_column_against_flat(np.shape(y_raw), tuple(out.shape)):
        return None
    rows = slice(None, None, -(-len(out) // BROADCAST_ROWS))
    o = out.detach().reshape(-1)[rows]
    t = torch.as_tensor(np.asarray(y_raw).reshape(-1)[rows], device=o.device, dtype=o.dtype)
    with torch.no_grad():
        m = len(o)
        L = losses.torch_loss(spec.name, spec.options)(o[:, None].expand(m, m), t[None, :].expand(m, m))
    return float(L)


def held_out_losses(model: nn.Module, X: np.ndarray, y: np.ndarray, spec: LossSpec,
                    y_raw) -> tuple:
    """(the model's loss, a constant predictor's loss) on held-out rows, forward only."""
    net = copy.deepcopy(model).eval()
    dev, dtype = next(net.parameters()).device, float_dtype(net)
    with torch.no_grad():
        out = run_forward(net, torch.as_tensor(X, device=dev).to(dtype))
        objective, targets = make_objective(spec, y, y_raw, out.reshape(len(X), -1), dev, dtype, [])
        return float(objective(out)), baseline(spec, targets[1], objective, out)


def make_objective(spec: LossSpec, y, y_raw, out2, dev, dtype, notes):
    """(objective(out) -> scalar, (targets as the probe keeps them, as the constant reads them))."""
    if spec.name == "custom":  # the caller's loss sees the outputs and targets as they gave them
        yr = torch.as_tensor(y_raw, device=dev)
        yt = yr.to(dtype) if yr.is_floating_point() else yr
        y_probe = y.reshape(len(y), -1) if y.dtype.kind == "f" else y
        return (lambda out, rows=None: spec.fn(out, pick(yt, rows))), (y_probe, y_probe)
    yt, y_probe, y_loss = target_tensor(y, spec.name, out2.shape[1], dev, dtype, notes)
    fn = losses.torch_loss(spec.name, spec.options)
    return (lambda out, rows=None: fn(out.reshape(len(out), -1), pick(yt, rows))), (y_probe, y_loss)


def pick(t: torch.Tensor, rows):
    return t if rows is None else t[rows]


def gradients(L: torch.Tensor, named, zs: list) -> tuple:
    """({name: d(mean loss)/d(param)}, [d(mean loss)/dz per Linear output z]), in one backward."""
    if not named or not L.requires_grad:       # the loss does not reach a single parameter
        return {n: None for n, _ in named}, None
    gs = torch.autograd.grad(L, [p for _, p in named] + zs, allow_unused=True)
    grads = {n: (None if g is None else to_np(g)) for (n, _), g in zip(named, gs)}
    return grads, list(gs[len(named):]) or None


def stepped_back(net: nn.Module, held: dict, lr: float) -> nn.Module:
    """A copy of net at the weights before the last step of torch.optim.SGD without momentum or
    weight decay: w_T = w_{T-1} - lr .grad, whatever .grad held (a sum over steps included)."""
    back = copy.deepcopy(net)
    with torch.no_grad():
        for n, p in back.named_parameters():
            if n in held:
                p.add_(torch.as_tensor(held[n], device=p.device, dtype=p.dtype), alpha=lr)
    return back


def row_bounds(net: nn.Module, Xt: torch.Tensor, objective) -> tuple:
    """row_gradient_norms at net's weights: (None, {}) where its Linear calls are not separable."""
    with torch.enable_grad():
        out, calls = record_leaves(net, Xt)
        lins = separable_linears(calls, len(Xt))
        named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
        _, dzs = gradients(objective(out), named, [z for _, _, _, z in lins]) if lins \
            else (None, None)
    return row_gradient_norms(lins, dzs, len(Xt)) if dzs else (None, {})


DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
            nn.FeatureAlphaDropout)


def dropout_rates(model: nn.Module) -> dict:
    """{module name: p} of the model's dropout modules: what training drops, which eval hides."""
    return {name: float(m.p) for name, m in model.named_modules() if isinstance(m, DROPOUTS)}


def stored_grads(model: nn.Module) -> dict | None:
    """A copy of the caller's .grad of each trainable parameter; None when none holds one."""
    held = {n: to_np(p.grad).copy() for n, p in model.named_parameters()
            if p.requires_grad and p.grad is not None}
    return held or None


def trains_differently(model: nn.Module, X: torch.Tensor) -> bool:
    """The forward in train mode differs from eval mode (dropout, batch norm, or a forward that
    reads self.training): then the gradients training stored are not the eval-mode probe's."""
    net, rows = copy.deepcopy(model), X[:MODE_ROWS]
    try:
        with torch.no_grad():
            trained, evaluated = net.train()(rows), net.eval()(rows)
    except Exception:   # e.g. batch norm refuses one row in train mode: it does train differently
        return True
    return not (isinstance(trained, torch.Tensor) and torch.equal(trained, evaluated))


def separable_linears(calls, n: int) -> list | None:
    """The nn.Linear calls, when each Linear runs once on (n, fan_in) rows: then row i's gradient
    reaches each weight only through row i's own activations. None otherwise (shared layers)."""
    lins = [c for c in calls if isinstance(c[1], nn.Linear)]
    ids = [id(m) for _, m, _, _ in lins]
    if not lins or len(set(ids)) < len(ids):
        return None
    if any(a.ndim != 2 or len(a) != n or not z.requires_grad for _, _, a, z in lins):
        return None
    return lins


def row_gradient_norms(lins, dzs, n: int) -> tuple:
    """(each row's own loss gradient norm over the Linear parameters, {parameter: per unit, the
    largest norm one row's gradient gives that unit's slice}), from the batch backward. The mean
    loss gives row i's dz_i / n, and its weight gradient dz_i a_i^T has norm |dz_i| |a_i|."""
    sq, bounds = 0.0, {}
    for (name, lin, a, _), dz in zip(lins, dzs):
        if dz is None:
            continue
        d = (n * dz.detach()).abs()
        if lin.weight.requires_grad:
            an = a.detach().pow(2).sum(1).sqrt()
            sq = sq + d.pow(2).sum(1) * an.pow(2)
            bounds[f"{name}.weight"] = to_np((d * an[:, None]).amax(0))
        if lin.bias is not None and lin.bias.requires_grad:
            sq, bounds[f"{name}.bias"] = sq + d.pow(2).sum(1), to_np(d.amax(0))
    return (to_np(torch.sqrt(sq)), bounds) if bounds else (None, {})


def baseline(spec: LossSpec, y_loss, objective, out) -> float:
    if spec.name != "custom":
        return losses.constant_loss(spec.name, y_loss, out.reshape(len(out), -1).shape[1],
                                    spec.options)
    with torch.no_grad():  # a custom loss: score the model's own mean output, given to every row
        mean = out.detach().mean(dim=0, keepdim=True).expand_as(out)
        return float(objective(mean))


def memo(fn):
    box = []
    def once():
        if not box:
            box.append(fn())
        return box[0]
    return once
