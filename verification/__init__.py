"""Synthetic problems with certified constants, a numpy Drop-Muon, bound checks and suites
(``run_suite``), and the torch side behind the ``torch`` extra. Depends on :mod:`theory` and
:mod:`solvers` only.

Submodules: :mod:`~dropmuon.verification.dropmuon` (the method as pure steps and a loop over sampling
paths), :mod:`~dropmuon.verification.newton_schulz` (presets and their inexactness δ),
:mod:`~dropmuon.verification.problems` (certified test problems), :mod:`~dropmuon.verification.checks` (one check →
one :class:`CheckResult`), :mod:`~dropmuon.verification.predictions` (do the solver's optima win?),
:mod:`~dropmuon.verification.coupling` (T4's step/momentum coupling), :mod:`~dropmuon.verification.suites` and
:mod:`~dropmuon.verification.schedules` (named sampling schedules for training runs),
:mod:`~dropmuon.verification.instances` (designed instances: T4's tight one, T3's noise-dominated ones),
:mod:`~dropmuon.verification.batched` (the batched engine of the coupling experiments),
:mod:`~dropmuon.verification.certify` (exact worst cases by performance estimation) and
:mod:`~dropmuon.verification.forecast` (pre-registered predictions for a training run,
``dropmuon predict``). The torch side,
:mod:`~dropmuon.verification.torchside`, holds the optimizer, the CNN, cost and constant measurements,
training and the closed loop (:mod:`~dropmuon.verification.torchside.experiment`).

Importing this package is cheap: the names below are loaded on first use (so ``dropmuon --help``
does not import sympy).
"""

from dropmuon.theory._lazy import lazy_exports

_LAZY = {"checks": ["CheckResult", "check_theorem"], "suites": ["SUITES", "run_suite", "summarise"],
         "certify": ["certify"], "forecast": ["predict", "PlannedRun"]}

__all__ = ["CheckResult", "check_theorem", "run_suite", "summarise", "SUITES", "certify", "predict", "PlannedRun"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
