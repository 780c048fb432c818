"""Theorems T1, T1′, T2, T3, T4 of THEORY.md §4, one object each.

Every theorem is written once, as generic sympy expressions over ``b`` layers (``Σ_i``, ``max_i``);
its LaTeX, its concrete form for a given ``b`` and its numpy evaluation are all generated from those
expressions (:mod:`dropmuon.theory.symbols`). All five statements are **derived in this project** (the
paper's own displayed statements could not be consulted); the proofs are in ``docs/theory.md``.

Common vocabulary:

* a *statement* is one inequality ``lhs ≤ rhs(K, constants, step parameters)``;
* the *rate* statement is the one whose right-hand side is compared with the accuracy target
  (``ε`` or ``ε²``) to give the iteration complexity ``K(ε)``;
* a *step rule* gives the algorithm's step sizes / radii (and momentum), possibly depending on
  ``K``; parameters a user fixes (``eta=…``, ``beta=…``) override the rule.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import sympy as sp

from . import symbols as s
from ._validation import check_layer_array, check_positive_int, check_same_length, check_scalar
from .assumptions import (
    IndependentSampling,
    LayerwiseL0L1Smoothness,
    LayerwiseSmoothness,
    StochasticGradients,
)

__all__ = [
    "Statement",
    "Bound",
    "Theorem",
    "SmoothDeterministic",
    "SmoothConstantRadius",
    "L0L1Deterministic",
    "SmoothStochastic",
    "InexactConstantRadius",
    "smooth_deterministic",
    "smooth_constant_radius",
    "l0l1_deterministic",
    "smooth_stochastic",
    "inexact_constant_radius",
    "gluon_theorem1_iterations",
    "ROUNDING_RTOL",
]

# A closed-form K(ε) is exact in real arithmetic; evaluating it in floating point is off by a few
# ulps, so a value that is mathematically an integer may come out as that integer plus 1e-15
# relative. Rounding up after shrinking by this relative slack keeps such K from gaining a spurious
# extra iteration; the result is then re-checked against the bound itself.
ROUNDING_RTOL = 1e-12

# the search for the smallest K gives up beyond this many iterations (an unreachable target)
MAX_ITERATIONS = 2.0**100

_DOMAINS = {
    "L": "positive",
    "L0": "nonnegative",
    "L1": "positive",
    "pi": "probability",
    "sigma": "nonnegative",
    "rho": "positive",
    "delta": "unit_open",
    "Delta0": "positive",
    "eta": "positive",
    "beta": "probability",
}
_PER_LAYER_ORDER = tuple(s.PER_LAYER)
_SCALAR_ORDER = ("Delta0", "K", "eta", "beta", "epsilon", "b")

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

    def latex(self) -> str:
        """``lhs \\le rhs`` as LaTeX."""
        rel = {"upper": r"\le", "lower": r"\ge", "tight": "="}[self.kind]
        return f"{self.lhs} {rel} {s.latex(self.rhs)}"


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


_DOUBLE_MAX = float(np.finfo(float).max)


def _mp_log10(x):
    import mpmath

    return mpmath.log10(x)


def _ceil_tol(x: float) -> int:
    return max(1, math.ceil(x * (1.0 - ROUNDING_RTOL)))


def _iterations_dict(value, rate: str) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    return {rate: value}


def _indexed_names(expr: sp.Expr) -> set[str]:
    return {str(x.label) for x in expr.atoms(sp.IndexedBase)}


class Theorem:
    """Base class of the theorem objects; see the subclasses for the statements.

    Subclasses set the class attributes and ``_build()``; everything numeric is generated.
    """

    name: str = ""
    label: str = ""
    title: str = ""
    algorithm: str = ""
    source: str = ""
    derived: bool = True
    step_rule_text: str = ""
    tight_instance: str | None = None
    defaults: Mapping[str, float] = MappingProxyType({})
    parameters: tuple[str, ...] = ()  # scalar step parameters a user may fix
    rate: str = "rate"

    def __init__(self):
        self._fns: dict = {}

    # Everything symbolic is built on first use, so that importing the package stays cheap.
    @functools.cached_property
    def _built(self) -> dict:
        built = self._build()
        out = {
            "statements": MappingProxyType({st.name: st for st in built["statements"]}),
            "step": MappingProxyType(built.get("step", {})),
            "optimal": MappingProxyType(built["optimal"]) if built.get("optimal") is not None else None,
            "iterations": _iterations_dict(built.get("iterations"), self.rate),
            # rules are built once per set of user-fixed parameters (sympy construction is slow)
            "rules": {fixed: self._rules(fixed) for fixed in self._fixed_options()},
        }
        names: set[str] = set()
        for st in out["statements"].values():
            names |= _indexed_names(st.rhs)
        for rules in out["rules"].values():
            for e in rules.values():
                names |= _indexed_names(e)
        for e in out["step"].values():
            names |= _indexed_names(e)
        out["per_layer"] = tuple(n for n in _PER_LAYER_ORDER if n in names)
        return out

    @property
    def statements(self) -> Mapping[str, Statement]:
        """The theorem's statements by name (the rate statement is ``self.rate``)."""
        return self._built["statements"]

    @property
    def step_rule(self) -> Mapping[str, sp.Expr]:
        """The step rule's quantities as expressions (per-layer ones indexed by ``i``)."""
        return self._built["step"]

    @property
    def optimal_step(self) -> Mapping[str, sp.Expr] | None:
        """Closed-form optimal step parameters, where the bound has them."""
        return self._built["optimal"]

    @property
    def iterations_expression(self) -> sp.Expr | None:
        """The closed-form ``K(ε)`` (before rounding up) of the rate statement for the default
        rule, if there is one."""
        return self._built["iterations"].get(self.rate)

    @property
    def iterations_expressions(self) -> Mapping[str, sp.Expr]:
        """Closed-form ``K(ε)`` per statement with an accuracy target (default rule)."""
        return MappingProxyType(self._built["iterations"])

    @property
    def per_layer(self) -> tuple[str, ...]:
        """Names of the per-layer constants the theorem uses."""
        return self._built["per_layer"]

    @property
    def required(self) -> tuple[str, ...]:
        """Per-layer constants without a default (must be given)."""
        return tuple(n for n in self.per_layer if n not in self.defaults)

    @property
    def _rule_table(self) -> dict:
        return self._built["rules"]

    # -- to override ------------------------------------------------------------------------
    def _build(self) -> dict:
        raise NotImplementedError

    def _rules(self, fixed: frozenset) -> dict[str, sp.Expr]:
        """Step parameters not fixed by the user, in evaluation order, as expressions."""
        return {}

    def _closed_form(self, fixed: frozenset, values: Mapping, statement: str) -> sp.Expr | None:
        """The closed-form ``K(ε)`` (before rounding up) valid for these inputs, if there is one."""
        return None if fixed else self._built["iterations"].get(statement)

    def assumptions_for(self, **constants) -> tuple:
        """The assumption objects this theorem needs, built with the given constants."""
        raise NotImplementedError

    # -- symbolic ----------------------------------------------------------------------------
    def _fixed_options(self):
        from itertools import combinations

        ps = self.parameters
        return [frozenset(c) for r in range(len(ps) + 1) for c in combinations(ps, r)]

    def statement(self, name: str | None = None) -> Statement:
        """The statement called ``name`` (default: the rate statement)."""
        name = self.rate if name is None else name
        try:
            return self.statements[name]
        except KeyError:
            raise ValueError(
                f"theorem {self.name} has no statement {name!r}; it has: {', '.join(self.statements)}"
            ) from None

    def expression(self, statement: str | None = None, tuned: bool = False) -> sp.Expr:
        """The generic right-hand side; with ``tuned=True`` the step rule is substituted."""
        e = self.statement(statement).rhs
        if tuned:
            # later rules may refer to earlier parameters (eta to beta): substitute the last first
            for p, rule in reversed(list(self._rule_table[frozenset()].items())):
                e = e.subs(s.SCALARS[p], rule)
        return e

    def concrete(self, nlayers: int, statement: str | None = None, tuned: bool = False) -> sp.Expr:
        """The right-hand side for ``nlayers`` layers, over symbols ``L_1, …, L_b``."""
        return s.concrete(self.expression(statement, tuned), check_positive_int("nlayers", nlayers))

    def latex(self, statement: str | None = None) -> str:
        """LaTeX of a statement (default: the rate statement), ``lhs \\le rhs``."""
        return self.statement(statement).latex()

    def latex_all(self) -> str:
        """LaTeX of every statement, the step rule and ``K(ε)``, as one ``aligned`` block."""
        lines = [st.latex().replace(r" \le ", r" &\le ", 1) for st in self.statements.values()]
        for n, e in self.step_rule.items():
            lines.append(rf"\text{{{n}}} &= {s.latex(e)}")
        if self.iterations_expression is not None:
            lines.append(rf"K(\epsilon) &= \left\lceil {s.latex(self.iterations_expression)} \right\rceil")
        return r"\begin{aligned}" + r" \\ ".join(lines) + r"\end{aligned}"

    # -- numeric -----------------------------------------------------------------------------
    def prepare(self, **constants) -> dict:
        """Validate the constants and fill in defaults; returns the dictionary used numerically.

        Per-layer constants become 1-D float arrays of one common length; ``Delta0`` and any
        fixed step parameter (``eta``, ``beta``) become floats. Unknown names raise ``ValueError``.
        """
        allowed = set(self.per_layer) | {"Delta0"} | set(self.parameters)
        for k in constants:
            if k not in allowed:
                raise ValueError(
                    f"theorem {self.name} does not take {k!r}; it takes: {', '.join(sorted(allowed))}"
                )
        out: dict = {}
        for n in self.required:
            if constants.get(n) is None:
                raise ValueError(f"theorem {self.name} needs the per-layer constants {n}")
        for n in self.per_layer:
            if constants.get(n) is not None:
                out[n] = check_layer_array(n, constants[n], _DOMAINS[n])
        b = check_same_length(**{n: out[n] for n in out})
        for n in self.per_layer:
            if n not in out:
                out[n] = np.full(b, float(self.defaults[n]))
        if constants.get("Delta0") is None:
            raise ValueError(f"theorem {self.name} needs Delta0 (the initial gap f(X^0) - f*)")
        out["Delta0"] = check_scalar("Delta0", constants["Delta0"], _DOMAINS["Delta0"])
        for p in self.parameters:
            if constants.get(p) is not None:
                out[p] = check_scalar(p, constants[p], _DOMAINS[p])
        out["b"] = b
        return out

    def _fn(self, key, expr, elementwise=False):
        f = self._fns.get(key)
        if f is None:
            if elementwise:
                body = expr.xreplace(
                    {ix: sp.Symbol(f"{ix.base.label}__arr") for ix in expr.atoms(sp.Indexed)}
                )
                args = [sp.Symbol(f"{n}__arr") for n in _PER_LAYER_ORDER] + [
                    s.SCALARS[n] for n in _SCALAR_ORDER
                ]
                raw = sp.lambdify(args, body, modules="numpy")

                def f(*a, _raw=raw):
                    with np.errstate(divide="ignore", invalid="ignore"):
                        return _raw(*a)

            else:
                f = s.numeric(expr, _PER_LAYER_ORDER, _SCALAR_ORDER)
            self._fns[key] = f
        return f

    def _args(self, v: Mapping, K, params: Mapping, epsilon=np.nan):
        b = v["b"]
        per = [v.get(n, np.ones(b)) for n in _PER_LAYER_ORDER]
        return per + [
            v["Delta0"],
            K,
            params.get("eta", np.nan),
            params.get("beta", np.nan),
            epsilon,
            b,
        ]

    def _choose_numeric(self, K, v: Mapping, params: dict, fixed: frozenset) -> dict:
        """Parameters without a closed-form rule, chosen numerically (none by default)."""
        return params

    def _apply_rules(self, K, v: Mapping, params: dict, fixed: frozenset) -> dict:
        for p, rule in self._rule_table[fixed].items():
            params[p] = self._fn(("rule", fixed, p), rule)(*self._args(v, K, params))
        return params

    def _params(self, K, v: Mapping) -> dict:
        """Step parameters at ``K`` (a float or an array of them): fixed, chosen, then ruled."""
        fixed = frozenset(p for p in self.parameters if p in v)
        params = {p: v[p] for p in fixed}
        params = self._choose_numeric(K, v, params, fixed)
        fixed = frozenset(params)
        params = self._apply_rules(K, v, params, fixed)
        if np.ndim(K) == 0:
            params = {p: float(x) for p, x in params.items()}
        return params

    def _value(self, key, expr, v, K, params, epsilon=np.nan) -> float:
        return float(self._fn(key, expr)(*self._args(v, K, params, epsilon)))

    def evaluate_many(self, Ks, statement: str | None = None, **constants) -> np.ndarray:
        """A statement's right-hand side at many iteration counts at once (vectorised), e.g. for
        a bound-versus-iterations plot. Same conventions as :meth:`evaluate`.

        >>> smooth_deterministic.evaluate_many([1, 2, 4], L=[1, 2], Delta0=1).tolist()
        [4.0, 2.0, 1.0]
        """
        K = np.asarray(Ks, dtype=float)
        if K.ndim != 1 or K.size == 0 or not np.all(np.isfinite(K)) or np.any(K < 1):
            raise ValueError(f"Ks must be a non-empty list of iteration counts >= 1; got {Ks!r}")
        st = self.statement(statement)
        v = self.prepare(**constants)
        return self._rhs_array(st, v, K)

    def _rhs_array(self, st: Statement, v: Mapping, K: np.ndarray) -> np.ndarray:
        params = self._params(K, v)
        out = self._fn(("rhs", st.name), st.rhs)(*self._args(v, K, params))
        return np.broadcast_to(np.asarray(out, dtype=float), K.shape).copy()

    def evaluate(self, K, statement: str | None = None, epsilon=None, **constants) -> Bound:
        """Evaluate a statement's right-hand side after ``K`` iterations.

        Step parameters not given follow the theorem's rule (which may depend on ``K``).
        ``epsilon``, when given, sets ``Bound.target`` (``ε`` or ``ε²``, per the statement).
        """
        K = float(check_positive_int("K", K))
        st = self.statement(statement)
        v = self.prepare(**constants)
        params = self._params(K, v)
        value = self._value(("rhs", st.name), st.rhs, v, K, params)
        terms = []
        for j, t in enumerate(sp.Add.make_args(st.rhs)):
            terms.append((s.latex(t), self._value(("term", st.name, j), t, v, K, params)))
        target = None
        if epsilon is not None:
            if st.target is None:
                raise ValueError(f"statement {st.name!r} of {self.name} has no accuracy target")
            eps = check_scalar("epsilon", epsilon)
            target = self._value(("target", st.name), st.target, v, K, params, eps)
        return Bound(
            theorem=self.name,
            statement=st.name,
            kind=st.kind,
            K=K,
            value=value,
            terms=tuple(terms),
            parameters=MappingProxyType(dict(params)),
            source=self.source,
            target=target,
        )

    def _rate_at(self, K: float, v: Mapping, statement: str | None = None) -> float:
        K = float(K)  # a Python int beyond 2^63 would become an object array in numpy
        st = self.statement(statement)
        return self._value(("rhs", st.name), st.rhs, v, K, self._params(K, v))

    def target(self, epsilon, statement: str | None = None) -> float:
        """The value a statement's right-hand side must reach (``ε`` or ``ε²``); default: the
        rate statement."""
        eps = check_scalar("epsilon", epsilon)
        st = self.statement(statement)
        if st.target is None:
            raise ValueError(f"statement {st.name!r} of {self.name} has no accuracy target")
        try:
            return float(st.target.subs(s.epsilon, eps))
        except OverflowError:
            return math.inf

    def iterations(self, epsilon, statement: str | None = None, **constants) -> int:
        """The smallest ``K`` whose bound is at most the target for accuracy ``ε`` (default: the
        rate statement).

        Uses the closed form ``K(ε)`` when the inputs admit one, otherwise a bisection on the
        bound (non-increasing in ``K`` for every step rule here). Raises ``ValueError`` when
        fixed step parameters leave the bound above the target for every ``K``.
        """
        eps = check_scalar("epsilon", epsilon)
        st = self.statement(statement)
        target = self.target(eps, st.name)
        target_ok = 0 < target < math.inf  # ε² leaves the range of a double beyond ~1e±154
        v = self.prepare(**constants)
        fixed = frozenset(p for p in self.parameters if p in v)
        cf = self._closed_form(fixed, v, st.name)
        if cf is not None:
            K = _ceil_tol(self._closed_form_value(("K", fixed, st.name), cf, v, eps))
            # guard against rounding the wrong way: the bound itself decides (a few steps at
            # most; where the bound or the target leaves a double the closed form alone decides)
            for _ in range(4 if target_ok else 0):
                try:
                    with np.errstate(over="ignore"):
                        rate = self._rate_at(K, v, st.name)
                except ArithmeticError:  # step parameters over- or underflowing a double
                    break
                if not (math.isfinite(rate) and rate > target * (1 + ROUNDING_RTOL)):
                    break
                K += 1
            return K
        if not target_ok:
            raise ValueError(f"{self.name}: the accuracy target at epsilon = {eps:g} is {target:g}, "
                             "outside the range of a double; choose epsilon in [1e-150, 1e150]")
        return self._search(v, target, fixed, st.name)

    def iterations_real(self, epsilon, statement: str | None = None, **constants) -> float:
        """The closed-form ``K(ε)`` as a real number, before rounding up (what cost comparisons
        use, so that they are not dominated by rounding); ``ValueError`` when these inputs have
        no closed form.

        >>> smooth_deterministic.iterations_real(0.3, L=[1, 4, 2], Delta0=1)
        88.88888888888889
        """
        eps = check_scalar("epsilon", epsilon)
        st = self.statement(statement)
        v = self.prepare(**constants)
        fixed = frozenset(p for p in self.parameters if p in v)
        cf = self._closed_form(fixed, v, st.name)
        if cf is None:
            raise ValueError(f"{self.name}: statement {st.name!r} has no closed-form K(eps) here")
        return self._closed_form_value(("K", fixed, st.name), cf, v, eps)

    def _closed_form_value(self, key, cf, v, eps) -> float:
        """The closed-form ``K(ε)`` in double precision; where an intermediate product or
        quotient overflows or underflows (``ε²`` below 1e-308, ``Δ0·L`` above 1e308: constants
        anywhere in [1e-300, 1e300]) it is recomputed with mpmath, whose exponent range is
        unbounded. A ``K`` beyond the largest double is a ``ValueError`` naming ``ε``."""
        try:
            with np.errstate(over="ignore", under="ignore"):
                x = self._value(key, cf, v, np.nan, {}, eps)
        except OverflowError:  # a Python float power (ε²) out of range
            x = math.inf
        if math.isfinite(x):
            return x
        exact = self._value_mpmath(cf, v, eps)
        if exact is None or not exact < _DOUBLE_MAX:
            shown = "nan" if exact is None else f"{float(_mp_log10(exact)):.0f}"
            raise ValueError(
                f"{self.name}: K(eps) at epsilon = {eps:g} is about 1e{shown} iterations, beyond the "
                f"largest double (1.8e308); choose a larger epsilon or smaller constants"
                if exact is not None else
                f"{self.name}: K(eps) at epsilon = {eps:g} is not a number for these constants"
            )
        return float(exact)

    def _value_mpmath(self, expr, v, eps):
        """``expr`` evaluated with mpmath numbers (per-layer constants as object arrays)."""
        import mpmath

        arr = s._to_array_form(expr)
        args = [s._array_symbol(n) for n in _PER_LAYER_ORDER] + [s.SCALARS[n] for n in _SCALAR_ORDER]
        fn = sp.lambdify(args, arr, modules=[{"layer_sum_": lambda x: mpmath.fsum(list(x)),
                                             "layer_max_": lambda x: max(list(x))}, "mpmath"])

        def conv(a):
            if isinstance(a, np.ndarray):
                return np.array([mpmath.mpf(float(t)) for t in a], dtype=object)
            if isinstance(a, (float, np.floating)) and not math.isfinite(a):
                return a
            return mpmath.mpf(a) if isinstance(a, (float, np.floating)) else a

        try:
            out = fn(*[conv(a) for a in self._args(v, np.nan, {}, eps)])
            out = mpmath.mpf(out)
        except (TypeError, ValueError, ArithmeticError):
            return None
        return None if mpmath.isnan(out) else out

    def _search(self, v, target: float, fixed, statement: str | None = None) -> int:
        """Smallest integer K with bound(K) <= target, for a bound non-increasing in K: powers of
        two bracket it, then rounds of 64 evaluations (one vectorised call each) narrow it."""
        st = self.statement(statement)
        if fixed:
            # the limit K -> infinity, at a K so large that every 1/K term has vanished
            floor = float(self._rhs_array(st, v, np.array([1e300]))[0])
            if not floor < target:
                given = ", ".join(f"{p} = {v[p]:g}" for p in sorted(fixed))
                raise ValueError(
                    f"{self.name}: with {given} the bound never falls below {floor:.6g} "
                    f"(its limit as K -> infinity), so the target {target:.6g} is unreachable; "
                    "choose a smaller step or let the rule choose it"
                )
        powers = 2.0 ** np.arange(0, 101)
        ok = self._rhs_array(st, v, powers) <= target
        if not ok.any():
            raise ValueError(f"{self.name}: the target {target:.6g} needs more than 2^100 iterations")
        j = int(np.argmax(ok))
        if j == 0:
            return 1
        lo, hi = powers[j - 1], powers[j]  # rate(lo) > target >= rate(hi)
        while hi - lo > 1:
            pts = np.unique(np.floor(np.linspace(lo, hi, 66)[1:-1]))
            pts = pts[(pts > lo) & (pts < hi)]
            if pts.size == 0:
                break
            good = self._rhs_array(st, v, pts) <= target
            if good.any():
                k = int(np.argmax(good))
                hi = pts[k]
                if k > 0:
                    lo = pts[k - 1]
            else:
                lo = pts[-1]
        return int(hi)

    def step(self, K, **constants) -> dict:
        """The step rule's values after ``K`` iterations' tuning: scalars as floats, per-layer
        quantities as arrays (e.g. ``gamma`` for T1, ``eta`` and ``radius`` for T1′)."""
        K = float(check_positive_int("K", K))
        v = self.prepare(**constants)
        params = self._params(K, v)
        out: dict = dict(params)
        for n, e in self.step_rule.items():
            if n in out:
                continue
            val = self._fn(("step", n), e, elementwise=True)(*self._args(v, K, params))
            out[n] = np.broadcast_to(np.asarray(val, dtype=float), (v["b"],)).copy()
        return out

    def __repr__(self) -> str:
        return f"<{self.label} {self.name}: {self.title}>"


