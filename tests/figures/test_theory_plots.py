"""The four theory figures: what each plot draws equals what its data function computed, and that
equals the theory (closed forms written out here, or the solvers); every axes is labelled, the
files are valid, the data are JSON, and bad input is refused with a message naming it."""

import json
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from dropmuon.figures.style import COLUMN_WIDTH_IN, save_figure
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
from dropmuon.solvers import FULL_OPTIMAL_RTOL, optimal_sampling
from dropmuon.theory import RPT, theorems

from ..tolerances import CONVEX_RTOL, COST_RTOL, EXACT_RTOL, FORMULA_RTOL

L3 = np.array([1.0, 4.0, 2.0])
C3 = (1.0, 1.0, 1.0)
KS = np.array([1.0, 3.0, 10.0, 30.0, 100.0, 1e3, 1e4])  # integers: Theorem.evaluate takes an int K


def _json_ok(data):
    # allow_nan=False: a NaN or inf would make the stored report invalid JSON
    return json.loads(json.dumps(data, allow_nan=False)) == data


# -- figure 1: bound versus iterations ---------------------------------------------------------
@pytest.fixture(scope="module")
def three_distributions():
    opt = optimal_sampling(L3, C3)
    return {"full": RPT.full(3), "uniform": RPT.uniform(3), "optimal-max": opt.distribution}


@pytest.mark.parametrize("theorem, formula", [
    # T1: 2 Δ0 max_i(L_i/π_i) / K
    ("smooth-deterministic", lambda K, pi, D0: 2 * D0 * np.max(L3 / pi) / K),
    # T1′ at its tuned step η*(K) = sqrt(2Δ0/(K Σ L/π)): sqrt(2 Δ0 Σ_i L_i/π_i / K)
    ("smooth-constant-radius", lambda K, pi, D0: np.sqrt(2 * D0 * np.sum(L3 / pi) / K)),
])
def test_bound_lines_equal_the_theorem(theorem, formula, three_distributions, labelled_ok, saved_ok, tmp_path):
    D0 = 0.7
    data = bound_curves(theorem, KS, three_distributions, L=L3, Delta0=D0)
    assert _json_ok(data) and data["statement"] == "rate"
    fig = plot_bound_vs_iterations(data)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == [c["label"] for c in data["curves"]]
    for ln, (name, dist) in zip(lines, three_distributions.items()):
        np.testing.assert_array_equal(ln.get_xdata(), KS)
        expected = formula(KS, dist.inclusion, D0)
        np.testing.assert_allclose(ln.get_ydata(), expected, rtol=FORMULA_RTOL)
        # and the theorem object itself, one K at a time
        one = theorems[theorem].evaluate(int(KS[3]), L=L3, pi=dist.inclusion, Delta0=D0).value
        np.testing.assert_allclose(ln.get_ydata()[3], one, rtol=FORMULA_RTOL)
    labelled_ok(fig)
    saved_ok(save_figure(fig, tmp_path / "bound"))


def test_bound_fixed_step_and_cost_axis(three_distributions, labelled_ok):
    # a fixed eta is used as given: T1′ is Δ0/(Kη) + (η/2) Σ L/π, not the tuned rate
    data = bound_curves("smooth-constant-radius", KS, three_distributions, L=L3, Delta0=1.0, eta=0.01,
                        costs=C3, forward_cost=2.0)
    for c, dist in zip(data["curves"], three_distributions.values()):
        pi = dist.inclusion
        np.testing.assert_allclose(c["bound"], 1.0 / (KS * 0.01) + 0.005 * np.sum(L3 / pi), rtol=FORMULA_RTOL)
        # RPT with linear costs: E cost = F + Σ_i c_i π_i
        np.testing.assert_allclose(c["cost_per_iteration"], 2.0 + pi.sum(), rtol=COST_RTOL)
    fig = plot_bound_vs_iterations(data, x="cost")
    for ln, c in zip(fig.axes[0].get_lines(), data["curves"]):
        np.testing.assert_allclose(ln.get_xdata(), KS * c["cost_per_iteration"], rtol=FORMULA_RTOL)
    labelled_ok(fig)


