"""The front door: :func:`optimal_sampling` chooses a method, solves, and returns one
:class:`SamplingResult` with the distribution, its total cost against full updates and uniform
index sampling, a status and the optimality residuals. :func:`full_network_optimal` says whether
updating every layer is optimal, and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Mapping

import numpy as np

from dropmuon.theory import RPT, CompactSubsets, Independent, SubsetDistribution

from . import closed_form, convex, independent_nonlinear, lp, numeric
from ._problem import (
    FAMILIES,
    MAX_STARTS,
    METHODS,
    Problem,
    _check_choice,
    check_minimiser_exists,
    check_starts,
    formulation,
    linear_independent_costs,
    make_problem,
)
from .lp import _ratio_text

__all__ = [
    "SamplingResult",
    "FullNetworkVerdict",
    "optimal_sampling",
    "full_network_optimal",
    "optimum_lower_bound",
    "STATUSES",
    "FULL_OPTIMAL_RTOL",
    "MAX_SETS_LISTED",
    "MAX_STARTS",
]

#: the fixed set of statuses a result can have. ``optimal``: a verified optimum — a closed form
#: (with its certificate), a convex program whose recovered KKT residuals are within tolerance, or
#: any method whose total cost agrees with the closed form; ``optimal_inaccurate``: the best point
#: a method found, not verified (a local method on a non-convex problem, a grid, residuals above
#: tolerance, or a cost above the closed form's — the message says which); ``evaluated``: family
#: ``fixed``. A result never carries a zero inclusion probability or a non-finite ``K`` or cost:
#: those are a ``ValueError`` naming the value.
STATUSES = ("optimal", "optimal_inaccurate", "evaluated")

# Full updates count as optimal when they cost at most this much more than the optimum found:
# the exact methods agree to ~1e-10 relative (see the tests), so 1e-9 separates a genuine tie
# from a genuine saving while ignoring solver round-off.
FULL_OPTIMAL_RTOL = 1e-9

#: sets and their probabilities are listed for subset distributions up to this many layers
MAX_SETS_LISTED = 12


@dataclass(frozen=True)
class SamplingResult:
    """An (optimal) layer-sampling distribution and what it costs.

    Attributes: ``inclusion`` (π, every family); ``start_probs`` (RPT); ``lowest_probs`` and
    ``include_probs`` (subsets: the distribution of the lowest sampled layer, and the probability
    of including each layer above it — ``nan`` for layer 1 and where no mass lies below);
    ``sets``/``set_probs`` (subsets with ``b ≤ 12``, 1-based layers); ``iterations`` (real
    ``K(π)``), ``expected_cost``, ``total_cost = iterations · expected_cost``; the same total for
    full updates and for uniform index sampling, and the speed-ups over them; ``full_is_optimal``;
    ``status`` (one of :data:`STATUSES`), ``message``, and ``residuals`` (KKT residuals, relative;
    ``None`` where a method does not provide one).
    """

    family: str
    objective: str
    method: str
    status: str
    message: str
    distribution: object = field(repr=False)
    inclusion: np.ndarray
    start_probs: np.ndarray | None
    lowest_probs: np.ndarray | None
    include_probs: np.ndarray | None
    sets: tuple | None
    set_probs: np.ndarray | None
    iterations: float
    expected_cost: float
    total_cost: float
    full_total_cost: float
    uniform_total_cost: float
    speedup_vs_full: float
    speedup_vs_uniform: float
    full_is_optimal: bool | None
    residuals: Mapping[str, float | None]
    iterations_unit: str

    def to_dict(self) -> dict:
        """Plain-Python form (lists, floats, ``None``) for JSON."""
        out = {}
        for f in fields(self):
            if f.name == "distribution":
                continue
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v = [None if not math.isfinite(x) else float(x) for x in v.tolist()]
            elif isinstance(v, Mapping):
                v = dict(v)
            elif f.name == "sets" and v is not None:
                v = [list(S) for S in v]
            out[f.name] = v
        return out


def _subset_view(dist, b):
    """(lowest_probs, include_probs, sets, set_probs) of a subset distribution."""
    if isinstance(dist, CompactSubsets):
        rho = dist.lowest_probs
        below = dist.mass_below
        inc = np.where(below > 0, dist.include_probs, np.nan)
        inc[0] = np.nan
        sd = dist.to_subsets() if b <= MAX_SETS_LISTED else None
    else:  # SubsetDistribution
        rho = np.zeros(b)
        x = np.zeros(b)
        for S, q in dist.outcomes():
            if S:
                rho[S[0] - 1] += q
                for j in S[1:]:
                    x[j - 1] += q
        below = np.concatenate([[0.0], np.cumsum(rho)[:-1]])
        with np.errstate(divide="ignore", invalid="ignore"):
            inc = np.where(below > 0, np.minimum(1.0, x / np.where(below > 0, below, 1.0)), np.nan)
        inc[0] = np.nan
        sd = dist if b <= MAX_SETS_LISTED else None
    sets = None if sd is None else tuple(tuple(S) for S in sd.sets)
    sprobs = None if sd is None else np.asarray(sd.probs, dtype=float)
    return rho, inc, sets, sprobs


def _auto_method(problem: Problem, family: str) -> str:
    """Closed forms where they exist; the convex program where the expected cost is linear in
    the family's masses; the log-domain local method for independent sampling with activation
    costs ``a_j > 0`` (``j ≥ 2``; ``a_1`` is never paid and does not count)."""
    obj = problem.objective
    if obj == "max":
        return "closed-form"
    linear = linear_independent_costs(problem.model)
    if obj == "sum" and family == "independent" and linear:
        return "closed-form"
    if family == "independent" and not linear:
        return "scipy"
    return "cvxpy"


# the closed form that cross-checks another method, per (objective, family)
_CLOSED_FORMS = {
    ("max", "rpt"): closed_form.max_rpt,
    ("max", "independent"): closed_form.max_independent,
    ("max", "subsets"): closed_form.max_subsets,
    ("sum", "independent"): closed_form.sum_independent_linear,
}

# How far above the closed-form optimum another method's total cost may lie and still count as
# the verified optimum: the LP and enumeration agree with the closed forms to rounding (~1e-12 on
# the tests' problems; 1e-9 is the simplex's feasibility tolerance), Clarabel stops at a relative
# gap of 1e-10 (1e-8 leaves two orders for the decoding), the local methods stop on a relative
# change of 1e-14 in a smooth objective, so their value is within ~1e-10 (1e-7 for flat valleys).
_CROSS_CHECK_RTOL = {"lp": 1e-9, "enumerate": 1e-9, "cvxpy": 1e-8, "scipy": 1e-7}


def _closed_form_for(problem: Problem, family: str):
    fn = _CLOSED_FORMS.get((problem.objective, family))
    if fn is None or (fn is closed_form.sum_independent_linear and not linear_independent_costs(problem.model)):
        return None
    return fn


def _verify(problem: Problem, family: str, used: str, dist, status: str, message: str, tc: float):
    """The status a result deserves: ``optimal`` only for a verified optimum (a closed form,
    certified residuals, or agreement with the closed form); otherwise ``optimal_inaccurate``."""
    if used == "closed-form" or status != "optimal" and used not in _CROSS_CHECK_RTOL:
        return status, message
    fn = _closed_form_for(problem, family)
    if fn is None:
        return status, message
    ref, _, _ = fn(problem, certify=False)
    ref_tc = problem.evaluate(ref)[2]
    excess = tc / ref_tc - 1.0
    if excess <= _CROSS_CHECK_RTOL.get(used, 1e-9):
        return "optimal", message + f"; agrees with the closed form (relative excess {max(excess, 0.0):.1e})"
    return "optimal_inaccurate", message + f"; NOT optimal: {excess:.3g} (relative) above the closed-form optimum"


def _solve(problem: Problem, family: str, method: str, seed: int, starts: int, certify: bool = True):
    """Returns (distribution, residuals, message, status)."""
    obj = problem.objective
    if method == "closed-form":
        table = {
            ("max", "rpt"): closed_form.max_rpt,
            ("max", "independent"): closed_form.max_independent,
            ("max", "subsets"): closed_form.max_subsets,
            ("sum", "independent"): closed_form.sum_independent_linear,
        }
        fn = table.get((obj, family))
        if fn is None:
            raise ValueError(
                f"no closed form for objective {obj!r} with family {family!r}; closed forms exist for "
                "max-form rpt/independent/subsets and sum-form independent (linear costs)"
            )
        dist, res, msg = fn(problem, certify=certify)
        return dist, res, msg, "optimal"
    if method == "lp":
        if obj != "max":
            raise ValueError(f"method 'lp' solves the max-form (a linear program); objective {obj!r} is not linear — use cvxpy or scipy")
        dist, res, msg, _ = lp.solve_max_lp(problem, formulation(problem, family))
        return dist, res, msg, "optimal"
    if method == "enumerate":
        if family != "subsets":
            raise ValueError(f"method 'enumerate' lists every subset; it applies to family 'subsets', not {family!r}")
        form = formulation(problem, "subsets", enumerate_sets=True)
        if obj == "max":
            dist, res, msg, _ = lp.solve_max_lp(problem, form)
            return dist, res, msg, "optimal"
        dist, res, msg, _, status = convex.solve_convex(problem, form)
        return dist, res, msg, status
    if method == "cvxpy":
        dist, res, msg, _, status = convex.solve_convex(problem, formulation(problem, family))
        return dist, res, msg, status
    if method == "scipy":
        if family == "independent" and obj in ("sum", "l0l1"):
            return independent_nonlinear.solve_independent_nonlinear(problem, starts=starts, seed=seed)
        return numeric.solve_scipy(problem, family, starts=starts, seed=seed)
    if method == "grid":
        dist, res, msg, status, _ = numeric.solve_grid(problem, family)
        return dist, res, msg, status
    raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")


# Interior-point and local solutions approach an optimum on the boundary of the simplex (a start
# probability 0, an inclusion probability 1) only to ~1e-9..1e-6. Values this close to 0 or 1 are
# snapped there, and the snapped distribution is kept only if its exactly evaluated total cost is
# lower, so polishing can never make a result worse.
SNAP_TOL = 1e-6


def _snap01(x: np.ndarray) -> np.ndarray:
    return np.where(x < SNAP_TOL, 0.0, np.where(x > 1.0 - SNAP_TOL, 1.0, x))


def _polish(problem: Problem, dist):
    if isinstance(dist, RPT):
        p = _snap01(dist.start_probs)
        cand = RPT(p / p.sum())
        changed = int(np.sum(p != dist.start_probs))
    elif isinstance(dist, Independent):
        pi = np.where(dist.pi > 1.0 - SNAP_TOL, 1.0, dist.pi)
        cand, changed = Independent(pi), int(np.sum(pi != dist.pi))
    elif isinstance(dist, CompactSubsets):
        rho, th = _snap01(dist.lowest_probs), _snap01(dist.include_probs)
        cand = CompactSubsets(rho / rho.sum(), th)
        changed = int(np.sum(rho != dist.lowest_probs) + np.sum(th != dist.include_probs))
    else:
        q = _snap01(np.asarray(dist.probs))
        keep = q > 0
        cand = SubsetDistribution(dist.nlayers, [S for S, k in zip(dist.sets, keep) if k], q[keep] / q.sum())
        changed = int(np.sum(~keep))
    if changed and problem.evaluate(cand)[2] < problem.evaluate(dist)[2]:
        return cand, changed
    return dist, 0


def _canonical_independent(problem: Problem, dist: Independent) -> Independent:
    """Among independent distributions with the same total cost prefer the one with
    ``max π = 1`` (fewest iterations): without a forward cost and activation costs the total cost
    is invariant to rescaling ``π``, so solvers may return any multiple."""
    top = float(dist.pi.max())
    if top >= 1.0 or top <= 0.0:
        return dist
    scaled = Independent(np.minimum(dist.pi / top, 1.0))
    if problem.evaluate(scaled)[2] <= problem.evaluate(dist)[2] * (1 + FULL_OPTIMAL_RTOL):
        return scaled
    return dist


def _uniform_chunk(lo: int, hi: int, b: int) -> np.ndarray:
    """``π_i = i/b`` for the layers ``lo+1..hi`` (one array, divided in place)."""
    u = np.arange(lo + 1.0, hi + 1.0)
    u /= b
    return u


def _evaluate_with_references(problem: Problem, dist):
    """``(K, E cost, TC)`` of ``dist`` and the total costs of full updates (``π = 1``) and of
    uniform index sampling (RPT with ``p_s = 1/b``: ``π_i = i/b``, ``E cost = mean_s C_s``): the
    three ``K`` from one sweep of the generated function over the layers (π = 1 as one broadcast
    entry; π_i = i/b generated chunk by chunk, bit for bit the entries of ``arange(1, b+1)/b``),
    instead of two distribution objects and two theorem calls."""
    b = problem.nlayers
    K, K_full, K_unif = problem.iterations(dist.inclusion, lambda lo, hi: _ONE,
                                           lambda lo, hi: _uniform_chunk(lo, hi, b),
                                           nondecreasing=isinstance(dist, RPT))
    _, ec, tc = problem.evaluate(dist, K=K)
    m = problem.model
    with np.errstate(over="ignore"):  # a reference beyond 1.8e308 is inf (speed-up inf), not an error
        return K, ec, tc, K_full * float(m.full_cost), K_unif * problem.mean_rpt_cost()


_ONE = np.ones(1)
_ONE.flags.writeable = False


def _check_finite(problem: Problem, family: str, used: str, dist, K: float, ec: float, tc: float) -> None:
    """``ValueError`` for a result no status can describe: a probability that must be positive
    is 0, or ``K``, the expected cost or the total cost is not a finite number."""
    pi = np.asarray(dist.inclusion, dtype=float)
    # a finite K implies π > 0 (Problem.iterations returns inf otherwise): scan π only if not
    if not math.isfinite(K) and not float(pi.min()) > 0:
        i = int(np.argmin(pi))
        ratio = ""
        if problem.L is not None:
            ratio = f" (L_{i + 1}/L_max = {_ratio_text(problem.L, i)})"
        raise ValueError(
            f"method {used!r} returned pi_{i + 1} = 0{ratio}: the constants span more than it resolves; "
            "use method 'auto' or 'closed-form'"
        )
    if not (math.isfinite(K) and math.isfinite(ec) and math.isfinite(tc) and tc > 0):
        raise ValueError(
            f"the total cost K * E cost = {K:.3g} * {ec:.3g} is not a positive finite double; rescale the "
            "constants or the costs (the optimal distribution does not depend on their units)"
        )


# The solver of ``theorem=`` (:func:`dropmuon.solvers.theorem_objective.optimal_for_theorem`)
# registers itself here when the package is imported. It calls this front door for its closed-form
# cross-check, so this module does not import it: the two depend one way only.
_THEOREM_SOLVER: dict = {}


def _register_theorem_solver(solve):
    """Make ``solve`` the solver of ``optimal_sampling(..., theorem=...)``; returns it unchanged
    (a decorator)."""
    _THEOREM_SOLVER["solve"] = solve
    return solve


def _fixed_distribution(distribution, b):
    if not isinstance(distribution, (RPT, Independent, SubsetDistribution, CompactSubsets)):
        raise ValueError(
            "family 'fixed' needs distribution= an RPT, Independent, SubsetDistribution or "
            f"CompactSubsets from dropmuon.theory.sampling; got {distribution!r}"
        )
    if distribution.nlayers != b:
        raise ValueError(f"the distribution has {distribution.nlayers} layers but L and the costs have {b}")
    return distribution


def optimal_sampling(
    L,
    costs,
    *,
    family: str = "rpt",
    objective: str = "max",
    method: str = "auto",
    forward_cost: float | None = None,
    L0=None,
    L1=None,
    Delta0=None,
    epsilon=None,
    distribution=None,
    seed: int = 0,
    starts: int = 8,
    certify: bool = True,
    theorem=None,
    statement: str | None = None,
    constants=None,
) -> SamplingResult:
    r"""The layer-sampling distribution minimising total cost ``TC = K(π) · E cost``.

    Parameters
    ----------
    L : per-layer smoothness constants ``L_i`` (``None`` allowed for ``objective="l0l1"``).
    costs : one positive cost per layer (the lumped linear model, plus ``forward_cost`` as
        ``F``) or a :class:`theory.CostModel` with ``F, a, w, u``.
    family : ``"rpt"`` (start index ``s``, update ``s..b``), ``"independent"`` (Bernoulli per
        layer), ``"subsets"`` (any distribution over subsets) or ``"fixed"`` (evaluate
        ``distribution``).
    objective : ``"max"`` (``K ∝ max_i L_i/π_i``, T1), ``"sum"`` (``K ∝ Σ_i L_i/π_i``, T1′) or
        ``"l0l1"`` (T2's π-free ``K``; needs ``L0, L1, Delta0, epsilon``).
    method : ``"auto"``, ``"closed-form"``, ``"lp"`` (HiGHS, max-form), ``"enumerate"`` (all
        ``2^b − 1`` subsets, ``b ≤ 20``), ``"cvxpy"``, ``"scipy"`` (seeded multi-start local method: SLSQP in
        the family's parameters, in units L_max = 1 and full cost = 1; for independent sampling in
        the sum- and l0l1-form a log-probability method with exact gradients — the default where
        activation costs ``a_j > 0``, ``j ≥ 2``, make the expected cost non-linear) or
        ``"grid"`` (brute force, ``b ≤ 3``).
    seed, starts : seed and number of starts of the multi-start methods (``scipy``, ``theorem=``):
        an integer and ``1 ≤ starts ≤`` :data:`MAX_STARTS`.
    certify : compute the closed forms' optimality certificates (``residuals``); ``False``
        skips them (``None``) for speed at very large ``b``.
    theorem : any registered theorem (name or object): minimise ``K(π)·E cost`` with that
        theorem's own ``K(π)`` instead of a built-in objective, numerically
        (:func:`dropmuon.solvers.theorem_objective.optimal_for_theorem`; with ``statement``, extra
        per-layer ``constants`` such as ``sigma``, and ``Delta0``, ``epsilon``; families ``rpt``
        and ``independent``). For T1 and T1′ the closed forms cross-check the answer.
    Delta0, epsilon : give both to get ``K`` in iterations; without them the max- and sum-form
        report ``K`` in units of ``2Δ0/ε²``.

    Examples
    --------
    ``L = (1, 5, 3, 2)``: layer 2 is the least smooth, so the optimal RPT starts at layer 1 with
    probability ``L_1/L_max = 0.2`` and at layer 2 otherwise:

    >>> r = optimal_sampling([1, 5, 3, 2], [1, 1, 1, 1])
    >>> r.start_probs.tolist(), r.full_is_optimal, round(r.speedup_vs_full, 4)
    ([0.2, 0.8, 0.0, 0.0], False, 1.25)
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer; got seed = {seed!r}")
    starts = check_starts(starts)
    if theorem is not None:
        optimal_for_theorem = _THEOREM_SOLVER.get("solve")
        if optimal_for_theorem is None:  # dropmuon.solvers imports theorem_objective, which registers it
            raise RuntimeError("no solver is registered for theorem=; import dropmuon.solvers.theorem_objective")
        if method not in ("auto", "scipy"):
            raise ValueError(f"theorem= is solved numerically; method {method!r} does not apply (use auto)")
        if objective != "max":
            raise ValueError("give theorem= or objective=, not both (the theorem defines the objective)")
        return optimal_for_theorem(theorem, costs, family=family, statement=statement, L=L, L0=L0, L1=L1,
                                   constants=constants, Delta0=Delta0, epsilon=epsilon,
                                   forward_cost=forward_cost, starts=starts, seed=seed)
    if statement is not None or constants is not None:
        raise ValueError("statement= and constants= go with theorem=")
    _check_choice("family", family, FAMILIES)
    _check_choice("method", method, METHODS)
    problem = make_problem(L, costs, objective, forward_cost=forward_cost, L0=L0, L1=L1,
                           Delta0=Delta0, epsilon=epsilon)
    b = problem.nlayers
    if family == "fixed":
        if method != "auto":
            raise ValueError(f"family 'fixed' evaluates the given distribution; method {method!r} does not apply")
        dist = _fixed_distribution(distribution, b)
        residuals = {k: None for k in ("primal_infeasibility", "dual_infeasibility", "stationarity",
                                       "complementarity", "duality_gap")}
        used, status, message = "none", "evaluated", "evaluated the given distribution"
    else:
        if distribution is not None:
            raise ValueError("distribution= is only used with family 'fixed'")
        used = _auto_method(problem, family) if method == "auto" else method
        check_minimiser_exists(problem, family)
        dist, residuals, message, status = _solve(problem, family, used, seed, starts, bool(certify))
        if used in ("cvxpy", "scipy", "enumerate"):
            dist, snapped = _polish(problem, dist)
            if snapped:
                message += f"; polished: {snapped} near-boundary values snapped (better total cost)"
        if isinstance(dist, Independent):
            dist = _canonical_independent(problem, dist)
    K, ec, tc, full_tc, unif_tc = _evaluate_with_references(problem, dist)
    if family != "fixed":  # a given distribution may leave a layer out (K = inf): that is its cost
        _check_finite(problem, family, used, dist, K, ec, tc)
        status, message = _verify(problem, family, used, dist, status, message, tc)
    start = lowest = include = sets = sprobs = None
    if isinstance(dist, RPT):
        start = dist.start_probs  # read-only, like inclusion: shared with the distribution, not copied
    if isinstance(dist, (CompactSubsets, SubsetDistribution)):
        lowest, include, sets, sprobs = _subset_view(dist, b)
    unit = "iterations" if problem.scaled or problem.objective == "l0l1" else "units of 2*Delta0/eps^2"
    return SamplingResult(
        family=family,
        objective=problem.objective,
        method=used,
        status=status,
        message=message,
        distribution=dist,
        inclusion=np.asarray(dist.inclusion, dtype=float),
        start_probs=start,
        lowest_probs=lowest,
        include_probs=include,
        sets=sets,
        set_probs=sprobs,
        iterations=K,
        expected_cost=ec,
        total_cost=tc,
        full_total_cost=full_tc,
        uniform_total_cost=unif_tc,
        speedup_vs_full=full_tc / tc,
        speedup_vs_uniform=unif_tc / tc,
        full_is_optimal=None if family == "fixed" else bool(full_tc <= tc * (1 + FULL_OPTIMAL_RTOL)),
        residuals=MappingProxyType({k: (None if v is None else float(v) + 0.0) for k, v in residuals.items()}),
        iterations_unit=unit,
    )


def optimum_lower_bound(
    L,
    costs,
    distribution,
    *,
    family: str = "rpt",
    objective: str = "sum",
    forward_cost: float | None = None,
    L0=None,
    L1=None,
    Delta0=None,
    epsilon=None,
) -> float:
    r"""A proven lower bound on the optimal total cost over ``family``, read off any
    ``distribution`` of it, without solving: weak duality (the certificate every convex solve is
    checked with). For weights ``w = L/π²`` taken from ``distribution`` and
    ``λ*(w) = max_S w(S)/cost(S)`` over the family's sets (rounded up), every distribution ``D``
    of the family has ``E_D w(S) ≤ λ*·E_D cost`` and, by Cauchy–Schwarz,

    .. math:: K(π_D) \cdot E_D\,\mathrm{cost} \;\ge\; (\textstyle\sum_i \sqrt{L_i w_i})^2 / λ^*(w)

    (sum-form; the l0l1 form the same with ``L' = a + κ``). In exact arithmetic the bound equals
    the distribution's own total cost when it is optimal, so ``total cost ≤ (1 + rtol) · bound``
    certifies optimality within ``rtol``. A full-network distribution (``π = 1`` exactly) is proved
    optimal this way, to rounding, wherever it is optimal, with no solver; a computed optimum's
    bound is first order in its error (the solvers certify with their own multipliers instead). Families ``rpt``, ``independent``, ``subsets``; objectives ``sum`` and
    ``l0l1`` (the max-form's bound needs the solver's multipliers: use :func:`optimal_sampling`).
    Units: those of :attr:`SamplingResult.total_cost` for the same arguments; the bound is
    computed in logarithms, so it holds to a relative rounding of about ``1e-15``.

    >>> from dropmuon.theory import RPT
    >>> full = RPT([1.0, 0.0, 0.0])
    >>> tc = optimal_sampling([1, 1, 1], [1, 1, 1], family="fixed", objective="sum", distribution=full).total_cost
    >>> bound = optimum_lower_bound([1, 1, 1], [1, 1, 1], full)
    >>> round(tc / bound, 12)  # full updates are optimal for equal constants and costs
    1.0
    """
    _check_choice("family", family, ("rpt", "independent", "subsets"))
    if objective == "max":
        raise ValueError("objective 'max': the bound needs the solver's multipliers of the cover rows; "
                         "use optimal_sampling (its residuals hold the certified gap)")
    problem = make_problem(L, costs, objective, forward_cost=forward_cost, L0=L0, L1=L1,
                           Delta0=Delta0, epsilon=epsilon)
    dist = _fixed_distribution(distribution, problem.nlayers)
    tc = problem.evaluate(dist)[2]
    return float(convex.lower_bound(problem, family, dist, tc)["lower_bound"])


@dataclass(frozen=True)
class FullNetworkVerdict:
    """Whether updating every layer every step is optimal, with the reason in words."""

    optimal: bool
    reason: str
    full_total_cost: float
    optimal_total_cost: float
    speedup: float


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def full_network_optimal(L, costs, objective: str = "max", *, family: str = "rpt", **kwargs) -> FullNetworkVerdict:
    """Is full-network Muon (every layer, every step) optimal? The verdict compares total costs
    with the optimum; the reason states the closed-form condition where one is known
    (max-form RPT: ``L_1 = max_j L_j``; max-form independent/subsets: all ``L_i`` equal; sum-form
    RPT: ``Σ_{i≥s} L_i/Σ_i L_i ≤ C_s/C_1`` for every start ``s``; sum-form independent with
    linear costs: ``L_i/c_i ≥ Σ L/(F + Σ c)`` for every ``i``).

    >>> full_network_optimal([5, 1, 3, 2], [1, 1, 1, 1]).reason
    'layer 1 has the largest smoothness constant (L_1 = 5 = max_j L_j), so it must be updated every step and every RPT start includes it: updating every layer is optimal'
    """
    if family == "fixed":
        raise ValueError("full_network_optimal compares with an optimum; family 'fixed' has none")
    r = optimal_sampling(L, costs, family=family, objective=objective, **kwargs)
    problem = make_problem(L, costs, objective, forward_cost=kwargs.get("forward_cost"), L0=kwargs.get("L0"),
                           L1=kwargs.get("L1"), Delta0=kwargs.get("Delta0"), epsilon=kwargs.get("epsilon"))
    opt = bool(r.full_is_optimal)
    reason = _reason(problem, family, opt, r)
    return FullNetworkVerdict(opt, reason, r.full_total_cost, r.total_cost, r.speedup_vs_full)


def _reason(problem: Problem, family: str, opt: bool, r: SamplingResult) -> str:
    obj = problem.objective
    L = problem.L
    saving = f"the optimum costs {_fmt(r.total_cost)} against {_fmt(r.full_total_cost)} for full updates ({_fmt(r.speedup_vs_full)}x)"
    if obj == "max" and family == "rpt":
        j = int(np.argmax(L))
        if L[0] >= L[j]:
            return (f"layer 1 has the largest smoothness constant (L_1 = {_fmt(L[0])} = max_j L_j), so it must be "
                    "updated every step and every RPT start includes it: updating every layer is optimal")
        msg = (f"layer {j + 1} has L_{j + 1} = {_fmt(L[j])} > L_1 = {_fmt(L[0])}, so the optimum starts at layer 1 "
               f"only with probability L_1/L_max = {_fmt(L[0] / L[j])}; {saving}")
        return msg if not opt else msg + " (a tie: the layers it skips cost nothing)"
    if obj == "max":
        if np.all(L == L[0]):
            return f"all layers have the same smoothness constant ({_fmt(L[0])}): updating every layer is optimal"
        i, j = int(np.argmin(L)), int(np.argmax(L))
        msg = (f"the smoothness constants differ (L_{i + 1} = {_fmt(L[i])} < L_{j + 1} = {_fmt(L[j])}), so layer i "
               f"need only be sampled with probability L_i/L_max; {saving}")
        return msg if not opt else msg + " (a tie: the layers it skips cost nothing)"
    if obj == "sum" and family == "rpt":
        C = problem.model.rpt_costs()
        share = np.cumsum(L[::-1])[::-1] / L.sum()
        ratio = C / C[0]
        s = int(np.argmax(share - ratio)) if L.size > 1 else 0
        if share[s] <= ratio[s] + 1e-12:
            return ("for every start s, the share of sum_i L_i at or above layer s is at most the relative cost "
                    "C_s/C_1 of starting there, so updating every layer is optimal")
        return (f"starting at layer {s + 1} costs C_{s + 1}/C_1 = {_fmt(ratio[s])} of a full step but covers "
                f"{_fmt(share[s])} of sum_i L_i, so full updates are not optimal; {saving}")
    if obj == "sum" and family == "independent" and linear_independent_costs(problem.model):
        c = problem.model.per_layer
        thresh = L.sum() / (problem.model.forward + c.sum())
        with np.errstate(divide="ignore"):
            ratio = np.where(c > 0, L / np.where(c > 0, c, 1.0), np.inf)
        i = int(np.argmin(ratio))
        if ratio[i] >= thresh * (1 - 1e-12):
            return (f"every layer has L_i/c_i >= sum L/(F + sum c) = {_fmt(thresh)}: updating every layer is optimal")
        return (f"layer {i + 1} has L_{i + 1}/c_{i + 1} = {_fmt(ratio[i])} < sum L/(F + sum c) = {_fmt(thresh)}, "
                f"so it should be sampled less often; {saving}")
    verdict = "updating every layer is optimal" if opt else "full updates are not optimal"
    return f"numerically ({r.method}): {verdict}; {saving}"
