"""Measured layer-wise constants of a network along a training trajectory, in each layer's own
norm (spectral norm of the flattened matrix; dual: nuclear):

* ``L̂_i = ‖∇_i f(X') − ∇_i f(X)‖_nuc / ‖X'_i − X_i‖_op`` for consecutive iterates on the *same*
  minibatch (Gluon's estimator, arXiv 2505.13416);
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

from .layers import first_line
from .optimizer import DropMuon, _polar, layer_matrix_shape

__all__ = ["LayerConstants", "fit_l0l1", "hessian_top_eigenvalue", "probe_constant", "estimate_constants",
           "estimating_step", "online_summary", "UNDER_PENALTY", "IDENTIFY_RANGE"]

#: weight of an under-estimated point (observation above the fitted line) relative to an over-estimated one
UNDER_PENALTY = 100.0
#: the (L0, L1) fit counts as identified when the gradient's dual norm varied by at least this
#: factor along the trajectory (with a narrower range a line through the points is nearly flat in
#: g, and L0 and L1 trade off against each other)
IDENTIFY_RANGE = 2.0
#: resamples for the bootstrap standard deviations of L0 and L1
BOOTSTRAP_FITS = 100


def _bootstrap_l0l1(g, L_hat, seed: int) -> tuple[float | None, float | None]:
    """Standard deviations of the (L0, L1) fit over trajectory points resampled with replacement."""
    if len(g) < 3:
        return None, None
    rng = np.random.default_rng([seed, 7])
    fits = []
    for _ in range(BOOTSTRAP_FITS):
        k = rng.integers(0, len(g), len(g))
        if np.ptp(g[k]) == 0:
            continue
        fits.append(fit_l0l1(g[k], L_hat[k]))
    if len(fits) < 2:
        return None, None
    a = np.array(fits)
    return float(a[:, 0].std(ddof=1)), float(a[:, 1].std(ddof=1))


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
        warnings.warn(f"the Hessian top eigenvalue is not available for this model ({first_line(e)}); reported as nan",
                      RuntimeWarning, stacklevel=2)
        return float("nan")


def _hessian_power(loss_fn, params, iterations, seed) -> float:
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = [torch.randn(p.shape, generator=g).to(p) for p in params]
    nrm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / nrm for x in v]
    lam = 0.0
    for _ in range(iterations):
        Hv = _hvp(loss_fn, params, v)
        lam = float(sum((a * b).sum() for a, b in zip(Hv, v)))
        nrm = torch.sqrt(sum((x * x).sum() for x in Hv))
        if float(nrm) == 0.0:
            return 0.0
        v = [x.detach() / nrm for x in Hv]
    return lam


def _hvp(loss_fn, params: list, v: list) -> list:
    """The Hessian block of ``params`` applied to ``v`` (one double backward)."""
    grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
    return [h.detach() for h in torch.autograd.grad(grads, params, grad_outputs=v)]


def _polar_like(G: torch.Tensor) -> torch.Tensor:
    """The spectral-norm sharp direction ``U Vᵀ`` of ``G`` viewed as its layer matrix."""
    return _polar(_mat(G)).reshape(G.shape).to(G.dtype)


def probe_constant(loss_fn, params: list, *, iterations: int = 30, starts: int = 2, seed: int = 0,
                   rtol: float = 1e-7) -> float:
    r"""The local layer-wise smoothness constant of ``params`` in the layer's own norm pair —
    ``max_j ‖Δ_j‖_op`` on the step, ``Σ_j ‖·‖_nuc`` on the gradient — at the current point:
    ``sup_{‖Δ‖ ≤ 1} ‖∇²f[Δ]‖_*``, by a power method in that pair.

    ``‖H[Δ]‖_* = max_{‖Z‖ ≤ 1} ⟨Z, H[Δ]⟩`` and the Hessian block ``H`` is self-adjoint, so the
    value is ``max ⟨Z, H[Δ]⟩`` over two spectral-norm balls; maximising in turn over ``Z`` and
    ``Δ`` gives ``Z ← polar(H[Δ])``, ``Δ ← polar(H[Z])`` (``polar``: the sharp direction ``UVᵀ`` of
    each matrix), which never decreases the value. It converges to a local maximum; the best of
    ``starts`` random starts is returned. For a quadratic ``f`` this is the constant of A1 exactly
    where the maximum is reached: for least squares ``½‖WA − B‖²`` it is the sum of the
    ``min(m, n)`` largest eigenvalues of ``AAᵀ``, which the probe reaches (tests: tall, wide and
    square layers and a convolution, ≥ 0.99 of the closed form). For a non-quadratic loss it is the
    constant of the second-order model at this point — a lower bound on the sup over a region
    containing it. Each iteration costs two Hessian-vector products (attention on the math
    kernel, which has a second derivative)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    g = torch.Generator(device="cpu").manual_seed(seed)
    best = 0.0
    with sdpa_kernel(SDPBackend.MATH):
        for _ in range(starts):
            d = [_polar_like(torch.randn(p.shape, generator=g).to(p)) for p in params]
            prev = 0.0
            for _ in range(iterations):
                hd = _hvp(loss_fn, params, d)
                val = sum(_nuc(h) for h in hd)
                best = max(best, val)
                if val <= prev * (1 + rtol):
                    break
                prev = val
                z = [_polar_like(h) for h in hd]
                d = [_polar_like(h) for h in _hvp(loss_fn, params, z)]
    return float(best)


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
    L_probe: float | None = None
    trajectory_converged: bool | None = None
    l0l1_identified: bool | None = None
    L0_sd: float | None = None
    L1_sd: float | None = None

    def as_dict(self) -> dict:
        return {"layer": self.layer, "shape": list(self.shape), "L": self.L, "L_median": self.L_median,
                "L0": self.L0, "L1": self.L1, "hessian_top_eig": self.hessian_top_eig,
                "L_probe": self.L_probe, "trajectory_converged": self.trajectory_converged,
                "l0l1_identified": self.l0l1_identified, "L0_sd": self.L0_sd, "L1_sd": self.L1_sd,
                "gnorms": list(self.gnorms), "estimates": list(self.estimates)}


