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
from ..bounds import _AVG, _G, Statement, Theorem
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
            + 2 * sp.sqrt(BETA) * R
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
            # with eta fixed the bound is const + A/beta + 2R sqrt(beta), A = 2 eta S1 + 2R'/K:
            # one stationary point beta = (A/R)^(2/3), the global minimiser on (0, inf)
            # (Piecewise rather than Min keeps it defined at R = 0, where beta = 1)
            A = 2 * ETA * S1 + 2 * Rp / K_
            rules["beta"] = sp.Piecewise((1, A >= R), ((A / R) ** sp.Rational(2, 3), True))
        if "eta" not in fixed:
            # eta*(beta): the exact minimiser over eta for a given beta (the bound is convex in eta)
            rules["eta"] = sp.sqrt(D0 / (K_ * self._C(BETA)))
        return rules

    # Bisection steps for the joint (eta, beta) minimiser: each halves a bracket of at most ~700
    # in log(u) (or of t in (0, -c/2]), so 90 steps reach machine precision with room to spare.
    BISECTION_STEPS = 90

    def _choose_numeric(self, K, v, params, fixed):
        """With neither eta nor beta fixed: the exact joint minimiser (docs/theory.md §T3).

        With eta = eta*(beta) and u = 1/beta >= 1 the bound is
        ``h(u) = 2p sqrt(c + 2 S1 u) + 2R u^(-1/2) + 2R'(u - 1)/K`` (p = sqrt(Delta0/K),
        c = S2/2 - 2 S1 < 0), and ``h'(u)`` has the sign of
        ``G(u) = 2p S1 u^(3/2)/sqrt(c + 2 S1 u) + q u^(3/2) - R`` (q = 2R'/K). G decreases then
        increases (its derivative changes sign once, at t* = c + 2 S1 u*), so h has at most one
        interior local minimum: the largest root of G. The minimiser is beta = 1 or that root.
        """
        if fixed:
            return params
        K = np.asarray(K, dtype=float)
        Kf = K.reshape(-1)
        S2, S1, R, Rp = (
            float(self._fn(("sum", j), e)(*self._args(v, 1.0, {})))
            for j, e in enumerate(self._sums())
        )
        c = S2 / 2 - 2 * S1
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            p = np.sqrt(v["Delta0"] / Kf)
            q = 2 * Rp / Kf

            def G(u):
                u32 = u**1.5
                return 2 * p * S1 * u32 / np.sqrt(c + 2 * S1 * u) + q * u32 - R

            # t* solves 2p S1 (t + c/2) + 1.5 q t^(3/2) = 0 on (0, -c/2] (increasing in t)
            lo, hi = np.zeros_like(Kf), np.full_like(Kf, -c / 2)
            for _ in range(self.BISECTION_STEPS):
                mid = (lo + hi) / 2
                neg = 2 * p * S1 * (mid + c / 2) + 1.5 * q * mid**1.5 < 0
                lo, hi = np.where(neg, mid, lo), np.where(neg, hi, mid)
            u_star = np.maximum(1.0, (hi - c) / (2 * S1))
            interior = G(u_star) < 0
            # largest root of G on [u*, 1e300] (G is increasing there; G(1e300) > 0)
            llo, lhi = np.log(u_star), np.full_like(Kf, np.log(1e300))
            for _ in range(self.BISECTION_STEPS):
                mid = (llo + lhi) / 2
                neg = G(np.exp(mid)) < 0
                llo, lhi = np.where(neg, mid, llo), np.where(neg, lhi, mid)
            b_root = np.where(interior, np.exp(-lhi), 1.0)
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

    def assumptions_for(self, **constants):
        v = self.prepare(**constants)
        return (
            LayerwiseSmoothness(tuple(v["L"]), form="lipschitz"),
            StochasticGradients(tuple(v["sigma"]), tuple(v["rho"])),
            IndependentSampling(tuple(v["pi"])),
        )


