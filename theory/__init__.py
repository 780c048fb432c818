"""Mathematical core of the Drop-Muon toolkit (``docs/theory.md``): layer norms and sharp operators,
assumptions A1–A4, theorems T1–T4 as objects, sampling distributions and the cost model.

Imports none of the toolkit's other packages. Every theorem here is derived in this project
(``docs/theory.md``); the paper's own theorem statements could not be consulted. Importing the
package is cheap: the names below are loaded on first use, so sympy is imported only when a
theorem is.

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
    "bounds": ["Bound", "Statement", "Theorem", "TightInstance", "RunSettings", "Coverage", "LeadingTerm",
               "STEP_KINDS", "RUN_STEPS"],
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
