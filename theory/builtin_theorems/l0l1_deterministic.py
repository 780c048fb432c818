"""T2: deterministic Drop-Muon with Gluon's adaptive radius under layer-wise (L0,L1)-smoothness, and Gluon's Theorem 1 for comparison."""

from __future__ import annotations

from types import MappingProxyType

import sympy as sp

from .. import symbols as s
from ..assumptions import (
    IndependentSampling,
    LayerwiseL0L1Smoothness,
)
from ..statements import _AVG, _G, Statement, TightInstance
from ..theorem import Theorem
from ._common import D0, EPS, K_, L0, L1, PI, G, _sum


class L0L1Deterministic(Theorem):
    r"""T2 — deterministic Drop-Muon with Gluon's adaptive radius under layer-wise (L0,L1)-smoothness.

    **Setting.** A2 with ``L0_i ≥ 0``, ``L1_i > 0``; A4 with ``π_i``; exact gradients; ``β = 1``.

    **Algorithm.** For ``i ∈ S^k``: ``X_i ← X_i + LMO_{t_i}(g_i)`` with
    ``t_i = ‖g_i‖_*/(L0_i + L1_i ‖g_i‖_*)``.

    **Statement** (upper), with ``A(π) = Σ_i π_i L0_i/(L1_i)²`` and ``Q = 2Δ0/K``::

        weighted:   (1/K) Σ_k E Σ_i π_i ‖g_i^k‖_*²/(L0_i + L1_i‖g_i^k‖_*)  ≤  2Δ0/K
        rate:       (1/K) Σ_k E Σ_i (π_i/L1_i) ‖g_i^k‖_*  ≤  (Q + sqrt(Q² + 4 Q A(π)))/2
        unweighted: (1/K) Σ_k E Σ_i (1/L1_i) ‖g_i^k‖_*    ≤  (QW + sqrt(Q²W² + 4 Q A′(π)))/2

    so ``K(ε) = ⌈2Δ0/ε + 2Δ0 A(π)/ε²⌉``. With ``π ≡ 1`` this is exactly Gluon's Theorem 1
    (:func:`gluon_theorem1_iterations`, after Gluon's renormalisation of the weights). The rate
    weights layer ``i`` by ``π_i``, so rarely updated layers count less; the ``unweighted``
    statement, with ``W = max_i 1/π_i`` and ``A′(π) = Σ_i L0_i/(π_i L1_i²)``, needs
    ``K = ⌈2Δ0 W/ε + 2Δ0 A′(π)/ε²⌉`` and is the one to compare distributions with.

    **Source.** Derived in this project; proof in ``docs/theory.md``, section T2; the reduction to
    Gluon (arXiv 2505.13416, Theorem 1) is checked symbolically in the tests.

    **Example.**

    >>> l0l1_deterministic.iterations(0.1, L0=[0, 0], L1=[1, 2], Delta0=10)
    200
    """

    name = "l0l1-deterministic"
    label = "T2"
    title = "deterministic, layer-wise (L0,L1)-smoothness, Gluon's adaptive radius"
    algorithm = "X_i <- X_i + LMO_{t_i}(g_i), t_i = ||g_i||_*/(L0_i + L1_i ||g_i||_*), for i in S^k"
    source = "derived in this project; proof in docs/theory.md, section T2"
    step_rule_text = "t_i = ||g_i||_* / (L0_i + L1_i ||g_i||_*) (adaptive; at most 1/L1_i)"
    defaults = MappingProxyType({"pi": 1.0})
    step_kind = "adaptive-radius"
    proof = "docs/theory.md, section T2 — deterministic, layer-wise (L0,L1)-smoothness, Gluon's adaptive radius"
    solver_objective = ("l0l1", "unweighted")
    tight_instances = (
        TightInstance(
            "f = (L0/2)x² with L1 = 1e-4, x0 = 1, K = 1: ratio 1/(1 + L1 x0)",
            "weighted", 1,
            {"kind": "separable-quadratic", "curvature": [5.0], "shapes": [[1]], "norms": "frobenius",
             "x0": [[1.0]], "seed": 0},
            {"l1": [1e-4]},
            ratio=1 / (1 + 1e-4),
        ),
    )

    @property
    def _A(self):
        return _sum(PI * L0 / L1**2)

    def _build(self):
        Q = 2 * D0 / K_
        weighted = Statement(
            "weighted",
            rf"{_AVG}\sum_{{i=1}}^{{b}} \frac{{\pi_i {_G}^2}}{{L^{{0}}_i + L^{{1}}_i {_G}}}",
            "pi-weighted (L0,L1) decrease measure, averaged over the iterations",
            2 * D0 / K_,
            term=PI * G**2 / (L0 + L1 * G),
        )
        rate = Statement(
            "rate",
            rf"{_AVG}\sum_{{i=1}}^{{b}} \frac{{\pi_i}}{{L^{{1}}_i}} {_G}",
            "pi/L1-weighted dual gradient norms, averaged over the iterations",
            (Q + sp.sqrt(Q**2 + 4 * Q * self._A)) / 2,
            target=EPS,
            term=PI / L1 * G,
        )
        # pi-free: Cauchy-Schwarz with weights 1/pi_i (docs/theory.md §T2), W = max_i 1/pi_i
        W = s.layer_max(1 / PI)
        Ap = _sum(L0 / (PI * L1**2))
        unweighted = Statement(
            "unweighted",
            rf"{_AVG}\sum_{{i=1}}^{{b}} \frac{{1}}{{L^{{1}}_i}} {_G}",
            "1/L1-weighted dual gradient norms (no pi), averaged over the iterations",
            (Q * W + sp.sqrt(Q**2 * W**2 + 4 * Q * Ap)) / 2,
            target=EPS,
            term=G / L1,
        )
        return {
            "statements": [weighted, rate, unweighted],
            "step": {"radius_max": 1 / L1},
            "optimal": None,
            "iterations": {
                "rate": 2 * D0 / EPS + 2 * D0 * self._A / EPS**2,
                "unweighted": 2 * D0 * W / EPS + 2 * D0 * Ap / EPS**2,
            },
        }

    def assumptions_for(self, **constants):
        v = self.prepare(**constants)
        return (
            LayerwiseL0L1Smoothness(tuple(v["L0"]), tuple(v["L1"])),
            IndependentSampling(tuple(v["pi"])),
        )



def gluon_theorem1_iterations() -> sp.Expr:
    r"""Gluon's Theorem 1 iteration count **[Gluon, arXiv 2505.13416]**, the check for T2.

    With ``m = (1/b) Σ_j 1/L1_j``, Gluon guarantees
    ``min_k Σ_i ((1/L1_i)/m) ‖∇_i f(X^k)‖_* ≤ ε`` once
    ``K ≥ 2Δ0 Σ_i (L0_i/(L1_i)²)/(ε² m²) + 2Δ0/(ε m)`` (every layer updated every step).

    For one layer it is the classical (L0,L1) count ``2Δ0 L1/ε + 2Δ0 L0/ε²``:

    >>> print(gluon_theorem1_iterations().subs(s.b, 1).doit())
    2*Delta_0*L1[1]/epsilon + 2*Delta_0*L0[1]/epsilon**2
    """
    m = _sum(1 / L1) / s.b
    return 2 * D0 * _sum(L0 / L1**2) / (EPS**2 * m**2) + 2 * D0 / (EPS * m)



l0l1_deterministic = L0L1Deterministic()
