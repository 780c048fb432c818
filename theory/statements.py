"""What a theorem is made of and what it returns, as frozen dataclasses: a :class:`Statement` (one
inequality, a sympy right-hand side and a numeric left-hand side), a :class:`TightInstance` (a
designed instance attaining it), a :class:`Bound` (a right-hand side evaluated at given constants)
and a :class:`LeadingTerm` (the leading term of ``K(ε)`` as ``ε → 0``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy as sp

from . import symbols as s

__all__ = ["Statement", "TightInstance", "Bound", "LeadingTerm"]

# LaTeX fragments of the built-in theorems' left-hand sides: the average over the iterations and
# the layer's dual gradient norm
_AVG = r"\frac{1}{K}\sum_{k=0}^{K-1}\mathbb{E}"
_G = r"\|\nabla_i f(X^k)\|_{(i)*}"


@dataclass(frozen=True)
class Statement:
    """One inequality of a theorem: ``lhs ≤ rhs`` (``kind`` upper), or ``≥`` (lower), or ``=`` on
    its tight instances only (tight)."""

    name: str
    lhs: str
    description: str
    rhs: sp.Expr
    kind: str = "upper"
    target: sp.Expr | None = None
    #: the numeric left-hand side: the left-hand side is ``(1/K) Σ_k E Σ_i term_i`` with ``term``
    #: an expression in ``g_i = ‖∇_i f(X^k)‖_(i)*`` (:data:`dropmuon.theory.symbols.g`) and the
    #: constants (entries indexed by ``i``; sums and maxima over the layers allowed)
    term: sp.Expr | None = None

    def latex(self) -> str:
        """``lhs \\le rhs`` as LaTeX."""
        rel = {"upper": r"\le", "lower": r"\ge", "tight": "="}[self.kind]
        return f"{self.lhs} {rel} {s.latex(self.rhs)}"


@dataclass(frozen=True)
class TightInstance:
    """A designed instance on which a statement is attained (``observed/bound ≥ 0.99``), as data a
    check builds and runs (:func:`dropmuon.verification.synthetic.checks.check_tight_instance`).

    ``problem``: ``{"kind": "separable-quadratic", "curvature": [...], "shapes": [...],
    "norms": ..., "x0": [...] (one nested list per layer, optional), "seed": ...}``; the sampling
    is full (``π ≡ 1``); ``K`` iterations; ``options``: keyword arguments of the check (``eta``,
    ``l1``, and ``lmo`` as ``{"kind": "perturbed", "mode": "shrink", "delta": 0.3}``); ``ratio``:
    the predicted ``observed/bound`` where it is known in closed form (``None``: 1 up to rounding).
    """

    description: str
    statement: str
    K: int
    problem: Mapping
    options: Mapping = field(default_factory=dict)
    ratio: float | None = None


@dataclass(frozen=True)
class Bound:
    """A theorem's right-hand side evaluated at given constants.

    ``value`` is the bound, ``terms`` its additive terms (LaTeX of the term, value) summing to
    ``value`` (up to rounding), ``kind`` the kind of claim, ``target`` the accuracy target when one
    was given, and ``parameters`` the step parameters (given or from the rule) it was evaluated at.
    """

    theorem: str
    statement: str
    kind: str
    K: float
    value: float
    terms: tuple[tuple[str, float], ...]
    parameters: Mapping[str, float]
    source: str
    target: float | None = None

    @property
    def reaches_target(self) -> bool | None:
        """Whether the bound is at most the target (``None`` without a target)."""
        return None if self.target is None else bool(self.value <= self.target)


@dataclass(frozen=True)
class LeadingTerm:
    """The leading term of a theorem's iteration count as the accuracy target shrinks:
    ``K(ε) ≈ coefficient · ε^(−power)`` as ``ε → 0`` (:meth:`Theorem.iterations_leading`).

    ``expression``: the coefficient as an expression of the constants; ``closed_form``: ``K(ε)``
    itself (real, before rounding up) where these inputs have one, else ``None`` (the term is then
    an asymptote, e.g. T3's with noise). Its ratio between two sampling distributions is the
    ``ε``-free limit of their iteration ratio ``K(π)/K(π')``.

    >>> from dropmuon.theory import l0l1_deterministic as T2
    >>> t = T2.iterations_leading("unweighted", L0=[1, 0], L1=[1, 2], pi=[0.5, 1], Delta0=3)
    >>> t.coefficient, t.power, t.exact, t.ratio_free_of_Delta0
    (12.0, 2, False, True)
    """

    theorem: str
    statement: str
    coefficient: float
    power: float
    expression: sp.Expr
    #: ``K(ε)`` equals this term at every ``ε``: a closed form whose other powers of ``ε`` vanish
    #: at these constants
    exact: bool = False
    closed_form: sp.Expr | None = None

    def at(self, epsilon) -> float:
        """``coefficient · ε^(−power)``."""
        return float(self.coefficient * float(epsilon) ** (-self.power))

    @property
    def ratio_free_of_Delta0(self) -> bool:
        """The coefficient is ``Δ0`` times an expression free of it, so its ratio between two
        sampling distributions does not depend on ``Δ0``."""
        return not (self.expression / s.Delta0).has(s.Delta0)

    @property
    def closed_form_proportional_to_Delta0(self) -> bool:
        """``K(ε)`` has a closed form proportional to ``Δ0`` at every ``ε`` (so ratios of ``K`` at
        one ``ε`` do not depend on ``Δ0`` either)."""
        return self.closed_form is not None and not (self.closed_form / s.Delta0).has(s.Delta0)
