"""Figures 5 and 6 (verification_plots): the plotted points and lines are the records' numbers."""

import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from dropmuon.figures.style import save_figure
from dropmuon.figures.verification_plots import (
    inexact_lmo_curves,
    plot_inexact_lmo,
    plot_verification,
    verification_points,
)

# The plotted offsets are the records' floats stored by matplotlib as float64 without arithmetic,
# so they compare exactly; the η*(0)/(1+δ) reference is one division each: a few ulps.
ULP_RTOL = 1e-14


@pytest.fixture(scope="module")
def records():
    """Real records (a README example, a designed tight instance) plus hand-made ones: a failed
    check, a check with a non-finite bound (JSON null), a zero observed value, and a coupling
    check (not a bound pair)."""
    from dropmuon.theory import RPT
    from dropmuon.verification import check_theorem
    from dropmuon.verification.synthetic.problems import SeparableQuadratic
    from dropmuon.verification.synthetic.suites import tight_instances

    p = SeparableQuadratic([1.0, 4.0, 2.0], [(3, 4), (2, 3), (4, 2)], "spectral", seed=0)
    real = check_theorem("smooth-deterministic", p, RPT.uniform(3), 5)
    tight = tight_instances()[0][1]()
    recs = [json.loads(json.dumps(r.as_dict())) for r in real + tight]
    base = dict(statement="rate", problem="hand", method="exact", ci_low=None, ci_high=None, n=1, note="")
    recs += [
        dict(base, name="failed T2", theorem="l0l1-deterministic", kind="bound", observed=3.0, bound=2.0,
             ratio=1.5, holds=False),
        dict(base, name="null bound", theorem="smooth-stochastic", kind="bound", observed=1.0, bound=None,
             ratio=None, holds=True),
        dict(base, name="zero observed", theorem="smooth-stochastic", kind="bound", observed=0.0, bound=1.0,
             ratio=0.0, holds=True),
        dict(base, name="coupling", theorem="inexact-constant-radius", kind="coupling", observed=0.7, bound=1.0,
             ratio=0.7, holds=True),
    ]
    return recs


def _offsets(fig, prefix):
    ax = fig.axes[0]
    return [c.get_offsets() for c in ax.collections if (c.get_gid() or "").startswith(prefix)]


def test_verification_points_select_bound_pairs(records):
    d = verification_points(records)
    names = [p["name"] for p in d["points"]]
    assert "coupling" not in names and d["excluded"] == {"coupling": 1}
    assert sorted(d["dropped"]) == ["null bound", "zero observed"]
    assert d["theorems"] == ["smooth-deterministic", "l0l1-deterministic"]  # THEOREM_LABELS order
    assert len(names) == 2 + 1 + 1  # weighted + rate, the tight instance, the failed check
    json.dumps(d)  # JSON-able