def _sum(body):
    return s.layer_sum(body)


_i = s.i
L, L0, L1, PI = s.L[_i], s.L0[_i], s.L1[_i], s.pi[_i]
SIG, RHO, DEL = s.sigma[_i], s.rho[_i], s.delta[_i]
D0, K_, ETA, BETA, EPS = s.Delta0, s.K, s.eta, s.beta, s.epsilon


class SmoothDeterministic(Theorem):
    r"""T1 — deterministic Drop-Muon with sharp steps ``γ_i = 1/L_i`` under layer-wise smoothness.

    **Setting.** A1 (descent form) with constants ``L_i``; A4 with inclusion probabilities
    ``π_i``; exact gradients; ``β = 1`` (no momentum).

    **Algorithm.** Draw ``S^k``; for ``i ∈ S^k`` set ``X_i ← X_i − (1/L_i) (∇_i f)^♯``, i.e. an LMO
    step of radius ``t_i = ‖∇_i f‖_*/L_i``; other layers stay frozen.

    **Statement** (upper; the weighted statement is attained with equality on
    ``f = Σ_i (L_i/2)‖X_i‖_F²``, full sampling, ``K = 1``)::

        weighted: (1/K) Σ_k E Σ_i (π_i/L_i) ‖∇_i f(X^k)‖_*²  ≤  2Δ0/K
        rate:     (1/K) Σ_k E Σ_i ‖∇_i f(X^k)‖_*²            ≤  2Δ0 max_i(L_i/π_i)/K

    so ``K(ε) = ⌈2Δ0 max_i(L_i/π_i)/ε²⌉`` iterations reach ``ε²``.

    **Source.** THEORY.md §4 T1; derived here (``docs/theory.md`` §T1), not quoted from the paper.

    **Example.**

    >>> smooth_deterministic.iterations(0.1, L=[1, 4, 2], pi=[0.5, 1, 1], Delta0=10)
    8000
    >>> smooth_deterministic.evaluate(8000, L=[1, 4, 2], pi=[0.5, 1, 1], Delta0=10).value
    0.01
    """

    name = "smooth-deterministic"
    label = "T1"
    title = "deterministic, layer-wise smoothness, sharp steps 1/L_i"
    algorithm = "X_i <- X_i - (1/L_i) grad_i f(X)^sharp for i in S^k; beta = 1"
    source = "THEORY.md §4 T1 [derived]; proof in docs/theory.md §T1"
    step_rule_text = "gamma_i = 1/L_i (sharp step), i.e. radius t_i = ||grad_i f||_* / L_i"
    tight_instance = "f = sum_i (L_i/2)||X_i||_F^2 with the Frobenius norm, full sampling, K = 1"
    defaults = MappingProxyType({"pi": 1.0})

    def _build(self):
        weighted = Statement(
            "weighted",
            rf"{_AVG}\sum_{{i=1}}^{{b}} \frac{{\pi_i}}{{L_i}} {_G}^2",
            "pi/L-weighted squared dual gradient norms, averaged over the iterations",
            2 * D0 / K_,
        )
        rate = Statement(
            "rate",
            rf"{_AVG}\sum_{{i=1}}^{{b}} {_G}^2",
            "squared dual gradient norms, averaged over the iterations",
            2 * D0 * s.layer_max(L / PI) / K_,
            target=EPS**2,
        )
        gamma = 1 / L
        return {
            "statements": [weighted, rate],
            "step": {"gamma": gamma},
            "optimal": {"gamma": gamma},
            "iterations": 2 * D0 * s.layer_max(L / PI) / EPS**2,
        }

    def assumptions_for(self, **constants):
        v = self.prepare(**constants)
        return (LayerwiseSmoothness(tuple(v["L"])), IndependentSampling(tuple(v["pi"])))


