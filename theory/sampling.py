"""Layer-sampling distributions (docs/theory.md): RPT (a start index ``s``, then the suffix
``{s, …, b}``), independent Bernoulli inclusion, and any explicit distribution over subsets.

Each distribution gives its inclusion probabilities ``π_i = P(i ∈ S)``, enumerates its outcomes
with their probabilities (for exact expectations) and samples with an explicit
``numpy.random.Generator``. **Layers are numbered from 1** in sets and start indices, as in the
theory; arrays are positional (entry ``j`` is layer ``j + 1``).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from ._validation import check_layer_array, check_positive_int


def _cdf(p: np.ndarray) -> np.ndarray:
    """The table ``Generator.choice(len(p), p=p)`` searches: ``cumsum(p)`` over its last entry."""
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    cdf.flags.writeable = False
    return cdf


def _draw(rng: np.random.Generator, cdf: np.ndarray) -> int:
    """``int(rng.choice(len(p), p=p))`` for ``cdf = _cdf(p)``, bit for bit — one uniform draw and
    a right-sided search, as numpy does — without its per-call validation of ``p`` (~25 µs, the
    distribution validated ``p`` once), which dominated a synthetic run's step."""
    return int(cdf.searchsorted(rng.random(), side="right"))

__all__ = [
    "RPT",
    "Independent",
    "SubsetDistribution",
    "CompactSubsets",
    "inclusion_from_start",
    "start_from_inclusion",
    "PROBABILITY_ATOL",
]

# Probabilities given by users are sums of floats: accept a total within this of 1 (then
# renormalise), which is far above rounding (~1e-16 per term) and far below any meaningful mass.
PROBABILITY_ATOL = 1e-9

# the largest b for which independent sampling is enumerated outcome by outcome (2^b outcomes)
MAX_ENUMERATE_LAYERS = 20


def _probabilities(name: str, p) -> np.ndarray:
    arr = check_layer_array(name, p, "nonnegative")
    total = float(arr.sum())
    if abs(total - 1.0) > PROBABILITY_ATOL:
        raise ValueError(f"{name} must sum to 1; got sum({name}) = {total!r}")
    if total != 1.0:
        arr /= total  # arr is a fresh copy
    return arr


def inclusion_from_start(start_probs) -> np.ndarray:
    """``π_i = Σ_{s ≤ i} p_s`` for an RPT start distribution ``p``.

    >>> inclusion_from_start([0.2, 0.8, 0, 0]).tolist()
    [0.2, 1.0, 1.0, 1.0]
    """
    p = _probabilities("start_probs", start_probs)
    pi = np.cumsum(p)
    pi[-1] = 1.0  # exact: the last layer is in every suffix
    return np.minimum(pi, 1.0)


def start_from_inclusion(pi) -> np.ndarray:
    """The RPT start distribution with inclusion probabilities ``π`` (non-decreasing, ``π_b = 1``).

    >>> start_from_inclusion([0.25, 0.5, 1.0]).tolist()
    [0.25, 0.25, 0.5]
    """
    arr = check_layer_array("pi", pi, "unit_closed")
    if abs(arr[-1] - 1.0) > PROBABILITY_ATOL:
        raise ValueError(f"RPT needs pi_b = 1 (the last layer is always updated); got pi_{len(arr)} = {float(arr[-1])!r}")
    d = np.diff(arr)
    if np.any(d < -PROBABILITY_ATOL):
        j = int(np.argmax(d < -PROBABILITY_ATOL))
        raise ValueError(
            f"RPT inclusion probabilities must be non-decreasing; got pi_{j + 1} = {float(arr[j])!r} > "
            f"pi_{j + 2} = {float(arr[j + 1])!r}"
        )
    return np.diff(np.concatenate([[0.0], np.maximum.accumulate(arr)]))


