"""The theorem engine: the :class:`Theorem` base class, from which every theorem object is made
(the built-in ones, T1, T1′, T2, T3 and T4, live one per module in
:mod:`dropmuon.theory.builtin_theorems`).

Every theorem is written once, as generic sympy expressions over ``b`` layers (``Σ_i``, ``max_i``);
its LaTeX, its concrete form for a given ``b`` and its numpy evaluation are all generated from those
expressions (:mod:`dropmuon.theory.symbols`). All five statements are **derived in this project** (the
paper's own displayed statements could not be consulted); the proofs are in ``docs/theory.md``.

Common vocabulary:

* a *statement* is one inequality ``lhs ≤ rhs(K, constants, step parameters)``
  (:class:`~dropmuon.theory.statements.Statement`);
* the *rate* statement is the one whose right-hand side is compared with the accuracy target
  (``ε`` or ``ε²``) to give the iteration complexity ``K(ε)``;
* a *step rule* gives the algorithm's step sizes / radii (and momentum), possibly depending on
  ``K``; parameters a user fixes (``eta=…``, ``beta=…``) override the rule.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import sympy as sp

from . import symbols as s
from ._numeric import (
    _DOMAINS,
    _DOUBLE_MAX,
    _PER_LAYER_ORDER,
    _SCALAR_ORDER,
    _TINY,
    ROUNDING_RTOL,
    _ceil_tol,
    _indexed_names,
    _iterations_dict,
    _mp_log10,
    _powers_of_inverse_epsilon,
)
from ._validation import check_layer_array, check_positive_int, check_same_length, check_scalar
from .run_settings import _STEP_TEXT, STEP_KINDS, Coverage, RunSettings
from .statements import Bound, LeadingTerm, Statement

__all__ = ["Theorem"]


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
    defaults: Mapping[str, float] = MappingProxyType({})
    parameters: tuple[str, ...] = ()  # scalar step parameters a user may fix
    rate: str = "rate"

    # -- what a check, a solver and a figure need (read from the object, never from its name) --
    #: how the algorithm steps, one of :data:`STEP_KINDS`
    step_kind: str = ""
    #: the theorem assumes exact gradients (``False``: stochastic gradients, A3)
    exact_gradients: bool = True
    #: the theorem assumes the exact LMO (``False``: an inexact direction with ``δ_i``)
    exact_lmo: bool = True
    #: the theorem covers full updates only (``π ≡ 1``), e.g. a baseline such as Gluon's Theorem 1
    full_sampling_only: bool = False
    #: where the proof is: ``docs/theory.md`` and the title of its section
    proof: str = ""
    #: designed instances attaining a statement; ``()`` with :attr:`tight_note` saying why none
    tight_instances: tuple = ()
    tight_note: str = ""
    #: the total-cost objective of :func:`dropmuon.solvers.optimal_sampling` whose ``K(π)`` this
    #: theorem's closed form gives (``"max"``, ``"sum"``, ``"l0l1"``), with the statement used;
    #: ``None``: any registered theorem is optimised numerically with ``theorem=``
    solver_objective: tuple[str, str] | None = None
    #: where the theorem is drawn: the verification scatter (every checked theorem, one marker each)
    figure: str = "verification scatter: observed left-hand side against the bound (plot_verification)"

    #: the claims a theorem makes about itself, as opposed to what it states: where its proof is,
    #: its source, and which instances attain it (see :meth:`__init_subclass__`)
    CLAIMS = ("source", "proof", "tight_instances", "tight_note")
    #: what defines the statements and the setting a claim is about: a subclass that redefines any
    #: of these has changed the theorem, so its parent's claims do not carry over
    STATEMENT_DEFINITIONS = ("_build", "_rules", "_closed_form", "step_kind", "exact_gradients", "exact_lmo",
                             "full_sampling_only", "defaults", "parameters")
    #: claim → name of the class it is inherited from, for the claims a subclass takes unchanged
    #: from a parent whose statements it keeps (``dropmuon bound --list`` and ``verify`` mark them)
    inherited_claims: Mapping[str, str] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs):
        """A subclass keeps its parent's claims (proof, source, tight instances) only if it keeps
        the parent's statements: one that redefines :data:`STATEMENT_DEFINITIONS` and does not
        set a claim itself gets the claim's empty default, so :meth:`missing` asks for it instead
        of the subclass claiming a proof or a tight instance of a different statement. A claim
        kept unchanged is recorded in :attr:`inherited_claims`."""
        super().__init_subclass__(**kwargs)
        changed = any(n in cls.__dict__ for n in Theorem.STATEMENT_DEFINITIONS)
        inherited = {}
        for claim in Theorem.CLAIMS:
            if claim in cls.__dict__:
                continue
            owner = next(k for k in cls.__mro__ if claim in k.__dict__)
            if owner is Theorem or not getattr(owner, claim):
                continue
            if changed:
                setattr(cls, claim, Theorem.__dict__[claim])
            else:
                inherited[claim] = owner.__name__
        cls.inherited_claims = MappingProxyType(inherited)

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
            if st.term is not None:
                names |= _indexed_names(st.term) - {"g"}
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

    def covers(self, run: RunSettings) -> Coverage:
        """Whether this theorem's setting covers ``run``, read from the object (its exact
        gradients, exact LMO, momentum parameter, step kind, full updates only; i.i.d. sampling
        for every theorem here). A theorem that does not cover a run may still be evaluated for
        it, labelled so.

        >>> from dropmuon.theory import smooth_deterministic as T1, smooth_stochastic as T3
        >>> muon = RunSettings(full_batch=False, momentum=0.05, exact_lmo=True, step="common-lr")
        >>> T3.covers(muon).applies
        True
        >>> print(T1.covers(muon))
        does not cover this run: assumes exact (full-batch) gradients; the run uses minibatch gradients; \
