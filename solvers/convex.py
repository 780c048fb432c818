"""Convex programs solved with cvxpy for every objective, in the normalised masses of a family's
:class:`~dropmuon.solvers._problem.Formulation` (``cost·θ = 1``, so that ``y = Yθ`` is ``π / E cost``):

* max-form: the LP ``min cost·θ`` s.t. ``Yθ ≥ L`` (as in :mod:`dropmuon.solvers.lp`, another solver);
* sum-form: ``min Σ_i L_i / y_i`` — the total cost ``E cost · Σ_i L_i/π_i`` (docs/sampling.md);
* l0l1: ``min (2Δ0/ε)(1/s + Σ_i (L0_i/(L1_i² ε)) / y_i)`` s.t. ``s ≤ y_i`` — T2's π-free ``K``
  times ``E cost`` (``1/s = max_i 1/y_i`` at the optimum), convex because both terms are.

Every answer is certified by a lower bound on the optimal total cost from weak duality
(:func:`lower_bound`, docs/sampling.md §8), evaluated on the decoded distribution itself: the
status is ``optimal`` only when its exactly evaluated total cost is within :data:`CERTIFY_TOL`
(relative) of that bound. An answer that fails is solved again in its own units, up to
:data:`MAX_RESOLVES` times (:func:`solve_convex`).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from ._problem import Formulation, Problem, cost_unit
from .lp import _ratio_text

__all__ = ["solve_convex", "lower_bound", "best_ratio", "SOLVER", "CERTIFY_TOL"]

# Clarabel: an interior-point conic solver shipped with cvxpy. Its default stopping tolerances
# (1e-8) leave total costs ~1e-8 off; 1e-10 reaches ~1e-10 on most problems here within a few
# dozen iterations (optima on the boundary are then polished by the front door).
SOLVER = "CLARABEL"
SOLVER_OPTIONS = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}
# A re-solve is posed in the units of the previous answer (every variable and the objective of
# order one), where Clarabel reaches 1e-12 in the same few dozen iterations; it needs to: the
# answers it polishes sample layers with probability ~1e-6, whose relative accuracy is the solver's
# absolute one over 1e-6 (measured near a badly scaled l0l1 subsets case, tests/solvers/test_certified_optimum.py: with 1e-10 the re-solves stalled 1e-8 to
# 1e-7 above the optimum, certified on 37 of 100 instances; with 1e-12 on 67, the rest within 7e-8)
RESOLVE_OPTIONS = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}

_KEYS = ("primal_infeasibility", "dual_infeasibility", "stationarity", "complementarity", "duality_gap")

# Status "optimal" needs the certified gap — 1 − (lower bound)/TC for the returned distribution, a
# proven bound on its relative excess over the optimum — at most this: the tolerance within which
# the front door accepts cvxpy's answer as equal to a closed form (_CROSS_CHECK_RTOL), so that
# "optimal" means the same for both routes. The bound is as good as its weights: Clarabel's
# multipliers, accurate to its duality gap (1e-10), leave gaps of 1e-13..7e-9 (measured on 600
# random problems of the tests' kind, every family and objective, all certified at the first solve).
CERTIFY_TOL = 1e-8

# how often an uncertified answer is solved again in its own units: each re-solve measures every
# variable in units of the previous answer, so one that starts far from the optimum (a badly scaled l0l1 case: 3x)
# gains several orders per round (measured: 3x → 1e-7 → 1e-10 in two rounds near that case)
MAX_RESOLVES = 3

# alternations between the l0l1 subgradient weights κ (water-filled for the current w) and the
# weights w = (a + κ)/π²: each is a valid bound, the best is kept; the solver's κ is usually best
# already, and on the tests' problems nothing improves after the second round
_KAPPA_ROUNDS = 4


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


# -- the certificate: a weak-duality lower bound on any distribution's total cost ----------------


def _ratio(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))


def best_ratio(model, family: str, w: np.ndarray) -> float:
    """``λ*(w) = max_S w(S)/cost(S)`` over the sets ``S`` a family draws (``w(S) = Σ_{i∈S} w_i``,
    ``w ≥ 0``), or a number above it by a relative ``4(b+2)·eps`` (rounding room): the starts
    ``{s..b}`` for ``rpt``; every subset for ``subsets`` and ``independent`` (``cost(S) = F +
    A_{min S} + v_S``; the empty set has ratio 0). An overestimate keeps :func:`lower_bound` valid;
    an underestimate would not.

    Subsets, by Dinkelbach's method: for a trial ``λ`` the most positive ``w(S) − λ cost(S)`` is
    ``max_s (w_s − λ c_s + Σ_{j>s} (w_j − λ v_j)_+)`` (a suffix sum, O(b)), attained by a set whose
    ratio is the next ``λ``; the ratios increase until no set beats ``λ``, in a few rounds. The
    result is then ``λ' = λ(1 + 4(b+2)eps)``, verified: every computed ``w(S) − λ' cost(S)`` plus
    its rounding bound (``(b+2)·eps`` times the sum of the magnitudes of its terms) is ≤ 0, so no
    set's ratio exceeds ``λ'`` (a set beating ``λ`` by less than rounding leaves a margin of
    ``(λ' − λ) cost(S)``, twice that bound).
    """
    w = np.asarray(w, dtype=float)
    if family == "rpt":
        return float(np.max(_ratio(np.cumsum(w[::-1])[::-1], model.rpt_costs())))
    c = model.lowest_costs()
    v = np.asarray(model.per_layer, dtype=float)
    b = w.size
    if not np.all(c > 0):
        return _best_ratio_dense(w, c, v)  # a set that costs nothing: the exact O(b²) enumeration

    def suffix(x):  # Σ_{j>s} x_j for every s
        return np.concatenate([np.cumsum(x[::-1])[::-1][1:], [0.0]])

    def best_set(lam):
        g = w - lam * v
        val = w - lam * c + suffix(np.maximum(g, 0.0))
        s = int(np.argmax(val))
        return s, float(val[s]), g, val

    lam = float(np.max(w / c))  # the single layers' ratios: a valid start
    for _ in range(DINKELBACH_ROUNDS):
        s, V, g, _ = best_set(lam)
        if not V > 0:
            break
        take = g[s + 1 :] > 0
        nxt = (w[s] + float(w[s + 1 :][take].sum())) / (c[s] + float(v[s + 1 :][take].sum()))
        if not nxt > lam:
            break
        lam = nxt
    gamma = (b + 2) * np.finfo(float).eps
    up = lam * (1 + 4 * gamma)
    _, _, g, val = best_set(up)
    err = gamma * (w + up * c + suffix(np.where(g > 0, w + up * v, 0.0)))
    if np.all(val + err <= 0):
        return up
    return _best_ratio_dense(w, c, v) * (1 + 4 * gamma)  # not verified (cannot happen in exact arithmetic)


# Dinkelbach's ratios increase strictly and each is the ratio of a set, so the rounds end when no
# set beats the last; on the tests' and benchmarks' problems that takes 2-6 rounds (b ≤ 1000)
DINKELBACH_ROUNDS = 100


def _best_ratio_dense(w, c, v) -> float:
    """``max_S w(S)/cost(S)`` by enumerating, for each lowest layer ``s``, the prefixes of the
    layers above it sorted by ``w_j/v_j`` (the best ``T`` is one: ``j`` raises a ratio iff its own
    is higher). O(b²); exact also where a set costs nothing (ratio ``inf`` with positive weight)."""
    b = w.size
    with np.errstate(divide="ignore", invalid="ignore"):
        key = np.where(v > 0, w / np.where(v > 0, v, 1.0), np.where(w > 0, np.inf, 0.0))
    order = np.argsort(-key, kind="stable")
    wo, vo = w[order], v[order]
    best = 0.0
    step = max(1, 4_000_000 // max(b, 1))  # rows per chunk: O(b) memory per row
    for s0 in range(0, b, step):
        s = np.arange(s0, min(b, s0 + step))
        above = order[None, :] > s[:, None]
        num = w[s, None] + np.cumsum(np.where(above, wo, 0.0), axis=1)
        den = c[s, None] + np.cumsum(np.where(above, vo, 0.0), axis=1)
        best = max(best, float(np.max(_ratio(num, den))), float(np.max(_ratio(w[s], c[s]))))
    return best


def _waterfill_kappa(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``argmax Σ_i sqrt((a_i + κ_i) w_i)`` over the simplex ``κ ≥ 0, Σκ = 1``:
    ``κ_i = (τ w_i − a_i)_+`` with ``τ`` making the sum 1 (the concave maximisation's KKT)."""
    pos = w > 0
    if not pos.any():
        return np.full(a.size, 1.0 / a.size)
    bp = np.where(pos, a / np.where(pos, w, 1.0), np.inf)  # κ_i > 0 once τ > a_i/w_i
    order = np.argsort(bp)
    bps, ws, As = bp[order], np.where(pos, w, 0.0)[order], np.where(pos, a, 0.0)[order]
    cw, ca = np.cumsum(ws), np.cumsum(As)
    # with the first k layers active, Σκ = τ·cw_k − ca_k = 1 → τ_k; valid if τ_k ≤ next breakpoint
    tau = (1.0 + ca) / np.where(cw > 0, cw, np.nan)
    nxt = np.concatenate([bps[1:], [np.inf]])
    ok = np.flatnonzero((tau >= bps) & (tau <= nxt) & np.isfinite(tau))
    t = tau[ok[0]] if ok.size else tau[np.nanargmax(tau)]
    k = np.maximum(t * np.where(pos, w, 0.0) - a, 0.0)
    return k / k.sum()


def _normalised_log(x):
    """``exp(x − max x)``: weights from logarithms without overflow (the bound is homogeneous of
    degree 0 in the weights)."""
    m = float(np.max(x))
    return np.exp(x - m)


def lower_bound(problem: Problem, family: str, dist, tc: float, duals=None) -> dict:
    """A proven lower bound on the optimal total cost over ``family``, and with it the relative
    gap of ``dist`` (total cost ``tc``). Weak duality for any weights ``w ≥ 0`` and any
    distribution ``D`` over the family's sets with inclusion ``π`` and expected cost ``C``:
    ``Σ_i w_i π_i = E_D w(S) ≤ λ*(w)·C`` (:func:`best_ratio`). Hence

    * sum-form (``K ∝ Σ L_i/π_i``): by Cauchy–Schwarz ``(Σ_i sqrt(L_i w_i))² ≤ (Σ L_i/π_i)(Σ w_i π_i)``,
      so ``K·C ≥ scale·(Σ sqrt(L_i w_i))²/λ*(w)``;
    * l0l1: ``max_i 1/π_i ≥ Σ κ_i/π_i`` for ``κ`` in the simplex, so the same with ``L' = a + κ``,
      ``a_i = L0_i/(L1_i² ε)``, times ``2Δ0/ε``;
    * max-form: ``π_i ≥ L_i/T`` (``T = max L/π``) gives ``T·C ≥ (w·L)/λ*(w)``.

    Candidate weights: ``w = L'/π²`` read off ``dist`` (where Cauchy–Schwarz is tight) and the
    solver's multipliers (``duals``: ``"w"``, of the rows ``y = Yθ``, i.e. ``−∂f/∂y``; ``"rows"``,
    of the cover rows or of ``s ≤ y_i``, giving ``κ``); for l0l1 ``κ`` is also improved for each
    ``w`` (the best ``κ`` for fixed ``w`` is a water-filling). Every candidate gives a valid bound;
    the best is kept. ``λ*`` is a maximum over sets, so the bound is only first order in an error
    of ``w`` — the solver's multipliers, accurate to its duality gap (1e-10), usually win.

    Residuals, each relative: ``duality_gap = 1 − bound/TC``; ``stationarity = 1 − E w(S)/(λ*·C)``
    (every set the distribution uses is a best set for ``w``: zero reduced costs on its support);
    ``complementarity``, the rest (Cauchy–Schwarz, ``κ`` or cover slack); also ``lower_bound``.
    """
    m = problem.model
    pi = np.asarray(dist.inclusion, dtype=float)
    cs = cost_unit(m)
    mh = type(m)(m.forward / cs, m.activation / cs, m.weight / cs, m.update / cs)
    Ch = float(mh.expected_cost(dist))  # E cost / cs: no overflow for costs near 1.8e308
    obj = problem.objective
    if not (np.all(pi > 0) and Ch > 0 and math.isfinite(tc) and tc > 0):
        raise ValueError("the distribution leaves a layer out or costs nothing")
    duals = duals or {}

    def usable(d):
        return d is not None and d.size == pi.size and np.all(np.isfinite(d)) and np.any(d > 0)

    logpi = np.log(pi)
    cands = []  # (log bound, stationarity, complementarity)
    if obj == "max":
        Lmax = float(np.max(problem.L))
        Lh = problem.L / Lmax
        ws = [duals[k] / (Lh if k == "rows" else 1.0) for k in ("rows", "w") if usable(duals.get(k))]
        if not ws:
            raise ValueError("no multipliers of the cover rows")
        T = float(np.max(Lh / pi))
        for w in ws:
            w = np.maximum(w, 0.0) / float(np.max(w))
            lam = best_ratio(mh, family, w)
            wpi, wL = float(w @ pi), float(w @ Lh)
            if wL > 0 and lam > 0:
                logLB = math.log(wL) - math.log(lam) + math.log(problem.scale * Lmax) + math.log(cs)
                cands.append((logLB, 1.0 - wpi / (lam * Ch), 1.0 - wL / (T * wpi)))
    else:
        if obj == "sum":
            Lmax = float(np.max(problem.L))
            a = problem.L / Lmax
            factor = math.log(problem.scale) + math.log(Lmax)
            kappas = [None]
        else:
            a0 = problem.L0 / (problem.L1**2 * problem.epsilon)
            amax = max(1.0, float(np.max(a0)))
            a = a0 / amax
            factor = math.log(2 * problem.Delta0 / problem.epsilon) + math.log(amax)
            Kh = (float(np.max(1.0 / pi)) / amax + float(np.sum(a / pi)))  # K/(2Δ0/ε)/amax
            argmin = (pi <= pi.min() * (1 + 1e-9)).astype(float)
            kappas = [argmin / argmin.sum()]
            if usable(duals.get("rows")):
                kappas.append(duals["rows"] / float(np.sum(duals["rows"])))
        w_dual = duals.get("w") if usable(duals.get("w")) else None

        def candidate(Lp, w):
            w = np.maximum(w, 0.0)
            lam = best_ratio(mh, family, w)
            root = float(np.sum(np.sqrt(Lp * w)))
            wpi = float(w @ pi)
            if not (root > 0 and lam > 0 and wpi > 0):
                return
            S = float(np.sum(Lp / pi))
            comp = 1.0 - root**2 / (S * wpi)
            if obj == "l0l1":  # and the max term bounded below by Σκ/π
                comp = 1.0 - (1.0 - comp) * S / Kh
            cands.append((2 * math.log(root) - math.log(lam) + factor + math.log(cs), 1.0 - wpi / (lam * Ch), comp))

        for kappa in kappas:
            for rnd in range(_KAPPA_ROUNDS if obj == "l0l1" else 1):
                Lp = a if kappa is None else a + kappa / amax
                with np.errstate(divide="ignore"):
                    w_pi = _normalised_log(np.log(Lp) - 2 * logpi)
                ws = [w_pi] + ([w_dual / float(np.max(w_dual))] if w_dual is not None else [])
                for w in ws:
                    candidate(Lp, w)
                if obj != "l0l1":
                    break
                # the best κ for the better w (water-filling); then w again from π
                kappa = _waterfill_kappa(a0, ws[-1])
    if not cands:
        raise ValueError("no usable multipliers")
    logLB, stat, comp = max(cands, key=lambda t: t[0])
    gap = -math.expm1(logLB - math.log(tc))
    return {
        "primal_infeasibility": 0.0,  # a distribution: feasible by construction
        "dual_infeasibility": 0.0,  # w ≥ 0 and λ* is the maximum over all sets: dual feasible
        "stationarity": float(max(stat, 0.0)),
        "complementarity": float(max(comp, 0.0)),
        "duality_gap": float(min(max(gap, 0.0), 1.0)) + 0.0,  # + 0.0: no "-0.0" in messages
        "lower_bound": math.exp(logLB) if logLB < 709 else math.inf,
    }


# -- the solve ----------------------------------------------------------------------------------


def _scaled_data(problem: Problem):
    """The program's units: costs over a full step's cost; ``L`` over ``max L`` (max-form) or
    ``Σ L`` (sum-form); the l0l1 weights ``a`` over ``1 + Σ a``. Returns ``(Lsc, a, wsum)``."""
    if problem.objective == "l0l1":
        with np.errstate(over="ignore", divide="ignore", under="ignore"):
            a = problem.L0 / (problem.L1**2 * problem.epsilon)
            wsum = 1.0 + float(np.sum(a))
        if not math.isfinite(wsum):
            i = int(np.argmax(a))
            raise ValueError(f"method 'cvxpy' needs the l0l1 weights L0_i/(L1_i^2 * epsilon) and their sum below "
                             f"1.8e308; L0_{i + 1}/(L1_{i + 1}^2 * epsilon) = {a[i]:.3g} (rescale L0, L1 or epsilon)")
        return None, a, wsum
    Ls = float(np.max(problem.L))
    if problem.objective == "sum":
        with np.errstate(over="ignore"):  # Σ L beyond 1.8e308: stay in units of max L
            Ls = float(np.sum(problem.L)) if math.isfinite(float(np.sum(problem.L))) else Ls
    return problem.L / Ls, None, 1.0


# -- compiled programs, kept per shape ------------------------------------------------------------
#
# Building a cvxpy problem and compiling it to Clarabel's conic form takes ~15-30 ms (b ≤ 20); the
# interior-point solve itself ~1 ms. The first solve of solve_convex (units where a full step costs
# 1: col = ys = 1, fscale = 1) depends on the numbers only through the costs ``cost`` and the
# objective's weights, so its program is compiled once per shape — objective, the formulation's
# matrices Y, E, G and the zero pattern of ``cost`` — with those numbers as cvxpy Parameters, and
# re-solved with new values (DPP: ~3-5 ms). The Parameters take the very numbers the constants of
# the program built afresh would be, computed by the same operations, and they enter the compiled
# matrices as products with the same ±1 coefficients, so Clarabel receives the same data bit for bit
# (A, b, c and cones, checked on thousands of random problems of every objective and family) and
# returns the same answer. Re-solves (other units) and larger programs are built afresh.

#: programs with at most this many variables are compiled once per shape (DPP's compilation grows
#: faster than a fresh build's: at 300 variables it is 3.5x one fresh build, at 60 about one)
CACHE_MAX_VARS = 64
#: shapes kept (least recently used first out); every b ≤ 8 of every family and objective fits
CACHE_SHAPES = 256

_PROGRAMS: dict = {}
_PROGRAMS_LOCK = threading.Lock()


def _cover_and_family(cp, form, obj: str, col: np.ndarray, ys: np.ndarray):
    """The program's variables and structural constraints, columns scaled by ``col`` and cover rows
    by ``1/ys``: ``(θ, ỹ, the constraint ỹ = Ỹθ or None, [that constraint, Eθ = 0, Gθ ≤ 0])``. For
    the max-form ``ỹ = Ỹθ`` is an expression (the cover rows' duals are the weights); otherwise
    ``ỹ`` is a variable of its own, whose rows' duals are ``−∂f/∂y``."""
    th = cp.Variable(form.nvar, nonneg=True)
    Yt = form.Y.multiply(col[None, :]).multiply(1.0 / ys[:, None]).tocsr()
    if obj == "max":
        yt, ycon, cons = Yt @ th, None, []
    else:
        yt = cp.Variable(form.Y.shape[0])
        ycon = yt == Yt @ th
        cons = [ycon]
    if form.E is not None:
        cons.append(form.E.multiply(col[None, :]).tocsr() @ th == 0)
    if form.G is not None:
        cons.append(form.G.multiply(col[None, :]).tocsr() @ th <= 0)
    return th, yt, ycon, cons


def _matrix_key(M):
    return None if M is None else (M.shape, M.indptr.tobytes(), M.indices.tobytes(), M.data.tobytes())


class _Program:
    """The first-solve program of one shape with Parameters ``ct`` (the costs, on their nonzero
    entries where they form a constraint row), ``w`` (the objective's weights, or the cover rows'
    ``1/L̂`` in the max-form) and ``w0`` (l0l1: the weight of ``1/s``). Mirrors :func:`_clarabel`
    at ``col = ys = 1``, ``fscale = 1`` expression for expression."""

    def __init__(self, form, obj: str, cost):
        import cvxpy as cp

        n, b = form.nvar, form.Y.shape[0]
        col, ys = np.ones(n), np.ones(b)
        self.obj, self.lock = obj, threading.Lock()
        th, yt, ycon, cons = _cover_and_family(cp, form, obj, col, ys)
        self.w = cp.Parameter(b, nonneg=True)
        self.w0 = None
        kcon = None
        if obj == "max":
            self.nz = None
            self.ct = cp.Parameter(n)
            kcon = cp.multiply(self.w, yt) >= 1.0
            cons.append(kcon)
            objective = cp.Minimize(self.ct @ th)
        else:
            # a constant row drops its zero entries; a Parameter row would keep them as explicit zeros
            self.nz = np.flatnonzero(cost)
            self.ct = cp.Parameter(self.nz.size)
            cons.append(self.ct @ th[self.nz] == 1)
            if obj == "sum":
                objective = cp.Minimize(cp.sum(cp.multiply(self.w, cp.inv_pos(yt))))
            else:
                s = cp.Variable(nonneg=True)
                self.w0 = cp.Parameter(nonneg=True)
                kcon = cp.multiply(ys / 1.0, yt) >= s
                cons.append(kcon)
                objective = cp.Minimize(self.w0 * cp.inv_pos(s) + cp.sum(cp.multiply(self.w, cp.inv_pos(yt))))
        self.th, self.ycon, self.kcon = th, ycon, kcon
        self.prob = cp.Problem(objective, cons)

    def set_values(self, cost, Lsc, a, wsum):
        """The numbers the fresh build's constants would be, by the same operations (``col``,
        ``ys`` = 1 and ``fscale`` = 1 as there); cvxpy folds ``expr / d`` into ``expr · (1/d)``."""
        n, b = cost.size, self.w.shape[0]
        col, ys, fscale = np.ones(n), np.ones(b), 1.0
        ct = cost * col
        self.ct.value = ct if self.nz is None else ct[self.nz]
        if self.obj == "max":
            self.w.value = ys / Lsc
        elif self.obj == "sum":
            self.w.value = Lsc / ys / fscale
        else:
            r = 1.0 / (wsum * fscale)
            self.w.value = (a / ys) * r
            self.w0.value = (1.0 / float(np.min(ys))) * r


def _program(form, obj: str, cost):
    """The cached :class:`_Program` of this shape, or ``None`` where the program is built afresh."""
    if form.nvar > CACHE_MAX_VARS:
        return None
    nz = None if obj == "max" else np.flatnonzero(cost)
    if nz is not None and nz.size == 0:
        return None  # no cost at all: left to the fresh build (and its error)
    key = (obj, form.nvar, _matrix_key(form.Y), _matrix_key(form.E), _matrix_key(form.G),
           None if nz is None else nz.tobytes())
    with _PROGRAMS_LOCK:
        prog = _PROGRAMS.pop(key, None)
        if prog is None:
            prog = _Program(form, obj, cost)
            while len(_PROGRAMS) >= CACHE_SHAPES:
                _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[key] = prog  # most recently used last
    return prog


def _solve_and_read(prob, th, ycon, kcon, col, ys, fscale):
    """Solve ``prob`` and read ``(θ, status, cvxpy status, duals)`` off its variables."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an inaccurate solve is reported in status
        # warm_start=False: a fresh Clarabel instance every time (cvxpy would otherwise update the one
        # it kept from the program's previous solve, which lands on other numbers: not the same
        # answer as a program built afresh, whose solve has no previous instance either way)
        prob.solve(solver=SOLVER, warm_start=False, **(SOLVER_OPTIONS if fscale == 1.0 else RESOLVE_OPTIONS))
    status = _status(prob)
    if th.value is None or not np.all(np.isfinite(th.value)):
        raise RuntimeError(f"cvxpy returned no solution (status {prob.status})")

    def dual(con, scale):
        d = None if con is None or con.dual_value is None else np.abs(np.asarray(con.dual_value, float).ravel())
        return None if d is None else d * scale

    # per layer, in the original y: the cover rows' / s ≤ y_i rows' multipliers, and -∂f/∂y
    duals = {"rows": dual(kcon, 1.0), "w": dual(ycon, 1.0 / ys)}
    return np.maximum(th.value, 0.0) * col, status, prob.status, duals


def _clarabel(problem, form, cost, Lsc, a, wsum, col=None, ys=None, fscale=1.0):
    """One interior-point solve. ``col`` rescales the variables (``θ = col · θ̃``), ``ys`` the
    inclusion masses inside the objective (``y = ys · ỹ``) and ``fscale`` the objective, so that a
    second solve can be posed in the units of a first answer: every variable, every ``1/y_i`` and
    the objective of order one. Returns ``(θ, status, cvxpy status, duals)`` with the duals of the
    cover rows (max-form) or of ``s ≤ y_i`` (l0l1; ``None`` for the sum-form). The first solve of a
    small program re-uses the compiled program of its shape (:class:`_Program`)."""
    import cvxpy as cp

    obj = problem.objective
    prog = _program(form, obj, cost) if col is None and ys is None and fscale == 1.0 else None
    if prog is not None:
        with prog.lock:
            prog.set_values(cost, Lsc, a, wsum)
            return _solve_and_read(prog.prob, prog.th, prog.ycon, prog.kcon, np.ones(form.nvar),
                                   np.ones(form.Y.shape[0]), fscale)
    n = form.nvar
    col = np.ones(n) if col is None else col
    ys = np.ones(form.Y.shape[0]) if ys is None else ys
    th, yt, ycon, cons = _cover_and_family(cp, form, obj, col, ys)
    ct = cost * col
    kcon = None
    if obj == "max":
        # each cover row divided by its constant (y_i/L_i ≥ 1), so that the solver's feasibility
        # tolerance is relative to L_i and small constants are not dropped as rounding
        kcon = cp.multiply(ys / Lsc, yt) >= 1.0
        cons.append(kcon)
        objective = cp.Minimize((ct @ th) / fscale)
    else:
        cons.append(ct @ th == 1)
        if obj == "sum":
            objective = cp.Minimize(cp.sum(cp.multiply(Lsc / ys / fscale, cp.inv_pos(yt))))
        else:
            # 1/s with s ≤ y_i is max_i 1/y_i: b linear rows and one cone instead of b cones
            ss = float(np.min(ys))
            s = cp.Variable(nonneg=True)
            kcon = cp.multiply(ys / ss, yt) >= s
            cons.append(kcon)
            objective = cp.Minimize((cp.inv_pos(s) / ss + cp.sum(cp.multiply(a / ys, cp.inv_pos(yt))))
                                    / (wsum * fscale))
    prob = cp.Problem(objective, cons)
    return _solve_and_read(prob, th, ycon, kcon, col, ys, fscale)


def _primal_infeasibility(problem, form, cost, Lsc, theta) -> float:
    y = form.Y @ theta
    viol = max(float(np.max(1.0 - y / Lsc)), 0.0) if problem.objective == "max" else abs(float(cost @ theta) - 1.0)
    if form.E is not None:
        viol = max(viol, float(np.max(np.abs(form.E @ theta))))
    if form.G is not None:
        viol = max(viol, float(np.max(form.G @ theta)), 0.0)
    return viol


def _attempt(problem, form, cost, Lsc, a, wsum, **units):
    """Solve, decode and certify: ``(tc, dist, θ, residuals, note, status, cvxpy status)``."""
    theta, _, raw, duals = _clarabel(problem, form, cost, Lsc, a, wsum, **units)
    dist = form.decode(theta)
    if dist is None:
        raise RuntimeError("the solver returned no probability mass")
    tc = problem.evaluate(dist)[2]
    try:
        resid = lower_bound(problem, form.family, dist, tc, duals)
    except (RuntimeError, FloatingPointError, ValueError, OverflowError) as e:
        return tc, dist, theta, {k: None for k in _KEYS}, f"no certificate ({e})", "optimal_inaccurate", raw
    resid.pop("lower_bound")
    resid["primal_infeasibility"] = _primal_infeasibility(problem, form, cost, Lsc, theta)
    gap = resid["duality_gap"]
    if gap <= CERTIFY_TOL:
        note, status = f"certified within {gap:.1e} (relative) of the optimum", "optimal"
    else:
        note, status = f"certified gap {gap:.1e} > {CERTIFY_TOL:g}: not certified", "optimal_inaccurate"
    return tc, dist, theta, resid, note, status, raw


def solve_convex(problem: Problem, form: Formulation):
    """Solve the objective's convex program; returns ``(distribution, residuals, message,
    value, status)`` where ``value`` is the distribution's total cost.

    The program is first solved in units where a full step costs 1 (:func:`cost_unit`) and the
    objective's weights are of order 1. When the optimum is far from a full step (a distribution costing 1e-4 of one,
    layers sampled with probability 1e-6) those units leave ``y = π/E cost`` and the gradient
    spanning many orders of magnitude, and the interior-point method can stop, reporting success,
    at a point well above the optimum (2.97x on a badly scaled l0l1 subsets case, tests/solvers/test_certified_optimum.py). The certificate then fails,
    and the program is solved again with every variable and every ``y_i`` measured in units of
    the previous answer and the objective in units of its value, up to :data:`MAX_RESOLVES` times,
    while that makes progress. The last improvement (a certified answer, or a cheaper one) is
    returned, with its status.
    """
    Lsc, a, wsum = _scaled_data(problem)
    if obj_needs_cover(problem) and not np.all(Lsc >= MIN_RATIO):
        i = int(np.argmin(Lsc))
        raise ValueError(f"method 'cvxpy' needs L_i/L_max >= {MIN_RATIO:g} in the max-form; "
                         f"L_{i + 1}/L_max = {_ratio_text(problem.L, i)} (use the closed form, method 'auto')")
    cost = form.cost  # in units of form.unit: a full step's cost where that is finite
    best = cur = _attempt(problem, form, cost, Lsc, a, wsum)
    first_note, resolves = best[4], 0
    rank = {"optimal": 0, "optimal_inaccurate": 1}
    while best[5] != "optimal" and resolves < MAX_RESOLVES:
        theta = cur[2]
        y = form.Y @ theta
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            if problem.objective == "max":
                f = float(cost @ theta)
            elif problem.objective == "sum":
                f = float(np.sum(Lsc / y))
            else:
                f = float((np.max(1.0 / y) + np.sum(a / y)) / wsum)
        if not (np.all(y > 0) and math.isfinite(f) and f > 0):
            break
        # a variable at 0 in the answer is measured in 1e-9 of the largest: smaller masses are
        # below the solver's resolution in those units anyway
        col = np.maximum(theta, 1e-9 * float(theta.max()))
        try:
            nxt = _attempt(problem, form, cost, Lsc, a, wsum, col=col, ys=y, fscale=f)
        except RuntimeError:
            break
        resolves += 1
        # progress: certified, cheaper, or a bound at least twice as sharp (the answer may already
        # be optimal to rounding while its certificate is not)
        gaps = best[3]["duality_gap"], nxt[3]["duality_gap"]
        sharper = gaps[1] is not None and (gaps[0] is None or gaps[1] < 0.5 * gaps[0])
        progress = nxt[5] == "optimal" or nxt[0] < best[0] or sharper
        if (rank[nxt[5]], nxt[0]) < (rank[best[5]], best[0]) or (sharper and nxt[0] <= best[0] * (1 + CERTIFY_TOL)):
            best = nxt
        if not progress:
            break
        cur = nxt
    note = ""
    if resolves:
        note = (f"; re-solved {resolves}x in the units of the previous answer (first: {first_note})")
    tc, dist, theta, resid, cert, status, raw = best
    msg = f"cvxpy/{SOLVER}: {form.nvar} variables; status {raw}; {cert}{note}"
    return dist, resid, msg, tc, status