def test_bound_l0l1_compares_on_the_unweighted_statement():
    # T2's rate weights layer i by π_i; distributions are compared on the π-free statement
    pis = {"full": [1.0, 1.0], "half": [0.5, 1.0]}
    data = bound_curves("l0l1-deterministic", [10, 100], pis, L0=[1, 2], L1=[1, 3], Delta0=1)
    assert data["statement"] == "unweighted"
    for c in data["curves"]:
        ref = theorems["l0l1-deterministic"].evaluate_many([10, 100], statement="unweighted", L0=[1, 2],
                                                           L1=[1, 3], pi=c["pi"], Delta0=1)
        np.testing.assert_array_equal(c["bound"], ref)


def test_coinciding_bound_curves_are_all_visible_and_named(three_distributions):
    """T1 (max-form): the max-form optimum needs exactly as many iterations as full updates, so
    its bound lies on full's; against total cost uniform's lies on full's. Each curve has its own
    marker shape, the markers are staggered, and the legend says which curves coincide."""
    from dropmuon.figures.theory_plots import coinciding_curves

    data = bound_curves("smooth-deterministic", np.unique(np.geomspace(1, 1e4, 41).round()), three_distributions,
                        L=L3, Delta0=1.0, costs=C3)
    for x, twin, other in (("iterations", "optimal-max", "full"), ("cost", "uniform", "full")):
        fig = plot_bound_vs_iterations(data, x=x)
        ax = fig.axes[0]
        lines = ax.get_lines()
        assert len({ln.get_marker() for ln in lines}) == len(lines)  # a marker shape per curve
        names = [c["name"] for c in data["curves"]]
        a, b = lines[names.index(twin)], lines[names.index(other)]
        if x == "iterations":
            np.testing.assert_allclose(a.get_ydata(), b.get_ydata(), rtol=EXACT_RTOL)
        # the markers of the two coinciding curves are at different points
        def marked(ln):
            start, step = ln.get_markevery()
            return set(np.asarray(ln.get_xdata())[start::step].round(9))
        assert not marked(a) & marked(b)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[names.index(twin)].endswith(f"same curve as {other}")
        assert sum("same curve" in t for t in legend) == 1
        xy = [(ln.get_xdata(), ln.get_ydata()) for ln in lines]
        expected = [None] * len(lines)
        expected[names.index(twin)] = names.index(other)
        assert coinciding_curves(xy) == expected


def test_bound_bad_input():
    with pytest.raises(ValueError, match="no-such-theorem"):
        bound_curves("no-such-theorem", KS, {"full": [1, 1, 1]}, L=L3, Delta0=1)
    with pytest.raises(ValueError, match="pi"):
        bound_curves("smooth-deterministic", KS, {"full": [1, 1, 1]}, L=L3, Delta0=1, pi=[1, 1, 1])
    with pytest.raises(ValueError, match="pi"):  # π_1 = 0: no guarantee at all
        bound_curves("smooth-deterministic", KS, {"bad": [0, 1, 1]}, L=L3, Delta0=1)
    with pytest.raises(ValueError, match="Ks"):
        bound_curves("smooth-deterministic", [0, 10], {"full": [1, 1, 1]}, L=L3, Delta0=1)
    data = bound_curves("smooth-deterministic", KS, {"full": [1, 1, 1]}, L=L3, Delta0=1)
    with pytest.raises(ValueError, match="costs="):
        plot_bound_vs_iterations(data, x="cost")
    with pytest.raises(ValueError, match="columns = 3"):
        plot_bound_vs_iterations(data, columns=3)


# -- figure 2: the optimal distribution per layer ----------------------------------------------
L4, C4, F4 = (1, 5, 3, 2), (1, 1, 1, 1), 2.0


