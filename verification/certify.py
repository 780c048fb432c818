r"""Exact worst cases of T1's left-hand side by performance estimation (PEP, a small SDP).

The checks in :mod:`.checks` run Drop-Muon on chosen instances; this module answers, for given
``L``, sampling and ``K``, what the *worst case over the whole function class* is, how far T1's
bound is from it, and which function attains it (the derivation is ``docs/certify.md``).

**Reduction (separable class, A1 in Lipschitz form, Frobenius layers).** ``f = Σ_i f_i(X_i)`` with
each ``f_i`` ``L_i``-smooth. Layer ``i`` moves only when sampled, by the linear step
``X_i ← X_i − M_i/L_i`` (``M_i = ∇_i f`` for T1; with momentum ``β`` the frozen-when-unsampled
momentum), so after ``k`` i.i.d. rounds it sits at its ``N``-th own iterate,
``N ~ Binomial(k, π_i)``. Both statements of T1 are sums over layers of expectations of one layer's
gradient norms, so only the marginals ``π_i`` matter and

.. math::

    \frac1K\sum_{k<K}\mathbb E\,\|\nabla f_i(X_i^k)\|^2 = \frac1K\sum_{n<K} c_n \|g_{i,n}\|^2,
    \qquad c_n = \sum_{k=n}^{K-1}\binom kn \pi_i^n(1-\pi_i)^{k-n}.

By scale invariance (``f_i(x) = Δ_i h(x\sqrt{L_i/Δ_i})`` with ``h`` 1-smooth) this is at most
``L_i Δ_i W(π_i, K)``, where ``W`` is the value of a ``(K+1)``-point PEP for one 1-smooth function
with ``f(x_0) − f^* ≤ 1``; the initial gap splits as ``Δ0 = Σ_i Δ_i``, so the worst case of the
weighted statement is ``Δ0 max_i π_i W(π_i, K)`` and of the rate statement ``Δ0 max_i L_i W(π_i, K)``.
For ``β = 1`` the SDP value is the closed form ``W = 2(1 − (1−π)^K)/(πK)`` (:func:`closed_form_factor`).

**Exact versus relaxation.** The layer PEP uses the interpolation conditions for ``L``-smooth
functions (Taylor, Hendrickx, Glineur 2017, arXiv 1512.07516) and ``f(x_n) − f^* ≥ ‖g_n‖²/(2L)``
(what ``inf f = f^*`` implies): necessary conditions, so its value bounds the worst case from
above; it is exact where the interpolated witness function (a 1-D piecewise quadratic,
:class:`SmoothInterpolant`) run through :func:`.dropmuon.paths` attains it. For coupled functions
(A1 in descent form only) :func:`tree_worst_case` with ``coupled=True`` is only an upper bound:
interpolation conditions for that class are not known.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from dropmuon.theory import RPT, Independent, get_theorem
from dropmuon.theory._validation import check_layer_array, check_positive_int, check_scalar

from .pep.budget import MAX_K, MAX_SECONDS, check_fits

__all__ = [
    "certify",
    "Certificate",
    "layer_worst_case",
    "LayerPEP",
    "tree_worst_case",
    "TreePEP",
    "closed_form_factor",
    "certified_iterations",
    "compare_optimal_sampling",
    "SamplingComparison",
    "SmoothInterpolant",
    "InterpolatedProblem",
    "SUPPORTED_THEOREMS",
    "STATUSES",
    "SOLVERS",
    "ATTAIN_RTOL",
    "MAX_K",
    "MAX_SECONDS",
    "check_fits",
]

#: the theorems whose algorithm has linear steps (what the reduction needs)
SUPPORTED_THEOREMS = ("smooth-deterministic",)
#: solver statuses of a certificate: ``optimal`` (solver converged), ``inaccurate`` (converged to
#: reduced accuracy: read the duality gap), ``failed`` (no usable solution)
STATUSES = ("optimal", "inaccurate", "failed")
#: SDP solvers that ship with cvxpy
SOLVERS = ("CLARABEL", "SCS")
#: attainment tolerance: the witness is built from the solver's primal solution (interior-point
#: accuracy ~1e-8 in the Gram matrix, square-rooted by the factorisation to ~1e-4 in the points in
#: the worst case), so an attained value within 1e-4 relative of the SDP value counts as attained
ATTAIN_RTOL = 1e-4
#: a Gram matrix with second eigenvalue below this fraction of the first is read as rank one (1-D)
RANK_TOL = 1e-6
#: exact enumeration of the witness run over sampling paths up to this many paths
MAX_WITNESS_PATHS = 4096


# -- sparse Gram functionals ----------------------------------------------------------------------

def _padded(M: sp.csr_matrix):
    M = sp.csr_matrix(M)
    M.sum_duplicates()
    n = M.shape[0]
    counts = np.diff(M.indptr)
    w = max(1, int(counts.max(initial=0)))
    idx = np.zeros((n, w), dtype=np.int64)
    val = np.zeros((n, w))
    rows = np.repeat(np.arange(n), counts)
    pos = np.arange(M.nnz) - np.repeat(M.indptr[:-1], counts)
    idx[rows, pos] = M.indices
    val[rows, pos] = M.data
    return idx, val


def _outer(A, B, d: int) -> sp.csr_matrix:
    """Row ``r`` of the result is ``vec(a_r b_rᵀ)`` (``d²`` entries): ``⟨a_r, b_r⟩ = row · vec(H)``
    for a Gram matrix ``H`` of the basis (``A``, ``B``: rows are sparse vectors in that basis)."""
    ia, va = _padded(A)
    ib, vb = _padded(B)
    n = ia.shape[0]
    cols = (ia[:, :, None] * d + ib[:, None, :]).reshape(n, -1)
    vals = (va[:, :, None] * vb[:, None, :]).reshape(n, -1)
    rows = np.repeat(np.arange(n), cols.shape[1])
    M = sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(n, d * d))
    M.eliminate_zeros()
    return M


def _sel(n: int, idx, coef=1.0, m: int | None = None) -> sp.csr_matrix:
    """Rows ``e_idx[r]`` (scaled) as an ``len(idx) × n`` sparse matrix."""
    idx = np.asarray(idx, dtype=np.int64)
    coef = np.broadcast_to(np.asarray(coef, dtype=float), idx.shape)
    return sp.csr_matrix((coef, (np.arange(len(idx)), idx)), shape=(len(idx), n))


class _SDP:
    """``max c_s·s + Σ_b ⟨C_b, H_b⟩`` s.t. ``S s + Σ_b A_b vec(H_b) ≤ r``, ``H_b ⪰ 0``."""

    def __init__(self, dims, nscalar: int):
        self.dims = list(dims)
        self.ns = nscalar
        self.S, self.A, self.r = [], [[] for _ in self.dims], []

    def add(self, S, A: dict, r):
        m = S.shape[0]
        self.S.append(sp.csr_matrix(S))
        for b, d in enumerate(self.dims):
            self.A[b].append(sp.csr_matrix(A[b]) if b in A else sp.csr_matrix((m, d * d)))
        self.r.append(np.broadcast_to(np.asarray(r, dtype=float), (m,)))

    def solve(self, c_s, C: dict, solver: str, *, min_trace_at: float | None = None):
        import cvxpy as cp

        S = sp.vstack(self.S).tocsr()
        A = [sp.vstack(a).tocsr() for a in self.A]
        r = np.concatenate(self.r)
        s = cp.Variable(self.ns)
        H = [cp.Variable((d, d), symmetric=True) for d in self.dims]
        vecs = [cp.vec(h, order="F") for h in H]
        lhs = S @ s
        for a, v in zip(A, vecs):
            lhs = lhs + a @ v
        ineq = lhs <= r
        psd = [h >> 0 for h in H]
        obj = c_s @ s
        for b, v in enumerate(vecs):
            if b in C:
                obj = obj + C[b] @ v
        cons = [ineq] + psd
        if min_trace_at is not None:  # PEPit's trace heuristic: a low-rank optimal solution
            prob = cp.Problem(cp.Minimize(sum(cp.trace(h) for h in H)), cons + [obj >= min_trace_at])
        else:
            prob = cp.Problem(cp.Maximize(obj), cons)
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():  # "may be inaccurate": the status field reports it
                warnings.simplefilter("ignore", UserWarning)
                prob.solve(solver=solver)
        except cp.error.SolverError as e:
            return {"status": "failed", "raw_status": f"solver error: {e}", "time": time.perf_counter() - t0}
        elapsed = time.perf_counter() - t0
        raw = prob.status
        if raw not in ("optimal", "optimal_inaccurate") or s.value is None:
            return {"status": "failed", "raw_status": raw, "time": elapsed}
        sv = np.asarray(s.value)
        Hv = [np.asarray(h.value) for h in H]
        primal = float(c_s @ sv + sum(C[b] @ Hv[b].ravel(order="F") for b in C))
        out = {"status": "optimal" if raw == "optimal" else "inaccurate", "raw_status": raw,
               "time": elapsed, "s": sv, "H": Hv, "primal": primal}
        viol = S @ sv + sum(a @ h.ravel(order="F") for a, h in zip(A, Hv)) - r
        out["primal_infeasibility"] = float(max(0.0, viol.max(initial=0.0),
                                                *[-np.linalg.eigvalsh(h)[0] for h in Hv]))
        if min_trace_at is None:
            lam = np.asarray(ineq.dual_value, dtype=float)
            dual = float(lam @ r)
            # dual slack Z_b = mat(A_bᵀλ − C_b) ⪰ 0 and stationarity in the free scalars Sᵀλ = c_s
            zmin = []
            for b, (a, d) in enumerate(zip(A, self.dims)):
                z = a.T @ lam - (C[b] if b in C else 0.0)
                Z = np.asarray(z).reshape(d, d, order="F")
                zmin.append(np.linalg.eigvalsh((Z + Z.T) / 2)[0])
            out.update(dual=dual, duality_gap=abs(dual - primal),
                       dual_infeasibility=float(max(0.0, -lam.min(initial=0.0), -min(zmin),
                                                    np.abs(S.T @ lam - c_s).max(initial=0.0))),
                       multipliers=lam)
        return out


# -- one layer: the (K+1)-point PEP ---------------------------------------------------------------

def _binomial_weights(pi: float, K: int) -> np.ndarray:
    r"""``c_n = Σ_{k=n}^{K−1} P(Binomial(k, π) = n)`` for ``n = 0..K−1``: how often, summed over
    the rounds ``k < K``, the layer sits at its ``n``-th own iterate (``Σ_n c_n = K``). Computed as
    ``P(Binomial(K, π) ≥ n+1)/π`` (the sum telescopes: the ``(n+1)``-th success falls at round
    ``k+1 ≤ K`` with probability ``π·P(Bin(k, π) = n)``), O(K) instead of O(K²).

    >>> _binomial_weights(0.5, 2).tolist()
    [1.5, 0.5]
    """
    from scipy.stats import binom

    return binom.sf(np.arange(K), K, pi) / pi


def closed_form_factor(pi: float, K: int) -> float:
    r"""``W(π, K) = 2(1 − (1−π)^K)/(πK)``: the worst case of
    ``(1/K) Σ_{k<K} E‖∇f(x^k)‖²`` over 1-smooth ``f`` with ``f(x^0) − inf f ≤ 1`` for gradient
    descent with step 1 run only when a ``Bernoulli(π)`` coin comes up (``β = 1``).

    Upper bound: the descent inequality ``f(x_{n+1}) ≤ f(x_n) − ‖g_n‖²/2`` gives
    ``π Σ_k E‖g^k‖² ≤ 2(Δ − E[f(x^K) − f^*])`` and ``E[f(x^K) − f^*] ≥ P(N_K = 0)·Δ = (1−π)^K Δ``;
    attained by ``f = ½x²`` (one step reaches the minimum), so it is the exact worst case
    (``docs/certify.md``; the SDP reproduces it).

    >>> closed_form_factor(1.0, 4), closed_form_factor(0.5, 2)
    (0.5, 1.5)
    """
    pi = check_scalar("pi", pi, "probability")
    K = check_positive_int("K", K)
    return 2.0 * (1.0 - (1.0 - pi) ** K) / (pi * K)


@dataclass(frozen=True)
class LayerPEP:
    """The ``(K+1)``-point PEP of one layer, normalised to ``L = 1`` and ``f(x_0) − f^* ≤ 1``.

    ``value`` is ``W(π, K)`` (primal optimum), ``dual`` the dual bound ``λ_init`` (the multiplier of
    the initial condition: the weights of a proof that the left-hand side is at most ``dual·Δ``),
    ``points``/``gradients``/``values`` the 1-D worst-case data ``x_n, g_n, f_n`` (``f^* = 0``),
    ``rank`` the numerical rank of the Gram matrix it came from."""

    pi: float
    K: int
    beta: float
    value: float
    dual: float | None
    duality_gap: float | None
    primal_infeasibility: float | None
    dual_infeasibility: float | None
    status: str
    raw_status: str
    solver: str
    time: float
    points: np.ndarray | None = None
    gradients: np.ndarray | None = None
    values: np.ndarray | None = None
    rank: int | None = None
    eigenvalues: np.ndarray | None = None


def _chain_vectors(K: int, beta: float):
    """Positions and gradients of one layer's ``K+1`` own iterates (``L = 1``) as sparse rows in
    the basis ``(x_1, …, x_K, g_K)`` with ``x_0 = 0`` (translation invariance). The step is
    ``x_{n+1} = x_n − m_n``, ``m_n = (1−β)m_{n−1} + βg_n``, ``m_{−1} = g_0`` (warm start), so
    ``g_0 = x_0 − x_1`` and ``g_n = (d_n − (1−β)d_{n−1})/β`` with ``d_n = x_n − x_{n+1}``."""
    d = K + 1
    N = K + 1
    X = sp.lil_matrix((N, d))
    for n in range(1, N):
        X[n, n - 1] = 1.0
    X = X.tocsr()
    D = [X[n] - X[n + 1] for n in range(K)]  # d_n = x_n − x_{n+1}
    G = sp.lil_matrix((N, d))
    G = G.tocsr()
    rows = [D[0]]
    for n in range(1, K):
        rows.append((D[n] - (1.0 - beta) * D[n - 1]) / beta)
    rows.append(_sel(d, [K]))
    G = sp.vstack(rows).tocsr()
    return X, G, d


def _interpolation_rows(X, G, fidx, L: float, d: int, ns: int, pairs=None):
    """Rows ``f_j − f_i + ½⟨g_i+g_j, x_i−x_j⟩ + ‖g_i−g_j‖²/(4L) − (L/4)‖x_i−x_j‖² ≤ 0`` for
    every ordered pair ``i ≠ j``: the interpolation conditions of ``L``-smooth (nonconvex)
    functions, Taylor–Hendrickx–Glineur (2017) Thm 3.10 with ``μ = −L``."""
    N = X.shape[0]
    if pairs is None:
        I, J = np.nonzero(~np.eye(N, dtype=bool))
    else:
        I, J = pairs
    fidx = np.asarray(fidx)
    S = _sel(ns, fidx[J]) - _sel(ns, fidx[I])
    dx = X[I] - X[J]
    sg = G[I] + G[J]
    dg = G[I] - G[J]
    A = 0.5 * _outer(sg, dx, d) + (0.25 / L) * _outer(dg, dg, d) - (0.25 * L) * _outer(dx, dx, d)
    return S, A


def _check_K(K) -> int:
    K = check_positive_int("K", K)
    if K > MAX_K:
        raise ValueError(f"K = {K} is beyond what the performance-estimation SDP can solve here: its "
                         f"(K+1)x(K+1) cone needs memory ~K^4 and time ~K^6 (K = 50: ~18 s); the largest K "
                         f"accepted is {MAX_K}")
    return K


def layer_worst_case(pi: float, K: int, *, beta: float = 1.0, solver: str = "CLARABEL",
                     witness: bool = True) -> LayerPEP:
    r"""Solve the ``(K+1)``-point PEP of one layer (``L = 1``, ``f(x_0) − f^* ≤ 1``):

    .. math::

        W(π, K) = \max \frac1K\sum_{n<K} c_n\|g_n\|^2 \ \text{s.t.}\ f_0 ≤ 1,\
        f_n ≥ \tfrac12\|g_n\|^2,\ \text{THG interpolation between every pair},

    over the Gram matrix of ``(x_1..x_K, g_K)`` and the values ``f_n`` (``f^* = 0``), with
    ``c_n`` the binomial weights of :func:`_binomial_weights`. ``beta < 1``: the momentum variant
    (momentum frozen while the layer is not sampled, warm start at ``g_0``). With ``witness``, a
    rank-one (1-D) worst case is extracted, re-solving with PEPit's trace heuristic if the first
    solution has higher rank.

    >>> r = layer_worst_case(0.5, 2)
    >>> round(r.value, 6), r.status
    (1.5, 'optimal')
    """
    pi = check_scalar("pi", pi, "probability")
    K = _check_K(K)
    beta = check_scalar("beta", beta, "probability")
    solver = _check_solver(solver)
    X, G, d = _chain_vectors(K, beta)
    N = K + 1
    ns = N  # f_0..f_K, f* = 0
    sdp = _SDP([d], ns)
    sdp.add(_sel(ns, [0]), {}, 1.0)  # f_0 − f* ≤ 1
    sdp.add(-_sel(ns, np.arange(N)), {0: 0.5 * _outer(G, G, d)}, 0.0)  # ½‖g_n‖² − f_n ≤ 0
    S, A = _interpolation_rows(X, G, np.arange(N), 1.0, d, ns)
    sdp.add(S, {0: A}, 0.0)
    c = _binomial_weights(pi, K) / K
    C = np.asarray((_outer(G[:K], G[:K], d).T @ c)).ravel()
    res = sdp.solve(np.zeros(ns), {0: C}, solver)
    if res["status"] == "failed":
        return LayerPEP(pi, K, beta, math.nan, None, None, None, None, "failed", res["raw_status"], solver,
                        res["time"])
    out = dict(value=res["primal"], dual=res["dual"], duality_gap=res["duality_gap"],
               primal_infeasibility=res["primal_infeasibility"],
               dual_infeasibility=res["dual_infeasibility"], status=res["status"],
               raw_status=res["raw_status"], time=res["time"])
    if witness:
        H, s = res["H"][0], res["s"]
        ev = np.linalg.eigvalsh(H)[::-1]
        if ev[1] > RANK_TOL * max(ev[0], 1e-300):
            low = sdp.solve(np.zeros(ns), {0: C}, solver, min_trace_at=res["primal"] * (1 - 1e-7))
            if low["status"] != "failed":
                H, s = low["H"][0], low["s"]
                ev = np.linalg.eigvalsh(H)[::-1]
                out["time"] += low["time"]
        w, V = np.linalg.eigh(H)
        u = math.sqrt(max(w[-1], 0.0)) * V[:, -1]
        x, g = X @ u, G @ u
        if g[0] < 0:
            x, g = -x, -g
        rank = int(np.sum(ev > RANK_TOL * max(ev[0], 1e-300)))
        out.update(points=x, gradients=g, values=np.asarray(s, dtype=float), rank=rank, eigenvalues=ev[:3])
    return LayerPEP(pi, K, beta, solver=solver, **out)


# -- the sampling tree (no reduction) ---------------------------------------------------------------

@dataclass(frozen=True)
class TreePEP:
    """A PEP over the full sampling tree: ``value`` (primal), ``dual``, ``duality_gap``, status,
    the number of tree nodes (points) and the solve time. ``coupled``: descent-form class
    (a relaxation: an upper bound only); otherwise the separable class with exact interpolation."""

    value: float
    dual: float | None
    duality_gap: float | None
    status: str
    raw_status: str
    coupled: bool
    nodes: int
    time: float
    statement: str
    K: int


def _tree(distribution, K: int):
    """Nodes ``(parent, S, prob, depth)`` of the sampling tree, breadth first (root first)."""
    nodes = [(-1, (), 1.0, 0)]
    level = [0]
    for k in range(K):
        nxt = []
        for v in level:
            for S, p in distribution.outcomes():
                if p > 0:
                    nodes.append((v, tuple(S), nodes[v][2] * p, k + 1))
                    nxt.append(len(nodes) - 1)
        level = nxt
    return nodes


def _tree_vectors(nodes, i: int, L: float, beta: float):
    """Layer ``i`` (1-based)'s position and gradient rows at every node, in the basis
    ``(x_root, g^v for every node v)`` of that layer's block."""
    n = len(nodes)
    d = n + 1
    X = [None] * n
    M = [None] * n
    G = sp.identity(d, format="csr")[1:]
    X[0] = _sel(d, [0])
    M[0] = G[0]  # warm start: momentum at the root's gradient
    for v in range(1, n):
        par, S, _, _ = nodes[v]
        if i in S:
            m = (1.0 - beta) * M[par] + beta * G[par]
            X[v] = X[par] - m / L
            M[v] = m
        else:
            X[v], M[v] = X[par], M[par]
    return sp.vstack(X).tocsr(), G, d