has no momentum; the run uses beta = 0.05 (PyTorch momentum 0.95); steps with sharp steps 1/L_i; the run uses \
radii eta/pi_i
        """
        if not isinstance(run, RunSettings):
            raise ValueError(f"run must be a RunSettings; got {run!r}")
        why = []
        if not run.iid:
            why.append("assumes i.i.d. layer sampling (A4); the run's schedule changes over time")
        if self.exact_gradients and not run.full_batch:
            why.append("assumes exact (full-batch) gradients; the run uses minibatch gradients")
        if run.momentum < 1 and "beta" not in self.parameters:
            why.append(f"has no momentum; the run uses beta = {run.momentum:g} (PyTorch momentum "
                       f"{1 - run.momentum:g})")
        if self.exact_lmo and not run.exact_lmo:
            why.append("assumes the exact LMO; the run's Newton-Schulz direction is inexact (delta > 0)")
        if run.effective_step != self.step_kind:
            why.append(f"steps with {_STEP_TEXT.get(self.step_kind, self.step_kind)}; the run uses "
                       f"{_STEP_TEXT[run.effective_step]}")
        if self.full_sampling_only and not run.full_sampling:
            why.append("covers full updates only (pi = 1)")
        return Coverage(self.name, not why, tuple(why))

    def needs_lipschitz(self, *, stochastic: bool, momentum: bool) -> bool:
        """Whether the proof needs A1 in Lipschitz (separable) form rather than the descent form,
        for a run with stochastic gradients and/or momentum ``β < 1``. Default: no."""
        return False

    # -- the catalogue -----------------------------------------------------------------------
    def missing(self) -> list[str]:
        """What this theorem lacks for a check, a proof reference and a figure (empty when it is
        complete): a step kind from :data:`STEP_KINDS`, a numeric left-hand side for every
        statement, a proof, and tight instances or a note saying why there are none."""
        out = []
        if self.step_kind not in STEP_KINDS:
            out.append(f"step_kind (one of {', '.join(STEP_KINDS)}; got {self.step_kind!r})")
        for st in self.statements.values():
            if st.term is None:
                out.append(f"the numeric left-hand side (Statement.term) of statement {st.name!r}")
        redefined = self._redefined_from()
        why = f"; a subclass of {redefined} that changes its statements does not inherit it" if redefined else ""
        if not self.proof:
            out.append(f"proof (where the proof is{why})")
        if not self.tight_instances and not self.tight_note:
            out.append(f"tight_instances, or tight_note saying why there are none{why}")
        if self.step_kind == "constant-radius" and "eta" not in self.parameters:
            out.append("parameter 'eta' (a constant-radius step needs it)")
        return out

    def _redefined_from(self) -> str | None:
        """The nearest parent theorem class whose claims this class's redefined statements void
        (``None`` when it redefines nothing or has no such parent)."""
        cls = type(self)
        if not any(n in cls.__dict__ for n in Theorem.STATEMENT_DEFINITIONS):
            return None
        for k in cls.__mro__[1:]:
            if k is not Theorem and issubclass(k, Theorem) and any(k.__dict__.get(c) for c in Theorem.CLAIMS):
                return k.__name__
        return None

    def claim_note(self, claim: str) -> str:
        """``" (inherited from Parent)"`` for a claim taken unchanged from a parent class, else
        ``""``."""
        owner = self.inherited_claims.get(claim)
        return f" (inherited from {owner})" if owner else ""

    def catalogue(self) -> dict:
        """The catalogue entry: what ``dropmuon bound --list`` prints (JSON-ready)."""
        return {
            "name": self.name,
            "label": self.label,
            "title": self.title,
            "statements": list(self.statements),
            "rate": self.rate,
            "constants": [n for n in self.per_layer if n != "pi"],
            "parameters": list(self.parameters),
            "step": self.step_kind,
            "check": (f"check_theorem: {self.step_kind} steps"
                      + ("" if self.exact_gradients else ", stochastic gradients")
                      + ("" if self.exact_lmo else ", inexact LMO")
                      + (", full updates only" if self.full_sampling_only else "")),
            "proof": self.proof,
            "tight_instances": [t.description for t in self.tight_instances],
            "tight_note": self.tight_note,
            "solver": (f"objective {self.solver_objective[0]!r} (closed form)" if self.solver_objective
                       else "optimal_sampling(..., theorem=...) (numeric)"),
            "figure": self.figure,
            "inherited": dict(self.inherited_claims),
            "missing": self.missing(),
        }

    def lhs_terms(self, statement: str | None, gnorms, **constants) -> np.ndarray:
        """The per-layer terms of a statement's left-hand side, ``term_i(g)``, elementwise in
        ``gnorms[..., i] = ‖∇_i f(X^k)‖_(i)*`` (any leading axes: paths, iterations). The
        left-hand side is ``(1/K) Σ_k E Σ_i term_i``. ``constants`` are those of :meth:`evaluate`
        (defaults filled in); step parameters (``eta``, ``beta``) may be given.

        >>> from dropmuon.theory import smooth_deterministic as T1
        >>> T1.lhs_terms("weighted", [[3.0, 2.0]], L=[1, 4], pi=[0.5, 1], Delta0=1).tolist()
        [[4.5, 1.0]]
        """
        st = self.statement(statement)
        if st.term is None:
            raise ValueError(f"statement {st.name!r} of {self.name} has no numeric left-hand side (term)")
        v = self.prepare(**constants)
        g = np.asarray(gnorms, dtype=float)
        if g.ndim == 0 or g.shape[-1] != v["b"]:
            raise ValueError(f"gnorms must end with one axis of {v['b']} layers; got shape {g.shape}")
        f = self._fns.get(("term", st.name))
        if f is None:
            f = self._fns[("term", st.name)] = s.numeric_term(st.term, _PER_LAYER_ORDER, _SCALAR_ORDER)
        params = {p: v[p] for p in self.parameters if p in v}
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = f(g, *self._args(v, np.nan, params))
        return np.broadcast_to(np.asarray(out, dtype=float), g.shape).copy()

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
        if self.full_sampling_only and "pi" in out and np.any(out["pi"] != 1):
            j = int(np.argmin(out["pi"]))
            raise ValueError(f"theorem {self.name} covers full updates only (pi = 1); got pi_{j + 1} = {out['pi'][j]:g}")
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

        >>> from dropmuon.theory import smooth_deterministic
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
        terms = [(tex, self._value(("term", st.name, j), t, v, K, params))
                 for j, (tex, t) in enumerate(self._terms(st))]
        target = None
        if epsilon is not None:
            if st.target is None:
                raise ValueError(f"statement {st.name!r} of {self.name} has no accuracy target")
            eps = check_scalar("epsilon", epsilon)
            try:
                target = self._value(("target", st.name), st.target, v, K, params, eps)
            except OverflowError:  # a Python float power (ε²) beyond the largest double
                target = math.inf
            if not math.isfinite(target):
                raise ValueError(self._target_range_message(eps, target))
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

    def _terms(self, st: Statement) -> tuple:
        """``(LaTeX, expression)`` of each additive term of a statement's right-hand side, printed
        once per statement: the LaTeX printer takes ~3 ms a term, far more than evaluating it."""
        key = ("terms", st.name)
        out = self._fns.get(key)
        if out is None:
            out = self._fns[key] = tuple((s.latex(t), t) for t in sp.Add.make_args(st.rhs))
        return out

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
            raise ValueError(self._target_range_message(eps, target))
        return self._search(v, target, fixed, st.name)

    def _target_range_message(self, eps: float, target: float) -> str:
        return (f"{self.name}: the accuracy target at epsilon = {eps:g} is {target:g}, "
                "outside the range of a double; choose epsilon in [1e-150, 1e150]")

    def iterations_real(self, epsilon, statement: str | None = None, **constants) -> float:
        """The closed-form ``K(ε)`` as a real number, before rounding up (what cost comparisons
        use, so that they are not dominated by rounding); ``ValueError`` when these inputs have
        no closed form.

        >>> from dropmuon.theory import smooth_deterministic
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
        return self._closed_form_value(("K", fixed, st.name), cf, v, eps, real=True)

    def iterations_continuous(self, epsilon, statement: str | None = None, **constants) -> float:
        """``K(ε)`` as a real number for every input: the closed form before rounding up where
        these inputs have one (:meth:`iterations_real`), otherwise the smallest integer ``K``
        whose bound reaches the target (:meth:`iterations`) less the fraction of the last
        iteration not needed (the bound interpolated linearly between ``K − 1`` and ``K``), so
        that ratios between sampling distributions are not dominated by rounding. ``ValueError``
        as :meth:`iterations` (with fixed step parameters the target may be below the bound's
        :meth:`floor`).

        >>> from dropmuon.theory import smooth_stochastic as T3
        >>> T3.iterations(0.5, L=[1, 2], sigma=[0.1, 0.1], Delta0=1)
        384
        >>> round(T3.iterations_continuous(0.5, L=[1, 2], sigma=[0.1, 0.1], Delta0=1), 3)
        383.295
        """
        eps = check_scalar("epsilon", epsilon)
        st = self.statement(statement)
        v = self.prepare(**constants)
        fixed = frozenset(p for p in self.parameters if p in v)
        if self._closed_form(fixed, v, st.name) is not None:
            return self.iterations_real(eps, st.name, **constants)
        K = self.iterations(eps, st.name, **constants)
        if K <= 1:
            return float(K)
        target = self.target(eps, st.name)
        hi, lo = self._rate_at(K, v, st.name), self._rate_at(K - 1, v, st.name)
        if not (lo > target >= hi):
            return float(K)
        return float(K - 1 + (lo - target) / (lo - hi))

    def floor(self, statement: str | None = None, **constants) -> float:
        """The limit of a statement's right-hand side as ``K → ∞`` (evaluated at ``K = 1e300``,
        where every ``1/K`` term has vanished): 0 for a tuned bound, positive with fixed step
        parameters whose noise or step terms do not vanish — no accuracy below it is reachable.

        >>> from dropmuon.theory import smooth_constant_radius as T1p
        >>> T1p.floor(L=[1, 4], Delta0=1, eta=0.1)
        0.25
        """
        st = self.statement(statement)
        v = self.prepare(**constants)
        return float(self._rhs_array(st, v, np.array([1e300]))[0])

    def iterations_leading(self, statement: str | None = None, **constants) -> "LeadingTerm | None":
        """The leading term of ``K(ε)`` as ``ε → 0`` at these constants (default statement: the
        rate), ``K(ε) ≈ c · ε^(−p)``, as a :class:`LeadingTerm`; ``None`` where the theorem does not
        know it — no closed form and no asymptote (:meth:`_leading`), or fixed step parameters
        (their bound has a :meth:`floor`, so ``K`` is infinite at small ``ε``). From the theorem's
        closed form by default (the term with the highest power of ``1/ε`` whose coefficient is
        not zero at these constants); a theorem without one at some inputs may give its
        asymptote (T3 and T4 with noise: ``docs/theory.md``, section T3, "Iterations as ε → 0").

        >>> from dropmuon.theory import smooth_deterministic as T1
        >>> t = T1.iterations_leading(L=[1, 4, 2], pi=[0.5, 0.5, 1], Delta0=1)
        >>> t.coefficient, t.power, t.exact
        (16.0, 2, True)
        """
        st = self.statement(statement)
        if st.target is None:
            raise ValueError(f"statement {st.name!r} of {self.name} has no accuracy target, so no K(epsilon)")
        v = self.prepare(**constants)
        if any(p in v for p in self.parameters):
            return None
        found = self._leading(v, st.name)
        if found is None:
            return None
        expr, is_closed_form = found
        parts = _powers_of_inverse_epsilon(expr)
        if parts is None:
            return None
        values = {}
        for p, coeff in parts.items():
            with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
                values[p] = self._value(("leading", coeff), coeff, v, np.nan, {})
        live = [p for p in parts if math.isfinite(values[p]) and values[p] > 0]
        if not live:
            return None
        top = max(live)
        exact = is_closed_form and all(values[p] == 0 for p in parts if p != top)
        power = int(top) if top.is_integer else float(top)
        return LeadingTerm(theorem=self.name, statement=st.name, coefficient=values[top], power=power,
                           expression=parts[top], exact=exact, closed_form=expr if is_closed_form else None)

    def _leading(self, values: Mapping, statement: str) -> tuple[sp.Expr, bool] | None:
        """``(expression of K(ε), is_closed_form)`` whose leading power of ``1/ε`` gives
        :meth:`iterations_leading`: the closed form by default; a theorem without one may return
        an asymptote (``False``: equal to ``K(ε)`` only as ``ε → 0``)."""
        cf = self._closed_form(frozenset(), values, statement)
        return None if cf is None else (cf, True)

    def _closed_form_value(self, key, cf, v, eps, real: bool = False) -> float:
        """The closed-form ``K(ε)`` in double precision; where an intermediate product or
        quotient overflows or underflows (``ε²`` below 1e-308, ``Δ0·L`` above 1e308: constants
        anywhere in [1e-300, 1e300]) it is recomputed with mpmath, whose exponent range is
        unbounded. A ``K`` beyond the largest double is a ``ValueError`` naming ``ε``; one below
        the smallest is 0 (the target is met at once: ``K = 1`` after rounding up), or with
        ``real`` (a real ``K`` for cost comparisons, where 0 would compare nothing) the same
        ``ValueError``."""
        try:
            with np.errstate(over="ignore", under="ignore"):
                x = self._value(key, cf, v, np.nan, {}, eps)
        except OverflowError:  # a Python float power (ε²) out of range
            x = math.inf
        if math.isfinite(x) and x > 0:
            return x
        exact = self._value_mpmath(cf, v, eps)
        if exact is not None and 0 < exact < _TINY:  # ε so large that K(ε) underflows: met at once
            if real:
                raise ValueError(
                    f"{self.name}: K(eps) at epsilon = {eps:g} is about 1e{float(_mp_log10(exact)):.0f} iterations, "
                    "below the smallest double (the target is met at once); choose a smaller epsilon")
            return 0.0
        if exact is not None and 0 < exact < _DOUBLE_MAX and math.isfinite(x):
            return float(exact)
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
        # a bound equal to the target up to rounding meets it, as in the closed form's guard in
        # iterations() (ROUNDING_RTOL): the two routes then agree on K at exact ties
        target = target * (1 + ROUNDING_RTOL)
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
