"""The theorem engine's front door, kept so that every name imported from here keeps working: the
engine lives in :mod:`dropmuon.theory.theorem` (:class:`Theorem`), :mod:`dropmuon.theory.statements`
(:class:`Statement`, :class:`TightInstance`, :class:`Bound`, :class:`LeadingTerm`),
:mod:`dropmuon.theory.run_settings` (:class:`RunSettings`, :class:`Coverage`, :data:`STEP_KINDS`,
:data:`RUN_STEPS`) and :mod:`dropmuon.theory._numeric` (:data:`ROUNDING_RTOL`). The theorems
themselves, T1, T1′, T2, T3 and T4, live one per module in :mod:`dropmuon.theory.builtin_theorems`
(``smooth_deterministic.py`` …); their names are importable from here too, loaded on first use.
"""

from __future__ import annotations

# _AVG, _G (the LaTeX fragments of the built-in left-hand sides) and MAX_ITERATIONS are not public
# but were importable from here before the engine was split into modules, so they still are
from ._numeric import MAX_ITERATIONS, ROUNDING_RTOL  # noqa: F401
from .run_settings import RUN_STEPS, STEP_KINDS, Coverage, RunSettings
from .statements import _AVG, _G, Bound, LeadingTerm, Statement, TightInstance  # noqa: F401
from .theorem import Theorem

__all__ = [
    "Statement",
    "Bound",
    "Theorem",
    "TightInstance",
    "RunSettings",
    "Coverage",
    "LeadingTerm",
    "STEP_KINDS",
    "RUN_STEPS",
    "ROUNDING_RTOL",
]

# the theorem objects, importable from here for compatibility (module -> names)
_THEOREM_MODULES = {
    "smooth_deterministic": ("SmoothDeterministic", "smooth_deterministic"),
    "smooth_constant_radius": ("SmoothConstantRadius", "smooth_constant_radius"),
    "l0l1_deterministic": ("L0L1Deterministic", "l0l1_deterministic", "gluon_theorem1_iterations"),
    "smooth_stochastic": ("SmoothStochastic", "smooth_stochastic"),
    "inexact_constant_radius": ("InexactConstantRadius", "inexact_constant_radius"),
}


def __getattr__(name):
    for mod, names in _THEOREM_MODULES.items():
        if name in names:
            import importlib

            return getattr(importlib.import_module(f"{__package__}.builtin_theorems.{mod}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