def test_plot_verification_scatters_observed_against_bound(records, saved_ok, labelled_ok, tmp_path):
    fig = plot_verification(records)
    assert isinstance(fig, Figure)
    labelled_ok(fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    plotted = np.concatenate(_offsets(fig, "theorem:") + _offsets(fig, "tight"))
    expected = [(r["observed"], r["bound"]) for r in records
                if r["kind"] in ("bound", "tight") and r["bound"] is not None and r["observed"] > 0]
    assert sorted(map(tuple, plotted.tolist())) == sorted(expected)
    (tight,) = _offsets(fig, "tight")
    assert tight.tolist() == [[r["observed"], r["bound"]] for r in records if r["kind"] == "tight"]
    (failed,) = _offsets(fig, "violated")
    assert failed.tolist() == [[3.0, 2.0]]
    # the y = x line spans the axes, and the counts are reported
    (line,) = [ln for ln in ax.lines]
    assert np.array_equal(line.get_xdata(), line.get_ydata())
    assert line.get_xdata()[0] == ax.get_xlim()[0] and line.get_xdata()[1] == ax.get_xlim()[1]
    (text,) = [t for t in ax.texts if t.get_gid() == "counts"]
    assert "4 checks plotted" in text.get_text() and "2 dropped" in text.get_text()
    assert "1 coupling" in text.get_text()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "tight instance" in legend and "violated (1)" in legend
    saved_ok(save_figure(fig, tmp_path / "verification"))


def test_within_tolerance_and_inconclusive_checks_get_their_own_rings(records):
    extra = [dict(records[0], name="near", status="within-tolerance", holds=False, observed=1.01, bound=1.0),
             dict(records[0], name="unsure", status="inconclusive", holds=False, observed=0.9, bound=1.0)]
    fig = plot_verification(records + extra)
    (near,) = _offsets(fig, "within-tolerance")
    (unsure,) = _offsets(fig, "inconclusive")
    assert near.tolist() == [[1.01, 1.0]] and unsure.tolist() == [[0.9, 1.0]]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "within tolerance (1)" in legend and "inconclusive (1)" in legend and "violated (1)" in legend


def test_plot_verification_without_failures_has_no_violation_marker(records):
    fig = plot_verification([r for r in records if r["holds"]], columns=2)
    assert _offsets(fig, "violated") == []
    assert fig.get_size_inches()[0] == pytest.approx(7.0)


@pytest.mark.parametrize("bad, message", [
    ([], "records is empty"),
    ([{"name": "x", "theorem": "t", "kind": "bound", "observed": 1.0, "bound": 2.0}], "lacks the key 'holds'"),
    ([{"name": "x", "theorem": "t", "kind": "prediction", "observed": 1.0, "bound": 1.0, "holds": True}],
     "no check of kind bound or tight"),
    (["not a record"], r"records\[0\] must be a dict"),
])
def test_plot_verification_rejects_bad_records(bad, message):
    with pytest.raises(ValueError, match=message):
        plot_verification(bad)


# -- figure 6 --------------------------------------------------------------------------------------

def _coupling():
    """A small coupling_table-shaped dict: two presets × two κ, one δ at rounding level (0)."""
    worst = []
    for preset, base in (("muon", 0.9), ("polar-express", 0.5)):
        for kappa in (10.0, 100.0):
            for steps in (3, 1, 2):  # unsorted on purpose
                d = base ** steps / (1 if kappa == 10.0 else 0.5)
                worst.append({"preset": preset, "steps": steps, "kappa": kappa, "n": 64, "delta": min(d, 1.0)})
    worst[-1]["delta"] = 0.0
    theory = [{"setting": "noiseless", "delta": d, "K": 30, "eta": 0.25 / (1 + d)} for d in (0.0, 0.1, 0.5)]
    theory += [{"setting": "noisy", "delta": d, "K": 30, "eta": 0.07 / (1 + d)} for d in (0.0, 0.5)]
    over = [{"delta": d, "best_eta": 0.28 / (1 + d)} for d in (0.0, 0.1, 0.5)]
    shrink = [{"delta": d, "best_eta": 0.28 / (1 - d)} for d in (0.0, 0.1, 0.5)]
    return {"config": {}, "delta_worst": worst, "theory": theory, "overshoot": over, "shrink": shrink}


def _line(ax, gid):
    (ln,) = [ln for ln in ax.lines if ln.get_gid() == gid]
    return ln.get_xdata(), ln.get_ydata()


def test_plot_inexact_lmo_lines_are_the_rows(saved_ok, labelled_ok, tmp_path):
    c = _coupling()
    fig = plot_inexact_lmo(c)
    labelled_ok(fig)
    ax, bx = fig.axes
    assert ax.get_yscale() == "log" and fig.get_size_inches()[0] == pytest.approx(7.0)
    for preset in ("muon", "polar-express"):
        for kappa in (10.0, 100.0):
            rows = sorted((r["steps"], r["delta"]) for r in c["delta_worst"]
                          if r["preset"] == preset and r["kappa"] == kappa and r["delta"] > 0)
            x, y = _line(ax, f"delta:{preset}:{kappa:g}")
            assert list(zip(x, y)) == rows
    assert len([ln for ln in ax.lines if (ln.get_gid() or "").startswith("delta:")]) == 4
    # one line style per κ, one colour per preset
    styles = {ln.get_gid(): (ln.get_color(), ln.get_linestyle()) for ln in ax.lines}
    assert styles["delta:muon:10"][1] == styles["delta:polar-express:10"][1] != styles["delta:muon:100"][1]
    assert styles["delta:muon:10"][0] == styles["delta:muon:100"][0] != styles["delta:polar-express:10"][0]
    # right panel: the noiseless theory rows, the empirical rows, and η*(0)/(1+δ)
    x, y = _line(bx, "theory")
    assert list(zip(x, y)) == [(r["delta"], r["eta"]) for r in c["theory"] if r["setting"] == "noiseless"]
    for key in ("overshoot", "shrink"):
        x, y = _line(bx, key)
        assert list(zip(x, y)) == [(r["delta"], r["best_eta"]) for r in c[key]]
    x, y = _line(bx, "prediction")
    assert x[0] == 0.0 and x[-1] == 0.5
    assert np.allclose(y, 0.25 / (1 + np.asarray(x)), rtol=ULP_RTOL, atol=0)
    assert inexact_lmo_curves(c)["dropped"] == 1
    json.dumps(inexact_lmo_curves(c))
    saved_ok(save_figure(fig, tmp_path / "inexact_lmo"))


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.pop("shrink"), "lacks the key 'shrink'"),
    (lambda c: c.update(delta_worst=[]), r"coupling\['delta_worst'\] is empty"),
    (lambda c: c["overshoot"][1].pop("best_eta"), r"coupling\['overshoot'\]\[1\] lacks the key 'best_eta'"),
    (lambda c: c.update(theory=[r for r in c["theory"] if r["delta"] != 0.0]), "needs a row at delta = 0"),
])
def test_plot_inexact_lmo_rejects_bad_input(edit, message):
    c = _coupling()
    edit(c)
    with pytest.raises(ValueError, match=message):
        plot_inexact_lmo(c)