class SmoothConstantRadius(Theorem):
    r"""T1′ — deterministic Drop-Muon with constant radii ``t_i = η/π_i`` under layer-wise smoothness.

    **Setting.** A1 (descent form) with constants ``L_i``; A4 with ``π_i``; exact gradients;
    ``β = 1``.

    **Algorithm.** For ``i ∈ S^k``: ``X_i ← X_i + LMO_{t_i}(∇_i f(X))`` with ``t_i = η/π_i``.

    **Statement** (upper)::

        (1/K) Σ_k E Σ_i ‖∇_i f(X^k)‖_*  ≤  Δ0/(Kη) + (η/2) Σ_i L_i/π_i

    minimised by ``η* = sqrt(2Δ0/(K Σ_i L_i/π_i))`` (the step rule), giving
    ``sqrt(2Δ0 Σ_i(L_i/π_i)/K)``, so ``K(ε) = ⌈2Δ0 Σ_i(L_i/π_i)/ε²⌉``.

    **Source.** THEORY.md §4 T1′; derived here (``docs/theory.md`` §T1′).

    **Example.**

    >>> smooth_constant_radius.iterations(0.1, L=[1, 4, 2], pi=[0.5, 1, 1], Delta0=10)
    16000
    >>> round(smooth_constant_radius.step(16000, L=[1, 4, 2], pi=[0.5, 1, 1], Delta0=10)["eta"], 6)
    0.0125
    """

    name = "smooth-constant-radius"
    label = "T1′"
    title = "deterministic, layer-wise smoothness, constant radii eta/pi_i"
    algorithm = "X_i <- X_i + LMO_{eta/pi_i}(grad_i f(X)) for i in S^k; beta = 1"
    source = "THEORY.md §4 T1′ [derived]; proof in docs/theory.md §T1′"
    step_rule_text = "t_i = eta/pi_i with eta = sqrt(2 Delta0 / (K sum_i L_i/pi_i)) unless given"
    defaults = MappingProxyType({"pi": 1.0})
    parameters = ("eta",)

    @property
    def _S(self):
        return _sum(L / PI)

    def _build(self):
        rate = Statement(
            "rate",
            rf"{_AVG}\sum_{{i=1}}^{{b}} {_G}",
            "dual gradient norms, averaged over the iterations",
            D0 / (K_ * ETA) + ETA / 2 * self._S,
            target=EPS,
        )
        eta_star = sp.sqrt(2 * D0 / (K_ * self._S))
        return {
            "statements": [rate],
            "step": {"eta": ETA, "radius": ETA / PI},
            "optimal": {"eta": eta_star},
            "iterations": 2 * D0 * self._S / EPS**2,
        }

    def _rules(self, fixed):
        return {} if "eta" in fixed else {"eta": sp.sqrt(2 * D0 / (K_ * self._S))}

    def assumptions_for(self, **constants):
        v = self.prepare(**constants)
        return (LayerwiseSmoothness(tuple(v["L"])), IndependentSampling(tuple(v["pi"])))


