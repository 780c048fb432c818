"""Routes to the optimum independent of the LP and convex formulations: a multi-start local method
(scipy SLSQP) in each family's natural parameters, a brute-force grid for ``b ≤ 3``, and — for
independent sampling in the sum- and l0l1-form, the only case without a convex form once
activation costs make the expected cost non-linear — a multi-start local method in
log-probabilities with exact gradients
(:func:`~dropmuon.solvers.independent_nonlinear.solve_independent_nonlinear`, re-exported here). They evaluate
``K(π)`` through the theorem's expression and ``E cost`` through the cost model, so they
cross-check the exact methods end to end. None of them is certified: their status is
``optimal_inaccurate`` unless the front door finds them equal to a closed form.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from dropmuon.theory import RPT, CompactSubsets, Independent

from ._problem import Problem, cost_unit
from .independent_nonlinear import PI_MIN, solve_independent_nonlinear

__all__ = ["solve_scipy", "solve_grid", "solve_independent_nonlinear", "GRID_MAX_LAYERS", "PI_FLOOR", "PI_MIN"]

# Local methods keep every inclusion probability above this floor: K(π) is infinite at π_i = 0,
# and no optimum of these objectives comes near it (π_i* ≥ min L / max L for the max-form).
PI_FLOOR = 1e-6
GRID_MAX_LAYERS = 3


def _ecost_rpt(model, P):
    """E cost for rows of inclusion probabilities π (RPT): F + Σ π_{j−1} a_j + Σ π_j v_j."""
    prev = np.concatenate([np.zeros(P.shape[:-1] + (1,)), P[..., :-1]], axis=-1)
    return model.forward + prev @ model.activation + P @ model.per_layer


def _ecost_independent(model, P):
    """E cost for rows of inclusion probabilities π (independent): F + Σ_j a_j (1 − q_j) + Σ_j π_j v_j
    with ``q_j = Π_{k<j} (1 − π_k)``. The running products are taken layer by layer over all rows at
    once — q_{j+1} = q_j · (1 − π_j), the multiplications of ``cumprod`` along the rows, whose
    per-row loop over a short last axis dominated the grid (~50 ms at 10^6 rows of b = 3)."""
    P = np.asarray(P, dtype=float)
    b = P.shape[-1]
    om = 1.0 - P
    none_below = np.empty_like(om)  # the layout concatenate would give (it decides the matmul's path)
    none_below[..., 0] = 1.0
    if b > 1:
        none_below[..., 1] = om[..., 0]
    for j in range(1, b - 1):
        np.multiply(none_below[..., j], om[..., j], out=none_below[..., j + 1])
    return model.forward + (1.0 - none_below) @ model.activation + P @ model.per_layer


def _ecost_compact(model, R, T):
    below = np.concatenate([np.zeros(R.shape[:-1] + (1,)), np.cumsum(R, axis=-1)[..., :-1]], axis=-1)
    return R @ model.lowest_costs() + (T * below) @ model.per_layer, R + T * below


def _decode(family, b, z):
    """Natural parameters → (distribution, π, E-cost function arguments)."""
    if family == "rpt":
        p = np.clip(z[:b], 0.0, None)
        p = p / p.sum()
        return RPT(p)
    if family == "independent":
        return Independent(np.clip(z[:b], PI_FLOOR, 1.0))
    rho = np.clip(z[:b], 0.0, None)
    rho = rho / rho.sum()
    return CompactSubsets(rho, np.clip(z[b : 2 * b], 0.0, 1.0))


def _normalised(problem: Problem, method: str = "scipy") -> Problem:
    """The same problem with ``L/L_max`` and costs over a full step's cost (same optimum)."""
    import dataclasses

    from dropmuon.theory import CostModel

    m = problem.model
    cs = cost_unit(m)
    model = CostModel(m.forward / cs, m.activation / cs, m.weight / cs, m.update / cs)
    L = None if problem.L is None else problem.L / float(np.max(problem.L))
    if L is not None and not np.all(L > 0):
        i = int(np.argmin(L))
        e = math.log10(problem.L[i]) - math.log10(float(np.max(problem.L)))
        raise ValueError(f"method {method!r} needs L_i/L_max representable as a double; L_{i + 1}/L_max = 1e{e:.0f} "
                         "(use method 'auto')")
    return dataclasses.replace(problem, model=model, L=L, _k_many=None)


