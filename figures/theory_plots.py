"""Four theory figures: a bound against iterations per sampling distribution
(:mod:`~dropmuon.figures.bound_plots`), the optimal distribution per layer and the total-cost
landscape over 3-layer start distributions (:mod:`~dropmuon.figures.sampling_plots`), and where full
updates are optimal (:mod:`~dropmuon.figures.region_plots`); each is a data function (JSON-able) and
a plot function (data in, Figure out). This module gathers their names, so that every import from it
keeps working."""

from __future__ import annotations

from .bound_plots import bound_curves, coinciding_curves, plot_bound_vs_iterations
from .region_plots import (
    full_optimal_halfplanes,
    full_optimal_polygon,
    full_optimal_region,
    plot_full_optimal_region,
)
from .sampling_plots import cost_landscape, distribution_data, plot_cost_landscape, plot_optimal_distribution

__all__ = [
    "bound_curves",
    "plot_bound_vs_iterations",
    "coinciding_curves",
    "distribution_data",
    "plot_optimal_distribution",
    "cost_landscape",
    "plot_cost_landscape",
    "full_optimal_region",
    "plot_full_optimal_region",
    "full_optimal_halfplanes",
    "full_optimal_polygon",
]
