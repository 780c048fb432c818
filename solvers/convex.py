"""Convex programs solved with cvxpy for every objective, in the normalised masses of a family's
:class:`~dropmuon.solvers._problem.Formulation` (``cost·θ = 1``, so that ``y = Yθ`` is ``π / E cost``):

* max-form: the LP ``min cost·θ`` s.t. ``Yθ ≥ L`` (as in :mod:`dropmuon.solvers.lp`, another solver);
* sum-form: ``min Σ_i L_i / y_i`` — the total cost ``E cost · Σ_i L_i/π_i`` (docs/sampling.md);
* l0l1: ``min (2Δ0/ε)(max_i 1/y_i + Σ_i (L0_i/(L1_i² ε)) / y_i)`` — T2's π-free ``K`` times
  ``E cost``, convex because both terms are.

KKT residuals are computed from cvxpy's dual values in the variables ``θ``.
"""

from __future__ import annotations

import numpy as np

from ._problem import Formulation, Problem
from .lp import _ratio_text

__all__ = ["solve_convex", "SOLVER"]

# Clarabel: an interior-point conic solver shipped with cvxpy. Its default stopping tolerances
# (1e-8) leave total costs ~1e-8 off; 1e-10 reaches ~1e-10 on most problems here within a few
# dozen iterations (optima on the boundary are then polished by the front door).
SOLVER = "CLARABEL"
SOLVER_OPTIONS = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}


def _status(prob) -> str:
    import cvxpy as cp

    if prob.status == cp.OPTIMAL:
        return "optimal"
    if prob.status == cp.OPTIMAL_INACCURATE:
        return "optimal_inaccurate"
    raise RuntimeError(f"cvxpy could not solve the problem: status {prob.status}")


# the smallest L_i/L_max the max-form program takes (its scaled cover rows have entries L_max/L_i)
MIN_RATIO = 1e-12


def obj_needs_cover(problem) -> bool:
    return problem.objective == "max"


def solve_convex(problem: Problem, form: Formulation):
    """Solve the objective's convex program; returns ``(distribution, residuals, message,
    value, status)`` where ``value`` is the total cost in the objective's units."""
    import warnings

    import cvxpy as cp

    # The optimal distribution is invariant to the units of L and of the costs (tested), so the
    # program is solved in units where a full step costs 1 (then y = π/E cost is of order 1 for
    # every sensible distribution) and the objective is of order 1 (Σ L = 1 for the sum-form,
    # max L = 1 for the max-form, weights summing to 1 for l0l1). Without this the interior-point
    # solver loses accuracy as b grows (3e-4 relative at b = 1000 in unit costs).
    cs = float(problem.model.full_cost)
    if problem.L is None:
        Ls = 1.0
    else:
        Ls = float(np.max(problem.L)) if problem.objective == "max" else float(np.sum(problem.L))
    Lsc = None if problem.L is None else problem.L / Ls
    if obj_needs_cover(problem) and not np.all(Lsc >= MIN_RATIO):
        i = int(np.argmin(Lsc))
        raise ValueError(f"method 'cvxpy' needs L_i/L_max >= {MIN_RATIO:g} in the max-form; "
                         f"L_{i + 1}/L_max = {_ratio_text(problem.L, i)} (use the closed form, method 'auto')")
    cost = form.cost / cs
    th = cp.Variable(form.nvar, nonneg=True)
    y = form.Y @ th
    named = {}
    if form.E is not None:
        named["E"] = form.E @ th == 0
    if form.G is not None:
        named["G"] = form.G @ th <= 0
    obj = problem.objective
    if obj == "max":
        # each cover row divided by its constant (y_i/L_i ≥ 1), so that the solver's feasibility
        # tolerance is relative to L_i and small constants are not dropped as rounding
        named["cover"] = cp.multiply(1.0 / Lsc, y) >= 1.0
        objective = cp.Minimize(cost @ th)
    else:
        named["norm"] = cost @ th == 1
        if obj == "sum":
            objective = cp.Minimize(cp.sum(cp.multiply(Lsc, cp.inv_pos(y))))
        else:
            t = cp.Variable()
            a = problem.L0 / (problem.L1**2 * problem.epsilon)
            wsum = 1.0 + float(np.sum(a))
            named["epi"] = cp.inv_pos(y) <= t
            objective = cp.Minimize((t + cp.sum(cp.multiply(a, cp.inv_pos(y)))) / wsum)
    cons = list(named.values())
    prob = cp.Problem(objective, cons)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an inaccurate solve is reported in status
        prob.solve(solver=SOLVER, **SOLVER_OPTIONS)
    status = _status(prob)
    if th.value is None or not np.all(np.isfinite(th.value)):
        raise RuntimeError(f"cvxpy returned no solution (status {prob.status})")
    theta = np.maximum(th.value, 0.0)
    msg = f"cvxpy/{SOLVER}: {form.nvar} variables; status {prob.status}"
    try:
        resid = _residuals(obj, Lsc, problem, form, cost, theta, named, prob)
    except (RuntimeError, FloatingPointError, ValueError) as e:
        resid = {k: None for k in ("primal_infeasibility", "dual_infeasibility", "stationarity",
                                   "complementarity", "duality_gap")}
        msg += f"; no certificate ({e})"
        status = "optimal_inaccurate"
    else:
        worst = max((v for v in resid.values() if v is not None), default=np.inf)
        if not worst <= CERTIFY_TOL:
            status = "optimal_inaccurate"
            msg += f"; KKT residual {worst:.1e} > {CERTIFY_TOL:g}: not certified"
    dist = form.decode(theta)
    if obj == "l0l1":
        value = float(prob.value) * wsum * cs * 2 * problem.Delta0 / problem.epsilon
    else:
        value = float(prob.value) * Ls * cs
    return dist, resid, msg, value, status


