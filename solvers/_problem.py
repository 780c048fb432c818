"""The optimisation problem behind every solver: total cost ``TC(D) = K(π(D)) · E_D cost`` for an
objective (which theorem gives ``K``) and a cost model, plus its linear description per family.

``K`` comes from the theorem objects of :mod:`theory` (their closed-form iteration counts, before
rounding up); the cost model is :class:`theory.CostModel`. Without ``Delta0`` and ``epsilon`` the
max- and sum-form report ``K`` in units of ``2Δ0/ε²`` (i.e. ``Δ0 = 1/2``, ``ε = 1``).
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sps

from dropmuon.theory import (
    RPT,
    CompactSubsets,
    CostModel,
    Independent,
    SubsetDistribution,
)
from dropmuon.theory import symbols as S
from dropmuon.theory._validation import check_layer_array, check_same_length, check_scalar

__all__ = [
    "FAMILIES",
    "OBJECTIVES",
    "METHODS",
    "Problem",
    "Formulation",
    "make_problem",
    "formulation",
    "cost_model",
    "linear_independent_costs",
    "zero_cost_layers",
    "check_minimiser_exists",
    "MAX_STARTS",
    "check_starts",
    "cost_unit",
    "unit_per_layer",
    "unit_rpt_costs",
    "unit_lowest_costs",
]

FAMILIES = ("rpt", "independent", "subsets", "fixed")
OBJECTIVES = ("max", "sum", "l0l1")
METHODS = ("auto", "closed-form", "lp", "enumerate", "cvxpy", "scipy", "grid")



def _objective_theorem(objective: str):
    """The theorem (and statement) whose closed-form ``K(π)`` an objective is: read from the
    theorems' ``solver_objective`` (T1: ``max``, T1′: ``sum``, T2: ``l0l1``)."""
    from dropmuon.theory import theorems

    for thm in theorems.values():
        if thm.solver_objective is not None and thm.solver_objective[0] == objective:
            return thm, thm.solver_objective[1]
    raise ValueError(f"no registered theorem gives the objective {objective!r}")

# the largest b for which the subsets family is enumerated set by set (2^b − 1 columns)
MAX_ENUMERATE_LAYERS = 20

#: the most starts a multi-start method takes: each start is a full local solve (~1-100 ms), so
#: 10^4 is minutes of work, and far past where more starts find anything (the tests' brute-force
#: comparisons pass with 8); a larger number is a typo, not a request
MAX_STARTS = 10_000


def check_starts(starts) -> int:
    """``starts`` as an int in ``[1, MAX_STARTS]``, else a one-line ``ValueError`` naming it."""
    if isinstance(starts, bool) or not isinstance(starts, (int, np.integer)) or starts < 1:
        raise ValueError(f"starts must be a positive integer; got starts = {starts!r}")
    if starts > MAX_STARTS:
        raise ValueError(f"starts must be at most {MAX_STARTS} (each start is a full local solve); "
                         f"got starts = {starts!r}")
    return int(starts)


def _check_choice(kind: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}")
    return value


def linear_independent_costs(model: CostModel) -> bool:
    """Whether independent sampling has a linear expected cost: ``a_j = 0`` for ``j ≥ 2``.

    ``a_1`` (the backward through layer 1's activations) is never paid — no layer lies below
    layer 1 — so it does not make the expected cost ``F + Σ_j a_j P(min S < j) + Σ_j v_j π_j``
    non-linear and does not keep the exact methods away.
    """
    return not np.any(model.activation[1:] > 0)


def zero_cost_layers(model: CostModel, family: str) -> np.ndarray:
    """Layers covered by a nonempty set of the family that costs nothing (needs ``F = 0``):
    for ``rpt`` the layers ``s..b`` of a start ``s`` with ``C_s = 0``; for ``subsets`` and
    ``independent`` every ``j`` whose lowest-layer cost ``F + A_j + v_j`` is 0 (then any set of
    such layers costs 0). A boolean mask."""
    if model.forward > 0:
        return np.zeros(model.nlayers, dtype=bool)
    # in the model's own units: a tiny cost over a unit near 1.8e308 would underflow to 0, and a
    # cost that overflows to inf is not 0 either
    with np.errstate(over="ignore"):
        if family == "rpt":
            free = model.rpt_costs() <= 0
            return np.logical_or.accumulate(free)
        return model.lowest_costs() <= 0


