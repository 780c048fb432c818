"""Derivative-free routes to the optimum, independent of the LP and convex formulations: a
multi-start local method (scipy SLSQP) in each family's natural parameters, and a brute-force grid
for ``b ≤ 3``. Both evaluate ``K(π)`` through the theorem objects and ``E cost`` through the cost
model, so they cross-check the exact methods end to end.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from theory import RPT, CompactSubsets, Independent

from ._problem import Problem

__all__ = ["solve_scipy", "solve_grid", "GRID_MAX_LAYERS", "PI_FLOOR"]

# Local methods keep every inclusion probability above this floor: K(π) is infinite at π_i = 0,
# and no optimum of these objectives comes near it (π_i* ≥ min L / max L for the max-form).
PI_FLOOR = 1e-6
GRID_MAX_LAYERS = 3


def _ecost_rpt(model, P):
    """E cost for rows of inclusion probabilities π (RPT): F + Σ π_{j−1} a_j + Σ π_j v_j."""
    prev = np.concatenate([np.zeros(P.shape[:-1] + (1,)), P[..., :-1]], axis=-1)
    return model.forward + prev @ model.activation + P @ model.per_layer


def _ecost_independent(model, P):
    none_below = np.concatenate([np.ones(P.shape[:-1] + (1,)), np.cumprod(1.0 - P, axis=-1)[..., :-1]], axis=-1)
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


def _pi_and_cost(problem, family, z):
    b = problem.nlayers
    if family == "rpt":
        P = np.cumsum(z[:b])
        return P, float(_ecost_rpt(problem.model, P))
    if family == "independent":
        P = z[:b]
        return P, float(_ecost_independent(problem.model, P))
    c, P = _ecost_compact(problem.model, z[:b], z[b : 2 * b])
    return P, float(c)


def solve_scipy(problem: Problem, family: str, *, starts: int = 8, seed: int = 0):
    """Best of ``starts`` SLSQP runs (the full, uniform and random starting points, seeded).

    The epigraph variable ``T ≥ L_i/π_i`` (max-form) or ``m ≤ π_i`` (l0l1) makes the objective
    smooth. Returns ``(distribution, residuals, message, status)``.
    """
    from scipy.optimize import minimize

    b = problem.nlayers
    rng = np.random.default_rng(seed)
    obj = problem.objective
    nz = b if family in ("rpt", "independent") else 2 * b
    n = nz + (1 if obj in ("max", "l0l1") else 0)

    def split(x):
        return x[:nz], (x[nz] if n > nz else None)

    def total(x):
        z, aux = split(x)
        P, c = _pi_and_cost(problem, family, z)
        Pc = np.maximum(P, PI_FLOOR)
        if obj == "max":
            K = aux
        elif obj == "sum":
            K = float(np.sum(problem.L / Pc))
        else:
            m = max(aux, PI_FLOOR)
            K = (1.0 / m + float(np.sum(problem.L0 / (Pc * problem.L1**2))) / problem.epsilon)
        return K * c

    cons = []
    if family in ("rpt", "subsets"):
        cons.append({"type": "eq", "fun": lambda x: np.sum(x[:b]) - 1.0, "jac": lambda x: np.r_[np.ones(b), np.zeros(n - b)]})
    pi_of = (lambda x: _pi_and_cost(problem, family, split(x)[0])[0])
    cons.append({"type": "ineq", "fun": lambda x: pi_of(x) - PI_FLOOR})
    if obj == "max":
        cons.append({"type": "ineq", "fun": lambda x: x[nz] * pi_of(x) - problem.L})
    elif obj == "l0l1":
        cons.append({"type": "ineq", "fun": lambda x: pi_of(x) - x[nz]})
    bounds = [(0.0, 1.0)] * nz + ([(PI_FLOOR, None)] if obj == "l0l1" else [(float(problem.L.max()), None)] if obj == "max" else [])

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
    for z0 in start_points():
        runs += 1
        P, _ = _pi_and_cost(problem, family, z0)
        P = np.maximum(P, PI_FLOOR)
        aux = [float(np.max(problem.L / P))] if obj == "max" else [float(P.min())] if obj == "l0l1" else []
        x0 = np.concatenate([z0, aux])
        with np.errstate(all="ignore"):
            res = minimize(total, x0, method="SLSQP", bounds=bounds, constraints=cons,
                           options={"maxiter": 1000, "ftol": 1e-14})
        converged += bool(res.success)
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
    status = "optimal" if res.success else "optimal_inaccurate"
    msg = f"scipy SLSQP, best of {runs} starts ({converged} converged; local method, seed {seed})"
    return dist, resid, msg, status


def _simplex_grid(b: int, n: int) -> np.ndarray:
    """All points of the simplex with coordinates in {0, 1/n, …, 1}."""
    pts = [c for c in itertools.combinations(range(n + b - 1), b - 1)]
    if not pts:
        return np.ones((1, 1))
    c = np.array(pts)
    bars = np.concatenate([-np.ones((len(c), 1), dtype=int), c, np.full((len(c), 1), n + b - 1)], axis=1)
    return (np.diff(bars, axis=1) - 1) / n


def solve_grid(problem: Problem, family: str, *, resolution: int | None = None):
    """Brute force for ``b ≤ 3``: the best point of a grid over the family's parameters
    (start probabilities on the simplex; inclusion probabilities on a cube; lowest-layer
    probabilities × inclusion probabilities for subsets). Returns
    ``(distribution, residuals, message, status, resolution)``."""
    b = problem.nlayers
    if b > GRID_MAX_LAYERS:
        raise ValueError(f"method 'grid' is a brute force for b <= {GRID_MAX_LAYERS} layers; got b = {b}")
    m = problem.model
    if family == "rpt":
        n = resolution or 400
        Pm = _simplex_grid(b, n)
        pis = np.cumsum(Pm, axis=1)
        ec = _ecost_rpt(m, pis)
    elif family == "independent":
        n = resolution or (400 if b <= 2 else 100)
        axis = np.arange(1, n + 1) / n
        pis = np.array(list(itertools.product(axis, repeat=b)))
        ec = _ecost_independent(m, pis)
    else:
        n = resolution or (40 if b == 3 else 200)
        R = _simplex_grid(b, n)
        axis = np.arange(0, n + 1) / n
        T = np.array(list(itertools.product(axis, repeat=b - 1))) if b > 1 else np.zeros((1, 0))
        R2 = np.repeat(R, len(T), axis=0)
        T2 = np.concatenate([np.zeros((len(R2), 1)), np.tile(T, (len(R), 1))], axis=1)
        ec, pis = _ecost_compact(m, R2, T2)
    K = problem.iterations_many(pis)
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