# SLSQP without a gradient takes forward differences: scipy's approx_derivative with method
# '2-point', the absolute step sqrt(machine epsilon) and the bounds (a step that would leave them
# is turned around, or shortened to fit), for the objective at the point's known value and for
# each constraint without a Jacobian at a fresh evaluation. Through scipy every difference passes
# several wrappers (~15 us per evaluation here, plus ~100 us per gradient), most of this method's
# time on small problems. _ForwardDifferences takes the same differences with the same
# operations — the same steps, the same points x0 + h_i e_i, (f(x) − f0)/((x0_i + h_i) − x0_i) —
# so SLSQP receives the same numbers and follows the same path (checked bit for bit against
# scipy's own differences on thousands of random problems of every family and objective).
_FD_STEP = math.sqrt(np.finfo(float).eps)  # scipy's default eps for SLSQP, exactly 2^-26


def _fd_steps(x0: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """The steps of ``approx_derivative(method="2-point", abs_step=_FD_STEP, bounds=(lb, ub))``."""
    sign_x0 = (x0 >= 0).astype(float) * 2 - 1
    dx = (x0 + _FD_STEP) - x0
    h = np.where(dx == 0, _FD_STEP * sign_x0 * np.maximum(1.0, np.abs(x0)), _FD_STEP)
    if np.all((lb == -np.inf) & (ub == np.inf)):
        return h
    # one-sided scheme, one step: reverse a step that leaves the bounds where the reverse fits,
    # else step to the farther bound
    lower_dist, upper_dist = x0 - lb, ub - x0
    x = x0 + h
    violated = (x < lb) | (x > ub)
    fitting = np.abs(h) <= np.maximum(lower_dist, upper_dist)
    h[violated & fitting] *= -1
    forward = (upper_dist >= lower_dist) & ~fitting
    h[forward] = upper_dist[forward]
    backward = (upper_dist < lower_dist) & ~fitting
    h[backward] = -lower_dist[backward]
    return h


def _differences(fun, x0: np.ndarray, f0: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Rows ``(f(x0 + h_i e_i) − f0) / ((x0_i + h_i) − x0_i)``: the Jacobian transposed (the
    points as the rows of one array, each evaluated on its own; the arithmetic elementwise)."""
    n = x0.size
    xh = x0 + h
    X = np.repeat(x0[None, :], n, axis=0)
    X[np.arange(n), np.arange(n)] = xh
    F = np.array([np.atleast_1d(fun(X[i])) for i in range(n)], dtype=float).reshape(n, f0.size)
    return (F - f0) / (xh - x0)[:, None]


class _ForwardDifferences:
    """An objective and its constraints with the forward-difference derivatives SLSQP would take
    (see above): ``fun`` remembers its last value, the ``f0`` of the gradient at that point."""

    def __init__(self, fun, bounds):
        self.f = fun
        self.lb = np.array([-np.inf if lo is None else float(lo) for lo, _ in bounds])
        self.ub = np.array([np.inf if hi is None else float(hi) for _, hi in bounds])
        self.last = self.last_steps = None

    def steps(self, x):
        """:func:`_fd_steps` at ``x``, kept for the constraints' Jacobians at the same point."""
        key = x.tobytes()
        if self.last_steps is None or self.last_steps[0] != key:
            self.last_steps = (key, _fd_steps(x, self.lb, self.ub))
        return self.last_steps[1]

    def fun(self, x):
        v = self.f(x)
        self.last = (x.tobytes(), v)
        return v

    def jac(self, x):
        if np.any((x < self.lb) | (x > self.ub)):
            raise ValueError("`x0` violates bound constraints.")  # as approx_derivative
        f0 = self.last[1] if self.last is not None and self.last[0] == x.tobytes() else self.f(x)
        return np.ravel(_differences(self.f, x, np.atleast_1d(f0), self.steps(x)))

    def constraint_jac(self, con):
        """The Jacobian of constraint ``con`` as SLSQP's default: clipped into the bounds first."""
        lb, ub = self.lb, self.ub

        def jac(x):
            if (x < lb).any() or (x > ub).any():
                warnings.warn("Values in x were outside bounds during a minimize step, clipping to bounds",
                              RuntimeWarning, stacklevel=2)
                x = np.clip(x, lb, ub)
            x = np.asarray(x, dtype=float)
            return _differences(con, x, np.atleast_1d(con(x)), self.steps(x)).T

        return jac


def solve_scipy(problem: Problem, family: str, *, starts: int = 8, seed: int = 0):
    """Best of ``starts`` SLSQP runs (the full, uniform and random starting points, seeded).

    The epigraph variable ``T ≥ L_i/π_i`` (max-form) or ``m ≤ π_i`` (l0l1) makes the objective
    smooth. Returns ``(distribution, residuals, message, status)``.
    """
    from scipy.optimize import minimize

    # solved in units where L_max = 1 and a full step costs 1 (the optimum is invariant to both),
    # so that the epigraph variable and the objective are of order one
    problem = _normalised(problem)
    b = problem.nlayers
    rng = np.random.default_rng(seed)
    obj = problem.objective
    nz = b if family in ("rpt", "independent") else 2 * b
    n = nz + (1 if obj in ("max", "l0l1") else 0)

    # π and E cost of the family's parameters (the _ecost_* formulas on one vector), with the model's
    # arrays read once: SLSQP's finite differences call these ~10^4-10^5 times per solve
    m = problem.model
    F, act, pl = m.forward, m.activation, m.per_layer
    # (a prefix sum or product of x[:b − 1] is the same as that of x[:b] without its last entry)
    if family == "rpt":
        def pi_of(x):
            return x[:b].cumsum()

        def pi_and_cost(x):
            P = x[:b].cumsum()
            prev = np.zeros(b)
            prev[1:] = P[:-1]
            return P, float(F + prev @ act + P @ pl)
    elif family == "independent":
        def pi_of(x):
            return x[:b]

        def pi_and_cost(x):
            P = x[:b]
            none_below = np.ones(b)
            (1.0 - P[:-1]).cumprod(out=none_below[1:])
            return P, float(F + (1.0 - none_below) @ act + P @ pl)
    else:
        lc = m.lowest_costs()

        def below(R):
            out = np.zeros(b)
            R[:-1].cumsum(out=out[1:])
            return out

        def pi_of(x):
            R = x[:b]
            return R + x[b : 2 * b] * below(R)

        def pi_and_cost(x):
            R = x[:b]
            TB = x[b : 2 * b] * below(R)
            return R + TB, float(R @ lc + TB @ pl)

    L, L0, eps = problem.L, problem.L0, problem.epsilon
    L1sq = problem.L1**2 if obj == "l0l1" else None

    def total(x):
        P, c = pi_and_cost(x)
        Pc = np.maximum(P, PI_FLOOR)
        if obj == "max":
            K = x[nz]
        elif obj == "sum":
            K = float((L / Pc).sum())
        else:
            K = (1.0 / max(x[nz], PI_FLOOR) + float((L0 / (Pc * L1sq)).sum()) / eps)
        return K * c

    bounds = [(0.0, 1.0)] * nz + ([(PI_FLOOR, None)] if obj == "l0l1" else [(float(problem.L.max()), None)] if obj == "max" else [])
    fd = _ForwardDifferences(total, bounds)
    cons = []
    if family in ("rpt", "subsets"):
        eq_jac = np.r_[np.ones(b), np.zeros(n - b)]
        cons.append({"type": "eq", "fun": lambda x: np.sum(x[:b]) - 1.0, "jac": lambda x: eq_jac.copy()})
    ineq = [lambda x: pi_of(x) - PI_FLOOR]
    if obj == "max":
        ineq.append(lambda x: x[nz] * pi_of(x) - L)
    elif obj == "l0l1":
        ineq.append(lambda x: pi_of(x) - x[nz])
    cons += [{"type": "ineq", "fun": g, "jac": fd.constraint_jac(g)} for g in ineq]

    def start_points():
        full = np.zeros(nz)
        unif = np.zeros(nz)
        if family == "rpt":
            full[0] = 1.0
            unif[:] = 1.0 / b
        elif family == "independent":
            full[:] = 1.0
            unif[:] = np.arange(1, b + 1) / b
        else:
            full[0] = 1.0
            full[b:] = 1.0
            unif[:b] = 1.0 / b
            unif[b:] = 1.0
        yield full
        yield unif
        for _ in range(max(0, starts - 2)):
            z = np.empty(nz)
            if family == "independent":
                z[:] = rng.uniform(0.05, 1.0, b)
            else:
                z[:b] = rng.dirichlet(np.ones(b))
                if family == "subsets":
                    z[b:] = rng.uniform(0.0, 1.0, b)
            yield z

    best = None
    converged = 0
    runs = 0
    # a start equal to an earlier one (b = 1, where full, uniform and random starts coincide) is
    # the same deterministic run to the same point, which cannot beat itself: it is counted, not
    # repeated
    done = {}
    for z0 in start_points():
        runs += 1
        P = pi_of(z0)
        P = np.maximum(P, PI_FLOOR)
        aux = [float(np.max(problem.L / P))] if obj == "max" else [float(P.min())] if obj == "l0l1" else []
        x0 = np.concatenate([z0, aux])
        key = x0.tobytes()
        if key in done:
            converged += done[key]
            continue
        with np.errstate(all="ignore"):
            res = minimize(fd.fun, x0, jac=fd.jac, method="SLSQP", bounds=bounds, constraints=cons,
                           options={"maxiter": 1000, "ftol": 1e-14})
        converged += done.setdefault(key, bool(res.success))
        dist = _decode(family, b, res.x)
        _, _, tc = problem.evaluate(dist)
        if math.isfinite(tc) and (best is None or tc < best[0]):
            best = (tc, dist, res)
    if best is None:
        raise RuntimeError("scipy found no distribution with finite total cost")
    tc, dist, res = best
    P = dist.inclusion
    resid = {
        "primal_infeasibility": float(max(PI_FLOOR - P.min(), P.max() - 1.0, 0.0)),
        "dual_infeasibility": None,
        "stationarity": None,
        "complementarity": None,
        "duality_gap": None,
    }
    # a local method's answer is not certified: the front door upgrades it to "optimal" only where
    # it agrees with a closed form
    status = "optimal_inaccurate"
    msg = f"scipy SLSQP, best of {runs} starts ({converged} converged; local method, seed {seed})"
    return dist, resid, msg, status


def _simplex_grid(b: int, n: int) -> np.ndarray:
    """All points of the simplex with coordinates in {0, 1/n, …, 1}."""
    m, k = n + b - 1, b - 1
    if k in (1, 2):  # itertools.combinations(range(m), k) in its (lexicographic) order, as arrays
        c = np.arange(m)[:, None] if k == 1 else np.stack(np.triu_indices(m, 1), axis=1)
    else:
        pts = [c for c in itertools.combinations(range(m), k)]
        if not pts:
            return np.ones((1, 1))
        c = np.array(pts)
    bars = np.concatenate([-np.ones((len(c), 1), dtype=int), c, np.full((len(c), 1), n + b - 1)], axis=1)
    return (np.diff(bars, axis=1) - 1) / n


def _product_grid(axis: np.ndarray, b: int) -> np.ndarray:
    """The rows of ``itertools.product(axis, repeat=b)``, in its order and with its numbers (copies
    of ``axis``'s entries), built column by column instead of from a Python tuple per point
    (~0.3 s at 100³ points)."""
    n = len(axis)
    out = np.empty((n**b, b))
    for j in range(b):
        out[:, j] = np.tile(np.repeat(axis, n ** (b - 1 - j)), n**j)
    return out


def solve_grid(problem: Problem, family: str, *, resolution: int | None = None):
    """Brute force for ``b ≤ 3``: the best point of a grid over the family's parameters
    (start probabilities on the simplex; inclusion probabilities on a cube; lowest-layer
    probabilities × inclusion probabilities for subsets). Returns
    ``(distribution, residuals, message, status, resolution)``."""
    b = problem.nlayers
    if b > GRID_MAX_LAYERS:
        raise ValueError(f"method 'grid' is a brute force for b <= {GRID_MAX_LAYERS} layers; got b = {b}")
    # in units L_max = 1 and a full step = 1 (the argmin does not depend on them): constants and
    # costs near 1.8e308 would otherwise overflow K, or meet probabilities 0 as inf·0 = nan
    problem = _normalised(problem, "grid")
    m = problem.model
    if family == "rpt":
        n = resolution or 400
        Pm = _simplex_grid(b, n)
        pis = np.cumsum(Pm, axis=1)
        ec = _ecost_rpt(m, pis)
    elif family == "independent":
        n = resolution or (400 if b <= 2 else 100)
        axis = np.arange(1, n + 1) / n
        pis = _product_grid(axis, b)
        ec = _ecost_independent(m, pis)
    else:
        n = resolution or (40 if b == 3 else 200)
        R = _simplex_grid(b, n)
        axis = np.arange(0, n + 1) / n
        T = _product_grid(axis, b - 1) if b > 1 else np.zeros((1, 0))
        R2 = np.repeat(R, len(T), axis=0)
        T2 = np.zeros((len(R), len(T), b))  # rows (0, T[t]) for every R, as np.tile(T) would give
        T2[:, :, 1:] = T
        T2 = T2.reshape(-1, b)
        # _ecost_compact(m, R2, T2), with the mass below each layer summed once per row of R and
        # repeated (a row's cumulative sum is the same whatever rows surround it)
        below = np.concatenate([np.zeros((len(R), 1)), np.cumsum(R, axis=-1)[:, :-1]], axis=-1)
        TB = T2 * np.repeat(below, len(T), axis=0)
        ec, pis = R2 @ m.lowest_costs() + TB @ m.per_layer, R2 + TB
    # K on a column-major copy: the generated function's sums and maxima over a row of b ≤ 3
    # then run over contiguous columns (4-9x faster than over the rows of a row-major array at
    # 10^6 points). The numbers are the same: numpy sums a short last axis of either layout by
    # the same sequential additions, (x_1 + x_2) + x_3 (max is exact anyway); checked bit for bit
    # on 10^7 rows of every objective's K and on the grid's answers against the row-major route.
    K = problem.iterations_many(np.asfortranarray(pis))
    tc = K * ec
    k = int(np.argmin(tc))
    if family == "rpt":
        dist = RPT(Pm[k])
    elif family == "independent":
        dist = Independent(pis[k])
    else:
        dist = CompactSubsets(R2[k], T2[k])
    resid = {"primal_infeasibility": 0.0, "dual_infeasibility": None, "stationarity": None,
             "complementarity": None, "duality_gap": None}
    msg = f"brute-force grid, resolution 1/{n}, {len(tc)} points"
    return dist, resid, msg, "optimal_inaccurate", n
