"""Worst-case certificates that scale and are rigorous: one layer's performance-estimation problem
with banded interpolation over chordal cliques (:mod:`.banded`), its dual checked in exact arithmetic
(:mod:`.rigorous`), the bracket ``[attained, proved]`` (:mod:`.layer`) and the cost estimate that
refuses a problem before the work (:mod:`.budget`). :func:`dropmuon.verification.certify.certify` is
the front door; docs/certify.md derives each step.

Importing this package is cheap (the submodules load on first use), so the refusal in
``dropmuon certify`` runs before any solver is imported.
"""

from dropmuon.theory._lazy import lazy_exports

_LAZY = {"layer": ["layer_bracket", "LayerBracket"], "rigorous": ["check_dual", "RigorousBound"],
         "budget": ["check_fits", "estimate_cost"]}

__all__ = ["layer_bracket", "LayerBracket", "check_dual", "RigorousBound", "check_fits", "estimate_cost"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
