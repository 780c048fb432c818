"""Measured layer-wise constants of a network along a training trajectory, in each layer's own
norm (spectral norm of the flattened matrix; dual: nuclear):

* ``L̂_i = ‖∇_i f(X') − ∇_i f(X)‖_nuc / ‖X'_i − X_i‖_op`` for consecutive iterates on the *same*
  minibatch (Gluon's estimator, THEORY.md §6);
* the ``(L0_i, L1_i)`` fit ``L̂_i ≈ L0_i + L1_i ‖∇_i f(X)‖_nuc`` by least squares with a penalty on
  under-estimation (asymmetric weights, non-negative coefficients);
* for comparison, the Euclidean top eigenvalue of layer ``i``'s Hessian block by
  Hessian-vector-product power iteration.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .optimizer import DropMuon, layer_matrix_shape

__all__ = ["LayerConstants", "fit_l0l1", "hessian_top_eigenvalue", "estimate_constants", "UNDER_PENALTY"]

#: weight of an under-estimated point (observation above the fitted line) relative to an over-estimated one
UNDER_PENALTY = 100.0


def _mat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(layer_matrix_shape(t.shape)).double()


def _nuc(t):
    return float(torch.linalg.svdvals(_mat(t)).sum())


def _op(t):
    return float(torch.linalg.svdvals(_mat(t))[0])


def fit_l0l1(gnorms, L_hat, *, under_penalty: float = UNDER_PENALTY, iterations: int = 50):
    """``(L0, L1) ≥ 0`` minimising ``Σ w_k (L̂_k − L0 − L1 g_k)²`` with ``w_k = under_penalty``
    where the line is below the observation, 1 otherwise (iteratively reweighted; the weights settle
    in a few rounds).

    >>> L0, L1 = fit_l0l1([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])
    >>> round(L0, 6), round(L1, 6)
    (0.5, 1.0)
    """
    from scipy.optimize import lsq_linear

    g = np.asarray(gnorms, dtype=float)
    y = np.asarray(L_hat, dtype=float)
    if g.shape != y.shape or g.ndim != 1 or g.size < 2:
        raise ValueError(f"need two matching vectors of at least 2 points; got shapes {g.shape} and {y.shape}")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(y))):
        raise ValueError("the estimates contain non-finite values")
    A = np.column_stack([np.ones_like(g), g])
    w = np.ones_like(y)
    x = np.zeros(2)
    for _ in range(iterations):
        sw = np.sqrt(w)
        x = lsq_linear(A * sw[:, None], y * sw, bounds=(0, np.inf)).x
        w_new = np.where(y - A @ x > 0, under_penalty, 1.0)
        if np.array_equal(w_new, w):
            break
        w = w_new
    return float(x[0]), float(x[1])


def hessian_top_eigenvalue(loss_fn, params: list, iterations: int = 20, seed: int = 0) -> float:
    """The largest-magnitude eigenvalue of the Hessian block of ``params`` (Euclidean), by power
    iteration on Hessian-vector products; ``loss_fn()`` recomputes the loss. Attention runs on
    ``scaled_dot_product_attention``'s math kernel here (the fused kernels have no second
    derivative); a model with another operation lacking one gives ``nan`` with a warning — the
    eigenvalue is a comparison, not needed by the theory."""
    import warnings

    from torch.nn.attention import SDPBackend, sdpa_kernel

    try:
        with sdpa_kernel(SDPBackend.MATH):
            return _hessian_power(loss_fn, params, iterations, seed)
    except RuntimeError as e:  # "derivative for ... is not implemented": no double backward
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        warnings.warn(f"the Hessian top eigenvalue is not available for this model ({first}); reported as nan",
                      RuntimeWarning, stacklevel=2)
        return float("nan")


def _hessian_power(loss_fn, params, iterations, seed) -> float:
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = [torch.randn(p.shape, generator=g).to(p) for p in params]
    nrm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / nrm for x in v]
    lam = 0.0
    for _ in range(iterations):
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params, create_graph=True)
        Hv = torch.autograd.grad(grads, params, grad_outputs=v)
        lam = float(sum((a * b).sum() for a, b in zip(Hv, v)))
        nrm = torch.sqrt(sum((x * x).sum() for x in Hv))
        if float(nrm) == 0.0:
            return 0.0
        v = [x.detach() / nrm for x in Hv]
    return lam


@contextmanager
def _same_noise(seed: int, k: int, device):
    """A forked RNG seeded by ``(seed, k)``: the two gradients of one estimate see the same
    dropout masks (or other randomness of the model), so their difference is the step's alone."""
    devices = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed) * 1_000_003 + k)
        yield


