"""Layer samplers for Drop-Muon: which layers a step updates. An i.i.d. :class:`Sampler` draws
from a distribution of :mod:`dropmuon.theory.sampling` at every step (assumption A4); the
time-varying :class:`EpochShift` and :class:`Phased` change the distribution by epoch or by phase
of training. Every sampler answers ``sample(k, rng)`` (1-based layer sets), ``outcomes(k)`` (the
exact outcomes with their probabilities) and ``inclusion_at(k)`` (each layer's probability of
being updated at step ``k``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dropmuon.theory import RPT, CompactSubsets, Independent, SubsetDistribution
from dropmuon.theory._validation import check_positive_int

__all__ = ["Sampler", "EpochShift", "Phased", "full_sampler", "uniform_sampler", "as_sampler"]


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

    def inclusion_at(self, k: int) -> np.ndarray:
        """Layer ``i``'s probability of being in the set drawn at step ``k`` (the same at every step)."""
        return self.inclusion

    def sample(self, k: int, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(self.distribution.sample(rng))

    def outcomes(self, k: int) -> list:
        return list(self.distribution.outcomes())


@dataclass(frozen=True, eq=False)
class EpochShift:
    """A time-varying schedule: distribution ``distributions[(k // epoch_length) % n]`` at step
    ``k`` (e.g. emphasis moving between shallow and deep layers over epochs, docs/torch.md). Not
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

    nlayers = property(lambda self: self.distributions[0].nlayers)
    iid = property(lambda self: len(self.distributions) == 1, doc="One distribution: i.i.d. sampling.")

    @property
    def inclusion(self) -> np.ndarray:
        """The time-averaged inclusion over one cycle."""
        return np.mean([np.asarray(d.inclusion) for d in self.distributions], axis=0)

    def _at(self, k):
        return self.distributions[(k // self.epoch_length) % len(self.distributions)]

    def inclusion_at(self, k: int) -> np.ndarray:
        """Layer ``i``'s probability of being in the set drawn at step ``k``: that of step ``k``'s
        epoch's distribution (not the cycle's average, :attr:`inclusion`)."""
        return np.asarray(self._at(k).inclusion)

    def sample(self, k: int, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(self._at(k).sample(rng))

    def outcomes(self, k: int) -> list:
        return list(self._at(k).outcomes())


@dataclass(frozen=True, eq=False)
class Phased:
    """A schedule by phase of training: distribution ``distributions[p]`` at the steps
    ``starts[p] ≤ k < starts[p+1]`` (the last phase open-ended), e.g. the optimal sampling for
    each phase's own layer-wise constants (the ``phase-optimal`` schedule,
    :func:`~dropmuon.verification.forecasting.schedules.phase_optimal_schedule`). ``horizon``: the step the
    phases were laid out to (the end of the last measured phase), which weighs the phases in the
    time-averaged :attr:`inclusion`; without it they weigh equally. Not i.i.d. with more than one
    phase, so the theorems' assumption A4 does not cover it as a whole — within one phase it is
    an i.i.d. schedule, which is what a per-phase prediction uses.

    >>> from dropmuon.theory import RPT
    >>> s = Phased((RPT([1.0, 0.0]), RPT([0.5, 0.5])), starts=(0, 10), horizon=30)
    >>> s.inclusion_at(9).tolist(), s.inclusion_at(10).tolist(), s.inclusion.tolist()
    ([1.0, 1.0], [0.5, 1.0], [0.6666666666666666, 1.0])
    """

    distributions: tuple
    starts: tuple
    horizon: int | None = None

    def __post_init__(self):
        ds, st = tuple(self.distributions), tuple(self.starts)
        if not ds:
            raise ValueError("a phased schedule needs at least one distribution")
        if len({d.nlayers for d in ds}) != 1:
            raise ValueError(f"the phases' distributions have different numbers of layers: "
                             f"{sorted({d.nlayers for d in ds})}")
        if len(st) != len(ds):
            raise ValueError(f"starts has {len(st)} entries but there are {len(ds)} phases; give one start step "
                             f"per phase")
        if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in st) or st[0] != 0 \
                or any(b <= a for a, b in zip(st, st[1:])):
            raise ValueError(f"starts must be increasing integer steps beginning at 0; got starts = {list(st)!r}")
        h = self.horizon
        if h is not None and (isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h <= st[-1]):
            raise ValueError(f"horizon must be an integer step after the last phase's start {st[-1]}; "
                             f"got horizon = {h!r}")
        object.__setattr__(self, "distributions", ds)
        object.__setattr__(self, "starts", tuple(int(s) for s in st))
        object.__setattr__(self, "horizon", None if h is None else int(h))

    nlayers = EpochShift.nlayers
    iid = EpochShift.iid

    @property
    def weights(self) -> np.ndarray:
        """Each phase's share of the steps up to :attr:`horizon` (equal shares without one)."""
        if self.horizon is None:
            return np.full(len(self.starts), 1.0 / len(self.starts))
        lengths = np.diff(np.append(self.starts, self.horizon)).astype(float)
        return lengths / lengths.sum()

    @property
    def inclusion(self) -> np.ndarray:
        """The time-averaged inclusion, the phases weighed by :attr:`weights`."""
        return np.asarray(self.weights @ np.array([np.asarray(d.inclusion, dtype=float) for d in self.distributions]))

    def phase_at(self, k: int) -> int:
        """The phase (0-based) of step ``k``."""
        return int(np.searchsorted(self.starts, k, side="right")) - 1

    def inclusion_at(self, k: int) -> np.ndarray:
        """Layer ``i``'s probability of being in the set drawn at step ``k``: that of its phase."""
        return np.asarray(self.distributions[self.phase_at(k)].inclusion)

    def sample(self, k: int, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(self.distributions[self.phase_at(k)].sample(rng))

    def outcomes(self, k: int) -> list:
        return list(self.distributions[self.phase_at(k)].outcomes())


def full_sampler(nlayers: int) -> Sampler:
    """Every layer, every step (full-network Muon)."""
    return Sampler(RPT.full(nlayers))


def uniform_sampler(nlayers: int) -> Sampler:
    """Uniform index sampling (RPT with ``p_s = 1/b``), the paper's main scheme."""
    return Sampler(RPT.uniform(nlayers))


def as_sampler(obj) -> Sampler | EpochShift | Phased:
    """Accept a sampler or a distribution from :mod:`dropmuon.theory.sampling`."""
    if isinstance(obj, (Sampler, EpochShift, Phased)):
        return obj
    if isinstance(obj, (RPT, Independent, SubsetDistribution, CompactSubsets)):
        return Sampler(obj)
    raise ValueError(f"expected a sampler or a dropmuon.theory.sampling distribution; got {obj!r}")