def test_distribution_bars_equal_the_solver(labelled_ok, saved_ok, tmp_path):
    data = distribution_data(L4, C4, forward_cost=F4)
    assert _json_ok(data)
    r = optimal_sampling(L4, C4, forward_cost=F4)
    fig = plot_optimal_distribution(data)
    assert isinstance(fig, Figure) and fig.get_size_inches()[0] == COLUMN_WIDTH_IN[2]
    ax_p, ax_pi = fig.axes
    refs = [(r.start_probs, r.inclusion), (RPT.full(4).start_probs, RPT.full(4).inclusion),
            (RPT.uniform(4).start_probs, RPT.uniform(4).inclusion)]
    assert len(ax_p.containers) == len(ax_pi.containers) == 3
    for k, (p, pi) in enumerate(refs):
        # the bars carry the solver's numbers unchanged
        np.testing.assert_array_equal([b.get_height() for b in ax_p.containers[k]], p)
        np.testing.assert_array_equal([b.get_height() for b in ax_pi.containers[k]], pi)
        # grouped: series k sits (k − 1) bar widths (0.8/3) right of the layer number
        np.testing.assert_allclose([b.get_x() + b.get_width() / 2 for b in ax_p.containers[k]],
                                   np.arange(1, 5) + (k - 1) * 0.8 / 3, rtol=FORMULA_RTOL)
    # docs/sampling.md: p* = (L_1/L_max, (M_2 − M_1)/L_max, 0, 0) = (0.2, 0.8, 0, 0); speed-up over
    # full (F + Σc)/(F + Σ c_j M_j/L_max) = 6/5.2
    np.testing.assert_allclose(r.start_probs, [0.2, 0.8, 0, 0], atol=EXACT_RTOL)
    np.testing.assert_allclose(data["speedup_vs_full"], 6 / 5.2, rtol=EXACT_RTOL)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert f"{6 / 5.2:.3g}" in legend[0] and "faster than full" in legend[0]
    labelled_ok(fig)
    saved_ok(save_figure(fig, tmp_path / "distribution"))


@pytest.mark.parametrize("family", ["independent", "subsets"])
def test_distribution_other_families(family, labelled_ok):
    data = distribution_data(L4, C4, family=family, forward_cost=F4)
    r = optimal_sampling(L4, C4, family=family, forward_cost=F4)
    pi = r.inclusion
    # distribution of the lowest updated layer: P(min S = s)
    first = r.lowest_probs if family == "subsets" else pi * np.concatenate([[1.0], np.cumprod(1 - pi)[:-1]])
    fig = plot_optimal_distribution(data)
    np.testing.assert_allclose([b.get_height() for b in fig.axes[0].containers[0]], first, rtol=EXACT_RTOL)
    np.testing.assert_array_equal([b.get_height() for b in fig.axes[1].containers[0]], pi)
    assert "min S" in fig.axes[0].get_ylabel()
    labelled_ok(fig)


def test_distribution_bad_input():
    with pytest.raises(ValueError, match="'fixed'"):
        distribution_data(L4, C4, family="fixed")
    with pytest.raises(ValueError, match="L"):
        distribution_data((1, -5, 3, 2), C4)


# -- figure 3: the cost landscape over the simplex ---------------------------------------------
@pytest.fixture(scope="module")
def landscape():
    return cost_landscape(L3, C3, resolution=15)


@pytest.mark.parametrize("F", [0.0, 2.0])
def test_landscape_values_equal_the_total_cost_formula(F):
    data = cost_landscape(L3, C3, resolution=9, forward_cost=F)
    p = np.asarray(data["p"])
    assert np.all(p[:, 0] > 0) and np.allclose(p.sum(axis=1), 1)  # π_1 = 0 excluded
    assert len(p) == 9 * 10 // 2  # every lattice point with p1 >= 1/9
    pi = np.cumsum(p, axis=1)
    # max-form, linear costs: TC = max_i(L_i/π_i) · (F + Σ_i π_i), K in units of 2Δ0/ε²
    expected = np.max(L3 / pi, axis=1) * (F + pi.sum(axis=1))
    np.testing.assert_allclose(data["total_cost"], expected, rtol=FORMULA_RTOL)
    # a few points against the solvers' own evaluation of the fixed distribution
    for k in (0, 7, 30, len(p) - 1):
        r = optimal_sampling(L3, C3, family="fixed", distribution=RPT(p[k]), forward_cost=F)
        np.testing.assert_allclose(data["total_cost"][k], r.total_cost, rtol=FORMULA_RTOL)


