"""T1′: deterministic Drop-Muon with constant radii η/π_i under layer-wise smoothness."""

from __future__ import annotations

from types import MappingProxyType

import sympy as sp

from ..assumptions import (
    IndependentSampling,
    LayerwiseSmoothness,
)
from ..statements import _AVG, _G, Statement, TightInstance
from ..theorem import Theorem
from ._common import D0, EPS, ETA, K_, PI, G, L, _sum


class SmoothConstantRadius(Theorem):
    r"""T1′ — deterministic Drop-Muon with constant radii ``t_i = η/π_i`` under layer-wise smoothness.

    **Setting.** A1 (descent form) with constants ``L_i``; A4 with ``π_i``; exact gradients;
    ``β = 1``.

    **Algorithm.** For ``i ∈ S^k``: ``X_i ← X_i + LMO_{t_i}(∇_i f(X))`` with ``t_i = η/π_i``.

    **Statement** (upper)::

        (1/K) Σ_k E Σ_i ‖∇_i f(X^k)‖_*  ≤  Δ0/(Kη) + (η/2) Σ_i L_i/π_i

    minimised by ``η* = sqrt(2Δ0/(K Σ_i L_i/π_i))`` (the step rule), giving
    ``sqrt(2Δ0 Σ_i(L_i/π_i)/K)``, so ``K(ε) = ⌈2Δ0 Σ_i(L_i/π_i)/ε²⌉``.

    **Source.** Derived in this project (proof in ``docs/theory.md``, section T1′).

    **Example.**

    >>> smooth_constant_radius.iterations(0.1, L=[1, 4, 2], pi=[0.5, 1, 1], Delta0=10)
    16000
    >>> round(smooth_constant_radius.step(16000, L=[1, 4, 2], pi=[0.5, 1, 1], Delta0=10)["eta"], 6)
    0.0125
    """

    name = "smooth-constant-radius"
    label = "T1′"
    title = "deterministic, layer-wise smoothness, constant radii eta/pi_i"
    algorithm = "X_i <- X_i + LMO_{eta/pi_i}(grad_i f(X)) for i in S^k; beta = 1"
    source = "derived in this project; proof in docs/theory.md, section T1′"
    step_rule_text = "t_i = eta/pi_i with eta = sqrt(2 Delta0 / (K sum_i L_i/pi_i)) unless given"
    defaults = MappingProxyType({"pi": 1.0})
    parameters = ("eta",)
    step_kind = "constant-radius"
    proof = "docs/theory.md, section T1′ — deterministic, constant radii `η/π_i`"
    solver_objective = ("sum", "rate")
    tight_instances = (
        TightInstance(
            "f = (L/2)x² on one coordinate from x0 = Kη with radius η (η = 0.25, K = 4): every step "
            "moves by η towards 0",
            "rate", 4,
            {"kind": "separable-quadratic", "curvature": [3.0], "shapes": [[1]], "norms": "frobenius",
             "x0": [[1.0]], "seed": 0},
            {"eta": 0.25},
        ),
    )

    @property
    def _S(self):
        return _sum(L / PI)

    def _build(self):
        rate = Statement(
            "rate",
            rf"{_AVG}\sum_{{i=1}}^{{b}} {_G}",
            "dual gradient norms, averaged over the iterations",
            D0 / (K_ * ETA) + ETA / 2 * self._S,
            target=EPS,
            term=G,
        )
        eta_star = sp.sqrt(2 * D0 / (K_ * self._S))
        return {
            "statements": [rate],
            "step": {"eta": ETA, "radius": ETA / PI},
            "optimal": {"eta": eta_star},
            "iterations": 2 * D0 * self._S / EPS**2,
        }

    def _rules(self, fixed):
        return {} if "eta" in fixed else {"eta": sp.sqrt(2 * D0 / (K_ * self._S))}

    def assumptions_for(self, **constants):
        v = self.prepare(**constants)
        return (LayerwiseSmoothness(tuple(v["L"])), IndependentSampling(tuple(v["pi"])))



smooth_constant_radius = SmoothConstantRadius()