def test_plot_inexact_lmo_reads_the_real_coupling_table(labelled_ok, quick_suite_folder):
    from dropmuon.figures.report import COUPLING_TABLE_FOLDER
    from dropmuon.verification.synthetic.coupling import coupling_table

    # the quick coupling table in its JSON form, as the report keeps it beside the session's quick
    # suite (computed there once, from the experiments of the suite's coupling checks)
    c = coupling_table(0, "quick", results=quick_suite_folder / COUPLING_TABLE_FOLDER)
    fig = plot_inexact_lmo(c, columns=1)
    labelled_ok(fig)
    ax, bx = fig.axes
    assert ax.get_position().y0 > bx.get_position().y1  # stacked at one column
    positive = [r for r in c["delta_worst"] if r["delta"] > 0]
    n_lines = len({(r["preset"], r["kappa"]) for r in c["delta_worst"]})
    plotted = [ln for ln in ax.lines if (ln.get_gid() or "").startswith("delta:")]
    assert len(plotted) == n_lines and sum(len(ln.get_xdata()) for ln in plotted) == len(positive)
    x, y = _line(bx, "overshoot")
    assert list(y) == [r["best_eta"] for r in sorted(c["overshoot"], key=lambda r: r["delta"])]
    assert all(math.isfinite(v) for v in y)


# -- what the figures look like: encodings beyond colour, intervals, glyphs --------------------------

def _mc_records():
    base = dict(statement="rate", problem="hand", n=400, note="", kind="bound", holds=True)
    return [
        dict(base, name="t1 exact", theorem="smooth-deterministic", method="exact", observed=1.0, bound=2.0,
             ratio=0.5, ci_low=None, ci_high=None, confidence=None),
        dict(base, name="t1' mc", theorem="smooth-constant-radius", method="mc", observed=3.0, bound=4.0,
             ratio=0.75, ci_low=2.5, ci_high=3.6, confidence=0.999),
        dict(base, name="t3 mc", theorem="smooth-stochastic", method="mc", observed=5.0, bound=9.0,
             ratio=5 / 9, ci_low=4.0, ci_high=6.5, confidence=0.999),
        dict(base, name="t4 exact", theorem="inexact-constant-radius", method="exact", observed=2.0, bound=3.0,
             ratio=2 / 3, ci_low=None, ci_high=None, confidence=None),
    ]


