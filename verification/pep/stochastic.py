r"""T3's noise, certified from above: a second-moment relaxation of the stochastic worst case.

**Setting** (one layer, T3's algorithm on its own clock; ``docs/theory.md`` §T3). ``f`` is
``L``-smooth with ``f(x_0) − inf f ≤ Δ0``; at its ``n``-th update the layer draws a stochastic
gradient ``g_n + ξ_n`` at its own iterate ``x_n`` (``g_n = ∇f(x_n)``), with noise that is a
martingale difference with ``E[‖ξ_n‖² | past] ≤ σ²``; momentum ``m_n = (1−β)m_{n−1} + β(g_n+ξ_n)``,
warm-started at ``m_{−1} = g_0 + ξ'`` (its own noise); the step is the LMO of the Frobenius ball of
radius ``t = η/π``, ``x_{n+1} = x_n − t·m_n/‖m_n‖``. With i.i.d. sampling the rate statement's
left-hand side is ``(1/K) Σ_{n<K} c_n E‖g_n‖`` (binomial weights ``c_n``, as in the reduction of
:mod:`dropmuon.verification.pep.certificate`).

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
``relaxation`` everywhere: it can lie above the true worst case, never below it. Beyond ``K = 20``
the pairwise conditions are kept only between iterates at most a few steps apart (fewer
conditions: still an upper bound, a little looser), which makes the problem chordal and linear in
``K`` (:func:`banded_noise_relaxation`). Its value comes from an interior-point solver and, unlike
T1's certificates, is not checked in exact arithmetic.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["NoiseRelaxation", "t3_noise_relaxation", "banded_noise_relaxation", "t3_noise_search", "MAX_K", "ALL_PAIRS_K",
           "DEFAULT_BAND", "SEARCH_FUNCTIONS", "SEARCH_NOISES"]

#: the largest K accepted. The relaxation keeps its pairwise conditions within a band of iterates
#: and is solved over chordal cliques (:func:`banded_noise_relaxation`), so it grows linearly in K:
#: at K = 50 with band 4 it took 12 s of CPU and 333 MB (2-core AMD EPYC, 2026-12-07)
MAX_K = 200
#: up to this K every pair is kept (the band is K: the full relaxation); beyond it the band is
#: :data:`DEFAULT_BAND`
ALL_PAIRS_K = 20
#: the band beyond :data:`ALL_PAIRS_K` (a looser, still valid relaxation: 6% above all pairs at
#: K = 10, σ = 3 with band 3, 1.5% with band 3 at K = 6, σ = 1)
DEFAULT_BAND = 4


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
    band: int
    kind: str = "relaxation"


def t3_noise_relaxation(K: int, *, sigma: float, L: float = 1.0, pi: float = 1.0, Delta0: float = 1.0,
                        eta: float | None = None, beta: float | None = None, band: int | None = None) -> NoiseRelaxation:
    """The relaxation of the module docstring, beside T3's bound (step rule of T3 unless ``eta`` /
    ``beta`` are given), solved by :func:`banded_noise_relaxation` with ``band`` (default: all pairs up
    to ``K =`` :data:`ALL_PAIRS_K`, then :data:`DEFAULT_BAND`). Requires ``1 ≤ K ≤`` :data:`MAX_K`."""
    from dropmuon.theory._validation import check_positive_int

    K = check_positive_int("K", K)
    if K > MAX_K:
        raise ValueError(f"K = {K} is beyond the noise relaxation's size here; the largest K accepted is {MAX_K}")
    if band is None:
        band = K if K <= ALL_PAIRS_K else DEFAULT_BAND
    band = min(check_positive_int("band", band), K)
    eta_v, beta_v, bound, sigma, L, pi, Delta0 = _t3_setting(K, sigma, L, pi, Delta0, eta, beta)
    val, status, sec = banded_noise_relaxation(K, sigma=sigma, eta=eta_v, beta=beta_v, band=band, L=L, pi=pi,
                                               Delta0=Delta0)
    status = {"Solved": "optimal", "AlmostSolved": "inaccurate"}.get(status, f"failed ({status})")
    if status.startswith("failed"):
        val = math.nan
    return NoiseRelaxation(K, L, pi, sigma, Delta0, eta_v, beta_v, val, bound, val / bound, status, sec, band)


def _t3_setting(K, sigma, L, pi, Delta0, eta, beta):
    """Checked inputs, T3's ``η, β`` (its rule unless given) and its bound."""
    from dropmuon.theory import get_theorem
    from dropmuon.theory._validation import check_scalar

    sigma = check_scalar("sigma", sigma, "nonnegative")
    L = check_scalar("L", L, "positive")
    pi = check_scalar("pi", pi, "probability")
    Delta0 = check_scalar("Delta0", Delta0, "positive")
    kw = {}
    if eta is not None:
        kw["eta"] = check_scalar("eta", eta, "positive")
    if beta is not None:
        kw["beta"] = check_scalar("beta", beta, "probability")
    b = get_theorem("smooth-stochastic").evaluate(K, statement="rate", L=[L], pi=[pi], sigma=[sigma], Delta0=Delta0, **kw)
    return float(b.parameters["eta"]), float(b.parameters["beta"]), float(b.value), sigma, L, pi, Delta0


