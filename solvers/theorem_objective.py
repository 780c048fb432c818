r"""Any registered theorem as a sampling objective: minimise ``TC(π) = K(π) · E cost(π)`` with the
theorem's own iteration count ``K(π)`` (numerically, from a multi-start local method).

The built-in objectives (``max``, ``sum``, ``l0l1``) are T1's, T1′'s and T2's closed forms, solved
exactly by :mod:`dropmuon.solvers.closed_form` and the LPs. Here ``K(π)`` is whatever the theorem
object says: its closed-form ``K(ε)`` where it has one (``Theorem.iterations_real``), otherwise the
smallest ``K`` whose bound reaches the target (``Theorem.iterations``, by bisection — then ``K`` is
an integer and ``TC`` is piecewise constant in ``π``). The search runs in unconstrained
coordinates (RPT: start probabilities ``p = softmax(z)``; independent: ``π = σ(z)``, kept above
:data:`PI_FLOOR`) by Nelder–Mead from the full, the uniform and seeded random starting points.

A local method certifies nothing, so the status is ``optimal_inaccurate`` — except where the theorem
names a built-in objective (``Theorem.solver_objective``): then the closed form is solved too and
the answer is ``optimal`` when the numeric optimum agrees with it within :data:`AGREEMENT_RTOL`.
"""

from __future__ import annotations

import math

import numpy as np

from dropmuon.theory import RPT, Independent, get_theorem

from ._problem import check_starts, cost_model
from .optimal import SamplingResult, _register_theorem_solver, optimal_sampling

__all__ = ["optimal_for_theorem", "PI_FLOOR", "AGREEMENT_RTOL"]

#: inclusion probabilities stay above this floor (``K(π)`` is infinite at ``π_i = 0``)
PI_FLOOR = 1e-6
#: starts (full, uniform, random) at most when K(π) has no closed form and each evaluation bisects
MAX_STARTS_BISECTION = 3
#: the numeric optimum "agrees" with a closed form when their total costs differ by at most this
#: (relative): Nelder–Mead stops at ``fatol = 1e-10`` relative in the normalised total cost, but on
#: the max-form's non-smooth objective it stalls at kinks a little above the optimum
AGREEMENT_RTOL = 1e-3


def _theorem(theorem):
    if isinstance(theorem, str):
        return get_theorem(theorem)
    from dropmuon.theory import Theorem

    if not isinstance(theorem, Theorem):
        raise ValueError(f"theorem must be a registered name or a Theorem object; got {theorem!r}")
    return theorem


def _iterations_interpolated(thm, statement: str, epsilon, kw) -> float:
    """``K(π)`` without a closed form, as a real number: the smallest integer ``K`` whose bound
    reaches the target (``Theorem.iterations``), less the fraction of the last step not needed —
    linear interpolation of the bound between ``K − 1`` and ``K`` — so that the objective is
    continuous in ``π`` (a local method stalls on the integer staircase)."""
    K = thm.iterations(epsilon, statement, **kw)
    if K <= 1:
        return float(K)
    hi = thm.evaluate(K, statement=statement, epsilon=epsilon, **kw)
    lo = thm.evaluate(K - 1, statement=statement, **kw).value
    t = hi.target
    if not (lo > t >= hi.value) or lo == hi.value:
        return float(K)
    return float(K - 1 + (lo - t) / (lo - hi.value))