class L0L1Deterministic(Theorem):
    r"""T2 — deterministic Drop-Muon with Gluon's adaptive radius under layer-wise (L0,L1)-smoothness.

    **Setting.** A2 with ``L0_i ≥ 0``, ``L1_i > 0``; A4 with ``π_i``; exact gradients; ``β = 1``.

    **Algorithm.** For ``i ∈ S^k``: ``X_i ← X_i + LMO_{t_i}(g_i)`` with
    ``t_i = ‖g_i‖_*/(L0_i + L1_i ‖g_i‖_*)``.

    **Statement** (upper), with ``A(π) = Σ_i π_i L0_i/(L1_i)²`` and ``Q = 2Δ0/K``::

        weighted:   (1/K) Σ_k E Σ_i π_i ‖g_i^k‖_*²/(L0_i + L1_i‖g_i^k‖_*)  ≤  2Δ0/K
        rate:       (1/K) Σ_k E Σ_i (π_i/L1_i) ‖g_i^k‖_*  ≤  (Q + sqrt(Q² + 4 Q A(π)))/2
        unweighted: (1/K) Σ_k E Σ_i (1/L1_i) ‖g_i^k‖_*    ≤  (QW + sqrt(Q²W² + 4 Q A′(π)))/2

    so ``K(ε) = ⌈2Δ0/ε + 2Δ0 A(π)/ε²⌉``. With ``π ≡ 1`` this is exactly Gluon's Theorem 1
    (:func:`gluon_theorem1_iterations`, after Gluon's renormalisation of the weights). The rate
    weights layer ``i`` by ``π_i``, so rarely updated layers count less; the ``unweighted``
    statement, with ``W = max_i 1/π_i`` and ``A′(π) = Σ_i L0_i/(π_i L1_i²)``, needs
    ``K = ⌈2Δ0 W/ε + 2Δ0 A′(π)/ε²⌉`` and is the one to compare distributions with.

    **Source.** THEORY.md §4 T2 [derived]; proof in ``docs/theory.md`` §T2; the reduction to
    Gluon (arXiv 2505.13416, Theorem 1) is checked symbolically in the tests.

    **Example.**

    >>> l0l1_deterministic.iterations(0.1, L0=[0, 0], L1=[1, 2], Delta0=10)
    200
    """

    name = "l0l1-deterministic"
    label = "T2"
    title = "deterministic, layer-wise (L0,L1)-smoothness, Gluon's adaptive radius"
    algorithm = "X_i <- X_i + LMO_{t_i}(g_i), t_i = ||g_i||_*/(L0_i + L1_i ||g_i||_*), for i in S^k"
    source = "THEORY.md §4 T2 [derived]; proof in docs/theory.md §T2"
    step_rule_text = "t_i = ||g_i||_* / (L0_i + L1_i ||g_i||_*) (adaptive; at most 1/L1_i)"
    defaults = MappingProxyType({"pi": 1.0})

    @property
    def _A(self):
        return _sum(PI * L0 / L1**2)

    def _build(self):
        Q = 2 * D0 / K_
        weighted = Statement(
            "weighted",
            rf"{_AVG}\sum_{{i=1}}^{{b}} \frac{{\pi_i {_G}^2}}{{L^{{0}}_i + L^{{1}}_i {_G}}}",
            "pi-weighted (L0,L1) decrease measure, averaged over the iterations",
            2 * D0 / K_,
        )
        rate = Statement(
            "rate",
            rf"{_AVG}\sum_{{i=1}}^{{b}} \frac{{\pi_i}}{{L^{{1}}_i}} {_G}",
            "pi/L1-weighted dual gradient norms, averaged over the iterations",
            (Q + sp.sqrt(Q**2 + 4 * Q * self._A)) / 2,
            target=EPS,
        )
        # pi-free: Cauchy-Schwarz with weights 1/pi_i (docs/theory.md §T2), W = max_i 1/pi_i
        W = s.layer_max(1 / PI)
        Ap = _sum(L0 / (PI * L1**2))
        unweighted = Statement(
            "unweighted",
            rf"{_AVG}\sum_{{i=1}}^{{b}} \frac{{1}}{{L^{{1}}_i}} {_G}",
            "1/L1-weighted dual gradient norms (no pi), averaged over the iterations",
            (Q * W + sp.sqrt(Q**2 * W**2 + 4 * Q * Ap)) / 2,
            target=EPS,
        )
        return {
            "statements": [weighted, rate, unweighted],
            "step": {"radius_max": 1 / L1},
            "optimal": None,
            "iterations": {
                "rate": 2 * D0 / EPS + 2 * D0 * self._A / EPS**2,
                "unweighted": 2 * D0 * W / EPS + 2 * D0 * Ap / EPS**2,
            },
        }

    def assumptions_for(self, **constants):
        v = self.prepare(**constants)
        return (
            LayerwiseL0L1Smoothness(tuple(v["L0"]), tuple(v["L1"])),
            IndependentSampling(tuple(v["pi"])),
        )