def test_verification_theorems_differ_by_marker_shape(records):
    recs = _mc_records() + [r for r in records if r["kind"] == "bound"]
    fig = plot_verification(recs)
    ax = fig.axes[0]
    handles = {t.get_text(): h for t, h in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles)}
    theorem_handles = [h for label, h in handles.items() if label.startswith("T")]
    n = len(verification_points(recs)["theorems"])
    assert len(theorem_handles) == n == 5
    assert len({h.get_marker() for h in theorem_handles}) == n  # not colour alone (T1 and T4 are both blue)
    # and the scattered points use those shapes: the marker paths of two theorems differ
    paths = {}
    for c in ax.collections:
        gid = c.get_gid() or ""
        if gid.startswith("theorem:"):
            th = gid.split(":")[1]
            paths.setdefault(th, c.get_paths()[0].vertices.round(6).tobytes())
    assert len(set(paths.values())) == len(paths) == n


def test_monte_carlo_points_carry_their_intervals():
    recs = _mc_records()
    fig = plot_verification(recs)
    ax = fig.axes[0]
    (bars,) = [c for c in ax.collections if c.get_gid() == "interval"]
    segs = sorted(tuple(map(tuple, s)) for s in bars.get_segments())
    expected = sorted(((r["ci_low"], r["bound"]), (r["ci_high"], r["bound"])) for r in recs if r["method"] == "mc")
    assert segs == expected
    # Monte Carlo estimates are drawn open, exact values filled
    mc = [c for c in ax.collections if (c.get_gid() or "").endswith(":mc")]
    assert sorted(map(tuple, np.concatenate([c.get_offsets() for c in mc]).tolist())) == [(3.0, 4.0), (5.0, 9.0)]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    (mc_label,) = [t for t in legend if "Monte Carlo" in t]
    assert "99.9%" in mc_label and "±30%" in mc_label  # the widest side: (6.5 − 5)/5
    d = verification_points(recs)
    assert [p["interval"] for p in d["points"]] == [None, [2.5, 3.6], [4.0, 6.5], None]


def test_inexact_lmo_rounding_level_is_put_apart():
    """A δ at rounding level (1e-16) does not set the axis: the axis ends a decade below the
    smallest δ above rounding level, the rounding-level rows are marked on its floor and named."""
    from dropmuon.figures.verification_plots import ROUNDING_DELTA

    c = _coupling()
    for r in c["delta_worst"]:
        if r["preset"] == "polar-express" and r["steps"] == 3:
            r["delta"] = 1.1e-16
    fig = plot_inexact_lmo(c)
    ax = fig.axes[0]
    above = [r["delta"] for r in c["delta_worst"] if r["delta"] > ROUNDING_DELTA]
    assert ax.get_ylim()[0] > 1e-12 and ax.get_ylim()[0] >= min(above) / 100
    (floor,) = [ln for ln in ax.lines if ln.get_gid() == "rounding"]
    n_round = sum(1 for r in c["delta_worst"] if 0 < r["delta"] <= ROUNDING_DELTA)
    assert len(floor.get_xdata()) == n_round == 2 and floor.get_ydata()[0] == ax.get_ylim()[0]
    (note,) = [t for t in ax.texts if t.get_gid() == "rounding-note"]
    assert "rounding" in note.get_text() and "polar-express" in note.get_text()


def test_inexact_lmo_right_panel_explains_the_shrinking_case():
    """The text says η*(δ) = η*(0)/(1+δ); the shrinking LMO's best step grows instead. The panel
    says why (the bound is worst-case) and draws the measured δ = 0 step scaled both ways."""
    c = _coupling()
    fig = plot_inexact_lmo(c)
    bx = fig.axes[1]
    (note,) = [t for t in bx.texts if t.get_gid() == "note"]
    assert "worst case" in note.get_text() and "shrink" in note.get_text()
    x, y = _line(bx, "shrink-reference")
    assert np.allclose(y, 0.28 / (1 - np.asarray(x)), rtol=ULP_RTOL)
    x, y = _line(bx, "overshoot-reference")
    assert np.allclose(y, 0.28 / (1 + np.asarray(x)), rtol=ULP_RTOL)
