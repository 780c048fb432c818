"""Drop-Muon's layers of any ``nn.Module``, input first, from one traced forward pass.

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

__all__ = ["ModelLayers", "model_layers", "parameter_use_order", "check_optimizer"]


@dataclass(frozen=True)
class ModelLayers:
    """Drop-Muon's layers of a model, input first: ``names[j]`` and ``params[j]`` are the
    parameters of layer ``j + 1`` (qualified names as in ``model.named_parameters()``);
    ``labels[j]`` names the module that defines the layer; ``source`` is ``"trace"`` or
    ``"groups"``."""

    names: tuple
    params: tuple
    labels: tuple
    source: str

    def __len__(self) -> int:
        return len(self.params)

    def as_dict(self) -> dict:
        return {"source": self.source,
                "layers": [{"layer": j + 1, "label": lab, "parameters": list(ns),
                            "shapes": [list(p.shape) for p in ps]}
                           for j, (lab, ns, ps) in enumerate(zip(self.labels, self.names, self.params))]}


class _FirstUse(TorchFunctionMode):
    """Records the first torch call that receives each watched tensor."""

    def __init__(self, watched: dict):
        super().__init__()
        self.watched = watched
        self.order: list[int] = []
        self.seen: set[int] = set()

    def _scan(self, x):
        if isinstance(x, torch.Tensor):
            i = id(x)
            if i in self.watched and i not in self.seen:
                self.seen.add(i)
                self.order.append(i)
        elif isinstance(x, (list, tuple)):
            for y in x:
                self._scan(y)
        elif isinstance(x, dict):
            for y in x.values():
                self._scan(y)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") != "__get__":  # reading .shape or .dtype is not a use
            self._scan(args)
            self._scan(kwargs)
        return func(*args, **kwargs)


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


def parameter_use_order(model: nn.Module, example_inputs) -> list[str]:
    """Names of the trainable parameters in the order one forward pass on ``example_inputs``
    first uses them (a parameter the pass never uses is absent). Buffers (BatchNorm running
    statistics) and the training mode are restored afterwards, so the trace leaves no trace.
    A model that fails on the inputs raises ``ValueError`` with the model's own message."""
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
    return [names[i] for i in mode.order]


def _owner(name: str) -> str:
    return name.rpartition(".")[0]


def _tied(model: nn.Module) -> dict[int, list[str]]:
    """``{id(parameter): [all its names]}`` for parameters registered under several names."""
    allnames: dict[int, list[str]] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        allnames.setdefault(id(p), []).append(n)
    return {i: ns for i, ns in allnames.items() if len(ns) > 1}


def model_layers(model: nn.Module, example_inputs=None, *, groups=None) -> ModelLayers:
    """Drop-Muon's layers of ``model``, input first.

    **From the trace** (``groups=None``): parameters are taken in the order the forward pass on
    ``example_inputs`` first uses them. A module owning a parameter with two or more dimensions
    (a linear map, a convolution, an embedding table) starts a new layer with all its parameters;
    a module owning only vectors (a norm's scale and shift, a free bias) joins the layer that ran
    last before it (or the first layer, if it runs before any matrix). So a layer is a matrix with
    the biases and norms applied after it, and freezing the layers below ``s`` freezes everything
    the forward pass runs before layer ``s``'s matrix: backward stops there.

    **From ``groups``**: a list, input first, of modules or iterables of parameters, one per layer.
    With ``example_inputs`` the order is checked against the trace: a grouping that is not
    input-first is an error (frozen "lower" layers that run last save nothing — backward still
    runs through the whole network).

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
    name_of = {id(p): n for n, p in named}
    tied = _tied(model)
    if groups is not None:
        return _from_groups(model, named, name_of, tied, groups, example_inputs)
    if example_inputs is None:
        raise ValueError("give an example batch (example_inputs) to trace the layers, or groups=[...]")
    order = parameter_use_order(model, example_inputs)
    unused = [n for n, _ in named if n not in set(order)]
    if unused:
        raise ValueError(f"parameter {unused[0]!r} is trainable but the forward pass never used it, so it belongs to no "
                         f"layer ({len(unused)} such); freeze it (requires_grad_(False)) or pass groups=[...]")
    by_name = dict(named)
    owners: dict[str, list[str]] = {}
    for n, _ in named:
        owners.setdefault(_owner(n), []).append(n)
    layer_of_owner: dict[str, int] = {}
    layers: list[list[str]] = []
    labels: list[str] = []
    pending: list[str] = []
    for n in order:
        own = _owner(n)
        if own in layer_of_owner:
            continue
        members = owners[own]
        if any(by_name[m].ndim >= 2 for m in members):
            layers.append(list(members))
            labels.append(own or "(model)")
            layer_of_owner[own] = len(layers) - 1
        elif layers:
            layers[-1].extend(members)
            layer_of_owner[own] = len(layers) - 1
        else:
            pending.extend(members)
            layer_of_owner[own] = 0
    layers[0][:0] = pending
    for i, ns in tied.items():
        if i in name_of and len({layer_of_owner.get(_owner(n)) for n in ns}) > 1:
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
