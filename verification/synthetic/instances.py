r"""Ready-made instances for :func:`dropmuon.verification.synthetic.checks.check_theorem`.

An :class:`Instance` bundles everything one check needs — the theorem, a problem with certified
constants, the sampling distribution, ``K``, the step (``η``, ``β``), the direction (``lmo``), the
statements and the kind of check — and runs it with :meth:`Instance.check`. Two families:

* :func:`t4_tight_instance` — the asymptotically tight instance of T4 (``inexact-constant-radius``)
  at a fixed step ``η``: ``f(x) = (L/2)x²`` (one layer, one coordinate), full updates (``π = 1``),
  the shrinking inexact LMO ``D̃ = (1−δ)·LMO_η(g)``, started at ``x0 = K(1−δ)η``. Every step moves
  by exactly ``(1−δ)η`` towards 0, so ``|g_k| = L(1−δ)η(K−k)`` and

  .. math::

      \frac1K\sum_{k<K}|g_k| = \frac{L(1-\delta)\eta(K+1)}{2},\qquad
      \Delta_0 = \frac{L}{2}K^2(1-\delta)^2\eta^2,\qquad
      B = \frac{\Delta_0}{K\eta} + \frac{\eta}{2}(1+\delta)^2L
        = \frac{L\eta}{2}\bigl(K(1-\delta)^2 + (1+\delta)^2\bigr).

  Both statements (``weighted``: ``(1−δ)·LHS ≤ B``; ``rate``: ``LHS ≤ B/(1−δ)``) then have the
  same ratio (:func:`t4_tight_ratio`)

  .. math:: \frac{\text{observed}}{\text{bound}} = \frac{(1-\delta)^2(K+1)}{K(1-\delta)^2 + (1+\delta)^2},

  independent of ``L`` and ``η``, increasing in ``K`` (for ``δ > 0``) and tending to 1. The only
  slack is the quadratic term: the lemma charges ``‖D̃‖ ≤ (1+δ)t`` while the shrinking direction
  has length ``(1−δ)t``; its share ``(1+δ)²/(K(1−δ)² + (1+δ)²)`` of ``B`` vanishes as ``K → ∞``.

* :func:`t3_noise_dominated_instances` — checks of T3 (``smooth-stochastic``) where the noise
  terms ``2√(β/(2−β)) R + 2(1−β)R′/(Kβ)`` and the momentum term ``2η(1−β)S/β`` make up most of the bound:
  heavy Gaussian noise, partial sampling (``π < 1``), a small fixed ``β``, and two non-Gaussian
  martingale-difference noises defined here (:class:`GradientAlignedNoise`,
  :class:`SparseSpikeNoise`) with the same certified ``σ_i``. :meth:`Instance.bound_terms` splits
  the bound into its deterministic, momentum and noise parts by re-evaluating the theorem's own
  expression with ``σ = 0`` and/or ``β = 1`` at the step actually used.

>>> inst = t4_tight_instance(0.3, 10)
>>> r = inst.check()[0]
>>> round(r.ratio, 12) == round(inst.predicted_ratio, 12), r.holds
(True, True)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from dropmuon.theory import RPT, Independent, get_theorem
from dropmuon.theory._validation import check_positive_int, check_scalar

from .checks import TIGHT_MIN, check_theorem
from .dropmuon import EXACT_LMO, LMO
from .problems import Problem, SeparableQuadratic, Stochastic

#: above this K the tight T4 instance runs its single deterministic path as two identical Monte Carlo
#: runs (zero spread) instead of by exact enumeration, whose recursion is one frame per step
EXACT_MAX_K = 500

__all__ = [
    "EXACT_MAX_K",
    "Instance",
    "t4_tight_ratio",
    "t4_tight_instance",
    "t3_noise_dominated_instances",
    "GradientAlignedNoise",
    "SparseSpikeNoise",
]


@dataclass(frozen=True, eq=False)
class Instance:
    """One ready-made check: the arguments of :func:`~dropmuon.verification.synthetic.checks.check_theorem`.

    ``eta``/``beta`` are fixed when given, else chosen by the theorem's step rule (as
    ``check_theorem`` does). ``predicted_ratio`` is the closed-form observed/bound where one is
    known (``None`` otherwise).
    """

    name: str
    theorem: str
    problem: Problem
    distribution: object
    K: int
    eta: float | None = None
    beta: float | None = None
    lmo: LMO = EXACT_LMO
    statements: tuple | None = None
    kind: str = "bound"
    method: str = "auto"
    mc_paths: int = 1000
    seed: int = 0
    predicted_ratio: float | None = None
    description: str = ""

    def check_kwargs(self) -> dict:
        """The keyword arguments of ``check_theorem`` (``theorem, problem, distribution, K`` included)."""
        return dict(
            theorem=self.theorem, problem=self.problem, distribution=self.distribution, K=self.K,
            statements=None if self.statements is None else list(self.statements), eta=self.eta,
            beta=self.beta, lmo=self.lmo, kind=self.kind, method=self.method, mc_paths=self.mc_paths,
            seed=self.seed, name=self.name,
        )

    def check(self, **overrides) -> list:
        """Run ``check_theorem`` on this instance (``overrides`` replace any of its arguments)."""
        kw = self.check_kwargs()
        kw.update(overrides)
        return check_theorem(**kw)

    def constants(self) -> dict:
        """The constants the theorem is evaluated with (``Delta0, pi, L`` and, for T3/T4,
        ``sigma, rho``; for T4 with a perturbed LMO, ``delta``) — as ``check_theorem`` sets them."""
        c = self.problem.constants
        b = self.problem.nlayers
        takes = get_theorem(self.theorem).per_layer  # read from the theorem object
        out = {"Delta0": self.problem.delta0, "pi": np.asarray(self.distribution.inclusion, dtype=float),
               "L": np.asarray(c.L, dtype=float)}
        if "sigma" in takes:
            out["sigma"] = np.zeros(b) if c.sigma is None else np.asarray(c.sigma, dtype=float)
        if "rho" in takes:
            out["rho"] = np.ones(b) if c.rho is None else np.asarray(c.rho, dtype=float)
        if "delta" in takes:
            out["delta"] = np.full(b, self.lmo.delta if self.lmo.kind == "perturbed" else 0.0)
        return out

    def parameters(self) -> dict:
        """The step actually used: ``{"eta": η, "beta": β}`` (given values, else the theorem's rule)."""
        thm = get_theorem(self.theorem)
        fixed = {k: v for k, v in (("eta", self.eta), ("beta", self.beta)) if v is not None and k in thm.parameters}
        tuned = thm.evaluate(self.K, **self.constants(), **fixed).parameters
        return {k: float(tuned[k]) for k in thm.parameters}

    def bound_terms(self, statement: str = "rate") -> dict:
        r"""The bound of T3/T4 split at the step used, from the theorem's own expression.

        With ``B(σ, β)`` the bound at the step ``η`` actually used: ``deterministic = B(0, 1)``
        (``Δ0/(Kη) + ηS₂/2``, over ``1 − max δ`` for T4's ``rate``), ``momentum = B(0, β) − B(0, 1)``
        (``2η(1−β)S₁/β``), ``noise = B(σ, β) − B(0, β)`` (``2√(β/(2−β)) R + 2(1−β)R′/(Kβ)``), ``total``
        and ``share = (momentum + noise)/total``.
        """
        thm = get_theorem(self.theorem)
        if not {"sigma", "beta"} <= set(thm.per_layer) | set(thm.parameters):
            raise ValueError(f"bound_terms splits bounds with noise and momentum terms (like T3/T4); got {self.theorem!r}")
        c = self.constants()
        p = self.parameters()
        quiet = dict(c, sigma=np.zeros_like(c["sigma"]))

        def B(consts, beta):
            return thm.evaluate(self.K, statement=statement, **consts, eta=p["eta"], beta=beta).value

        total, no_noise, det = B(c, p["beta"]), B(quiet, p["beta"]), B(quiet, 1.0)
        return {"deterministic": det, "momentum": no_noise - det, "noise": total - no_noise,
                "total": total, "share": (total - det) / total, "eta": p["eta"], "beta": p["beta"]}


# -- T4: the asymptotically tight instance ------------------------------------------------------

def t4_tight_ratio(delta: float, K: int) -> float:
    r"""Observed/bound of :func:`t4_tight_instance`:
    ``(1−δ)²(K+1) / (K(1−δ)² + (1+δ)²)`` (both statements of T4).

    >>> round(t4_tight_ratio(0.3, 400), 4)
    0.9939
    >>> t4_tight_ratio(0.0, 7)
    1.0
    """
    d = check_scalar("delta", delta, "unit_open")
    K = check_positive_int("K", K)
    a, c = (1 - d) ** 2, (1 + d) ** 2
    return a * (K + 1) / (K * a + c)


def t4_tight_instance(delta: float, K: int, L: float = 1.0, eta: float = 0.1) -> Instance:
    r"""T4 at a fixed step ``η`` on ``f(x) = (L/2)x²`` (shape ``(1, 1)``, Frobenius norm, minimum 0
    at 0), full updates (``RPT.full(1)``, ``π = 1``), ``β = 1``, the shrinking inexact LMO
    ``LMO("perturbed", delta=δ, mode="shrink")`` (``D̃ = (1−δ)·LMO_η(g)``), from
    ``x0 = K(1−δ)η``: every step moves by ``(1−δ)η`` towards 0 and lands on 0 after ``K`` steps.

    ``predicted_ratio`` is :func:`t4_tight_ratio` (independent of ``L`` and ``η``); ``kind`` is
    ``"tight"`` when it reaches the suite's bar (0.99), else ``"bound"``. ``δ = 0`` is T1′'s tight
    instance (ratio 1). There is one sampling path, so the expectation is exact: enumerated for
    ``K ≤ EXACT_MAX_K`` (``method="exact"``), else run as two identical Monte Carlo runs
    (``method="mc"``, zero spread) to keep the exact enumeration's recursion shallow.
    """
    d = check_scalar("delta", delta, "unit_open")
    K = check_positive_int("K", K)
    L = check_scalar("L", L)
    eta = check_scalar("eta", eta)
    x0 = K * (1 - d) * eta
    problem = SeparableQuadratic([L], [(1, 1)], x0=[np.full((1, 1), x0)],
                                 name=f"1-D quadratic (L/2)x^2, L={L:g}, x0=K(1-delta)eta={x0:g}")
    ratio = t4_tight_ratio(d, K)
    return Instance(
        name=f"tight T4 shrink delta={d:g} 1-D quadratic eta={eta:g} K={K}",
        theorem="inexact-constant-radius", problem=problem, distribution=RPT.full(1), K=K, eta=eta,
        beta=1.0, lmo=LMO("perturbed", delta=d, mode="shrink"), statements=("weighted", "rate"),
        kind="tight" if ratio >= TIGHT_MIN else "bound", method="exact" if K <= EXACT_MAX_K else "mc",
        mc_paths=2, predicted_ratio=ratio,
        description="f = (L/2)x^2, pi = 1, shrinking LMO (1-delta)LMO, x0 = K(1-delta)eta: "
                    "ratio (1-delta)^2(K+1)/(K(1-delta)^2 + (1+delta)^2)",
    )


# -- T3: noise- and momentum-dominated instances ------------------------------------------------

def _readonly(a) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


class GradientAlignedNoise(Stochastic):
    r"""Sign-flip noise along the gradient: ``G_i = ∇_i f + σ_i u_i ∇_i f/‖∇_i f‖_F`` with
    ``u_i = ±1`` fair and independent of everything else (a fixed unit direction at ``∇_i f = 0``).

    **Constants.** ``E[ξ_i | past] = 0`` and ``‖ξ_i‖_F = σ_i`` exactly, so A3 holds with ``σ_i``
    (a martingale difference, not independent of the iterate) and ``ρ_i = κ_i``; smoothness
    constants are the base problem's. When ``σ_i > ‖∇_i f‖_F`` the stochastic gradient points
    uphill half the time — the worst case for a normalised (LMO) step, which sees only the
    direction.
    """

    def __init__(self, base: Problem, sigma):
        s = np.asarray(sigma, dtype=float)
        s = np.full(base.nlayers, float(s)) if s.ndim == 0 else s
        d = np.array([x.size for x in base.x0], dtype=float)
        super().__init__(base, s / np.sqrt(d))  # validates; the Gaussian level with the same σ_i
        self.sigma = _readonly(s)
        self.constants = dataclasses.replace(
            self.constants, sigma=self.sigma,
            derivation=base.constants.derivation + "; sigma_i = ‖ξ_i‖_F (sign-flip noise along ∇_i f), rho_i = κ_i",
        )
        self.name = f"{base.name}+aligned-noise"
        self.description = base.description + " with sign-flip noise along the gradient"

    def stochastic_grad(self, X, rng: np.random.Generator, layers=None) -> list:
        out = []
        for g, s in zip(self.grad(X, layers), self.sigma):
            if g is None:
                out.append(None)
                continue
            n = float(np.linalg.norm(g))
            unit = g / n if n > 0 else np.full(g.shape, 1.0 / math.sqrt(g.size))
            out.append(g + (s if rng.random() < 0.5 else -s) * unit)
        return out


class SparseSpikeNoise(Stochastic):
    r"""Rare large kicks: ``G_i = ∇_i f + (s_i/√p) B_i Z_i`` with ``B_i ~ Bernoulli(p)`` (one per
    layer and draw) and ``Z_i`` standard normal entries.

    **Constants.** ``E‖ξ_i‖_F² = s_i² d_i``: the same ``σ_i = s_i√d_i`` (and ``ρ_i = κ_i``) as
    :class:`~dropmuon.verification.synthetic.problems.Stochastic` with level ``s_i``, but heavy-tailed
    (kurtosis ``3/p`` per entry): most draws are exact, a fraction ``p`` is ``1/√p`` times larger.
    """

    def __init__(self, base: Problem, noise, p: float = 0.02):
        super().__init__(base, noise)
        self.p = check_scalar("p", p, "probability")
        self.constants = dataclasses.replace(
            self.constants, derivation=self.constants.derivation + f" (sparse spikes, p = {self.p:g})")
        self.name = f"{base.name}+spike-noise(p={self.p:g})"
        self.description = base.description + " with sparse heavy-tailed gradient noise"

    def stochastic_grad(self, X, rng: np.random.Generator, layers=None) -> list:
        scale = 1.0 / math.sqrt(self.p)
        return [None if g is None else g + (s * scale * rng.standard_normal(g.shape) if rng.random() < self.p else 0.0)
                for g, s in zip(self.grad(X, layers), self.noise)]


def t3_noise_dominated_instances(mc_paths: int = 400, seed: int = 0) -> list[Instance]:
    r"""Monte Carlo checks of T3 where noise and momentum make up most of the bound.

    The bound at the step used is
    ``Δ0/(Kη) + ηS/2 + 2η(1−β)S/β + 2√(β/(2−β)) R + 2(1−β)R′/(Kβ)``; in each instance the last three
    terms (momentum and noise, :meth:`Instance.bound_terms`) are well over half of it. All use
    Frobenius or spectral separable quadratics (A1 in Lipschitz form), ``b = 2``, ``K ≤ 50`` and
    ``mc_paths`` runs (2–4 s each with 400 on one AMD EPYC core):

    * ``gaussian-heavy-full``: Gaussian noise ``s = 5`` per entry, full updates, ``(η, β)`` tuned.
    * ``gaussian-spectral-rpt``: spectral norm (``ρ_i = √min(m_i,n_i)``), Gaussian ``s = 1.5``,
      uniform RPT (``π = (½, 1)``), tuned.
    * ``gaussian-small-beta``: Gaussian ``s = 1``, independent sampling ``π = (½, 1)``, fixed
      ``β = 0.05`` (``η = η*(β)``): the momentum term is the largest single term.
    * ``aligned-sign-flip``: :class:`GradientAlignedNoise` with ``σ = 3``, ``π = (½, 1)``, tuned.
    * ``sparse-spikes``: :class:`SparseSpikeNoise` with ``s = 1``, ``p = 0.02``, uniform RPT, tuned.
    """
    mc_paths = check_positive_int("mc_paths", mc_paths)
    frob = SeparableQuadratic([1.0, 3.0], [(2, 2), (3, 2)], seed=4)
    spec = SeparableQuadratic([1.0, 4.0], [(2, 3), (3, 2)], "spectral", seed=0)
    half = Independent([0.5, 1.0])
    common = dict(theorem="smooth-stochastic", statements=("rate",), method="mc", mc_paths=mc_paths, seed=seed)
    return [
        Instance(name="T3 gaussian-heavy-full", problem=Stochastic(frob, 5.0), distribution=RPT.full(2), K=50,
                 description="Gaussian noise s = 5 per entry, full updates, (eta, beta) tuned", **common),
        Instance(name="T3 gaussian-spectral-rpt", problem=Stochastic(spec, 1.5), distribution=RPT.uniform(2), K=40,
                 description="spectral norm, Gaussian s = 1.5, uniform RPT pi = (1/2, 1), tuned", **common),
        Instance(name="T3 gaussian-small-beta", problem=Stochastic(frob, 1.0), distribution=half, K=50, beta=0.05,
                 description="Gaussian s = 1, independent pi = (1/2, 1), beta = 0.05 fixed", **common),
        Instance(name="T3 aligned-sign-flip", problem=GradientAlignedNoise(frob, 3.0), distribution=half, K=50,
                 description="sign-flip noise along the gradient, sigma = 3, pi = (1/2, 1), tuned", **common),
        Instance(name="T3 sparse-spikes", problem=SparseSpikeNoise(frob, 1.0, p=0.02), distribution=RPT.uniform(2),
                 K=50, description="sparse heavy-tailed noise s = 1, p = 0.02, uniform RPT, tuned", **common),
    ]