def test_landscape_optimum_is_the_minimum(landscape, labelled_ok, saved_ok, tmp_path):
    data = landscape
    assert _json_ok(data)
    tc = np.asarray(data["total_cost"])
    opt = data["optimum"]["total_cost"]
    # closed form (docs/sampling.md, linear costs, F = 0): TC* = Σ_j M_j = 1 + 4 + 4
    np.testing.assert_allclose(opt, 9.0, rtol=EXACT_RTOL)
    assert opt == optimal_sampling(L3, C3).total_cost
    assert np.all(opt <= tc * (1 + EXACT_RTOL))
    np.testing.assert_allclose(tc / opt, data["relative"], rtol=FORMULA_RTOL)
    fig = plot_cost_landscape(data)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    mesh = next(c for c in ax.collections if c.get_array() is not None and c.get_array().size == tc.size)
    np.testing.assert_array_equal(mesh.get_array(), data["relative"])
    marks = {ln.get_label(): (ln.get_xdata()[0], ln.get_ydata()[0]) for ln in ax.get_lines()}
    # the affine map of the simplex: x = p3 − p2, y = p1
    for label, p in [(r"optimum $p^\star$", data["optimum"]["p"]), ("full", (1, 0, 0)), ("uniform", [1 / 3] * 3)]:
        np.testing.assert_allclose(marks[label], (p[2] - p[1], p[0]), rtol=FORMULA_RTOL, atol=1e-15)
    np.testing.assert_allclose(data["optimum"]["p"], [0.25, 0.75, 0.0], rtol=EXACT_RTOL)
    labelled_ok(fig)
    saved_ok(save_figure(fig, tmp_path / "landscape"))


def test_landscape_contour_labels_are_not_read_as_negative(landscape):
    fig = plot_cost_landscape(landscape)
    labels = [t.get_text() for t in fig.axes[0].texts if t.get_text().lstrip("×").replace(".", "").isdigit()]
    assert labels  # the contours are labelled
    for text in labels:
        assert text.startswith("×") and float(text[1:]) > 1  # "×1.25": times the optimum
        assert not text[0] in "-−–—‐"


def test_landscape_sum_form_optimum():
    data = cost_landscape(L3, C3, objective="sum", resolution=8)
    opt = data["optimum"]["total_cost"]
    # the sum-form optimum is an interior-point solution: within CONVEX_RTOL of the true minimum
    assert np.all(opt <= np.asarray(data["total_cost"]) * (1 + CONVEX_RTOL))
    p = np.asarray(data["p"])
    pi = np.cumsum(p, axis=1)
    np.testing.assert_allclose(data["total_cost"], np.sum(L3 / pi, axis=1) * pi.sum(axis=1), rtol=FORMULA_RTOL)


def test_landscape_bad_input():
    with pytest.raises(ValueError, match="b = 4"):
        cost_landscape(L4, C4)
    with pytest.raises(ValueError, match="resolution = 1"):
        cost_landscape(L3, C3, resolution=1)


# -- figure 4: where full updates are optimal --------------------------------------------------
# 1 + 1e-12: a genuine tie within the solvers' FULL_OPTIMAL_RTOL; its neighbours are far from 1
MAX_RATIOS = [0.1, 0.5, np.nextafter(1.0, 0.0), 1.0, 1.0 + 1e-12, 1.5, 10.0]
# no point within 0.05 of the sum-form boundary except the exact tie (1, 1)
SUM_RATIOS = [0.1, 0.5, 0.9, 1.0, 1.2, 3.0, 10.0]


