"""The theorems, one module each: T1 (:mod:`.smooth_deterministic`), T1′
(:mod:`.smooth_constant_radius`), T2 (:mod:`.l0l1_deterministic`), T3 (:mod:`.smooth_stochastic`)
and T4 (:mod:`.inexact_constant_radius`); the engine they share is :mod:`dropmuon.theory.theorem`.
A theorem of your own is a :class:`~dropmuon.theory.theorem.Theorem` subclass registered with
:func:`dropmuon.theory.register_theorem` (see ``docs/theory.md``, "Adding the paper's statement").
"""

from .inexact_constant_radius import InexactConstantRadius, inexact_constant_radius
from .l0l1_deterministic import L0L1Deterministic, gluon_theorem1_iterations, l0l1_deterministic
from .smooth_constant_radius import SmoothConstantRadius, smooth_constant_radius
from .smooth_deterministic import SmoothDeterministic, smooth_deterministic
from .smooth_stochastic import SmoothStochastic, smooth_stochastic

__all__ = [
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
]

#: the built-in theorems in catalogue order
BUILTIN = (smooth_deterministic, smooth_constant_radius, l0l1_deterministic, smooth_stochastic,
           inexact_constant_radius)
