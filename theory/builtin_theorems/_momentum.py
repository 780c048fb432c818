"""The shared construction of T3 and T4 (momentum, constant radii, optional LMO inexactness)."""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from .. import symbols as s
from ..assumptions import (
    IndependentSampling,
    LayerwiseSmoothness,
    StochasticGradients,
)
from ..statements import _AVG, _G, Statement
from ..theorem import Theorem
from ._common import BETA, D0, DEL, EPS, ETA, K_, PI, RHO, SIG, G, L, _sum


class _MomentumLMO(Theorem):
    """Shared construction of T3 (exact LMO) and T4 (inexact LMO, ``δ_i``)."""

    inexact = False
    parameters = ("eta", "beta")
    step_kind = "constant-radius"
    exact_gradients = False

    @functools.lru_cache(maxsize=None)  # noqa: B019 - two module-level instances only
    def _sums(self):
        d = DEL if self.inexact else sp.Integer(0)
        S2 = _sum((1 + d) ** 2 * L / PI) if self.inexact else _sum(L / PI)
        S1 = _sum((1 + d) * L / PI) if self.inexact else _sum(L / PI)
        R = _sum(RHO * SIG)
        Rp = _sum(RHO * SIG / PI)
        return S2, S1, R, Rp

    def _C(self, beta):
        S2, S1, _, _ = self._sums()
        return S2 / 2 + 2 * S1 * (1 - beta) / beta

    def _build(self):
        S2, S1, R, Rp = self._sums()
        weighted_rhs = (
            D0 / (K_ * ETA)
            + ETA / 2 * S2
            + 2 * ETA * (1 - BETA) / BETA * S1
            + 2 * sp.sqrt(BETA / (2 - BETA)) * R
            + 2 * (1 - BETA) / (K_ * BETA) * Rp
        )
        stmts = []
        if self.inexact:
            stmts.append(
                Statement(
                    "weighted",
                    rf"{_AVG}\sum_{{i=1}}^{{b}} (1 - \delta_i) {_G}",
                    "(1-delta)-weighted dual gradient norms, averaged over the iterations",
                    weighted_rhs,
                    term=(1 - DEL) * G,
                )
            )
            rate_rhs = weighted_rhs / (1 - s.layer_max(DEL))
        else:
            rate_rhs = weighted_rhs
        stmts.append(
            Statement(
                "rate",
                rf"{_AVG}\sum_{{i=1}}^{{b}} {_G}",
                "dual gradient norms, averaged over the iterations",
                rate_rhs,
                target=EPS,
                term=G,
            )
        )
        return {
            "statements": stmts,
            "step": {"eta": ETA, "beta": BETA, "radius": ETA / PI},
            "optimal": {"eta": sp.sqrt(D0 / (K_ * self._C(BETA)))},
            "iterations": None,
        }

    def _rules(self, fixed):
        _, S1, R, Rp = self._sums()
        rules = {}
        if "eta" in fixed and "beta" not in fixed:
            # With eta fixed and w = 2/beta - 1 >= 1 the bound is const + A(w - 1)/2 + 2R w^(-1/2),
            # A = 2 eta S1 + 2R'/K (A(1/beta - 1) = A(w - 1)/2): convex in w, with derivative
            # A/2 - R w^(-3/2), so its minimiser over [1, inf) is w = max(1, (2R/A)^(2/3)), i.e.
            # beta = min(1, 2/(1 + (2R/A)^(2/3))). (Piecewise rather than Min keeps it defined at
            # R = 0, where beta = 1.)
            A = 2 * ETA * S1 + 2 * Rp / K_
            rules["beta"] = sp.Piecewise(
                (1, A >= 2 * R), (2 / (1 + (2 * R / A) ** sp.Rational(2, 3)), True)
            )
        if "eta" not in fixed:
            # eta*(beta): the exact minimiser over eta for a given beta (the bound is convex in eta)
            rules["eta"] = sp.sqrt(D0 / (K_ * self._C(BETA)))
        return rules

    # Bisection steps for the joint (eta, beta) minimiser: each halves a bracket of at most ~700
    # in log(w) (or of t in (0, -d/2]), so 90 steps reach machine precision with room to spare.
    BISECTION_STEPS = 90

    def _choose_numeric(self, K, v, params, fixed):
        """With neither eta nor beta fixed: the exact joint minimiser (docs/theory.md §T3).

        With eta = eta*(beta) and w = 2/beta - 1 >= 1 (so 1/beta = (w + 1)/2 and
        beta/(2 - beta) = 1/w) the bound is
        ``h(w) = 2p sqrt(d + S1 w) + 2R w^(-1/2) + q(w - 1)/2`` (p = sqrt(Delta0/K),
        q = 2R'/K, d = S2/2 - S1 < 0 because delta_i < 1, and d + S1 w >= S2/2 > 0), and
        ``h'(w)`` has the sign of ``G(w) = w^(3/2) (a/sqrt(d + S1 w) + q/2) - R`` (a = p S1).
        G' has the sign of ``psi(t) = a(t + d/2) + (3/4) q t^(3/2)`` (t = d + S1 w), which
        increases from ``a d/2 < 0`` at t = 0 to ``>= 0`` at t = -d/2: G decreases up to
        ``w* = max(1, (t* - d)/S1)`` (psi(t*) = 0) and increases after, to infinity. So h has at
        most one interior local minimum, the largest root of G (present iff G(w*) < 0), and the
        minimiser over beta in (0, 1] is beta = 1 or beta = 2/(root + 1), whichever bound is
        smaller. t* and the root are found by bisection to machine precision, for every K at once.
        """
        if fixed:
            return params
        K = np.asarray(K, dtype=float)
        Kf = K.reshape(-1)
        S2, S1, R, Rp = (
            float(self._fn(("sum", j), e)(*self._args(v, 1.0, {})))
            for j, e in enumerate(self._sums())
        )
        d = S2 / 2 - S1
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            a = np.sqrt(v["Delta0"] / Kf) * S1
            q = 2 * Rp / Kf

            def G(w):
                return w**1.5 * (a / np.sqrt(d + S1 * w) + q / 2) - R

            # t* solves a(t + d/2) + 0.75 q t^(3/2) = 0 on (0, -d/2] (increasing in t)
            lo, hi = np.zeros_like(Kf), np.full_like(Kf, -d / 2)
            for _ in range(self.BISECTION_STEPS):
                mid = (lo + hi) / 2
                neg = a * (mid + d / 2) + 0.75 * q * mid**1.5 < 0
                lo, hi = np.where(neg, mid, lo), np.where(neg, hi, mid)
            w_star = np.maximum(1.0, (hi - d) / S1)
            interior = G(w_star) < 0
            # largest root of G on [w*, 1e300] (G is increasing there; G(1e300) > 0)
            llo, lhi = np.log(w_star), np.full_like(Kf, np.log(1e300))
            for _ in range(self.BISECTION_STEPS):
                mid = (llo + lhi) / 2
                neg = G(np.exp(mid)) < 0
                llo, lhi = np.where(neg, mid, llo), np.where(neg, lhi, mid)
            b_root = np.where(interior, 2 / (np.exp(lhi) + 1), 1.0)
        st = self.statement()
        rhs = self._fn(("rhs", st.name), st.rhs)

        def bound_at(beta):
            pr = self._apply_rules(Kf, v, {"beta": beta}, frozenset({"beta"}))
            return np.asarray(rhs(*self._args(v, Kf, pr)), dtype=float)

        ones = np.ones_like(Kf)
        beta = np.where(bound_at(b_root) < bound_at(ones), b_root, ones)
        params = dict(params)
        params["beta"] = beta.reshape(K.shape) if K.ndim else float(beta[0])
        return params

    def _closed_form(self, fixed, values, statement):
        if fixed or np.any(values["sigma"] > 0) or statement != self.rate:
            return None
        # no noise: the rule takes beta = 1 and the bound is sqrt(2 Delta0 S2/K)/(1 - max delta)
        S2, _, _, _ = self._sums()
        denom = (1 - s.layer_max(DEL)) ** 2 if self.inexact else 1
        return 2 * D0 * S2 / (EPS**2 * denom)

    def _leading(self, values, statement):
        """With noise there is no closed form, but ``K(ε)`` has an asymptote (docs/theory.md,
        section T3, "Iterations as ε → 0"): as ``β → 0`` the tuned bound is
        ``2 sqrt(2Δ0 S₁/(Kβ)) + sqrt(2β) R`` up to terms of relative order ``β`` and
        ``K^{−1/4}``; its minimum over ``β`` is ``4 (Δ0 S₁ R²/K)^{1/4}``, so
        ``K(ε) ≈ 256 Δ0 S₁ R² / (ε (1 − max_i δ_i))⁴`` — the ``(1 − max δ)`` for T4's rate only."""
        if statement != self.rate or not np.any(values["sigma"] > 0):
            return super()._leading(values, statement)
        _, S1, R, _ = self._sums()
        denom = (1 - s.layer_max(DEL)) ** 4 if self.inexact else 1
        return 256 * D0 * S1 * R**2 / (EPS**4 * denom), False

    def assumptions_for(self, **constants):
        v = self.prepare(**constants)
        return (
            LayerwiseSmoothness(tuple(v["L"]), form="lipschitz"),
            StochasticGradients(tuple(v["sigma"]), tuple(v["rho"])),
            IndependentSampling(tuple(v["pi"])),
        )