def tree_worst_case(L, distribution, K: int, *, statement: str = "rate", beta: float = 1.0,
                    coupled: bool = False, Delta0: float = 1.0, solver: str = "CLARABEL") -> TreePEP:
    r"""The worst case of T1's left-hand side by a PEP over the whole sampling tree (every path of
    ``K`` i.i.d. draws of ``distribution``, an ``RPT`` or ``Independent``), with no reduction.

    Every tree node ``v`` (probability ``P(v)``, depth ``k``) is a point ``X^v``; the objective is
    ``Σ_{v: k<K} P(v)/K · Σ_i α_i‖g_i^v‖²`` (``α_i = π_i/L_i`` weighted, ``1`` rate).

    * ``coupled=False`` (separable, A1 in Lipschitz form): one function ``f_i`` per layer with the
      THG interpolation conditions between all nodes, ``f_i(v) − f_i^* ≥ ‖g_i^v‖²/(2L_i)`` and
      ``Σ_i (f_i(root) − f_i^*) ≤ Δ0``. Exact where the reduction's witness attains it; it must
      equal :func:`certify` (a test of the reduction).
    * ``coupled=True`` (A1 in descent form only): one function ``f`` with the descent inequality
      ``f(X^p) ≤ f(X^q) + Σ_i [⟨g_i^q, X_i^p − X_i^q⟩ + (L_i/2)‖X_i^p − X_i^q‖²]`` for every ordered
      pair and ``f(X^v) − f^* ≥ Σ_i ‖g_i^v‖²/(2L_i)``. These conditions are necessary but not known
      to be sufficient (no interpolation theorem is known for this class), so the value is only an
      **upper bound** on the coupled worst case; it is exact where it meets the separable value.

    >>> round(tree_worst_case([1.0], Independent([0.5]), 2).value, 6)
    1.5
    """
    L = check_layer_array("L", L, "positive")
    K = check_positive_int("K", K)
    beta = check_scalar("beta", beta, "probability")
    Delta0 = check_scalar("Delta0", Delta0, "positive")
    solver = _check_solver(solver)
    if statement not in ("weighted", "rate"):
        raise ValueError(f"statement must be 'weighted' or 'rate'; got statement = {statement!r}")
    b = len(L)
    if distribution.nlayers != b:
        raise ValueError(f"the distribution has {distribution.nlayers} layers but L has {b}")
    pi = np.asarray(distribution.inclusion, dtype=float)
    alpha = pi / L if statement == "weighted" else np.ones(b)
    nodes = _tree(distribution, K)
    n = len(nodes)
    probs = np.array([nd[2] for nd in nodes])
    depth = np.array([nd[3] for nd in nodes])
    w = np.where(depth < K, probs / K, 0.0)
    blocks = [_tree_vectors(nodes, i + 1, L[i], beta) for i in range(b)]
    dims = [blk[2] for blk in blocks]
    C = {}
    if coupled:
        ns = n + 1  # f^v, f*
        fstar = n
        sdp = _SDP(dims, ns)
        sdp.add(_sel(ns, [0]) - _sel(ns, [fstar]), {}, Delta0)
        sdp.add(_sel(ns, np.full(n, fstar)) - _sel(ns, np.arange(n)),
                {i: _outer(G, G, d) / (2 * L[i]) for i, (X, G, d) in enumerate(blocks)}, 0.0)
        I, J = np.nonzero(~np.eye(n, dtype=bool))  # f_I ≤ f_J + ⟨g_J, x_I − x_J⟩ + (L/2)‖x_I − x_J‖²
        A = {}
        for i, (X, G, d) in enumerate(blocks):
            dx = X[I] - X[J]
            A[i] = -_outer(G[J], dx, d) - (L[i] / 2) * _outer(dx, dx, d)
        sdp.add(_sel(ns, I) - _sel(ns, J), A, 0.0)
    else:
        ns = b * (n + 1)  # per layer: f_i^v (v = 0..n−1), f_i^*
        sdp = _SDP(dims, ns)
        init = sp.csr_matrix((1, ns))
        for i, (X, G, d) in enumerate(blocks):
            off = i * (n + 1)
            fidx = off + np.arange(n)
            fstar = off + n
            init = init + _sel(ns, [off]) - _sel(ns, [fstar])
            sdp.add(_sel(ns, np.full(n, fstar)) - _sel(ns, fidx), {i: _outer(G, G, d) / (2 * L[i])}, 0.0)
            S, A = _interpolation_rows(X, G, fidx, L[i], d, ns)
            sdp.add(S, {i: A}, 0.0)
        sdp.add(init, {}, Delta0)
    for i, (X, G, d) in enumerate(blocks):
        C[i] = alpha[i] * np.asarray(_outer(G, G, d).T @ w).ravel()
    res = sdp.solve(np.zeros(ns), C, solver)
    if res["status"] == "failed":
        return TreePEP(math.nan, None, None, "failed", res["raw_status"], coupled, n, res["time"], statement, K)
    return TreePEP(res["primal"], res["dual"], res["duality_gap"], res["status"], res["raw_status"], coupled, n,
                   res["time"], statement, K)


