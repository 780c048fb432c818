"""Closed-form optimal distributions (THEORY.md §5, proofs in docs/theory.md §Optimal sampling),
each with the explicit dual certificate or KKT multipliers that prove it optimal, from which the
optimality residuals are computed.

All max-form closed forms use ``M_j = max_{k≤j} L_k`` (``M_0 = 0``) and ``L_max = M_b``.
"""

from __future__ import annotations

import numpy as np

from theory import RPT, CompactSubsets, Independent

from ._problem import Problem

__all__ = ["max_rpt", "max_independent", "max_subsets", "sum_independent_linear"]


_NO_CERTIFICATE = {k: None for k in ("primal_infeasibility", "dual_infeasibility", "stationarity",
                                      "complementarity", "duality_gap")}


def _rel(x: float, scale: float) -> float:
    return float(x) / (1.0 + abs(float(scale)))


def _next_record(records: np.ndarray) -> np.ndarray:
    """For each j (0-based) the index of the first record at or after j, or b if none."""
    b = records.size
    idx = np.where(records, np.arange(b), b)
    return np.minimum.accumulate(idx[::-1])[::-1]


def max_rpt(problem: Problem, certify: bool = True):
    """``π_i = M_i/L_max``, ``p_1 = L_1/L_max``, ``p_i = (M_i − M_{i−1})/L_max``.

    Certificate: the LP ``min Σ_i d_i y_i`` s.t. ``y_i ≥ L_i``, ``y_i ≥ y_{i−1}`` (``y_0 = 0``),
    ``d_i = C_i − C_{i+1} ≥ 0`` (``C_s`` = cost of starting at ``s``), has the primal solution
    ``y = M`` and the dual ``α_i`` (for ``y_i ≥ L_i``), ``β_i`` (for ``y_i ≥ y_{i−1}``) built
    backwards from ``β_{b+1} = 0``: at records (``L_i > M_{i−1}``, or ties ``L_i = M_i``)
    ``β_i = 0, α_i = d_i + β_{i+1}``; elsewhere ``α_i = 0, β_i = d_i + β_{i+1}``.
    """
    L = problem.L
    M = np.maximum.accumulate(L)
    Lmax = M[-1]
    p = np.diff(M, prepend=0.0) / Lmax
    msg = "closed form: p_i = (M_i - M_{i-1})/L_max with M_i = max_{j<=i} L_j"
    if not certify:
        return RPT._trusted(p), dict(_NO_CERTIFICATE), msg
    C = problem.model.rpt_costs()
    d = C - np.concatenate([C[1:], [0.0]])
    tight = L >= M  # y_i = L_i is tight (records and ties)
    # D_i = Σ_{j≥i} d_j; β_i = D_i − D_{next tight ≥ i}, α at tight i = D_i − D_{next tight > i}
    D = np.concatenate([np.cumsum(d[::-1])[::-1], [0.0]])
    nxt = _next_record(tight)  # first tight index ≥ i
    b = L.size
    beta = np.where(tight, 0.0, D[:b] - D[nxt])
    nxt_after = np.concatenate([nxt[1:], [b]])
    alpha = np.where(tight, D[:b] - D[nxt_after], 0.0)
    y = M
    obj = float(d @ y)
    prev = np.concatenate([[0.0], y[:-1]])
    beta_next = np.concatenate([beta[1:], [0.0]])
    residuals = {
        "primal_infeasibility": _rel(max(np.max(L - y), np.max(prev - y), 0.0), Lmax),
        "dual_infeasibility": _rel(max(-alpha.min(), -beta.min(), 0.0), np.max(np.abs(d))),
        "stationarity": _rel(np.max(np.abs(d - alpha - beta + beta_next)), np.max(np.abs(d))),
        "complementarity": _rel(max(np.max(np.abs(alpha * (y - L))), np.max(np.abs(beta * (y - prev)))), obj),
        "duality_gap": _rel(abs(obj - float(alpha @ L)), obj),
    }
    return RPT._trusted(p), residuals, msg


