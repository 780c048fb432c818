"""Every figure function: the one- and two-column sizes of dropmuon.figures.style are honoured (the
figure is that wide and nothing drawn spills past it, so the saved file is that wide too), no text
overlaps another or is cut off, no legend sits on the data, and no text renders a prime as an acute
accent."""

from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from dropmuon.figures.certify_plots import certify_data, plot_certify
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
from dropmuon.figures.torch_plots import (plot_accuracy_vs_time, plot_campaign, plot_measured_constants,
                                          plot_predicted_vs_measured)
from dropmuon.figures.verification_plots import plot_inexact_lmo, plot_verification

from .conftest import draw_and_collect_texts, legend_problems, text_problems
from .test_torch_plots import CAMPAIGN_ROWS
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


def _predictors():
    """As an experiment summary scores them: five theorems and the pilot, four schedules besides full,
    speed-ups and iteration ratios spread over a decade, some not covered."""
    rng = np.random.default_rng(0)
    out = []
    for name in ("smooth-deterministic", "smooth-constant-radius", "l0l1-deterministic", "smooth-stochastic",
                 "inexact-constant-radius", "pilot"):
        rows = {}
        for s in ("full", "uniform", "optimal-max", "optimal-sum", "epoch-shift"):
            ps, ms = rng.uniform(0.3, 3.0, 2)
            rows[s] = {"applies": name == "pilot" or s == "full", "predicted_speedup": ps,
                       "predicted_iterations_ratio": 1 / ps,
                       "measured_speedup": {"mean": ms, "low": ms * 0.8, "high": ms * 1.25},
                       "measured_iterations_ratio": {"mean": 1 / ms, "low": 0.8 / ms, "high": 1.25 / ms}}
        out.append({"name": name, "label": "T1\u2032" if name == "smooth-constant-radius" else name[:6],
                    "schedules": rows})
    return out


def _report_like_records():
    """Records drawn as the report's quick suite draws them: every registered theorem (exact
    points), Monte Carlo estimates with intervals and a tight instance, so the legend has the
    report's entries."""
    from dropmuon.theory import theorems

    recs = _mc_records()
    base = {"statement": "rate", "problem": "hand", "n": 1, "note": "", "kind": "bound", "holds": True,
            "method": "exact", "ci_low": None, "ci_high": None, "confidence": None}
    for j, name in enumerate(theorems):
        recs.append({**base, "name": f"{name} exact", "theorem": name, "observed": 0.5 + j, "bound": 2.0 + 3 * j,
                     "ratio": (0.5 + j) / (2.0 + 3 * j)})
    recs.append({**base, "name": "tight", "theorem": "smooth-deterministic", "kind": "tight", "observed": 9.9,
                 "bound": 10.0, "ratio": 0.99})
    return recs


def _certify():
    """Certify data without the SDPs (seconds each): the SDP's values are the closed form at those K
    (what tests/verification checks), the rest as the report computes it."""
    from dropmuon.verification.pep.certificate import closed_form_factor

    d = certify_data(sdp_K=(), epsilons=(1.2, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3))
    for c in d["curves"]:
        c["sdp_K"] = [1, 2, 4, 8, 16]
        c["sdp"] = [closed_form_factor(c["pi"], k) for k in c["sdp_K"]]
    return d


