"""An optimiser for small sampling problems that shares nothing with :mod:`dropmuon.solvers` but
the evaluator: a multi-start local method over explicit distributions (the badly scaled l0l1 case of test_certified_optimum).

For ``rpt`` and ``subsets`` the variables are the log-masses ``u_S`` of every set of the family
(``b`` starts, or all ``2^b − 1`` subsets), for ``independent`` the log-probabilities
``log π_i``; the objective is ``log K(π) + log E cost`` with ``K`` written out here from T1′/T2
(``max_i 1/π_i`` through an epigraph variable ``τ ≥ −log π_i``, so that SLSQP sees a smooth
objective) and exact gradients. Log-masses reach ``e^-60`` of the largest, far below any optimum
here (the badly scaled l0l1 case's optimum samples two layers with probability 7.8e-6). The best point is returned
as a distribution object and scored by the project's own evaluator
(``optimal_sampling(family="fixed")``): every answer is a feasible distribution, so its total
cost is an upper bound on the optimum.
"""

import itertools
import math

import numpy as np
from scipy.optimize import minimize

from dropmuon.solvers import optimal_sampling
from dropmuon.theory import RPT, Independent, SubsetDistribution

LOG_FLOOR = -60.0


def family_sets(family, b):
    """0-based sets: the starts ``{s..b}`` (rpt) or every nonempty subset (subsets)."""
    if family == "rpt":
        return [tuple(range(s, b)) for s in range(b)]
    return [S for k in range(1, b + 1) for S in itertools.combinations(range(b), k)]


def _k_terms(objective, kw):
    """``K(π) = c0 · (m · max_i 1/π_i + Σ_i w_i/π_i)``: T1′ (sum) or T2's π-free statement."""
    if objective == "sum":
        return 2 * kw.get("Delta0", 0.5) / kw.get("epsilon", 1.0) ** 2, 0.0, np.asarray(kw["L"], float)
    L0, L1 = np.asarray(kw["L0"], float), np.asarray(kw["L1"], float)
    return 2 * kw["Delta0"] / kw["epsilon"], 1.0, L0 / (L1**2 * kw["epsilon"])


def _last_point(value_parts, slope_parts):
    """``value_parts`` and ``slope_parts`` remembering their last point: SLSQP asks for the
    objective and the constraint at every trial point of its line search, and for their gradients
    only at the points it accepts, so ``(π, C)`` is computed once per point and the derivatives
    ``(∂C/∂x, ∂π/∂x)`` only where a gradient is asked for (the arrays are only read)."""
    key = value = slope = None

    def value_at(x):
        nonlocal key, value, slope
        k = x.tobytes()
        if k != key:
            key, value, slope = k, value_parts(x), None
        return value

    def slope_at(x):
        nonlocal slope
        v = value_at(x)
        if slope is None:
            slope = slope_parts(v)
        return slope

    return value_at, slope_at


def best_distribution(model, family, objective, kw, *, starts=12, seed=0):
    """``(total cost, distribution)``: the best of ``starts`` SLSQP runs (plus one from each
    vertex for set families), scored by the project's evaluator."""
    b = model.nlayers
    F = float(model.forward)
    a = np.asarray(model.activation, float)
    v = np.asarray(model.weight, float) + np.asarray(model.update, float)
    _, mx, wts = _k_terms(objective, kw)
    scale = max(float(wts.max()), mx)
    wts, mx = wts / scale, mx / scale
    if family == "independent":
        assert not np.any(a[1:] > 0), "written for linear independent costs (a_j = 0 for j >= 2)"
        cmax = F + float(v.sum())
        Fh, vh = F / cmax, v / cmax
        n = b

        def value_parts(x):
            pi = np.exp(x)
            return pi, Fh + float(vh @ pi)

        def slope_parts(value):
            pi, _ = value
            return vh * pi, np.eye(b) * pi  # ∂C/∂x, ∂π/∂x
    else:
        sets = family_sets(family, b)
        cost = np.array([F + a[S[0] + 1:].sum() + v[list(S)].sum() for S in sets])
        cost = cost / cost.max()
        member = np.array([[1.0 if j in S else 0.0 for S in sets] for j in range(b)])
        n = len(sets)

        def value_parts(x):
            r = np.exp(x - x.max())
            mass = r.sum()
            return member @ r / mass, float(cost @ r) / mass, r, mass

        def slope_parts(value):
            pi, C, r, mass = value
            return (cost - C) * r / mass, (member - pi[:, None]) * r / mass

    parts, slopes = _last_point(value_parts, slope_parts)

    def f(z):
        pi, C = parts(z[:n])[:2]
        S = mx * math.exp(z[n]) + float((wts / pi).sum())
        return math.log(S) + math.log(C)

    def g(z):
        x, tau = z[:n], z[n]
        pi, C = parts(x)[:2]
        dC, dpi = slopes(x)
        S = mx * math.exp(tau) + float((wts / pi).sum())
        gx = ((-wts / pi**2) @ dpi) / S + dC / C
        return np.concatenate([gx, [mx * math.exp(tau) / S]])

    def epigraph(z):
        return z[n] + np.log(parts(z[:n])[0])

    def epigraph_jac(z):
        pi, dpi = parts(z[:n])[0], slopes(z[:n])[1]
        return np.hstack([dpi / pi[:, None], np.ones((b, 1))])

    cons = [{"type": "ineq", "fun": epigraph, "jac": epigraph_jac}] if mx > 0 else []
    rng = np.random.default_rng(seed)
    x0s = []
    if family != "independent":
        for k in range(n):
            x = np.full(n, -20.0)
            x[k] = 0.0
            x0s.append(x)
    else:
        x0s.append(np.zeros(n))
    for k in range(starts):
        x0s.append(rng.uniform(-30.0 if k % 2 else -5.0, 0.0, n))
    best = None
    # every start, then two restarts from the best point (SLSQP's quasi-Newton model restarts
    # fresh, which finishes valleys its first run stopped in); where the first restart finds
    # nothing better, the second would start from the same point and repeat it exactly: skipped
    restarted = None
    for k in range(len(x0s) + 2):
        if k >= len(x0s) and best[2] is restarted:
            break
        x0 = x0s[k] if k < len(x0s) else best[2]
        restarted = x0 if k >= len(x0s) else None
        tau0 = float(np.max(-np.log(parts(x0)[0])))
        with np.errstate(all="ignore"):
            res = minimize(f, np.concatenate([x0, [tau0]]), jac=g, method="SLSQP", constraints=cons,
                           bounds=[(LOG_FLOOR, 0.0)] * n + [(0.0, -LOG_FLOOR)],
                           options={"maxiter": 150, "ftol": 1e-15})
        x = np.clip(res.x[:n], LOG_FLOOR, 0.0)
        if family == "independent":
            dist = Independent(np.exp(x))
        else:
            q = np.exp(x - x.max())
            q /= q.sum()
            dist = RPT(q) if family == "rpt" else SubsetDistribution(b, [tuple(j + 1 for j in S) for S in sets], q)
        tc = optimal_sampling(kw.get("L"), model, family="fixed", objective=objective, distribution=dist,
                              **{k: kw[k] for k in ("L0", "L1", "Delta0", "epsilon") if k in kw}).total_cost
        if math.isfinite(tc) and (best is None or tc < best[0]):
            best = (tc, dist, x)
    return best[:2]