def estimate_constants(model, optimizer: DropMuon, loss_fn, data, *, steps: int = 20, batch: int = 256,
                       hessian_every: int = 10, hessian_iterations: int = 10, probe_iterations: int = 10,
                       seed: int = 0, device="cpu", progress=None) -> tuple[list[LayerConstants], dict]:
    """Train with full updates for ``steps`` steps; at each step compare the gradients before and
    after the step on the same minibatch. A layer's estimate is over its matrices (biases and
    norm parameters move with it but are not in its norm). Returns per-layer constants and an overhead record
    (``train_s``, ``estimate_s``).

    What each number bounds: ``L`` (the largest trajectory estimate) is a lower bound on the
    layer's constant over the region the trajectory visited — along the directions training took,
    which on least squares recover 0.57–1.0 of the true constant depending on the layer's shape;
    ``L_probe`` (:func:`probe_constant` at the last point, ``probe_iterations`` power steps; 0 to
    skip) maximises over directions instead and is exact on quadratics, a lower bound on the sup
    over any region containing the point otherwise. ``trajectory_converged`` is false when the
    largest estimate came in the last quarter of the trajectory (``L`` was still growing: more
    steps may raise it). ``l0l1_identified`` is false when the gradient's dual norm varied by less
    than :data:`IDENTIFY_RANGE`× along the trajectory — then ``L0`` and ``L1`` trade off and the fit
    does not separate them; ``L0_sd``/``L1_sd`` are their bootstrap standard deviations."""
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
        t2 = time.perf_counter()
        probes = [probe_constant(lambda: loss_fn(model(x), y), ps, iterations=probe_iterations, starts=1, seed=seed)
                  if probe_iterations else None for ps in layers]
        optimizer.zero_grad(set_to_none=True)
        t_est += time.perf_counter() - t2
    out = []
    for i, ps in enumerate(layers):
        e = np.array(est[i])
        ok = np.isfinite(e)
        g = np.array(gn[i])[ok]
        L0, L1 = fit_l0l1(g, e[ok])
        L0_sd, L1_sd = _bootstrap_l0l1(g, e[ok], seed)
        q = (3 * len(e)) // 4
        head, tail = e[:q][np.isfinite(e[:q])], e[q:][np.isfinite(e[q:])]
        out.append(LayerConstants(
            layer=i + 1, shape=tuple(ps[0].shape), L=float(e[ok].max()), L_median=float(np.median(e[ok])),
            L0=L0, L1=L1, hessian_top_eig=float(max(hess[i], key=abs)) if hess[i] else float("nan"),
            gnorms=tuple(float(v) for v in gn[i]), estimates=tuple(float(v) for v in e),
            L_probe=probes[i],
            trajectory_converged=bool(len(head) and (not len(tail) or tail.max() <= head.max())),
            l0l1_identified=bool(g.min() > 0 and g.max() / g.min() >= IDENTIFY_RANGE), L0_sd=L0_sd, L1_sd=L1_sd,
        ))
    overhead = {"train_s": t_train, "estimate_s": t_est, "overhead_ratio": t_est / t_train if t_train else None}
    return out, overhead


# -- online: along a training run -----------------------------------------------------------------

def _layer_matrices(optimizer: DropMuon) -> dict[int, list]:
    """Each layer's matrices (the norm pair is theirs); a layer without one falls back to its vectors."""
    out = {}
    for j, gs in sorted(optimizer.layer_groups().items()):
        ps = [p for g in gs for p in g["params"]]
        out[j] = [p for p in ps if p.ndim >= 2] or ps
    return out


