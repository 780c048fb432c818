"""Closed-form optimal distributions (proofs in docs/sampling.md),
each with the explicit dual certificate or KKT multipliers that prove it optimal, from which the
optimality residuals are computed.

All max-form closed forms use ``M_j = max_{k≤j} L_k`` (``M_0 = 0``) and ``L_max = M_b``.

Every closed form is computed in normalised units — ``L/L_max`` and costs over the cost of a full
step — because the optimal distribution is invariant to the units of ``L`` and of the costs; the
certificates are then of order one for constants anywhere in ``[1e-300, 1e300]``. A probability
whose exact value ``L_i/L_max`` is below the smallest normal double (``~2.2e-308``) is stored as
that number (:data:`PI_TINY`): it still satisfies ``L_i/π_i ≤ L_max``, so ``K`` is exact, and the
cost it adds is below rounding unless the costs themselves span more than ``1e290``.
"""

from __future__ import annotations

import math

import numpy as np

from dropmuon.theory import RPT, CompactSubsets, Independent

from ._problem import Problem, cost_unit, linear_independent_costs, unit_lowest_costs, unit_per_layer, unit_rpt_costs

__all__ = ["max_rpt", "max_independent", "max_subsets", "sum_independent_linear", "PI_TINY"]

#: the smallest probability a closed form returns (the smallest normal double)
PI_TINY = float(np.finfo(float).tiny)


_NO_CERTIFICATE = {k: None for k in ("primal_infeasibility", "dual_infeasibility", "stationarity",
                                      "complementarity", "duality_gap")}


def _rpt(p: np.ndarray, pi: np.ndarray) -> RPT:
    """An :class:`RPT` from start probabilities and inclusion probabilities both already known
    (``π_i = Σ_{s≤i} p_s``): no second running sum at b = 10^6."""
    return RPT._trusted(p, inclusion=pi)


