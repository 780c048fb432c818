"""Every figure function: the one- and two-column sizes of dropmuon.figures.style are honoured (the
figure is that wide and nothing drawn spills past it, so the saved file is that wide too), and no
text renders a prime as an acute accent."""

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from dropmuon.figures.style import COLUMN_WIDTH_IN, paper_style
from dropmuon.figures.theory_plots import (
    bound_curves,
    cost_landscape,
    distribution_data,
    full_optimal_region,
    plot_bound_vs_iterations,
    plot_cost_landscape,
    plot_full_optimal_region,
    plot_optimal_distribution,
)
from dropmuon.figures.torch_plots import plot_accuracy_vs_time, plot_measured_constants
from dropmuon.figures.verification_plots import plot_inexact_lmo, plot_verification

from .test_verification_plots import _coupling, _mc_records

# a tight bounding box may reach this far past the nominal width (anti-aliasing, rounding)
SPILL_IN = 0.02


def _layers():
    return [dict(layer=k, shape=[4, 4], L=2.0 * k, L0=1.0, L1=0.5 * k, gnorms=[0.5, 1.0, 2.0],
                 estimates=[1.5 * k, 1.8 * k, 2.0 * k]) for k in (1, 2, 3)]


def _runs():
    return [dict(sampling=s, seed=seed, target_acc=0.9, time_to_target_s=1.0 + seed,
                 history=[dict(time_s=0.0, train_acc=0.1), dict(time_s=1.0 + seed, train_acc=0.9 + 0.01 * seed)])
            for s in ("full", "uniform", "optimal-max") for seed in (0, 1)]


@pytest.fixture(scope="module")
def figures():
    L3, C3 = [1.0, 4.0, 2.0], [1.0, 1.0, 1.0]
    dist = distribution_data([1, 5, 3, 2], [1, 1, 1, 1], forward_cost=2.0)
    land = cost_landscape(L3, C3, resolution=8)
    region = full_optimal_region(C3, ratios=[0.1, 0.5, 1.0, 2.0, 10.0])
    curves = bound_curves("smooth-constant-radius", [1, 10, 100], {"full": [1, 1, 1], "uniform": [1 / 3, 2 / 3, 1]},
                          L=L3, Delta0=1.0, costs=C3)
    return {
        "optimal_distribution": lambda c: plot_optimal_distribution(dist, columns=c),
        "cost_landscape": lambda c: plot_cost_landscape(land, columns=c),
        "full_optimal_region": lambda c: plot_full_optimal_region(region, columns=c),
        "bound_vs_iterations": lambda c: plot_bound_vs_iterations(curves, columns=c),
        "bound_vs_cost": lambda c: plot_bound_vs_iterations(curves, columns=c, x="cost"),
        "verification": lambda c: plot_verification(_mc_records(), columns=c),
        "inexact_lmo": lambda c: plot_inexact_lmo(_coupling(), columns=c),
        "measured_constants": lambda c: plot_measured_constants(_layers(), columns=c),
        "accuracy_vs_time": lambda c: plot_accuracy_vs_time(_runs(), columns=c),
    }


NAMES = ["optimal_distribution", "cost_landscape", "full_optimal_region", "bound_vs_iterations", "bound_vs_cost",
         "verification", "inexact_lmo", "measured_constants", "accuracy_vs_time"]


@pytest.mark.parametrize("columns", [1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_every_figure_honours_the_column_width(figures, name, columns):
    fig = figures[name](columns)
    width = COLUMN_WIDTH_IN[columns]
    assert fig.get_size_inches()[0] == pytest.approx(width)
    FigureCanvasAgg(fig)
    with paper_style():
        renderer = fig.canvas.get_renderer()
        fig.draw(renderer)
        bbox = fig.get_tightbbox(renderer)
    # what is drawn stays inside the figure's width: the saved (tight) file is no wider
    assert bbox.x0 >= -SPILL_IN and bbox.x1 <= width + SPILL_IN, (name, columns, bbox)
    if columns == 2:  # the page width is used, not a one-column figure on a wide canvas
        assert bbox.width >= 0.55 * width, (name, bbox)


@pytest.mark.parametrize("name", NAMES)
def test_no_prime_drawn_as_an_acute_accent(figures, name):
    fig = figures[name](1)
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert texts
    for t in texts:
        # U+00B4 is what the issue saw; U+2032 is what the fonts rendered as it
        assert "\u00b4" not in t and "\u2032" not in t, (name, t)


def test_verification_prime_is_mathtext():
    fig = plot_verification(_mc_records())
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "T1$'$ smooth-constant-radius" in legend