@pytest.fixture(scope="module")
def figures():
    L3, C3 = [1.0, 4.0, 2.0], [1.0, 1.0, 1.0]
    dist = distribution_data([1, 5, 3, 2], [1, 1, 1, 1], forward_cost=2.0)
    land = cost_landscape(L3, C3, resolution=8)
    region = full_optimal_region(C3, ratios=[0.1, 0.5, 1.0, 2.0, 10.0])
    curves = bound_curves("smooth-constant-radius", [1, 10, 100], {"full": [1, 1, 1], "uniform": [1 / 3, 2 / 3, 1]},
                          L=L3, Delta0=1.0, costs=C3)
    cert = _certify()
    return {
        "optimal_distribution": lambda c: plot_optimal_distribution(dist, columns=c),
        "cost_landscape": lambda c: plot_cost_landscape(land, columns=c),
        "full_optimal_region": lambda c: plot_full_optimal_region(region, columns=c),
        "bound_vs_iterations": lambda c: plot_bound_vs_iterations(curves, columns=c),
        "bound_vs_cost": lambda c: plot_bound_vs_iterations(curves, columns=c, x="cost"),
        "verification": lambda c: plot_verification(_report_like_records(), columns=c),
        "inexact_lmo": lambda c: plot_inexact_lmo(_coupling(), columns=c),
        "measured_constants": lambda c: plot_measured_constants(_layers(), columns=c),
        "accuracy_vs_time": lambda c: plot_accuracy_vs_time(_runs(), columns=c),
        "predicted_vs_measured": lambda c: plot_predicted_vs_measured(_predictors(), columns=c),
        "certify": lambda c: plot_certify(cert, columns=c),
        "campaign": lambda c: plot_campaign(CAMPAIGN_ROWS, columns=c),
    }


@pytest.fixture(scope="module")
def drawn(figures):
    """``drawn(name, columns)``: that figure plotted and drawn once for all the module's checks (a
    draw is most of a check's time), as ``savefig`` draws it (:func:`draw_and_collect_texts`: Agg,
    the paper style, the layout engine run): ``fig``; ``width_in``, its width as plotted (before
    the draw); ``draw``, the ``(renderer, texts)`` of that draw, which ``text_problems`` and
    ``legend_problems`` check instead of drawing again; ``tight``, ``fig.get_tightbbox`` (inches)
    measured with its renderer right after it, in the paper style. No check changes the figure, so
    each sees it as drawn."""
    cache = {}

    def get(name, columns):
        if (name, columns) not in cache:
            fig = figures[name](columns)
            width_in = fig.get_size_inches()[0]
            with paper_style():
                draw = draw_and_collect_texts(fig)
                tight = fig.get_tightbbox(draw[0]).frozen()
            cache[name, columns] = SimpleNamespace(fig=fig, width_in=width_in, draw=draw, tight=tight)
        return cache[name, columns]

    yield get
    cache.clear()


NAMES = ["optimal_distribution", "cost_landscape", "full_optimal_region", "bound_vs_iterations", "bound_vs_cost",
         "verification", "inexact_lmo", "measured_constants", "accuracy_vs_time", "predicted_vs_measured", "certify",
         "campaign"]