def max_independent(problem: Problem, certify: bool = True):
    """``π_i = L_i/L_max`` for independent sampling, any cost model.

    For ``T = max_i L_i/π_i`` the cheapest feasible ``π`` is ``L/T`` (``E cost`` is non-decreasing
    in every ``π_j``), and ``T·E cost(L/T)`` is non-decreasing in ``T ≥ L_max``: its derivative is
    ``F + Σ_j a_j (1 − P_j(no layer below j) − P_j(exactly one)) ≥ 0``. The residual
    ``stationarity`` is the negative part of that derivative at ``T = L_max`` (zero up to rounding).
    """
    L = problem.L
    Lmax = float(L.max())
    pi = L / Lmax
    if not certify:
        return Independent(pi), dict(_NO_CERTIFICATE), "closed form: pi_i = L_i / L_max"
    m = problem.model
    # P0, P1: probabilities that no / exactly one layer below j is sampled (running recursion)
    p0, p1, deriv = 1.0, 0.0, m.forward
    for a_j, y in zip(m.activation.tolist(), pi.tolist()):
        deriv += a_j * max(0.0, 1.0 - p0 - p1)
        p0, p1 = p0 * (1.0 - y), p1 * (1.0 - y) + p0 * y
    residuals = {
        "primal_infeasibility": 0.0,
        "dual_infeasibility": 0.0,
        "stationarity": _rel(max(0.0, -deriv), m.full_cost),
        "complementarity": 0.0,
        "duality_gap": None,
    }
    return Independent(pi), residuals, "closed form: pi_i = L_i / L_max"


def max_subsets(problem: Problem, certify: bool = True):
    """The optimum over *all* subset distributions: lowest layer ``s`` with probability
    ``(M_s − M_{s−1})/L_max``, then each ``j > s`` with probability ``min(1, L_j/M_{j−1})``.

    Certificate for the compact LP ``min Σ_s ρ_s c_s + Σ_j x_j v_j`` s.t. ``ρ_i + x_i ≥ L_i``
    (dual ``y_i``), ``x_j ≤ P_j = Σ_{s<j} ρ_s`` (dual ``z_j``), ``c_s = F + A_s + v_s``: with
    ``Z_j = F + A_{r(j)}`` (``r(j)`` the first record ``≥ j``, ``Z_j = 0`` if none),
    ``z_j = Z_j − Z_{j+1}``, ``y_j = v_j + z_j`` (``j ≥ 2``), ``y_1 = c_1 − Z_2``,
    ``z_1 = (F + A_1 − Z_2)_+`` (docs/theory.md).
    """
    L = problem.L
    m = problem.model
    b = L.size
    M = np.maximum.accumulate(L)
    Mprev = np.empty_like(M)
    Mprev[0] = 0.0
    Mprev[1:] = M[:-1]
    rho = M - Mprev
    Lmax = M[-1]
    theta = np.zeros_like(L)
    np.divide(L[1:], Mprev[1:], out=theta[1:])  # M_{j-1} ≥ L_1 > 0 for j ≥ 2
    np.minimum(theta, 1.0, out=theta)
    rho /= Lmax
    dist = CompactSubsets._trusted(rho, theta)
    msg = "closed form: lowest layer ~ (M_s - M_{s-1})/L_max, keep j > s w.p. min(1, L_j/M_{j-1})"
    if not certify:
        return dist, dict(_NO_CERTIFICATE), msg
    # dual certificate (rho, theta are now read-only inside dist)
    rho = rho * Lmax
    x = np.minimum(L, Mprev)
    v = m.per_layer
    c = m.lowest_costs()
    A = c - m.forward - v  # A_s = Σ_{j>s} a_j
    records = L > Mprev
    nxt = _next_record(records)
    Zfull = np.where(nxt < b, m.forward + A[np.minimum(nxt, b - 1)], 0.0)
    Z = np.concatenate([Zfull, [0.0]])  # Z_{b+1} = 0
    z = Z[:b] - Z[1:]
    yd = v + z
    yd[0] = c[0] - Z[1]
    z[0] = max(0.0, m.forward + A[0] - Z[1])
    P = Mprev
    obj = float(rho @ c + x @ v)
    Zsuffix = np.concatenate([np.cumsum(z[::-1])[::-1][1:], [0.0]])  # Σ_{j>s} z_j
    dual_rho = c - yd - Zsuffix  # ≥ 0 (reduced cost of ρ_s)
    dual_x = v - yd + z  # ≥ 0 (reduced cost of x_j)
    scale = np.max(np.abs(c))
    residuals = {
        "primal_infeasibility": _rel(max(np.max(L - rho - x), np.max(x - P), -rho.min(), -x.min(), 0.0), Lmax),
        "dual_infeasibility": _rel(max(-yd.min(), -z.min(), -dual_rho.min(), -dual_x.min(), 0.0), scale),
        "stationarity": 0.0,  # the reduced costs above are the stationarity conditions
        "complementarity": _rel(
            max(np.max(np.abs(rho * dual_rho)), np.max(np.abs(x * dual_x)), np.max(np.abs(yd * (rho + x - L))),
                np.max(np.abs(z * (P - x)))), obj),
        "duality_gap": _rel(abs(obj - float(yd @ L)), obj),
    }
    return dist, residuals, msg