@pytest.fixture(scope="module")
def region():
    return full_optimal_region(C3, ratios=SUM_RATIOS)


def test_max_form_region_is_the_square():
    data = full_optimal_region(C3, ratios=MAX_RATIOS, objectives=("max",))
    r = np.asarray(MAX_RATIOS)
    R2, R3 = np.meshgrid(r, r)  # [j][i]: r3 = ratios[j], r2 = ratios[i]
    # docs/sampling.md: full is optimal iff L_1 = max_j L_j. Just above 1 the optimum saves
    # (r − 1)/(1 + 2r) of the cost, below FULL_OPTIMAL_RTOL for r <= 1 + 1e-9: a tie
    expected = np.maximum(R2, R3) <= 1.0 + FULL_OPTIMAL_RTOL
    np.testing.assert_array_equal(data["panels"][0]["full_optimal"], expected)


def test_sum_form_region(region):
    r = np.asarray(SUM_RATIOS)
    R2, R3 = np.meshgrid(r, r)
    mask = np.asarray(region["panels"][1]["full_optimal"])
    assert region["panels"][1]["objective"] == "sum"
    # RPT, equal costs, F = 0 (C_s/C_1 = (4 − s)/3): full is optimal iff for every start s the
    # share Σ_{i≥s} L_i/Σ_i L_i is at most C_s/C_1 (the first-order condition of a convex program)
    expected = (R2 + R3 <= 2.0) & (2.0 * R3 <= 1.0 + R2)
    np.testing.assert_array_equal(mask, expected)
    # and point by point the solver's own verdict (the screening never changes it)
    for j, r3 in enumerate(r):
        for i, r2 in enumerate(r):
            verdict = optimal_sampling((1.0, r2, r3), C3, objective="sum").full_is_optimal
            assert mask[j, i] == verdict, (r2, r3)


def test_sum_form_independent_only_equal_ratios():
    # independent sampling, linear costs, F = 0: optimum π_i ∝ sqrt(L_i/c_i), so full updates are
    # optimal iff L_i/c_i is constant: only at (1, 1)
    data = full_optimal_region(C3, ratios=SUM_RATIOS, objectives=("sum",), family="independent")
    mask = np.asarray(data["panels"][0]["full_optimal"])
    expected = np.zeros_like(mask)
    expected[3, 3] = True
    np.testing.assert_array_equal(mask, expected)


def _boundary(ax):
    (ln,) = [ln for ln in ax.lines if ln.get_gid() == "boundary"]
    x, y = np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def test_region_plot(region, labelled_ok, saved_ok, tmp_path):
    assert _json_ok(region)
    fig = plot_full_optimal_region(region)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax, panel in zip(fig.axes, region["panels"]):
        assert ax.get_xscale() == ax.get_yscale() == "log"
        # the solver's verdicts on the grid agree with the closed form drawn (no red crosses)
        assert not [ln for ln in ax.lines if ln.get_gid() == "disagree"]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert f"verdicts agree at all {len(SUM_RATIOS) ** 2} grid points" in legend
    labelled_ok(fig)
    saved_ok(save_figure(fig, tmp_path / "region"))


