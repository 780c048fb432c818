"""Mathematical core of the Drop-Muon toolkit (THEORY.md): layer norms and sharp operators,
assumptions A1–A4, theorems T1–T4 as objects, sampling distributions and the cost model.

Imports none of the toolkit's other packages. Every theorem here is derived in this project
(``docs/theory.md``); the paper's own theorem statements could not be consulted.

>>> import theory
>>> theory.theorems["smooth-deterministic"].iterations(0.1, L=[1, 4, 2], pi=[0.5, 1, 1], Delta0=10)
8000
"""

from .assumptions import (
    ASSUMPTIONS,
    IndependentSampling,
    LayerwiseL0L1Smoothness,
    LayerwiseSmoothness,
    StochasticGradients,
)
from .bounds import (
    Bound,
    InexactConstantRadius,
    L0L1Deterministic,
    SmoothConstantRadius,
    SmoothDeterministic,
    SmoothStochastic,
    Statement,
    Theorem,
    gluon_theorem1_iterations,
    inexact_constant_radius,
    l0l1_deterministic,
    smooth_constant_radius,
    smooth_deterministic,
    smooth_stochastic,
)
from .cost import CostModel, total_cost
from .norms import NORMS, Norm, get_norm, polar
from .registry import TheoremRegistry, get_theorem, register_theorem, theorems
from .sampling import (
    RPT,
    CompactSubsets,
    Independent,
    SubsetDistribution,
    inclusion_from_start,
    start_from_inclusion,
)

__all__ = [
    "ASSUMPTIONS",
    "NORMS",
    "IndependentSampling",
    "LayerwiseL0L1Smoothness",
    "LayerwiseSmoothness",
    "StochasticGradients",
    "Bound",
    "Statement",
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
    "CostModel",
    "total_cost",
    "Norm",
    "get_norm",
    "polar",
    "TheoremRegistry",
    "theorems",
    "get_theorem",
    "register_theorem",
    "RPT",
    "CompactSubsets",
    "Independent",
    "SubsetDistribution",
    "inclusion_from_start",
    "start_from_inclusion",
]
