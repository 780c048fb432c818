"""Mathematical core of the Drop-Muon toolkit (``docs/theory.md``): layer norms and sharp operators,
assumptions A1–A4, theorems T1–T4 as objects, sampling distributions and the cost model.

Imports none of the toolkit's other packages. Every theorem here is derived in this project
(``docs/theory.md``); the paper's own theorem statements could not be consulted. Importing the
package is cheap: the names below are loaded on first use, so sympy is imported only when a
theorem is.

Modules, read top-down: :mod:`~dropmuon.theory.norms` (layer norms, sharp operators, LMOs),
:mod:`~dropmuon.theory.assumptions` (A1–A4), :mod:`~dropmuon.theory.symbols` (the sympy symbols and
the code generated from expressions), :mod:`~dropmuon.theory.run_settings` (what a run does, which
theorems cover it), :mod:`~dropmuon.theory.statements` (statements, bounds, tight instances),
:mod:`~dropmuon.theory.theorem` (the :class:`Theorem` engine, with its numeric conventions in
``_numeric``), :mod:`~dropmuon.theory.builtin_theorems` (T1–T4, one module each),
:mod:`~dropmuon.theory.registry` (theorems by name), :mod:`~dropmuon.theory.sampling`
(distributions over the layers) and :mod:`~dropmuon.theory.cost` (the cost model).
:mod:`~dropmuon.theory.bounds` re-exports the engine under its former name; ``_validation``,
``_io`` and ``_lazy`` are shared helpers.

>>> from dropmuon import theory
>>> theory.theorems["smooth-deterministic"].iterations(0.1, L=[1, 4, 2], pi=[0.5, 1, 1], Delta0=10)
8000
"""

from ._lazy import lazy_exports

_LAZY = {
    "assumptions": [
        "ASSUMPTIONS",
        "IndependentSampling",
        "LayerwiseL0L1Smoothness",
        "LayerwiseSmoothness",
        "StochasticGradients",
    ],
    "statements": ["Bound", "Statement", "TightInstance", "LeadingTerm"],
    "theorem": ["Theorem"],
    "run_settings": ["RunSettings", "Coverage", "STEP_KINDS", "RUN_STEPS"],
    "builtin_theorems": [
        "InexactConstantRadius",
        "L0L1Deterministic",
        "SmoothConstantRadius",
        "SmoothDeterministic",
        "SmoothStochastic",
        "gluon_theorem1_iterations",
        "inexact_constant_radius",
        "l0l1_deterministic",
        "smooth_constant_radius",
        "smooth_deterministic",
        "smooth_stochastic",
    ],
    "cost": ["CostModel", "total_cost"],
    "norms": ["NORMS", "Norm", "get_norm", "polar"],
    "registry": ["TheoremRegistry", "get_theorem", "register_theorem", "theorems"],
    "sampling": [
        "RPT",
        "CompactSubsets",
        "Independent",
        "SubsetDistribution",
        "inclusion_from_start",
        "start_from_inclusion",
    ],
}

__all__ = [name for names in _LAZY.values() for name in names]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
