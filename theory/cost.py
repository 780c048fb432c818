"""The per-iteration cost model (docs/sampling.md) and total cost ``TC(D) = K(π) · E_D cost(S)``.

For a set ``S`` with lowest layer ``s = min S``::

    cost(S) = F + Σ_{j > s} a_j + Σ_{j ∈ S} (w_j + u_j)

``F``: the forward pass and everything else paid every iteration (also for an empty set);
``a_j``: the backward through layer ``j``'s activations (needed above the lowest sampled layer);
``w_j``: layer ``j``'s weight gradient; ``u_j``: its optimizer update. The lumped model (one number
``c_j`` per layer) is ``a = u = 0, w = c``: ``cost(S) = F + Σ_{j∈S} c_j``, exact for RPT up to the
lowest layer's ``a_s``. Layers are numbered from 1.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ._validation import check_layer_array, check_positive_int, check_same_length, check_scalar
from .sampling import RPT, CompactSubsets, Independent, SubsetDistribution, inclusion_from_start

__all__ = ["CostModel", "total_cost", "RPT_EXPECTED_COST_LATEX"]

RPT_EXPECTED_COST_LATEX = (
    r"\mathbb{E}\,\mathrm{cost} = F + \sum_{j=1}^{b} \pi_{j-1} a_j + \sum_{j=1}^{b} \pi_j (w_j + u_j),"
    r"\quad \pi_0 = 0"
)


@dataclass(frozen=True, eq=False)
class CostModel:
    """Per-layer costs ``a_j`` (activation backward), ``w_j`` (weight gradient), ``u_j`` (update)
    and the always-paid forward cost ``F``.

    >>> m = CostModel(forward=2.0, activation=[1, 1, 1], weight=[1, 1, 1], update=[0, 0, 0])
    >>> m.cost({2, 3}), m.rpt_cost(1)
    (5.0, 7.0)
    >>> m.expected_cost_rpt([0.5, 0, 0.5])
    5.0
    """

    forward: float
    activation: np.ndarray
    weight: np.ndarray
    update: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "forward", check_scalar("forward", self.forward, "nonnegative"))
        a = check_layer_array("activation", self.activation, "nonnegative")
        w = check_layer_array("weight", self.weight, "nonnegative")
        u = check_layer_array("update", self.update, "nonnegative")
        check_same_length(activation=a, weight=w, update=u)
        with np.errstate(over="ignore"):  # a total beyond the largest double is inf, i.e. positive
            total = self.forward + a.sum() + w.sum() + u.sum()
        if total <= 0:
            raise ValueError("the cost model is identically zero; give some positive cost")
        object.__setattr__(self, "activation", a)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "update", u)

    @classmethod
    def linear(cls, costs, forward: float = 0.0) -> "CostModel":
        """The lumped model ``cost(S) = F + Σ_{j∈S} c_j`` (``c_j`` must be positive).

        >>> CostModel.linear([1, 2, 3], forward=1).rpt_cost(2)
        6.0
        """
        c = check_layer_array("costs", costs, "positive")
        return cls(forward=forward, activation=np.zeros_like(c), weight=c, update=np.zeros_like(c))

    @property
    def nlayers(self) -> int:
        return len(self.weight)

    @functools.cached_property
    def per_layer(self) -> np.ndarray:
        """``v_j = w_j + u_j``: the work paid only when layer ``j`` is sampled (read-only)."""
        v = self.weight + self.update
        v.flags.writeable = False
        return v

    def cost(self, S) -> float:
        """``cost(S)`` for a set of 1-based layer numbers; ``cost(∅) = F``."""
        members = sorted({int(j) for j in S})
        if not members:
            return self.forward
        if members[0] < 1 or members[-1] > self.nlayers:
            raise ValueError(f"set {set(S)!r} names a layer outside 1..{self.nlayers}")
        idx = np.asarray(members) - 1
        s = members[0]
        return float(self.forward + self.activation[s:].sum() + self.per_layer[idx].sum())

    def rpt_cost(self, start: int) -> float:
        """``cost({s, …, b})`` for a start index ``s`` (1-based)."""
        s = check_positive_int("start", start)
        if s > self.nlayers:
            raise ValueError(f"start index s = {s} is outside 1..{self.nlayers}")
        return float(self.forward + self.activation[s:].sum() + self.per_layer[s - 1 :].sum())

    def rpt_costs(self, copy: bool = True) -> np.ndarray:
        """``cost({s, …, b})`` for every start ``s = 1..b`` (vectorised); ``copy=False`` returns the
        cached read-only array (no copy: what the solvers use at b ~ 10^6)."""
        return self._rpt_costs.copy() if copy else self._rpt_costs

    @functools.cached_property
    def _a_above(self) -> np.ndarray:
        return np.concatenate([np.cumsum(self.activation[::-1])[::-1][1:], [0.0]])

    @functools.cached_property
    def _rpt_costs(self) -> np.ndarray:
        with np.errstate(over="ignore"):  # costs near the largest double: inf, refused by the solvers
            c = self.forward + self._a_above + np.cumsum(self.per_layer[::-1])[::-1]
        c.flags.writeable = False
        return c

    def expected_cost_inclusion(self, pi) -> float:
        """``F + Σ_j π_{j−1} a_j + Σ_j π_j v_j``: the RPT expected cost written in ``π``."""
        p = check_layer_array("pi", pi, "nonnegative")
        check_same_length(pi=p, costs=self.weight)
        prev = np.concatenate([[0.0], p[:-1]])
        return float(self.forward + prev @ self.activation + p @ self.per_layer)

    def expected_cost_rpt(self, start_probs) -> float:
        """``E cost`` under RPT with start distribution ``p``."""
        pi = inclusion_from_start(start_probs)
        check_same_length(start_probs=pi, costs=self.weight)
        return self.expected_cost_inclusion(pi)

    def expected_cost_independent(self, pi) -> float:
        """``E cost`` when each layer is sampled independently with probability ``π_j``:
        ``F + Σ_j a_j P(min S < j) + Σ_j π_j v_j`` with ``P(min S < j) = 1 − Π_{k<j}(1 − π_k)``."""
        p = check_layer_array("pi", pi, "unit_closed")
        check_same_length(pi=p, costs=self.weight)
        none_below = np.concatenate([[1.0], np.cumprod(1.0 - p)[:-1]])
        return float(self.forward + (1.0 - none_below) @ self.activation + p @ self.per_layer)

    def expected_cost_subsets(self, sets, probs) -> float:
        """``E cost = Σ_S q_S cost(S)`` for an explicit distribution over subsets."""
        d = SubsetDistribution(self.nlayers, sets, probs)
        return float(sum(p * self.cost(S) for S, p in zip(d.sets, d.probs)))

    def expected_cost_compact(self, lowest_probs, include_probs) -> float:
        """``E cost`` for :class:`~dropmuon.theory.sampling.CompactSubsets`:
        ``Σ_s ρ_s (F + A_s + v_s) + Σ_j v_j θ_j P_j`` with ``A_s = Σ_{j>s} a_j``,
        ``P_j = Σ_{s<j} ρ_s``."""
        d = CompactSubsets(lowest_probs, include_probs)
        check_same_length(lowest_probs=d.lowest_probs, costs=self.weight)
        return float(d.lowest_probs @ self.lowest_costs() + (self.per_layer * d.include_probs) @ d.mass_below)

    def lowest_costs(self) -> np.ndarray:
        """``F + A_s + v_s`` for every lowest layer ``s``: the cost a set pays for its lowest layer
        (forward, backward through every activation above it, and its own weight work)."""
        return self.forward + self._a_above + self.per_layer

    def expected_cost(self, distribution) -> float:
        """``E cost`` for an :class:`~dropmuon.theory.sampling.RPT`, :class:`~dropmuon.theory.sampling.Independent`,
        :class:`~dropmuon.theory.sampling.SubsetDistribution` or :class:`~dropmuon.theory.sampling.CompactSubsets`."""
        if getattr(distribution, "nlayers", None) != self.nlayers:
            raise ValueError(
                f"the distribution has {getattr(distribution, 'nlayers', '?')} layers but the cost "
                f"model has {self.nlayers}"
            )
        if isinstance(distribution, RPT):  # validated already: use its inclusion directly
            pi = distribution.inclusion
            return float(self.forward + pi[:-1] @ self.activation[1:] + pi @ self.per_layer)
        if isinstance(distribution, Independent):
            return self.expected_cost_independent(distribution.pi)
        if isinstance(distribution, SubsetDistribution):
            return self.expected_cost_subsets(distribution.sets, distribution.probs)
        if isinstance(distribution, CompactSubsets):
            d = distribution
            return float(d.lowest_probs @ self.lowest_costs() + (self.per_layer * d.include_probs) @ d.mass_below)
        raise ValueError(f"unknown distribution {distribution!r}")

    @property
    def full_cost(self) -> float:
        """Cost of a full-network step ``cost({1, …, b})``."""
        return float(self._rpt_costs[0])


def total_cost(theorem, epsilon, cost_model: CostModel, distribution, **constants) -> float:
    """``TC(D) = K(ε, π(D)) · E_D cost(S)``: iterations from ``theorem`` at the distribution's
    inclusion probabilities, times the expected cost per iteration.

    >>> from dropmuon.theory.bounds import smooth_deterministic
    >>> m = CostModel.linear([1, 1, 1, 1])
    >>> total_cost(smooth_deterministic, 1.0, m, RPT([0.2, 0.8, 0, 0]), L=[1, 5, 3, 2], Delta0=0.5)
    16.0
    """
    pi = distribution.inclusion
    K = theorem.iterations(epsilon, pi=pi, **constants)
    return float(K * cost_model.expected_cost(distribution))