def check_minimiser_exists(problem: Problem, family: str) -> None:
    """``ValueError`` when the sum- or l0l1-form total cost has no minimiser.

    With a zero-cost set ``S₀`` the distribution can put mass ``1 − t`` on ``S₀``: in the convex
    form (``y = π / E cost``) that is a recession direction along which ``Σ_{i∈S₀} w_i / y_i``
    (``w = L``, or ``L0`` for l0l1) strictly decreases, so the infimum is approached as the other
    layers' probabilities go to 0 and is never attained. (The max-form always has a minimiser.)
    """
    if problem.objective == "max" or family == "fixed":
        return
    m = problem.model
    if family == "independent" and not linear_independent_costs(m):
        return  # non-linear expected cost: the argument above does not apply
    Z = zero_cost_layers(m, family)
    w = problem.L if problem.objective == "sum" else problem.L0
    if Z.any() and float(np.sum(w[Z])) > 0:
        layers = ", ".join(str(j + 1) for j in np.flatnonzero(Z)[:6]) + (", ..." if Z.sum() > 6 else "")
        raise ValueError(
            f"the cost model has sets that cost nothing (F = 0 and layer(s) {layers} cost 0 in family "
            f"{family!r}), so the {problem.objective}-form total cost has no minimiser (its infimum is "
            "approached as the other layers' probabilities go to 0); give a positive forward cost F "
            "or positive layer costs"
        )


def cost_model(costs, forward_cost: float | None = None) -> CostModel:
    """A :class:`theory.CostModel` from one positive number per layer (the lumped linear model,
    with ``forward_cost`` as ``F``) or an existing model."""
    if isinstance(costs, CostModel):
        if forward_cost is not None:
            raise ValueError("forward_cost is part of the CostModel already; do not pass both")
        return costs
    # costs near the largest double sum to inf (a full step beyond 1.8e308): the model is still
    # valid, and the solvers measure costs in cost_unit, so the overflow is not an error here
    with np.errstate(over="ignore"):
        return CostModel.linear(costs, forward=0.0 if forward_cost is None else forward_cost)


def cost_unit(model: CostModel) -> float:
    """The unit the solvers measure costs in: a full step's cost ``F + Σ_j (a_j + w_j + u_j)``,
    or, where that overflows a double (costs near 1.8e308), the largest single component — then
    every cost in that unit is at most ``3b + 1`` and nothing overflows or turns into ``inf/inf``."""
    with np.errstate(over="ignore"):
        cs = float(model.full_cost)
    if math.isfinite(cs):
        return cs
    return max(float(model.forward), *(float(np.max(x)) for x in (model.activation, model.weight, model.update)))


def unit_per_layer(model: CostModel, cs: float) -> np.ndarray:
    """``v_j / cs`` (``v = w + u``), summed in that unit so that it cannot overflow."""
    return model.weight / cs + model.update / cs


def _unit_head(model: CostModel, cs: float) -> np.ndarray:
    """``(F + A_s)/cs`` with ``A_s = Σ_{j>s} a_j``, summed in units of ``cs``."""
    a = model.activation / cs
    return model.forward / cs + np.concatenate([np.cumsum(a[::-1])[::-1][1:], [0.0]])


def _full_step_finite(model: CostModel) -> bool:
    with np.errstate(over="ignore"):
        return math.isfinite(float(model.full_cost))


def unit_rpt_costs(model: CostModel, cs: float) -> np.ndarray:
    """``C_s / cs``, the cost of starting at ``s`` in units of ``cs`` (:func:`cost_unit`)."""
    if _full_step_finite(model):
        return model.rpt_costs() / cs
    return _unit_head(model, cs) + np.cumsum(unit_per_layer(model, cs)[::-1])[::-1]


