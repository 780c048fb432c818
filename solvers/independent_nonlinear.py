"""Independent sampling with activation costs, sum- and l0l1-form: the one case without a convex
form (the expected cost is multilinear in ``π``), solved by a multi-start local method in
log-probabilities with exact gradients (:func:`solve_independent_nonlinear`). Not certified: its
status is ``optimal_inaccurate`` (the front door, :func:`dropmuon.solvers.optimal_sampling`, routes
here; the tests compare it with a brute force).
"""

from __future__ import annotations

import math

import numpy as np

from dropmuon.theory import Independent

from ._problem import Problem, cost_unit

__all__ = ["solve_independent_nonlinear", "PI_MIN"]


# -- independent sampling with activation costs (sum- and l0l1-form) -----------------------------
#
# With a_j > 0 for some j ≥ 2 the expected cost of independent sampling,
#     C(π) = F + Σ_j a_j (1 − q_j) + Σ_j v_j π_j,   q_j = Π_{k<j} (1 − π_k),
# is multilinear, not linear, and the total cost K(π)·C(π) has no known convex form. It is solved
# in log-probabilities x_i = log π_i ∈ [log PI_MIN, 0], where both factors are handled exactly:
#   log K = logsumexp(log w_i − x_i)              (sum-form: w = L; K ∝ Σ_i L_i/π_i)
#   log K = logsumexp(−u, log w_i − x_i), u ≤ x_i (l0l1: w_i = L0_i/(L1_i² ε), u = log min π)
#   ∂ log C/∂x_i = π_i (v_i + q_i R_i)/C,  R_i = Σ_{j>i} a_j Π_{i<k<j}(1 − π_k)
# so the objective log K + log C is dimensionless, free of overflow for constants anywhere in
# [1e-300, 1e300], and has an exact gradient. Starts cover the corners a local method would not
# reach from uniform(0.05, 1): all ones, the water-filling optimum without and with the activation
# costs charged to each layer, L/L_max, "RPT-shaped" starts (1 from layer s up, small below) and
# random points log-uniform down to 1e-12.

#: the smallest inclusion probability the local method considers (log-domain lower bound)
PI_MIN = 1e-300


def _cost_and_q(Fh, ah, vh, pi):
    """``C(π)`` for independent sampling (costs already normalised) and ``q_j = Π_{k<j}(1 − π_k)``,
    the probability that no layer below ``j`` is sampled."""
    b = pi.size
    logq = np.empty(b)
    logq[0] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        log1m = np.log1p(-np.minimum(pi, 1.0))  # −inf where π = 1
        np.cumsum(log1m[:-1], out=logq[1:])  # the running sum of all but the last: the same additions
    q = np.exp(logq)
    return Fh + float(ah @ (-np.expm1(logq))) + float(vh @ pi), q


def _cost_and_grad(Fh, ah, vh, pi):
    """``C(π)`` and ``π_i ∂C/∂π_i`` for independent sampling (costs already normalised).

    ``∂C/∂π_i = v_i + q_i R_i`` with ``R_i = a_{i+1} + (1 − π_{i+1}) R_{i+1}``, ``R_b = 0``: an
    upper bidiagonal system with unit diagonal, solved by LAPACK's banded triangular solve
    (``dtbtrs``), whose back substitution performs exactly the recursion's operations — the same
    numbers as the Python loop it replaces, ~10 us instead of ~30 us at b = 50 (and O(b) in C).
    """
    C, q = _cost_and_q(Fh, ah, vh, pi)
    return C, pi * (vh + q * _suffix_recursion(ah, pi))


_DTBTRS = []  # scipy.linalg.lapack.dtbtrs, imported on first use


def _suffix_recursion(ah, pi):
    """``R_i = a_{i+1} + (1 − π_{i+1}) R_{i+1}`` (0-based, ``R_{b−1} = 0``) for all ``i``."""
    if not _DTBTRS:
        from scipy.linalg.lapack import dtbtrs

        _DTBTRS.append(dtbtrs)
    b = pi.size
    if b == 1:
        return np.zeros(1)
    band = np.empty((2, b))  # LAPACK upper band storage: row 0 the superdiagonal, row 1 the diagonal
    band[1] = 1.0
    band[0, 0] = 0.0
    np.subtract(pi[1:], 1.0, out=band[0, 1:])  # A[i, i+1] = −(1 − π_{i+1})
    rhs = np.empty(b)
    rhs[:-1] = ah[1:]
    rhs[-1] = 0.0
    R, info = _DTBTRS[0](band, rhs, uplo="U", trans="N", diag="U")
    if info != 0:  # cannot happen with a unit diagonal; keep the failure loud
        raise RuntimeError(f"the banded solve for the activation-cost recursion failed (info {info})")
    return R