def sum_independent_linear(problem: Problem, certify: bool = True):
    """Sum-form, independent sampling, linear costs (``a ≡ 0``, ``c_0 = F``): water-filling.

    Minimising ``(Σ_i L_i/π_i)(F + Σ_j v_j π_j)`` over ``π ∈ (0,1]^b`` (convex in ``y = π/E cost``,
    ``s = 1/E cost``): layers with the largest ``u_i = sqrt(L_i/v_i)`` are capped at 1, the others
    get ``π_i = τ u_i`` with ``τ² = (F + Σ_{capped} v)/Σ_{capped} L``. With ``F = 0`` this is
    ``π_i ∝ sqrt(L_i/v_i)`` scaled to ``max π = 1``.
    """
    m = problem.model
    if np.any(m.activation > 0):
        raise ValueError("the sum-form closed form for independent sampling needs linear costs (a = 0)")
    L = problem.L
    v = m.per_layer
    F = m.forward
    with np.errstate(divide="ignore"):
        u = np.where(v > 0, np.sqrt(L / np.where(v > 0, v, 1.0)), np.inf)
    order = np.argsort(-u, kind="stable")
    us = u[order]
    cv = np.cumsum(v[order])
    cL = np.cumsum(L[order])
    tau = np.sqrt((F + cv) / cL)  # τ_k with the top k+1 capped
    nxt = np.concatenate([us[1:], [0.0]])
    ok = (tau * us >= 1 - 1e-12) & (tau * nxt <= 1 + 1e-12)
    if not ok.any():  # cannot happen for valid inputs (KKT has a solution); keep the message clear
        raise ValueError("water-filling found no consistent set of capped layers")
    k = int(np.argmax(ok))
    t = tau[k]
    pi = np.minimum(1.0, t * u)
    # KKT multipliers of the convex form: s = 1/E cost, y = π s, λ, μ
    Ec = F + v @ pi
    s = 1.0 / Ec
    y = pi * s
    capped = pi >= 1.0
    lam = cL[k] / (s**2 * (F + cv[k]))
    mu = np.where(capped, L / s**2 - lam * v, 0.0)
    grad = -L / y**2 + lam * v + mu
    obj = float(np.sum(L / pi) * Ec)
    residuals = {
        "primal_infeasibility": _rel(max(np.max(pi - 1.0), -pi.min(), 0.0), 1.0),
        "dual_infeasibility": _rel(max(-mu.min(), 0.0), np.max(L / y**2)),
        "stationarity": _rel(max(np.max(np.abs(grad)), abs(lam * F - mu.sum())), np.max(L / y**2)),
        "complementarity": _rel(np.max(np.abs(mu * (y - s))), obj),
        "duality_gap": None,
    }
    return Independent(pi), residuals, "closed form (water-filling): pi_i = min(1, tau sqrt(L_i/v_i))"