# -- the witness: a 1-D L-smooth function through the worst-case points -------------------------------

class SmoothInterpolant:
    r"""A 1-D ``L``-smooth function through data ``(x_n, g_n, f_n)`` (exactly, when the data satisfy
    the THG conditions), built as in Taylor–Hendrickx–Glineur (2017): ``f ∈ F_{−L,L}`` iff
    ``h = f + (L/2)x² ∈ F_{0,2L}``, and the convex ``2L``-smooth interpolant of ``h``'s data is

    .. math::

        h(x) = \min_y\ L(x − y)^2 + φ(y),

    ``φ`` the lower convex envelope of the points ``(z_n, c_n)``, ``z_n = x_n − h'_n/(2L)``,
    ``c_n = h_n − h'_n{}^2/(4L)``. Whatever the data, ``h`` is convex and ``2L``-smooth (an
    infimal convolution with ``L(·)²``), so ``f = h − (L/2)x²`` is always ``L``-smooth: the witness
    belongs to the class even where the solver's data are slightly off. ``f`` is piecewise
    quadratic; :meth:`infimum` is exact.

    >>> s = SmoothInterpolant([1.0, 0.0], [1.0, 0.0], [0.5, 0.0], 1.0)
    >>> float(s.value(0.5)), float(s.grad(0.5)), s.infimum()
    (0.125, 0.5, 0.0)
    """

    def __init__(self, x, g, f, L: float):
        x, g, f = (np.asarray(a, dtype=float).ravel() for a in (x, g, f))
        self.L = check_scalar("L", L, "positive")
        hv, hg = f + 0.5 * self.L * x**2, g + self.L * x
        L2 = 2 * self.L
        z, c = x - hg / L2, hv - hg**2 / (2 * L2)
        order = np.lexsort((c, z))
        z, c = z[order], c[order]
        hull: list[int] = []
        for k in range(len(z)):
            if hull and abs(z[k] - z[hull[-1]]) <= 1e-15 * max(1.0, abs(z[k])):
                continue  # same z: the lower c came first
            while len(hull) >= 2:
                a, b_ = hull[-2], hull[-1]
                # drop b_ if it lies on or above the segment a–k
                if (c[b_] - c[a]) * (z[k] - z[a]) >= (c[k] - c[a]) * (z[b_] - z[a]):
                    hull.pop()
                else:
                    break
            hull.append(k)
        self.z, self.c = z[hull], c[hull]
        self.s = np.diff(self.c) / np.diff(self.z) if len(hull) > 1 else np.zeros(0)
        m = len(self.s)
        B = np.empty(2 * m)
        B[0::2] = self.z[:-1] + self.s / L2
        B[1::2] = self.z[1:] + self.s / L2
        self.B = B

    def _prox(self, x):
        x = np.asarray(x, dtype=float)
        L2 = 2 * self.L
        p = np.searchsorted(self.B, x)
        vert = p % 2 == 0
        j = p // 2
        jv = np.minimum(j, len(self.z) - 1)
        js = np.minimum(j, max(len(self.s) - 1, 0))
        if len(self.s):
            y = np.where(vert, self.z[jv], x - self.s[js] / L2)
            phi = np.where(vert, self.c[jv], self.c[js] + self.s[js] * (y - self.z[js]))
        else:
            y = np.full_like(x, self.z[0])
            phi = np.full_like(x, self.c[0])
        return y, phi

    def value(self, x):
        """``f(x)``."""
        y, phi = self._prox(x)
        return self.L * (x - y) ** 2 + phi - 0.5 * self.L * np.asarray(x) ** 2

    def grad(self, x):
        """``f'(x) = 2L(x − y*(x)) − Lx``."""
        y, _ = self._prox(x)
        return 2 * self.L * (x - y) - self.L * np.asarray(x)

    def infimum(self) -> float:
        """``inf f``, exactly: the minimum over the breakpoints and the vertices ``2z_j`` of the
        convex pieces (the other pieces are concave)."""
        cand = np.concatenate([self.B, 2 * self.z])
        return float(np.min(self.value(cand)))