class _MomentumLMO(Theorem):
    """Shared construction of T3 (exact LMO) and T4 (inexact LMO, ``δ_i``)."""

    inexact = False
    parameters = ("eta", "beta")

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


class SmoothStochastic(_MomentumLMO):
    r"""T3 — stochastic Drop-Muon with momentum and constant radii under layer-wise smoothness.

    **Setting.** A1 (Lipschitz form, so ``f`` is separable across layers) with ``L_i``; A3 with
    ``σ_i, ρ_i``; A4 with i.i.d. sampling and ``π_i``; momentum warm-started at a stochastic
    gradient (``M_i^{-1} = G_i(X^0)``).

    **Algorithm.** For ``i ∈ S^k``: ``M_i ← (1−β)M_i + β G_i(X^k)``,
    ``X_i ← X_i + LMO_{η/π_i}(M_i)``; other layers keep weights and momentum.

    **Statement** (upper), with ``S = Σ_i L_i/π_i``, ``R = Σ_i ρ_iσ_i``, ``R′ = Σ_i ρ_iσ_i/π_i``::

        (1/K) Σ_k E Σ_i ‖∇_i f(X^k)‖_*  ≤  Δ0/(Kη) + (η/2) S + 2η(1−β)/β · S
                                            + 2 sqrt(β) R + 2(1−β)/(Kβ) · R′

    The step rule takes the exact minimiser ``η*(β) = sqrt(Δ0/(K (S/2 + 2S(1−β)/β)))`` and the
    ``β`` minimising the resulting bound (numerically; the balance ``β = sqrt(2Δ0 S/K)/R`` shows
    the rate is ``O(K^{-1/4})``). With ``σ = 0`` the minimiser is ``β = 1`` and the bound is T1′.
    ``K(ε)`` is found by bisection (the tuned bound is non-increasing in ``K``).

    **Source.** THEORY.md §4 T3 [derived]; constants and proof in ``docs/theory.md`` §T3.

    **Example.**

    >>> smooth_stochastic.iterations(0.5, L=[1, 2], sigma=[0.1, 0.1], Delta0=1)
    595
    """

    name = "smooth-stochastic"
    label = "T3"
    title = "stochastic, layer-wise smoothness, momentum, constant radii eta/pi_i"
    algorithm = "M_i <- (1-beta) M_i + beta G_i; X_i <- X_i + LMO_{eta/pi_i}(M_i) for i in S^k"
    source = "THEORY.md §4 T3 [derived]; proof in docs/theory.md §T3"
    step_rule_text = (
        "t_i = eta/pi_i; eta = sqrt(Delta0/(K C(beta))) with C = S/2 + 2 S (1-beta)/beta; "
        "beta minimises the bound (1 without noise); either may be given"
    )
    defaults = MappingProxyType({"pi": 1.0, "sigma": 0.0, "rho": 1.0})


