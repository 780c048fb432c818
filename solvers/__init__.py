"""Optimal layer-sampling distributions for Drop-Muon: which layers to update, how often, and how
much that saves over updating all of them (docs/sampling.md).

One front door, :func:`optimal_sampling`, over four families (``rpt``, ``independent``,
``subsets``, ``fixed``), three objectives (``max``: T1, ``sum``: T1′, ``l0l1``: T2) and several
methods that are cross-checked in the tests: closed forms, an exact LP (HiGHS), convex programs
(cvxpy), a multi-start local method (scipy) and a brute-force grid. Depends only on :mod:`theory`.

>>> from dropmuon.solvers import optimal_sampling
>>> optimal_sampling([1, 5, 3, 2], [1, 1, 1, 1], method="lp").start_probs.round(12).tolist()
[0.2, 0.8, 0.0, 0.0]
"""

from ._problem import FAMILIES, MAX_STARTS, METHODS, OBJECTIVES
from .optimal import (
    FULL_OPTIMAL_RTOL,
    STATUSES,
    FullNetworkVerdict,
    SamplingResult,
    full_network_optimal,
    optimal_sampling,
)

__all__ = [
    "optimal_sampling",
    "full_network_optimal",
    "SamplingResult",
    "FullNetworkVerdict",
    "STATUSES",
    "FAMILIES",
    "OBJECTIVES",
    "METHODS",
    "FULL_OPTIMAL_RTOL",
    "MAX_STARTS",
]
