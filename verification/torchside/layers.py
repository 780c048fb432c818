"""Drop-Muon's layers of any ``nn.Module``, input first, from one traced forward pass, and which
optimizer (Muon or its AdamW companion) takes each parameter.

Truncated backpropagation saves work only when the layers are numbered from the input: freezing
"the layers below ``s``" must freeze what runs *first*. The trace records the order in which the
forward pass first uses each trainable parameter (a ``torch.overrides.TorchFunctionMode``, so
parameters used functionally are seen too); the layers follow from it, or a hand-given grouping is
checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ["ModelLayers", "model_layers", "parameter_use_order", "check_optimizer", "parameter_routes"]


@dataclass(frozen=True)
class ModelLayers:
    """Drop-Muon's layers of a model, input first: ``names[j]`` and ``params[j]`` are the
    parameters of layer ``j + 1`` (qualified names as in ``model.named_parameters()``);
    ``labels[j]`` names the module that defines the layer (a parameter registered directly on
    the top module is a layer of its own, labelled by its name); ``source`` is ``"trace"`` or
    ``"groups"``. ``algorithms[j][i]`` is ``"muon"`` or ``"adamw"``, the optimizer that takes
    ``params[j][i]``, and ``reasons[j][i]`` says why, with the matrix Muon sees
    (:func:`parameter_routes`)."""

    names: tuple
    params: tuple
    labels: tuple
    source: str
    algorithms: tuple = ()
    reasons: tuple = ()

    def __len__(self) -> int:
        return len(self.params)

    def as_dict(self) -> dict:
        """The layer table as plain data: per layer its label, parameter names and shapes, the
        optimizer of each (``algorithms``) and why (``reasons``)."""
        out = []
        for j, (lab, ns, ps) in enumerate(zip(self.labels, self.names, self.params)):
            rec = {"layer": j + 1, "label": lab, "parameters": list(ns), "shapes": [list(p.shape) for p in ps]}
            if self.algorithms:
                rec["algorithms"] = list(self.algorithms[j])
                rec["reasons"] = list(self.reasons[j])
            out.append(rec)
        return {"source": self.source, "layers": out}


class _FirstUse(TorchFunctionMode):
    """Records the first torch call that receives each watched tensor: ``calls`` lists, per call
    that saw any for the first time, the ids of those tensors in argument order."""

    def __init__(self, watched: dict):
        super().__init__()
        self.watched = watched
        self.calls: list[list[int]] = []
        self.seen: set[int] = set()

    def _scan(self, x, new: list):
        if isinstance(x, torch.Tensor):
            i = id(x)
            if i in self.watched and i not in self.seen:
                self.seen.add(i)
                new.append(i)
        elif isinstance(x, (list, tuple)):
            for y in x:
                self._scan(y, new)
        elif isinstance(x, dict):
            for y in x.values():
                self._scan(y, new)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # reading .shape or .dtype is not a use; reading .T or .mT (a tensor: x @ w.T) is one
        if getattr(func, "__name__", "") != "__get__" or isinstance(out, torch.Tensor):
            new: list[int] = []
            self._scan(args, new)
            self._scan(kwargs, new)
            if new:
                self.calls.append(new)
        return out


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type when the message is empty): what a
    one-line error quotes of the user's model, loss or factory."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _forward(model, example_inputs):
    if isinstance(example_inputs, dict):
        return model(**example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return model(*example_inputs)
    return model(example_inputs)


def _use_calls(model: nn.Module, example_inputs) -> list[list[str]]:
    """The trainable parameters' first uses, per torch call of one forward pass (see
    :func:`parameter_use_order`)."""
    names = {}
    for n, p in model.named_parameters():
        if p.requires_grad:
            names[id(p)] = n
    saved = {k: v.detach().clone() for k, v in model.named_buffers()}
    mode = _FirstUse(names)
    try:
        with torch.no_grad(), mode:
            _forward(model, example_inputs)
    except Exception as e:  # the user's model: any error is bad input, reported in one line
        shape = tuple(example_inputs.shape) if torch.is_tensor(example_inputs) else type(example_inputs).__name__
        raise ValueError(f"the model failed on an example batch of shape {shape}: {first_line(e)}") from None
    finally:
        with torch.no_grad():
            for k, v in model.named_buffers():
                if k in saved:
                    v.copy_(saved[k])
    return [[names[i] for i in call] for call in mode.calls]


def parameter_use_order(model: nn.Module, example_inputs) -> list[str]:
    """Names of the trainable parameters in the order one forward pass on ``example_inputs``
    first uses them (a parameter the pass never uses is absent; parameters first used by the
    same torch call in argument order). Buffers (BatchNorm running statistics) and the training
    mode are restored afterwards, so the trace leaves no trace. A model that fails on the inputs
    raises ``ValueError`` with the model's own message."""
    return [n for call in _use_calls(model, example_inputs) for n in call]


