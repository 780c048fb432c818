r"""Optimal sampling for the exact worst case of T1: the certified iteration count ``K(π)`` from the
proved closed form, and the cheapest RPT (or independent) distribution under it against the one
under T1's bound."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dropmuon.theory import RPT, Independent
from dropmuon.theory._validation import check_layer_array, check_scalar


def certified_iterations(L, pi, epsilon: float, *, Delta0: float = 1.0, K_max: int = 10**7) -> int:
    r"""The certified ``K(π)``: the smallest ``K`` whose exact worst case of T1's rate statement is at
    most ``ε²``, i.e. ``(2Δ0/K) max_i (L_i/π_i)(1 − (1−π_i)^K) ≤ ε²`` (:func:`closed_form_factor`,
    which the SDP reproduces). The left-hand side decreases in ``K``, so bisection is exact.

    >>> certified_iterations([1.0], [1.0], 1.0), certified_iterations([1.0], [0.5], 1.0)
    (2, 4)
    """
    L = check_layer_array("L", L, "positive")
    pi = check_layer_array("pi", pi, "probability")
    eps = check_scalar("epsilon", epsilon, "positive")
    Delta0 = check_scalar("Delta0", Delta0, "positive")

    def ok(K):
        with np.errstate(divide="ignore"):
            reached = -np.expm1(K * np.log1p(-pi))  # 1 − (1−π)^K, exactly 1 at π = 1
        return 2 * Delta0 / K * np.max(L / pi * reached) <= eps**2 * (1 + 1e-12)

    if not ok(K_max):
        raise ValueError(f"the target epsilon = {epsilon!r} is not reached within K_max = {K_max} iterations")
    lo, hi = 0, 1
    while not ok(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def _phi_inverse(K: int, t: float) -> float:
    """The smallest ``π ∈ (0, 1]`` with ``(1 − (1−π)^K)/π ≤ t`` (the left side decreases from ``K``
    at ``π → 0`` to 1 at ``π = 1``); 0 when any ``π > 0`` will do, ``inf`` when none will."""
    if t >= K:
        return 0.0
    if t < 1:
        return math.inf
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        phi = 1.0 if mid >= 1.0 else -math.expm1(K * math.log1p(-mid)) / mid
        if phi <= t:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class SamplingComparison:
    """The RPT (or independent) distribution minimising total cost ``K(π)·E cost`` under T1's bound
    and under the certified worst case, and what each costs under the certified worst case.

    ``bound_*``: the bound's optimum (``K`` from T1's closed form); ``exact_*``: the optimum for
    the certified ``K(π)``; ``bound_certified_K``/``bound_certified_cost``: the bound's optimum
    evaluated under the certified worst case; ``saving`` = 1 − exact cost / that cost."""

    family: str
    epsilon: float
    bound_pi: tuple
    bound_start_probs: tuple | None
    bound_K: int
    bound_cost: float
    bound_certified_K: int
    bound_certified_cost: float
    exact_pi: tuple
    exact_start_probs: tuple | None
    exact_K: int
    exact_cost: float
    saving: float
    same_distribution: bool


def _cheapest(lower, family):
    """The cheapest inclusion vector with ``π ≥ lower`` (costs increase in every ``π_i``): ``lower``
    itself (independent) or its running maximum with ``π_b = 1`` (RPT)."""
    lo = np.minimum(np.maximum(np.asarray(lower, dtype=float), 1e-12), 1.0)
    if family == "rpt":
        lo = np.maximum.accumulate(lo)
        lo[-1] = 1.0
    return lo


def compare_optimal_sampling(L, costs, epsilon: float, *, Delta0: float = 1.0, family: str = "rpt",
                             forward_cost: float = 0.0, K_max: int = 100000) -> SamplingComparison:
    r"""Minimise total cost ``K(π)·E cost(π)`` over ``family`` (``"rpt"``: start at layer ``s``,
    update ``s..b``; ``"independent"``: Bernoulli layers) twice — with T1's ``K = ⌈2Δ0
    max_i(L_i/π_i)/ε²⌉`` and with the certified ``K(π)`` of :func:`certified_iterations` — and
    evaluate the bound's optimum under the certified worst case.

    Both are solved exactly by enumerating ``K``: for fixed ``K`` each statement is a per-layer
    threshold ``π_i ≥ τ_i(K)`` (T1: ``2Δ0L_i/(Kε²)``; certified: the inverse of the decreasing
    ``(1 − (1−π)^K)/π`` at ``Kε²/(2Δ0L_i)``), the cheapest feasible ``π`` is
    :func:`_cheapest`, and the optimum is the best ``K``.

    >>> r = compare_optimal_sampling([1.0, 4.0], [1.0, 1.0], 1.0)
    >>> r.bound_K, r.exact_K, r.exact_cost <= r.bound_certified_cost
    (8, 8, True)
    """
    from dropmuon.theory import CostModel, start_from_inclusion

    L = check_layer_array("L", L, "positive")
    eps = check_scalar("epsilon", epsilon, "positive")
    Delta0 = check_scalar("Delta0", Delta0, "positive")
    if family not in ("rpt", "independent"):
        raise ValueError(f"family must be 'rpt' or 'independent'; got family = {family!r}")
    model = CostModel.linear(costs, forward=forward_cost)
    b = len(L)

    def dist(pi):
        return RPT(start_from_inclusion(pi)) if family == "rpt" else Independent(pi)

    def ecost(pi):
        return float(model.expected_cost(dist(pi)))

    # T1: the bound at K is 2Δ0 max(L/π)/K; smallest feasible K has π ≡ 1 on the worst layer
    K1 = math.ceil(2 * Delta0 * L.max() / eps**2 * (1 - 1e-12))
    best_b = None
    for K in range(max(K1, 1), min(K_max, 4 * K1 + 10) + 1):
        pi = _cheapest(2 * Delta0 * L / (K * eps**2), family)
        if np.any(2 * Delta0 * L / (K * eps**2) > 1 + 1e-12):
            continue
        tc = K * ecost(pi)
        if best_b is None or tc < best_b[0] - 1e-12:
            best_b = (tc, K, pi)
    best_e = None
    for K in range(1, min(K_max, 4 * K1 + 10) + 1):
        t = [_phi_inverse(K, K * eps**2 / (2 * Delta0 * Li)) for Li in L]
        if not np.all(np.isfinite(t)):
            continue
        pi = _cheapest(t, family)
        tc = K * ecost(pi)
        if best_e is None or tc < best_e[0] - 1e-12:
            best_e = (tc, K, pi)
    if best_b is None or best_e is None:
        raise ValueError(f"no distribution reaches epsilon = {epsilon!r} within K_max = {K_max}")
    kb = certified_iterations(L, best_b[2], eps, Delta0=Delta0)
    cb = kb * ecost(best_b[2])

    def sp_(pi):
        return tuple(float(v) for v in start_from_inclusion(pi)) if family == "rpt" else None

    return SamplingComparison(
        family=family, epsilon=eps, bound_pi=tuple(map(float, best_b[2])), bound_start_probs=sp_(best_b[2]),
        bound_K=int(best_b[1]), bound_cost=float(best_b[0]), bound_certified_K=int(kb), bound_certified_cost=float(cb),
        exact_pi=tuple(map(float, best_e[2])), exact_start_probs=sp_(best_e[2]), exact_K=int(best_e[1]),
        exact_cost=float(best_e[0]), saving=float(1 - best_e[0] / cb),
        same_distribution=bool(np.allclose(best_b[2], best_e[2], atol=1e-9)) and b > 0)
