"""The synthetic checker: problems whose layer-wise constants are certified, Drop-Muon in numpy,
and checks of every theorem's bound on them (``docs/verification.md``). Read top-down:

* :mod:`.problems` — the test beds, each with the assumption it satisfies and its constants;
* :mod:`.newton_schulz` — Newton–Schulz presets and their inexactness ``δ`` (Muon's LMO);
* :mod:`.sampling` — the layer samplers: i.i.d. distributions, epoch-shift, phased schedules;
* :mod:`.dropmuon` — the method as pure step functions and :func:`~.dropmuon.paths`, the loop
  over sampling outcomes (exact, Monte Carlo, or layer by layer);
* :mod:`.checks` — one theorem on one instance → one :class:`~.checks.CheckResult`;
* :mod:`.instances` — designed instances (T4's tight one, T3's noise-dominated ones);
* :mod:`.suites` — the ``quick`` and ``standard`` suites, :func:`~.suites.run_suite`;
* :mod:`.predictions` — does the solver's predicted best distribution really win?
* :mod:`.batched` and :mod:`.coupling` — a vectorised engine over ``(η, β)`` grids and T4's
  step/momentum coupling under an inexact LMO.

Numpy only; the names below load on first use.
"""

from dropmuon.theory._lazy import lazy_exports

_LAZY = {"checks": ["CheckResult", "check_theorem"], "suites": ["SUITES", "run_suite", "summarise"],
         "problems": ["Problem", "SeparableQuadratic", "CoupledQuadratic", "L0L1Radial", "DeepLinear", "Stochastic"],
         "dropmuon": ["paths", "Paths"]}

__all__ = ["CheckResult", "check_theorem", "SUITES", "run_suite", "summarise", "Problem", "SeparableQuadratic",
           "CoupledQuadratic", "L0L1Radial", "DeepLinear", "Stochastic", "paths", "Paths"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
