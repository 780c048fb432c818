"""Performance estimation (PEP) for T1's worst case, in parts; docs/certify.md derives each step.
Read top-down:

* :mod:`.certificate` — the front door, :func:`certify` (a :class:`Certificate`: the bracket
  ``[attained, proved]`` on the whole network, with the witness).
* :mod:`.banded` — one layer's PEP with banded interpolation over chordal cliques (scales to
  ``K`` = 1000+); :mod:`.rigorous` — its dual checked in exact arithmetic; :mod:`.layer` — the
  bracket ``[attained, proved]``; :mod:`.budget` — the cost estimate that refuses a problem
  before the work.
* :mod:`.allpairs` — the all-pairs layer PEP through cvxpy and the proved closed form;
  :mod:`.tree` — the PEP over the whole sampling tree (the reduction's test; the coupled
  relaxation); :mod:`.sdp` — the sparse Gram functionals both use.
* :mod:`.witness` — the 1-D smooth interpolant the witnesses are built from;
  :mod:`.sampling` — optimal sampling for the exact worst case.
* :mod:`.stochastic` — T3's noise: a second-moment relaxation (an upper bound, not exact) and a
  Monte Carlo search for values the algorithm attains.

Importing this package is cheap (the submodules load on first use), so the refusal in
``dropmuon certify`` runs before any solver is imported.
"""

from dropmuon.theory._lazy import lazy_exports

_LAZY = {"certificate": ["certify", "Certificate", "compare_optimal_sampling", "certified_iterations"],
         "layer": ["layer_bracket", "LayerBracket"], "rigorous": ["check_dual", "RigorousBound"],
         "budget": ["check_fits", "estimate_cost"]}

__all__ = ["certify", "Certificate", "compare_optimal_sampling", "certified_iterations", "layer_bracket", "LayerBracket", "check_dual", "RigorousBound", "check_fits", "estimate_cost"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
