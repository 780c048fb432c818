"""Per-layer gradient noise at a run's batch size — the ``σ_i`` and ``ρ_i`` of assumption A3
(``docs/theory.md``): how far a minibatch gradient strays from the full-batch gradient, measured
at points of a training trajectory, with a bootstrap interval over the minibatch draws.

The summaries (:func:`summarize_noise`, :func:`noise_rho`) are numpy functions of the measured
deviations; :func:`gradient_deviations` and :func:`full_loss` measure them with torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["NoiseEstimate", "noise_rho", "summarize_noise", "gradient_deviations", "full_loss",
           "NOISE_CONFIDENCE", "NOISE_RESAMPLES"]

#: two-sided level of the bootstrap interval on σ
NOISE_CONFIDENCE = 0.95
#: bootstrap resamples: the percentile interval's end points then move by ~1% of its width
#: between seeds (the Monte Carlo error of a 2.5% quantile from 2000 resamples)
NOISE_RESAMPLES = 2000


@dataclass(frozen=True)
class NoiseEstimate:
    """One layer's measured gradient noise (:func:`summarize_noise`).

    ``sigma``: ``sqrt(max_p mean_r ‖G_r(x_p) − ∇f(x_p)‖_2²)`` — the Euclidean (Frobenius, summed
    over the layer's matrices) noise of A3, the largest over the trajectory points ``x_p`` of the
    mean over the minibatch draws ``r``; ``sigma_ci``: its bootstrap percentile interval over the
    draws; ``sigma_dual``: the same with the layer's dual norm (sum of nuclear norms), for
    information; ``rho``: :func:`noise_rho`; ``batch``: the minibatch size the noise is for;
    ``per_point``: ``σ`` at each point; ``draws``: minibatches per point."""

    sigma: float
    sigma_ci: tuple
    sigma_dual: float
    rho: float | None
    batch: int | str | None
    per_point: tuple
    draws: int
    confidence: float

    def as_dict(self) -> dict:
        return {"sigma": self.sigma, "sigma_ci": list(self.sigma_ci), "sigma_dual": self.sigma_dual,
                "rho": self.rho, "sigma_batch": self.batch, "sigma_points": list(self.per_point),
                "sigma_draws": self.draws, "sigma_confidence": self.confidence}


def noise_rho(shapes: Sequence[Sequence[int]]) -> float:
    r"""The norm-equivalence constant of A3 for a layer of matrices of matrix shapes
    ``(m_j, n_j)``: the smallest ``ρ`` with ``Σ_j ‖A_j‖_nuc ≤ ρ · sqrt(Σ_j ‖A_j‖_F²)``, the layer's
    dual norm (the sum of nuclear norms, dual to ``max_j ‖·‖_op``) against its Euclidean norm::

        ρ = sqrt(Σ_j min(m_j, n_j))

    Proof: ``‖A_j‖_nuc ≤ sqrt(r_j) ‖A_j‖_F`` with ``r_j = min(m_j, n_j)`` (Cauchy–Schwarz on the
    singular values), then Cauchy–Schwarz over ``j``:
    ``Σ_j sqrt(r_j) ‖A_j‖_F ≤ sqrt(Σ_j r_j) · sqrt(Σ_j ‖A_j‖_F²)``. Equality for ``A_j`` with all
    ``r_j`` singular values equal to one common value. For one matrix this is
    ``sqrt(min(m, n))``; for several it is *not* the largest of the matrices' own constants
    (two ``2 × 2`` identities have dual norm 4 and Euclidean norm 2: ratio 2, while each alone
    has ``sqrt 2``).

    >>> noise_rho([(64, 9)])
    3.0
    >>> noise_rho([(2, 2), (2, 2)])
    2.0
    """
    rs = []
    for s in shapes:
        s = tuple(int(d) for d in s)
        if len(s) != 2 or min(s) < 1:
            raise ValueError(f"a matrix shape must be two positive integers; got {s}")
        rs.append(min(s))
    if not rs:
        raise ValueError("a layer needs at least one matrix shape; got none")
    return math.sqrt(sum(rs))


def _check_draws(name: str, a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 2:
        raise ValueError(f"{name} must be an array (points, draws) with at least 2 draws; got shape {a.shape}")
    bad = ~np.isfinite(a) | (a < 0)
    if bad.any():
        p, r = np.argwhere(bad)[0]
        raise ValueError(f"{name} must be finite and non-negative; got {name}[{p}, {r}] = {float(a[p, r])!r}")
    return a


def summarize_noise(sq, dual=None, *, rho: float | None = None, batch: int | None = None,
                    confidence: float = NOISE_CONFIDENCE, resamples: int = NOISE_RESAMPLES,
                    seed: int = 0) -> NoiseEstimate:
    r"""A3's noise constant of one layer from the measured deviations of minibatch gradients.

    ``sq[p, r] = ‖G_r(x_p) − ∇f(x_p)‖_2²`` (squared Frobenius norm summed over the layer's
    matrices) for minibatch draw ``r`` at trajectory point ``x_p``; ``dual[p, r]`` the same
    deviation in the layer's dual norm ``Σ_j ‖·‖_nuc`` (not squared). Then::

        σ² = max_p  (1/R) Σ_r sq[p, r]          σ_dual² = max_p (1/R) Σ_r dual[p, r]²

    The maximum over points, not a mean: A3 asks ``E‖G − ∇f(X)‖_2² ≤ σ²`` at *every* point the
    method visits, so the constant is the largest variance seen along the trajectory (a lower
    bound on the sup over the region, as every measured constant is).

    ``sigma_dual`` is informational: T3's proof bounds the momentum error through Euclidean inner
    products (the variance of an average of independent noises adds up in ``‖·‖_2``, not in the
    nuclear norm), so it needs the Euclidean ``σ`` and converts with ``ρ`` (:func:`noise_rho`),
    ``E‖e‖_* ≤ ρ E‖e‖_2``; ``σ_dual ≤ ρσ`` always, and the gap says how loose that conversion is.

    The interval: the percentile bootstrap of ``sqrt(max_p mean_r sq[p, r])`` with the draws of
    every point resampled with replacement (``resamples`` times, seeded by ``seed``); it covers
    the minibatch sampling error, not the choice of points.

    >>> est = summarize_noise([[1.0, 3.0, 2.0, 2.0], [4.0, 4.0, 4.0, 4.0]], rho=2.0, batch=8)
    >>> est.sigma, est.per_point, est.sigma_ci
    (2.0, (1.4142135623730951, 2.0), (2.0, 2.0))
    """
    sq = _check_draws("sq", sq)
    dual = sq * 0 if dual is None else _check_draws("dual", dual)
    if dual.shape != sq.shape:
        raise ValueError(f"dual must have the shape of sq {sq.shape}; got {dual.shape}")
    if not (isinstance(confidence, float) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a number in (0, 1); got confidence = {confidence!r}")
    if not (isinstance(resamples, int) and resamples >= 100):
        raise ValueError(f"resamples must be an integer >= 100; got resamples = {resamples!r}")
    P, R = sq.shape
    means = sq.mean(axis=1)
    rng = np.random.default_rng([int(seed), 24])
    boot = np.empty(resamples)
    for start in range(0, resamples, 256):  # blocks bound the memory at 256 · P · R indices
        k = min(256, resamples - start)
        idx = rng.integers(0, R, size=(k, P, R))
        boot[start:start + k] = np.sqrt(np.take_along_axis(sq[None], idx, axis=2).mean(axis=2).max(axis=1))
    a = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [a, 1 - a])
    return NoiseEstimate(
        sigma=float(np.sqrt(means.max())), sigma_ci=(float(lo), float(hi)),
        sigma_dual=float(np.sqrt((dual ** 2).mean(axis=1).max())), rho=rho,
        batch=batch, per_point=tuple(float(v) for v in np.sqrt(means)), draws=R, confidence=confidence)


def _mat(t):
    from .optimizer import layer_matrix_shape

    return t.reshape(layer_matrix_shape(t.shape)).double()


def _flat_grads(model, loss_fn, params, x, y):
    import torch

    loss = loss_fn(model(x), y)
    return loss, torch.autograd.grad(loss, params, allow_unused=True)


def gradient_deviations(model, loss_fn, layers: Sequence[Sequence], x_train, y_train, *, batch: int, draws: int,
                        generator, device="cpu", chunk: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    r"""At the model's current point ``x``: the full-batch gradient ``∇f(x)`` of the training loss
    ``f(x) = (1/N) Σ_n ℓ(x; n)`` over all ``N`` examples (in chunks of ``chunk``, default
    ``batch``, weighted by their sizes) and ``draws`` minibatch gradients ``G_r``, each on
    ``batch`` examples drawn uniformly *with replacement* with ``generator`` — as the training
    loop draws them. Per layer (``layers``: lists of parameters) and draw::

        sq[i, r]   = Σ_j ‖G_{r,j} − ∇_j f(x)‖_F²        dual[i, r] = Σ_j ‖G_{r,j} − ∇_j f(x)‖_nuc

    over the layer's parameters ``j`` viewed as their matrices (float64). Returns
    ``(sq, dual, f(x))`` with ``sq, dual`` of shape ``(layers, draws)``.

    ``loss_fn(output, target)`` must be the mean of per-example terms for the chunked full
    gradient to be ``∇f``: a model with batch statistics in training mode (BatchNorm) gives the
    gradient of its chunked loss instead. Everything runs in the model's current mode; nothing
    is written to ``.grad``."""
    import torch

    if not (isinstance(batch, int) and batch >= 1):
        raise ValueError(f"batch must be a positive integer; got batch = {batch!r}")
    if not (isinstance(draws, int) and draws >= 2):
        raise ValueError(f"draws must be an integer >= 2 (a variance needs two draws); got draws = {draws!r}")
    chunk = batch if chunk is None else chunk
    params = [p for ps in layers for p in ps]
    N = len(x_train)
    full = [torch.zeros(p.shape, dtype=torch.float64, device=p.device) for p in params]
    f = 0.0
    for i in range(0, N, chunk):
        xc, yc = x_train[i:i + chunk].to(device), y_train[i:i + chunk].to(device)
        w = len(xc) / N
        loss, gs = _flat_grads(model, loss_fn, params, xc, yc)
        f += float(loss.detach()) * w
        for acc, g in zip(full, gs):
            if g is not None:
                acc.add_(g.double(), alpha=w)
    sq = np.zeros((len(layers), draws))
    dual = np.zeros((len(layers), draws))
    for r in range(draws):
        idx = torch.randint(0, N, (batch,), generator=generator)
        _, gs = _flat_grads(model, loss_fn, params, x_train[idx].to(device), y_train[idx].to(device))
        k = 0
        for i, ps in enumerate(layers):
            for _ in ps:
                d = (gs[k].double() if gs[k] is not None else torch.zeros_like(full[k])) - full[k]
                sq[i, r] += float((d * d).sum())
                dual[i, r] += float(torch.linalg.svdvals(_mat(d)).sum())
                k += 1
    return sq, dual, f


def full_loss(model, loss_fn, x_train, y_train, *, chunk: int = 256, device="cpu") -> float:
    """The training loss ``f(x) = (1/N) Σ_n ℓ(x; n)`` on the whole training set at the model's
    current point, in chunks weighted by their sizes, in the model's current mode (the ``f`` whose
    gradient :func:`gradient_deviations` takes), without gradients."""
    import torch

    N = len(x_train)
    f = 0.0
    with torch.no_grad():
        for i in range(0, N, chunk):
            xc, yc = x_train[i:i + chunk].to(device), y_train[i:i + chunk].to(device)
            f += float(loss_fn(model(xc), yc)) * len(xc) / N
    return f
