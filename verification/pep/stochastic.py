r"""T3's noise, certified from above: a second-moment relaxation of the stochastic worst case.

**Setting** (one layer, T3's algorithm on its own clock; ``docs/theory.md`` §T3). ``f`` is
``L``-smooth with ``f(x_0) − inf f ≤ Δ0``; at its ``n``-th update the layer draws a stochastic
gradient ``g_n + ξ_n`` at its own iterate ``x_n`` (``g_n = ∇f(x_n)``), with noise that is a
martingale difference with ``E[‖ξ_n‖² | past] ≤ σ²``; momentum ``m_n = (1−β)m_{n−1} + β(g_n+ξ_n)``,
warm-started at ``m_{−1} = g_0 + ξ'`` (its own noise); the step is the LMO of the Frobenius ball of
radius ``t = η/π``, ``x_{n+1} = x_n − t·m_n/‖m_n‖``. With i.i.d. sampling the rate statement's
left-hand side is ``(1/K) Σ_{n<K} c_n E‖g_n‖`` (binomial weights ``c_n``, as in the reduction of
:mod:`dropmuon.verification.certify`).

**Why not exact.** An exact worst case would range over all functions *and all noise laws*: an
infinite-dimensional problem whose iterates are random. Three things keep a PEP from it: the step
``m/‖m‖`` is not linear in the Gram matrix; the left-hand side is a first moment ``E‖g_n‖``; and the
interpolation conditions hold path by path, not only in expectation. No finite SDP is known to be
exact here.

**The relaxation (an upper bound).** Model every random vector as an element of ``L²(Ω; ℝ^d)``:
the matrix of *expected* inner products of ``(g_0..g_K, ξ', ξ_0..ξ_{K−1}, u_0..u_{K−1})``
(``u_n = m_n/‖m_n‖``, ``x_n = −t Σ_{j<n} u_j``) is PSD. Every true instance then satisfies, in
expectation, the necessary conditions

* the interpolation conditions of ``L``-smooth functions between every pair of iterates, and
  ``E f(x_n) − f^* ≥ E‖g_n‖²/(2L)``, ``E f(x_0) − f^* ≤ Δ0``;
* ``E‖ξ_n‖² ≤ σ²`` and ``E⟨ξ_n, v⟩ = 0`` for every ``v`` fixed before ``ξ_n`` is drawn (the
  martingale property);
* ``E‖u_n‖² ≤ 1``; ``ν_n := E⟨u_n, m_n⟩ = E‖m_n‖`` with ``ν_n ≥ |E⟨u_j, m_n⟩|`` for every other unit
  direction and ``ν_n² ≤ E‖m_n‖²`` (Jensen);
* ``γ_n := E‖g_n‖`` with ``γ_n² ≤ E‖g_n‖²`` (Jensen),

so ``max (1/K) Σ c_n γ_n`` over them bounds the worst case from above. It is labelled
``relaxation`` everywhere: it can lie above the true worst case, never below it.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["NoiseRelaxation", "t3_noise_relaxation", "t3_noise_search", "MAX_K", "SEARCH_FUNCTIONS", "SEARCH_NOISES"]

#: the relaxation's Gram matrix has 3K + 2 rows and every pair of iterates is constrained; through
#: cvxpy and Clarabel, K = 10 takes 0.5 s and K = 20 7–10 s on 2 cores, while K = 50 did not finish in
#: 400 s (2-core AMD EPYC, 2026-12-07), so larger K is refused before the work
MAX_K = 20


@dataclass(frozen=True)
class NoiseRelaxation:
    """``value``: an upper bound (a relaxation, not the exact worst case) on T3's rate left-hand side
    for one layer; ``bound``: T3's right-hand side at the same ``η, β``; ``ratio = value/bound`` (so
    T3 overstates the worst case by at least ``1/ratio``); ``eta``, ``beta``: the step and momentum
    (T3's rule unless given); ``status`` of the solver; ``kind = "relaxation"``."""

    K: int
    L: float
    pi: float
    sigma: float
    Delta0: float
    eta: float
    beta: float
    value: float
    bound: float
    ratio: float
    status: str
    time: float
    kind: str = "relaxation"


def t3_noise_relaxation(K: int, *, sigma: float, L: float = 1.0, pi: float = 1.0, Delta0: float = 1.0,
                        eta: float | None = None, beta: float | None = None) -> NoiseRelaxation:
    """The relaxation of the module docstring, beside T3's bound (step rule of T3 unless ``eta`` /
    ``beta`` are given). Requires ``1 ≤ K ≤`` :data:`MAX_K`."""
    import cvxpy as cp

    from dropmuon.theory import get_theorem
    from dropmuon.theory._validation import check_positive_int, check_scalar

    from .allpairs import _binomial_weights

    K = check_positive_int("K", K)
    if K > MAX_K:
        raise ValueError(f"K = {K} is beyond the noise relaxation's size (all pairs of 3K+2 Gram rows); "
                         f"the largest K accepted is {MAX_K}")
    sigma = check_scalar("sigma", sigma, "nonnegative")
    L = check_scalar("L", L, "positive")
    pi = check_scalar("pi", pi, "probability")
    Delta0 = check_scalar("Delta0", Delta0, "positive")
    th = get_theorem("smooth-stochastic")
    kw = {}
    if eta is not None:
        kw["eta"] = check_scalar("eta", eta, "positive")
    if beta is not None:
        kw["beta"] = check_scalar("beta", beta, "probability")
    b = th.evaluate(K, statement="rate", L=[L], pi=[pi], sigma=[sigma], Delta0=Delta0, **kw)
    eta_v, beta_v = float(b.parameters["eta"]), float(b.parameters["beta"])
    t = eta_v / pi
    import scipy.sparse as sp

    from .allpairs import _interpolation_rows
    from .sdp import _outer, _sel

    # basis: g_0..g_K | m_{−1}..m_{K−1} | x_1..x_K (x_0 = 0); every vector below has ≤ 3 entries:
    # ξ' = m_{−1} − g_0, βξ_n = m_n − (1−β)m_{n−1} − βg_n, u_n = (x_n − x_{n+1})/t
    G0, M0, X1 = 0, K + 1, 2 * K + 2
    D = 3 * K + 2

    def vec(entries):
        idx = [k for k, _ in entries]
        val = [v for _, v in entries]
        return sp.csr_matrix((val, ([0] * len(idx), idx)), shape=(1, D))

    g = [vec([(G0 + n, 1.0)]) for n in range(K + 1)]
    m = [vec([(M0 + 1 + n, 1.0)]) for n in range(K)]  # m_0..m_{K−1}
    xs = [sp.csr_matrix((1, D))] + [vec([(X1 + n - 1, 1.0)]) for n in range(1, K + 1)]
    u = [(xs[n] - xs[n + 1]) / t for n in range(K)]
    xi_w = vec([(M0, 1.0), (G0, -1.0)])
    xi = [(m[n] - (1 - beta_v) * (m[n - 1] if n else vec([(M0, 1.0)])) - beta_v * g[n]) / beta_v for n in range(K)]
    X, Gm = sp.vstack(xs).tocsr(), sp.vstack(g).tocsr()
    H = cp.Variable((D, D), symmetric=True)
    hv = cp.vec(H, order="F")
    f = cp.Variable(K + 1)
    nu = cp.Variable(K)
    gam = cp.Variable(K)

    def rows(A_, B_):  # E⟨a_r, b_r⟩ for each row pair, as rows acting on vec(H)
        return _outer(sp.vstack(A_).tocsr(), sp.vstack(B_).tocsr(), D)

    cons = [H >> 0, f[0] <= Delta0]
    cons.append(rows(g, g) @ hv / (2 * L) <= f)
    S, A = _interpolation_rows(X, Gm, np.arange(K + 1), L, D, K + 1)
    cons.append(S @ f + A @ hv <= 0)
    # noise: bounded second moment, orthogonal to everything fixed before it is drawn
    noises = [xi_w] + xi
    cons.append(rows(noises, noises) @ hv <= sigma**2)
    left, right = [xi_w], [g[0]]
    for n in range(K):
        past = g[: n + 1] + [xi_w] + xi[:n] + xs[1: n + 1]  # positions x_1..x_n fix u_0..u_{n−1}
        left += [xi[n]] * len(past)
        right += past
    cons.append(rows(left, right) @ hv == 0)
    # the LMO direction: unit, and the best unit direction for its own momentum
    cons.append(rows(u, u) @ hv <= 1)
    cons.append(nu == rows(u, m) @ hv)
    cons.append(cp.square(nu) <= rows(m, m) @ hv)
    if K > 1:
        lu, lm, own = [], [], []
        for n in range(K):
            for j in range(K):
                if j != n:
                    lu.append(u[j])
                    lm.append(m[n])
                    own.append(n)
        P = _sel(K, own)
        R = rows(lu, lm)
        cons += [P @ nu >= R @ hv, P @ nu >= -(R @ hv)]
    cons.append(cp.square(gam) <= rows(g[:K], g[:K]) @ hv)
    c = _binomial_weights(pi, K) / K
    prob = cp.Problem(cp.Maximize(c @ gam), cons)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            prob.solve(solver="CLARABEL")
        except cp.error.SolverError as err:
            return NoiseRelaxation(K, L, pi, sigma, Delta0, eta_v, beta_v, math.nan, float(b.value), math.nan,
                                   f"failed: {err}", time.perf_counter() - t0)
    val = float(prob.value) if prob.value is not None else math.nan
    return NoiseRelaxation(K, L, pi, sigma, Delta0, eta_v, beta_v, val, float(b.value), val / float(b.value),
                           str(prob.status), time.perf_counter() - t0)


#: test functions of the lower-bound search (``L``-smooth, ``inf f = 0``, ``f(x_0) = Δ0``)
SEARCH_FUNCTIONS = ("quadratic", "huber")
#: noise laws of the lower-bound search (each a martingale difference with ``E‖ξ‖² = σ²``)
SEARCH_NOISES = ("gaussian", "sign", "spikes")


def t3_noise_search(K: int, *, sigma: float, L: float = 1.0, pi: float = 1.0, Delta0: float = 1.0,
                    eta: float | None = None, beta: float | None = None, paths: int = 20000, seed: int = 0) -> dict:
    r"""Values T3's left-hand side actually takes: T3's algorithm (one layer on its own clock,
    momentum with a stochastic warm start, LMO step ``−t·m/‖m‖``, ``t = η/π``; ``η, β`` from T3's rule
    unless given) run by Monte Carlo (``paths`` runs, vectorised; an implementation independent of
    :mod:`dropmuon.verification.dropmuon`) on every function of :data:`SEARCH_FUNCTIONS` (1-D: ``(L/2)x²``
    from ``x_0 = sqrt(2Δ0/L)``; the Huber function with threshold ``a = sqrt(Δ0/L)`` from ``1.5a``) under
    every noise law of :data:`SEARCH_NOISES` (Gaussian; ``±σ`` along the gradient; spikes ``±σ/sqrt(p)``
    with probability ``p = 0.02``). Each value is a *lower* bound on the worst case up to its Monte Carlo
    error: ``{(function, noise): (mean, standard error)}`` and ``"best"``.

    >>> r = t3_noise_search(3, sigma=0.0, paths=10)
    >>> round(r[("quadratic", "gaussian")][0], 5)  # deterministic: steps of length sqrt(2/3) from √2
    0.74357
    """
    from dropmuon.theory import get_theorem

    from .allpairs import _binomial_weights

    th = get_theorem("smooth-stochastic")
    kw = {k: v for k, v in (("eta", eta), ("beta", beta)) if v is not None}
    b = th.evaluate(K, statement="rate", L=[L], pi=[pi], sigma=[sigma], Delta0=Delta0, **kw)
    eta_v, beta_v = float(b.parameters["eta"]), float(b.parameters["beta"])
    t = eta_v / pi
    c = _binomial_weights(pi, K) / K
    a = math.sqrt(Delta0 / L)
    out = {}
    for fun in SEARCH_FUNCTIONS:
        for law in SEARCH_NOISES:
            rng = np.random.default_rng([seed, SEARCH_FUNCTIONS.index(fun), SEARCH_NOISES.index(law)])
            x = np.full(paths, math.sqrt(2 * Delta0 / L) if fun == "quadratic" else 1.5 * a)

            def grad(x):
                if fun == "quadratic":
                    return L * x
                return np.where(np.abs(x) <= a, L * x, L * a * np.sign(x))

            def noise(g):
                if sigma == 0:
                    return np.zeros_like(g)
                if law == "gaussian":
                    return sigma * rng.standard_normal(g.shape)
                sgn = rng.choice([-1.0, 1.0], size=g.shape)
                if law == "sign":
                    return sigma * sgn * np.where(g != 0, np.sign(g), 1.0)
                p = 0.02
                return sigma / math.sqrt(p) * sgn * (rng.random(g.shape) < p)

            g = grad(x)
            m = g + noise(g)
            acc = np.zeros(paths)
            for n in range(K):
                g = grad(x)
                acc += c[n] * np.abs(g)
                m = (1 - beta_v) * m + beta_v * (g + noise(g))
                x = x - t * np.where(m != 0, np.sign(m), 0.0)
            out[(fun, law)] = (float(acc.mean()), float(acc.std(ddof=1) / math.sqrt(paths)) if paths > 1 else 0.0)
    out["best"] = max(out.items(), key=lambda kv: kv[1][0])
    return out