def _witness_problem_class():
    from .problems import Constants, Problem, _norms

    class _Interpolated(Problem):
        def __init__(self, interpolant: SmoothInterpolant, layer: int, L, x0: float):
            b = len(L)
            self.name = f"PEP witness (layer {layer} of {b})"
            self.description = ("worst case of the layer PEP, interpolated by a 1-D piecewise quadratic "
                                 "(docs/certify.md); the other layers are zero functions")
            self.norms = _norms("frobenius", b)
            self.interp = interpolant
            self.layer = layer - 1
            self.x0 = tuple(np.full((1, 1), x0 if i == self.layer else 0.0) for i in range(b))
            for a in self.x0:
                a.setflags(write=False)
            self.fstar = interpolant.infimum()
            self.constants = Constants(L=np.asarray(L, dtype=float), lipschitz=True,
                                       derivation="THG interpolant: h = f + (L/2)x² convex and 2L-smooth")

        def _value(self, X):
            return float(self.interp.value(X[self.layer][0, 0]))

        def _grad(self, X, i):
            if i != self.layer:
                return np.zeros((1, 1))
            return np.full((1, 1), float(self.interp.grad(X[i][0, 0])))

    return _Interpolated


def InterpolatedProblem(interpolant: SmoothInterpolant, layer: int, L, x0: float):
    """A :class:`.problems.Problem` (1×1 Frobenius layers) whose layer ``layer`` (1-based) is the
    1-D function ``interpolant`` started at ``x0`` and whose other layers are zero functions:
    separable, A1 in Lipschitz form with the given ``L``, ``f* = interpolant.infimum()``."""
    return _witness_problem_class()(interpolant, layer, L, x0)


