"""What the theory figures (:mod:`~dropmuon.figures.bound_plots`,
:mod:`~dropmuon.figures.sampling_plots`, :mod:`~dropmuon.figures.region_plots`) share: legend text
for the named schedules and objectives, and the helpers that make their data JSON-able."""

from __future__ import annotations

import math

import numpy as np

from dropmuon.theory import CostModel

# legend text for the schedule names that have a fixed colour
_LABELS = {
    "full": r"full ($\pi \equiv 1$)",
    "uniform": r"uniform ($\pi_i = i/b$)",
    "optimal-max": "optimal (max-form)",
    "optimal-sum": "optimal (sum-form)",
    "optimal": "optimal",
}
_OBJECTIVE_NAMES = {"max": "max-form (T1)", "sum": r"sum-form (T1$'$)", "l0l1": "(L0,L1) (T2)"}
# keyword arguments of optimal_sampling that only concern its search, not the evaluation of a
# given distribution (family "fixed" refuses them)
_SEARCH_ONLY = ("method", "seed", "starts", "certify")


def _floats(x) -> list:
    """A flat list of floats, ``None`` for non-finite entries (JSON has no NaN)."""
    flat = np.asarray(x, dtype=float).ravel().tolist()
    return [float(v) if math.isfinite(v) else None for v in flat]


def _jsonable(v):
    if isinstance(v, CostModel):
        return {"forward": v.forward, "activation": _floats(v.activation),
                "weight": _floats(v.weight), "update": _floats(v.update)}
    if isinstance(v, (np.ndarray, list, tuple)):
        return _floats(v)
    if isinstance(v, (np.floating, np.integer)):
        return float(v)
    return v


def _nlayers(costs) -> int:
    if isinstance(costs, CostModel):
        return costs.nlayers
    return int(np.size(np.asarray(costs, dtype=float)))


def _optimum_name(objective: str) -> str:
    return f"optimal-{objective}" if objective in ("max", "sum") else "optimal"
