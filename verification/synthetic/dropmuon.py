"""Drop-Muon in numpy (docs/verification.md): pure step functions and a thin loop. The layer
samplers live in :mod:`.sampling` (re-exported here).

A step draws a set ``S`` of layers (1-based); each sampled layer forms its momentum
``M_i ← (1−β)M_i + β G_i`` (``β`` weighs the *new* gradient; torch's ``momentum = μ`` is
``β = 1 − μ``) and moves by a (possibly inexact) LMO step ``X_i ← X_i + LMO_{t_i}(M_i)`` whose radius
``t_i`` comes from a step rule; every other layer keeps its weights **and** its momentum — the very
same array objects — and its gradient is never computed. With every layer sampled the step is the
full-network method (:func:`muon_step`), bit for bit.

:func:`paths` runs the method over every sampling outcome (exact expectations, small ``b`` and
``K``), over Monte Carlo draws, or — for separable problems under i.i.d. sampling — layer by
layer (exact expectations at any ``b`` and moderate ``K``), recording the true gradients' dual
norms at every iterate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from dropmuon.theory._validation import check_layer_array, check_positive_int, check_scalar
from dropmuon.theory.norms import Norm, as_matrix, frobenius, linf

from .problems import CheckedIterate
from .sampling import EpochShift, Phased, Sampler, as_sampler, full_sampler, uniform_sampler

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
    "Phased",
    "full_sampler",
    "uniform_sampler",
    "as_sampler",
    "State",
    "init_state",
    "dropmuon_step",
    "muon_step",
    "Paths",
    "paths",
    "count_paths",
    "MAX_EXACT_PATHS",
    "MAX_SEPARABLE_ENTRIES",
]

#: exact enumeration of the sampling is used up to this many paths (else Monte Carlo)
MAX_EXACT_PATHS = 20000

#: the largest ``(K + 1)·K·b`` for ``method="separable"``: its weight table and ``gnorms`` each hold
#: that many floats (8·10^7 bytes at the limit, e.g. ``K = 1000`` steps of ``b = 10`` layers)
MAX_SEPARABLE_ENTRIES = 10**7


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
    ``steps`` (:mod:`dropmuon.verification.synthetic.newton_schulz`). ``kind="perturbed"``: the inexact-LMO model of
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

    def direction(self, M: np.ndarray, norm: Norm, t: float, rng: np.random.Generator | None = None, *,
                  dual: float | None = None) -> np.ndarray:
        """The direction for momentum ``M``, norm ``norm`` and radius ``t`` (``dual``: ``‖M‖_*``
        when the caller has it, reused by the exact and perturbed LMOs)."""
        if self.kind == "exact":
            return norm.lmo(M, t, dual=dual)
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
        D = norm.lmo(M, t, dual=dual)
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
    d = norm.dual(m_new)
    t = rule.radius(i, d)
    return x + lmo.direction(m_new, norm, t, rng, dual=d), m_new, t


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
    r"""Runs of ``K`` steps over the sampling, in one of three forms (``method``).

    ``"exact"`` (every sampling path) and ``"mc"`` (Monte Carlo paths): ``weights[n]`` (sum 1;
    path probabilities, or ``1/n``), ``gnorms[n, k, i]`` = ``‖∇_i f(X^k)‖_*`` on path ``n`` for
    ``k = 0..K−1`` (true gradients), ``fvals[n, k]`` = ``f(X^k)`` for ``k = 0..K``, ``diverged[n]``
    (the iterates became non-finite; later records are ``inf``), ``left_region[n]`` (the iterates
    left the region where the problem's constants hold), ``delta_max[i]`` (the largest
    Newton–Schulz δ met by layer ``i``, 0 for other LMOs); ``layer_weights`` is ``None``.

    ``"separable"`` (separable problem, i.i.d. sampling, deterministic run; see :func:`paths`):
    the "paths" are the states ``m = 0..K`` of each layer, layer ``i``'s state ``m`` being its
    iterate after ``m`` of its own updates. Then

    * ``gnorms[m, k, i]`` = ``‖∇f_i(X_i^{(m)})‖_*``, the same for every ``k`` (``inf`` from the
      state where layer ``i`` diverged on; a layer with ``π_i = 0`` is never updated, so its
      "states" ``m ≥ 1`` repeat state 0);
    * ``layer_weights[m, k, i]`` = ``P(layer i has been sampled m times in k steps)`` =
      ``C(k, m) π_i^m (1 − π_i)^{k−m}`` (zero for ``m > k``; sums to 1 over ``m``);
    * ``weights`` is all NaN (no probability belongs to a state alone: use ``layer_weights``);
      ``n = K + 1``; :meth:`expectation` raises;
    * ``fvals[k]`` (1-D, ``k = 0..K``) is already the expectation
      ``E f(X^k) = Σ_i Σ_m layer_weight · f_i(X_i^{(m)})`` where the problem offers
      :meth:`~dropmuon.verification.synthetic.problems.Problem.layer_values`, else NaN;
    * ``diverged[m]`` / ``left_region[m]`` (``m = 0..K``): some layer's state ``m`` is non-finite
      (or has a non-finite gradient or value) / lies outside the region. Every stored state has
      positive probability at steps ``k ≥ m``, so ``.any()`` says exactly whether some path of
      positive probability diverged / left the region; the per-layer flags ``[K + 1, b]`` are
      ``extra["diverged_layers"]`` and ``extra["left_region_layers"]``;
    * ``delta_max[i]``: the largest Newton–Schulz δ over layer ``i``'s updates from states
      ``0..K−1`` (each has positive probability when ``π_i > 0``; none when ``π_i = 0``);
    * ``extra``: ``pi`` (the inclusion probabilities used), ``layer_fvals[m, i]`` =
      ``f_i(X_i^{(m)})`` (or ``None``), ``first_bad_state[i]`` (``K + 1`` = never diverged).

    :meth:`layer_step_expectation` and :meth:`expected_fvals` work the same way for all three.
    """

    weights: np.ndarray
    gnorms: np.ndarray
    fvals: np.ndarray
    diverged: np.ndarray
    left_region: np.ndarray
    delta_max: np.ndarray
    method: str
    extra: dict = field(default_factory=dict)
    layer_weights: np.ndarray | None = None

    @property
    def n(self) -> int:
        """The number of paths (``K + 1`` states for ``"separable"``)."""
        return len(self.weights)

    def expectation(self, per_path: np.ndarray) -> float:
        """``Σ_n weights[n]·per_path[n]``, the expectation of a per-path total (``"exact"``/``"mc"``)."""
        if self.method == "separable":
            raise ValueError("per-path totals are not defined for per-layer exact expectations "
                             "(method 'separable'); use layer_step_expectation")
        return float(np.dot(self.weights, per_path))

    def layer_step_expectation(self, h) -> np.ndarray:
        r"""``E[h]`` per step and layer, an array ``[K, b]``, for ``h`` of ``gnorms``' shape
        (``[n, K, b]``; anything broadcastable to it), e.g. ``h = gnorms**2``.

        ``"exact"``/``"mc"``: ``E[h][k, i] = Σ_n weights[n]·h[n, k, i]``. ``"separable"``:
        ``E[h][k, i] = Σ_m C(k, m) π_i^m (1 − π_i)^{k−m}·h[m, k, i]``, exact for any ``h`` whose
        entry ``[m, k, i]`` is a function of layer ``i``'s state ``m`` (and of ``k``, ``i``).
        Terms of zero probability are left out (so an ``inf`` in a state that cannot occur by step
        ``k`` does not turn the sum into NaN); an ``inf`` with positive probability gives ``inf``.
        Any statistic ``Σ_k Σ_i c_{k,i}·E[h_i]`` is then ``np.sum(c * P.layer_step_expectation(h))``.
        """
        g = self.gnorms
        try:
            h = np.broadcast_to(np.asarray(h, dtype=float), g.shape)
        except ValueError:
            raise ValueError(f"h must have the shape of gnorms {g.shape}; got {np.shape(h)}") from None
        W = self.layer_weights if self.method == "separable" else self.weights[:, None, None]
        with np.errstate(invalid="ignore", over="ignore"):
            return np.where(W > 0, W * h, 0.0).sum(axis=0)

    def expected_fvals(self) -> np.ndarray:
        """``E f(X^k)`` for ``k = 0..K`` (NaN for ``"separable"`` without per-layer values)."""
        if self.method == "separable":
            return np.array(self.fvals, dtype=float)
        with np.errstate(invalid="ignore", over="ignore"):
            return np.where(self.weights[:, None] > 0, self.weights[:, None] * self.fvals, 0.0).sum(axis=0)


def _track_delta(state: State, S, g, beta: float, lmo: LMO, dmax: np.ndarray) -> None:
    """For a Newton–Schulz LMO, raise ``dmax[i]`` to the inexactness ``δ`` of the direction each
    sampled layer is about to take (its new momentum ``(1−β)M_i + βg_i``); nothing otherwise."""
    if lmo.kind != "newton-schulz":
        return
    from .newton_schulz import delta

    for j in S:
        i = j - 1
        m_new = (1.0 - beta) * state.M[i] + beta * g[i]
        if np.any(m_new):
            dmax[i] = max(dmax[i], delta(as_matrix(m_new), lmo.preset, lmo.steps))


def count_paths(sampler, K: int) -> int:
    """The number of sampling paths of ``K`` steps (capped just above ``10**12``); ``sampler``
    may also be a distribution of :mod:`dropmuon.theory.sampling`."""
    sampler = as_sampler(sampler)
    n = 1
    for k in range(K):
        n *= max(1, len(sampler.outcomes(k)))
        if n > 10**12:
            break
    return n


_F8 = np.dtype(float)


def _vet(state: State, prev: State | None, shapes) -> tuple | None:
    """``None`` if some weight or momentum of ``state`` is non-finite, else its weights: as a
    :class:`~.problems.CheckedIterate` (not validated again) when all are float64 ndarrays of the
    layers' shapes. Arrays that are the very objects of ``prev`` (the vetted state before the step,
    whose unsampled layers it keeps) are not checked again."""
    checked = True
    for i, (x, m) in enumerate(zip(state.X, state.M)):
        if (prev is None or x is not prev.X[i]) and not np.isfinite(x).all():
            return None
        if (prev is None or m is not prev.M[i]) and not np.isfinite(m).all():
            return None
        checked = checked and type(x) is np.ndarray and x.dtype is _F8 and x.shape == shapes[i]
    return CheckedIterate(state.X) if checked else state.X


def _dual_or_inf(norm: Norm, g) -> float:
    """``‖g‖_*``, or ``inf`` if ``g`` has a non-finite entry. A Frobenius or ℓ1 dual (a sum of
    non-negative terms) is then itself NaN or ``inf``, and is finite only if ``g`` is."""
    if norm is frobenius or norm is linf:
        d = norm.dual(g)
        return d if d == d else math.inf
    return norm.dual(g) if np.isfinite(g).all() else math.inf


#: the step rules known to be stateless functions of (layer, dual norm) — no step index, no other
#: layer, no randomness — which ``method="auto"`` hands to the separable run
_STATELESS_RULES = (SharpStep, ConstantRadius, AdaptiveRadius)


def _separable_obstacle(problem, sampler, stochastic: bool, lmo: LMO) -> str | None:
    """Why the layer-by-layer run does not apply, or ``None`` when it does."""
    if not getattr(problem, "separable", False):
        return f"problem {problem.name!r} is not separable (a layer's gradient depends on other layers)"
    if not sampler.iid:
        return "the sampler is not i.i.d. (A4): the sampling changes with the step"
    if stochastic:
        return "the gradients are stochastic (stochastic=True): each layer's run is random"
    if lmo.kind == "perturbed" and lmo.mode == "random":
        return "the LMO's 'random' perturbation makes the directions random"
    return None


def _binomial_table(pi: np.ndarray, K: int) -> np.ndarray:
    """``W[m, k, i] = C(k, m) π_i^m (1 − π_i)^{k−m}`` for ``m, k = 0..K`` (zero for ``m > k``).

    Built by Pascal's rule ``W[m, k] = π W[m−1, k−1] + (1 − π) W[m, k−1]`` from ``W[0, 0] = 1``:
    only products and sums of non-negative numbers, so each entry carries a relative rounding
    error of at most about ``2k`` ulps (measured: under 10 ulps up to ``K = 60``, several times
    better than ``scipy.stats.binom.pmf``), ``C(k, m)`` never overflows (tails underflow to 0,
    harmlessly), and ``π_i = 0`` or ``1`` gives the exact point masses ``m = 0`` resp. ``m = k``.
    """
    pi = np.asarray(pi, dtype=float)
    q = 1.0 - pi
    W = np.zeros((K + 1, K + 1, len(pi)))
    W[0, 0, :] = 1.0
    for k in range(1, K + 1):
        W[1:, k, :] = pi * W[:-1, k - 1, :]
        W[:, k, :] += q * W[:, k - 1, :]
    return W


def _separable_run(problem, rule, sampler, K, *, beta, lmo, seed, momentum_init) -> Paths:
    """The ``"separable"`` method of :func:`paths`: one run updating every layer at every step."""
    b, norms = problem.nlayers, problem.norms
    pi = np.clip(np.asarray(sampler.inclusion, dtype=float), 0.0, 1.0)
    rng = np.random.default_rng(seed)  # unused by deterministic directions; passed for uniformity
    X0 = problem.x0
    state = init_state(X0, problem.grad(X0) if momentum_init == "gradient" else None)
    gn = np.full((K + 1, b), np.inf)  # gn[m, i]: dual norm of layer i's gradient in its state m
    lv = np.full((K + 1, b), np.inf)  # lv[m, i]: f_i in state m
    out = np.zeros((K + 1, b), dtype=bool)
    bad_at = np.full(b, K + 1)  # first non-finite state of each layer (K + 1: none)
    dmax = np.zeros(b)
    try:
        problem.layer_values(X0)
        has_values = True
    except NotImplementedError:
        has_values = False
    last_X = list(X0)
    for m in range(K + 1):
        X = list(state.X)
        for i in range(b):
            if bad_at[i] > m and not (np.isfinite(X[i]).all() and np.isfinite(state.M[i]).all()):
                bad_at[i] = m
            if bad_at[i] <= m:
                X[i] = last_X[i]  # a finite stand-in so the others' gradients can be formed; unused
        with np.errstate(all="ignore"):  # overflow shows up as inf and marks the layer diverged
            g = problem.grad(X)
            vals = problem.layer_values(X) if has_values else None
            for i in range(b):
                if bad_at[i] <= m:
                    continue
                gi = norms[i].dual(g[i]) if np.isfinite(g[i]).all() else np.inf
                if has_values:
                    vi = vals[i]
                else:  # f's finiteness, as the joint run checks it: layer i in state m, the rest at X^0
                    vi = problem.value([X[j] if j == i else X0[j] for j in range(b)])
                if not (math.isfinite(gi) and math.isfinite(vi)):
                    bad_at[i] = m
                    continue
                gn[m, i], lv[m, i] = gi, vi
                out[m, i] = not problem.in_region([X[j] if j == i else X0[j] for j in range(b)])
        last_X = X
        if m == K:
            break
        # a layer that is never sampled (π_i = 0) stays in its state 0: its "states" m ≥ 1 are
        # state 0 again, so nothing unreachable can diverge or leave the region
        S = tuple(i + 1 for i in range(b) if bad_at[i] > m and pi[i] > 0)
        _track_delta(state, S, g, beta, lmo, dmax)
        with np.errstate(all="ignore"):
            state, _ = dropmuon_step(State(tuple(X), state.M, m), S, g, rule=rule, norms=norms, beta=beta,
                                     lmo=lmo, rng=rng)
    bad = np.arange(K + 1)[:, None] >= bad_at[None, :]
    W = _binomial_table(pi, K)
    if has_values:
        with np.errstate(invalid="ignore", over="ignore"):
            fvals = np.where(W > 0, W * lv[:, None, :], 0.0).sum(axis=(0, 2))
    else:
        fvals = np.full(K + 1, np.nan)
    return Paths(
        weights=np.full(K + 1, np.nan),
        gnorms=np.ascontiguousarray(np.broadcast_to(gn[:K + 1, None, :], (K + 1, K, b))),
        fvals=fvals,
        diverged=bad.any(axis=1),
        left_region=out.any(axis=1),
        delta_max=dmax,
        method="separable",
        extra={"pi": pi, "layer_fvals": lv if has_values else None, "first_bad_state": bad_at,
               "diverged_layers": bad, "left_region_layers": out},
        layer_weights=np.ascontiguousarray(W[:, :K, :]),
    )


def paths(problem, rule, sampler, K: int, *, beta: float = 1.0, lmo: LMO = EXACT_LMO,
          stochastic: bool = False, seed: int = 0, method: str = "auto", mc_paths: int = 2000,
          max_exact: int = MAX_EXACT_PATHS, momentum_init: str = "gradient") -> Paths:
    r"""Run Drop-Muon for ``K`` steps over the sampling and record what the theorems measure.

    Methods (the fields of each result are described in :class:`Paths`):

    * ``"exact"``: every sampling outcome (deterministic gradients and directions; weights = path
      probabilities; ``count_paths`` grows like ``|outcomes|^K``).
    * ``"mc"``: ``mc_paths`` independent Monte Carlo runs (equal weights).
    * ``"separable"``: exact expectations layer by layer, for a separable problem
      (``f = Σ_i f_i(X_i)``, ``problem.separable``) under an i.i.d. sampler (A4) with
      deterministic gradients and directions. An unsampled layer keeps its weight *and* its
      momentum, and its update ``(X_i, M_i) ↦ (X_i + LMO_{t_i}(M_i'), M_i')``,
      ``M_i' = (1 − β)M_i + β∇f_i(X_i)``, ``t_i = rule.radius(i, ‖M_i'‖_*)``, involves neither the
      step index nor another layer nor randomness. So after ``k`` steps layer ``i`` is in its
      ``m``-th state ``X_i^{(m)}`` (``m`` own updates), with ``m ~ Binomial(k, π_i)`` because the
      draws are independent across steps with ``P(i ∈ S) = π_i``. For any per-layer quantity,

          ``E h_i(X_i^k) = Σ_{m=0}^{k} C(k, m) π_i^m (1 − π_i)^{k−m} h_i(X_i^{(m)})``,

      and the states ``X_i^{(0..K)}`` of every layer come from ONE run of ``K`` steps in which every
      layer is updated at every step. Cost ``K`` full steps instead of ``count_paths`` runs, memory
      ``(K + 1)·K·b`` floats (at most ``MAX_SEPARABLE_ENTRIES``). Only expectations of sums over
      layers and steps are available (:meth:`Paths.layer_step_expectation`), not per-path totals.
      Excluded: non-separable problems, non-i.i.d. samplers (:class:`EpochShift` with several
      distributions), ``stochastic=True``, ``LMO("perturbed", mode="random")``. The step rules
      :class:`SharpStep`, :class:`ConstantRadius`, :class:`AdaptiveRadius` and the LMOs
      ``exact``, ``newton-schulz`` and ``perturbed`` (``shrink``/``overshoot``) all qualify; a
      user-defined rule must likewise be a stateless function of ``(i, ‖M_i'‖_*)``.
    * ``"auto"``: ``"separable"`` where it applies (with one of the three rules above and within
      ``MAX_SEPARABLE_ENTRIES``); otherwise ``"exact"`` when deterministic and at most
      ``max_exact`` paths, else ``"mc"``.

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
    b = problem.nlayers
    if method == "auto":
        small = (K + 1) * K * b <= MAX_SEPARABLE_ENTRIES
        if small and isinstance(rule, _STATELESS_RULES) and _separable_obstacle(problem, sampler, stochastic, lmo) is None:
            method = "separable"
        else:
            deterministic = not stochastic and not random_directions
            method = "exact" if deterministic and count_paths(sampler, K) <= max_exact else "mc"
    if method not in ("exact", "mc", "separable"):
        raise ValueError(f"unknown method {method!r}; choose auto, exact, separable or mc")
    if method == "exact" and (stochastic or random_directions):
        raise ValueError("exact enumeration needs deterministic gradients and directions; use method='mc'")
    if method == "separable":
        why = _separable_obstacle(problem, sampler, stochastic, lmo)
        if why is not None:
            raise ValueError(f"method='separable' does not apply: {why}; use method='exact' or 'mc'")
        if (K + 1) * K * b > MAX_SEPARABLE_ENTRIES:
            raise ValueError(
                f"method='separable' stores (K + 1)·K·b = {(K + 1) * K * b} weights, above "
                f"MAX_SEPARABLE_ENTRIES = {MAX_SEPARABLE_ENTRIES}; lower K or use method='mc'"
            )
        return _separable_run(problem, rule, sampler, K, beta=beta, lmo=lmo, seed=seed,
                              momentum_init=momentum_init)
    norms = problem.norms
    shapes = [np.shape(x) for x in problem.x0]
    records = []

    def start(rng):
        X0 = problem.x0
        M0 = None
        if momentum_init == "gradient":
            M0 = problem.stochastic_grad(X0, rng) if stochastic else problem.grad(X0)
        return init_state(X0, M0)

    def observe(X):  # X: the state's weights, vetted (_vet)
        with np.errstate(all="ignore"):  # overflow shows up as inf and marks the run diverged
            g = problem.grad(X)
            return g, [_dual_or_inf(n, gi) for n, gi in zip(norms, g)], problem.value(X), problem.in_region(X)

    def one_step(state, X, S, g_true, rng, dmax):
        g = problem.stochastic_grad(X, rng, layers=S) if stochastic else g_true
        _track_delta(state, S, g, beta, lmo, dmax)
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

        def dfs(state, prev, k, prob, gn, fv, region, dmax):
            X = _vet(state, prev, shapes)
            if X is None:
                return finish(prob, gn, fv, True, region, dmax)
            g, gk, fk, ok = observe(X)
            region = region and ok
            if not (all(map(math.isfinite, gk)) and math.isfinite(fk)):
                return finish(prob, gn, fv, True, region, dmax)
            fv = fv + [fk]
            if k == K:
                return finish(prob, gn, fv, False, region, dmax)
            gn = gn + [gk]
            for S, p in sampler.outcomes(k):
                d2 = dmax.copy()
                dfs(one_step(state, X, S, g, rng, d2), state, k + 1, prob * p, gn, fv, region, d2)

        dfs(start(rng), None, 0, 1.0, [], [], True, np.zeros(b))
    else:
        n_mc = check_positive_int("mc_paths", mc_paths)
        for r in range(n_mc):
            rng = np.random.default_rng([seed, r])
            state, prev = start(rng), None
            gn, fv, region, bad = [], [], True, False
            dmax = np.zeros(b)
            for k in range(K + 1):
                X = _vet(state, prev, shapes)
                if X is None:
                    bad = True
                    break
                g, gk, fk, ok = observe(X)
                region = region and ok
                if not (all(map(math.isfinite, gk)) and math.isfinite(fk)):
                    bad = True
                    break
                fv.append(fk)
                if k < K:
                    gn.append(gk)
                    state, prev = one_step(state, X, sampler.sample(k, rng), g, rng, dmax), state
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