def _attain(wit: dict, layer: int, L, distribution, K: int, statement: str, beta: float, Delta0: float):
    """Run Drop-Muon on the witness (normalised data ``x, g, f`` of a 1-smooth function with gap 1,
    scaled to layer ``layer``'s ``L`` and to ``Δ0``) and return
    ``(lhs/Δ0_witness·Δ0, method, Δ0_witness, data)``."""
    from .dropmuon import SharpStep, as_sampler, count_paths, paths

    Li = float(L[layer - 1])
    x = np.asarray(wit["x"], dtype=float) * math.sqrt(Delta0 / Li)
    g = np.asarray(wit["g"], dtype=float) * math.sqrt(Li * Delta0)
    f = np.asarray(wit["f"], dtype=float) * Delta0
    interp = SmoothInterpolant(x, g, f, Li)
    prob = InterpolatedProblem(interp, layer, L, float(x[0]))
    dw = prob.delta0
    pi = np.asarray(distribution.inclusion, dtype=float)
    consts = {"L": np.asarray(L, dtype=float), "pi": pi}
    sampler = as_sampler(distribution)
    if count_paths(sampler, K) <= MAX_WITNESS_PATHS and K <= 64:
        run = paths(prob, SharpStep(L), sampler, K, beta=beta, method="exact")
        # T1's left-hand side (docs/theory.md §T1) on each path, from gnorms[n, k, i] = ‖∇_i f(X^k)‖_F
        alpha = consts["pi"] / consts["L"] if statement == "weighted" else np.ones(len(L))
        lhs = run.expectation((alpha * run.gnorms**2).sum(axis=2).mean(axis=1))
        method = "exact expectation over all sampling paths"
    else:
        # too many paths: the layer's own clock (the reduction) with Drop-Muon's own step on the
        # witness layer alone, weighted by the binomial law of its number of updates
        from .pep.layer import _run_own_clock, _weighted_sum

        gn, _ = _run_own_clock(interp, K, beta, float(x[0]), L=Li)
        alpha = pi[layer - 1] / Li if statement == "weighted" else 1.0
        lhs = alpha * _weighted_sum(float(pi[layer - 1]), K, gn) / K
        method = "layer's own clock (binomial weights) with Drop-Muon's step on the witness"
    data = {"layer": layer, "L": Li, "x": x.tolist(), "g": g.tolist(), "f": f.tolist(), "fstar": prob.fstar,
            "interpolation_error": float(max(np.max(np.abs(interp.value(x) - f)),
                                             np.max(np.abs(interp.grad(x) - g)))),
            "function": wit.get("function", "1-D piecewise quadratic: THG interpolant (h = f + (L/2)x² convex, 2L-smooth)")}
    return lhs * Delta0 / dw, method, dw, data