class InexactConstantRadius(_MomentumLMO):
    r"""T4 — Drop-Muon with an inexact LMO (``‖D̃ − LMO_t(M)‖ ≤ δ_i t``), constant radii ``η/π_i``.

    **Setting.** As T1′ (A1 descent form, A4, exact gradients, ``β = 1``) by default; with
    ``beta < 1`` or ``sigma > 0`` as T3 (A1 Lipschitz form, A3). Each layer's computed direction
    satisfies ``‖D̃_i − LMO_{t_i}(M_i)‖_(i) ≤ δ_i t_i`` with ``0 ≤ δ_i < 1`` (the model of
    arXiv 2510.19933).

    **Algorithm.** As T3 with ``D̃_i`` in place of ``LMO_{t_i}(M_i)``.

    **Statement** (upper), with ``S₂ = Σ(1+δ_i)²L_i/π_i``, ``S₁ = Σ(1+δ_i)L_i/π_i``::

        weighted: (1/K) Σ_k E Σ_i (1−δ_i)‖∇_i f(X^k)‖_*  ≤  B
        rate:     (1/K) Σ_k E Σ_i ‖∇_i f(X^k)‖_*          ≤  B / (1 − max_i δ_i)
        B = Δ0/(Kη) + (η/2) S₂ + 2η(1−β)/β · S₁ + 2 sqrt(β) R + 2(1−β)/(Kβ) · R′

    With ``β = 1, σ = 0``: ``η*(δ) = sqrt(2Δ0/(K S₂))``, i.e. ``η*(0)/(1+δ)`` for a common ``δ``
    — lower precision needs a smaller step; ``δ = 0`` gives T1′ (and T3 in general).

    **Source.** THEORY.md §4 T4 [derived]; proof in ``docs/theory.md`` §T4.

    **Example.**

    >>> inexact_constant_radius.iterations(0.1, L=[1, 4, 2], pi=[0.5, 1, 1], delta=[0.3] * 3, Delta0=10)
    55184
    """

    name = "inexact-constant-radius"
    label = "T4"
    title = "inexact LMO (delta_i), constant radii eta/pi_i"
    algorithm = "as T3 (or T1' when beta = 1, sigma = 0) with an inexact LMO direction"
    source = "THEORY.md §4 T4 [derived; model of arXiv 2510.19933]; proof in docs/theory.md §T4"
    step_rule_text = (
        "t_i = eta/pi_i; eta = sqrt(Delta0/(K C(beta))) with C = S2/2 + 2 S1 (1-beta)/beta; "
        "beta minimises the bound (1 without noise); either may be given"
    )
    defaults = MappingProxyType({"pi": 1.0, "sigma": 0.0, "rho": 1.0, "delta": 0.0})
    inexact = True

    def assumptions_for(self, **constants):
        v = self.prepare(**constants)
        deterministic = not np.any(v["sigma"] > 0) and v.get("beta", 1.0) == 1.0
        if deterministic:
            return (LayerwiseSmoothness(tuple(v["L"])), IndependentSampling(tuple(v["pi"])))
        return super().assumptions_for(**constants)