def estimating_step(model, optimizer: DropMuon, loss_fn, inputs, targets, S, *, seed: int = 0, k: int = 0,
                    device="cpu") -> tuple[float, float, list[dict]]:
    """One training step on the layers ``S`` (exactly :func:`~dropmuon.verification.torchside.optimizer.layers_step`'s
    update) that also measures the trajectory estimate of every updated layer ``j ∈ S``:
    ``L̂_j = ‖∇_j f(X') − ∇_j f(X)‖_nuc / ‖X'_j − X_j‖_op`` on this minibatch, the gradient before
    the step being the one the step used (free) and the one after it costing one more forward and
    backward pass, truncated at ``min S`` like the step itself. Layers outside ``S`` did not move
    and get no estimate. Both passes see the same randomness (dropout masks) from an RNG forked
    with ``(seed, k)``.

    Returns ``(train_seconds, estimate_seconds, records)`` with one record
    ``{"step": k, "layer": j, "gnorm": ‖∇_j f(X)‖_nuc, "L_hat": L̂_j}`` per updated layer;
    ``train_seconds`` is the step's own work, ``estimate_seconds`` the rest (copies, the second
    pass, the norms)."""
    from .costs import _sync
    from .optimizer import freeze_except

    S = tuple(S)
    if not S:
        raise ValueError("an estimating step needs a non-empty layer set")
    mats = _layer_matrices(optimizer)
    _sync(device)
    t0 = time.perf_counter()
    with freeze_except(optimizer, S):
        optimizer.zero_grad(set_to_none=True)
        with _same_noise(seed, k, device):
            loss = loss_fn(model(inputs), targets)
        loss.backward()
        _sync(device)
        t1 = time.perf_counter()
        before = {j: [(p.grad.detach().clone(), p.detach().clone()) for p in mats[j]] for j in S}
        _sync(device)
        t2 = time.perf_counter()
        optimizer.step()
        _sync(device)
        t3 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with _same_noise(seed, k, device):  # the same dropout masks: only X moved
            loss_fn(model(inputs), targets).backward()
        records = []
        for j in S:
            dg = sum(_nuc(p.grad - g0) for p, (g0, _) in zip(mats[j], before[j]))
            dx = max(_op(p.detach() - w0) for p, (_, w0) in zip(mats[j], before[j]))
            records.append({"step": int(k), "layer": int(j), "gnorm": sum(_nuc(g0) for g0, _ in before[j]),
                            "L_hat": dg / dx if dx > 0 else float("nan")})
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    t4 = time.perf_counter()
    return (t1 - t0) + (t3 - t2), (t2 - t1) + (t4 - t3), records


def online_summary(records: list[dict], nlayers: int, seed: int = 0) -> list[dict]:
    """Per layer, from the records of :func:`estimating_step` along a run: ``n`` estimates, ``L``
    (the largest) and ``L_median``, ``trajectory_converged`` (the largest did not come in the last
    quarter of the layer's estimates), and with at least 3 estimates the ``(L0, L1)`` fit with
    ``l0l1_identified`` and bootstrap standard deviations, as in :func:`estimate_constants`. A
    layer with no estimate (never updated at an estimating step) has ``n = 0`` and ``L = None``."""
    out = []
    for j in range(1, nlayers + 1):
        rs = sorted((r for r in records if r["layer"] == j), key=lambda r: r["step"])
        e = np.array([r["L_hat"] for r in rs], dtype=float)
        g = np.array([r["gnorm"] for r in rs], dtype=float)
        ok = np.isfinite(e)
        rec = {"layer": j, "n": int(ok.sum()), "L": None, "L_median": None, "trajectory_converged": None,
               "L0": None, "L1": None, "l0l1_identified": None, "L0_sd": None, "L1_sd": None}
        if ok.any():
            q = (3 * len(e)) // 4
            head, tail = e[:q][np.isfinite(e[:q])], e[q:][np.isfinite(e[q:])]
            rec.update(L=float(e[ok].max()), L_median=float(np.median(e[ok])),
                       trajectory_converged=bool(len(head) and (not len(tail) or tail.max() <= head.max())))
        if ok.sum() >= 3 and np.ptp(g[ok]) > 0:
            L0, L1 = fit_l0l1(g[ok], e[ok])
            L0_sd, L1_sd = _bootstrap_l0l1(g[ok], e[ok], seed)
            rec.update(L0=L0, L1=L1, L0_sd=L0_sd, L1_sd=L1_sd,
                       l0l1_identified=bool(g[ok].min() > 0 and g[ok].max() / g[ok].min() >= IDENTIFY_RANGE))
        out.append(rec)
    return out