# -- the front door ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Certificate:
    r"""The worst case of one statement of T1 over the separable class (Frobenius layers, A1 in
    Lipschitz form) for given ``L``, sampling and ``K``, **bracketed**: ``lower ≤ worst case ≤ upper``.

    ``lower`` is attained: a function of the class (the SDP's interpolated worst case, or ``½x²``) run
    through the numpy Drop-Muon. ``upper`` is proved when ``rigorous``: for ``β = 1`` the closed form
    (:func:`closed_form_factor`), otherwise the banded PEP's dual multipliers checked in exact
    arithmetic (:mod:`dropmuon.verification.pep`). ``gap = (upper − lower)/upper``; ``exact`` when
    ``gap ≤ 1e-6``. ``worst_case`` is ``upper`` (never above it), ``ratio = worst_case/bound`` with
    ``bound`` T1's right-hand side; ``layer_factors`` the per-layer upper factors ``w_i``
    (``π_i W_i`` weighted, ``L_i W_i`` rate); ``layer`` the maximising layer (1-based); ``band`` the
    interpolation band of the proof (``None``: closed form). ``attained``: T1's left-hand side of
    Drop-Muon run on the maximising layer's witness inside the whole network (every sampling path
    when there are few, else the layer's own clock), rescaled to ``Δ0``. ``solver`` fields describe
    the SDP (``status`` one of :data:`STATUSES`, ``duality_gap`` in units of ``Δ0``, ``residuals``).
    ``bound_covers``: whether T1 covers the algorithm (``β = 1``).

    With ``solver="SCS"`` the all-pairs SDP is solved by cvxpy/SCS as a cross-check: no proof
    (``rigorous = False``, ``upper = None``) and ``worst_case`` is the solver's value.
    """

    theorem: str
    statement: str
    K: int
    L: tuple
    pi: tuple
    distribution: str
    beta: float
    Delta0: float
    worst_case: float
    lower: float
    upper: float | None
    gap: float
    rigorous: bool
    bound: float
    ratio: float
    bound_covers: bool
    layer: int
    layer_factors: tuple
    closed_form: float | None
    band: int | None
    status: str
    solver: str
    duality_gap: float
    residuals: dict
    solve_time: float
    witness: dict | None
    attained: float | None
    attained_method: str | None
    exact: bool | None
    source: str = "docs/certify.md"
    message: str = ""
    layer_peps: tuple = field(default=(), repr=False)

    def to_dict(self) -> dict:
        """JSON-ready fields (no solver internals)."""
        out = {k: getattr(self, k) for k in (
            "theorem", "statement", "K", "L", "pi", "distribution", "beta", "Delta0", "worst_case", "lower", "upper",
            "gap", "rigorous", "exact", "bound", "ratio", "bound_covers", "layer", "layer_factors", "closed_form",
            "band", "status", "solver", "duality_gap", "residuals", "solve_time", "witness", "attained",
            "attained_method", "source", "message")}
        out["L"], out["pi"], out["layer_factors"] = list(self.L), list(self.pi), list(self.layer_factors)
        return out


def _check_solver(solver: str) -> str:
    s = str(solver).upper()
    if s not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)} (they ship with cvxpy); got solver = {solver!r}")
    return s


def _check_theorem(theorem) -> str:
    th = get_theorem(theorem) if isinstance(theorem, str) else theorem
    name = getattr(th, "name", str(theorem))
    if name not in SUPPORTED_THEOREMS:
        raise ValueError(
            f"certify supports only smooth-deterministic (T1: sharp steps 1/L_i, linear in the gradient, "
            f"optionally with momentum beta); theorem {name} ({getattr(th, 'label', '?')}) uses "
            f"{getattr(th, 'step_rule_text', 'other steps')} — steps that are not linear in the gradient, "
            f"for which the layer's iterates are not a fixed linear recursion and the PEP reduction does not apply")
    return name


def _distribution(pi, start_probs, b):
    if (pi is None) == (start_probs is None):
        if pi is None and start_probs is None:
            raise ValueError("give the sampling: inclusion probabilities pi (independent layers) or RPT "
                             "start_probs, not neither")
        raise ValueError("give either pi or start_probs, not both")
    if start_probs is not None:
        d = RPT(start_probs)
        if d.nlayers != b:
            raise ValueError(f"start_probs has {d.nlayers} entries but L has {b} layers")
        pi_arr = np.asarray(d.inclusion, dtype=float)
        check_layer_array("pi", pi_arr, "probability")  # a layer never updated: π_i = 0
        return d, f"RPT(start_probs={np.round(np.asarray(start_probs, dtype=float), 6).tolist()})"
    pi_arr = check_layer_array("pi", pi, "probability")
    if len(pi_arr) != b:
        raise ValueError(f"pi has {len(pi_arr)} entries but L has {b} layers")
    return Independent(pi_arr), f"Independent(pi={np.round(pi_arr, 6).tolist()})"


