"""Synthetic problems with certified constants, a numpy Drop-Muon, bound checks and suites
(``run_suite``), and the torch side behind the ``torch`` extra. Depends on :mod:`theory` and
:mod:`solvers` only.

Submodules: :mod:`~verification.dropmuon` (the method as pure steps and a loop over sampling
paths), :mod:`~verification.newton_schulz` (presets and their inexactness δ),
:mod:`~verification.problems` (certified test problems), :mod:`~verification.checks` (one check →
one :class:`CheckResult`), :mod:`~verification.predictions` (do the solver's optima win?),
:mod:`~verification.coupling` (T4's step/momentum coupling), :mod:`~verification.suites` and
:mod:`~verification.schedules` (named sampling schedules for training runs). The torch side,
:mod:`~verification.torchside`, holds the optimizer, the CNN, cost and constant measurements,
training and the closed loop (:mod:`~verification.torchside.experiment`).
"""

from .checks import CheckResult, check_theorem
from .suites import SUITES, run_suite, summarise

__all__ = ["CheckResult", "check_theorem", "run_suite", "summarise", "SUITES"]
