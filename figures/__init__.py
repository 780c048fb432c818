"""Plot functions (data in, matplotlib ``Figure`` out), paper styles, the report and the
``dropmuon`` command line — the top layer of the toolkit, free to use ``theory``, ``solvers`` and
``verification``.

Importing this package is cheap: the names below are loaded on first use, so matplotlib is imported
only when a plotting module is. Modules, read top-down: :mod:`~dropmuon.figures.style` (paper style,
colours, saving); the theory figures :mod:`~dropmuon.figures.bound_plots` (a bound against
iterations), :mod:`~dropmuon.figures.sampling_plots` (the optimal distribution per layer, the
cost landscape) and :mod:`~dropmuon.figures.region_plots` (where full updates are optimal), gathered
under their former name :mod:`~dropmuon.figures.theory_plots`;
:mod:`~dropmuon.figures.verification_plots` (observed vs bound, inexact LMO),
:mod:`~dropmuon.figures.certify_plots` (exact worst cases), :mod:`~dropmuon.figures.torch_plots`
(measured constants, accuracy vs time); :mod:`~dropmuon.figures.document` (a document rendered to
Markdown and HTML) and :mod:`~dropmuon.figures.report` (the built-in report); and
:mod:`~dropmuon.figures.cli`, the ``dropmuon`` command line. ``_theory_common``, ``_data`` and
``_math`` are shared helpers.
"""

from dropmuon.theory._lazy import lazy_exports

_LAZY = {
    "style": ["PALETTE", "paper_style", "styled", "new_figure", "save_figure", "color"],
    "bound_plots": ["bound_curves", "plot_bound_vs_iterations"],
    "sampling_plots": ["distribution_data", "plot_optimal_distribution", "cost_landscape", "plot_cost_landscape"],
    "region_plots": ["full_optimal_region", "plot_full_optimal_region"],
    "verification_plots": ["verification_points", "plot_verification", "inexact_lmo_curves", "plot_inexact_lmo"],
    "torch_plots": ["constants_series", "plot_measured_constants", "accuracy_bands", "plot_accuracy_vs_time"],
    "report": ["build_report"],
    "document": ["Report"],
}

__all__ = [name for names in _LAZY.values() for name in names]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