def unit_lowest_costs(model: CostModel, cs: float) -> np.ndarray:
    """``c_s / cs = (F + A_s + v_s)/cs``, the cost a set pays for its lowest layer ``s``."""
    if _full_step_finite(model):
        return model.lowest_costs() / cs
    return _unit_head(model, cs) + unit_per_layer(model, cs)


# the generated numpy function of each K expression (sympy expressions are hashable and immutable)
_K_FUNCTIONS: dict = {}

# mean_s C_s per cost model (CostModel hashes by identity: eq=False)
_MEAN_RPT_COST: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: layers per chunk when K is evaluated chunk by chunk (Problem.k_rows): 2^18 doubles, 2 MiB, stay in
#: cache, and a few chunks keep the generated function's per-call overhead (~20 us) small (measured
#: at b = 10^6: 2^16 → 0.30x a running-maximum pass, 2^18 → 0.21x, whole → 0.25x); below this b
#: the whole row is evaluated at once
K_CHUNK = 1 << 18

#: how chunks' values of the max- and sum-form K combine: T1's K is 2Δ0 max_i(L_i/π_i)/ε², T1′'s
#: 2Δ0 Σ_i(L_i/π_i)/ε² (docs/sampling.md); T2's (l0l1) mixes both and is evaluated whole
K_COMBINE = {"max": "max", "sum": "sum"}


def _row(pi, b: int) -> np.ndarray:
    """``π`` as one row ``(1, b)``; a single entry is broadcast (a view, as is the row itself)."""
    pi = np.asarray(pi, dtype=float)
    return (pi if pi.shape == (b,) else np.broadcast_to(pi, (b,)))[None, :]