def _cvxpy_relaxation(K: int, *, sigma: float, L: float = 1.0, pi: float = 1.0, Delta0: float = 1.0,
                      eta: float | None = None, beta: float | None = None) -> NoiseRelaxation:
    """The all-pairs relaxation written directly in cvxpy (one ``(3K+2)²`` cone; ``K ≤ 20``): the
    cross-check of :func:`banded_noise_relaxation` at ``band = K``."""
    import cvxpy as cp

    from .allpairs import _binomial_weights

    if K > ALL_PAIRS_K:
        raise ValueError(f"K = {K}: the cvxpy relaxation is for K <= {ALL_PAIRS_K}")
    eta_v, beta_v, bound, sigma, L, pi, Delta0 = _t3_setting(K, sigma, L, pi, Delta0, eta, beta)
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
            return NoiseRelaxation(K, L, pi, sigma, Delta0, eta_v, beta_v, math.nan, bound, math.nan,
                                   f"failed: {err}", time.perf_counter() - t0, K)
    val = float(prob.value) if prob.value is not None else math.nan
    return NoiseRelaxation(K, L, pi, sigma, Delta0, eta_v, beta_v, val, bound, val / bound,
                           str(prob.status), time.perf_counter() - t0, K)


#: test functions of the lower-bound search (``L``-smooth, ``inf f = 0``, ``f(x_0) = Δ0``)
SEARCH_FUNCTIONS = ("quadratic", "huber")
#: noise laws of the lower-bound search (each a martingale difference with ``E‖ξ‖² = σ²``)
SEARCH_NOISES = ("gaussian", "sign", "spikes")