def _split(name: str) -> tuple[str, str, str]:
    """``(owner, attribute, original)`` of a parameter's qualified name: the module that owns it,
    the attribute it stands for, and for a parametrized attribute which original tensor it is.
    ``torch.nn.utils.parametrize`` stores a module's parametrized ``weight`` as
    ``<module>.parametrizations.weight.original`` (or ``original0``, ``original1``, … when the
    parametrization has several, as weight norm's ``g`` and ``v``): those belong to ``<module>``,
    the module that uses the weight, not to the container that stores them.

    >>> _split("blocks.0.fc.parametrizations.weight.original1")
    ('blocks.0.fc', 'weight', 'original1')
    >>> _split("w_in")
    ('', 'w_in', '')
    """
    parts = name.split(".")
    if len(parts) >= 3 and parts[-3] == "parametrizations" and parts[-1].startswith("original"):
        return ".".join(parts[:-3]), parts[-2], parts[-1]
    return ".".join(parts[:-1]), parts[-1], ""


def _owner(name: str) -> str:
    return _split(name)[0]


def _is_kernel(module, p) -> bool:
    """Whether ``p`` is a convolution kernel of ``module``: ``module`` is a convolution and ``p``
    has its kernel's shape, ``C_out × C_in/groups × k…`` (``C_in × C_out/groups × k…`` for a
    transposed convolution)."""
    if not isinstance(module, nn.modules.conv._ConvNd):
        return False
    k = tuple(module.kernel_size)
    return p.ndim == 2 + len(k) and tuple(p.shape[2:]) == k and p.shape[0] in (module.out_channels,
                                                                             module.in_channels)


def parameter_routes(model: nn.Module, names, *, embeddings: str = "adamw") -> dict[str, tuple[str, str]]:
    """``{name: (algorithm, reason)}``: which optimizer takes each named parameter of ``model``
    and why — the rule of :func:`~dropmuon.verification.torchside.optimizer.route_parameter`, told
    by the module that owns the parameter whether it is a convolution kernel, an embedding table
    or weight norm's magnitude:

    * a convolution kernel ``C_out × C_in × k × k`` goes to Muon as the matrix
      ``C_out × (C_in k k)``;
    * any other tensor of three or more dimensions (a ViT's position embedding ``1 × T × d``)
      goes to AdamW — as a matrix ``1 × (T d)`` Muon's step would be a normalised-gradient step,
      and ``torch.optim.Muon`` refuses it;
    * a matrix view with a dimension 1 (``1 × n`` or ``m × 1``) goes to AdamW: its polar factor
      is ``G/‖G‖_F``, a normalised-gradient step, not a Muon step;
    * weight norm (``torch.nn.utils.parametrizations.weight_norm``) stores ``W = g·v/‖v‖`` as
      ``original0 = g`` of shape ``C_out × 1 × …`` (AdamW: one scale per output) and
      ``original1 = v`` of ``W``'s shape (a matrix or a kernel, as ``W`` would be);
    * ``nn.Embedding`` tables go to AdamW unless ``embeddings="muon"``; vectors (biases, norm
      scales) go to AdamW.
    """
    from torch.nn.utils.parametrizations import _WeightNorm

    from .optimizer import route_parameter

    if embeddings not in ("adamw", "muon"):
        raise ValueError(f"embeddings must be 'adamw' or 'muon'; got embeddings = {embeddings!r}")
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    out = {}
    for n in names:
        p = params[n]
        owner, attr, original = _split(n)
        module = modules.get(owner)
        if original:
            plist = getattr(getattr(module, "parametrizations", None), attr, None)
            if original == "original0" and plist is not None and any(isinstance(f, _WeightNorm) for f in plist):
                why = f"weight norm's magnitude g of {attr}, shape {tuple(p.shape)}: one scale per output, not a matrix"
                out[n] = ("adamw", why)
                continue
        if isinstance(module, nn.Embedding) and attr == "weight" and embeddings == "adamw" and p.ndim == 2:
            out[n] = ("adamw", f"an embedding table {p.shape[0]}×{p.shape[1]} (embeddings='adamw')")
            continue
        out[n] = route_parameter(p.shape, kernel=_is_kernel(module, p))
    return out


def _tied(model: nn.Module) -> dict[int, list[str]]:
    """``{id(parameter): [all its names]}`` for parameters registered under several names."""
    allnames: dict[int, list[str]] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        allnames.setdefault(id(p), []).append(n)
    return {i: ns for i, ns in allnames.items() if len(ns) > 1}