def _logsumexp_parts(z):
    """``(m, e, s)`` with ``m = max z``, ``e = exp(z − m)``, ``s = Σ e`` (``e = None`` where ``m`` is
    not finite): ``log Σ exp z = m + log s``, and the softmax is ``e/s``."""
    m = float(z.max())
    if not math.isfinite(m):
        return m, None, None
    e = np.exp(z - m)
    return m, e, float(e.sum())


def _logsumexp(z):
    m, e, s = _logsumexp_parts(z)
    if e is None:
        return m, np.zeros_like(z)
    return m + math.log(s), e / s


class _IndependentNonlinear:
    """The log-domain objective above for one problem (sum or l0l1)."""

    def __init__(self, problem: Problem):
        m = problem.model
        cs = cost_unit(m)
        self.Fh, self.ah, self.vh = m.forward / cs, m.activation / cs, m.weight / cs + m.update / cs
        self.obj = problem.objective
        self.b = m.nlayers
        with np.errstate(divide="ignore"):
            if self.obj == "sum":
                self.logw = np.log(problem.L)
            else:
                self.logw = np.log(problem.L0) - 2 * np.log(problem.L1) - math.log(problem.epsilon)
        self.lo = math.log(PI_MIN)

    def _k_exponents(self, x, u):
        """The terms whose log-sum-exp is ``log K``: ``log w_i − x_i``, preceded by ``−u`` (l0l1)."""
        if u is None:
            return self.logw - x
        z = np.empty(self.b + 1)
        z[0] = -u
        np.subtract(self.logw, x, out=z[1:])
        return z

    def point(self, x, u=None):
        """The parts of the objective at ``(x, u)`` that its value needs; :meth:`value_of` and
        :meth:`grad_of` finish them (a line search needs only the value)."""
        pi = np.exp(x)
        C, q = _cost_and_q(self.Fh, self.ah, self.vh, pi)
        return pi, C, q, _logsumexp_parts(self._k_exponents(x, u)), u is not None

    @staticmethod
    def value_of(pt):
        _, C, _, (m, e, s), _ = pt
        return (m if e is None else m + math.log(s)) + math.log(C)

    def grad_of(self, pt):
        """``(∂/∂x, ∂/∂u)`` at a :meth:`point`."""
        pi, C, q, (_, e, s), with_u = pt
        piC = pi * (self.vh + q * _suffix_recursion(self.ah, pi))
        sig = np.zeros(self.b + with_u) if e is None else e / s
        if with_u:
            return -sig[1:] + piC / C, -sig[0]
        return -sig + piC / C, None

    def value(self, x, u=None):
        """``log K + log C`` (the first entry of :meth:`value_grad`)."""
        return self.value_of(self.point(x, u))

    def value_grad(self, x, u=None):
        """``(log K + log C, ∂/∂x, ∂/∂u)``."""
        pt = self.point(x, u)
        return (self.value_of(pt), *self.grad_of(pt))

    def shares(self, pi):
        """Per layer: share of ``E cost`` minus share of ``K`` (the scaled gradient ``π ∂/∂π``)."""
        C, piC = _cost_and_grad(self.Fh, self.ah, self.vh, pi)
        _, sig = _logsumexp(self.logw - np.log(pi))
        return piC / C - sig

    def curvature(self, x):
        """The diagonal of the Hessian of ``log K + log C`` in ``x = log π``:
        ``σ_i(1 − σ_i) + g_i(1 − g_i)`` with ``σ`` the layers' shares of ``K`` and ``g`` of
        ``E cost`` (``C`` is affine in each ``π_i``, so ``∂²C/∂x_i² = π_i ∂C/∂π_i``). Both terms
        lie in ``[0, 1/4]``; a layer whose shares are ~1e-9 has curvature ~1e-9 where others have
        ~0.1, the flat valleys that made L-BFGS-B crawl for thousands of iterations."""
        pi = np.exp(x)
        C, piC = _cost_and_grad(self.Fh, self.ah, self.vh, pi)
        _, sig = _logsumexp(self.logw - x)
        g = piC / C
        return sig * (1.0 - sig) + g * (1.0 - g)

    def starts(self, n_random, rng):
        b, lo = self.b, self.lo
        w = np.exp(self.logw - np.max(self.logw[np.isfinite(self.logw)], initial=0.0))
        A_above = np.concatenate([np.cumsum(self.ah[::-1])[::-1][1:], [0.0]])
        pts = [np.zeros(b)]
        for v in (self.vh, self.vh + A_above):
            with np.errstate(divide="ignore"):
                u = np.sqrt(np.where(v > 0, w / np.where(v > 0, v, 1.0), np.inf))
            top = np.max(u)
            if np.isfinite(top) and top > 0:
                pts.append(np.log(np.clip(u / top, PI_MIN, 1.0)))
            pts.append(np.log(np.clip(_water_fill(w, v, self.Fh), PI_MIN, 1.0)))
        if self.obj == "sum":
            pts.append(np.log(np.clip(w / np.max(w), PI_MIN, 1.0)))
        for s in range(1, min(b, 8)):
            z = np.zeros(b)
            z[:s] = math.log(1e-3)
            pts.append(z)
        for k in range(n_random):
            depth = 6.0 if k % 2 == 0 else 12.0
            z = -rng.uniform(0.0, depth * math.log(10), b)
            if k % 3 == 2:
                z[rng.uniform(size=b) < 0.5] = 0.0
            pts.append(z)
        return [np.clip(p, lo, 0.0) for p in pts]


