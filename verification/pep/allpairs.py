r"""One layer's ``(K+1)``-point PEP with the interpolation conditions between every pair of points
(cvxpy; one ``(K+1)×(K+1)`` PSD cone, practical to ``K ≈ 50``), and the proved closed form of its
value for ``β = 1``. :func:`~dropmuon.verification.pep.certificate.certify` uses the banded, chordal
version (:mod:`.banded`) with an exact dual check; this one stays for cross-checks (PEPit, the
sampling tree) and ``--solver SCS``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from dropmuon.theory._validation import check_positive_int, check_scalar

from .budget import MAX_K
from .sdp import _SDP, _check_solver, _outer, _sel

#: a Gram matrix with second eigenvalue below this fraction of the first is read as rank one (1-D)
RANK_TOL = 1e-6


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