def _absmax(x: np.ndarray) -> float:
    return max(float(x.max(initial=0.0)), -float(x.min(initial=0.0)))


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
    ``d_i = C_i − C_{i+1} ≥ 0`` (``C_s`` = cost of starting at ``s``, ``C_{b+1} = 0``), has the
    primal solution ``y = M`` and the dual ``α_i`` (for ``y_i ≥ L_i``), ``β_i`` (for
    ``y_i ≥ y_{i−1}``) built backwards from ``β_{b+1} = 0``: at tight rows (``L_i = M_i``: records
    and ties) ``β_i = 0, α_i = d_i + β_{i+1}``; elsewhere ``α_i = 0, β_i = d_i + β_{i+1}``. Since
    ``Σ_{j≥i} d_j = C_i``, that is ``β_i = C_i − C_{n(i)}`` and ``α_i = C_i − C_{n(i+1)}`` with
    ``n(i)`` the first tight row ``≥ i`` (``C_{n(i)} = 0`` if none); ``C`` is non-increasing, so
    ``C_{n(i)}`` is the running maximum, from the right, of ``C`` on the tight rows (0 elsewhere).
    The residuals are then computed from these ``α, β`` as in any LP.
    """
    M = np.maximum.accumulate(problem.L)
    Lmax = float(M[-1])
    # π_i = M_i/L_max, in place; division by L_max > 0 is monotone and correctly rounded, so this
    # is the running maximum of L/L_max bit for bit
    np.divide(M, Lmax, out=M)
    head = 0
    if M[0] < PI_TINY:  # π is non-decreasing: only a head of it can underflow
        head = int(np.searchsorted(M, PI_TINY))
        y_head = M[:head].copy()
        M[:head] = PI_TINY
    p = np.empty_like(M)
    p[0] = M[0]
    np.subtract(M[1:], M[:-1], out=p[1:])
    msg = "closed form: p_i = (M_i - M_{i-1})/L_max with M_i = max_{j<=i} L_j"
    dist = _rpt(p, M)
    if not certify:
        return dist, dict(_NO_CERTIFICATE), msg
    y = M
    if head:  # the certificate is for y = M itself, unclamped
        y = M.copy()
        y[:head] = y_head
    return dist, _rpt_certificate(problem, y, Lmax), msg


# layers per chunk of the max-form RPT certificate: 2^17 doubles (1 MiB) per temporary keep its
# dozen temporaries in cache, where b-long ones cost more in allocation and page faults than in
# arithmetic (at b = 10^6 each about a fifth of the running maximum; measured: chunks of 2^14,
# 2^16, 2^17, 2^18 → 2.8, 2.2, 1.95, 5.3 running-maximum passes for the whole certificate)
CERT_CHUNK = 1 << 17


def _rpt_certificate(problem: Problem, y: np.ndarray, Lmax: float) -> dict:
    """The residuals of :func:`max_rpt`'s certificate at ``y = M/L_max``, in units ``L_max = 1``
    and ``C_1 = 1``, in one sweep over chunks of layers from the last to the first: going
    backwards, ``C_{n(i)}`` (C at the first tight row ≥ i) is the carry from the chunks already
    seen, so every quantity is computed once, elementwise in ``i`` and ``i ± 1``, and the chunks'
    maxima, minima and sums combine to those of whole arrays."""
    b = y.size
    with np.errstate(over="ignore"):  # a full step beyond 1.8e308: then C in cost_unit
        finite = math.isfinite(float(problem.model.full_cost))
    C0 = problem.rpt_costs() if finite else unit_rpt_costs(problem.model, cost_unit(problem.model))
    c1 = float(C0[0])
    L = problem.L
    carry = 0.0  # C_{n(hi)}: C at the first tight row ≥ hi (0 past the last layer)
    beta_hi = 0.0  # β_hi (β_b = 0)
    primal = dmax = rmax = cmax = obj = gap_terms = comp_T = 0.0
    alpha_min = beta_min = dy_min = np.inf
    hi = b
    while hi > 0:
        lo = max(0, hi - CERT_CHUNK)
        yc = y[lo:hi]
        Ln = L[lo:hi] / Lmax
        t = np.flatnonzero(Ln >= yc)  # tight rows y_i = L_i (records and ties, in these units)
        Cc = C0[lo:hi] / c1
        vals = np.append(Cc[t], carry)  # C_{n(i)} on each segment between tight rows
        alpha = vals[:-1] - vals[1:]  # α_t = C_t − C_{n(t+1)}
        beta = Cc - np.repeat(vals, np.diff(np.concatenate([[-1], t, [hi - lo - 1]])))  # 0 on tight rows
        d = np.empty(hi - lo)  # d_i = C_i − C_{i+1}
        np.subtract(Cc[:-1], Cc[1:], out=d[:-1])
        d[-1] = Cc[-1] - (C0[hi] / c1 if hi < b else 0.0)
        r = d - beta  # stationarity d_i − α_i − β_i + β_{i+1}
        r[:-1] += beta[1:]
        r[-1] += beta_hi
        r[t] -= alpha
        dy = np.empty(hi - lo)  # y_i − y_{i−1}
        dy[0] = yc[0] - (y[lo - 1] if lo else 0.0)
        np.subtract(yc[1:], yc[:-1], out=dy[1:])
        LT = Ln[t]
        primal = max(primal, float(np.max(np.subtract(Ln, yc, out=Ln))))
        obj += float(d @ yc)
        gap_terms += float(alpha @ LT)
        dmax = max(dmax, _absmax(d))
        rmax = max(rmax, _absmax(r))
        alpha_min = min(alpha_min, float(alpha.min(initial=np.inf)))
        beta_min = min(beta_min, float(beta.min()))
        dy_min = min(dy_min, float(dy.min()))
        cmax = max(cmax, _absmax(np.multiply(beta, dy, out=dy)))
        comp_T = max(comp_T, _absmax(alpha * (yc[t] - LT)))
        carry, beta_hi, hi = vals[0], float(beta[0]), lo
    return {
        "primal_infeasibility": _rel(max(primal, -dy_min, 0.0), 1.0),
        "dual_infeasibility": _rel(max(-min(alpha_min, 0.0), -beta_min, 0.0), dmax),
        "stationarity": _rel(rmax, dmax),
        "complementarity": _rel(max(comp_T, cmax), obj),
        "duality_gap": _rel(abs(obj - gap_terms), obj),
    }


def max_independent(problem: Problem, certify: bool = True):
    """``π_i = L_i/L_max`` for independent sampling, any cost model.

    For ``T = max_i L_i/π_i`` the cheapest feasible ``π`` is ``L/T`` (``E cost`` is non-decreasing
    in every ``π_j``), and ``T·E cost(L/T)`` is non-decreasing in ``T ≥ L_max``: its derivative is
    ``F + Σ_j a_j (1 − P_j(no layer below j) − P_j(exactly one)) ≥ 0``. The residual
    ``stationarity`` is the negative part of that derivative at ``T = L_max`` (zero up to rounding).
    """
    pi = np.maximum(problem.L / float(problem.L.max()), PI_TINY)
    if not certify:
        return Independent(pi), dict(_NO_CERTIFICATE), "closed form: pi_i = L_i / L_max"
    m = problem.model
    cs = cost_unit(m)
    # P0, P1: probabilities that no / exactly one layer below j is sampled (running recursion)
    p0, p1, deriv = 1.0, 0.0, m.forward / cs
    for a_j, y in zip((m.activation / cs).tolist(), pi.tolist()):
        deriv += a_j * max(0.0, 1.0 - p0 - p1)
        p0, p1 = p0 * (1.0 - y), p1 * (1.0 - y) + p0 * y
    residuals = {
        "primal_infeasibility": 0.0,
        "dual_infeasibility": 0.0,
        "stationarity": _rel(max(0.0, -deriv), 1.0),
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
    L = problem.L / float(np.max(problem.L))
    m = problem.model
    b = L.size
    M = np.maximum.accumulate(L)
    Mprev = np.empty_like(M)
    Mprev[0] = 0.0
    Mprev[1:] = M[:-1]
    rho = np.diff(np.maximum(M, PI_TINY), prepend=0.0)
    Lmax = 1.0
    theta = np.zeros_like(L)
    # θ_j = L_j/M_{j−1}, from the unnormalised constants (M_{j−1} ≥ L_1 > 0 for j ≥ 2, and the
    # ratio is representable even where L/L_max underflows)
    Mraw = np.maximum.accumulate(problem.L)
    with np.errstate(over="ignore"):  # L_j/M_{j−1} beyond 1.8e308 is inf, clipped to 1 below
        np.divide(problem.L[1:], Mraw[:-1], out=theta[1:])
    # π_j = θ_j P_j ≥ PI_TINY where L_j/L_max underflows (P_j = Σ_{s<j} ρ_s ≥ ρ_1 ≥ PI_TINY)
    Pj = np.cumsum(rho)[:-1]
    np.maximum(theta[1:], PI_TINY / Pj, out=theta[1:])
    np.minimum(theta, 1.0, out=theta)
    dist = CompactSubsets._trusted(rho, theta)
    msg = "closed form: lowest layer ~ (M_s - M_{s-1})/L_max, keep j > s w.p. min(1, L_j/M_{j-1})"
    if not certify:
        return dist, dict(_NO_CERTIFICATE), msg
    # dual certificate (rho, theta are now read-only inside dist), in units of a full step's cost
    rho = M - Mprev
    x = np.minimum(L, Mprev)
    cs = cost_unit(m)
    v = unit_per_layer(m, cs)
    c = unit_lowest_costs(m, cs)
    F = m.forward / cs
    A = c - F - v  # A_s = Σ_{j>s} a_j
    records = L > Mprev
    nxt = _next_record(records)
    Zfull = np.where(nxt < b, F + A[np.minimum(nxt, b - 1)], 0.0)
    Z = np.concatenate([Zfull, [0.0]])  # Z_{b+1} = 0
    z = Z[:b] - Z[1:]
    yd = v + z
    yd[0] = c[0] - Z[1]
    z[0] = max(0.0, F + A[0] - Z[1])
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
    """Sum-form, independent sampling, linear costs (``a_j = 0`` for ``j ≥ 2``): water-filling.

    Minimising ``(Σ_i L_i/π_i)(F + Σ_j v_j π_j)`` over ``π ∈ (0,1]^b`` (convex in ``y = π/E cost``,
    ``s = 1/E cost``): layers with the largest ``u_i = sqrt(L_i/v_i)`` are capped at 1, the others
    get ``π_i = τ u_i`` with ``τ² = (F + Σ_{capped} v)/Σ_{capped} L``. With ``F = 0`` this is
    ``π_i ∝ sqrt(L_i/v_i)`` scaled to ``max π = 1``.

    Certificate (scale-free): with ``S = Σ L_i/π_i`` and ``C = E cost``, ``π_i ∂(S·C)/∂π_i =
    S·C·(v_iπ_i/C − (L_i/π_i)/S)``, so stationarity is the balance of layer ``i``'s share of the
    cost and of ``K``: ``|v_iπ_i/C − (L_i/π_i)/S|`` for ``π_i < 1`` (``stationarity``) and
    ``(v_iπ_i/C − (L_i/π_i)/S)_+`` for ``π_i = 1`` (``dual_infeasibility``: raising ``π_i`` past 1
    would help). The problem is convex in ``(y, s)``, so this first-order condition is sufficient.
    """
    m = problem.model
    if not linear_independent_costs(m):
        raise ValueError("the sum-form closed form for independent sampling needs linear costs (a_j = 0 for j >= 2)")
    # in the log domain: u_i = sqrt(L_i/v_i) is representable even where v_i/max v underflows
    # (costs spanning 1e-300..1e300); sums are taken in units of L_max and of the largest cost
    Lmax = float(np.max(problem.L))
    v_raw = m.per_layer
    cmax = max(m.forward, float(np.max(v_raw)))
    L = problem.L / Lmax
    v = v_raw / cmax
    F = m.forward / cmax
    with np.errstate(divide="ignore"):
        logu = 0.5 * (np.log(problem.L) - np.log(v_raw))  # +inf where v_i = 0
    order = np.argsort(-logu, kind="stable")
    lus = logu[order]
    # log(F + Σ_{top k} v) and log Σ_{top k} L as running log-sum-exps: no subnormal partial sums
    with np.errstate(divide="ignore"):
        logcv = np.logaddexp.accumulate(np.log(v_raw[order]))
        logFcv = np.logaddexp(math.log(m.forward) if m.forward > 0 else -np.inf, logcv)
        logcL = np.logaddexp.accumulate(np.log(problem.L[order]))
    logtau = 0.5 * (logFcv - logcL)  # τ_k: top k+1 capped
    nxt = np.concatenate([lus[1:], [-np.inf]])
    with np.errstate(invalid="ignore"):
        ok = (logtau + lus >= -1e-12) & (logtau + nxt <= 1e-12)
    if not ok.any():  # cannot happen for valid inputs (KKT has a solution); keep the message clear
        raise ValueError("water-filling found no consistent set of capped layers")
    k = int(np.argmax(ok))
    with np.errstate(invalid="ignore"):
        pi = np.exp(np.minimum(0.0, logtau[k] + logu))
    pi = np.maximum(np.nan_to_num(pi, nan=1.0), PI_TINY)
    msg = "closed form (water-filling): pi_i = min(1, tau sqrt(L_i/v_i))"
    if not certify:
        return Independent(pi), dict(_NO_CERTIFICATE), msg
    Kterm = L / pi
    Ec = F + v @ pi
    gap = v * pi / Ec - Kterm / Kterm.sum()  # share of the cost minus share of K, per layer
    capped = pi >= 1.0
    residuals = {
        "primal_infeasibility": _rel(max(np.max(pi - 1.0), -pi.min(), 0.0), 1.0),
        "dual_infeasibility": float(max(np.max(gap[capped], initial=0.0), 0.0)),
        "stationarity": float(np.max(np.abs(gap[~capped]), initial=0.0)),
        "complementarity": 0.0,
        "duality_gap": None,
    }
    return Independent(pi), residuals, msg
