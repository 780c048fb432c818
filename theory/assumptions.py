"""Assumptions A1–A4 (docs/theory.md) as objects that carry their constants and state themselves.

Each class has a generic statement (``latex_generic()``, over symbols) and, once built with
constants, ``latex()`` and ``statement()`` with those constants filled in. Constructors validate
their inputs and raise ``ValueError`` naming the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


from ._validation import check_layer_array, check_same_length

__all__ = [
    "Assumption",
    "LayerwiseSmoothness",
    "LayerwiseL0L1Smoothness",
    "StochasticGradients",
    "IndependentSampling",
    "ASSUMPTIONS",
]


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


class Assumption:
    """Base class: a labelled assumption (``A1`` … ``A4``) with its constants."""

    label: ClassVar[str] = ""
    title: ClassVar[str] = ""
    _generic: ClassVar[str] = ""
    _text: ClassVar[str] = ""

    @classmethod
    def latex_generic(cls) -> str:
        """The statement over symbols, as LaTeX."""
        return cls._generic

    def constants(self) -> dict[str, tuple[float, ...]]:
        """The constants this instance carries, by name."""
        raise NotImplementedError

    @property
    def nlayers(self) -> int:
        """Number of layers ``b``."""
        return len(next(iter(self.constants().values())))

    def latex(self) -> str:
        """The statement with this instance's constants, as LaTeX."""
        consts = ", ".join(
            rf"{_LATEX_NAMES.get(k, k)} = {_fmt(v)}" for k, v in self.constants().items()
        )
        return rf"\text{{{self.label} ({self.title})}}: {self._generic} \quad\text{{with }} {consts}"

    def statement(self) -> str:
        """The statement with this instance's constants, as plain text."""
        consts = ", ".join(f"{k} = {_fmt(v)}" for k, v in self.constants().items())
        return f"{self.label} ({self.title}): {self._text}, with {consts}"

    def __str__(self) -> str:
        return self.statement()


_LATEX_NAMES = {
    "L": "L",
    "L0": "L^{0}",
    "L1": "L^{1}",
    "sigma": r"\sigma",
    "rho": r"\rho",
    "pi": r"\pi",
}


def _tuple(name, values, domain) -> tuple[float, ...]:
    return tuple(float(v) for v in check_layer_array(name, values, domain))


@dataclass(frozen=True)
class LayerwiseSmoothness(Assumption):
    """A1 — layer-wise smoothness with constants ``L_i``.

    ``form="lipschitz"``: ``‖∇_i f(X) − ∇_i f(Y)‖_(i)* ≤ L_i ‖X_i − Y_i‖_(i)`` for all ``X, Y``
    (which forces ``f`` to be separable across layers). ``form="descent"`` (weaker, enough for
    every deterministic theorem): ``f(Y) ≤ f(X) + ⟨∇f(X), Y − X⟩ + Σ_i (L_i/2)‖Y_i − X_i‖_(i)²``.

    >>> LayerwiseSmoothness(L=(1, 4, 2)).statement()
    'A1 (layer-wise smoothness, descent form): f(Y) <= f(X) + <grad f(X), Y - X> + sum_i (L_i/2) ||Y_i - X_i||_(i)^2, with L = (1, 4, 2)'
    """

    L: tuple[float, ...]
    form: str = "descent"

    label: ClassVar[str] = "A1"

    def __post_init__(self):
        if self.form not in ("descent", "lipschitz"):
            raise ValueError(f"A1 form must be 'descent' or 'lipschitz'; got form = {self.form!r}")
        object.__setattr__(self, "L", _tuple("L", self.L, "positive"))

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"layer-wise smoothness, {self.form} form"

    @property
    def _generic(self) -> str:  # type: ignore[override]
        if self.form == "descent":
            return (
                r"f(Y) \le f(X) + \langle \nabla f(X), Y - X\rangle"
                r" + \sum_{i=1}^{b} \frac{L_i}{2}\|Y_i - X_i\|_{(i)}^2"
            )
        return r"\|\nabla_i f(X) - \nabla_i f(Y)\|_{(i)*} \le L_i \|X_i - Y_i\|_{(i)}"

    @property
    def _text(self) -> str:  # type: ignore[override]
        if self.form == "descent":
            return "f(Y) <= f(X) + <grad f(X), Y - X> + sum_i (L_i/2) ||Y_i - X_i||_(i)^2"
        return "||grad_i f(X) - grad_i f(Y)||_(i)* <= L_i ||X_i - Y_i||_(i) for all X, Y"

    @classmethod
    def latex_generic(cls, form: str = "descent") -> str:
        return cls(L=(1.0,), form=form)._generic

    def constants(self):
        return {"L": self.L}


