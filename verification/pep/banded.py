r"""One layer's PEP with banded interpolation, solved over chordal cliques (scales to ``K`` = 1000+).

The layer PEP of :mod:`dropmuon.verification.pep.certificate` (``L = 1``, ``f(x_0) − f^* ≤ 1``, momentum
``β``, the binomial weights ``c_n`` of the layer's own clock) imposes the interpolation conditions
of 1-smooth functions between *every* pair of its ``K+1`` points: one ``(K+1)×(K+1)`` PSD cone,
memory ``∝ K⁴`` and interior-point time ``∝ K⁶``. Here they are imposed only between points at most
``w`` apart (``|i − j| ≤ w``, the *band*):

* **Still an upper bound.** Dropping constraints enlarges the feasible set, so the banded value
  ``U_w`` bounds the worst case from above, and ``U_w`` decreases to the all-pairs value as ``w``
  grows (``w ≥ K`` is the all-pairs PEP).
* **Chordal.** In the basis ``(x_1, …, x_K, g_K)`` every gradient ``g_n`` is a combination of
  ``x_{n−1}, x_n, x_{n+1}`` (``β g_n = d_n − (1−β) d_{n−1}``, ``d_n = x_n − x_{n+1}``), so every
  banded constraint touches only Gram entries ``H_ab`` with ``|a − b| ≤ w + 2``. Only those entries
  are variables; the others are free, and a banded partial matrix has a PSD completion iff each of
  its maximal cliques — the ``(w+3)×(w+3)`` diagonal blocks — is PSD (Grone, Johnson, Sá, Wolkowicz
  1984; banded patterns are chordal). So one big cone becomes ``K − w − 1`` small ones, **exactly**
  (Vandenberghe & Andersen, *Chordal graphs and semidefinite optimization*, 2015): memory and time
  grow like ``K w³``.

The problem goes to Clarabel through its own API (no modelling layer: its build would cost more than
the solve at ``K = 1000``). The dual multipliers it returns are the raw material of the rigorous
upper bound (:mod:`.rigorous`); the primal's clique blocks give the 1-D witness (:func:`rank_one`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.sparse as sp

from .budget import estimate_cost

__all__ = ["BandedLayer", "build", "solve", "rank_one", "beta_fraction", "estimate_cost"]


def beta_fraction(beta: float) -> Fraction:
    """The momentum weight as an exact fraction ``p/q``: the shortest decimal that rounds to the float
    ``beta`` (``0.9 → 9/10``), so that the certified problem is the one the user typed."""
    f = Fraction(repr(float(beta)))
    if f.numerator <= 0 or f > 1:
        raise ValueError(f"beta must lie in (0, 1]; got beta = {beta!r}")
    return f


@dataclass
class BandedLayer:
    """The data of one banded layer PEP, in exact integers where the rigorous check needs them.

    Points ``n = 0..K``; basis ``(x_1, …, x_K, g_K)`` of size ``d = K + 1``; ``p g_n`` has integer
    coefficients (``β = p/q``). Row kinds (``Σ_r λ_r ≥ 0`` multipliers):

    * ``init``: ``f_0 ≤ 1``;
    * ``lower[n]``: ``½‖g_n‖² − f_n ≤ 0``;
    * ``pair[(i, j)]``: ``f_j − f_i + ½⟨g_i+g_j, x_i−x_j⟩ + ¼‖g_i−g_j‖² − ¼‖x_i−x_j‖² ≤ 0``.

    ``Q`` holds every row's quadratic form times ``4p²`` as an integer ``(rows, window, window)``
    array at offset ``lo``; ``objective`` the weights ``c_n`` (objective ``Σ_n c_n‖g_n‖²``).
    """

    K: int
    band: int
    beta: Fraction
    pairs: np.ndarray  # (m, 2): i, j of each interpolation row
    lo: np.ndarray  # (rows,) window offset of each row's quadratic form (lower rows then pairs)
    Q: np.ndarray  # (rows, s, s) int64: 4p² × quadratic form, rows = K+1 lower + m pairs
    ghat: list  # per point n: (idx, coef) of p·g_n
    weights: np.ndarray  # c_n, n < K (float)

    @property
    def d(self) -> int:
        return self.K + 1

    @property
    def width(self) -> int:
        """Clique size: every row's form lives in ``width`` consecutive basis indices."""
        return self.Q.shape[1]


def _ghat(K: int, p: int, q: int):
    """``p·g_n`` (integers) as ``{index: coefficient}`` in the step basis ``(d_0, …, d_{K−1}, g_K)``,
    ``d_n = x_n − x_{n+1}``: ``p g_0 = p d_0`` (warm start ``m_0 = g_0``),
    ``p g_n = q d_n − (q − p) d_{n−1}`` (``β = p/q``), ``p g_K = p e_K``."""
    gh = []
    for n in range(K + 1):
        if n == K:
            v = {K: p}
        elif n == 0:
            v = {0: p}
        else:
            v = {n: q, n - 1: -(q - p)}
        gh.append({k: c for k, c in v.items() if c != 0})
    return gh


