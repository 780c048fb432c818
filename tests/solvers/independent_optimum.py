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


def _last_value(parts):
    """``parts`` remembering its last point: SLSQP asks for the objective, the constraint and its
    Jacobian at the same point, three calls of ``parts`` with one answer (the arrays are only read)."""
    last = {}

    def cached(x):
        key = np.asarray(x).tobytes()
        if last.get("key") != key:
            last["key"], last["value"] = key, parts(x)
        return last["value"]

    return cached


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

        def parts(x):
            pi = np.exp(x)
            C = Fh + float(vh @ pi)
            dC = vh * pi  # ∂C/∂x
            return pi, C, dC, np.eye(b) * pi  # ∂π/∂x
    else:
        sets = family_sets(family, b)
        cost = np.array([F + a[S[0] + 1:].sum() + v[list(S)].sum() for S in sets])
        cost = cost / cost.max()
        member = np.array([[1.0 if j in S else 0.0 for S in sets] for j in range(b)])
        n = len(sets)

        def parts(x):
            r = np.exp(x - x.max())
            mass = r.sum()
            pi = member @ r / mass
            C = float(cost @ r) / mass
            dC = (cost - C) * r / mass
            return pi, C, dC, (member - pi[:, None]) * r / mass

    parts = _last_value(parts)

    def fg(z):
        x, tau = z[:n], z[n]
        pi, C, dC, dpi = parts(x)
        S = mx * math.exp(tau) + float(np.sum(wts / pi))
        gx = ((-wts / pi**2) @ dpi) / S + dC / C
        return math.log(S) + math.log(C), np.concatenate([gx, [mx * math.exp(tau) / S]])

    def epigraph(z):
        return z[n] + np.log(parts(z[:n])[0])

    def epigraph_jac(z):
        pi, _, _, dpi = parts(z[:n])
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
    # fresh, which finishes valleys its first run stopped in)
    for k in range(len(x0s) + 2):
        x0 = x0s[k] if k < len(x0s) else best[2]
        tau0 = float(np.max(-np.log(parts(x0)[0])))
        with np.errstate(all="ignore"):
            res = minimize(fg, np.concatenate([x0, [tau0]]), jac=True, method="SLSQP", constraints=cons,
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
