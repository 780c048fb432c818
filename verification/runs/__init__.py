"""The machinery of long runs: one execution layer for every task list (local processes through
joblib or a Dask cluster; each result written atomically as it arrives, so a killed run resumes),
the sweeps built on it, and a progress bar. Read top-down:

* :mod:`.execution` — :class:`~.execution.Task` and :func:`~.execution.run_tasks`;
* :mod:`.sweep` — a grid of problems × theorems × distributions × seeds from a TOML file
  (``dropmuon sweep``);
* :mod:`._progress` — the dependency-free progress bar on stderr.
"""

from dropmuon.theory._lazy import lazy_exports

_LAZY = {"execution": ["Task", "run_tasks"], "sweep": ["run_sweep", "load_sweep"]}

__all__ = ["Task", "run_tasks", "run_sweep", "load_sweep"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