def _dx(i: int, j: int) -> dict:
    """``x_i − x_j = Σ_{k=i}^{j−1} d_k`` (``i < j``; the negative otherwise)."""
    if i < j:
        return {k: 1 for k in range(i, j)}
    return {k: -1 for k in range(j, i)}


def _local(vec: dict, lo: int, s: int) -> np.ndarray:
    a = np.zeros(s, dtype=object)
    for k, c in vec.items():
        a[k - lo] += c
    return a


def build(pi: float, K: int, beta: float, band: int | None, weights: np.ndarray | None = None) -> BandedLayer:
    """The banded layer PEP (``band = None`` or ``≥ K``: all pairs)."""
    from .allpairs import _binomial_weights

    bf = beta_fraction(beta)
    p, q = bf.numerator, bf.denominator
    w = K if band is None else max(1, min(int(band), K))
    s = min(w + 2, K + 1)
    gh = _ghat(K, p, q)
    pairs = np.array([(i, j) for i in range(K + 1) for j in range(max(0, i - w), min(K, i + w) + 1) if i != j],
                     dtype=np.int64).reshape(-1, 2)
    rows = (K + 1) + len(pairs)
    Q = np.zeros((rows, s, s), dtype=object)
    lo = np.zeros(rows, dtype=np.int64)
    P2 = p * p

    def offset(a, b):  # window start so that both points' vectors fit
        return int(min(max(0, min(a, b) - 1), K + 1 - s))

    for n in range(K + 1):
        o = offset(n, n)
        g = _local(gh[n], o, s)
        Q[n] = 2 * np.outer(g, g)  # 4p² · ½‖g_n‖²
        lo[n] = o
    for r, (i, j) in enumerate(pairs, start=K + 1):
        o = offset(i, j)
        gi, gj = _local(gh[i], o, s), _local(gh[j], o, s)
        dx = _local(_dx(int(i), int(j)), o, s)
        sg, dg = gi + gj, gi - gj
        # 4p²·(½⟨g_i+g_j, dx⟩ + ¼‖g_i−g_j‖² − ¼‖dx‖²) with p g = ĝ
        Q[r] = p * (np.outer(sg, dx) + np.outer(dx, sg)) + np.outer(dg, dg) - P2 * np.outer(dx, dx)
        lo[r] = o
    if weights is None:
        weights = _binomial_weights(pi, K)
    Qi = Q.astype(np.int64) if _fits_int64(Q) else Q
    return BandedLayer(K=K, band=w, beta=bf, pairs=pairs, lo=lo, Q=Qi, ghat=gh, weights=np.asarray(weights, float))


def _fits_int64(Q) -> bool:
    flat = Q.ravel()
    return bool(len(flat) == 0 or max(abs(int(v)) for v in flat) < 2**62)


# -- the solve ------------------------------------------------------------------------------------

def _index_band(d: int, bw: int):
    """Index of each upper-band Gram entry ``(a, b)``, ``a ≤ b ≤ a + bw``."""
    idx = -np.ones((d, bw + 1), dtype=np.int64)
    k = 0
    for a in range(d):
        for t in range(min(bw, d - 1 - a) + 1):
            idx[a, t] = k
            k += 1
    return idx, k


def clique_rows(d: int, s: int, idx, first: int, nv: int):
    """The rows putting each ``s×s`` diagonal block of a banded ``d×d`` Gram matrix into one of
    Clarabel's PSD cones: ``svec`` (upper triangle by columns, off-diagonals × √2) with the sign of
    ``s = b − Ax`` (``b = 0``). ``idx`` is :func:`_index_band`'s table, the band entries are
    variables ``first + idx[a, b − a]`` of ``nv``. Returns ``(A, starts)``, one cone per start."""
    starts = list(range(0, d - s + 1)) if d > s else [0]
    ci, cj, cv = [], [], []
    row = 0
    sq2 = math.sqrt(2.0)
    for t in starts:
        for col in range(s):
            for rr in range(col + 1):
                ci.append(row)
                cj.append(first + _entry(idx, t + rr, t + col))
                cv.append(-1.0 if rr == col else -sq2)
                row += 1
    return sp.csc_matrix((cv, (ci, cj)), shape=(row, nv)), starts


def _entry(idx, a, b):
    if a > b:
        a, b = b, a
    return idx[a, b - a]


@dataclass
class Solved:
    value: float  # primal objective Σ c_n‖g_n‖² (times 1, not 1/K)
    dual_value: float
    status: str
    time: float
    lam: np.ndarray  # multipliers: init, lower[0..K], pairs
    f: np.ndarray
    H: sp.csr_matrix  # banded Gram matrix (symmetric)
    iterations: int


