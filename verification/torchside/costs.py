"""Measured per-layer costs of a Drop-Muon training step (the cost model of docs/theory.md): wall-clock medians for
every set of updated layers, a least-squares fit of the cost model
``cost(S) = F + Σ_{j > min S} a_j + Σ_{j ∈ S} (w_j + u_j)``, and how well the fit predicts the time
of each RPT start ``s`` (the sets ``{s..b}``)."""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from dropmuon.theory import CostModel

from .optimizer import DropMuon, freeze_except, layers_step

__all__ = ["CostMeasurement", "measure_costs", "layer_sets", "activation_memory", "ALL_SETS_MAX_LAYERS"]


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@dataclass(frozen=True)
class CostMeasurement:
    """Median seconds per step for each measured set (``sets[k]`` ↔ ``seconds[k]``; the empty set is
    the forward pass alone), the fitted model and its per-start prediction, and an out-of-sample
    check: the model fitted on the ``2b`` core sets alone (empty, RPT starts, singletons) predicting
    every other measured set (``holdout_sets`` ↔ ``holdout_relative_error``; empty when no other
    set was measured)."""

    sets: tuple
    seconds: np.ndarray
    forward: float
    activation: np.ndarray
    weight: np.ndarray
    update: np.ndarray
    start_measured: np.ndarray
    start_predicted: np.ndarray
    repeats: int
    device: str
    holdout_sets: tuple = ()
    holdout_relative_error: np.ndarray = field(default_factory=lambda: np.zeros(0))
    start_memory: tuple = ()

    @property
    def nlayers(self) -> int:
        return len(self.weight)

    @property
    def start_relative_error(self) -> np.ndarray:
        """``|predicted − measured| / measured`` for each start ``s``."""
        return np.abs(self.start_predicted - self.start_measured) / self.start_measured

    def cost_model(self) -> CostModel:
        """The fitted model as a :class:`theory.CostModel` (seconds)."""
        return CostModel(forward=self.forward, activation=self.activation, weight=self.weight, update=self.update)

    def as_dict(self) -> dict:
        return {
            "device": self.device, "repeats": self.repeats,
            "sets": [list(S) for S in self.sets], "seconds": self.seconds.tolist(),
            "forward": self.forward, "activation": self.activation.tolist(), "weight": self.weight.tolist(),
            "update": self.update.tolist(),
            "per_start": [dict({"s": s + 1, "measured_s": float(m), "predicted_s": float(p),
                                "relative_error": float(e)},
                               **(self.start_memory[s] if s < len(self.start_memory) else {}))
                          for s, (m, p, e) in enumerate(zip(self.start_measured, self.start_predicted,
                                                            self.start_relative_error))],
            "out_of_sample": {
                "fitted_on": "empty set, RPT starts and singletons",
                "sets": [list(S) for S in self.holdout_sets],
                "relative_error": self.holdout_relative_error.tolist(),
                "median": float(np.median(self.holdout_relative_error)) if len(self.holdout_sets) else None,
                "max": float(self.holdout_relative_error.max()) if len(self.holdout_sets) else None,
            },
        }


def _design(sets, b):
    """Rows of the linear model in the unknowns (F, a_2..a_b, v_1..v_b), v = w + u."""
    rows = []
    for S in sets:
        r = np.zeros(1 + (b - 1) + b)
        r[0] = 1.0
        if S:
            s = min(S)
            for j in range(s + 1, b + 1):
                r[1 + (j - 2)] = 1.0
            for j in S:
                r[b + (j - 1)] = 1.0
        rows.append(r)
    return np.array(rows)


#: the most layers for which ``sets="auto"`` times every subset (2^6 = 64 sets)
ALL_SETS_MAX_LAYERS = 6


def layer_sets(b: int, sets="auto", seed: int = 0) -> list[tuple]:
    """The layer sets to time for ``b`` layers: ``"all"`` — every subset (``b ≤ 10``); ``"suffixes"``
    — the empty set, the RPT sets ``{s..b}`` and the singletons ``{s}``, ``s < b`` (``2b`` sets:
    as many as the cost model has unknowns); ``"auto"`` — all for ``b ≤ 6``, else the suffixes plus
    ``2b`` further subsets drawn with ``seed`` (uniformly over non-empty subsets not already
    there), so the fit is over-determined and checked on sets that are not RPT starts.

    >>> layer_sets(3, "suffixes")
    [(), (1, 2, 3), (2, 3), (3,), (1,), (2,)]
    >>> len(layer_sets(4)), len(layer_sets(8)), len(layer_sets(8, seed=1))
    (16, 32, 32)
    """
    if not (isinstance(b, int) and b >= 1):
        raise ValueError(f"the number of layers must be a positive integer; got {b!r}")
    if sets == "all" or (sets == "auto" and b <= ALL_SETS_MAX_LAYERS):
        if b > 10:
            raise ValueError(f"timing all 2^b subsets needs b <= 10; got b = {b} (use sets='auto')")
        return [()] + [S for r in range(1, b + 1) for S in itertools.combinations(range(1, b + 1), r)]
    if sets not in ("suffixes", "auto"):
        raise ValueError(f"sets must be 'auto', 'all' or 'suffixes'; got sets = {sets!r}")
    todo = [()] + [tuple(range(s, b + 1)) for s in range(1, b + 1)] + [(s,) for s in range(1, b)]
    if sets == "auto":
        rng = np.random.default_rng([seed, b])
        have = set(todo)
        want = len(todo) + 2 * b
        while len(todo) < min(want, 2 ** b):
            S = tuple(int(j) + 1 for j in np.flatnonzero(rng.random(b) < 0.5))
            if S not in have:
                have.add(S)
                todo.append(S)
    return todo


