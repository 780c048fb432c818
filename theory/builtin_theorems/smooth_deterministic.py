"""T1: deterministic Drop-Muon with sharp steps 1/L_i under layer-wise smoothness."""

from __future__ import annotations

from types import MappingProxyType


from .. import symbols as s
from ..assumptions import (
    IndependentSampling,
    LayerwiseSmoothness,
)
from ..statements import _AVG, _G, Statement, TightInstance
from ..theorem import Theorem
from ._common import D0, EPS, K_, PI, G, L


class SmoothDeterministic(Theorem):
    r"""T1 — deterministic Drop-Muon with sharp steps ``γ_i = 1/L_i`` under layer-wise smoothness.

    **Setting.** A1 (descent form) with constants ``L_i``; A4 with inclusion probabilities
    ``π_i``; exact gradients; ``β = 1`` (no momentum).

    **Algorithm.** Draw ``S^k``; for ``i ∈ S^k`` set ``X_i ← X_i − (1/L_i) (∇_i f)^♯``, i.e. an LMO
    step of radius ``t_i = ‖∇_i f‖_*/L_i``; other layers stay frozen.

    **Statement** (upper; the weighted statement is attained with equality on
    ``f = Σ_i (L_i/2)‖X_i‖_F²``, full sampling, ``K = 1``)::

        weighted: (1/K) Σ_k E Σ_i (π_i/L_i) ‖∇_i f(X^k)‖_*²  ≤  2Δ0/K
        rate:     (1/K) Σ_k E Σ_i ‖∇_i f(X^k)‖_*²            ≤  2Δ0 max_i(L_i/π_i)/K

    so ``K(ε) = ⌈2Δ0 max_i(L_i/π_i)/ε²⌉`` iterations reach ``ε²``.

    **Source.** Derived in this project (proof in ``docs/theory.md``, section T1), not quoted from the paper.

    **Example.**

    >>> smooth_deterministic.iterations(0.1, L=[1, 4, 2], pi=[0.5, 1, 1], Delta0=10)
    8000
    >>> smooth_deterministic.evaluate(8000, L=[1, 4, 2], pi=[0.5, 1, 1], Delta0=10).value
    0.01
    """

    name = "smooth-deterministic"
    label = "T1"
    title = "deterministic, layer-wise smoothness, sharp steps 1/L_i"
    algorithm = "X_i <- X_i - (1/L_i) grad_i f(X)^sharp for i in S^k; beta = 1"
    source = "derived in this project; proof in docs/theory.md, section T1"
    step_rule_text = "gamma_i = 1/L_i (sharp step), i.e. radius t_i = ||grad_i f||_* / L_i"
    step_kind = "sharp"
    proof = "docs/theory.md, section T1 — deterministic, sharp steps `1/L_i`"
    solver_objective = ("max", "rate")
    tight_instances = (
        TightInstance(
            "f = Σ_i (L_i/2)‖X_i‖_F² (Frobenius), full sampling, K = 1: the step lands on the minimiser",
            "weighted", 1,
            {"kind": "separable-quadratic", "curvature": [1.0, 4.0, 2.0], "shapes": [[3, 2], [2, 2], [4, 1]],
             "norms": "frobenius", "seed": 1},
        ),
        TightInstance(
            "as above with equal L_i, where the rate statement is tight too",
            "rate", 1,
            {"kind": "separable-quadratic", "curvature": [2.0, 2.0], "shapes": [[3, 2], [2, 2]],
             "norms": "frobenius", "seed": 2},
        ),
    )
    defaults = MappingProxyType({"pi": 1.0})

    def _build(self):
        weighted = Statement(
            "weighted",
            rf"{_AVG}\sum_{{i=1}}^{{b}} \frac{{\pi_i}}{{L_i}} {_G}^2",
            "pi/L-weighted squared dual gradient norms, averaged over the iterations",
            2 * D0 / K_,
            term=PI / L * G**2,
        )
        rate = Statement(
            "rate",
            rf"{_AVG}\sum_{{i=1}}^{{b}} {_G}^2",
            "squared dual gradient norms, averaged over the iterations",
            2 * D0 * s.layer_max(L / PI) / K_,
            target=EPS**2,
            term=G**2,
        )
        gamma = 1 / L
        return {
            "statements": [weighted, rate],
            "step": {"gamma": gamma},
            "optimal": {"gamma": gamma},
            "iterations": 2 * D0 * s.layer_max(L / PI) / EPS**2,
        }

    def assumptions_for(self, **constants):
        v = self.prepare(**constants)
        return (LayerwiseSmoothness(tuple(v["L"])), IndependentSampling(tuple(v["pi"])))



smooth_deterministic = SmoothDeterministic()
