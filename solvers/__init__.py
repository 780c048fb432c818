"""Optimal layer-sampling distributions for Drop-Muon: which layers to update, how often, and how
much that saves over updating all of them (docs/sampling.md).

One front door, :func:`optimal_sampling`, over four families (``rpt``, ``independent``,
``subsets``, ``fixed``), three objectives (``max``: T1, ``sum``: T1′, ``l0l1``: T2) and several
methods that are cross-checked in the tests: closed forms, an exact LP (HiGHS), convex programs
(cvxpy), a multi-start local method (scipy) and a brute-force grid. Depends only on :mod:`theory`.

Modules, read top-down: :mod:`~dropmuon.solvers._problem` (the problem ``K(π) · E cost`` and its
linear form per family), :mod:`~dropmuon.solvers.closed_form`, :mod:`~dropmuon.solvers.lp`,
:mod:`~dropmuon.solvers.convex`, :mod:`~dropmuon.solvers.numeric` and
:mod:`~dropmuon.solvers.independent_nonlinear` (the methods),
:mod:`~dropmuon.solvers.optimal` (the front door and its result) and
:mod:`~dropmuon.solvers.theorem_objective` (any registered theorem as the objective; it calls the
front door and registers itself as its solver of ``theorem=``, so the imports run one way).

>>> from dropmuon.solvers import optimal_sampling
>>> optimal_sampling([1, 5, 3, 2], [1, 1, 1, 1], method="lp").start_probs.round(12).tolist()
[0.2, 0.8, 0.0, 0.0]
"""

from . import theorem_objective  # noqa: F401 - registers the solver of optimal_sampling(theorem=...)
from ._problem import FAMILIES, MAX_STARTS, METHODS, OBJECTIVES
from .optimal import (
    FULL_OPTIMAL_RTOL,
    STATUSES,
    FullNetworkVerdict,
    SamplingResult,
    full_network_optimal,
    optimal_sampling,
    optimum_lower_bound,
)

__all__ = [
    "optimal_sampling",
    "full_network_optimal",
    "optimum_lower_bound",
    "SamplingResult",
    "FullNetworkVerdict",
    "STATUSES",
    "FAMILIES",
    "OBJECTIVES",
    "METHODS",
    "FULL_OPTIMAL_RTOL",
    "MAX_STARTS",
]