def _water_fill(w, v, F):
    """``argmin (Σ w/π)(F + Σ vπ)`` over ``(0,1]^b`` (linear costs); the sum-form closed form."""
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(v > 0, np.sqrt(w / np.where(v > 0, v, 1.0)), np.inf)
    order = np.argsort(-u, kind="stable")
    us = u[order]
    cv = np.cumsum(v[order])
    cw = np.cumsum(w[order])
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.sqrt((F + cv) / cw)
    nxt = np.concatenate([us[1:], [0.0]])
    ok = (tau * us >= 1 - 1e-12) & (tau * nxt <= 1 + 1e-12)
    if not ok.any():
        return np.ones_like(w)
    t = tau[int(np.argmax(ok))]
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.minimum(1.0, t * u), nan=1.0)


# The sum-form local method: L-BFGS-B in x = log π, first for at most PLAIN_MAXITER iterations as
# given (most starts of most problems converge there, in ~20-30 evaluations), then, if it has not
# converged, in rounds rescaled per coordinate by the square root of the objective's curvature at
# the point reached (_IndependentNonlinear.curvature: a diagonal Newton scaling), of PRECOND_MAXITER
# iterations doubling each round, at most PRECOND_ROUNDS rounds, until a round converges or gains
# nothing. Without the rescaling the curvatures span ~1e-10..0.25 when costs span nine decades, and
# L-BFGS-B, whose first steps are a scaled identity, ran into its 3000-iteration limit from most
# starts (up to 14 s at b = 50). Measured over 29 starts (evaluations; tests/benchmarks): rescaled
# from the start point, easy problems took 2-4x more (the curvature at a random start misleads);
# rescaled after 60 plain iterations, easy problems take the same as before (614, 890) and hard
# ones ~2500-3100 instead of 82000 (0.3-0.7 s).
PLAIN_MAXITER = 60
PRECOND_MAXITER = 40
PRECOND_ROUNDS = 7
# a coordinate is rescaled by at most this (relative to the stiffest): curvature 1e-16 below the
# largest would otherwise make the step in that coordinate 1e8 times the others'
PRECOND_MIN_SCALE = 1e-8


def _preconditioned_lbfgs(f, x0):
    """``(x, value)``: the rounds described above, from ``x0``. A round ends the method when it
    converges by L-BFGS-B's own test (the point is then stationary whatever the scaling) or gains
    less than 1e-15 (relative) in the objective ``log K + log C``."""
    from scipy.optimize import Bounds, minimize

    lo, b = f.lo, f.b
    x = np.clip(x0, lo, 0.0)
    val = f.value(x)
    for k in range(PRECOND_ROUNDS + 1):
        if k == 0:
            s, maxiter = np.ones(b), PLAIN_MAXITER
        else:
            s = np.sqrt(f.curvature(x))
            top = float(np.max(s))
            s = np.maximum(s / top, PRECOND_MIN_SCALE) if np.isfinite(top) and top > 0 else np.ones(b)
            maxiter = PRECOND_MAXITER << (k - 1)

        def fun(y, s=s):
            v, g, _ = f.value_grad(y / s)
            return v, g / s

        res = minimize(fun, x * s, jac=True, method="L-BFGS-B", bounds=Bounds(lo * s, np.zeros(b)),
                       options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-12})
        xn = np.clip(res.x / s, lo, 0.0)
        vn = f.value(xn)
        if not vn < val:
            break
        gain = val - vn
        x, val = xn, vn
        if res.nit < maxiter or gain <= 1e-15 * max(1.0, abs(val)):
            break
    return x, val