def certify(theorem="smooth-deterministic", *, L, K: int, pi=None, start_probs=None, statement: str = "rate",
            beta: float = 1.0, Delta0: float = 1.0, solver: str = "CLARABEL", attain: bool = True,
            max_seconds: float = MAX_SECONDS) -> Certificate:
    r"""The worst case of T1's ``statement`` over separable Frobenius problems (A1 in Lipschitz form)
    for smoothness ``L``, the sampling (``pi``: independent layers, or RPT ``start_probs``; only the
    inclusion probabilities matter) and ``K`` iterations, bracketed by an attained lower bound and a
    proved upper bound (:class:`Certificate`).

    Per distinct ``π_i`` one layer bracket (:func:`dropmuon.verification.pep.layer_bracket`: the closed
    form for ``β = 1``; for ``β < 1`` the banded PEP with its dual checked exactly, the band widened
    until the bracket closes), then ``Δ0·max_i w_i`` (the gap goes to the worst layer; module
    docstring). With ``attain``, Drop-Muon is also run on the maximising layer's witness inside the
    whole network. ``beta < 1``: the momentum variant (momentum frozen while a layer is not sampled);
    T1 does not cover it and its bound is then only a reference (``bound_covers = False``).

    Refused before any work (``ValueError``, one line naming ``K`` and the largest ``K`` that fits)
    when the estimated time exceeds ``max_seconds`` or the estimated memory the machine's available
    memory.

    >>> c = certify(L=[1.0, 4.0], pi=[0.5, 1.0], K=2, statement="rate")
    >>> round(c.worst_case, 6), round(c.bound, 6), c.layer, c.exact, c.rigorous
    (4.0, 4.0, 2, True, True)
    """
    name = _check_theorem(theorem)
    L = check_layer_array("L", L, "positive")
    K = check_positive_int("K", K)
    beta = check_scalar("beta", beta, "probability")
    Delta0 = check_scalar("Delta0", Delta0, "positive")
    if statement not in ("weighted", "rate"):
        raise ValueError(f"statement must be 'weighted' or 'rate'; got statement = {statement!r}")
    solver = _check_solver(solver)
    max_seconds = check_scalar("max_seconds", max_seconds, "positive")
    dist, desc = _distribution(pi, start_probs, len(L))
    pi_arr = np.asarray(dist.inclusion, dtype=float)
    distinct = sorted(set(pi_arr.tolist()))
    check_fits(K, beta, solver=solver, max_seconds=max_seconds, layers=len(distinct))
    scale = pi_arr if statement == "weighted" else L
    th = get_theorem(name)
    bound = float(th.evaluate(K, statement=statement, L=L, pi=pi_arr, Delta0=Delta0).value)
    closed = None
    if beta == 1.0:
        cf = np.array([closed_form_factor(p, K) for p in pi_arr])
        closed = float(Delta0 * np.max(scale * cf))
    if solver == "SCS":
        return _certify_all_pairs(name, statement, K, L, pi_arr, dist, desc, beta, Delta0, solver, attain, bound,
                                  closed, scale)
    from .pep.layer import layer_bracket

    brackets = {p: layer_bracket(p, K, beta=beta) for p in distinct}
    Wl = np.array([brackets[p].lower for p in pi_arr.tolist()])
    proved = all(brackets[p].rigorous for p in distinct)
    Wu = np.array([brackets[p].upper if brackets[p].upper is not None else math.inf for p in pi_arr.tolist()])
    up_f, lo_f = scale * Wu, scale * Wl
    layer = int(np.argmax(up_f)) + 1
    lower = float(Delta0 * np.max(lo_f))
    upper = float(Delta0 * np.max(up_f)) if proved else None
    if upper is not None and lower > upper:
        raise RuntimeError(f"internal error: attained {lower!r} above the proved upper bound {upper!r}")
    gap = (upper - lower) / upper if upper else math.inf
    steps = [st for p in distinct for st in brackets[p].steps if "solver" in st]
    sdp = [st for st in steps if st["solver"] not in ("Solved", "AlmostSolved")]
    status = "failed" if sdp else ("inaccurate" if any(st["solver"] == "AlmostSolved" for st in steps) else "optimal")
    bands = [brackets[p].band for p in distinct if brackets[p].band is not None]
    witness = attained = method = None
    if attain:
        lay = int(np.argmax(lo_f)) + 1
        wit = brackets[pi_arr[lay - 1]].witness
        val, method, dw, data = _attain(wit, lay, L, dist, K, statement, beta, Delta0)
        attained = float(val)
        data.update(Delta0_witness=dw)
        witness = data
    exact = bool(proved and gap <= 1e-6)
    if proved:
        msg = (f"exact: the attained lower bound and the proved upper bound agree to {gap:.1e} (relative)" if exact
               else f"bracketed: the worst case lies in [{lower:.10g}, {upper:.10g}] (relative gap {gap:.1e})")
    else:
        msg = "not proved: no dual certificate passed the exact check; the lower bound is attained"
    sv = [brackets[p].solver_value for p in distinct if brackets[p].solver_value is not None]
    return Certificate(
        theorem=name, statement=statement, K=K, L=tuple(float(v) for v in L), pi=tuple(float(v) for v in pi_arr),
        distribution=desc, beta=beta, Delta0=Delta0, worst_case=upper if proved else lower, lower=lower, upper=upper,
        gap=float(gap), rigorous=proved, bound=bound, ratio=(upper if proved else lower) / bound,
        bound_covers=beta == 1.0, layer=layer, layer_factors=tuple(float(v) for v in up_f), closed_form=closed,
        band=max(bands) if bands else None, status=status if beta != 1.0 else "optimal",
        solver="closed form" if beta == 1.0 else "CLARABEL (banded, chordal)",
        duality_gap=float(max((abs(st["solver_value"] - st["upper"]) for st in steps if st.get("upper")),
                              default=0.0)) * Delta0,
        residuals={"solver_values": sv}, solve_time=float(sum(b.time for b in brackets.values())), witness=witness,
        attained=attained, attained_method=method, exact=exact, message=msg, layer_peps=tuple(brackets.values()))


def _certify_all_pairs(name, statement, K, L, pi_arr, dist, desc, beta, Delta0, solver, attain, bound, closed, scale):
    """The all-pairs SDP through cvxpy (SCS): a cross-check, not a proof."""
    peps = {p: layer_worst_case(p, K, beta=beta, solver=solver, witness=attain) for p in sorted(set(pi_arr.tolist()))}
    W = np.array([peps[p].value for p in pi_arr.tolist()])
    factors = scale * W
    statuses = [r.status for r in peps.values()]
    status = "failed" if "failed" in statuses else ("inaccurate" if "inaccurate" in statuses else "optimal")
    layer = int(np.nanargmax(factors)) + 1 if status != "failed" else 0
    worst = float(Delta0 * factors[layer - 1]) if status != "failed" else math.nan
    gap = max((r.duality_gap or 0.0) for r in peps.values()) if status != "failed" else math.nan
    residuals = {"primal_infeasibility": max((r.primal_infeasibility or 0.0) for r in peps.values()),
                 "dual_infeasibility": max((r.dual_infeasibility or 0.0) for r in peps.values())}
    witness = attained = method = None
    lower = math.nan
    if attain and status != "failed":
        pep = peps[pi_arr[layer - 1]]
        wit = {"x": pep.points, "g": pep.gradients, "f": pep.values}
        val, method, dw, data = _attain(wit, layer, L, dist, K, statement, beta, Delta0)
        attained = lower = float(val)
        data.update(rank=pep.rank, gram_eigenvalues=[float(e) for e in pep.eigenvalues], Delta0_witness=dw)
        witness = data
    return Certificate(
        theorem=name, statement=statement, K=K, L=tuple(float(v) for v in L), pi=tuple(float(v) for v in pi_arr),
        distribution=desc, beta=beta, Delta0=Delta0, worst_case=worst, lower=lower, upper=None, gap=math.inf,
        rigorous=False, bound=bound, ratio=worst / bound, bound_covers=beta == 1.0, layer=layer,
        layer_factors=tuple(float(v) for v in factors), closed_form=closed, band=None, status=status, solver=solver,
        duality_gap=float(gap), residuals=residuals, solve_time=float(sum(r.time for r in peps.values())),
        witness=witness, attained=attained, attained_method=method, exact=None,
        message="cross-check with SCS on the all-pairs SDP: not a proof", layer_peps=tuple(peps.values()))


# -- optimal sampling for the exact worst case --------------------------------------------------------

