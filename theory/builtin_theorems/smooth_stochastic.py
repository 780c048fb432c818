"""T3: stochastic Drop-Muon with momentum and constant radii under layer-wise smoothness."""

from __future__ import annotations

from types import MappingProxyType


from ._momentum import _MomentumLMO


class SmoothStochastic(_MomentumLMO):
    r"""T3 — stochastic Drop-Muon with momentum and constant radii under layer-wise smoothness.

    **Setting.** A1 (Lipschitz form, so ``f`` is separable across layers) with ``L_i``; A3 with
    ``σ_i, ρ_i``; A4 with i.i.d. sampling and ``π_i``; momentum warm-started at a stochastic
    gradient (``M_i^{-1} = G_i(X^0)``).

    **Algorithm.** For ``i ∈ S^k``: ``M_i ← (1−β)M_i + β G_i(X^k)``,
    ``X_i ← X_i + LMO_{η/π_i}(M_i)``; other layers keep weights and momentum.

    **Statement** (upper), with ``S = Σ_i L_i/π_i``, ``R = Σ_i ρ_iσ_i``, ``R′ = Σ_i ρ_iσ_i/π_i``::

        (1/K) Σ_k E Σ_i ‖∇_i f(X^k)‖_*  ≤  Δ0/(Kη) + (η/2) S + 2η(1−β)/β · S
                                            + 2 sqrt(β/(2−β)) R + 2(1−β)/(Kβ) · R′

    The step rule takes the exact minimiser ``η*(β) = sqrt(Δ0/(K (S/2 + 2S(1−β)/β)))`` and the
    ``β`` minimising the resulting bound (exactly, by bisection on the sign of its derivative; the
    balance ``β = sqrt(2Δ0 S/K)/R`` shows the rate is ``O(K^{-1/4})``). With ``η`` given,
    ``β = min(1, 2/(1 + (2R/A)^{2/3}))``, ``A = 2ηS + 2R′/K``, the exact minimiser at that ``η``.
    With ``σ = 0`` the minimiser is ``β = 1`` and the bound is T1′. ``K(ε)`` is found by bisection
    (the tuned bound is non-increasing in ``K``).

    **Source.** Derived in this project; constants and proof in ``docs/theory.md``, section T3.

    **Example.**

    >>> smooth_stochastic.iterations(0.5, L=[1, 2], sigma=[0.1, 0.1], Delta0=1)
    384
    """

    name = "smooth-stochastic"
    label = "T3"
    title = "stochastic, layer-wise smoothness, momentum, constant radii eta/pi_i"
    algorithm = "M_i <- (1-beta) M_i + beta G_i; X_i <- X_i + LMO_{eta/pi_i}(M_i) for i in S^k"
    source = "derived in this project; proof in docs/theory.md, section T3"
    step_rule_text = (
        "t_i = eta/pi_i; eta = sqrt(Delta0/(K C(beta))) with C = S/2 + 2 S (1-beta)/beta; "
        "beta minimises the bound (1 without noise); either may be given"
    )
    defaults = MappingProxyType({"pi": 1.0, "sigma": 0.0, "rho": 1.0})
    proof = "docs/theory.md, section T3 — stochastic gradients, momentum, constant radii"
    tight_note = ("none known: the bound adds worst-case noise and momentum-error terms that no single "
                  "problem attains together; without noise it is T1′, whose instance is tight")

    def needs_lipschitz(self, *, stochastic: bool, momentum: bool) -> bool:
        """Always: the momentum and noise terms of the proof use A1 in Lipschitz form."""
        return True



smooth_stochastic = SmoothStochastic()
