r"""Exact worst cases of T1's left-hand side by performance estimation (PEP, a small SDP).

The checks in :mod:`dropmuon.verification.synthetic.checks` run Drop-Muon on chosen instances;
this module answers, for given ``L``, sampling and ``K``, what the *worst case over the whole
function class* is, how far T1's bound is from it, and which function attains it (the derivation
is ``docs/certify.md``). It is the front door of :mod:`dropmuon.verification.pep`: the pieces — the
banded and all-pairs PEPs, the exact dual check, the sampling tree, the witness, optimal sampling —
live in the package's other modules, and their names are re-exported here.

**Reduction (separable class, A1 in Lipschitz form, Frobenius layers).** ``f = Σ_i f_i(X_i)`` with
each ``f_i`` ``L_i``-smooth. Layer ``i`` moves only when sampled, by the linear step
``X_i ← X_i − M_i/L_i`` (``M_i = ∇_i f`` for T1; with momentum ``β`` the frozen-when-unsampled
momentum), so after ``k`` i.i.d. rounds it sits at its ``N``-th own iterate,
``N ~ Binomial(k, π_i)``. Both statements of T1 are sums over layers of expectations of one layer's
gradient norms, so only the marginals ``π_i`` matter and

.. math::

    \frac1K\sum_{k<K}\mathbb E\,\|\nabla f_i(X_i^k)\|^2 = \frac1K\sum_{n<K} c_n \|g_{i,n}\|^2,
    \qquad c_n = \sum_{k=n}^{K-1}\binom kn \pi_i^n(1-\pi_i)^{k-n}.

By scale invariance (``f_i(x) = Δ_i h(x\sqrt{L_i/Δ_i})`` with ``h`` 1-smooth) this is at most
``L_i Δ_i W(π_i, K)``, where ``W`` is the value of a ``(K+1)``-point PEP for one 1-smooth function
with ``f(x_0) − f^* ≤ 1``; the initial gap splits as ``Δ0 = Σ_i Δ_i``, so the worst case of the
weighted statement is ``Δ0 max_i π_i W(π_i, K)`` and of the rate statement ``Δ0 max_i L_i W(π_i, K)``.
For ``β = 1`` the SDP value is the closed form ``W = 2(1 − (1−π)^K)/(πK)`` (:func:`closed_form_factor`).

**Bracketed and proved.** :func:`certify` reports ``lower ≤ worst case ≤ upper``: ``lower`` is
attained by a function of the class run through Drop-Muon (``½x²``, or the interpolated 1-D worst
case of the SDP, :class:`SmoothInterpolant`); ``upper`` is the closed form for ``β = 1`` and, for
``β < 1``, the value of a banded PEP (interpolation only between nearby points, solved over chordal
cliques, so it scales linearly in ``K``) whose dual multipliers are checked in exact rational
arithmetic (:mod:`dropmuon.verification.pep`). The all-pairs SDP (:func:`layer_worst_case`, cvxpy)
uses the interpolation conditions for ``L``-smooth functions (Taylor, Hendrickx, Glineur 2017, arXiv
1512.07516) and ``f(x_n) − f^* ≥ ‖g_n‖²/(2L)`` (what ``inf f = f^*`` implies): necessary
conditions, so its value bounds the worst case from above; it remains for cross-checks (PEPit, the
sampling tree). For coupled functions (A1 in descent form only) :func:`tree_worst_case` with
``coupled=True`` is only an upper bound: interpolation conditions for that class are not known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dropmuon.theory import RPT, Independent, get_theorem
from dropmuon.theory._validation import check_layer_array, check_positive_int, check_scalar

# the pieces live in .pep; this module is the front door and keeps their names (and the private
# helpers other modules and the tests import from here)
from .allpairs import (  # noqa: F401
    LayerPEP,
    _binomial_weights,
    _chain_vectors,
    _interpolation_rows,
    closed_form_factor,
    layer_worst_case,
)
from .budget import MAX_K, MAX_SECONDS, check_fits
from .sampling import SamplingComparison, certified_iterations, compare_optimal_sampling
from .sdp import SOLVERS, STATUSES, _check_solver, _outer, _sel  # noqa: F401
from .tree import TreePEP, tree_worst_case
from .witness import InterpolatedProblem, SmoothInterpolant

__all__ = [
    "certify",
    "Certificate",
    "layer_worst_case",
    "LayerPEP",
    "tree_worst_case",
    "TreePEP",
    "closed_form_factor",
    "certified_iterations",
    "compare_optimal_sampling",
    "SamplingComparison",
    "SmoothInterpolant",
    "InterpolatedProblem",
    "SUPPORTED_THEOREMS",
    "STATUSES",
    "SOLVERS",
    "ATTAIN_RTOL",
    "MAX_K",
    "MAX_SECONDS",
    "check_fits",
]

#: the theorems whose algorithm has linear steps (what the reduction needs)
SUPPORTED_THEOREMS = ("smooth-deterministic",)
#: attainment tolerance: the witness is built from the solver's primal solution (interior-point
#: accuracy ~1e-8 in the Gram matrix, square-rooted by the factorisation to ~1e-4 in the points in
#: the worst case), so an attained value within 1e-4 relative of the SDP value counts as attained
ATTAIN_RTOL = 1e-4
#: exact enumeration of the witness run over sampling paths up to this many paths
MAX_WITNESS_PATHS = 4096


# -- the witness run ----------------------------------------------------------------------------

def _attain(wit: dict, layer: int, L, distribution, K: int, statement: str, beta: float, Delta0: float):
    """Run Drop-Muon on the witness (normalised data ``x, g, f`` of a 1-smooth function with gap 1,
    scaled to layer ``layer``'s ``L`` and to ``Δ0``) and return
    ``(lhs/Δ0_witness·Δ0, method, Δ0_witness, data)``."""
    from ..synthetic.dropmuon import SharpStep, as_sampler, count_paths, paths

    Li = float(L[layer - 1])
    x = np.asarray(wit["x"], dtype=float) * math.sqrt(Delta0 / Li)
    g = np.asarray(wit["g"], dtype=float) * math.sqrt(Li * Delta0)
    f = np.asarray(wit["f"], dtype=float) * Delta0
    interp = SmoothInterpolant(x, g, f, Li)
    prob = InterpolatedProblem(interp, layer, L, float(x[0]))
    dw = prob.delta0
    pi = np.asarray(distribution.inclusion, dtype=float)
    consts = {"L": np.asarray(L, dtype=float), "pi": pi}
    sampler = as_sampler(distribution)
    if count_paths(sampler, K) <= MAX_WITNESS_PATHS and K <= 64:
        run = paths(prob, SharpStep(L), sampler, K, beta=beta, method="exact")
        # T1's left-hand side (docs/theory.md §T1) on each path, from gnorms[n, k, i] = ‖∇_i f(X^k)‖_F
        alpha = consts["pi"] / consts["L"] if statement == "weighted" else np.ones(len(L))
        lhs = run.expectation((alpha * run.gnorms**2).sum(axis=2).mean(axis=1))
        method = "exact expectation over all sampling paths"
    else:
        # too many paths: the layer's own clock (the reduction) with Drop-Muon's own step on the
        # witness layer alone, weighted by the binomial law of its number of updates
        from .layer import _run_own_clock, _weighted_sum

        gn, _ = _run_own_clock(interp, K, beta, float(x[0]), L=Li)
        alpha = pi[layer - 1] / Li if statement == "weighted" else 1.0
        lhs = alpha * _weighted_sum(float(pi[layer - 1]), K, gn) / K
        method = "layer's own clock (binomial weights) with Drop-Muon's step on the witness"
    data = {"layer": layer, "L": Li, "x": x.tolist(), "g": g.tolist(), "f": f.tolist(), "fstar": prob.fstar,
            "interpolation_error": float(max(np.max(np.abs(interp.value(x) - f)),
                                             np.max(np.abs(interp.grad(x) - g)))),
            "function": wit.get("function", "1-D piecewise quadratic: THG interpolant (h = f + (L/2)x² convex, 2L-smooth)")}
    return lhs * Delta0 / dw, method, dw, data


# -- the front door ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Certificate:
    r"""The worst case of one statement of T1 over the separable class (Frobenius layers, A1 in
    Lipschitz form) for given ``L``, sampling and ``K``, **bracketed**: ``lower ≤ worst case ≤ upper``.

    ``lower`` is attained: a function of the class (the SDP's interpolated worst case, or ``½x²``) run
    through the numpy Drop-Muon. ``upper`` is proved when ``rigorous``: for ``β = 1`` the closed form
    (:func:`closed_form_factor`), otherwise the banded PEP's dual multipliers checked in exact
    arithmetic (:mod:`dropmuon.verification.pep`). ``gap = (upper − lower)/upper``; ``exact`` when
    ``gap ≤ 1e-6``. ``worst_case`` is ``upper`` (never above it), ``ratio = worst_case/bound`` with
    ``bound`` T1's right-hand side; ``layer_factors`` the per-layer upper factors ``w_i``
    (``π_i W_i`` weighted, ``L_i W_i`` rate); ``layer`` the maximising layer (1-based); ``band`` the
    interpolation band of the proof (``None``: closed form). ``attained``: T1's left-hand side of
    Drop-Muon run on the maximising layer's witness inside the whole network (every sampling path
    when there are few, else the layer's own clock), rescaled to ``Δ0``. ``solver`` fields describe
    the SDP (``status`` one of :data:`STATUSES`, ``duality_gap`` in units of ``Δ0``, ``residuals``).
    ``bound_covers``: whether T1 covers the algorithm (``β = 1``).

    With ``solver="SCS"`` the all-pairs SDP is solved by cvxpy/SCS as a cross-check: no proof
    (``rigorous = False``, ``upper = None``) and ``worst_case`` is the solver's value.
    """

    theorem: str
    statement: str
    K: int
    L: tuple
    pi: tuple
    distribution: str
    beta: float
    Delta0: float
    worst_case: float
    lower: float
    upper: float | None
    gap: float
    rigorous: bool
    bound: float
    ratio: float
    bound_covers: bool
    layer: int
    layer_factors: tuple
    closed_form: float | None
    band: int | None
    status: str
    solver: str
    duality_gap: float
    residuals: dict
    solve_time: float
    witness: dict | None
    attained: float | None
    attained_method: str | None
    exact: bool | None
    source: str = "docs/certify.md"
    message: str = ""
    layer_peps: tuple = field(default=(), repr=False)

    def to_dict(self) -> dict:
        """JSON-ready fields (no solver internals)."""
        out = {k: getattr(self, k) for k in (
            "theorem", "statement", "K", "L", "pi", "distribution", "beta", "Delta0", "worst_case", "lower", "upper",
            "gap", "rigorous", "exact", "bound", "ratio", "bound_covers", "layer", "layer_factors", "closed_form",
            "band", "status", "solver", "duality_gap", "residuals", "solve_time", "witness", "attained",
            "attained_method", "source", "message")}
        out["L"], out["pi"], out["layer_factors"] = list(self.L), list(self.pi), list(self.layer_factors)
        return out


def _check_theorem(theorem) -> str:
    th = get_theorem(theorem) if isinstance(theorem, str) else theorem
    name = getattr(th, "name", str(theorem))
    if name not in SUPPORTED_THEOREMS:
        raise ValueError(
            f"certify supports only smooth-deterministic (T1: sharp steps 1/L_i, linear in the gradient, "
            f"optionally with momentum beta); theorem {name} ({getattr(th, 'label', '?')}) uses "
            f"{getattr(th, 'step_rule_text', 'other steps')} — steps that are not linear in the gradient, "
            f"for which the layer's iterates are not a fixed linear recursion and the PEP reduction does not apply "
            f"(for T3 a relaxation exists: dropmuon certify --theorem smooth-stochastic --sigma S)")
    return name


def _distribution(pi, start_probs, b):
    if (pi is None) == (start_probs is None):
        if pi is None and start_probs is None:
            raise ValueError("give the sampling: inclusion probabilities pi (independent layers) or RPT "
                             "start_probs, not neither")
        raise ValueError("give either pi or start_probs, not both")
    if start_probs is not None:
        d = RPT(start_probs)
        if d.nlayers != b:
            raise ValueError(f"start_probs has {d.nlayers} entries but L has {b} layers")
        pi_arr = np.asarray(d.inclusion, dtype=float)
        check_layer_array("pi", pi_arr, "probability")  # a layer never updated: π_i = 0
        return d, f"RPT(start_probs={np.round(np.asarray(start_probs, dtype=float), 6).tolist()})"
    pi_arr = check_layer_array("pi", pi, "probability")
    if len(pi_arr) != b:
        raise ValueError(f"pi has {len(pi_arr)} entries but L has {b} layers")
    return Independent(pi_arr), f"Independent(pi={np.round(pi_arr, 6).tolist()})"


def certify(theorem="smooth-deterministic", *, L, K: int, pi=None, start_probs=None, statement: str = "rate",
            beta: float = 1.0, Delta0: float = 1.0, solver: str = "CLARABEL", attain: bool = True,
            max_seconds: float = MAX_SECONDS) -> Certificate:
    r"""The worst case of T1's ``statement`` over separable Frobenius problems (A1 in Lipschitz form)
    for smoothness ``L``, the sampling (``pi``: independent layers, or RPT ``start_probs``; only the
    inclusion probabilities matter) and ``K`` iterations, bracketed by an attained lower bound and a
    proved upper bound (:class:`Certificate`).

    Per distinct ``π_i`` one layer bracket (:func:`dropmuon.verification.pep.layer_bracket`: the closed
    form for ``β = 1``; for ``β < 1`` the banded PEP with its dual checked exactly, the band widened
    until the bracket closes), then ``Δ0·max_i w_i`` (the gap goes to the worst layer; module
    docstring). With ``attain``, Drop-Muon is also run on the maximising layer's witness inside the
    whole network. ``beta < 1``: the momentum variant (momentum frozen while a layer is not sampled);
    T1 does not cover it and its bound is then only a reference (``bound_covers = False``).

    Refused before any work (``ValueError``, one line naming ``K`` and the largest ``K`` that fits)
    when the estimated time exceeds ``max_seconds`` or the estimated memory the machine's available
    memory.

    >>> c = certify(L=[1.0, 4.0], pi=[0.5, 1.0], K=2, statement="rate")
    >>> round(c.worst_case, 6), round(c.bound, 6), c.layer, c.exact, c.rigorous
    (4.0, 4.0, 2, True, True)
    """
    name = _check_theorem(theorem)
    L = check_layer_array("L", L, "positive")
    K = check_positive_int("K", K)
    beta = check_scalar("beta", beta, "probability")
    Delta0 = check_scalar("Delta0", Delta0, "positive")
    if statement not in ("weighted", "rate"):
        raise ValueError(f"statement must be 'weighted' or 'rate'; got statement = {statement!r}")
    solver = _check_solver(solver)
    max_seconds = check_scalar("max_seconds", max_seconds, "positive")
    dist, desc = _distribution(pi, start_probs, len(L))
    pi_arr = np.asarray(dist.inclusion, dtype=float)
    distinct = sorted(set(pi_arr.tolist()))
    check_fits(K, beta, solver=solver, max_seconds=max_seconds, layers=len(distinct))
    scale = pi_arr if statement == "weighted" else L
    th = get_theorem(name)
    bound = float(th.evaluate(K, statement=statement, L=L, pi=pi_arr, Delta0=Delta0).value)
    closed = None
    if beta == 1.0:
        cf = np.array([closed_form_factor(p, K) for p in pi_arr])
        closed = float(Delta0 * np.max(scale * cf))
    if solver == "SCS":
        return _certify_all_pairs(name, statement, K, L, pi_arr, dist, desc, beta, Delta0, solver, attain, bound,
                                  closed, scale)
    from .layer import layer_bracket

    brackets = {p: layer_bracket(p, K, beta=beta) for p in distinct}
    Wl = np.array([brackets[p].lower for p in pi_arr.tolist()])
    proved = all(brackets[p].rigorous for p in distinct)
    Wu = np.array([brackets[p].upper if brackets[p].upper is not None else math.inf for p in pi_arr.tolist()])
    up_f, lo_f = scale * Wu, scale * Wl
    layer = int(np.argmax(up_f)) + 1
    lower = float(Delta0 * np.max(lo_f))
    upper = float(Delta0 * np.max(up_f)) if proved else None
    if upper is not None:
        from .layer import _reconcile

        lower = _reconcile(lower, upper, f"certify, K = {K}")
    gap = (upper - lower) / upper if upper else math.inf
    steps = [st for p in distinct for st in brackets[p].steps if "solver" in st]
    sdp = [st for st in steps if st["solver"] not in ("Solved", "AlmostSolved")]
    status = "failed" if sdp else ("inaccurate" if any(st["solver"] == "AlmostSolved" for st in steps) else "optimal")
    bands = [brackets[p].band for p in distinct if brackets[p].band is not None]
    witness = attained = method = None
    if attain:
        lay = int(np.argmax(lo_f)) + 1
        wit = brackets[pi_arr[lay - 1]].witness
        val, method, dw, data = _attain(wit, lay, L, dist, K, statement, beta, Delta0)
        attained = float(val)
        data.update(Delta0_witness=dw)
        witness = data
    exact = bool(proved and gap <= 1e-6)
    if proved:
        msg = (f"exact: the attained lower bound and the proved upper bound agree to {gap:.1e} (relative)" if exact
               else f"bracketed: the worst case lies in [{lower:.10g}, {upper:.10g}] (relative gap {gap:.1e})")
    else:
        msg = "not proved: no dual certificate passed the exact check; the lower bound is attained"
    sv = [brackets[p].solver_value for p in distinct if brackets[p].solver_value is not None]
    return Certificate(
        theorem=name, statement=statement, K=K, L=tuple(float(v) for v in L), pi=tuple(float(v) for v in pi_arr),
        distribution=desc, beta=beta, Delta0=Delta0, worst_case=upper if proved else lower, lower=lower, upper=upper,
        gap=float(gap), rigorous=proved, bound=bound, ratio=(upper if proved else lower) / bound,
        bound_covers=beta == 1.0, layer=layer, layer_factors=tuple(float(v) for v in up_f), closed_form=closed,
        band=max(bands) if bands else None, status=status if beta != 1.0 else "optimal",
        solver="closed form" if beta == 1.0 else "CLARABEL (banded, chordal)",
        duality_gap=float(max((abs(st["solver_value"] - st["upper"]) for st in steps if st.get("upper")),
                              default=0.0)) * Delta0,
        residuals={"solver_values": sv}, solve_time=float(sum(b.time for b in brackets.values())), witness=witness,
        attained=attained, attained_method=method, exact=exact, message=msg, layer_peps=tuple(brackets.values()))


def _certify_all_pairs(name, statement, K, L, pi_arr, dist, desc, beta, Delta0, solver, attain, bound, closed, scale):
    """The all-pairs SDP through cvxpy (SCS): a cross-check, not a proof."""
    peps = {p: layer_worst_case(p, K, beta=beta, solver=solver, witness=attain) for p in sorted(set(pi_arr.tolist()))}
    W = np.array([peps[p].value for p in pi_arr.tolist()])
    factors = scale * W
    statuses = [r.status for r in peps.values()]
    status = "failed" if "failed" in statuses else ("inaccurate" if "inaccurate" in statuses else "optimal")
    layer = int(np.nanargmax(factors)) + 1 if status != "failed" else 0
    worst = float(Delta0 * factors[layer - 1]) if status != "failed" else math.nan
    gap = max((r.duality_gap or 0.0) for r in peps.values()) if status != "failed" else math.nan
    residuals = {"primal_infeasibility": max((r.primal_infeasibility or 0.0) for r in peps.values()),
                 "dual_infeasibility": max((r.dual_infeasibility or 0.0) for r in peps.values())}
    witness = attained = method = None
    lower = math.nan
    if attain and status != "failed":
        pep = peps[pi_arr[layer - 1]]
        wit = {"x": pep.points, "g": pep.gradients, "f": pep.values}
        val, method, dw, data = _attain(wit, layer, L, dist, K, statement, beta, Delta0)
        attained = lower = float(val)
        data.update(rank=pep.rank, gram_eigenvalues=[float(e) for e in pep.eigenvalues], Delta0_witness=dw)
        witness = data
    return Certificate(
        theorem=name, statement=statement, K=K, L=tuple(float(v) for v in L), pi=tuple(float(v) for v in pi_arr),
        distribution=desc, beta=beta, Delta0=Delta0, worst_case=worst, lower=lower, upper=None, gap=math.inf,
        rigorous=False, bound=bound, ratio=worst / bound, bound_covers=beta == 1.0, layer=layer,
        layer_factors=tuple(float(v) for v in factors), closed_form=closed, band=None, status=status, solver=solver,
        duality_gap=float(gap), residuals=residuals, solve_time=float(sum(r.time for r in peps.values())),
        witness=witness, attained=attained, attained_method=method, exact=None,
        message="cross-check with SCS on the all-pairs SDP: not a proof", layer_peps=tuple(peps.values()))


class _CallableModule(__import__("types").ModuleType):
    """This module and its main function share the name ``certify``: once the module is imported,
    ``dropmuon.verification.pep.certificate`` may be the module rather than the function, so calling the
    module calls :func:`certify`."""

    def __call__(self, *args, **kwargs):
        return certify(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