def activation_memory(model, optimizer: DropMuon, loss_fn, inputs, targets, S, device="cpu") -> dict:
    """The memory a step updating the layers ``S`` keeps for its backward pass: ``saved_bytes``,
    the bytes of the distinct tensors autograd saves during the forward pass (counted with
    ``torch.autograd.graph.saved_tensors_hooks``; parameters, which exist anyway, excluded). It is
    exact and the same on every device: with the layers below ``min S`` frozen, their inputs are
    not saved, so truncation saves memory as well as time. On CUDA also ``peak_bytes``, the rise of
    ``torch.cuda.max_memory_allocated`` over the memory in use before the step (activations,
    gradients and the optimizer's temporaries). The step's update is not taken: weights and
    optimizer state are unchanged.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    >>> opt = DropMuon(layers=[list(net[0].parameters()), list(net[2].parameters())])
    >>> sq = lambda out, y: (out - y).square().mean()
    >>> x, y = torch.zeros(4, 5), torch.zeros(4, 3)
    >>> [activation_memory(net, opt, sq, x, y, S)["saved_bytes"] for S in [(1, 2), (2,)]]  # 4-byte floats
    [240, 160]
    """
    params = {p.untyped_storage().data_ptr() for g in optimizer.param_groups for p in g["params"]}
    params |= {p.untyped_storage().data_ptr() for p in model.parameters()}
    spans: dict[int, list] = {}  # storage -> [first, end) bytes of it that saved tensors reach

    def pack(t):
        try:
            ptr = t.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):  # a tensor without plain storage: counted by size
            spans.setdefault(id(t), [0, t.numel() * t.element_size()])
            return t
        if ptr not in params and t.numel():
            # a view (an input batch sliced from the data set, a chunk) keeps alive only the part it
            # reaches in a storage that exists anyway: count that part, once per storage
            first = t.storage_offset() * t.element_size()
            end = first + (1 + sum((n - 1) * abs(st) for n, st in zip(t.shape, t.stride()))) * t.element_size()
            span = spans.setdefault(ptr, [first, end])
            span[0], span[1] = min(span[0], first), max(span[1], end)
        return t

    cuda = torch.device(device).type == "cuda"
    out = {}
    with freeze_except(optimizer, S):
        if cuda:
            _sync(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = loss_fn(model(inputs), targets)
        if cuda:
            loss.backward()
            _sync(device)
            out["peak_bytes"] = int(torch.cuda.max_memory_allocated(device) - before)
        del loss
        for g in optimizer.param_groups:
            for p in g["params"]:
                p.grad = None
    out["saved_bytes"] = int(sum(end - first for first, end in spans.values()))
    return out


def measure_costs(model, optimizer: DropMuon, loss_fn, inputs, targets, *, repeats: int = 7, warmup: int = 2,
                  sets="auto", device="cpu", progress=None, seed: int = 0) -> CostMeasurement:
    """Time a training step for each set of updated layers (:func:`layer_sets`: every subset for
    up to 6 layers; beyond, the RPT sets, singletons and sampled other sets) and the optimizer
    update of each layer alone, and fit the cost model.

    Timing runs in *rounds*: each round times every case once, in an order shuffled with
    ``seed``, and each case's time is the median over ``repeats`` rounds (after ``warmup`` untimed
    rounds). Interleaving spreads slow drifts of the machine (frequency scaling, other processes)
    over all cases instead of loading them onto whichever case was timed during the drift.

    The fit minimises the *relative* error, ``Σ_S ((A x)_S − t_S)² / t_S²`` over non-negative
    ``x = (F, a_2..a_b, v_1..v_b)`` with ``v_j = w_j + u_j`` (the goal is a relative accuracy per
    start, and an absolute fit lets the long steps dominate the short ones); ``u_j`` is measured
    directly and ``w_j = max(v_j − u_j, 0)``. Model and optimizer states are restored afterwards.
    On a CPU, call ``torch.set_flush_denormal(True)`` before torch's first parallel operation
    (:func:`~dropmuon.verification.torchside.optimizer.denormals_flushed` says why).
    """
    from scipy.optimize import nnls

    from ..runs._progress import Progress

    if not (isinstance(repeats, int) and repeats >= 3):
        raise ValueError(f"repeats must be an integer >= 3 (a median of repeats); got repeats = {repeats!r}")
    if not (isinstance(warmup, int) and warmup >= 0):
        raise ValueError(f"warmup must be a non-negative integer; got warmup = {warmup!r}")
    from .layers import check_optimizer

    b = len(optimizer.layer_groups())
    todo = layer_sets(b, sets, seed)
    check_optimizer(model, optimizer, inputs[:8])  # a parameter outside the layers would defeat the truncation
    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_opt = optimizer.state_dict()

    def clear_grads():
        for g in optimizer.param_groups:
            for p in g["params"]:
                p.grad = None

    def step(S):
        layers_step(model, optimizer, loss_fn, inputs, targets, S)
        _sync(device)

    layer_params = {j: {id(q) for h in gs for q in h["params"]} for j, gs in optimizer.layer_groups().items()}

    def update_only(j, grads):
        for g in optimizer.param_groups:
            for p in g["params"]:
                p.grad = grads[id(p)] if id(p) in layer_params[j] else None
        with torch.no_grad():
            optimizer.step()
        _sync(device)

    params = [p for g in optimizer.param_groups for p in g["params"]]
    saved_params = [p.detach().clone() for p in params]
    saved_state = {p: {k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in optimizer.state[p].items()}
                   for p in params if p in optimizer.state}

    def restore():
        # in place, so the restored tensors keep their memory (and stay in cache) as in training
        with torch.no_grad():
            for p, w in zip(params, saved_params):
                p.copy_(w)
            for p in params:
                if p not in saved_state:
                    optimizer.state.pop(p, None)
                    continue
                st = optimizer.state[p]
                for k, v in saved_state[p].items():
                    if torch.is_tensor(v) and torch.is_tensor(st.get(k)):
                        st[k].copy_(v)
                    else:
                        st[k] = v.clone() if torch.is_tensor(v) else v

    rng = np.random.default_rng(seed)
    try:
        # a stored full gradient for the update-alone cases
        clear_grads()
        with freeze_except(optimizer, range(1, b + 1)):
            loss_fn(model(inputs), targets).backward()
        grads = {id(p): p.grad for g in optimizer.param_groups for p in g["params"]}
        cases = [("set", S) for S in todo] + [("update", j) for j in range(1, b + 1)]

        def run(case):
            kind, arg = case
            if kind == "set":
                step(arg)
            else:
                update_only(arg, grads)

        times = [[] for _ in cases]
        with Progress(warmup + repeats, "timing rounds", enabled=progress) as bar:
            for r in range(warmup + repeats):
                for c in rng.permutation(len(cases)):
                    # every case starts from the measured state: repeated steps on one batch would
                    # otherwise drift the weights far from training (at lr 0.1 into values that
                    # underflow to subnormal floats, which made CPU steps 2x slower)
                    restore()
                    run(cases[c])  # untimed: warms the caches for this case as in a training loop
                    _sync(device)
                    t0 = time.perf_counter()
                    run(cases[c])
                    dt = time.perf_counter() - t0
                    if r >= warmup:
                        times[c].append(dt)
                bar.update()
        # memory per RPT start, after the timing (the hooks would slow the timed steps)
        memory = tuple(activation_memory(model, optimizer, loss_fn, inputs, targets, range(s, b + 1), device)
                       for s in range(1, b + 1))
    finally:
        model.load_state_dict(saved_model)  # weights, buffers and anything outside the optimizer
        optimizer.load_state_dict(saved_opt)
        clear_grads()
    med = np.array([statistics.median(t) for t in times])
    seconds, upd = med[:len(todo)], med[len(todo):]
    A = _design(todo, b)
    x, _ = nnls(A / seconds[:, None], np.ones_like(seconds))
    F, a, v = x[0], np.concatenate([[0.0], x[1:b]]), x[b:]
    rpt = [tuple(range(s, b + 1)) for s in range(1, b + 1)]
    measured = np.array([seconds[todo.index(S)] for S in rpt])
    predicted = _design(rpt, b) @ x
    # out of sample: fit on the core sets alone (as many as the unknowns), predict the others
    core = set(layer_sets(b, "suffixes"))
    held = [k for k, S in enumerate(todo) if S not in core]
    fit = [k for k, S in enumerate(todo) if S in core]
    held_err = np.zeros(0)
    if held:
        xc, _ = nnls(A[fit] / seconds[fit, None], np.ones(len(fit)))
        held_err = np.abs(A[held] @ xc - seconds[held]) / seconds[held]
    return CostMeasurement(tuple(todo), seconds, float(F), a, np.maximum(v - upd, 0.0), np.minimum(upd, v),
                           measured, predicted, repeats, str(device), tuple(todo[k] for k in held), held_err,
                           memory)