def t3_noise_search(K: int, *, sigma: float, L: float = 1.0, pi: float = 1.0, Delta0: float = 1.0,
                    eta: float | None = None, beta: float | None = None, paths: int = 20000, seed: int = 0) -> dict:
    r"""Values T3's left-hand side actually takes: T3's algorithm (one layer on its own clock,
    momentum with a stochastic warm start, LMO step ``−t·m/‖m‖``, ``t = η/π``; ``η, β`` from T3's rule
    unless given) run by Monte Carlo (``paths`` runs, vectorised; an implementation independent of
    :mod:`dropmuon.verification.synthetic.dropmuon`) on every function of :data:`SEARCH_FUNCTIONS` (1-D: ``(L/2)x²``
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


def banded_noise_relaxation(K: int, *, sigma: float, eta: float, beta: float, band: int = 2, L: float = 1.0,
                            pi: float = 1.0, Delta0: float = 1.0) -> tuple[float, str, float]:
    r"""The relaxation of the module docstring with every pairwise condition kept only between
    iterates at most ``band`` apart (interpolation, the noise's orthogonality to its past, the LMO
    comparisons): fewer constraints, so still an upper bound on the worst case (looser than the
    all-pairs relaxation, equal to it once ``band ≥ K``). In the time-ordered basis
    ``(m_{−1}, g_0, m_0, x_1, g_1, m_1, x_2, …, x_K, g_K)`` every kept condition touches Gram entries
    within ``3·band + 3`` of the diagonal, so the PSD cone splits exactly into cliques of size
    ``3·band + 4`` (chordal; as in :mod:`.banded`) and the problem goes to Clarabel directly: time
    and memory grow linearly in ``K``. ``η, β``: the step and momentum. Returns
    ``(value, status, seconds)``."""
    import clarabel
    import scipy.sparse as sp

    from .allpairs import _binomial_weights

    t = eta / pi
    D = 3 * K + 2
    bw = 3 * band + 3
    s = min(bw + 1, D)
    bw = s - 1

    def gi(n):
        return {1 + 3 * n: 1.0}

    def mi(n):  # n = −1 .. K−1
        return {0: 1.0} if n < 0 else {2 + 3 * n: 1.0}

    def xi_(n):  # position x_n
        return {} if n == 0 else {3 * n: 1.0}

    def add(*terms):
        out = {}
        for c, v in terms:
            for k, a in v.items():
                out[k] = out.get(k, 0.0) + c * a
        return {k: a for k, a in out.items() if a != 0.0}

    noise_w = add((1.0, mi(-1)), (-1.0, gi(0)))
    noise = [add((1 / beta, mi(n)), (-(1 - beta) / beta, mi(n - 1)), (-1.0, gi(n))) for n in range(K)]
    u = [add((1 / t, xi_(n)), (-1 / t, xi_(n + 1))) for n in range(K)]
    from .banded import _index_band, clique_rows

    hidx, nh = _index_band(D, bw)  # band index of Gram entries (p, q), p ≤ q ≤ p + bw
    nf, nn, ng = K + 1, K, K
    F0, N0, G0_, H0 = 0, nf, nf + nn, nf + nn + ng
    nv = H0 + nh

    def quad(a, b):  # ⟨a, b⟩ as {variable: coefficient}
        out = {}
        for p, x in a.items():
            for q, y in b.items():
                lo, hi = (p, q) if p <= q else (q, p)
                if hi - lo > bw:
                    raise AssertionError("entry outside the band")
                k = H0 + hidx[lo, hi - lo]
                out[k] = out.get(k, 0.0) + x * y
        return out

    rows = {"eq": [], "le": []}  # (coefficients, rhs): coefficients·v = rhs or ≤ rhs

    def le(coef, rhs=0.0):
        rows["le"].append((coef, rhs))

    def eq(coef, rhs=0.0):
        rows["eq"].append((coef, rhs))

    def comb(*parts):
        out = {}
        for c, d in parts:
            for k, a in d.items():
                out[k] = out.get(k, 0.0) + c * a
        return out

    le({F0: 1.0}, Delta0)
    for n in range(K + 1):
        le(comb((1 / (2 * L), quad(gi(n), gi(n))), (-1.0, {F0 + n: 1.0})))
    for i in range(K + 1):
        for j in range(max(0, i - band), min(K, i + band) + 1):
            if i == j:
                continue
            dx = add((1.0, xi_(i)), (-1.0, xi_(j)))
            sg = add((1.0, gi(i)), (1.0, gi(j)))
            dg = add((1.0, gi(i)), (-1.0, gi(j)))
            le(comb((1.0, {F0 + j: 1.0}), (-1.0, {F0 + i: 1.0}), (0.5, quad(sg, dx)), (1 / (4 * L), quad(dg, dg)),
                    (-L / 4, quad(dx, dx))))
    le(quad(noise_w, noise_w), sigma**2)
    eq(quad(noise_w, gi(0)))
    for n in range(K):
        le(quad(noise[n], noise[n]), sigma**2)
        past = [gi(j) for j in range(max(0, n - band), n + 1)]
        past += [xi_(j) for j in range(max(1, n - band), n + 1)]
        past += [noise[j] for j in range(max(0, n - band), n)]
        if n <= band:
            past.append(noise_w)
        for v in past:
            eq(quad(noise[n], v))
        le(quad(u[n], u[n]), 1.0)
        eq(comb((1.0, {N0 + n: 1.0}), (-1.0, quad(u[n], mi(n)))))
        for j in range(max(0, n - band), min(K - 1, n + band) + 1):
            if j != n:
                q_ = quad(u[j], mi(n))
                le(comb((1.0, q_), (-1.0, {N0 + n: 1.0})))
                le(comb((-1.0, q_), (-1.0, {N0 + n: 1.0})))

    def to_csc(rs, sign=1.0):
        I, J, V, b = [], [], [], []
        for r, (coef, rhs) in enumerate(rs):
            for k, a in coef.items():
                I.append(r)
                J.append(k)
                V.append(sign * a)
            b.append(rhs)
        return sp.csc_matrix((V, (I, J)), shape=(len(rs), nv)), np.array(b, dtype=float)

    Aeq, beq = to_csc(rows["eq"])
    Ale, ble = to_csc(rows["le"])
    # second-order cones: ν_n² ≤ ‖m_n‖², γ_n² ≤ ‖g_n‖² as (e+1, 2x, e−1) ∈ SOC(3)
    soc_rows, soc_b = [], []
    for n in range(K):
        for var, vec in ((N0 + n, mi(n)), (G0_ + n, gi(n))):
            e = quad(vec, vec)
            soc_rows += [{k: -a for k, a in e.items()}, {var: -2.0}, {k: -a for k, a in e.items()}]
            soc_b += [1.0, 0.0, -1.0]
    I, J, V = [], [], []
    for r, coef in enumerate(soc_rows):
        for k, a in coef.items():
            I.append(r)
            J.append(k)
            V.append(a)
    Asoc = sp.csc_matrix((V, (I, J)), shape=(len(soc_rows), nv))
    Apsd, starts = clique_rows(D, s, hidx, H0, nv)
    r = Apsd.shape[0]
    A = sp.vstack([Aeq, Ale, Asoc, Apsd]).tocsc()
    bvec = np.concatenate([beq, ble, np.array(soc_b), np.zeros(r)])
    cones = [clarabel.ZeroConeT(Aeq.shape[0]), clarabel.NonnegativeConeT(Ale.shape[0])]
    cones += [clarabel.SecondOrderConeT(3) for _ in range(2 * K)]
    cones += [clarabel.PSDTriangleConeT(s) for _ in starts]
    q = np.zeros(nv)
    q[G0_:G0_ + K] = -_binomial_weights(pi, K) / K
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    t1 = time.perf_counter()
    sol = clarabel.DefaultSolver(sp.csc_matrix((nv, nv)), q, A, bvec, cones, settings).solve()
    return float(-sol.obj_val), str(sol.status), time.perf_counter() - t1
