"""T4: Drop-Muon with an inexact LMO and constant radii."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from ..assumptions import (
    IndependentSampling,
    LayerwiseSmoothness,
)
from ..statements import TightInstance
from ._momentum import _MomentumLMO


class InexactConstantRadius(_MomentumLMO):
    r"""T4 — Drop-Muon with an inexact LMO (``‖D̃ − LMO_t(M)‖ ≤ δ_i t``), constant radii ``η/π_i``.

    **Setting.** As T1′ (A1 descent form, A4, exact gradients, ``β = 1``) by default; with
    ``beta < 1`` or ``sigma > 0`` as T3 (A1 Lipschitz form, A3). Each layer's computed direction
    satisfies ``‖D̃_i − LMO_{t_i}(M_i)‖_(i) ≤ δ_i t_i`` with ``0 ≤ δ_i < 1`` (the model of
    arXiv 2510.19933).

    **Algorithm.** As T3 with ``D̃_i`` in place of ``LMO_{t_i}(M_i)``.

    **Statement** (upper), with ``S₂ = Σ(1+δ_i)²L_i/π_i``, ``S₁ = Σ(1+δ_i)L_i/π_i``::

        weighted: (1/K) Σ_k E Σ_i (1−δ_i)‖∇_i f(X^k)‖_*  ≤  B
        rate:     (1/K) Σ_k E Σ_i ‖∇_i f(X^k)‖_*          ≤  B / (1 − max_i δ_i)
        B = Δ0/(Kη) + (η/2) S₂ + 2η(1−β)/β · S₁ + 2 sqrt(β/(2−β)) R + 2(1−β)/(Kβ) · R′

    With ``β = 1, σ = 0``: ``η*(δ) = sqrt(2Δ0/(K S₂))``, i.e. ``η*(0)/(1+δ)`` for a common ``δ``
    — lower precision needs a smaller step; ``δ = 0`` gives T1′ (and T3 in general).

    **Source.** Derived in this project; proof in ``docs/theory.md``, section T4.

    **Example.**

    >>> inexact_constant_radius.iterations(0.1, L=[1, 4, 2], pi=[0.5, 1, 1], delta=[0.3] * 3, Delta0=10)
    55184
    """

    name = "inexact-constant-radius"
    label = "T4"
    title = "inexact LMO (delta_i), constant radii eta/pi_i"
    algorithm = "as T3 (or T1' when beta = 1, sigma = 0) with an inexact LMO direction"
    source = "derived in this project (inexact-LMO model of arXiv 2510.19933); proof in docs/theory.md, section T4"
    step_rule_text = (
        "t_i = eta/pi_i; eta = sqrt(Delta0/(K C(beta))) with C = S2/2 + 2 S1 (1-beta)/beta; "
        "beta minimises the bound (1 without noise); either may be given"
    )
    defaults = MappingProxyType({"pi": 1.0, "sigma": 0.0, "rho": 1.0, "delta": 0.0})
    inexact = True
    exact_lmo = False
    proof = "docs/theory.md, section T4 — inexact LMO"
    tight_instances = (
        TightInstance(
            "the shrinking LMO (1−δ)·LMO on f = (L/2)x² from x0 = K(1−δ)η, full sampling (δ = 0.3, "
            "K = 400, η = 0.01): ratio (1−δ)²(K+1)/(K(1−δ)² + (1+δ)²), asymptotically tight",
            "rate", 400,
            {"kind": "separable-quadratic", "curvature": [1.0], "shapes": [[1]], "norms": "frobenius",
             "x0": [[400 * 0.7 * 0.01]], "seed": 0},
            {"eta": 0.01, "beta": 1.0, "lmo": {"kind": "perturbed", "mode": "shrink", "delta": 0.3}},
            ratio=0.7**2 * 401 / (400 * 0.7**2 + 1.3**2),
        ),
    )

    def needs_lipschitz(self, *, stochastic: bool, momentum: bool) -> bool:
        """With noise or momentum (``β < 1``) the proof is T3's and needs A1 in Lipschitz form."""
        return stochastic or momentum

    def assumptions_for(self, **constants):
        v = self.prepare(**constants)
        deterministic = not np.any(v["sigma"] > 0) and v.get("beta", 1.0) == 1.0
        if deterministic:
            return (LayerwiseSmoothness(tuple(v["L"])), IndependentSampling(tuple(v["pi"])))
        return super().assumptions_for(**constants)



inexact_constant_radius = InexactConstantRadius()