@_register_theorem_solver  # optimal_sampling(..., theorem=...) solves with this function
def optimal_for_theorem(theorem, costs, *, family: str = "rpt", statement: str | None = None,
                        L=None, L0=None, L1=None, constants=None, Delta0=None, epsilon=None,
                        forward_cost: float | None = None, starts: int = 8, seed: int = 0):
    r"""The sampling distribution minimising ``K(π) · E cost(π)`` for ``theorem``'s own ``K(π)``.

    ``theorem``: a registered name or a :class:`~dropmuon.theory.Theorem`; ``statement``: the one
    whose accuracy target defines ``K`` (default: the theorem's rate statement); ``L, L0, L1`` and
    ``constants`` (a mapping of any other per-layer constants, e.g. ``sigma``) are passed to the
    theorem; ``Delta0`` and ``epsilon`` are required (a general ``K(ε)`` is not homogeneous in
    them). ``family``: ``rpt`` or ``independent``. A theorem that covers full updates only
    (``full_sampling_only``) has one feasible point, ``π ≡ 1``.

    Returns a :class:`~dropmuon.solvers.SamplingResult` with ``objective = "theorem:NAME"`` and
    ``iterations_unit = "iterations"``.

    >>> r = optimal_for_theorem("smooth-constant-radius", [1, 1, 1], L=[1, 4, 9], Delta0=1, epsilon=0.1)
    >>> r.status, [round(float(p), 3) for p in r.inclusion]
    ('optimal', [0.333, 0.667, 1.0])
    """
    thm = _theorem(theorem)
    st = thm.statement(statement)
    if st.target is None:
        raise ValueError(f"statement {st.name!r} of {thm.name} has no accuracy target, so no K(epsilon); "
                         f"choose one of: {', '.join(n for n, s in thm.statements.items() if s.target is not None)}")
    if family not in ("rpt", "independent"):
        raise ValueError(f"a theorem objective is optimised over the families rpt and independent; got {family!r}")
    if Delta0 is None or epsilon is None:
        raise ValueError(f"the objective of theorem {thm.name} needs Delta0 and epsilon (K(epsilon) is computed "
                         "from the theorem itself)")
    starts = check_starts(starts)
    model = cost_model(costs, forward_cost)
    b = model.nlayers
    consts = {k: v for k, v in (("L", L), ("L0", L0), ("L1", L1)) if v is not None}
    consts.update(dict(constants or {}))
    unknown = set(consts) - set(thm.per_layer)
    if unknown:
        raise ValueError(f"theorem {thm.name} does not take {', '.join(sorted(unknown))}; "
                         f"it takes: {', '.join(n for n in thm.per_layer if n != 'pi')}")
    takes_pi = "pi" in thm.per_layer

    def with_pi(pi) -> dict:
        return dict(consts, pi=np.clip(pi, PI_FLOOR, 1.0)) if takes_pi else dict(consts)

    v = thm.prepare(**with_pi(np.ones(b)), Delta0=Delta0)  # validates every constant once
    if v["b"] != b:
        raise ValueError(f"the constants have {v['b']} layers but the costs have {b}")

    try:
        thm.iterations_real(epsilon, st.name, **with_pi(np.ones(b)), Delta0=Delta0)
        closed = True
    except ValueError:
        closed = False
    cache: dict = {}

    def K_of(pi) -> float:
        key = tuple(np.round(pi, 15))
        if key not in cache:
            if not takes_pi and np.any(pi < 1):
                cache[key] = math.inf  # a theorem without pi says nothing about partial updates
                return cache[key]
            kw = dict(with_pi(pi), Delta0=Delta0)
            try:
                cache[key] = (thm.iterations_real(epsilon, st.name, **kw) if closed
                              else _iterations_interpolated(thm, st.name, epsilon, kw))
            except ValueError:  # beyond the search range: this pi is as bad as it gets
                cache[key] = math.inf
        return cache[key]

    def dist_of(z):
        if family == "rpt":
            w = np.exp(z - z.max())
            return RPT(w / w.sum())
        return Independent(np.clip(1.0 / (1.0 + np.exp(-z)), PI_FLOOR, 1.0))

    def total(dist) -> float:
        return K_of(dist.inclusion) * model.expected_cost(dist)

    full = RPT.full(b) if family == "rpt" else Independent(np.ones(b))
    uniform = RPT.uniform(b)
    full_tc, unif_tc = total(full), total(uniform)
    if thm.full_sampling_only:
        best, msg, status = full, f"theorem {thm.name} covers full updates only: pi = 1 is the one feasible point", \
            "optimal"
    else:
        from scipy.optimize import minimize

        rng = np.random.default_rng(seed)
        big = 30.0  # softmax/sigmoid saturate: e^-30 ~ 1e-13
        z_full = np.r_[big, np.zeros(b - 1)] if family == "rpt" else np.full(b, big)
        p_unif = np.arange(1, b + 1) / b  # independent: π_i = i/b, the inclusion of uniform index sampling
        z_unif = np.zeros(b) if family == "rpt" else np.log(p_unif / np.maximum(1.0 - p_unif, 1e-13))
        # without a closed form each K(π) is a bisection over K (~10-30 ms): fewer random starts
        n_random = max(0, (starts if closed else min(starts, MAX_STARTS_BISECTION)) - 2)
        points = [z_full, z_unif] + [rng.normal(0.0, 2.0, b) for _ in range(n_random)]
        scale = full_tc if math.isfinite(full_tc) and full_tc > 0 else 1.0
        best, best_tc = full, full_tc
        for z0 in points:
            res = minimize(lambda z: total(dist_of(z)) / scale, z0, method="Nelder-Mead",
                           options={"maxiter": (400 if closed else 80) * b, "xatol": 1e-9, "fatol": 1e-10,
                                    "adaptive": b > 3})
            d = dist_of(res.x)
            tc = total(d)
            if tc < best_tc:
                best, best_tc = d, tc
        status = "optimal_inaccurate"
        msg = (f"theorem {thm.name}, statement {st.name}: Nelder-Mead, best of {len(points)} starts (seed {seed}); "
               f"K(pi) from the theorem's {'closed form' if closed else 'bound by bisection'}")
        if thm.solver_objective is not None:
            obj, ost = thm.solver_objective
            if ost == st.name:
                ref = optimal_sampling(L, costs if not hasattr(costs, "nlayers") else model, family=family,
                                       objective=obj, L0=L0, L1=L1, Delta0=Delta0, epsilon=epsilon,
                                       forward_cost=forward_cost if not hasattr(costs, "nlayers") else None)
                rel = (best_tc - ref.total_cost) / ref.total_cost
                msg += f"; the closed form ({obj}) gives {ref.total_cost:.6g}, numeric/closed form - 1 = {rel:.2g}"
                if abs(rel) <= AGREEMENT_RTOL and ref.status == "optimal":
                    status = "optimal"
    K = K_of(best.inclusion)
    c = model.expected_cost(best)
    tc = K * c
    return SamplingResult(
        family=family,
        objective=f"theorem:{thm.name}",
        method="theorem-numeric",
        status=status,
        message=msg,
        distribution=best,
        inclusion=np.asarray(best.inclusion, dtype=float),
        start_probs=np.asarray(best.start_probs, dtype=float) if family == "rpt" else None,
        lowest_probs=None,
        include_probs=None,
        sets=None,
        set_probs=None,
        iterations=float(K),
        expected_cost=float(c),
        total_cost=float(tc),
        full_total_cost=float(full_tc),
        uniform_total_cost=float(unif_tc),
        speedup_vs_full=float(full_tc / tc) if tc > 0 else math.nan,
        speedup_vs_uniform=float(unif_tc / tc) if tc > 0 else math.nan,
        full_is_optimal=bool(full_tc <= tc * (1 + AGREEMENT_RTOL)),
        residuals={"primal_infeasibility": None, "dual_infeasibility": None, "stationarity": None,
                   "complementarity": None, "duality_gap": None},
        iterations_unit="iterations",
    )