@pytest.mark.parametrize("columns", [1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_every_figure_honours_the_column_width(drawn, name, columns):
    d = drawn(name, columns)
    width = COLUMN_WIDTH_IN[columns]
    assert d.width_in == pytest.approx(width)
    bbox = d.tight  # measured right after the draw, in the paper style
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


@pytest.mark.parametrize("columns", [1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_no_text_overlaps_or_is_cut_off(drawn, name, columns):
    """Every drawn text (tick labels, axis labels, titles, legend entries, panel letters,
    annotations) as the saved file has it: no two overlap, none reaches past the saved area, the
    figure's canvas or its clip box (tests/figures/conftest.py, text_problems)."""
    d = drawn(name, columns)
    problems = text_problems(d.fig, d.draw)
    assert problems == [], "\n".join(problems)


# the figures whose legends are placed where the data cannot be (whatever the data): the report's
# verification (y = x runs corner to corner), certify, the bound curves, the distributions and the
# landscape and region, predicted against measured (under the panels); the other torch figures and the inexact-LMO figure put theirs in a fixed corner,
# which data can reach (the small data here do)
LEGEND_CLEAR = ["optimal_distribution", "cost_landscape", "full_optimal_region", "bound_vs_iterations",
                "bound_vs_cost", "verification", "certify", "predicted_vs_measured"]


@pytest.mark.parametrize("columns", [1, 2])
@pytest.mark.parametrize("name", LEGEND_CLEAR)
def test_no_legend_sits_on_the_data(drawn, name, columns):
    d = drawn(name, columns)
    problems = legend_problems(d.fig, d.draw)
    assert problems == [], "\n".join(problems)


# -- the checks themselves find what they are for -------------------------------------------------

def _styled_figure(**kw):
    from dropmuon.figures.style import new_figure

    with paper_style():
        return new_figure(1, **kw)


def test_text_check_finds_overlaps_and_cut_off_text():
    fig, ax = _styled_figure()
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    assert text_problems(fig) == []  # a plain labelled axes is clean
    ax.text(0.5, 0.5, "one", transform=ax.transAxes)
    ax.text(0.52, 0.5, "two", transform=ax.transAxes)  # a few points to the right: on "one"
    problems = text_problems(fig)
    assert len(problems) == 1 and "'one'" in problems[0] and "'two'" in problems[0] and "overlaps" in problems[0]

    fig, ax = _styled_figure(aspect=0.3)
    ax.set_ylabel("a y label much longer than the axes are high")
    # the saved file has all of it (the tight box grows), but the figure's canvas does not
    (problem,) = text_problems(fig)
    assert "the figure's canvas" in problem and "much longer" in problem

    fig, ax = _styled_figure()
    ax.text(0.95, 0.5, "clipped by its axes", transform=ax.transAxes, clip_on=True)
    problems = text_problems(fig)
    assert any("its clip box" in p and "clipped by its axes" in p for p in problems), problems


def test_legend_check_finds_a_line_through_a_legend():
    fig, ax = _styled_figure()
    ax.plot([0, 1], [0, 1], label="diagonal")
    ax.plot([0, 1], [0.95, 0.95], label="top")
    ax.legend(loc="lower right")
    assert legend_problems(fig) == []  # under the diagonal, below the top line: clear
    ax.get_legend().remove()
    ax.legend(loc="center")  # on the diagonal
    (problem,) = legend_problems(fig)
    assert "'diagonal'" in problem
    # an axis-spanning reference line under an opaque legend frame is masked, not crossed ...
    fig, ax = _styled_figure()
    ax.plot([0, 1], [0, 0.1], label="data")
    ax.axvline(0.5, color="0.5")
    ax.legend(loc="upper center", frameon=True, facecolor="white", framealpha=1.0)
    assert legend_problems(fig) == []
    # ... but crosses a legend without a frame
    ax.get_legend().remove()
    ax.legend(loc="upper center", frameon=False)
    (problem,) = legend_problems(fig)
    assert "sits on the line" in problem


def test_verification_legend_goes_under_the_axes_when_it_does_not_fit_under_the_diagonal():
    """With a violation and an inconclusive check the one-column legend has ten entries: too many
    for the triangle under y = x, so it goes under the axes, and the figure grows instead of the
    axes shrinking."""
    base = _report_like_records()
    extra = [{**base[0], "name": "violated", "observed": 3.0, "bound": 2.0, "ratio": 1.5, "holds": False},
             {**base[1], "name": "unsure", "status": "inconclusive"}]
    fits, crowded = plot_verification(base, columns=1), plot_verification(base + extra, columns=1)
    for fig in (fits, crowded):
        assert text_problems(fig) == [] and legend_problems(fig) == []
        FigureCanvasAgg(fig)
        with paper_style():
            fig.draw(fig.canvas.get_renderer())
    ax_fits, ax_crowded = fits.axes[0], crowded.axes[0]
    leg = ax_crowded.get_legend()
    assert len(leg.get_texts()) == 10 and leg.get_window_extent().y1 < ax_crowded.get_window_extent().y0
    assert ax_fits.get_legend().get_window_extent().y0 > ax_fits.bbox.y0  # inside, at the bottom
    assert crowded.get_figheight() > fits.get_figheight()
    # the axes keep their size (within 5%: the layout's padding differs a little)
    assert ax_crowded.bbox.width == pytest.approx(ax_fits.bbox.width, rel=0.05)
