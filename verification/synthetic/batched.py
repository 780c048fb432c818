"""A vectorised Drop-Muon for separable quadratics: the theorem's metric on a whole grid of
``(η, β)`` at once, with common random numbers — the engine behind the T4 coupling experiments of
:mod:`dropmuon.verification.synthetic.coupling` (``docs/verification.md``, ``docs/theory.md`` §T4).

**The run.** The problem is ``f(X) = Σ_i ½⟨X_i − X_i*, H_i ⊙ (X_i − X_i*)⟩``
(:class:`~dropmuon.verification.synthetic.problems.SeparableQuadratic`, gradient ``∇_i f = H_i ⊙ (X_i − X_i*)``),
optionally with additive Gaussian gradient noise of per-entry scale ``s_i``
(:class:`~dropmuon.verification.synthetic.problems.Stochastic`). With sets ``S_k`` drawn i.i.d. from the
sampling distribution (inclusion probabilities ``π_i > 0``), radii ``t_i = η/π_i`` and momentum
``β``, every sampled layer ``i ∈ S_k`` does::

    M_i ← (1 − β) M_i + β G_i(X^k),          X_i ← X_i + D_i,    D_i = LMO_{t_i}(M_i) (or its inexact form)

with ``M_i`` warm-started at a stochastic gradient at ``X^0``; unsampled layers keep ``X_i`` and
``M_i``. The metric is T3/T4's left-hand side ``(1/K) Σ_{k<K} E Σ_i ‖∇_i f(X^k)‖_*``.

**Directions.** ``LMO_t(M) = −t M^♯/‖M‖_*`` and the dual norms come from the layer norms of
:mod:`dropmuon.theory.norms` (their batched methods ``dual_batched``, ``lmo_batched``,
``norm_batched``: for the spectral norm ``−t U Vᵀ`` over the numerically non-zero singular values and
the nuclear dual norm, for the Frobenius norm ``−t M/‖M‖_F``). The inexact LMOs of
:class:`~dropmuon.verification.synthetic.dropmuon.LMO`: ``perturbed`` with ``shrink`` (``(1−δ)LMO_t``),
``overshoot`` (``(1+δ)LMO_t``) or ``random`` (``LMO_t + δ t E/‖E‖``, ``E`` Gaussian), and
``newton-schulz`` (``−t NS(M)``, spectral norms only) from
:func:`dropmuon.verification.synthetic.newton_schulz.newton_schulz_batched`, with T4's
``δ = ‖NS(M) − U Vᵀ‖_op`` measured per update by
:func:`~dropmuon.verification.synthetic.newton_schulz.delta_batched`. Every matrix operation is one call on a
stack ``(grid points, paths, m, n)``.

**Expectation.** ``method="exact"`` enumerates every sequence of sets (weights = path
probabilities; deterministic gradients and directions only); ``"mc"`` draws ``n`` paths, the same
sets and noise at every grid point, and reports a normal confidence half-width. The tests check the
engine against the per-path reference :func:`dropmuon.verification.synthetic.dropmuon.paths`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from dropmuon.theory import RPT, CompactSubsets, Independent, SubsetDistribution
from dropmuon.theory._validation import check_positive_int, check_scalar

from .checks import CONFIDENCE
from .dropmuon import EXACT_LMO, LMO, EpochShift, Phased, Sampler
from .newton_schulz import delta_batched, newton_schulz_batched
from .problems import SeparableQuadratic, Stochastic

__all__ = [
    "GridRun",
    "grid_run",
    "Tuned",
    "tune",
    "TUNE_LOG_TOL",
    "MAX_EXACT",
]

#: exact enumeration of the sampling is used up to this many paths (else Monte Carlo)
MAX_EXACT = 4096


@dataclass(frozen=True)
class GridRun:
    """The theorem's metric ``(1/K) Σ_{k<K} E Σ_i ‖∇_i f(X^k)‖_*`` on a grid: ``metric[a, c]`` at
    ``η = etas[a]``, ``β = betas[c]``; ``half_width`` the Monte Carlo confidence half-width at
    ``confidence`` (zeros when exact), ``diverged`` where some path went non-finite (metric inf),
    ``delta_max`` the largest Newton–Schulz ``δ`` met per layer (0 for other LMOs) and
    ``delta_mean`` its mean over the updates (unweighted over paths and grid points), ``method``
    ``exact`` (every sampling path, weighted) or ``mc`` (``n`` paths)."""

    etas: np.ndarray
    betas: np.ndarray
    metric: np.ndarray
    half_width: np.ndarray
    diverged: np.ndarray
    delta_max: np.ndarray
    method: str
    n: int
    K: int
    confidence: float | None = None
    delta_mean: np.ndarray | None = None

    def best(self) -> tuple[int, int]:
        """Indices ``(a, c)`` of the smallest metric."""
        a, c = np.unravel_index(int(np.argmin(self.metric)), self.metric.shape)
        return int(a), int(c)


def _distribution(obj):
    """The i.i.d. subset distribution of ``obj`` (a :mod:`dropmuon.theory.sampling` distribution or
    a :class:`~dropmuon.verification.synthetic.dropmuon.Sampler` wrapping one)."""
    if isinstance(obj, (EpochShift, Phased)):
        raise ValueError("grid_run needs i.i.d. sampling (A4); an epoch-shift or phased schedule is not covered")
    if isinstance(obj, Sampler):
        obj = obj.distribution
    if not isinstance(obj, (RPT, Independent, SubsetDistribution, CompactSubsets)):
        raise ValueError(f"expected a dropmuon.theory.sampling distribution or a Sampler; got {obj!r}")
    return obj


def _base(problem):
    """``(quadratic, per-layer noise scale s_i)`` of a separable quadratic, optionally Stochastic."""
    if isinstance(problem, Stochastic):
        base, noise = problem.base, np.asarray(problem.noise, dtype=float)
    else:
        base, noise = problem, np.zeros(getattr(problem, "nlayers", 0))
    if not isinstance(base, SeparableQuadratic):
        raise ValueError(f"grid_run simulates separable quadratics (optionally Stochastic); got {problem!r}")
    for j, n in enumerate(base.norms, start=1):
        if n.name not in ("spectral", "frobenius"):
            raise ValueError(f"grid_run supports spectral and Frobenius layer norms; layer {j} has {n.name!r}")
    return base, noise


def grid_run(problem, distribution, K: int, etas, betas=(1.0,), *, lmo: LMO = EXACT_LMO,
             method: str = "auto", mc_paths: int = 32, max_exact: int = MAX_EXACT, seed: int = 0,
             confidence: float = CONFIDENCE) -> GridRun:
    """Drop-Muon with radii ``t_i = η/π_i`` and momentum ``β`` (warm-started at a stochastic
    gradient, as T3 assumes and :func:`~dropmuon.verification.synthetic.dropmuon.paths` does by default) on a
    :class:`~dropmuon.verification.synthetic.problems.SeparableQuadratic` (optionally wrapped in
    :class:`~dropmuon.verification.synthetic.problems.Stochastic`) with spectral or Frobenius layer norms, for every
    ``(η, β)`` of the grid at once.

    ``method="exact"`` enumerates every sampling path (deterministic gradients and directions
    only); ``"mc"`` draws ``mc_paths`` paths with ``seed``, the same sets and noise at every grid
    point; ``"auto"`` enumerates when at most ``max_exact`` paths. ``lmo``: exact, ``perturbed``
    (``shrink``/``overshoot``/``random``) or ``newton-schulz`` (``δ`` measured per matrix).

    >>> from dropmuon.verification.synthetic.problems import SeparableQuadratic
    >>> p = SeparableQuadratic([1.0, 2.0], shapes=[(3, 3), (3, 3)], norms="spectral", seed=0)
    >>> r = grid_run(p, RPT.uniform(2), 4, [0.05, 0.1, 0.2])
    >>> r.method, r.n, r.metric.shape
    ('exact', 16, (3, 1))
    """
    K = check_positive_int("K", K)
    base, noise = _base(problem)
    dist = _distribution(distribution)
    b = base.nlayers
    if dist.nlayers != b:
        raise ValueError(f"the distribution has {dist.nlayers} layers but the problem has {b}")
    pi = np.asarray(dist.inclusion, dtype=float)
    if np.any(pi <= 0):
        j = int(np.argmin(pi)) + 1
        raise ValueError(f"A4 needs every inclusion probability positive; pi_{j} = {pi[j - 1]!r}")
    etas = np.array([check_scalar("eta", e, "positive") for e in np.atleast_1d(etas)], dtype=float)
    betas = np.array([check_scalar("beta", x, "probability") for x in np.atleast_1d(betas)], dtype=float)
    if etas.size == 0 or betas.size == 0:
        raise ValueError("etas and betas must be non-empty")
    if not isinstance(lmo, LMO):
        raise ValueError(f"lmo must be a dropmuon.verification.synthetic.dropmuon.LMO; got {lmo!r}")
    if lmo.kind == "newton-schulz" and any(n.name != "spectral" for n in base.norms):
        raise ValueError("Newton-Schulz approximates the spectral LMO; every layer norm must be spectral")
    confidence = check_scalar("confidence", confidence, "unit_open")
    ee, bb = np.meshgrid(etas, betas, indexing="ij")
    res = _simulate(base, noise, dist, K, ee.ravel(), bb.ravel(), lmo, method, mc_paths, max_exact, seed, confidence)
    shape = (etas.size, betas.size)
    return GridRun(etas=etas, betas=betas, metric=res["metric"].reshape(shape),
                   half_width=res["half_width"].reshape(shape), diverged=res["diverged"].reshape(shape),
                   delta_max=res["delta_max"], method=res["method"], n=res["n"], K=K,
                   confidence=res["confidence"], delta_mean=res["delta_mean"])


def _simulate(base, noise, dist, K, eta_vec, beta_vec, lmo, method, mc_paths, max_exact, seed, confidence) -> dict:
    """The vectorised run behind :func:`grid_run` over explicit ``(η, β)`` pairs (inputs validated
    by the caller). The random draws (sets, warm-start noise, per-step noise, random perturbations)
    depend only on ``seed``, ``K``, the path count and the problem, never on the pairs: calls with
    the same seed share them (common random numbers)."""
    b = base.nlayers
    pi = np.asarray(dist.inclusion, dtype=float)
    outcomes = list(dist.outcomes())
    masks = np.array([[j + 1 in S for j in range(b)] for S, _ in outcomes], dtype=bool)
    probs = np.array([p for _, p in outcomes], dtype=float)
    stochastic = bool(np.any(noise > 0))
    random_dir = lmo.kind == "perturbed" and lmo.mode == "random"
    deterministic = not stochastic and not random_dir
    n_exact = len(outcomes) ** K if len(outcomes) > 1 else 1
    if method == "auto":
        method = "exact" if deterministic and n_exact <= max_exact else "mc"
    if method not in ("exact", "mc"):
        raise ValueError(f"unknown method {method!r}; choose auto, exact or mc")
    rng = np.random.default_rng(seed)
    if method == "exact":
        if not deterministic:
            raise ValueError("exact enumeration needs deterministic gradients and directions; use method='mc'")
        if n_exact > max_exact:
            raise ValueError(f"exact enumeration needs {n_exact} paths > max_exact = {max_exact}")
        if len(outcomes) == 1:
            seq = np.zeros((1, K), dtype=int)
        else:
            seq = np.array(list(itertools.product(range(len(outcomes)), repeat=K)), dtype=int)
        weights = np.prod(probs[seq], axis=1)
    else:
        P = check_positive_int("mc_paths", mc_paths)
        seq = rng.choice(len(outcomes), size=(P, K), p=probs)
        weights = np.full(P, 1.0 / P)
    P = seq.shape[0]
    eta_g = np.asarray(eta_vec, dtype=float)[:, None, None, None]
    beta_g = np.asarray(beta_vec, dtype=float)[:, None, None, None]
    Gn = eta_g.shape[0]
    norms = base.norms
    X, M = [], []
    for i in range(b):
        shape = base.x0[i].shape
        x = np.broadcast_to(base.x0[i], (Gn, P) + shape).copy()
        g0 = base.H[i] * (base.x0[i] - base.xstar[i])
        z = rng.standard_normal((P,) + shape) if stochastic else 0.0
        X.append(x)
        M.append(np.broadcast_to(g0 + noise[i] * z, (Gn, P) + shape).copy())
    total = np.zeros((Gn, P))
    bad = np.zeros((Gn, P), dtype=bool)
    dmax = np.zeros(b)
    dsum, dcount = np.zeros(b), np.zeros(b)
    with np.errstate(all="ignore"):
        for k in range(K):
            grads = [base.H[i] * (X[i] - base.xstar[i]) for i in range(b)]
            gdual, finite = [], []
            for i in range(b):
                ok = np.all(np.isfinite(grads[i]), axis=(-2, -1))
                bad |= ~ok
                g = np.where(ok[..., None, None], grads[i], 0.0)
                gdual.append(norms[i].dual_batched(g))
                finite.append(ok)
                total += gdual[i]
            mask = masks[seq[:, k]]  # (P, b)
            for i in range(b):
                shape = base.x0[i].shape
                z = rng.standard_normal((P,) + shape) if stochastic else 0.0
                e_rand = rng.standard_normal((P,) + shape) if random_dir else None
                sampled = mask[:, i]
                if not sampled.any():
                    continue
                # the paths that sample layer i this step (the draws above cover every path, so the
                # random numbers do not depend on which are sampled); the other paths keep X_i, M_i
                Gi = grads[i][:, sampled] + (noise[i] * z[sampled] if stochastic else 0.0)
                Mn = Gi if np.all(beta_g == 1.0) else (1.0 - beta_g) * M[i][:, sampled] + beta_g * Gi
                Mn = np.where(np.isfinite(Mn), Mn, 0.0)
                # without noise or momentum the step's momentum is the gradient whose dual norm the
                # metric took above (when every sampled gradient is finite), so it is at hand
                same = not stochastic and np.all(beta_g == 1.0) and finite[i][:, sampled].all()
                dual = gdual[i][:, sampled] if same else None
                t = eta_g / pi[i]
                nonzero = np.any(Mn != 0, axis=(-2, -1))[..., None, None]
                if lmo.kind == "newton-schulz":
                    D = -t * newton_schulz_batched(Mn, lmo.preset, lmo.steps)
                    d = delta_batched(Mn, lmo.preset, lmo.steps)
                    dmax[i] = max(dmax[i], float(np.max(d)))
                    dsum[i] += float(np.sum(d))
                    dcount[i] += d.size
                else:
                    D = norms[i].lmo_batched(Mn, t[..., 0, 0], dual=dual)
                    if lmo.kind == "perturbed" and lmo.delta > 0:
                        if lmo.mode == "shrink":
                            D = (1.0 - lmo.delta) * D
                        elif lmo.mode == "overshoot":
                            D = (1.0 + lmo.delta) * D
                        else:
                            e_s = e_rand[sampled]
                            En = norms[i].norm_batched(e_s)[:, None, None]
                            D = D + lmo.delta * t * (e_s / En)
                D = np.where(nonzero, D, 0.0)
                X[i][:, sampled] += D
                M[i][:, sampled] = Mn
    per_path = np.where(bad, np.inf, total / K)
    metric = per_path @ weights
    diverged = bad.any(axis=1)
    if method == "mc" and P > 1:
        z = NormalDist().inv_cdf(confidence)
        with np.errstate(invalid="ignore"):
            sd = np.std(per_path, axis=1, ddof=1)
        half = np.where(np.isfinite(sd), z * sd / math.sqrt(P), np.inf)
        conf = confidence
    else:
        half, conf = np.zeros_like(metric), None
    dmean = np.divide(dsum, dcount, out=np.zeros(b), where=dcount > 0)
    return {"metric": metric, "half_width": half, "diverged": diverged, "delta_max": dmax, "delta_mean": dmean,
            "method": method, "n": int(P), "confidence": conf}


@dataclass(frozen=True)
class Tuned:
    """The best ``(η, β)`` by the theorem's metric: ``eta``, ``beta``, ``metric`` (with its Monte
    Carlo ``half_width``), ``delta_max`` and ``delta_mean`` met at that point (Newton–Schulz, per
    layer), per grid ``β`` the best step ``eta_per_beta`` and its metric ``metric_per_beta``, and
    ``grid`` the coarse run."""

    eta: float
    beta: float
    metric: float
    half_width: float
    delta_max: np.ndarray
    delta_mean: np.ndarray
    eta_per_beta: np.ndarray
    metric_per_beta: np.ndarray
    grid: GridRun


# Golden-section refinement of the best step stops when the bracket in log η is this narrow. Without
# gradient noise the metric is smooth near its minimum, so the step is then known to 1e-4 relative —
# far finer than the effects compared (the 1/(1±δ) scalings, ≥ 9% here). With noise it wiggles
# (refine=False, see tune).
TUNE_LOG_TOL = 1e-4
_GOLD = (math.sqrt(5.0) - 1.0) / 2.0


def tune(problem, distribution, K: int, etas, betas=(1.0,), *, lmo: LMO = EXACT_LMO, mc_paths: int = 32,
         max_exact: int = MAX_EXACT, seed: int = 0, confidence: float = CONFIDENCE, refine: bool = True) -> Tuned:
    """The empirically best step (and momentum): :func:`grid_run` on the grid, then for every ``β``
    a golden-section search in ``log η`` between the grid neighbours of its best grid step (to
    :data:`TUNE_LOG_TOL`), all with the same random draws (common random numbers), so the metric is
    one deterministic function of ``(η, β)``; the best ``β`` is the one with the smallest refined
    metric. A best grid step at the edge of the grid is kept as it is (widen the grid).

    >>> from dropmuon.verification.synthetic.problems import SeparableQuadratic
    >>> p = SeparableQuadratic([1.0, 2.0], shapes=[(3, 3), (3, 3)], norms="spectral", seed=0)
    >>> t = tune(p, RPT.full(2), 20, [0.05, 0.1, 0.2, 0.4, 0.8])
    >>> float(t.grid.etas[t.grid.best()[0]]), round(t.eta, 3), t.beta
    (0.4, 0.337, 1.0)
    """
    run = grid_run(problem, distribution, K, etas, betas, lmo=lmo, mc_paths=mc_paths, max_exact=max_exact,
                   seed=seed, confidence=confidence)
    base, noise = _base(problem)
    dist = _distribution(distribution)
    nb = run.betas.size
    loge = np.log(run.etas)
    a_idx = np.argmin(run.metric, axis=0)
    lo, hi = np.empty(nb), np.empty(nb)
    interior = (a_idx > 0) & (a_idx < run.etas.size - 1)
    lo[:] = loge[np.maximum(a_idx - 1, 0)]
    hi[:] = loge[np.minimum(a_idx + 1, run.etas.size - 1)]
    best_e = run.etas[a_idx].copy()
    best_m = run.metric[a_idx, np.arange(nb)].copy()

    def f(x):
        res = _simulate(base, noise, dist, run.K, np.exp(x), run.betas, lmo, run.method, mc_paths, max_exact,
                        seed, confidence)
        return res["metric"]

    if refine and interior.any() and run.etas.size > 2:
        c = hi - _GOLD * (hi - lo)
        d = lo + _GOLD * (hi - lo)
        fc, fd = f(c), f(d)
        while np.max(np.where(interior, hi - lo, 0.0)) > TUNE_LOG_TOL:
            left = fc < fd  # the minimum lies in [lo, d]
            hi = np.where(left, d, hi)
            lo = np.where(left, lo, c)
            new_c = hi - _GOLD * (hi - lo)
            new_d = lo + _GOLD * (hi - lo)
            c, d = np.where(left, new_c, d), np.where(left, c, new_d)
            fc, fd = np.where(left, np.nan, fd), np.where(left, fc, np.nan)
            probe = np.where(left, c, d)
            fp = f(probe)
            fc = np.where(left, fp, fc)
            fd = np.where(left, fd, fp)
        x = (lo + hi) / 2
        fx = f(x)
        better = interior & (fx < best_m)
        best_e = np.where(better, np.exp(x), best_e)
        best_m = np.where(better, fx, best_m)
    j = int(np.argmin(best_m))
    at = _simulate(base, noise, dist, run.K, [best_e[j]], [run.betas[j]], lmo, run.method, mc_paths, max_exact,
                   seed, confidence)
    return Tuned(eta=float(best_e[j]), beta=float(run.betas[j]), metric=float(at["metric"][0]),
                 half_width=float(at["half_width"][0]), delta_max=at["delta_max"],
                 delta_mean=at["delta_mean"], eta_per_beta=best_e,
                 metric_per_beta=best_m, grid=run)
