"""The numeric conventions of the theorem engine (:mod:`dropmuon.theory.theorem`): the rounding
slack of ``K(ε)``, the domains of the constants, the order in which generated functions take their
arguments, and small helpers on sympy expressions and doubles."""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from . import symbols as s

# A closed-form K(ε) is exact in real arithmetic; evaluating it in floating point is off by a few
# ulps, so a value that is mathematically an integer may come out as that integer plus 1e-15
# relative. Rounding up after shrinking by this relative slack keeps such K from gaining a spurious
# extra iteration; the result is then re-checked against the bound itself.
ROUNDING_RTOL = 1e-12

# the search for the smallest K gives up beyond this many iterations (an unreachable target)
MAX_ITERATIONS = 2.0**100

# the domain each constant is validated in (:mod:`dropmuon.theory._validation`)
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
# the order of the arguments of every function generated from a theorem's expressions
_PER_LAYER_ORDER = tuple(s.PER_LAYER)
_SCALAR_ORDER = ("Delta0", "K", "eta", "beta", "epsilon", "b")


def _powers_of_inverse_epsilon(expr: sp.Expr) -> dict | None:
    """``{p: coefficient}`` with ``expr = Σ_p coefficient_p · ε^(−p)``, or ``None`` when ``expr``
    is not such a sum (a power of ``ε`` inside a root, say)."""
    u = sp.Dummy("u", positive=True)
    out: dict = {}
    for term in sp.Add.make_args(sp.expand(expr.subs(s.epsilon, 1 / u), deep=False)):
        coeff, part = term.as_independent(u, as_Add=False)
        if part == 1:
            p = sp.Integer(0)
        else:
            base, p = part.as_base_exp()
            if base != u or p.has(u):
                return None
        out[p] = out.get(p, sp.Integer(0)) + coeff
    return out


# the range of a double, beyond which K(ε) is recomputed with mpmath
_DOUBLE_MAX = float(np.finfo(float).max)
_TINY = float(np.finfo(float).tiny)


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
