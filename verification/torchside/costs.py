"""Measured per-layer costs of a Drop-Muon training step (THEORY.md §5): wall-clock medians for
every set of updated layers, a least-squares fit of the cost model
``cost(S) = F + Σ_{j > min S} a_j + Σ_{j ∈ S} (w_j + u_j)``, and how well the fit predicts the time
of each RPT start ``s`` (the sets ``{s..b}``)."""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from theory import CostModel

from .optimizer import DropMuon, freeze_except

__all__ = ["CostMeasurement", "measure_costs"]


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@dataclass(frozen=True)
class CostMeasurement:
    """Median seconds per step for each measured set (``sets[k]`` ↔ ``seconds[k]``; the empty set is
    the forward pass alone), the fitted model and its per-start prediction."""

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
            "per_start": [{"s": s + 1, "measured_s": float(m), "predicted_s": float(p), "relative_error": float(e)}
                          for s, (m, p, e) in enumerate(zip(self.start_measured, self.start_predicted,
                                                            self.start_relative_error))],
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


def measure_costs(model, optimizer: DropMuon, loss_fn, inputs, targets, *, repeats: int = 7, warmup: int = 2,
                  sets="all", device="cpu", progress=None) -> CostMeasurement:
    """Time a training step for each set of updated layers (``"all"``: every subset, ``b ≤ 6``;
    ``"suffixes"``: the RPT sets and singletons) and the optimizer update of each layer alone; fit
    ``F, a_j, v_j = w_j + u_j`` by non-negative least squares; ``u_j`` is measured directly and
    ``w_j = max(v_j − u_j, 0)``. Model and optimizer states are restored afterwards."""
    from scipy.optimize import nnls

    from .._progress import Progress

    if not (isinstance(repeats, int) and repeats >= 3):
        raise ValueError(f"repeats must be an integer >= 3 (a median of repeats); got repeats = {repeats!r}")
    b = len(optimizer.layer_groups())
    if sets == "all":
        if b > 6:
            raise ValueError(f"timing all 2^b subsets needs b <= 6; got b = {b} (use sets='suffixes')")
        todo = [()] + [S for r in range(1, b + 1) for S in itertools.combinations(range(1, b + 1), r)]
    elif sets == "suffixes":
        todo = [()] + [tuple(range(s, b + 1)) for s in range(1, b + 1)] + [(s,) for s in range(1, b)]
    else:
        raise ValueError(f"sets must be 'all' or 'suffixes'; got sets = {sets!r}")
    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_opt = optimizer.state_dict()

    def clear_grads():
        for g in optimizer.param_groups:
            for p in g["params"]:
                p.grad = None

    def step(S):
        clear_grads()
        with freeze_except(optimizer, S):
            loss = loss_fn(model(inputs), targets)
            if S:
                loss.backward()
                optimizer.step()
        _sync(device)

    def timed(fn):
        for _ in range(warmup):
            fn()
        out = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return statistics.median(out)

    seconds = []
    upd = np.zeros(b)
    try:
        with Progress(len(todo) + b, "timing", enabled=progress) as bar:
            for S in todo:
                seconds.append(timed(lambda: step(S)))
                bar.update()
            # the update alone: a stored gradient, the optimizer step on that layer only
            clear_grads()
            with freeze_except(optimizer, range(1, b + 1)):
                loss_fn(model(inputs), targets).backward()
            grads = {id(p): p.grad for g in optimizer.param_groups for p in g["params"]}
            for j, gs in sorted(optimizer.layer_groups().items()):
                def only_j(gs=gs):
                    for g in optimizer.param_groups:
                        for p in g["params"]:
                            p.grad = grads[id(p)] if any(p is q for h in gs for q in h["params"]) else None
                    with torch.no_grad():
                        optimizer.step()
                    _sync(device)
                upd[j - 1] = timed(only_j)
                bar.update()
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_opt)
        clear_grads()
    seconds = np.array(seconds)
    A = _design(todo, b)
    x, _ = nnls(A, seconds)
    F, a, v = x[0], np.concatenate([[0.0], x[1:b]]), x[b:]
    rpt = [tuple(range(s, b + 1)) for s in range(1, b + 1)]
    measured = np.array([seconds[todo.index(S)] for S in rpt])
    predicted = _design(rpt, b) @ x
    return CostMeasurement(tuple(todo), seconds, float(F), a, np.maximum(v - upd, 0.0), np.minimum(upd, v),
                           measured, predicted, repeats, str(device))