@dataclass(frozen=True, eq=False)
class Problem:
    """Inputs of a sampling problem, validated. ``L`` is ``None`` for the ``l0l1`` objective."""

    objective: str
    model: CostModel
    L: np.ndarray | None
    L0: np.ndarray | None
    L1: np.ndarray | None
    Delta0: float
    epsilon: float
    scaled: bool  # Delta0 and epsilon were given (else K is in units of 2Δ0/ε²)
    _k_many: object = field(default=None, repr=False)

    @property
    def nlayers(self) -> int:
        return self.model.nlayers

    @property
    def theorem(self):
        return _objective_theorem(self.objective)[0]

    @property
    def statement(self) -> str:
        return _objective_theorem(self.objective)[1]

    def constants(self, pi) -> dict:
        if self.objective == "l0l1":
            return dict(L0=self.L0, L1=self.L1, pi=pi, Delta0=self.Delta0)
        return dict(L=self.L, pi=pi, Delta0=self.Delta0)

    def iterations(self, pi, *more, nondecreasing: bool = False) -> float:
        """``K(π)`` before rounding, from the theorem's closed form (the same sympy expression as
        ``theorem.iterations_real``, through the generated vectorised function, without
        re-validating the constants); ``inf`` when a layer has ``π_i = 0`` (the theorem then
        guarantees nothing). With ``more`` (functions ``(lo, hi) → π`` of layers ``lo..hi−1`` of
        other distributions, all with ``0 < π ≤ 1``), returns ``(K(π), K(more[0]), …)`` from one
        sweep over the layers (:meth:`k_rows`). ``nondecreasing``: the caller guarantees
        ``π_1 ≤ … ≤ π_b`` (RPT), so its extremes are its ends."""
        pi = np.asarray(pi, dtype=float)
        bad = []  # π ≤ 0 (or nan) somewhere: checked chunk by chunk, while each is in cache

        def chunk(lo, hi):
            c = pi[lo:hi]
            lo_c, hi_c = (float(c[0]), float(c[-1])) if nondecreasing else (float(c.min()), float(c.max()))
            if not lo_c > 0:
                bad.append(lo)
            return np.minimum(c, 1.0) if hi_c > 1.0 else c

        Ks = self.k_rows([chunk, *more])
        if bad:
            Ks[0] = math.inf
        return tuple(Ks) if more else Ks[0]

    def iterations_many(self, pis) -> np.ndarray:
        """``K(π)`` for many ``π`` at once (rows), generated from the same sympy expression."""
        pis = np.asarray(pis, dtype=float)
        return np.where(np.all(pis > 0, axis=-1), self._k(pis), np.inf)

    def _function(self):
        f = self._k_many
        if f is None:
            expr = self.theorem.iterations_expressions[self.statement]
            f = _K_FUNCTIONS.get(expr)
            if f is None:  # generating the function (sympy printing) takes ~5 ms: once per expression
                f = S.numeric(expr, list(S.PER_LAYER), ["Delta0", "K", "eta", "beta", "epsilon", "b"])
                _K_FUNCTIONS[expr] = f
            object.__setattr__(self, "_k_many", f)
        return f

    def _k(self, pis, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """The generated ``K`` for rows ``pis`` (broadcasting against ``(…, b)``), without the
        ``π > 0`` mask; with ``lo, hi``, of the layers ``lo..hi−1`` alone (a chunk)."""
        f = self._function()
        sl = slice(lo, hi)
        vals = {"L": self.L, "L0": self.L0, "L1": self.L1}
        # constants the expression does not use are passed as the scalar 1 (broadcast)
        per = [pis if n == "pi" else (vals[n][sl] if vals.get(n) is not None else 1.0) for n in S.PER_LAYER]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(f(*per, self.Delta0, np.nan, np.nan, np.nan, self.epsilon, self.nlayers), dtype=float)
        shape = np.shape(pis)[:-1]
        return out if out.shape == shape else np.broadcast_to(out, shape)

    def k_rows(self, pi_ofs) -> list[float]:
        """``K(π)`` for each ``π`` given by a function ``pi_of(lo, hi)`` (``π`` of the layers
        ``lo..hi−1``; an array of length ``hi − lo`` or one broadcast entry), without the ``π > 0``
        mask.

        The max- and sum-form ``K`` are a positive constant times ``max_i`` or ``Σ_i`` of a
        per-layer term, so for ``b > K_CHUNK`` the generated function is evaluated on chunks of
        layers and the chunks' values combined by ``max`` or ``+`` (:data:`K_COMBINE`): the same
        expression, but each chunk of ``L`` is read once for every ``π`` and the temporaries
        stay in cache instead of a fresh ``b``-long array per evaluation (at b = 10^6 that costs
        more than the arithmetic).
        """
        b = self.nlayers
        combine = K_COMBINE.get(self.objective)
        if combine is None or b <= K_CHUNK:
            return [float(self._k(_row(f(0, b), b))[0]) for f in pi_ofs]
        parts = [[] for _ in pi_ofs]
        for lo in range(0, b, K_CHUNK):
            hi = min(lo + K_CHUNK, b)
            for f, acc in zip(pi_ofs, parts):
                acc.append(float(self._k(np.asarray(f(lo, hi), dtype=float)[None, ...], lo, hi)[0]))
        return [float(max(acc)) if combine == "max" else math.fsum(acc) for acc in parts]

    def mean_rpt_cost(self) -> float:
        """``mean_s C_s``, the expected cost of uniform index sampling: a property of the cost
        model alone, computed once per model (a full read of ``C`` at b = 10^6) and kept while the
        model lives — the model and its arrays are read-only, as for the model's own cached
        ``C``."""
        m = self.model
        v = _MEAN_RPT_COST.get(m)
        if v is None:
            v = float(self.rpt_costs().mean())
            _MEAN_RPT_COST[m] = v
        return v

    def rpt_costs(self) -> np.ndarray:
        """``C_s``, the cost of starting at ``s``: the model's cached array itself, for reading only
        (``CostModel.rpt_costs()`` returns a fresh copy, a full pass and an 8 MB allocation at
        b = 10^6 on every call; the evaluation and the reference costs only read it)."""
        with np.errstate(over="ignore"):
            return self.model.rpt_costs(copy=False)

    def evaluate(self, distribution, *, K: float | None = None) -> tuple[float, float, float]:
        """``(K, E cost, TC)`` of a distribution object from :mod:`dropmuon.theory.sampling`
        (``K`` may be given when already computed for it)."""
        if K is None:
            K = self.iterations(distribution.inclusion)
        m = self.model
        with np.errstate(over="ignore"):  # beyond 1.8e308 the cost is inf: callers check finiteness
            if not math.isfinite(float(m.full_cost)):
                # set costs that overflow would meet probabilities 0 (inf·0 = nan): evaluate in
                # cost_unit, where every set costs at most 3b + 1, and scale back
                cs = cost_unit(m)
                unit = CostModel(m.forward / cs, m.activation / cs, m.weight / cs, m.update / cs)
                c = cs * float(unit.expected_cost(distribution))
            elif isinstance(distribution, RPT):
                # E cost = Σ_s p_s C_s: one dot product (the model's expected_cost re-validates and
                # re-accumulates π, ~4 passes over the layers at b = 10^6)
                c = float(distribution.start_probs @ self.rpt_costs())
            else:
                c = m.expected_cost(distribution)
            return K, c, K * c

    @property
    def scale(self) -> float:
        """``K`` per unit of the objective's normalised form (``2Δ0/ε²`` for max and sum)."""
        if self.objective == "l0l1":
            return 1.0
        return 2 * self.Delta0 / self.epsilon**2


def make_problem(
    L,
    costs,
    objective: str,
    *,
    forward_cost: float | None = None,
    L0=None,
    L1=None,
    Delta0=None,
    epsilon=None,
) -> Problem:
    """Validate the inputs of :func:`solvers.optimal_sampling` and build a :class:`Problem`."""
    _check_choice("objective", objective, OBJECTIVES)
    model = cost_model(costs, forward_cost)
    if objective == "l0l1":
        if L0 is None or L1 is None:
            raise ValueError("objective 'l0l1' needs the (L0,L1) constants L0 and L1")
        if Delta0 is None or epsilon is None:
            raise ValueError("objective 'l0l1' needs Delta0 and epsilon (its K is not homogeneous in them)")
        L0a = check_layer_array("L0", L0, "nonnegative")
        L1a = check_layer_array("L1", L1, "positive")
        La = None if L is None else check_layer_array("L", L, "positive")
        check_same_length(L0=L0a, L1=L1a, L=La, costs=model.weight)
    else:
        La = check_layer_array("L", L, "positive")
        check_same_length(L=La, costs=model.weight)
        L0a = L1a = None
    scaled = Delta0 is not None or epsilon is not None
    if scaled and (Delta0 is None or epsilon is None):
        raise ValueError("give both Delta0 and epsilon, or neither (then K is in units of 2*Delta0/eps^2)")
    D0 = 0.5 if Delta0 is None else check_scalar("Delta0", Delta0)
    eps = 1.0 if epsilon is None else check_scalar("epsilon", epsilon)
    # every built-in K(ε) divides by ε²: beyond ~1e±154 it is not a double, and K would be 0 or inf
    if not _EPS2_RANGE[0] <= eps <= _EPS2_RANGE[1]:
        raise ValueError(f"epsilon = {eps:g} puts eps^2 outside the range of a double, so K(eps) cannot be "
                         f"computed; choose epsilon in [1e-150, 1e150]")
    return Problem(objective, model, La, L0a, L1a, D0, eps, scaled)


# ε for which ε² is a normal double with room for the constants' factors: the range the theory's
# own message names (dropmuon bound)
_EPS2_RANGE = (1e-150, 1e150)


@dataclass(frozen=True, eq=False)
class Formulation:
    """A family's distributions as a cone ``θ ≥ 0`` with ``E θ = 0`` and ``G θ ≤ 0``, where
    ``y = Y θ`` are the (unnormalised) inclusion masses and ``cost · θ`` the cost mass, in units
    of ``unit`` (:func:`cost_unit`: a full step's cost where that is a finite double).

    Scaling ``θ`` scales both, so ``θ`` with ``cost · θ = 1`` describes a distribution with
    ``π = y / (Σ of its mass)`` and expected cost ``1/(that mass)``; :meth:`decode` returns the
    distribution. Running sums are variables of their own so every matrix stays sparse.
    """

    family: str
    nvar: int
    Y: sps.csr_matrix
    cost: np.ndarray
    G: sps.csr_matrix | None
    E: sps.csr_matrix | None
    mass: np.ndarray  # the total probability mass is mass · θ
    decode_fn: object
    unit: float = 1.0  # cost · θ times this is the cost in the model's units

    def decode(self, theta):
        return self.decode_fn(np.maximum(np.asarray(theta, dtype=float), 0.0))


def _running_sum_rows_fast(b: int, rho_off: int, P_off: int, nvar: int) -> sps.csr_matrix:
    """Rows of ``P_1 = 0`` and ``P_{j+1} − P_j − ρ_j = 0`` (``P_j = Σ_{s<j} ρ_s``)."""
    j = np.arange(b - 1)
    rows = np.concatenate([[0], np.repeat(j + 1, 3)])
    cols = np.concatenate([[P_off], np.stack([P_off + j + 1, P_off + j, rho_off + j], 1).ravel()])
    vals = np.concatenate([[1.0], np.tile([1.0, -1.0, -1.0], b - 1)])
    return sps.csr_matrix((vals, (rows, cols)), shape=(b, nvar))


def _normalise(x: np.ndarray) -> np.ndarray:
    t = x.sum()
    if not t > 0:
        raise ValueError("the solver returned no probability mass")
    return x / t


#: the matrices Y, E, G, the mass vector and (enumeration) the sets of a formulation depend on the
#: family and ``b`` alone: they are built once per (family, b) up to this many layers (~1-2 ms per
#: build at b ≤ 8, more than an LP solve) and shared, read-only, by every formulation of that shape
STRUCTURE_MAX_LAYERS = 64
#: the enumeration's ``2^b − 1`` columns are kept up to this many layers (12: 4095 columns, 0.4 MB)
STRUCTURE_MAX_ENUMERATED = 12
_STRUCTURES: dict = {}
_STRUCTURES_LOCK = threading.Lock()


def _read_only(x):
    arrays = (x.data, x.indices, x.indptr) if sps.issparse(x) else (x,) if isinstance(x, np.ndarray) else ()
    for a in arrays:
        a.flags.writeable = False
    return x


def _build_structure(family: str, b: int, enumerate_sets: bool) -> tuple:
    """``(nvar, Y, G, E, mass, extra)`` of :func:`formulation` (``extra``: the enumeration's
    ``(member, lowest, sets)``)."""
    I = sps.identity(b, format="csr")  # noqa: E741
    if family == "rpt":
        n = 2 * b
        return (n, sps.hstack([I, I], format="csr"), None, _running_sum_rows_fast(b, 0, b, n),
                np.concatenate([np.ones(b), np.zeros(b)]), None)
    if family == "subsets" and not enumerate_sets:
        n = 3 * b
        Z = sps.csr_matrix((b, b))
        return (n, sps.hstack([I, I, Z], format="csr"), sps.hstack([Z, I, -I], format="csr"),  # x_j − P_j ≤ 0
                _running_sum_rows_fast(b, 0, 2 * b, n), np.concatenate([np.ones(b), np.zeros(2 * b)]), None)
    if family == "subsets":
        masks = np.arange(1, 2**b)
        member = ((masks[None, :] >> np.arange(b)[:, None]) & 1).astype(float)  # b × n
        lowest = np.array([int(mk & -mk).bit_length() for mk in masks])  # 1-based lowest layer
        sets = tuple(tuple(int(j) + 1 for j in np.flatnonzero(member[:, k])) for k in range(masks.size))
        return masks.size, sps.csr_matrix(member), None, None, np.ones(masks.size), (member, lowest, sets)
    # independent: θ = (y, s); y ≤ s
    return (b + 1, sps.hstack([I, sps.csr_matrix((b, 1))], format="csr"),
            sps.hstack([I, -sps.csr_matrix(np.ones((b, 1)))], format="csr"), None,
            np.concatenate([np.zeros(b), [1.0]]), None)


def _structure(family: str, b: int, enumerate_sets: bool) -> tuple:
    """:func:`_build_structure`, kept per shape for small ``b`` (read-only there)."""
    key = (family, b, enumerate_sets)
    got = _STRUCTURES.get(key)
    if got is not None:
        return got
    got = _build_structure(family, b, enumerate_sets)
    if b <= (STRUCTURE_MAX_ENUMERATED if enumerate_sets else STRUCTURE_MAX_LAYERS):
        for x in got[1:5] + (got[5] or ())[:2]:
            _read_only(x)
        with _STRUCTURES_LOCK:
            got = _STRUCTURES.setdefault(key, got)
    return got


def formulation(problem: Problem, family: str, enumerate_sets: bool = False) -> Formulation:
    """The linear description of ``family`` under the problem's cost model. Its matrices are
    shared by every formulation of the same family and ``b`` (small ``b``): read-only."""
    m = problem.model
    b = m.nlayers
    cs = cost_unit(m)
    v = unit_per_layer(m, cs)
    if family == "rpt":
        # θ = (ρ, P): ρ_s start masses, P_j = Σ_{s<j} ρ_s; y = P + ρ
        n, Y, _, E, mass, _ = _structure("rpt", b, False)
        cost = np.concatenate([unit_rpt_costs(m, cs), np.zeros(b)])
        return Formulation("rpt", n, Y, cost, None, E, mass, lambda th: RPT(_normalise(th[:b])), cs)
    if family == "subsets" and not enumerate_sets:
        # θ = (ρ, x, P): lowest-layer masses, masses above the lowest, running sums
        n, Y, G, E, mass, _ = _structure("subsets", b, False)
        cost = np.concatenate([unit_lowest_costs(m, cs), v, np.zeros(b)])

        def decode(th):
            rho, x, P = th[:b], th[b : 2 * b], th[2 * b :]
            tot = rho.sum()
            with np.errstate(divide="ignore", invalid="ignore"):
                theta = np.where(P > 1e-300, np.clip(x / np.where(P > 0, P, 1.0), 0.0, 1.0), 0.0)
            return CompactSubsets(_normalise(rho), theta) if tot > 0 else None

        return Formulation("subsets", n, Y, cost, G, E, mass, decode, cs)
    if family == "subsets":
        if b > MAX_ENUMERATE_LAYERS:
            raise ValueError(
                f"method 'enumerate' builds 2^b - 1 columns; b = {b} > {MAX_ENUMERATE_LAYERS} is too many "
                "(use the compact methods: closed-form, lp or cvxpy)"
            )
        n, Y, _, _, mass, (member, lowest, sets) = _structure("subsets", b, True)
        A_above = np.concatenate([np.cumsum(m.activation[::-1] / cs)[::-1][1:], [0.0]])
        cost = m.forward / cs + A_above[lowest - 1] + v @ member

        def decode(th):
            q = _normalise(th)
            keep = q > 1e-15
            return SubsetDistribution(b, [sets[k] for k in np.flatnonzero(keep)], q[keep])

        return Formulation("subsets", n, Y, cost, None, None, mass, decode, cs)
    if family == "independent":
        if not linear_independent_costs(m):
            raise ValueError(
                "independent sampling with activation-backward costs a_j > 0 has a non-linear "
                "expected cost; use method 'closed-form' (max-form) or 'scipy'"
            )
        # θ = (y, s): y_i = π_i s, s = total mass; y ≤ s
        n, Y, G, _, mass, _ = _structure("independent", b, False)
        cost = np.concatenate([v, [m.forward / cs]])

        def decode(th):
            s = th[-1]
            if not s > 0:
                raise ValueError("the solver returned no probability mass")
            return Independent(np.clip(th[:b] / s, 0.0, 1.0))

        return Formulation("independent", n, Y, cost, G, None, mass, decode, cs)
    raise ValueError(f"unknown family {family!r}; choose one of: {', '.join(FAMILIES)}")