@dataclass(frozen=True, eq=False)
class RPT:
    """Randomised progressive training: draw ``s`` with probability ``p_s``, update ``{s, …, b}``.

    >>> d = RPT.uniform(4)
    >>> d.inclusion.tolist()
    [0.25, 0.5, 0.75, 1.0]
    >>> d.sample(np.random.default_rng(0))
    (3, 4)
    """

    start_probs: np.ndarray

    def __post_init__(self):
        p = _probabilities("start_probs", self.start_probs)
        p.flags.writeable = False
        object.__setattr__(self, "start_probs", p)
        pi = np.minimum(np.cumsum(p), 1.0)
        pi[-1] = 1.0  # exact: the last layer is in every suffix
        pi.flags.writeable = False
        object.__setattr__(self, "_inclusion", pi)

    @classmethod
    def _trusted(cls, start_probs: np.ndarray, inclusion: np.ndarray | None = None) -> "RPT":
        """Build from a start distribution the caller guarantees valid (solvers' own output),
        skipping the checks that dominate the cost at b ~ 10^6. ``inclusion``: ``π_i = Σ_{s≤i} p_s``
        when the caller has it already (the running sum is a sequential pass as slow as the
        solver itself at that size). Not for user input."""
        obj = object.__new__(cls)
        if inclusion is None:
            pi = np.cumsum(start_probs)
            np.minimum(pi, 1.0, out=pi)
        else:
            pi = inclusion
        pi[-1] = 1.0  # exact: the last layer is in every suffix
        for name, arr in (("start_probs", start_probs), ("_inclusion", pi)):
            arr.flags.writeable = False
            object.__setattr__(obj, name, arr)
        return obj

    @classmethod
    def uniform(cls, nlayers: int) -> "RPT":
        """Uniform index sampling ``p_s = 1/b`` (the paper's main scheme)."""
        n = check_positive_int("nlayers", nlayers)
        return cls(np.full(n, 1.0 / n))

    @classmethod
    def full(cls, nlayers: int) -> "RPT":
        """Full-network updates: ``p_1 = 1``."""
        n = check_positive_int("nlayers", nlayers)
        p = np.zeros(n)
        p[0] = 1.0
        return cls(p)

    @property
    def nlayers(self) -> int:
        return len(self.start_probs)

    @property
    def inclusion(self) -> np.ndarray:
        """``π_i = Σ_{s ≤ i} p_s`` (read-only)."""
        return self._inclusion

    def outcomes(self):
        """Yield ``(set, probability)`` for every start index with positive probability."""
        b = self.nlayers
        for s, p in enumerate(self.start_probs, start=1):
            if p > 0:
                yield tuple(range(s, b + 1)), float(p)

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """Draw one set (1-based layer numbers) with ``rng``."""
        s = _draw(rng, self._start_cdf) + 1
        return tuple(range(s, self.nlayers + 1))

    @functools.cached_property
    def _start_cdf(self) -> np.ndarray:
        return _cdf(self.start_probs)


@dataclass(frozen=True, eq=False)
class Independent:
    """Each layer is updated independently with probability ``π_i`` (the set may be empty).

    >>> Independent([0.5, 1.0]).inclusion.tolist()
    [0.5, 1.0]
    >>> sorted(Independent([0.5, 1.0]).outcomes())
    [((1, 2), 0.5), ((2,), 0.5)]
    """

    pi: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "pi", check_layer_array("pi", self.pi, "unit_closed"))

    @property
    def nlayers(self) -> int:
        return len(self.pi)

    @property
    def inclusion(self) -> np.ndarray:
        return self.pi.copy()

    def outcomes(self):
        """Yield ``(set, probability)`` for every subset with positive probability (``b ≤ 20``)."""
        b = self.nlayers
        if b > MAX_ENUMERATE_LAYERS:
            raise ValueError(
                f"enumerating independent sampling needs 2^b outcomes; b = {b} > {MAX_ENUMERATE_LAYERS}"
            )
        for mask in itertools.product((False, True), repeat=b):
            p = float(np.prod(np.where(mask, self.pi, 1.0 - self.pi)))
            if p > 0:
                yield tuple(j + 1 for j in range(b) if mask[j]), p

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(int(j) + 1 for j in np.flatnonzero(rng.random(self.nlayers) < self.pi))


@dataclass(frozen=True, eq=False)
class SubsetDistribution:
    """An explicit distribution over subsets: ``sets[k]`` (1-based layer numbers) with ``probs[k]``.

    >>> d = SubsetDistribution(3, [(1, 2, 3), (3,)], [0.25, 0.75])
    >>> d.inclusion.tolist()
    [0.25, 0.25, 1.0]
    """

    nlayers: int
    sets: tuple
    probs: np.ndarray

    def __post_init__(self):
        b = check_positive_int("nlayers", self.nlayers)
        sets = []
        for k, S in enumerate(self.sets):
            try:
                members = tuple(sorted({int(j) for j in S}))
            except (TypeError, ValueError):
                raise ValueError(f"sets[{k}] must be a collection of layer numbers; got {S!r}") from None
            if members and (members[0] < 1 or members[-1] > b):
                raise ValueError(f"sets[{k}] = {S!r} names a layer outside 1..{b}")
            sets.append(members)
        probs = _probabilities("probs", self.probs)
        if len(probs) != len(sets):
            raise ValueError(f"{len(sets)} sets but {len(probs)} probabilities")
        object.__setattr__(self, "nlayers", b)
        object.__setattr__(self, "sets", tuple(sets))
        object.__setattr__(self, "probs", probs)

    @property
    def inclusion(self) -> np.ndarray:
        pi = np.zeros(self.nlayers)
        for S, p in zip(self.sets, self.probs):
            for j in S:
                pi[j - 1] += p
        return np.minimum(pi, 1.0)

    def outcomes(self):
        for S, p in zip(self.sets, self.probs):
            if p > 0:
                yield S, float(p)

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return self.sets[_draw(rng, self._sets_cdf)]

    @functools.cached_property
    def _sets_cdf(self) -> np.ndarray:
        return _cdf(np.asarray(self.probs, dtype=float))