def certified_iterations(L, pi, epsilon: float, *, Delta0: float = 1.0, K_max: int = 10**7) -> int:
    r"""The certified ``K(π)``: the smallest ``K`` whose exact worst case of T1's rate statement is at
    most ``ε²``, i.e. ``(2Δ0/K) max_i (L_i/π_i)(1 − (1−π_i)^K) ≤ ε²`` (:func:`closed_form_factor`,
    which the SDP reproduces). The left-hand side decreases in ``K``, so bisection is exact.

    >>> certified_iterations([1.0], [1.0], 1.0), certified_iterations([1.0], [0.5], 1.0)
    (2, 4)
    """
    L = check_layer_array("L", L, "positive")
    pi = check_layer_array("pi", pi, "probability")
    eps = check_scalar("epsilon", epsilon, "positive")
    Delta0 = check_scalar("Delta0", Delta0, "positive")

    def ok(K):
        with np.errstate(divide="ignore"):
            reached = -np.expm1(K * np.log1p(-pi))  # 1 − (1−π)^K, exactly 1 at π = 1
        return 2 * Delta0 / K * np.max(L / pi * reached) <= eps**2 * (1 + 1e-12)

    if not ok(K_max):
        raise ValueError(f"the target epsilon = {epsilon!r} is not reached within K_max = {K_max} iterations")
    lo, hi = 0, 1
    while not ok(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def _phi_inverse(K: int, t: float) -> float:
    """The smallest ``π ∈ (0, 1]`` with ``(1 − (1−π)^K)/π ≤ t`` (the left side decreases from ``K``
    at ``π → 0`` to 1 at ``π = 1``); 0 when any ``π > 0`` will do, ``inf`` when none will."""
    if t >= K:
        return 0.0
    if t < 1:
        return math.inf
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        phi = 1.0 if mid >= 1.0 else -math.expm1(K * math.log1p(-mid)) / mid
        if phi <= t:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class SamplingComparison:
    """The RPT (or independent) distribution minimising total cost ``K(π)·E cost`` under T1's bound
    and under the certified worst case, and what each costs under the certified worst case.

    ``bound_*``: the bound's optimum (``K`` from T1's closed form); ``exact_*``: the optimum for
    the certified ``K(π)``; ``bound_certified_K``/``bound_certified_cost``: the bound's optimum
    evaluated under the certified worst case; ``saving`` = 1 − exact cost / that cost."""

    family: str
    epsilon: float
    bound_pi: tuple
    bound_start_probs: tuple | None
    bound_K: int
    bound_cost: float
    bound_certified_K: int
    bound_certified_cost: float
    exact_pi: tuple
    exact_start_probs: tuple | None
    exact_K: int
    exact_cost: float
    saving: float
    same_distribution: bool


def _cheapest(lower, family):
    """The cheapest inclusion vector with ``π ≥ lower`` (costs increase in every ``π_i``): ``lower``
    itself (independent) or its running maximum with ``π_b = 1`` (RPT)."""
    lo = np.minimum(np.maximum(np.asarray(lower, dtype=float), 1e-12), 1.0)
    if family == "rpt":
        lo = np.maximum.accumulate(lo)
        lo[-1] = 1.0
    return lo


def compare_optimal_sampling(L, costs, epsilon: float, *, Delta0: float = 1.0, family: str = "rpt",
                             forward_cost: float = 0.0, K_max: int = 100000) -> SamplingComparison:
    r"""Minimise total cost ``K(π)·E cost(π)`` over ``family`` (``"rpt"``: start at layer ``s``,
    update ``s..b``; ``"independent"``: Bernoulli layers) twice — with T1's ``K = ⌈2Δ0
    max_i(L_i/π_i)/ε²⌉`` and with the certified ``K(π)`` of :func:`certified_iterations` — and
    evaluate the bound's optimum under the certified worst case.

    Both are solved exactly by enumerating ``K``: for fixed ``K`` each statement is a per-layer
    threshold ``π_i ≥ τ_i(K)`` (T1: ``2Δ0L_i/(Kε²)``; certified: the inverse of the decreasing
    ``(1 − (1−π)^K)/π`` at ``Kε²/(2Δ0L_i)``), the cheapest feasible ``π`` is
    :func:`_cheapest`, and the optimum is the best ``K``.

    >>> r = compare_optimal_sampling([1.0, 4.0], [1.0, 1.0], 1.0)
    >>> r.bound_K, r.exact_K, r.exact_cost <= r.bound_certified_cost
    (8, 8, True)
    """
    from dropmuon.theory import CostModel, start_from_inclusion

    L = check_layer_array("L", L, "positive")
    eps = check_scalar("epsilon", epsilon, "positive")
    Delta0 = check_scalar("Delta0", Delta0, "positive")
    if family not in ("rpt", "independent"):
        raise ValueError(f"family must be 'rpt' or 'independent'; got family = {family!r}")
    model = CostModel.linear(costs, forward=forward_cost)
    b = len(L)

    def dist(pi):
        return RPT(start_from_inclusion(pi)) if family == "rpt" else Independent(pi)

    def ecost(pi):
        return float(model.expected_cost(dist(pi)))

    # T1: the bound at K is 2Δ0 max(L/π)/K; smallest feasible K has π ≡ 1 on the worst layer
    K1 = math.ceil(2 * Delta0 * L.max() / eps**2 * (1 - 1e-12))
    best_b = None
    for K in range(max(K1, 1), min(K_max, 4 * K1 + 10) + 1):
        pi = _cheapest(2 * Delta0 * L / (K * eps**2), family)
        if np.any(2 * Delta0 * L / (K * eps**2) > 1 + 1e-12):
            continue
        tc = K * ecost(pi)
        if best_b is None or tc < best_b[0] - 1e-12:
            best_b = (tc, K, pi)
    best_e = None
    for K in range(1, min(K_max, 4 * K1 + 10) + 1):
        t = [_phi_inverse(K, K * eps**2 / (2 * Delta0 * Li)) for Li in L]
        if not np.all(np.isfinite(t)):
            continue
        pi = _cheapest(t, family)
        tc = K * ecost(pi)
        if best_e is None or tc < best_e[0] - 1e-12:
            best_e = (tc, K, pi)
    if best_b is None or best_e is None:
        raise ValueError(f"no distribution reaches epsilon = {epsilon!r} within K_max = {K_max}")
    kb = certified_iterations(L, best_b[2], eps, Delta0=Delta0)
    cb = kb * ecost(best_b[2])

    def sp_(pi):
        return tuple(float(v) for v in start_from_inclusion(pi)) if family == "rpt" else None

    return SamplingComparison(
        family=family, epsilon=eps, bound_pi=tuple(map(float, best_b[2])), bound_start_probs=sp_(best_b[2]),
        bound_K=int(best_b[1]), bound_cost=float(best_b[0]), bound_certified_K=int(kb), bound_certified_cost=float(cb),
        exact_pi=tuple(map(float, best_e[2])), exact_start_probs=sp_(best_e[2]), exact_K=int(best_e[1]),
        exact_cost=float(best_e[0]), saving=float(1 - best_e[0] / cb),
        same_distribution=bool(np.allclose(best_b[2], best_e[2], atol=1e-9)) and b > 0)


class _CallableModule(__import__("types").ModuleType):
    """This module and its main function share the name ``certify``: once the module is imported,
    ``dropmuon.verification.certify`` may be the module rather than the function, so calling the
    module calls :func:`certify`."""

    def __call__(self, *args, **kwargs):
        return certify(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
