"""Bringing a model: a factory named by a built-in name or an import path
``PACKAGE.MODULE:FACTORY``, called with the data set, returning the model and optionally its loss
and metric; and the Drop-Muon optimizer for it, with layers from its ``dropmuon_layers()`` method
or from a forward trace (:mod:`dropmuon.verification.torchside.layers`)."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from dataclasses import dataclass
from typing import Callable

import torch

from .layers import first_line

__all__ = ["Built", "resolve_factory", "build_model", "optimizer_for", "default_data_for", "compile_per_start",
           "is_compiled", "warm_up_starts"]


@dataclass(frozen=True)
class Built:
    """What a factory gave: the model (on its device) and its loss and metric, or ``None`` for
    the data's defaults (:func:`~dropmuon.verification.torchside.tasks.objective_for`)."""

    model: torch.nn.Module
    loss: Callable | None
    metric: Callable | None


def resolve_factory(spec) -> tuple[Callable, str]:
    """``(factory, label)`` for a callable, a built-in model name (``cnn``, ``resnet``,
    ``transformer``) or an import path ``PACKAGE.MODULE:FACTORY`` (the current directory is on the
    import path, as for ``python -m``). A path that does not import, or names nothing callable, is
    a ``ValueError`` saying so in one line."""
    from .models import BUILTIN_MODELS

    if callable(spec):
        return spec, f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', type(spec).__name__)}"
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a model is a built-in name or PACKAGE.MODULE:FACTORY; got {spec!r}")
    if spec in BUILTIN_MODELS:
        return BUILTIN_MODELS[spec], spec
    if ":" not in spec:
        raise ValueError(f"unknown model {spec!r}: give a built-in name ({', '.join(BUILTIN_MODELS)}) or an import "
                         f"path PACKAGE.MODULE:FACTORY")
    modname, _, attr = spec.partition(":")
    if not modname or not attr:
        raise ValueError(f"a model import path looks like PACKAGE.MODULE:FACTORY; got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(modname)
    except Exception as e:  # ImportError, or an error raised by the user's module while importing
        raise ValueError(f"cannot import the model factory module {modname!r} (from {spec!r}): {first_line(e)}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"module {modname!r} has no attribute {attr!r} (from {spec!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{spec!r} is a {type(obj).__name__}, not a callable model factory")
    return obj, spec


def default_data_for(spec) -> str:
    """The data set a model trains on when none is named: the built-in model's own, else the
    handwritten digits."""
    from .models import DEFAULT_DATA

    return DEFAULT_DATA.get(spec, "digits") if isinstance(spec, str) else "digits"


def _takes_data(factory) -> bool:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
               for p in sig.parameters.values())


def _accepts(factory, name: str) -> bool:
    try:
        ps = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in ps or any(p.kind == p.VAR_KEYWORD for p in ps.values())


def build_model(factory, data, *, seed: int = 0, device="cpu", width: float | None = None, label: str = "") -> Built:
    """Call ``factory(data)`` (or ``factory()`` if it takes no argument; ``width=`` too when given
    and accepted) with torch's generator seeded by ``seed`` — so the initialisation depends on the
    seed only — and normalise what it returns: a module, ``(module, loss)``,
    ``(module, loss, metric)`` or a dict with keys ``model``, ``loss``, ``metric``."""
    label = label or getattr(factory, "__name__", "the model factory")
    kwargs = {"width": width} if width is not None and _accepts(factory, "width") else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        try:
            out = factory(data, **kwargs) if _takes_data(factory) else factory(**kwargs)
        except Exception as e:  # the user's factory: one line, naming it
            raise ValueError(f"the model factory {label!r} failed: {first_line(e)}") from None
    loss = metric = None
    if isinstance(out, dict):
        unknown = set(out) - {"model", "loss", "metric"}
        if unknown or "model" not in out:
            raise ValueError(f"the model factory {label!r} returned a dict with keys {sorted(out)}; use model, loss, metric")
        model, loss, metric = out["model"], out.get("loss"), out.get("metric")
    elif isinstance(out, (tuple, list)):
        if not 1 <= len(out) <= 3:
            raise ValueError(f"the model factory {label!r} returned {len(out)} items; give (model[, loss[, metric]])")
        model, loss, metric = (list(out) + [None, None])[:3]
    else:
        model = out
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"the model factory {label!r} returned a value of type {type(model).__name__}, not a torch.nn.Module "
                         f"(or (model, loss[, metric]))")
    for what, fn in (("loss", loss), ("metric", metric)):
        if fn is not None and not callable(fn):
            raise ValueError(f"the model factory {label!r} returned a {what} that is not callable "
                             f"({type(fn).__name__})")
    return Built(model.to(device), loss, metric)


def optimizer_for(model, data, *, lr: float, device="cpu", groups=None, **kwargs):
    """:meth:`DropMuon.from_model <dropmuon.verification.torchside.optimizer.DropMuon.from_model>` with the
    layers from ``groups``, else the model's ``dropmuon_layers()`` when it has one, else the forward
    trace on a few training examples."""
    from .optimizer import DropMuon

    if groups is None and callable(getattr(model, "dropmuon_layers", None)):
        groups = model.dropmuon_layers()
    example = data.x_train[:8].to(device)
    return DropMuon.from_model(model, example, groups=groups, lr=lr, **kwargs)


def compile_per_start(model: torch.nn.Module, nsets: int, *, backend: str = "inductor") -> torch.nn.Module:
    """``torch.compile(model)`` for Drop-Muon training: a step from start index ``s`` freezes the
    layers below ``s``, which changes which parameters need gradients, so the compiler keeps one
    graph per start index (``nsets``: the number of layers for RPT training, the number of timed
    sets for a cost measurement), plus the forward-only graphs of evaluation and of an empty
    layer set: its recompile limit is raised to allow them. The returned module shares
    the model's parameters; compile before timing with :func:`warm_up_starts`. ``backend`` is
    ``torch.compile``'s (the default, inductor, generates C++ or Triton kernels and needs a compiler)."""
    import torch._dynamo.config as dynamo_config

    need = int(nsets) + 4
    for name in ("recompile_limit", "cache_size_limit"):  # the name changed across torch versions
        if hasattr(dynamo_config, name) and getattr(dynamo_config, name) < need:
            setattr(dynamo_config, name, need)
    return torch.compile(model, backend=backend)


def is_compiled(model) -> bool:
    """Whether ``model`` is a ``torch.compile`` wrapper."""
    return getattr(model, "_orig_mod", None) is not None


def warm_up_starts(model, optimizer, loss_fn, inputs, targets) -> float:
    """Run one forward and backward pass per start index ``s`` (the RPT set ``{s..b}``) and one
    forward pass with every layer frozen, untimed and without an update, so that a compiled model
    builds each start's graph before training is timed; buffers (BatchNorm statistics), gradients
    and the random state are restored. Returns the seconds it took (the compilation)."""
    import time

    from .optimizer import freeze_except

    b = len(optimizer.layer_groups())
    buffers = [t.detach().clone() for t in model.buffers()]
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        # two rounds on fresh copies of the batch: the compiler's first graph is tied to its first
        # input tensor and is rebuilt when that is freed, which must happen here, not in training
        for _ in range(2):
            for S in [tuple(range(s, b + 1)) for s in range(1, b + 1)] + [()]:
                with freeze_except(optimizer, S):
                    loss = loss_fn(model(inputs.clone()), targets)
                    if S:
                        loss.backward()
                optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        for t, v in zip(model.buffers(), buffers):
            t.copy_(v)
    return time.perf_counter() - t0
