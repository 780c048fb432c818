"""Predict, then measure — the torch-free half of a training experiment: what each theorem and a
pilot predict for every layer-sampling schedule before the first run, the schedules themselves,
and how well each predictor foresaw the measurement (``docs/torch.md``). Read top-down:

* :mod:`.measured` — measured per-layer constants and costs, in the form the solvers take;
* :mod:`.schedules` — the named schedules of a training run (full, uniform, the solver's optima,
  epoch-shift, phase-optimal, a user's distribution);
* :mod:`.forecast` — every registered theorem's prediction for each schedule (``dropmuon predict``);
* :mod:`.pilot` — the empirical baseline: short pilot runs of every schedule;
* :mod:`.scoring` — paired ratios with intervals, rank correlations, did the predicted winner win.

Numpy, sympy and the solvers only (never torch); the names below load on first use.
"""

from dropmuon.theory._lazy import lazy_exports

_LAZY = {"forecast": ["predict", "PlannedRun"], "schedules": ["make_schedule"],
         "measured": ["load_constants"], "pilot": ["pilot_prediction"], "scoring": ["score_predictions"]}

__all__ = ["predict", "PlannedRun", "make_schedule", "load_constants", "pilot_prediction", "score_predictions"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