# first-order residual (largest imbalance of cost share and K share, dimensionless) below which a
# local solution counts as stationary; L-BFGS-B/SLSQP stop at gradients ~1e-10 here
STATIONARY_TOL = 1e-6


class _LastPoint:
    """The l0l1 objective of :class:`_IndependentNonlinear` in ``z = (x, u)`` for SLSQP, which
    asks for the value at every trial point of its line search and for the gradient only at the
    points it accepts: the parts of the last point are kept, and the gradient is finished from
    them (the numbers of ``value_grad(z[:b], z[b])``, without computing a gradient per trial)."""

    def __init__(self, f: _IndependentNonlinear):
        self.f, self.key, self.pt = f, None, None

    def _at(self, z):
        key = z.tobytes()
        if key != self.key:
            b = self.f.b
            self.key, self.pt = key, self.f.point(z[:b], z[b])
        return self.pt

    def value(self, z):
        return self.f.value_of(self._at(z))

    def grad(self, z):
        gx, gu = self.f.grad_of(self._at(z))
        return np.concatenate([gx, [gu]])


def solve_independent_nonlinear(problem: Problem, *, starts: int = 8, seed: int = 0):
    """Sum- or l0l1-form, independent sampling, any cost model: multi-start local method in the
    log domain with exact gradients (see the comment above). Returns ``(distribution,
    residuals, message, status)``; the status is ``optimal_inaccurate``: the problem is not
    convex, so the best local optimum found is not certified global (the tests compare it with a
    brute force)."""
    from scipy.optimize import minimize

    f = _IndependentNonlinear(problem)
    b = f.b
    rng = np.random.default_rng(seed)
    lo = f.lo
    best = None
    runs = 0
    pts = f.starts(max(0, starts) + 8, rng)
    # a start equal to an earlier one (the water-filling start at π = 1, equal costs, b = 1) is the
    # same deterministic run to the same value, which cannot beat itself: counted, not repeated
    done = set()
    for x0 in pts:
        runs += 1
        key = x0.tobytes()
        if key in done:
            continue
        done.add(key)
        with np.errstate(all="ignore"):
            if f.obj == "sum":
                x, val = _preconditioned_lbfgs(f, x0)
            else:
                z0 = np.concatenate([x0, [float(np.min(x0))]])
                obj = _LastPoint(f)
                A = np.hstack([np.eye(b), -np.ones((b, 1))])
                cons = [{"type": "ineq", "fun": lambda z, A=A: A @ z, "jac": lambda z, A=A: A}]
                res = minimize(obj.value, z0, jac=obj.grad, method="SLSQP", bounds=[(lo, 0.0)] * (b + 1),
                               constraints=cons, options={"maxiter": 1000, "ftol": 1e-15})
                x = np.clip(res.x[:b], lo, 0.0)
                val = f.value(x, float(np.min(x)))
        if math.isfinite(val) and (best is None or val < best[0] - 1e-13 * abs(best[0])):
            best = (val, x)
    if best is None:
        raise RuntimeError("the local method found no distribution with finite total cost")
    pi = np.exp(best[1])
    pi = np.where(pi > 1.0 - 1e-9, 1.0, pi)
    resid = {"primal_infeasibility": 0.0, "dual_infeasibility": None, "stationarity": None,
             "complementarity": None, "duality_gap": None}
    if f.obj == "sum":
        g = f.shares(pi)
        capped = pi >= 1.0
        floor = pi <= PI_MIN * (1 + 1e-9)
        resid["dual_infeasibility"] = float(max(np.max(g[capped], initial=0.0), -np.min(g[floor], initial=0.0), 0.0))
        resid["stationarity"] = float(np.max(np.abs(g[~capped & ~floor]), initial=0.0))
    msg = (f"local method in log-probabilities with exact gradients ({'L-BFGS-B' if f.obj == 'sum' else 'SLSQP'}), "
           f"best of {runs} starts (seed {seed}); the problem is not convex, so this local optimum is not "
           "certified global")
    return Independent(pi), resid, msg, "optimal_inaccurate"
