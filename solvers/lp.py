"""The max-form as an exact linear program solved by HiGHS (``scipy.optimize.linprog``), for any
family's :class:`~dropmuon.solvers._problem.Formulation`, with KKT residuals from HiGHS's duals.

In unnormalised masses ``θ`` the max-form is ``min cost·θ`` s.t. ``Yθ ≥ L``, ``Gθ ≤ 0``,
``Eθ = 0``, ``θ ≥ 0``: the optimal value is ``max_i(L_i/π_i)·E cost`` at the optimum (docs/sampling.md);
the distribution is ``θ`` normalised by its probability mass.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sps

from ._problem import Formulation, Problem

__all__ = ["solve_max_lp", "lp_residuals", "HIGHS_OPTIONS"]

# HiGHS's default feasibility tolerances (1e-7) leave objective values ~1e-8 off when costs span
# many orders of magnitude; 1e-10 makes the LP exact to rounding on every problem here at no
# measurable cost in time (a simplex basis is exact once found).
HIGHS_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


# The smallest L_i/L_max the LP takes: the scaled cover rows have coefficients up to
# L_max/L_i, and HiGHS treats matrix entries beyond ~1e15 as a model error.
_MIN_RATIO = 1e-12


def _ratio_text(L, i) -> str:
    """``L_i/L_max`` as text, also where the ratio underflows a double."""
    e = math.log10(L[i]) - math.log10(float(np.max(L)))
    return f"{10**e:.3g}" if e > -300 else f"1e{e:.0f}"


def lp_residuals(c, A_ub, b_ub, A_eq, b_eq, x, lam_ub, lam_eq, mu_lower) -> dict:
    """Relative KKT residuals of ``min c·x`` s.t. ``A_ub x ≤ b_ub``, ``A_eq x = b_eq``, ``x ≥ 0``,
    with multipliers in scipy's sign convention (``lam_ub ≤ 0``, ``mu_lower ≥ 0``):
    stationarity ``c − A_ubᵀλ − A_eqᵀη − μ = 0``."""
    x = np.asarray(x, dtype=float)
    obj = float(c @ x)
    r = c - A_ub.T @ lam_ub - (A_eq.T @ lam_eq if A_eq is not None else 0.0) - mu_lower
    slack = b_ub - A_ub @ x
    cs = 1.0 + np.max(np.abs(c))
    eq_viol = np.max(np.abs(A_eq @ x - b_eq)) if A_eq is not None else 0.0
    dual_obj = float(b_ub @ lam_ub + (b_eq @ lam_eq if A_eq is not None else 0.0))
    return {
        "primal_infeasibility": float(max(np.max(-slack, initial=0.0), eq_viol, -x.min(initial=0.0), 0.0))
        / (1.0 + np.max(np.abs(b_ub), initial=0.0)),
        "dual_infeasibility": float(max(np.max(lam_ub, initial=0.0), -np.min(mu_lower, initial=0.0), 0.0)) / cs,
        "stationarity": float(np.max(np.abs(r), initial=0.0)) / cs,
        "complementarity": float(max(np.max(np.abs(lam_ub * slack), initial=0.0), np.max(np.abs(mu_lower * x), initial=0.0)))
        / (1.0 + abs(obj)),
        "duality_gap": abs(obj - dual_obj) / (1.0 + abs(obj)),
    }


def solve_max_lp(problem: Problem, form: Formulation):
    """Solve the max-form LP with HiGHS; returns ``(distribution, residuals, message, value)``
    where ``value = max_i(L_i/π_i)·E cost`` (units of ``2Δ0/ε²``)."""
    from scipy.optimize import linprog

    # Units: the optimum is invariant to the units of L and of the costs, so the LP is solved with
    # L/L_max and costs over a full step's cost, and each cover row Y_i θ ≥ L_i is divided by L_i
    # (Y_i θ / L_i ≥ 1): HiGHS's feasibility tolerance is then relative to each constant, so a
    # layer with L_i/L_max = 1e-10 is not dropped (π_i = 0) as rounding.
    Lh = problem.L / float(np.max(problem.L))
    if not np.all(Lh >= _MIN_RATIO):
        i = int(np.argmin(Lh))
        raise ValueError(
            f"method 'lp' needs L_i/L_max >= {_MIN_RATIO:g}; L_{i + 1}/L_max = {_ratio_text(problem.L, i)} "
            "(use the closed form, method 'auto')"
        )
    cost = form.cost  # in units of form.unit (a full step's cost where that is finite)
    blocks = [-sps.diags(1.0 / Lh) @ form.Y]
    rhs = [-np.ones(Lh.size)]
    if form.G is not None:
        blocks.append(form.G)
        rhs.append(np.zeros(form.G.shape[0]))
    A_ub = sps.vstack(blocks, format="csr")
    b_ub = np.concatenate(rhs)
    A_eq = form.E
    b_eq = None if A_eq is None else np.zeros(A_eq.shape[0])
    res = linprog(cost, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs",
                  options=HIGHS_OPTIONS)
    if res.status != 0:
        raise RuntimeError(f"HiGHS did not solve the max-form LP: {res.message}")
    lam_eq = res.eqlin.marginals if A_eq is not None else None
    resid = lp_residuals(cost, A_ub, b_ub, A_eq, b_eq, res.x, res.ineqlin.marginals, lam_eq, res.lower.marginals)
    dist = form.decode(res.x)
    n_nz = A_ub.nnz + (A_eq.nnz if A_eq is not None else 0)
    msg = f"HiGHS LP: {form.nvar} variables, {A_ub.shape[0] + (0 if A_eq is None else A_eq.shape[0])} rows, {n_nz} non-zeros; {res.message}"
    return dist, resid, msg, float(res.fun) * float(np.max(problem.L)) * form.unit