@dataclass(frozen=True, eq=False)
class CompactSubsets:
    """Draw the lowest layer ``s`` with probability ``lowest_probs[s]``, then add each layer
    ``j > s`` independently with probability ``include_probs[j]`` (docs/sampling.md).

    Every optimum of the max-form over *all* subset distributions has this form; RPT is the case
    ``include_probs ≡ 1``. ``include_probs[0]`` (layer 1 is never above the lowest) is ignored.

    >>> d = CompactSubsets([0.5, 0.5, 0.0], [1.0, 0.5, 1.0])
    >>> d.inclusion.tolist()
    [0.5, 0.75, 1.0]
    >>> sorted(d.outcomes())
    [((1, 2, 3), 0.25), ((1, 3), 0.25), ((2, 3), 0.5)]
    """

    lowest_probs: np.ndarray
    include_probs: np.ndarray

    def __post_init__(self):
        rho = _probabilities("lowest_probs", self.lowest_probs)
        theta = check_layer_array("include_probs", self.include_probs, "unit_closed")
        if len(theta) != len(rho):
            raise ValueError(
                f"lowest_probs has {len(rho)} entries but include_probs has {len(theta)}"
            )
        below = np.concatenate([[0.0], np.cumsum(rho)[:-1]])
        pi = np.minimum(rho + theta * below, 1.0)
        for name, arr in (("lowest_probs", rho), ("include_probs", theta), ("_below", below), ("_inclusion", pi)):
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    @classmethod
    def _trusted(cls, lowest_probs: np.ndarray, include_probs: np.ndarray) -> "CompactSubsets":
        """Build from arrays the caller guarantees valid (solvers' own output), skipping the
        checks that dominate the cost at b ~ 10^6. Not for user input."""
        obj = object.__new__(cls)
        below = np.empty_like(lowest_probs)
        below[0] = 0.0
        np.cumsum(lowest_probs[:-1], out=below[1:])
        pi = include_probs * below
        pi += lowest_probs
        np.minimum(pi, 1.0, out=pi)
        for name, arr in (("lowest_probs", lowest_probs), ("include_probs", include_probs), ("_below", below),
                          ("_inclusion", pi)):
            arr.flags.writeable = False
            object.__setattr__(obj, name, arr)
        return obj

    @classmethod
    def from_rpt(cls, start_probs) -> "CompactSubsets":
        p = _probabilities("start_probs", start_probs)
        return cls(p, np.ones_like(p))

    @property
    def nlayers(self) -> int:
        return len(self.lowest_probs)

    @property
    def mass_below(self) -> np.ndarray:
        """``P_j = Σ_{s<j} ρ_s``: the probability that the lowest layer is below ``j`` (read-only)."""
        return self._below

    @property
    def inclusion(self) -> np.ndarray:
        """``π_j = ρ_j + θ_j P_j`` (read-only)."""
        return self._inclusion

    def outcomes(self):
        """Yield ``(set, probability)`` for every set with positive probability (``b ≤ 20``)."""
        b = self.nlayers
        if b > MAX_ENUMERATE_LAYERS:
            raise ValueError(
                f"enumerating this distribution needs up to 2^b outcomes; b = {b} > {MAX_ENUMERATE_LAYERS}"
            )
        for s, ps in enumerate(self.lowest_probs, start=1):
            if ps <= 0:
                continue
            above = self.include_probs[s:]
            for mask in itertools.product((False, True), repeat=b - s):
                p = float(ps) * float(np.prod(np.where(mask, above, 1.0 - above)))
                if p > 0:
                    yield (s,) + tuple(s + 1 + j for j in range(b - s) if mask[j]), p

    @functools.cached_property
    def _lowest_cdf(self) -> np.ndarray:
        return _cdf(np.asarray(self.lowest_probs, dtype=float))

    def to_subsets(self) -> SubsetDistribution:
        """The same distribution as an explicit list of sets (``b ≤ 20``)."""
        outs = list(self.outcomes())
        return SubsetDistribution(self.nlayers, [S for S, _ in outs], [p for _, p in outs])

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        b = self.nlayers
        s = _draw(rng, self._lowest_cdf) + 1
        extra = np.flatnonzero(rng.random(b - s) < self.include_probs[s:])
        return (s,) + tuple(int(s + 1 + j) for j in extra)