def gluon_theorem1_iterations() -> sp.Expr:
    r"""Gluon's Theorem 1 iteration count **[Gluon, arXiv 2505.13416]**, the check for T2.

    With ``m = (1/b) Σ_j 1/L1_j``, Gluon guarantees
    ``min_k Σ_i ((1/L1_i)/m) ‖∇_i f(X^k)‖_* ≤ ε`` once
    ``K ≥ 2Δ0 Σ_i (L0_i/(L1_i)²)/(ε² m²) + 2Δ0/(ε m)`` (every layer updated every step).

    For one layer it is the classical (L0,L1) count ``2Δ0 L1/ε + 2Δ0 L0/ε²``:

    >>> print(gluon_theorem1_iterations().subs(s.b, 1).doit())
    2*Delta_0*L1[1]/epsilon + 2*Delta_0*L0[1]/epsilon**2
    """
    m = _sum(1 / L1) / s.b
    return 2 * D0 * _sum(L0 / L1**2) / (EPS**2 * m**2) + 2 * D0 / (EPS * m)


smooth_deterministic = SmoothDeterministic()
smooth_constant_radius = SmoothConstantRadius()
l0l1_deterministic = L0L1Deterministic()
smooth_stochastic = SmoothStochastic()
inexact_constant_radius = InexactConstantRadius()