# Status "optimal" needs the recovered KKT residuals (relative) at most this: Clarabel stops at
# ~1e-10 in the objective; near a smooth minimum the iterate, and with it the gradient in the
# stationarity condition, is then within ~sqrt(1e-10) = 1e-5 of the optimum times the curvature;
# 1e-4 allows a factor of 10 for that (the tests' KKT_CONVEX). A wrong point leaves O(1) residuals.
CERTIFY_TOL = 1e-4

# θ_j counts as positive (in the support, reduced cost zero) above this fraction of max θ, and a
# constraint as active below this relative slack. Clarabel stops at 1e-10, so off-support values
# are ~1e-10 relative; 1e-7 separates them from genuine mass with three orders to spare.
SUPPORT_RTOL = 1e-7


def _residuals(obj, L, problem, form, cost, theta, named, prob) -> dict:
    """KKT residuals of the scaled program at the primal solution θ.

    The multipliers are *recovered* from θ rather than read from the solver: interior-point
    duals of degenerate problems are accurate only to ~sqrt(tolerance), while the KKT system
    ``∇f(θ) + λ·(norm or cover) + Eᵀη + Gᵀν − μ = 0`` with ``μ, ν ≥ 0`` zero off the active set
    is linear in the multipliers; the multipliers minimising its largest residual are found by a
    sparse LP (HiGHS), and that residual certifies θ.
    """
    import scipy.sparse as sps

    y = form.Y @ theta
    n = form.nvar
    cols, lo = [], []  # columns of the multiplier matrix and their lower bounds
    tscale = max(float(theta.max()), 1e-300)
    off = np.flatnonzero(theta <= SUPPORT_RTOL * tscale)
    if obj == "max":
        g = cost.copy()  # ∇ of cost·θ
        # slack measured against the largest constant: the solver's error is absolute at the
        # problem's scale, so a small L_i's cover row can be active with a larger relative slack
        act = np.flatnonzero(y / L - 1.0 <= SUPPORT_RTOL)
        cols.append(-(sps.diags(1.0 / L[act]) @ form.Y[act]).T)  # λ_i ≥ 0 on active rows y_i/L_i ≥ 1
        lo += [0.0] * act.size
        extra_rows = None
        primal = max(np.max(1.0 - y / L), 0.0)
    else:
        if obj == "sum":
            grad_y = -L / y**2
            extra_rows = None
        else:
            a = problem.L0 / (problem.L1**2 * problem.epsilon)
            wsum = 1.0 + float(np.sum(a))
            grad_y = -a / (wsum * y**2)
            inv = 1.0 / y
            act_t = np.flatnonzero(inv >= inv.max() * (1 - SUPPORT_RTOL))
            # κ_i ≥ 0 for active 1/y_i = t: contributes −κ_i Y_iᵀ / y_i² and Σ κ = 1 (in t)
            cols.append(sps.csr_matrix(-(form.Y[act_t].T.multiply(1.0 / y[act_t] ** 2))))
            lo += [0.0] * act_t.size
            extra_rows = (act_t.size, len(lo) - act_t.size)
        g = form.Y.T @ grad_y
        cols.append(sps.csr_matrix(cost.reshape(-1, 1)))  # λ free (normalisation)
        lo.append(-np.inf)
        primal = abs(cost @ theta - 1.0)
    if form.E is not None:
        cols.append(form.E.T)
        lo += [-np.inf] * form.E.shape[0]
        primal = max(primal, float(np.max(np.abs(form.E @ theta))))
    if form.G is not None:
        Gt = form.G @ theta
        primal = max(primal, float(max(np.max(Gt), 0.0)))
        act = np.flatnonzero(Gt >= -SUPPORT_RTOL * tscale)
        cols.append(form.G[act].T)
        lo += [0.0] * act.size
    I = sps.identity(n, format="csc")[:, off]  # noqa: E741
    cols.append(-I)  # μ_j ≥ 0 off the support
    lo += [0.0] * off.size
    A = sps.hstack(cols, format="csr")
    rhs = -np.asarray(g, dtype=float)
    if extra_rows is not None:
        k, start = extra_rows
        row = np.zeros(A.shape[1])
        row[start : start + k] = 1.0
        A = sps.vstack([A, sps.csr_matrix(row)], format="csr")
        rhs = np.concatenate([rhs, [1.0 / wsum]])  # ∂/∂t of (t + …)/wsum
    if not (np.all(np.isfinite(rhs)) and np.all(np.isfinite(A.data))):
        raise ValueError("the gradient at the solution is not finite")
    z = _min_inf_residual(A, rhs, np.array(lo))
    r = A @ z - rhs
    scale = 1.0 + float(np.max(np.abs(rhs)))
    mu = z[len(lo) - off.size :]
    comp = float(np.max(mu * theta[off], initial=0.0))
    return {
        "primal_infeasibility": float(primal),
        "dual_infeasibility": 0.0,  # the recovered multipliers satisfy their sign constraints
        "stationarity": float(np.max(np.abs(r))) / scale,
        "complementarity": comp / (1.0 + abs(float(prob.value))),
        "duality_gap": None,
    }


def _min_inf_residual(A, rhs, lo):
    """``argmin_z ‖A z − rhs‖_∞`` subject to ``z ≥ lo`` (entries of ``lo`` may be −inf), as the
    LP ``min s`` s.t. ``−s ≤ A z − rhs ≤ s``."""
    import scipy.sparse as sps
    from scipy.optimize import linprog

    m, k = A.shape
    ones = sps.csr_matrix(np.ones((m, 1)))
    A_ub = sps.vstack([sps.hstack([A, -ones]), sps.hstack([-A, -ones])], format="csr")
    b_ub = np.concatenate([rhs, -rhs])
    c = np.zeros(k + 1)
    c[-1] = 1.0
    bounds = [(None if not np.isfinite(v) else float(v), None) for v in lo] + [(0, None)]
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    if res.status != 0:
        raise RuntimeError(f"recovering the KKT multipliers failed: {res.message}")
    return res.x[:k]
