"""``DropMuon``: Muon applied to the layers a step samples, as a ``torch.optim.Optimizer``, with an
AdamW companion for a layer's non-matrix parameters (biases, norm scales).

A layer whose parameters have no gradient this step is skipped entirely — weights, momentum, AdamW
moments and weight decay untouched — exactly like ``torch.optim.Muon`` skips ``grad is None``. The
savings come from :func:`dropmuon_training_step`: for a step starting at layer ``s`` the layers
below ``s`` (all their parameters, matrices and vectors alike) do not require gradients, so
autograd stops at layer ``s`` (``docs/torch.md``). :meth:`DropMuon.from_model` derives the layers
of any ``nn.Module`` from a forward trace (:mod:`dropmuon.verification.torchside.layers`).
"""

from __future__ import annotations

import functools
import math
import sys
from contextlib import contextmanager
from typing import Iterable, Sequence

import torch
from torch import Tensor

from ..synthetic.newton_schulz import coefficients as ns_coefficients
from ..synthetic.newton_schulz import normalisation

__all__ = ["DropMuon", "dropmuon_training_step", "layers_step", "freeze_below", "freeze_except", "layer_matrix_shape",
           "route_parameter", "denormals_flushed", "ADAMW_DEFAULTS", "RADIUS_RULES"]

EPS = 1e-7  # torch.optim.Muon's normaliser guard

#: how a layer's Muon step length is set: ``"common"`` — Muon's one learning rate for every layer;
#: ``"inverse-inclusion"`` — layer ``i`` moves by ``lr/π_i`` (the theorems' constant radii
#: ``t_i = η/π_i``, ``π_i`` its inclusion probability)
RADIUS_RULES = ("common", "inverse-inclusion")

#: the AdamW companion's defaults (torch.optim.AdamW's, without weight decay: biases and norm
#: scales are conventionally not decayed)
ADAMW_DEFAULTS = dict(adamw_lr=1e-3, adamw_betas=(0.9, 0.999), adamw_eps=1e-8, adamw_weight_decay=0.0)