@dataclass(frozen=True)
class LayerConstants:
    """One layer's measured constants: ``L`` (the largest trajectory estimate), the ``(L0, L1)``
    fit, the Hessian comparison, and the raw trajectory (gradient dual norms and estimates)."""

    layer: int
    shape: tuple
    L: float
    L_median: float
    L0: float
    L1: float
    hessian_top_eig: float
    gnorms: tuple
    estimates: tuple

    def as_dict(self) -> dict:
        return {"layer": self.layer, "shape": list(self.shape), "L": self.L, "L_median": self.L_median,
                "L0": self.L0, "L1": self.L1, "hessian_top_eig": self.hessian_top_eig,
                "gnorms": list(self.gnorms), "estimates": list(self.estimates)}


def estimate_constants(model, optimizer: DropMuon, loss_fn, data, *, steps: int = 20, batch: int = 256,
                       hessian_every: int = 10, hessian_iterations: int = 10, seed: int = 0,
                       device="cpu", progress=None) -> tuple[list[LayerConstants], dict]:
    """Train with full updates for ``steps`` steps; at each step compare the gradients before and
    after the step on the same minibatch. A layer's estimate is over its matrices (biases and
    norm parameters move with it but are not in its norm). Returns per-layer constants and an overhead record
    (``train_s``, ``estimate_s``)."""
    from .._progress import Progress

    if not (isinstance(steps, int) and steps >= 2):
        raise ValueError(f"steps must be an integer >= 2; got steps = {steps!r}")
    # each layer's matrices (the norm pair is theirs); a layer without one falls back to its vectors
    layers = []
    for _, gs in sorted(optimizer.layer_groups().items()):
        ps = [p for g in gs for p in g["params"]]
        layers.append([p for p in ps if p.ndim >= 2] or ps)
    gen = torch.Generator().manual_seed(seed)
    gn = [[] for _ in layers]
    est = [[] for _ in layers]
    hess = [[] for _ in layers]
    t_train = t_est = 0.0
    with Progress(steps, "estimate", enabled=progress) as bar:
        for k in range(steps):
            idx = torch.randint(0, len(data.x_train), (batch,), generator=gen)
            x, y = data.x_train[idx].to(device), data.y_train[idx].to(device)
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with _same_noise(seed, k, device):
                loss_fn(model(x), y).backward()
            g_before = [[p.grad.detach().clone() for p in ps] for ps in layers]
            w_before = [[p.detach().clone() for p in ps] for ps in layers]
            optimizer.step()
            t1 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with _same_noise(seed, k, device):  # dropout masks as before the step: only X moved
                loss_fn(model(x), y).backward()
            for i, ps in enumerate(layers):
                dg = sum(_nuc(p.grad - g0) for p, g0 in zip(ps, g_before[i]))
                dx = max(_op(p.detach() - w0) for p, w0 in zip(ps, w_before[i]))
                gn[i].append(sum(_nuc(g0) for g0 in g_before[i]))
                est[i].append(dg / dx if dx > 0 else float("nan"))
            if hessian_every and (k % hessian_every == 0 or k == steps - 1):
                for i, ps in enumerate(layers):
                    hess[i].append(hessian_top_eigenvalue(lambda: loss_fn(model(x), y), ps, hessian_iterations, seed + k))
            optimizer.zero_grad(set_to_none=True)
            t_train += t1 - t0
            t_est += time.perf_counter() - t1
            bar.update()
    out = []
    for i, ps in enumerate(layers):
        e = np.array(est[i])
        ok = np.isfinite(e)
        L0, L1 = fit_l0l1(np.array(gn[i])[ok], e[ok])
        out.append(LayerConstants(
            layer=i + 1, shape=tuple(ps[0].shape), L=float(e[ok].max()), L_median=float(np.median(e[ok])),
            L0=L0, L1=L1, hessian_top_eig=float(max(hess[i], key=abs)) if hess[i] else float("nan"),
            gnorms=tuple(float(v) for v in gn[i]), estimates=tuple(float(v) for v in e),
        ))
    overhead = {"train_s": t_train, "estimate_s": t_est, "overhead_ratio": t_est / t_train if t_train else None}
    return out, overhead