@dataclass(frozen=True)
class LayerwiseL0L1Smoothness(Assumption):
    """A2 — layer-wise (L0,L1)-smoothness [Gluon]:
    ``‖∇_i f(X) − ∇_i f(Y)‖_(i)* ≤ (L0_i + L1_i ‖∇_i f(X)‖_(i)*) ‖X_i − Y_i‖_(i)``.

    ``L0_i ≥ 0`` (Gluon measured ``L0 ≈ 0``), ``L1_i > 0``.

    >>> LayerwiseL0L1Smoothness(L0=(0, 1), L1=(2, 3)).nlayers
    2
    """

    L0: tuple[float, ...]
    L1: tuple[float, ...]

    label: ClassVar[str] = "A2"
    title: ClassVar[str] = "layer-wise (L0,L1)-smoothness"
    _generic: ClassVar[str] = (
        r"\|\nabla_i f(X) - \nabla_i f(Y)\|_{(i)*} \le "
        r"\left(L^{0}_i + L^{1}_i \|\nabla_i f(X)\|_{(i)*}\right)\|X_i - Y_i\|_{(i)}"
    )
    _text: ClassVar[str] = (
        "||grad_i f(X) - grad_i f(Y)||_(i)* <= (L0_i + L1_i ||grad_i f(X)||_(i)*) ||X_i - Y_i||_(i)"
    )

    def __post_init__(self):
        object.__setattr__(self, "L0", _tuple("L0", self.L0, "nonnegative"))
        object.__setattr__(self, "L1", _tuple("L1", self.L1, "positive"))
        check_same_length(L0=self.L0, L1=self.L1)

    def constants(self):
        return {"L0": self.L0, "L1": self.L1}


@dataclass(frozen=True)
class StochasticGradients(Assumption):
    """A3 — unbiased stochastic gradients, independent across iterations, with Euclidean variance
    ``E‖G_i − ∇_i f(X)‖_2² ≤ σ_i²`` and norm equivalence ``‖·‖_(i)* ≤ ρ_i ‖·‖_2``.

    For the nuclear norm of an ``m × n`` block, ``ρ_i = sqrt(min(m, n))``.

    >>> StochasticGradients(sigma=(0.1,), rho=(2,)).constants()
    {'sigma': (0.1,), 'rho': (2.0,)}
    """

    sigma: tuple[float, ...]
    rho: tuple[float, ...]

    label: ClassVar[str] = "A3"
    title: ClassVar[str] = "stochastic gradients"
    _generic: ClassVar[str] = (
        r"\mathbb{E}[G_i] = \nabla_i f(X),\ \mathbb{E}\|G_i - \nabla_i f(X)\|_2^2 \le \sigma_i^2,"
        r"\ \|\cdot\|_{(i)*} \le \rho_i \|\cdot\|_2"
    )
    _text: ClassVar[str] = (
        "E G_i = grad_i f(X), E||G_i - grad_i f(X)||_2^2 <= sigma_i^2, ||.||_(i)* <= rho_i ||.||_2"
    )

    def __post_init__(self):
        object.__setattr__(self, "sigma", _tuple("sigma", self.sigma, "nonnegative"))
        object.__setattr__(self, "rho", _tuple("rho", self.rho, "positive"))
        check_same_length(sigma=self.sigma, rho=self.rho)

    def constants(self):
        return {"sigma": self.sigma, "rho": self.rho}


@dataclass(frozen=True)
class IndependentSampling(Assumption):
    """A4 — the layer set ``S^k`` is drawn i.i.d. across iterations, independently of the past and
    of the data sample, with inclusion probabilities ``π_i = P(i ∈ S^k) > 0``.

    >>> IndependentSampling(pi=(0.5, 1)).pi
    (0.5, 1.0)
    """

    pi: tuple[float, ...]

    label: ClassVar[str] = "A4"
    title: ClassVar[str] = "sampling"
    _generic: ClassVar[str] = (
        r"S^k \overset{\text{i.i.d.}}{\sim} \mathcal{D} \perp (X^k, \xi^k),"
        r"\quad \pi_i = \mathbb{P}(i \in S^k) > 0"
    )
    _text: ClassVar[str] = (
        "S^k i.i.d. from D, independent of the past and of the data, pi_i = P(i in S^k) > 0"
    )

    def __post_init__(self):
        object.__setattr__(self, "pi", _tuple("pi", self.pi, "probability"))

    def constants(self):
        return {"pi": self.pi}


ASSUMPTIONS = {
    "A1": LayerwiseSmoothness,
    "A2": LayerwiseL0L1Smoothness,
    "A3": StochasticGradients,
    "A4": IndependentSampling,
}
