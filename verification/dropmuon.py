"""Drop-Muon in numpy (THEORY.md §2): pure step functions and a thin loop.

A step draws a set ``S`` of layers (1-based); each sampled layer forms its momentum
``M_i ← (1−β)M_i + β G_i`` (``β`` weighs the *new* gradient; torch's ``momentum = μ`` is
``β = 1 − μ``) and moves by a (possibly inexact) LMO step ``X_i ← X_i + LMO_{t_i}(M_i)`` whose radius
``t_i`` comes from a step rule; every other layer keeps its weights **and** its momentum — the very
same array objects — and its gradient is never computed. With every layer sampled the step is the
full-network method (:func:`muon_step`), bit for bit.

:func:`paths` runs the method over every sampling outcome (exact expectations, small ``b`` and
``K``) or over Monte Carlo draws, recording the true gradients' dual norms at every iterate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from dropmuon.theory import RPT, CompactSubsets, Independent, SubsetDistribution
from dropmuon.theory._validation import check_layer_array, check_positive_int, check_scalar
from dropmuon.theory.norms import Norm, as_matrix

__all__ = [
    "beta_from_torch_momentum",
    "torch_momentum_from_beta",
    "LMO",
    "EXACT_LMO",
    "SharpStep",
    "ConstantRadius",
    "AdaptiveRadius",
    "Sampler",
    "EpochShift",
    "full_sampler",
    "uniform_sampler",
    "as_sampler",
    "State",
    "init_state",
    "dropmuon_step",
    "muon_step",
    "Paths",
    "paths",
    "MAX_EXACT_PATHS",
]

#: exact enumeration of the sampling is used up to this many paths (else Monte Carlo)
MAX_EXACT_PATHS = 20000


def beta_from_torch_momentum(mu: float) -> float:
    """``β = 1 − μ``: torch's / Muon's ``momentum = μ`` as the weight on the new gradient.

    >>> round(beta_from_torch_momentum(0.95), 12)
    0.05
    """
    mu = check_scalar("momentum", mu, "real")
    if not 0 <= mu < 1:
        raise ValueError(f"torch momentum must be in [0, 1); got momentum = {mu!r}")
    return 1.0 - mu


def torch_momentum_from_beta(beta: float) -> float:
    """``μ = 1 − β``; Scion's "momentum" is ``β`` itself.

    >>> torch_momentum_from_beta(1.0)
    0.0
    """
    return 1.0 - check_scalar("beta", beta, "probability")


# -- directions -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LMO:
    """How the direction ``LMO_t(M)`` is computed.

    ``kind="exact"``: the norm's own LMO (SVD for spectral norms). ``kind="newton-schulz"``: for
    spectral norms, ``−t·NS(M)`` (scaled as the norm dictates) with a coefficient ``preset`` and
    ``steps`` (:mod:`dropmuon.verification.newton_schulz`). ``kind="perturbed"``: the inexact-LMO model of
    T4, ``D̃ = LMO_t(M) + δ t E`` with ``‖E‖ = 1`` chosen by ``mode``: ``"shrink"`` (``E`` opposes
    the step: progress ``(1−δ)t‖M‖_*``), ``"overshoot"`` (``‖D̃‖ = (1+δ)t``) or ``"random"``.
    """

    kind: str = "exact"
    preset: str = "muon"
    steps: int = 5
    delta: float = 0.0
    mode: str = "shrink"

    def __post_init__(self):
        if self.kind not in ("exact", "newton-schulz", "perturbed"):
            raise ValueError(f"unknown LMO kind {self.kind!r}; choose exact, newton-schulz or perturbed")
        if self.kind == "perturbed":
            if self.mode not in ("shrink", "overshoot", "random"):
                raise ValueError(f"unknown perturbation mode {self.mode!r}; choose shrink, overshoot or random")
            check_scalar("delta", self.delta, "unit_open")

    def direction(self, M: np.ndarray, norm: Norm, t: float, rng: np.random.Generator | None = None) -> np.ndarray:
        """The direction for momentum ``M``, norm ``norm`` and radius ``t``."""
        if self.kind == "exact":
            return norm.lmo(M, t)
        if self.kind == "newton-schulz":
            if norm.name not in ("spectral", "scaled-spectral"):
                raise ValueError(f"Newton-Schulz approximates the spectral LMO; layer norm is {norm.name!r}")
            from .newton_schulz import newton_schulz

            if not np.any(M):
                return np.zeros_like(M)
            Q = newton_schulz(as_matrix(M), self.preset, self.steps).reshape(np.shape(M))
            # LMO_t(M) = −t U Vᵀ / s for the norm s‖·‖_op, s = the norm of any matrix of M's
            # shape with all singular values 1 (s = 1 for spectral)
            s = norm.norm(np.eye(*as_matrix(M).shape))
            return (-t / s) * Q
        D = norm.lmo(M, t)
        if not np.any(M) or self.delta == 0:
            return D
        if self.mode == "shrink":
            return (1.0 - self.delta) * D
        if self.mode == "overshoot":
            return (1.0 + self.delta) * D
        if rng is None:
            raise ValueError("the 'random' perturbation needs a random generator")
        E = rng.standard_normal(M.shape)
        return D + self.delta * t * E / norm.norm(E)


EXACT_LMO = LMO()


# -- step rules -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SharpStep:
    """T1: ``X_i ← X_i − (1/L_i) M_i^♯``, i.e. radius ``t_i = ‖M_i‖_*/L_i``."""

    L: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "L", check_layer_array("L", self.L, "positive"))

    def radius(self, i: int, dual: float) -> float:
        return dual / self.L[i]


@dataclass(frozen=True)
class ConstantRadius:
    """T1′/T3/T4: ``t_i = η/π_i``."""

    eta: float
    pi: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "eta", check_scalar("eta", self.eta))
        object.__setattr__(self, "pi", check_layer_array("pi", self.pi, "probability"))

    def radius(self, i: int, dual: float) -> float:
        return self.eta / self.pi[i]


@dataclass(frozen=True)
class AdaptiveRadius:
    """T2 (Gluon): ``t_i = ‖M_i‖_*/(L0_i + L1_i ‖M_i‖_*)`` (0 when ``M_i = 0``)."""

    L0: np.ndarray
    L1: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "L0", check_layer_array("L0", self.L0, "nonnegative"))
        object.__setattr__(self, "L1", check_layer_array("L1", self.L1, "positive"))

    def radius(self, i: int, dual: float) -> float:
        return 0.0 if dual == 0 else dual / (self.L0[i] + self.L1[i] * dual)


# -- samplers -------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Sampler:
    """An i.i.d. sampler from a distribution of :mod:`dropmuon.theory.sampling` (1-based layer sets)."""

    distribution: object

    @property
    def nlayers(self) -> int:
        return self.distribution.nlayers

    @property
    def iid(self) -> bool:
        return True

    @property
    def inclusion(self) -> np.ndarray:
        return np.asarray(self.distribution.inclusion)

    def sample(self, k: int, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(self.distribution.sample(rng))

    def outcomes(self, k: int) -> list:
        return list(self.distribution.outcomes())


@dataclass(frozen=True, eq=False)
class EpochShift:
    """A time-varying schedule: distribution ``distributions[(k // epoch_length) % n]`` at step
    ``k`` (e.g. emphasis moving between shallow and deep layers over epochs, THEORY.md §6). Not
    i.i.d., so the theorems' assumption A4 does not apply to it as a whole."""

    distributions: tuple
    epoch_length: int

    def __post_init__(self):
        if not self.distributions:
            raise ValueError("an epoch-shift schedule needs at least one distribution")
        b = {d.nlayers for d in self.distributions}
        if len(b) != 1:
            raise ValueError(f"the schedule's distributions have different numbers of layers: {sorted(b)}")
        object.__setattr__(self, "distributions", tuple(self.distributions))
        object.__setattr__(self, "epoch_length", check_positive_int("epoch_length", self.epoch_length))

    @property
    def nlayers(self) -> int:
        return self.distributions[0].nlayers

    @property
    def iid(self) -> bool:
        return len(self.distributions) == 1

    @property
    def inclusion(self) -> np.ndarray:
        """The time-averaged inclusion over one cycle."""
        return np.mean([np.asarray(d.inclusion) for d in self.distributions], axis=0)

    def _at(self, k):
        return self.distributions[(k // self.epoch_length) % len(self.distributions)]

    def sample(self, k: int, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(self._at(k).sample(rng))

    def outcomes(self, k: int) -> list:
        return list(self._at(k).outcomes())


def full_sampler(nlayers: int) -> Sampler:
    """Every layer, every step (full-network Muon)."""
    return Sampler(RPT.full(nlayers))


def uniform_sampler(nlayers: int) -> Sampler:
    """Uniform index sampling (RPT with ``p_s = 1/b``), the paper's main scheme."""
    return Sampler(RPT.uniform(nlayers))


def as_sampler(obj) -> Sampler | EpochShift:
    """Accept a sampler or a distribution from :mod:`dropmuon.theory.sampling`."""
    if isinstance(obj, (Sampler, EpochShift)):
        return obj
    if isinstance(obj, (RPT, Independent, SubsetDistribution, CompactSubsets)):
        return Sampler(obj)
    raise ValueError(f"expected a sampler or a dropmuon.theory.sampling distribution; got {obj!r}")


# -- state and steps ------------------------------------------------------------------------------

@dataclass(frozen=True)
class State:
    """Weights ``X`` and momenta ``M`` (tuples of arrays, one per layer) after ``k`` steps."""

    X: tuple
    M: tuple
    k: int = 0


def init_state(X0: Sequence[np.ndarray], M0: Sequence[np.ndarray] | None = None) -> State:
    """Initial state; ``M0=None`` starts the momenta at zero."""
    X = tuple(np.array(x, dtype=float) for x in X0)
    M = tuple(np.zeros_like(x) for x in X) if M0 is None else tuple(np.array(m, dtype=float) for m in M0)
    if len(M) != len(X) or any(m.shape != x.shape for m, x in zip(M, X)):
        raise ValueError("momenta must have the weights' shapes")
    return State(X, M, 0)


def _layer_update(x, m, g, norm, rule, i, beta, lmo, rng):
    m_new = (1.0 - beta) * m + beta * g if beta != 1.0 else np.array(g, dtype=float)
    t = rule.radius(i, norm.dual(m_new))
    return x + lmo.direction(m_new, norm, t, rng), m_new, t


def dropmuon_step(state: State, S, grads, *, rule, norms, beta: float = 1.0, lmo: LMO = EXACT_LMO,
                  rng: np.random.Generator | None = None) -> tuple[State, dict]:
    """One Drop-Muon step on the sampled set ``S`` (1-based layers). ``grads[i]`` is needed only
    for sampled layers; layers outside ``S`` keep the same weight and momentum arrays.
    Returns the new state and ``{layer: radius}``."""
    X, M = list(state.X), list(state.M)
    radii = {}
    for j in sorted(S):
        i = j - 1
        if not 0 <= i < len(X):
            raise ValueError(f"sampled layer {j} is outside 1..{len(X)}")
        if grads[i] is None:
            raise ValueError(f"layer {j} is sampled but its gradient was not given")
        X[i], M[i], radii[j] = _layer_update(X[i], M[i], grads[i], norms[i], rule, i, beta, lmo, rng)
    return State(tuple(X), tuple(M), state.k + 1), radii


def muon_step(state: State, grads, *, rule, norms, beta: float = 1.0, lmo: LMO = EXACT_LMO,
              rng: np.random.Generator | None = None) -> State:
    """The full-network method (every layer updated), written without any sampling."""
    X, M = [], []
    for i, (x, m, g, norm) in enumerate(zip(state.X, state.M, grads, norms)):
        x2, m2, _ = _layer_update(x, m, g, norm, rule, i, beta, lmo, rng)
        X.append(x2)
        M.append(m2)
    return State(tuple(X), tuple(M), state.k + 1)


# -- runs over the sampling -----------------------------------------------------------------------

@dataclass(frozen=True)
class Paths:
    """Runs of ``K`` steps: ``weights[n]`` (sum 1), ``gnorms[n, k, i]`` = ``‖∇_i f(X^k)‖_*`` for
    ``k = 0..K−1`` (true gradients), ``fvals[n, k]`` for ``k = 0..K``, ``diverged[n]``,
    ``left_region[n]`` (the iterates left the region where the problem's constants hold), the
    maximum Newton–Schulz δ met per layer, and ``method`` ("exact" or "mc")."""

    weights: np.ndarray
    gnorms: np.ndarray
    fvals: np.ndarray
    diverged: np.ndarray
    left_region: np.ndarray
    delta_max: np.ndarray
    method: str
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.weights)

    def expectation(self, per_path: np.ndarray) -> float:
        return float(np.dot(self.weights, per_path))


def count_paths(sampler, K: int) -> int:
    """The number of sampling paths of ``K`` steps (capped just above ``10**12``)."""
    n = 1
    for k in range(K):
        n *= max(1, len(sampler.outcomes(k)))
        if n > 10**12:
            break
    return n


def _finite(state: State) -> bool:
    return all(np.all(np.isfinite(x)) for x in state.X) and all(np.all(np.isfinite(m)) for m in state.M)


def paths(problem, rule, sampler, K: int, *, beta: float = 1.0, lmo: LMO = EXACT_LMO,
          stochastic: bool = False, seed: int = 0, method: str = "auto", mc_paths: int = 2000,
          max_exact: int = MAX_EXACT_PATHS, momentum_init: str = "gradient") -> Paths:
    """Run Drop-Muon for ``K`` steps over every sampling outcome (``method="exact"``: deterministic
    gradients and directions, weights = path probabilities) or over ``mc_paths`` independent Monte
    Carlo runs (``"mc"``, equal weights); ``"auto"`` enumerates when at most ``max_exact`` paths.

    Records the true gradients' dual norms ``‖∇_i f(X^k)‖_*`` at ``k = 0..K−1`` and ``f(X^k)`` at
    ``k = 0..K``. A run whose iterates become non-finite is marked ``diverged`` (its remaining
    records are ``inf``) rather than raising: divergence is a result, not an error.
    ``momentum_init="gradient"`` warm-starts the momentum at a (stochastic) gradient at ``X^0``
    (the setting of T3); ``"zero"`` starts it at zero (torch's convention).
    """
    K = check_positive_int("K", K)
    sampler = as_sampler(sampler)
    if sampler.nlayers != problem.nlayers:
        raise ValueError(
            f"the sampler has {sampler.nlayers} layers but problem {problem.name!r} has {problem.nlayers}"
        )
    if momentum_init not in ("gradient", "zero"):
        raise ValueError(f"momentum_init must be 'gradient' or 'zero'; got {momentum_init!r}")
    beta = check_scalar("beta", beta, "probability")
    random_directions = lmo.kind == "perturbed" and lmo.mode == "random"
    if method == "auto":
        deterministic = not stochastic and not random_directions
        method = "exact" if deterministic and count_paths(sampler, K) <= max_exact else "mc"
    if method not in ("exact", "mc"):
        raise ValueError(f"unknown method {method!r}; choose auto, exact or mc")
    if method == "exact" and (stochastic or random_directions):
        raise ValueError("exact enumeration needs deterministic gradients and directions; use method='mc'")
    b = problem.nlayers
    norms = problem.norms
    records = []

    def start(rng):
        X0 = problem.x0
        M0 = None
        if momentum_init == "gradient":
            M0 = problem.stochastic_grad(X0, rng) if stochastic else problem.grad(X0)
        return init_state(X0, M0)

    def observe(state):
        with np.errstate(all="ignore"):  # overflow shows up as inf and marks the run diverged
            g = problem.grad(state.X)
            gn = np.array([n.dual(gi) if np.all(np.isfinite(gi)) else np.inf for n, gi in zip(norms, g)])
            return g, gn, problem.value(state.X), problem.in_region(state.X)

    def one_step(state, S, g_true, rng, dmax):
        g = problem.stochastic_grad(state.X, rng, layers=S) if stochastic else g_true
        if lmo.kind == "newton-schulz":
            from .newton_schulz import delta

            for j in S:
                i = j - 1
                m_new = (1.0 - beta) * state.M[i] + beta * g[i]
                if np.any(m_new):
                    dmax[i] = max(dmax[i], delta(as_matrix(m_new), lmo.preset, lmo.steps))
        with np.errstate(all="ignore"):
            new, _ = dropmuon_step(state, S, g, rule=rule, norms=norms, beta=beta, lmo=lmo, rng=rng)
        return new

    def finish(prob, gn, fv, bad, region, dmax):
        if bad:  # pad the rest of the run with inf: it diverged
            gn = gn + [np.full(b, np.inf)] * (K - len(gn))
            fv = fv + [np.inf] * (K + 1 - len(fv))
        records.append((prob, np.array(gn[:K]).reshape(K, b), np.array(fv), bad, not region, dmax.copy()))

    if method == "exact":
        rng = np.random.default_rng(seed)

        def dfs(state, k, prob, gn, fv, region, dmax):
            if not _finite(state):
                return finish(prob, gn, fv, True, region, dmax)
            g, gk, fk, ok = observe(state)
            region = region and ok
            if not (np.all(np.isfinite(gk)) and math.isfinite(fk)):
                return finish(prob, gn, fv, True, region, dmax)
            fv = fv + [fk]
            if k == K:
                return finish(prob, gn, fv, False, region, dmax)
            gn = gn + [gk]
            for S, p in sampler.outcomes(k):
                d2 = dmax.copy()
                dfs(one_step(state, S, g, rng, d2), k + 1, prob * p, gn, fv, region, d2)

        dfs(start(rng), 0, 1.0, [], [], True, np.zeros(b))
    else:
        n_mc = check_positive_int("mc_paths", mc_paths)
        for r in range(n_mc):
            rng = np.random.default_rng([seed, r])
            state = start(rng)
            gn, fv, region, bad = [], [], True, False
            dmax = np.zeros(b)
            for k in range(K + 1):
                if not _finite(state):
                    bad = True
                    break
                g, gk, fk, ok = observe(state)
                region = region and ok
                if not (np.all(np.isfinite(gk)) and math.isfinite(fk)):
                    bad = True
                    break
                fv.append(fk)
                if k < K:
                    gn.append(gk)
                    state = one_step(state, sampler.sample(k, rng), g, rng, dmax)
            finish(1.0 / n_mc, gn, fv, bad, region, dmax)
    w = np.array([r[0] for r in records])
    return Paths(
        weights=w / w.sum(),
        gnorms=np.stack([r[1] for r in records]),
        fvals=np.stack([r[2] for r in records]),
        diverged=np.array([r[3] for r in records]),
        left_region=np.array([r[4] for r in records]),
        delta_max=np.max(np.stack([r[5] for r in records]), axis=0),
        method=method,
    )
