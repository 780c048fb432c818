r"""One layer's worst case, bracketed: ``lower ≤ W(π, K; β) ≤ upper``, both ends proved.

``W`` is the worst case of ``(1/K) Σ_{n<K} c_n ‖g_n‖²`` over 1-smooth ``f`` with
``f(x_0) − inf f ≤ 1`` for one layer of Drop-Muon on its own clock (step 1, momentum ``β`` frozen
while unsampled, warm start; ``c_n`` the binomial weights of ``π``; the reduction of
:mod:`dropmuon.verification.pep.certificate`).

* **Lower bound**: a function of the class, run through the numpy Drop-Muon. Every function tried is
  ``1``-smooth by construction (the interpolant of the SDP's 1-D worst case,
  :class:`~dropmuon.verification.pep.certificate.SmoothInterpolant`, is smooth *whatever* its data, and
  ``½x²``), and its value is computed from its own run and its own exact infimum, so it is attained.
* **Upper bound**: for ``β = 1`` the proved closed form ``2(1 − (1−π)^K)/(πK)``; for ``β < 1`` the
  banded PEP (:mod:`.banded`) with its dual multipliers checked in exact arithmetic
  (:mod:`.rigorous`). The band starts at ``w = 1`` and widens until the bracket closes
  (relative gap ``≤ rtol``) or ``w`` covers every pair.

``exact`` is reported when ``(upper − lower)/upper ≤ 1e-6``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import banded, rigorous
from .allpairs import _binomial_weights

__all__ = ["LayerBracket", "layer_bracket", "prove", "EXACT_RTOL", "BRACKET_RTOL", "quadratic_witness_value",
           "interpolant_witness_value"]

#: a bracket this tight (relative to the upper end) is reported as the exact worst case
EXACT_RTOL = 1e-6
#: the band widens until the bracket is this tight (or covers every pair)
BRACKET_RTOL = 1e-6
#: margins tried, in order, when the rounded dual's slack is not positive definite
MARGINS = (0.0, 1e-9, 1e-8, 1e-7, 1e-6)
#: the attained value is Drop-Muon's run evaluated in float64; where the proved upper end is the same
#: number (β = 1: ½x² attains the closed form) rounding can put it a few ulps above. Within this
#: relative tolerance it is reported as equal to the upper end (gap 0); beyond it, it is a bug and
#: raises.
ROUNDING_RTOL = 1e-9


def _reconcile(lower: float, upper: float, where: str) -> float:
    """``lower``, or ``upper`` when ``lower`` exceeds it by rounding only (:data:`ROUNDING_RTOL`)."""
    if lower <= upper:
        return lower
    if lower <= upper * (1 + ROUNDING_RTOL):
        return upper
    raise RuntimeError(f"internal error: a witness attains {lower!r} above the proved bound {upper!r} ({where})")


@dataclass(frozen=True)
class LayerBracket:
    """``lower ≤ W(π, K; β) ≤ upper``. ``rigorous``: the upper end is proved (closed form, or an exactly
    checked dual); ``gap = (upper − lower)/upper``; ``exact``: ``gap ≤`` :data:`EXACT_RTOL`; ``band``:
    the interpolation band used (``None`` for the closed form); ``witness``: which function attains
    ``lower`` and its data (``x``, ``g``, ``f`` on the 1-D line); ``solver_value``: the SDP's own value
    (not a bound; for reference); ``time`` in seconds; ``steps``: what was tried, in order."""

    pi: float
    K: int
    beta: float
    lower: float
    upper: float | None
    rigorous: bool
    gap: float
    exact: bool
    band: int | None
    method: str
    witness: dict
    solver_value: float | None
    time: float
    steps: tuple = field(default=(), repr=False)


def _run_own_clock(fun, K: int, beta: float, x0: float, L: float = 1.0) -> tuple[np.ndarray, float]:
    """Gradient norms ``‖g_n‖`` (``n < K``) of Drop-Muon's step on a 1-D ``L``-smooth ``fun`` on the
    layer's own clock, and ``f(x_0) − inf f``: the numpy Drop-Muon
    (:func:`~dropmuon.verification.synthetic.dropmuon.paths`, sharp step ``1/L``, momentum ``β`` with warm
    start), always sampled. With ``β = 1`` a run that reaches a zero gradient has reached a fixed point
    (``x`` no longer moves), so only the steps up to it are run and the rest are exact zeros."""
    from dropmuon.theory import Independent
    from .witness import InterpolatedProblem
    from dropmuon.verification.synthetic.dropmuon import SharpStep, paths

    prob = InterpolatedProblem(fun, 1, [L], float(x0))

    def run(k):
        # one path: the layer is always sampled on its own clock ("mc" with one run iterates;
        # "exact" recurses once per step)
        return paths(prob, SharpStep([L]), Independent([1.0]), k, beta=beta, method="mc",
                     mc_paths=1).gnorms[0, :, 0]

    if beta == 1.0 and K > 64:
        head = run(64)
        if head[-1] == 0.0:
            return np.concatenate([head, np.zeros(K - 64)]) if K <= 10**6 else _Sparse(head, K), prob.delta0
    return run(K), prob.delta0


class _Sparse:
    """Gradient norms that are exactly zero after a prefix (a fixed point reached), for huge ``K``."""

    def __init__(self, head, K):
        self.head, self.K = head, K


def _weighted_sum(pi: float, K: int, gn) -> float:
    """``Σ_{n<K} c_n ‖g_n‖²`` (binomial weights computed only where ``‖g_n‖ ≠ 0``)."""
    from scipy.stats import binom

    head = gn.head if isinstance(gn, _Sparse) else gn
    nz = np.flatnonzero(head)
    if len(nz) == 0:
        return 0.0
    n0 = int(nz[-1]) + 1
    c = binom.sf(np.arange(n0), K, pi) / pi
    return float(c @ head[:n0] ** 2)


def interpolant_witness_value(x, g, f, pi: float, K: int, beta: float) -> tuple[float, dict]:
    """``W`` attained by the 1-smooth interpolant of the data ``(x_n, g_n, f_n)`` (any data: the
    interpolant is smooth regardless), run through Drop-Muon from ``x_0``: ``Σ c_n‖g_n‖²/(K Δ)``
    with ``Δ = f(x_0) − inf f`` of the interpolant itself."""
    from .witness import SmoothInterpolant

    fun = SmoothInterpolant(x, g, f, 1.0)
    gn, delta = _run_own_clock(fun, K, beta, float(x[0]))
    val = _weighted_sum(pi, K, gn) / K / delta if delta > 0 else 0.0
    err = float(max(np.max(np.abs(fun.value(np.asarray(x)) - f)), np.max(np.abs(fun.grad(np.asarray(x)) - g))))
    return val, {"function": "THG interpolant of the SDP's 1-D worst case (h = f + x²/2 convex, 2-smooth)",
                 "x": np.asarray(x).tolist(), "g": np.asarray(g).tolist(), "f": np.asarray(f).tolist(),
                 "interpolation_error": err, "Delta0_witness": float(delta)}


def quadratic_witness_value(pi: float, K: int, beta: float) -> tuple[float, dict]:
    """``W`` attained by ``f = ½x²`` from ``x_0 = √2`` (``f(x_0) − inf f = 1``), run through
    Drop-Muon: the worst case for ``β = 1`` (its first step lands on the minimum)."""
    from .witness import SmoothInterpolant

    x0 = math.sqrt(2.0)
    fun = SmoothInterpolant([x0, 0.0], [x0, 0.0], [1.0, 0.0], 1.0)  # exactly ½x²
    gn, delta = _run_own_clock(fun, K, beta, x0)
    return _weighted_sum(pi, K, gn) / K / delta, {
        "function": "f = x²/2 (from x_0 = √2)", "x": [x0, 0.0], "g": [x0, 0.0], "f": [1.0, 0.0],
        "Delta0_witness": float(delta)}


def _closed_upper(pi: float, K: int) -> float:
    """``2(1 − (1−π)^K)/(πK)`` rounded up: computed in 120-bit interval arithmetic (``π`` the float's
    exact value), the upper end converted to the next float above."""
    from mpmath import iv, mpf

    old = iv.prec
    iv.prec = 120
    try:
        p = iv.mpf(mpf(float(pi)))
        v = 2 * (1 - (1 - p) ** K) / (p * K)
        up = rigorous._upper_endpoint(v)
    finally:
        iv.prec = old
    x = float(up)
    from fractions import Fraction

    return math.nextafter(x, math.inf) if Fraction(x) < up else x


def prove(layer, weights) -> tuple:
    """Solve the banded PEP ``layer`` and check its dual exactly, re-solving with the margins of
    :data:`MARGINS` until the check passes: ``(solution, RigorousBound, steps)`` — the last attempt's
    solution and check when none passes."""
    steps = []
    for margin in MARGINS:
        sol = banded.solve(layer, margin=margin)
        rb = rigorous.check_dual(layer, sol.lam, weights=weights)
        steps.append({"band": layer.band, "margin": margin, "solver": sol.status, "solver_value": sol.value / layer.K,
                      "rigorous": rb.rigorous, "upper": rb.upper, "reason": rb.reason, "time": sol.time})
        if rb.rigorous:
            break
    return sol, rb, steps


def layer_bracket(pi: float, K: int, *, beta: float = 1.0, rtol: float = BRACKET_RTOL, max_band: int | None = None,
                  budget_seconds: float | None = None) -> LayerBracket:
    """Bracket ``W(π, K; β)`` (module docstring). ``max_band`` caps the band (default: every pair);
    ``budget_seconds`` stops widening once the next band's estimated cost would exceed it."""
    t0 = time.perf_counter()
    steps = []
    lq, wq = quadratic_witness_value(pi, K, beta)
    if beta == 1.0:
        up = _closed_upper(pi, K)
        lq = _reconcile(lq, up, f"pi = {pi}, K = {K}, beta = 1")
        gap = (up - lq) / up
        steps.append({"method": "closed form", "upper": up, "lower": lq})
        return LayerBracket(pi, K, beta, lq, up, True, gap, gap <= EXACT_RTOL, None,
                            "closed form 2(1-(1-pi)^K)/(pi K) (proved); lower: f = x^2/2 run through Drop-Muon",
                            wq, None, time.perf_counter() - t0, tuple(steps))
    weights_q = rigorous.weight_upper_bounds(pi, K)
    c = _binomial_weights(pi, K)
    best_lower, best_wit = lq, wq
    best_upper, best_band, sval = None, None, None
    w = 1
    cap = K if max_band is None else max(1, min(max_band, K))
    while True:
        layer = banded.build(pi, K, beta, w, weights=c)
        sol, rb, tried = prove(layer, weights_q)
        steps += tried
        proved = rb if rb.rigorous else None
        lw, ww = _witness_from(sol, layer, pi, K, beta)
        if lw > best_lower:
            best_lower, best_wit = lw, ww
        steps[-1]["lower"] = lw
        if proved is not None and (best_upper is None or proved.upper < best_upper):
            best_upper, best_band, sval = proved.upper, w, sol.value / K
        done = best_upper is not None and (best_upper - best_lower) <= rtol * best_upper
        if done or w >= cap:
            break
        nxt = min(2 * w, cap)
        if budget_seconds is not None and banded.estimate_cost(K, nxt)[0] > budget_seconds - (time.perf_counter() - t0):
            break
        w = nxt
    if best_upper is not None:
        best_lower = _reconcile(best_lower, best_upper, f"pi = {pi}, K = {K}, beta = {beta}")
    gap = (best_upper - best_lower) / best_upper if best_upper else math.inf
    return LayerBracket(pi, K, beta, best_lower, best_upper, best_upper is not None, gap, gap <= EXACT_RTOL,
                        best_band, "banded PEP, dual checked in exact arithmetic; lower: witness run through Drop-Muon",
                        best_wit, sval, time.perf_counter() - t0, tuple(steps))


def _witness_from(sol, layer, pi, K, beta):
    """The interpolant witness from the banded solution's rank-one chain (step basis → points)."""
    u, _ = banded.rank_one(sol.H, layer.width)
    p = layer.beta.numerator
    d = u[:K]
    x = np.concatenate([[0.0], -np.cumsum(d)])
    g = np.array([sum(c * u[k] for k, c in layer.ghat[n].items()) / p for n in range(K + 1)])
    f = np.asarray(sol.f, dtype=float)
    if g[0] < 0:
        x, g = -x, -g
    try:
        return interpolant_witness_value(x, g, f, pi, K, beta)
    except (ValueError, FloatingPointError):
        return 0.0, {"function": "interpolant failed"}