def solve(layer: BandedLayer, *, margin: float = 0.0, tol: float = 1e-10, max_iter: int = 200) -> Solved:
    r"""Solve ``max Σ_n c_n‖g_n‖² + margin·tr H`` over the banded problem with Clarabel.

    ``margin > 0`` makes the returned dual slack ``Σ λ_r Q_r − C`` at least ``margin·I`` (its dual
    reads ``Z − margin·I ⪰ 0``): the room the rigorous check needs to absorb rounding. It raises the
    value by ``margin·tr H`` at most."""
    import clarabel

    K, s = layer.K, layer.width
    d = layer.d
    bw = s - 1
    idx, nh = _index_band(d, bw)
    nf = K + 1
    nv = nf + nh
    p = layer.beta.numerator
    scale = 4.0 * p * p
    # objective: minimise −(Σ c_n‖g_n‖² + margin tr H); ‖g_n‖² = ĝᵀHĝ/p²
    q = np.zeros(nv)
    for n in range(K):
        g = layer.ghat[n]
        for a, ca in g.items():
            for b, cb in g.items():
                q[nf + _entry(idx, a, b)] -= layer.weights[n] * ca * cb / (p * p)
    if margin:
        for a in range(d):
            q[nf + idx[a, 0]] -= margin
    # inequality rows: init, lower[n], pairs
    nrows = 1 + layer.Q.shape[0]
    Ii, Jj, Vv = [0], [0], [1.0]
    b = np.zeros(nrows)
    b[0] = 1.0
    Qf = np.asarray(layer.Q, dtype=float) / scale
    for r in range(layer.Q.shape[0]):
        row = r + 1
        o = int(layer.lo[r])
        M = Qf[r]
        A_, B_ = np.nonzero(np.triu(M) != 0)
        for a, bb in zip(A_, B_):
            v = M[a, bb] * (1.0 if a == bb else 2.0)
            Ii.append(row)
            Jj.append(nf + _entry(idx, o + a, o + bb))
            Vv.append(v)
        if r <= K:  # lower[n]: −f_n
            Ii.append(row)
            Jj.append(r)
            Vv.append(-1.0)
        else:
            i, j = layer.pairs[r - K - 1]
            Ii += [row, row]
            Jj += [int(j), int(i)]
            Vv += [1.0, -1.0]
    A_ineq = sp.csc_matrix((Vv, (Ii, Jj)), shape=(nrows, nv))
    A_psd, starts = clique_rows(d, s, idx, nf, nv)
    row = A_psd.shape[0]
    A = sp.vstack([A_ineq, A_psd]).tocsc()
    bvec = np.concatenate([b, np.zeros(row)])
    cones = [clarabel.NonnegativeConeT(nrows)] + [clarabel.PSDTriangleConeT(s) for _ in starts]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = tol
    settings.tol_gap_rel = tol
    settings.tol_feas = tol
    settings.max_iter = max_iter
    P = sp.csc_matrix((nv, nv))
    t0 = time.perf_counter()
    sol = clarabel.DefaultSolver(P, q, A, bvec, cones, settings).solve()
    elapsed = time.perf_counter() - t0
    x = np.asarray(sol.x)
    z = np.asarray(sol.z)
    hv = x[nf:]
    Hr, Hc, Hv = [], [], []
    for a in range(d):
        for t in range(bw + 1):
            k = idx[a, t]
            if k >= 0:
                Hr.append(a)
                Hc.append(a + t)
                Hv.append(hv[k])
                if t:
                    Hr.append(a + t)
                    Hc.append(a)
                    Hv.append(hv[k])
    H = sp.csr_matrix((Hv, (Hr, Hc)), shape=(d, d))
    value = float(-(q[nf:] @ hv) - margin * H.diagonal().sum())
    return Solved(value=value, dual_value=float(z[0]), status=str(sol.status), time=elapsed, lam=z[:nrows],
                  f=x[:nf], H=H, iterations=int(sol.iterations))


def rank_one(H: sp.csr_matrix, width: int) -> tuple[np.ndarray, float]:
    """A vector ``u`` with ``u uᵀ ≈ H`` on the band, chained clique by clique (each block's leading
    eigenvector, its sign matched on the overlap with the previous block); also the largest ratio of
    a block's second to first eigenvalue (0 when every block is rank one)."""
    d = H.shape[0]
    s = min(width, d)
    Hd = H.tolil()
    u = np.zeros(d)
    worst = 0.0
    starts = list(range(0, d - s + 1)) if d > s else [0]
    for t in starts:
        B = Hd[t:t + s, t:t + s].toarray()
        w, V = np.linalg.eigh(B)
        v = math.sqrt(max(w[-1], 0.0)) * V[:, -1]
        if w[-1] > 0:
            worst = max(worst, max(w[-2], 0.0) / w[-1]) if s > 1 else worst
        if t == 0:
            u[:s] = v
        else:
            ov = u[t:t + s - 1]
            if float(ov @ v[:-1]) < 0:
                v = -v
            u[t + s - 1] = v[-1]
    return u, worst