def test_region_is_drawn_from_its_analytic_boundary():
    """The region is the closed-form one, to plotting tolerance: no staircase of grid cells, and
    nothing filled past L_3/L_1 = 1 (where full updates are not optimal)."""
    data = full_optimal_region(C3)  # the report's 61 x 61 default grid
    fig = plot_full_optimal_region(data)
    (ax_max, ax_sum) = fig.axes
    assert not [c for c in ax_max.collections + ax_sum.collections if c.get_array() is not None]  # no cells
    # max-form RPT: the square r2 <= 1, r3 <= 1; its boundary is the two segments r2 = 1 and r3 = 1
    x, y = _boundary(ax_max)
    on_edge = np.isclose(x, 1.0, rtol=1e-12) | np.isclose(y, 1.0, rtol=1e-12)
    assert on_edge.all() and x.max() <= 1 + 1e-12 and y.max() <= 1 + 1e-12
    # sum-form RPT, equal costs, F = 0: r2 + r3 <= 2 and 2 r3 <= 1 + r2 (test_sum_form_region)
    x, y = _boundary(ax_sum)
    assert len(x) > 100  # a dense curve on the log axes, not a few cell corners
    residual = np.minimum(np.abs(x + y - 2.0), np.abs(2.0 * y - 1.0 - x))
    assert residual.max() <= 1e-12
    assert np.all(x + y <= 2.0 + 1e-12) and np.all(2.0 * y <= 1.0 + x + 1e-12)
    for ax in (ax_max, ax_sum):
        (patch,) = [p for p in ax.patches if p.get_gid() == "region"]
        verts = patch.get_path().vertices
        assert verts[:, 1].max() <= 1.0 + 1e-12  # nothing filled above L_3/L_1 = 1
    # no grid point disagrees with the closed form (both panels, 3721 points each)
    for ax in (ax_max, ax_sum):
        assert not [ln for ln in ax.lines if ln.get_gid() == "disagree"]


def test_region_halfplanes_equal_the_solver_conditions():
    from dropmuon.figures.theory_plots import full_optimal_halfplanes, full_optimal_polygon

    # forward cost F = 2, unequal costs: C_s = F + Σ_{i>=s} c_i
    c, F = (1.0, 2.0, 3.0), 2.0
    hp = full_optimal_halfplanes(c, "sum", forward_cost=F)
    C = F + np.cumsum(np.asarray(c)[::-1])[::-1]
    rng = np.random.default_rng(0)
    for r2, r3 in rng.uniform(0.05, 3.0, size=(200, 2)):
        L = np.array([1.0, r2, r3])
        share = np.cumsum(L[::-1])[::-1] / L.sum()
        closed = bool(np.all(share <= C / C[0] + 1e-12))
        inside = all(a2 * r2 + a3 * r3 <= cc + 1e-12 for a2, a3, cc in hp)
        assert inside == closed, (r2, r3)
    # a few points against the solver itself, away from the boundary
    for r2, r3 in [(0.3, 0.2), (2.5, 0.2), (0.2, 2.0), (1.0, 0.5)]:
        inside = all(a2 * r2 + a3 * r3 <= cc + 1e-12 for a2, a3, cc in hp)
        assert inside == optimal_sampling((1.0, r2, r3), c, objective="sum", forward_cost=F).full_is_optimal
    assert full_optimal_polygon(full_optimal_halfplanes(C3, "max"), 0.1, 10.0) == [
        (0.1, 0.1), (1.0, 0.1), (1.0, 1.0), (0.1, 1.0)]
    assert full_optimal_halfplanes(C3, "sum", family="subsets") is None  # no closed form: dots


def test_region_one_column_is_stacked(region):
    fig = plot_full_optimal_region(region, columns=1)
    assert fig.get_size_inches()[0] == COLUMN_WIDTH_IN[1]
    top, bottom = fig.axes
    assert top.get_position().y0 > bottom.get_position().y1


def test_region_bad_input():
    with pytest.raises(ValueError, match="b = 4"):
        full_optimal_region(C4)
    with pytest.raises(ValueError, match="'l0l1'"):
        full_optimal_region(C3, objectives=("l0l1",))
    with pytest.raises(ValueError, match="ratios"):
        full_optimal_region(C3, ratios=[0.5, -1.0])


def test_no_pyplot():
    """Plot functions build Figure objects directly; pyplot (global state) is never imported."""
    code = ("import sys; from dropmuon.figures.theory_plots import *; "
            "plot_bound_vs_iterations(bound_curves('smooth-deterministic', [1, 2], {'full': [1]}, L=[1], "
            "Delta0=1)); print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
