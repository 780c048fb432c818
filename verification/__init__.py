"""Does each theorem hold, how tight is it, and does it predict training? Depends on :mod:`theory`
and :mod:`solvers` only. Four parts, each a subpackage; read them in this order:

* :mod:`~dropmuon.verification.synthetic` — the synthetic checker: problems with certified
  constants, Drop-Muon in numpy, bound checks, suites (:func:`run_suite`), designed instances, and
  whether the solver's optima win (``docs/verification.md``);
* :mod:`~dropmuon.verification.pep` — exact worst cases by performance estimation:
  :func:`certify` brackets a theorem's left-hand side between a value Drop-Muon attains and a bound
  proved in exact arithmetic (``docs/certify.md``);
* :mod:`~dropmuon.verification.runs` — the machinery of long runs: one execution layer (local
  processes or Dask, results written as they arrive, resumable), sweeps, progress;
* :mod:`~dropmuon.verification.forecasting` — predict, then measure, without torch: the schedules
  of a training run, every theorem's prediction for them (:func:`predict`), the pilot predictor and
  the scoring of predictions against a measurement;
* :mod:`~dropmuon.verification.torchside` (the ``torch`` extra) — the optimizer for any model,
  measured costs and constants, training and the closed loop (``docs/torch.md``). Only this part
  imports torch.

Importing this package is cheap: the names below are loaded on first use (so ``dropmuon --help``
does not import sympy). The modules' earlier flat paths (``dropmuon.verification.problems``,
``dropmuon.verification.certify``, …) still import, as the moved modules, with a
``DeprecationWarning`` naming the new path.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

from dropmuon.theory._lazy import lazy_exports

_LAZY = {"synthetic.checks": ["CheckResult", "check_theorem"],
         "synthetic.suites": ["SUITES", "run_suite", "summarise"],
         "pep.certificate": ["certify", "Certificate"], "forecasting.forecast": ["predict", "PlannedRun"]}

__all__ = ["CheckResult", "check_theorem", "run_suite", "summarise", "SUITES", "certify", "Certificate", "predict",
           "PlannedRun"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)

#: the flat module paths before the subpackages → where each module lives now
MOVED = {
    "problems": "synthetic.problems", "dropmuon": "synthetic.dropmuon", "newton_schulz": "synthetic.newton_schulz",
    "batched": "synthetic.batched", "coupling": "synthetic.coupling", "checks": "synthetic.checks",
    "instances": "synthetic.instances", "suites": "synthetic.suites", "predictions": "synthetic.predictions",
    "execution": "runs.execution", "sweep": "runs.sweep", "_progress": "runs._progress",
    "forecast": "forecasting.forecast", "schedules": "forecasting.schedules", "measured": "forecasting.measured",
    "pilot": "forecasting.pilot", "scoring": "forecasting.scoring", "certify": "pep.certificate",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import dropmuon.verification.<old>`` gives the moved module itself (one module object
    under both names, so classes and pickles are the same) and warns once with its new path."""

    def find_spec(self, fullname, path=None, target=None):
        head, _, old = fullname.rpartition(".")
        if head == __name__ and old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = f"{__name__}.{MOVED[spec.name.rpartition('.')[2]]}"
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module):
        pass


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())
