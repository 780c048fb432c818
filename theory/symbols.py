"""The sympy symbols every theorem is written in, and the machinery that turns one generic
expression (over ``b`` layers, with ``Σ_i`` and ``max_i``) into LaTeX, into a concrete expression
for a given ``b``, and into a vectorised numpy function.

The generic expression is the single source of truth: numeric evaluation is generated from it
(:func:`numeric`) and so is LaTeX (:func:`latex`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy as sp
from sympy.concrete.expr_with_limits import ExprWithLimits
from sympy.printing.latex import LatexPrinter

__all__ = [
    "i",
    "b",
    "K",
    "Delta0",
    "eta",
    "beta",
    "epsilon",
    "L",
    "L0",
    "L1",
    "pi",
    "sigma",
    "rho",
    "delta",
    "g",
    "PER_LAYER",
    "SCALARS",
    "LayerMax",
    "layer_sum",
    "layer_max",
    "latex",
    "concrete",
    "numeric",
    "numeric_term",
    "set_all",
]

#: layer index and number of layers
i = sp.Symbol("i", integer=True, positive=True)
b = sp.Symbol("b", integer=True, positive=True)

#: scalars
K = sp.Symbol("K", positive=True)
Delta0 = sp.Symbol("Delta_0", positive=True)
eta = sp.Symbol("eta", positive=True)
beta = sp.Symbol("beta", positive=True)
epsilon = sp.Symbol("epsilon", positive=True)

#: per-layer constants (indexed by ``i``)
L = sp.IndexedBase("L", positive=True)
L0 = sp.IndexedBase("L0", nonnegative=True)
L1 = sp.IndexedBase("L1", positive=True)
pi = sp.IndexedBase("pi", positive=True)
sigma = sp.IndexedBase("sigma", nonnegative=True)
rho = sp.IndexedBase("rho", positive=True)
delta = sp.IndexedBase("delta", nonnegative=True)

#: the dual norm of a layer's gradient, ``g_i = ‖∇_i f(X^k)‖_(i)*``: the variable of the numeric
#: left-hand sides (:attr:`dropmuon.theory.statements.Statement.term`), not a constant
g = sp.IndexedBase("g", nonnegative=True)

PER_LAYER: dict[str, sp.IndexedBase] = {
    "L": L,
    "L0": L0,
    "L1": L1,
    "pi": pi,
    "sigma": sigma,
    "rho": rho,
    "delta": delta,
}
SCALARS: dict[str, sp.Symbol] = {
    "Delta0": Delta0,
    "K": K,
    "eta": eta,
    "beta": beta,
    "epsilon": epsilon,
    "b": b,
}

_LATEX_BASE = {
    "L": "L",
    "L0": "L^{0}",
    "L1": "L^{1}",
    "pi": r"\pi",
    "sigma": r"\sigma",
    "rho": r"\rho",
    "delta": r"\delta",
}


class LayerMax(ExprWithLimits):
    """``max_{1≤i≤b} f(i)``: the layer-wise maximum, kept unevaluated while ``b`` is symbolic.

    >>> e = layer_max(L[i] / pi[i])
    >>> e.subs(b, 2).doit()
    Max(L[1]/pi[1], L[2]/pi[2])
    """

    __slots__ = ()

    def doit(self, **hints):
        f = self.function
        if hints.get("deep", True):
            f = f.doit(**hints)
        ((v, lo, hi),) = self.limits
        if v not in f.free_symbols:  # the same value for every layer
            return f
        if not (lo.is_Integer and hi.is_Integer):
            return self.func(f, *self.limits)
        return sp.Max(*[f.subs(v, k) for k in range(int(lo), int(hi) + 1)])

    def _latex(self, printer):
        ((v, lo, hi),) = self.limits
        body = printer._print(self.function)
        return r"\max_{%s \le %s \le %s} \left(%s\right)" % (
            printer._print(lo),
            printer._print(v),
            printer._print(hi),
            body,
        )


def layer_sum(body: sp.Expr) -> sp.Expr:
    """``Σ_{i=1}^{b} body``."""
    return sp.Sum(body, (i, 1, b))


def layer_max(body: sp.Expr) -> sp.Expr:
    """``max_{1≤i≤b} body``."""
    return LayerMax(body, (i, 1, b))


def set_all(expr: sp.Expr, name: str, value) -> sp.Expr:
    """Replace every entry of the per-layer constant ``name`` by ``value`` (e.g. ``pi_i → 1``).

    >>> set_all(layer_sum(L[i] / pi[i]), "pi", 1)
    Sum(L[i], (i, 1, b))
    """
    base = PER_LAYER[name]
    return expr.replace(
        lambda e: isinstance(e, sp.Indexed) and e.base == base, lambda e: sp.sympify(value)
    )


class _Printer(LatexPrinter):
    def _print_Indexed(self, expr):
        name = str(expr.base.label)
        base = _LATEX_BASE.get(name, self._print(expr.base.label))
        idx = ",".join(self._print(x) for x in expr.indices)
        if "^" in base:  # braces keep a later power from making a double superscript
            return f"{{{base}_{{{idx}}}}}"
        return f"{base}_{{{idx}}}"

    def _print_Symbol(self, expr, style="plain"):
        # Concrete symbols such as L0_3 print as L^{0}_{3}.
        name = expr.name
        if "_" in name:
            head, _, tail = name.partition("_")
            if head in _LATEX_BASE and tail.isdigit():
                base = _LATEX_BASE[head]
                return f"{{{base}_{{{tail}}}}}" if "^" in base else f"{base}_{{{tail}}}"
        return super()._print_Symbol(expr, style=style)


def latex(expr) -> str:
    r"""LaTeX for a theorem expression, with ``L^{0}_{i}``-style per-layer constants.

    >>> latex(2 * Delta0 * layer_sum(L[i] / pi[i]) / epsilon**2)
    '\\frac{2 \\Delta_{0} \\sum_{i=1}^{b} \\frac{L_{i}}{\\pi_{i}}}{\\epsilon^{2}}'
    """
    return _Printer().doprint(expr)


def concrete(expr: sp.Expr, nlayers: int) -> sp.Expr:
    """The expression for ``nlayers`` layers: sums and maxima expanded, ``L[3]`` → symbol ``L_3``.

    >>> concrete(layer_sum(L[i] / pi[i]), 2)
    L_1/pi_1 + L_2/pi_2
    """
    e = expr.subs(b, nlayers).doit()
    reps = {}
    for ix in e.atoms(sp.Indexed):
        name = str(ix.base.label)
        (k,) = ix.indices
        reps[ix] = concrete_symbol(name, int(k))
    return e.xreplace(reps)


def concrete_symbol(name: str, layer: int) -> sp.Symbol:
    """The symbol for constant ``name`` of layer ``layer`` (1-based) in concrete expressions."""
    return sp.Symbol(f"{name}_{layer}", **PER_LAYER[name].assumptions0)


_sum_fn = sp.Function("layer_sum_")
_max_fn = sp.Function("layer_max_")


def _array_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(f"{name}__arr")


def _strip_index(body: sp.Expr) -> sp.Expr:
    reps = {}
    for ix in body.atoms(sp.Indexed):
        if ix.indices != (i,):
            raise ValueError(f"cannot vectorise {ix}: only entries indexed by i are supported")
        reps[ix] = _array_symbol(str(ix.base.label))
    return body.xreplace(reps)


def _rewrite_reductions(e: sp.Expr) -> sp.Expr:
    if isinstance(e, sp.Sum):
        ((v, lo, hi),) = e.limits
        if v != i or lo != 1 or hi != b:
            raise ValueError(f"cannot vectorise {e}: sums must run over i = 1..b")
        return _sum_fn(_strip_index(e.function))
    if isinstance(e, LayerMax):
        return _max_fn(_strip_index(e.function))
    if e.args:
        return e.func(*[_rewrite_reductions(a) for a in e.args])
    return e


def _to_array_form(expr: sp.Expr) -> sp.Expr:
    """Replace ``Σ_i f(L_i, …)`` by ``layer_sum_(f(L__arr, …))`` and likewise for ``max``."""
    out = _rewrite_reductions(expr)
    if out.atoms(sp.Indexed):
        raise ValueError(f"per-layer constants outside a layer sum or maximum in {expr}")
    return out


def _layer_sum_np(x):
    return np.sum(x, axis=-1)


def _layer_max_np(x):
    return np.max(x, axis=-1)


def numeric_term(expr: sp.Expr, per_layer: Sequence[str], scalars: Sequence[str]):
    """A per-layer term as a numpy function: ``f(g, *per_layer, *scalars)`` evaluates ``expr``
    elementwise, with ``g`` (any shape ending in ``b``) and the per-layer constants (shape ``b``)
    broadcast along the last axis; sums and maxima over the layers inside ``expr`` are reductions
    of the constants.

    >>> f = numeric_term(pi[i] * g[i] ** 2 / L[i], ["L", "pi"], [])
    >>> f(np.array([[1.0, 2.0]]), np.array([1.0, 4.0]), np.array([0.5, 1.0])).tolist()
    [[0.5, 1.0]]
    """
    body = _strip_index(_rewrite_reductions(expr))
    args = [_array_symbol("g")] + [_array_symbol(n) for n in per_layer] + [SCALARS[n] for n in scalars]
    fn = sp.lambdify(args, body, modules=[{"layer_sum_": _layer_sum_np, "layer_max_": _layer_max_np}, "numpy"])

    def wrapped(g_values, *values):
        with np.errstate(divide="ignore", invalid="ignore"):
            return fn(g_values, *values)

    wrapped.__doc__ = f"numpy function generated from the per-layer term {expr}"
    return wrapped


def numeric(expr: sp.Expr, per_layer: Sequence[str], scalars: Sequence[str]):
    """Generate a vectorised numpy function from a generic expression.

    The returned function takes the per-layer constants as 1-D arrays (in the order of
    ``per_layer``) and then the scalars (in the order of ``scalars``, ``b`` allowed); scalars that
    appear only outside layer sums may be arrays and broadcast.

    >>> f = numeric(2 * Delta0 * layer_max(L[i] / pi[i]) / K, ["L", "pi"], ["Delta0", "K"])
    >>> float(f(np.array([1.0, 4.0]), np.array([0.5, 1.0]), 10.0, 5.0))
    16.0
    """
    array_form = _to_array_form(expr)
    args = [_array_symbol(n) for n in per_layer] + [SCALARS[n] for n in scalars]
    fn = sp.lambdify(
        args,
        array_form,
        modules=[{"layer_sum_": _layer_sum_np, "layer_max_": _layer_max_np}, "numpy"],
    )

    def wrapped(*values):
        with np.errstate(divide="ignore", invalid="ignore"):
            return fn(*values)

    wrapped.__doc__ = f"numpy function generated from {expr}"
    return wrapped