def model_layers(model: nn.Module, example_inputs=None, *, groups=None, embeddings: str = "adamw") -> ModelLayers:
    """Drop-Muon's layers of ``model``, input first, and the optimizer of each parameter.

    **From the trace** (``groups=None``): each trainable parameter is placed where the forward
    pass on ``example_inputs`` first uses it. A module's own parameters stay together while it
    runs: a parameter with two or more dimensions (a linear map, a convolution, an embedding
    table) whose module has no layer yet, or whose module's layer is no longer the last one (the
    module's parameters are used apart, with another layer in between), starts a new layer; a
    vector (a norm's scale and shift, a free bias) joins its module's layer while that is the last
    one, else the layer that ran last before it (or the first layer, if it runs before any
    matrix). So a layer is a matrix with the biases and norms applied after it, and freezing the
    layers below ``s`` freezes everything the forward pass runs before layer ``s``'s matrix:
    backward stops there. Parameters registered on the top module itself (a functional-style
    model's ``w_in`` and ``w_out``) have no module to group them: each matrix is its own layer,
    labelled by its name, at its first use — so an output matrix used last is the last layer
    and is updated at every step. A parametrized weight's tensors
    (``<module>.parametrizations.weight.original*``, e.g. weight norm's ``g`` and ``v``) belong to
    ``<module>``.

    **From ``groups``**: a list, input first, of modules or iterables of parameters, one per layer.
    With ``example_inputs`` the order is checked against the trace: a grouping that is not
    input-first is an error (frozen "lower" layers that run last save nothing — backward still
    runs through the whole network).

    **The optimizer of each parameter** (``algorithms``, ``reasons``): :func:`parameter_routes`
    with ``embeddings``.

    Errors (``ValueError``, naming the parameter): a trainable parameter in no layer (an orphan:
    unused by the forward pass, or missing from ``groups``), in two groups, or tied (one tensor
    registered under two modules) across layers — a tied weight would be frozen with one layer
    and updated with the other, so it must sit in one group; a model with no trainable
    parameter with two or more dimensions (nothing for Muon).
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameters")
    if not any(p.ndim >= 2 for _, p in named):
        raise ValueError("the model has no matrix parameters (two or more dimensions): Muon has nothing to update; "
                         f"its parameters are {', '.join(n + str(tuple(p.shape)) for n, p in named[:6])}")
    if embeddings not in ("adamw", "muon"):
        raise ValueError(f"embeddings must be 'adamw' or 'muon'; got embeddings = {embeddings!r}")
    name_of = {id(p): n for n, p in named}
    tied = _tied(model)
    if groups is not None:
        ml = _from_groups(model, named, name_of, tied, groups, example_inputs)
    else:
        ml = _from_trace(model, named, name_of, tied, example_inputs)
    routes = parameter_routes(model, [n for ns in ml.names for n in ns], embeddings=embeddings)
    return ModelLayers(ml.names, ml.params, ml.labels, ml.source,
                       tuple(tuple(routes[n][0] for n in ns) for ns in ml.names),
                       tuple(tuple(routes[n][1] for n in ns) for ns in ml.names))


def _from_trace(model, named, name_of, tied, example_inputs) -> ModelLayers:
    if example_inputs is None:
        raise ValueError("give an example batch (example_inputs) to trace the layers, or groups=[...]")
    by_name = dict(named)
    # the unit of placement: the parameters of one module that one torch call first uses — used
    # at once (a fused GRU call takes all its weights; torch.addmm(b, x, w) sees the bias first)
    units: list[tuple[str, list[str]]] = []
    for call in _use_calls(model, example_inputs):
        per_module: dict[str, list[str]] = {}
        for n in call:
            per_module.setdefault(_owner(n), []).append(n)
        units += [(own, sorted(ns, key=lambda n: by_name[n].ndim < 2)) for own, ns in per_module.items()]
    used = {n for _, ns in units for n in ns}
    unused = [n for n, _ in named if n not in used]
    if unused:
        raise ValueError(f"parameter {unused[0]!r} is trainable but the forward pass never used it, so it belongs to no "
                         f"layer ({len(unused)} such); freeze it (requires_grad_(False)) or pass groups=[...]")
    layers: list[list[str]] = []
    labels: list[str] = []
    pending: list[str] = []  # vectors used before any matrix: they join the first layer
    run: dict[str, int] = {}  # module → the layer its matrices opened or joined last
    for own, ns in units:
        if own and run.get(own, -1) == len(layers) - 1 >= 0:
            layers[-1].extend(ns)  # its module is still running: the same layer
        elif by_name[ns[0]].ndim >= 2:
            # a new layer, labelled by its module; parameters of the top module, or ones their
            # module uses apart from its others (after another layer), by their matrix's name
            labels.append(own if own and own not in run else ns[0])
            layers.append(list(ns))
            if own:
                run[own] = len(layers) - 1
        else:
            (layers[-1] if layers else pending).extend(ns)  # vectors join the layer that ran last before them
    layers[0][:0] = pending
    layer_of = {n: j for j, ns in enumerate(layers) for n in ns}
    owner_layer: dict[str, int] = {}  # module → the layer of its first-used parameter
    for own, ns in units:
        owner_layer.setdefault(own, layer_of[ns[0]])
    for i, ns in tied.items():
        if i in name_of and len({layer_of[name_of[i]]} | {owner_layer.get(_owner(n)) for n in ns[1:]}) > 1:
            raise ValueError(f"parameter {ns[0]!r} is tied to {ns[1]!r} (one tensor, two modules): Drop-Muon freezes "
                             f"layers independently, so a tied weight must belong to one layer; untie the weights or "
                             f"pass groups=[...] with both modules in one group")
    return ModelLayers(tuple(tuple(ns) for ns in layers), tuple(tuple(by_name[n] for n in ns) for ns in layers),
                       tuple(labels), "trace")


def _from_groups(model, named, name_of, tied, groups, example_inputs) -> ModelLayers:
    groups = list(groups)
    if not groups:
        raise ValueError("groups is empty; give one module or parameter list per layer, input first")
    layer_params: list[list] = []
    labels = []
    module_names = {id(m): n for n, m in model.named_modules()}
    where: dict[int, int] = {}
    for j, g in enumerate(groups):
        if isinstance(g, nn.Module):
            ps = [p for p in g.parameters() if p.requires_grad]
            labels.append(module_names.get(id(g), type(g).__name__) or "(model)")
        elif isinstance(g, torch.Tensor):
            ps = [g]
            labels.append(name_of.get(id(g), "?"))
        else:
            ps = [p for p in g if p.requires_grad]
            labels.append(name_of.get(id(ps[0]), "?") if ps else "?")
        if not ps:
            raise ValueError(f"layer group {j + 1} ({labels[-1]}) has no trainable parameters")
        for p in ps:
            if id(p) not in name_of:
                raise ValueError(f"layer group {j + 1} ({labels[-1]}) holds a parameter of shape {tuple(p.shape)} "
                                 f"that is not a trainable parameter of the model")
            if id(p) in where and where[id(p)] != j:
                extra = " (tied weights must sit in one group)" if id(p) in tied else ""
                raise ValueError(f"parameter {name_of[id(p)]!r} is in layer groups {where[id(p)] + 1} and {j + 1}; "
                                 f"each parameter belongs to exactly one layer{extra}")
            where[id(p)] = j
        layer_params.append(list(dict.fromkeys(ps)))
    orphans = [n for n, p in named if id(p) not in where]
    if orphans:
        raise ValueError(f"parameter {orphans[0]!r} is in no layer group ({len(orphans)} such); every trainable "
                         f"parameter must belong to exactly one layer")
    if example_inputs is not None:
        order = parameter_use_order(model, example_inputs)
        rank = {n: k for k, n in enumerate(order)}
        first = []
        for j, ps in enumerate(layer_params):
            used = [rank[name_of[id(p)]] for p in ps if name_of[id(p)] in rank]
            if not used:
                raise ValueError(f"layer group {j + 1} ({labels[j]}) is never used by the forward pass")
            first.append(min(used))
        for j in range(1, len(first)):
            if first[j] < first[j - 1]:
                raise ValueError(
                    f"the layer groups are not input-first: group {j + 1} ({labels[j]}) runs before group {j} "
                    f"({labels[j - 1]}) in the forward pass; list the layers from the input to the output (frozen "
                    f"'lower' layers that run last save nothing: backward still runs through the whole network)")
    return ModelLayers(tuple(tuple(name_of[id(p)] for p in ps) for ps in layer_params),
                       tuple(tuple(ps) for ps in layer_params), tuple(labels), "groups")


def check_optimizer(model: nn.Module, optimizer, example_inputs=None) -> ModelLayers:
    """Check that ``optimizer``'s layers (its param groups' ``"layer"`` keys) fit ``model``: every
    trainable parameter in exactly one layer — a trainable parameter outside every layer would
    keep requiring gradients, so backward would run through the frozen layers to reach it, and it
    would never be updated — and, with ``example_inputs``, the layers numbered input-first.
    Raises ``ValueError`` naming the offending parameter or layer; returns the layers."""
    groups = optimizer.layer_groups()
    if not groups:
        raise ValueError("the optimizer's param groups carry no 'layer' key; build it with layers=[...] or from_model")
    per_layer = [[p for g in gs for p in g["params"]] for _, gs in sorted(groups.items())]
    return model_layers(model, example_inputs, groups=per_layer)