def layer_matrix_shape(shape: Sequence[int]) -> tuple[int, int]:
    """The matrix a parameter is treated as (docs/theory.md, notation): conv kernels ``C_out × C_in × k × k``
    become ``C_out × (C_in k k)``, biases ``m × 1``.

    >>> layer_matrix_shape((64, 1, 3, 3))
    (64, 9)
    >>> layer_matrix_shape((10,))
    (10, 1)
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        raise ValueError("a scalar parameter has no matrix shape")
    if len(shape) == 1:
        return shape[0], 1
    return shape[0], math.prod(shape[1:])


def route_parameter(shape: Sequence[int], *, kernel: bool = True) -> tuple[str, str]:
    """``(algorithm, reason)``: whether a parameter of ``shape`` goes to Muon (``"muon"``) or to
    the AdamW companion (``"adamw"``), and why. ``kernel`` says whether a tensor of three or more
    dimensions is a convolution kernel (:func:`~dropmuon.verification.torchside.layers.parameter_routes`
    tells it from the module; without a module it is assumed).

    * fewer than two dimensions (a bias, a norm's scale): AdamW — not a matrix;
    * a convolution kernel ``C_out × C_in × k × k``: Muon, as the matrix ``C_out × (C_in k k)``;
    * three or more dimensions and not a kernel (a ViT position embedding ``1 × 16 × 32``):
      AdamW — flattened to ``1 × 512`` its Muon step would be a normalised-gradient step, and
      ``torch.optim.Muon`` refuses any parameter that is not 2-D;
    * a matrix view ``m × n`` (:func:`layer_matrix_shape`) with ``m = 1`` or ``n = 1``: AdamW —
      a rank-one ``G = ‖G‖_F u vᵀ`` has the polar factor ``G/‖G‖_F``, so Muon's step would be a
      normalised-gradient step of fixed length, not an orthogonalised one;
    * any other matrix: Muon.

    >>> route_parameter((1, 16, 32), kernel=False)[0], route_parameter((8, 3, 3, 3))[0]
    ('adamw', 'muon')
    >>> route_parameter((1, 32))
    ('adamw', 'its matrix view 1×32 has a dimension 1: a Muon step would be a normalised-gradient step')
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2:
        return "adamw", f"a vector of shape {shape}: not a matrix"
    if len(shape) >= 3 and not kernel:
        return "adamw", (f"a {len(shape)}-D tensor {'×'.join(map(str, shape))} that is not a convolution kernel "
                         f"(torch.optim.Muon refuses it)")
    m, n = layer_matrix_shape(shape)
    if min(m, n) == 1:
        return "adamw", f"its matrix view {m}×{n} has a dimension 1: a Muon step would be a normalised-gradient step"
    if len(shape) >= 3:
        return "muon", f"a convolution kernel {'×'.join(map(str, shape))} as the matrix {m}×{n}"
    return "muon", f"a {m}×{n} matrix"


def _coefficients(ns, steps: int) -> list[tuple]:
    """Per-step ``(a, b, c)`` as Python floats (:func:`dropmuon.verification.synthetic.newton_schulz.coefficients`:
    a preset name or a table whose last row repeats); a single triple is used at every step."""
    if not isinstance(ns, str) and len(ns) == 3 and all(isinstance(v, (int, float)) for v in ns):
        ns = [tuple(ns)]
    return [tuple(float(v) for v in row) for row in ns_coefficients(ns, steps)]


def _newton_schulz(G: Tensor, coeffs, eps: float, dtype, scale: float = 1.0) -> Tensor:
    """``torch.optim.Muon``'s iteration (same operations, so the same bits for the default
    coefficients in bfloat16), with per-step coefficients."""
    X = G.to(dtype)
    tall = G.size(0) > G.size(1)
    if tall:
        X = X.T
    X = X / (scale * X.norm()).clamp(min=eps)
    for a, b, c in coeffs:
        A = X @ X.T
        B = torch.addmm(A, A, A, beta=b, alpha=c)
        X = torch.addmm(X, B, X, beta=a)
    return X.T if tall else X


def _polar(G: Tensor) -> Tensor:
    """Exact ``U Vᵀ`` by SVD (float64 for accuracy), in ``G``'s dtype."""
    U, _, Vh = torch.linalg.svd(G.double(), full_matrices=False)
    return (U @ Vh).to(G.dtype)


def _dynamo_free(name: str):
    """``torch.optim.Optimizer.<name>`` without importing ``torch._dynamo`` when nothing has.

    torch wraps ``add_param_group``, ``zero_grad``, ``state_dict`` and ``load_state_dict`` in
    ``torch._disable_dynamo``, which imports ``torch._dynamo`` on the first call (about 3 s of CPU,
    in every fresh process that builds an optimizer: a ``dropmuon train``, a spawned worker). The
    wrapper only keeps a compiler that is tracing out of the method; while ``torch._dynamo`` is not
    imported nothing can be tracing, so the undecorated method is the same call. Once it is
    imported (``torch.compile`` anywhere), torch's own wrapper runs."""
    wrapped = getattr(torch.optim.Optimizer, name)
    plain = getattr(wrapped, "__wrapped__", wrapped)

    @functools.wraps(plain)
    def method(self, *args, **kwargs):
        return (wrapped if "torch._dynamo" in sys.modules else plain)(self, *args, **kwargs)

    return method


class DropMuon(torch.optim.Optimizer):
    r"""Muon on the sampled layers' matrices, AdamW on their other parameters; unsampled layers
    (``grad is None``) are untouched.

    For each matrix parameter with a gradient ``G`` (viewed as the matrix :func:`layer_matrix_shape`)::

        B ← μB + (1 − μ)G            (torch's lerp form; β = 1 − μ weighs the new gradient)
        U = G + μ(B − G) if nesterov else B
        O = NS(U)  (or the exact polar factor with ``sharp="svd"``)
        W ← (1 − lr·wd) W − lr·sqrt(max(1, m/n)) · O

    with ``m × n`` the *flattened* shape — identical to ``torch.optim.Muon`` on 2-D parameters.
    ``ns_coefficients`` is a triple, a per-step table or a preset name of
    :data:`dropmuon.verification.synthetic.newton_schulz.PRESETS` (``"muon"``, ``"you"``, ``"polar-express"``, with its
    normalisation ``1.01‖U‖_F``);
    ``ns_dtype`` defaults to bfloat16 as in torch (use float32/float64 for accuracy).

    Parameters in a group with ``"algorithm": "adamw"`` take ``torch.optim.AdamW``'s step instead
    (``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``, ``W ← (1 − lr·wd)W − lr·m̂/(√v̂ + ε)`` with
    bias-corrected ``m̂, v̂``), with ``adamw_lr``, ``adamw_betas``, ``adamw_eps`` and
    ``adamw_weight_decay`` (:data:`ADAMW_DEFAULTS`). Both skip a parameter without a gradient, so
    the companion freezes in step with its layer.

    ``radius_rule`` (:data:`RADIUS_RULES`) sets each layer's step length. ``"common"`` (the
    default) is Muon's: every layer moves by ``lr``. ``"inverse-inclusion"`` is the radius rule of
    the sum-form theorems (docs/theory.md, constant radii ``t_i = η/π_i``): the Muon step of layer
    ``i`` is Muon's step at learning rate ``lr/π_i``, where ``π_i = P(i ∈ S)`` is the layer's
    inclusion probability under the sampling schedule — decoupled weight decay included, so the
    whole displacement ``−lr(wd·W + sqrt(max(1, m/n))·O)`` is scaled by ``1/π_i`` and the expected
    move of a layer, ``π_i · lr/π_i``, is the same ``lr`` for every layer. The probabilities come
    from :meth:`set_inclusion` (or ``inclusion=``); :func:`~dropmuon.verification.torchside.training.train`
    sets them from its schedule. With ``π ≡ 1`` (full sampling) ``lr/1.0 == lr`` exactly, so the
    update is the common rule's bit for bit. The rule does nothing to the AdamW companion: its
    parameters keep ``adamw_lr`` (the radii belong to the LMO steps the theorems analyse; no
    theorem here covers an adaptive step scaled by ``1/π_i``). A step refuses a layer whose
    ``lr/π_i · weight_decay`` exceeds 1 (the decay would flip the weights' sign) and a layer with
    ``π_i = 0`` that has a gradient (a layer the schedule never samples has no radius).

    Param groups carry a ``"layer"`` key (1-based, input first) used by
    :func:`dropmuon_training_step`. ``layers=[params_1, params_2, …]`` builds them: in each layer
    :func:`route_parameter` sends the matrices to Muon and the rest (biases, norm scales, matrices
    with a dimension 1) to the AdamW companion; with bare parameters a tensor of three or more
    dimensions is taken for a convolution kernel. For a whole model use :meth:`from_model`, which
    finds the layers itself and tells kernels from other tensors by their modules.
    """

    # torch's methods, without the ~3 s import of torch._dynamo in a process that never compiles
    add_param_group = _dynamo_free("add_param_group")
    zero_grad = _dynamo_free("zero_grad")
    state_dict = _dynamo_free("state_dict")
    load_state_dict = _dynamo_free("load_state_dict")

    def __init__(self, params: Iterable | None = None, lr: float = 0.02, weight_decay: float = 0.0,
                 momentum: float = 0.95, nesterov: bool = True, ns_coefficients="muon", ns_steps: int = 5,
                 eps: float = EPS, sharp: str = "newton-schulz", ns_dtype=torch.bfloat16,
                 adjust_lr: bool = True, *, layers: Sequence[Iterable[Tensor]] | None = None,
                 adamw_lr: float = ADAMW_DEFAULTS["adamw_lr"], adamw_betas=ADAMW_DEFAULTS["adamw_betas"],
                 adamw_eps: float = ADAMW_DEFAULTS["adamw_eps"],
                 adamw_weight_decay: float = ADAMW_DEFAULTS["adamw_weight_decay"],
                 radius_rule: str = "common", inclusion: Sequence[float] | None = None):
        if (params is None) == (layers is None):
            raise ValueError("give either params or layers=[params of layer 1, params of layer 2, ...]")
        if layers is not None:
            params = []
            for j, ps in enumerate(layers, start=1):
                ps = list(ps)
                if not ps:
                    raise ValueError(f"layer {j} has no parameters")
                mats = [p for p in ps if route_parameter(p.shape)[0] == "muon"]
                vecs = [p for p in ps if route_parameter(p.shape)[0] == "adamw"]
                if mats:
                    params.append({"params": mats, "layer": j, "algorithm": "muon"})
                if vecs:
                    params.append({"params": vecs, "layer": j, "algorithm": "adamw"})
        for name, v in (("lr", lr), ("adamw_lr", adamw_lr)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a non-negative number; got {name} = {v!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got momentum = {momentum!r}")
        for name, v in (("weight_decay", weight_decay), ("adamw_weight_decay", adamw_weight_decay)):
            if not (isinstance(v, (int, float)) and v >= 0):
                raise ValueError(f"{name} must be non-negative; got {name} = {v!r}")
        if not (len(adamw_betas) == 2 and all(0.0 <= b_ < 1.0 for b_ in adamw_betas)):
            raise ValueError(f"adamw_betas must be two numbers in [0, 1); got adamw_betas = {adamw_betas!r}")
        if not adamw_eps > 0:
            raise ValueError(f"adamw_eps must be positive; got adamw_eps = {adamw_eps!r}")
        if sharp not in ("newton-schulz", "svd"):
            raise ValueError(f"sharp must be 'newton-schulz' or 'svd'; got sharp = {sharp!r}")
        if not (isinstance(ns_steps, int) and ns_steps >= 1):
            raise ValueError(f"ns_steps must be a positive integer; got ns_steps = {ns_steps!r}")
        _coefficients(ns_coefficients, ns_steps)  # a clear error for an unknown preset or a bad table
        if radius_rule not in RADIUS_RULES:
            raise ValueError(f"radius_rule must be one of {', '.join(RADIUS_RULES)}; got radius_rule = {radius_rule!r}")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=ns_coefficients, ns_steps=ns_steps, eps=eps, sharp=sharp,
                        ns_dtype=ns_dtype, adjust_lr=adjust_lr, layer=None, algorithm="muon",
                        adamw_lr=adamw_lr, adamw_betas=tuple(adamw_betas), adamw_eps=adamw_eps,
                        adamw_weight_decay=adamw_weight_decay, radius_rule=radius_rule, inclusion=None)
        super().__init__(params, defaults)
        self.model_layers = None  # set by from_model: the layers' names and parameters
        for g in self.param_groups:
            if g["algorithm"] not in ("muon", "adamw"):
                raise ValueError(f"a param group's algorithm must be 'muon' or 'adamw'; got {g['algorithm']!r}")
            for p in g["params"]:
                if p.ndim == 0 and g["algorithm"] == "muon":
                    raise ValueError(f"DropMuon needs parameters with at least one dimension; got shape {tuple(p.shape)}")
            if g.get("radius_rule", "common") not in RADIUS_RULES:
                raise ValueError(f"a param group's radius_rule must be one of {', '.join(RADIUS_RULES)}; "
                                 f"got {g['radius_rule']!r}")
        if inclusion is not None:
            self.set_inclusion(inclusion)

    def set_inclusion(self, inclusion: Sequence[float]) -> None:
        """Record ``π_i``, the probability that a step samples layer ``i`` (input first, one per
        layer), for the ``"inverse-inclusion"`` radius rule; each param group keeps its layer's
        value (as ``"inclusion"``, so it travels with ``state_dict``). Under the common rule the
        values are kept but change nothing.

        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> opt = DropMuon.from_model(net, torch.zeros(2, 4), radius_rule="inverse-inclusion")
        >>> opt.set_inclusion([0.5, 1.0])
        >>> [(g["layer"], g["algorithm"], g["inclusion"]) for g in opt.param_groups]
        [(1, 'muon', 0.5), (1, 'adamw', 0.5), (2, 'muon', 1.0), (2, 'adamw', 1.0)]
        """
        groups = self.layer_groups()
        if not groups or any(g.get("layer") is None for g in self.param_groups):
            raise ValueError("inclusion probabilities are per layer, but the optimizer's param groups carry no "
                             "'layer' key; build it with layers=[...] or from_model")
        pi = [float(v) for v in inclusion]
        if len(pi) != len(groups):
            raise ValueError(f"inclusion has {len(pi)} entries but the optimizer has {len(groups)} layers")
        for j, v in enumerate(pi, start=1):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"inclusion probabilities must be in [0, 1]; got inclusion[{j}] = {v!r} (layer {j})")
        for g in self.param_groups:
            g["inclusion"] = pi[int(g["layer"]) - 1]

    def _group_lr(self, g) -> float:
        """The learning rate of a Muon group's step: ``lr``, or ``lr/π`` under the
        inverse-inclusion radius rule (checked: π known, and the decay factor positive)."""
        if g.get("radius_rule", "common") == "common":  # a state_dict saved before the rule existed: common
            return g["lr"]
        pi = g.get("inclusion")
        if pi is None:
            raise ValueError(f"radius_rule 'inverse-inclusion' needs the layers' inclusion probabilities; layer "
                             f"{g.get('layer')} has none (call set_inclusion(pi); train does it from its schedule)")
        if pi == 0:
            raise ValueError(f"layer {g.get('layer')} has inclusion probability 0 but was updated: under "
                             f"radius_rule 'inverse-inclusion' its radius lr/0 is undefined")
        lr = g["lr"] / pi
        if lr * g["weight_decay"] > 1:
            raise ValueError(f"radius_rule 'inverse-inclusion' gives layer {g.get('layer')} lr/pi * weight_decay = "
                             f"{lr * g['weight_decay']:g} > 1 (pi = {pi:g}): the decay would flip the weights' sign")
        return lr

    @classmethod
    def from_model(cls, model, example_inputs, *, groups=None, embeddings: str = "adamw", **kwargs) -> "DropMuon":
        """A :class:`DropMuon` for any ``nn.Module``: its layers, input first, found by
        :func:`dropmuon.verification.torchside.layers.model_layers` from one forward pass on
        ``example_inputs`` (a batch the model accepts), or taken from ``groups`` (modules or
        parameter lists, input first; checked against the trace). Each layer's matrices go to
        Muon and the rest to the AdamW companion, frozen with it, by
        :func:`~dropmuon.verification.torchside.layers.parameter_routes`: biases, norm
        parameters, tensors of three or more dimensions that are not convolution kernels, matrices
        with a dimension 1, weight norm's magnitudes and — unless ``embeddings="muon"`` (Muon is
        meant for hidden linear maps) — ``nn.Embedding`` tables go to AdamW. Every trainable
        parameter belongs to exactly one layer, or a ``ValueError`` names the one that does not.
        ``kwargs`` go to the constructor; the layers, with each parameter's optimizer and why,
        are kept as ``optimizer.model_layers``.

        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
        >>> opt = DropMuon.from_model(net, torch.zeros(2, 4))
        >>> opt.model_layers.names
        (('0.weight', '0.bias', '1.weight', '1.bias'), ('2.weight', '2.bias'))
        >>> [(g["layer"], g["algorithm"], len(g["params"])) for g in opt.param_groups]
        [(1, 'muon', 1), (1, 'adamw', 3), (2, 'muon', 1), (2, 'adamw', 1)]
        """
        from .layers import model_layers

        ml = model_layers(model, example_inputs, groups=groups, embeddings=embeddings)
        params = []
        for j, (ps, algs) in enumerate(zip(ml.params, ml.algorithms), start=1):
            mats = [p for p, a in zip(ps, algs) if a == "muon"]
            rest = [p for p, a in zip(ps, algs) if a == "adamw"]
            if mats:
                params.append({"params": mats, "layer": j, "algorithm": "muon"})
            if rest:
                params.append({"params": rest, "layer": j, "algorithm": "adamw"})
        opt = cls(params, **kwargs)
        opt.model_layers = ml
        return opt

    @torch.no_grad()
    def step(self, closure=None):
        """One step on every parameter that has a gradient; the others are not touched."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for g in self.param_groups:
            if g["algorithm"] == "adamw":
                self._adamw(g)
                continue
            coeffs = _coefficients(g["ns_coefficients"], g["ns_steps"])
            scale = normalisation(g["ns_coefficients"]) if isinstance(g["ns_coefficients"], str) else 1.0
            mu = g["momentum"]
            group_lr = None  # checked once, and only for a group that has a parameter to update
            for p in g["params"]:
                if p.grad is None:
                    continue  # frozen this step: weights, momentum and decay untouched
                if group_lr is None:
                    group_lr = self._group_lr(g)
                grad = p.grad.reshape(layer_matrix_shape(p.shape))
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grad)
                buf = state["momentum_buffer"]
                buf.lerp_(grad, 1 - mu)
                upd = grad.lerp(buf, mu) if g["nesterov"] else buf
                if g["sharp"] == "svd":
                    O = _polar(upd)  # noqa: E741
                else:
                    O = _newton_schulz(upd, coeffs, g["eps"], g["ns_dtype"], scale)  # noqa: E741
                m, n = grad.shape
                lr = group_lr * (math.sqrt(max(1.0, m / n)) if g["adjust_lr"] else 1.0)
                p.mul_(1 - group_lr * g["weight_decay"])
                p.add_(O.reshape(p.shape), alpha=-lr)
        return loss

    def _adamw(self, g) -> None:
        """``torch.optim.AdamW``'s step (single-tensor form) on the group's parameters that have a
        gradient; a frozen parameter keeps its moments and step count."""
        b1, b2 = g["adamw_betas"]
        lr, eps, wd = g["adamw_lr"], g["adamw_eps"], g["adamw_weight_decay"]
        for p in g["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "exp_avg" not in state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            p.mul_(1 - lr * wd)
            m.lerp_(p.grad, 1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(1 - b2 ** t)).add_(eps)
            p.addcdiv_(m, denom, value=-lr / (1 - b1 ** t))

    def layer_groups(self) -> dict[int, list]:
        """``{layer: [param groups]}`` for groups with a ``"layer"`` key."""
        out: dict[int, list] = {}
        for g in self.param_groups:
            if g.get("layer") is not None:
                out.setdefault(int(g["layer"]), []).append(g)
        return out


@contextmanager
def freeze_except(optimizer: DropMuon, S):
    """Within the block only layers in ``S`` (1-based) require gradients; the others have
    ``grad = None``, so autograd stops at ``min S`` and forms weight gradients for ``S`` alone.
    Restored afterwards."""
    groups = optimizer.layer_groups()
    if not groups:
        raise ValueError("the optimizer's param groups carry no 'layer' key; build it with layers=[...]")
    S = set(S)
    bad = [j for j in S if j not in groups]
    if bad:
        raise ValueError(f"layers {sorted(bad)} are not among the optimizer's layers {sorted(groups)}")
    saved = []
    for j, gs in groups.items():
        for g in gs:
            for p in g["params"]:
                saved.append((p, p.requires_grad))
                if j not in S:
                    p.requires_grad_(False)
                    p.grad = None
    try:
        yield
    finally:
        for p, r in saved:
            p.requires_grad_(r)


def _rpt_set(optimizer: DropMuon, start: int) -> range:
    groups = optimizer.layer_groups()
    if not groups:
        raise ValueError("the optimizer's param groups carry no 'layer' key; build it with layers=[...]")
    b = max(groups)
    if not (isinstance(start, int) and 1 <= start <= b):
        raise ValueError(f"start layer must be in 1..{b}; got start = {start!r}")
    return range(start, b + 1)


def freeze_below(optimizer: DropMuon, start: int):
    """:func:`freeze_except` for the RPT set ``{start, …, b}``: a backward pass stops at layer
    ``start``."""
    return freeze_except(optimizer, _rpt_set(optimizer, start))


def layers_step(model, optimizer: DropMuon, loss_fn, inputs: Tensor, targets: Tensor, S) -> Tensor:
    """One step updating exactly the layers in ``S`` (1-based): the others are frozen, so the
    backward pass stops at ``min S`` and forms weight gradients for ``S`` alone, and their weights
    and momentum stay bit for bit unchanged. An empty ``S`` pays the forward pass only. Returns the
    loss."""
    S = tuple(S)
    if not S:
        with torch.no_grad():
            return loss_fn(model(inputs), targets)
    with freeze_except(optimizer, S):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        if not (torch.is_tensor(loss) and loss.ndim == 0):
            got = f"a tensor of shape {tuple(loss.shape)}" if torch.is_tensor(loss) else type(loss).__name__
            raise ValueError(f"the loss must return a scalar; got {got} (reduce it, e.g. with .mean())")
        loss.backward()
        optimizer.step()
    return loss.detach()


def dropmuon_training_step(model, optimizer: DropMuon, loss_fn, inputs: Tensor, targets: Tensor,
                           start: int) -> Tensor:
    """One Drop-Muon step with RPT start layer ``start``: :func:`layers_step` on ``{start..b}``
    (lower layers and the input do not require gradients, so autograd stops at ``start``).
    Returns the loss."""
    return layers_step(model, optimizer, loss_fn, inputs, targets, _rpt_set(optimizer, start))


def denormals_flushed() -> float:
    """The fraction of a large float32 elementwise product over subnormal inputs that came out as
    zero: 1.0 when every thread of torch's CPU pool flushes subnormals (``torch.set_flush_denormal``),
    0.0 when none does, in between when only some do.

    Why it matters: late in training the gradients shrink into the subnormal range
    (``|x| < 1.2e-38``), and x86 CPUs handle subnormals on a slow path. On the paper's CNN at lr 0.1,
    a full Muon step went from ~65 ms to ~105 ms after 40 steps (2-core CPU), while Drop-Muon steps,
    which skip most of that work, slowed far less: without flushing, a CPU comparison credits
    Drop-Muon with a speed-up that comes from the floating-point slow path, not from computing
    less. ``torch.set_flush_denormal(True)`` sets the flag of the *calling* thread; worker threads
    inherit it only when they are created afterwards, so it must run before torch's first parallel
    operation — the ``dropmuon`` torch commands and the benchmarks do that first thing.
    """
    x = torch.full((1 << 20,), 1e-39, dtype=torch.float32)
    return float(((x * 1.0) == 0).float().mean())
