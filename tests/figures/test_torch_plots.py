"""Figures 7 and 8 (torch_plots): plotted data equal the records and the per-seed aggregation.
The plot functions need no torch; only the test on a real tiny experiment imports the torch side."""

import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from dropmuon.figures.style import color, save_figure
from dropmuon.figures.torch_plots import accuracy_bands, constants_series, plot_accuracy_vs_time, plot_measured_constants

# Medians and quantiles of two or three numbers are one interpolation a + (b − a)·w: exact up to a
# couple of ulps of numbers of order 1.
QUANTILE_RTOL = 1e-15


def _layers():
    """Two layers as `dropmuon estimate --json` writes them (a NaN estimate as JSON null)."""
    return [
        {"layer": 2, "shape": [8, 4, 3, 3], "L": 6.0, "L_median": 3.0, "L0": 1.0, "L1": 4.0,
         "hessian_top_eig": 2.0, "gnorms": [0.5, 1.0, 1.25, 0.75], "estimates": [2.0, 6.0, None, 3.0]},
        {"layer": 1, "shape": [4, 1, 3, 3], "L": 0.8, "L_median": 0.4, "L0": 0.1, "L1": 0.5,
         "hessian_top_eig": 0.3, "gnorms": [0.2, 0.4, 0.8, 1.0], "estimates": [0.2, 0.4, 0.8, 0.5]},
    ]


def _gid(ax, gid):
    (ln,) = [ln for ln in ax.lines if ln.get_gid() == gid]
    return ln


def _same(a, b):
    """Equal as float arrays, NaN where the record has null/NaN."""
    a = np.asarray([math.nan if v is None else v for v in a], dtype=float)
    b = np.asarray([math.nan if v is None else v for v in b], dtype=float)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def test_measured_constants_plots_the_estimates(saved_ok, labelled_ok, tmp_path):
    layers = _layers()
    fig = plot_measured_constants(layers)
    assert isinstance(fig, Figure) and fig.get_size_inches()[0] == pytest.approx(7.0)
    labelled_ok(fig)
    ax, bx = fig.axes
    assert ax.get_yscale() == "log" and bx.get_xscale() == "log"
    for rec in layers:
        k = rec["layer"]
        ln = _gid(ax, f"estimate:{k}")
        assert list(ln.get_xdata()) == list(range(len(rec["estimates"])))
        assert _same(ln.get_ydata(), rec["estimates"])
        assert list(_gid(ax, f"L:{k}").get_ydata()) == [rec["L"], rec["L"]]
        sc = _gid(bx, f"scatter:{k}")
        assert _same(sc.get_xdata(), rec["gnorms"]) and _same(sc.get_ydata(), rec["estimates"])
        fit = _gid(bx, f"fit:{k}")
        g = np.asarray(fit.get_xdata())
        assert g[0] == min(rec["gnorms"]) and g[-1] == pytest.approx(max(rec["gnorms"]), rel=QUANTILE_RTOL)
        assert np.allclose(fit.get_ydata(), rec["L0"] + rec["L1"] * g, rtol=QUANTILE_RTOL, atol=0)
        # a layer has one colour for its estimates, its L and its fit
        assert ln.get_color() == _gid(ax, f"L:{k}").get_color() == fit.get_color()
    assert [s["layer"] for s in constants_series(layers)] == [1, 2]
    json.dumps(constants_series(layers))
    saved_ok(save_figure(fig, tmp_path / "measured_constants"))
    one = plot_measured_constants(layers, columns=1)
    assert one.get_size_inches()[0] == pytest.approx(3.4)
    top, bottom = (a.get_position() for a in one.axes)  # stacked at one column
    assert top.y0 > bottom.y1


@pytest.mark.parametrize("edit, message", [
    (lambda ls: ls.clear(), "layers is empty"),
    (lambda ls: ls[0].pop("estimates"), r"layers\[0\] lacks the key 'estimates'"),
    (lambda ls: ls[1]["gnorms"].pop(), "layer 1: 3 gradient norms but 4 estimates"),
    (lambda ls: ls[1].update(layer=2), "layer numbers must be distinct"),
])
def test_measured_constants_rejects_bad_records(edit, message):
    layers = _layers()
    edit(layers)
    with pytest.raises(ValueError, match=message):
        plot_measured_constants(layers)


def _run(sampling, seed, points, ttt, target=0.9):
    return {"sampling": sampling, "seed": seed, "target_acc": target, "time_to_target_s": ttt,
            "history": [{"step": 4 * j, "time_s": t, "train_acc": a, "train_loss": 1.0 - a}
                        for j, (t, a) in enumerate(points)]}


def _runs():
    return [
        _run("uniform", 1, [(0.0, 0.1), (1.0, 0.9)], 1.0),
        _run("full", 2, [(0.0, 0.1), (1.0, 0.3), (3.0, 0.6)], None),  # stopped without the target
        _run("full", 0, [(0.0, 0.1), (1.0, 0.5), (2.0, 0.9)], 2.0),
        _run("uniform", 0, [(0.5, 0.2), (1.0, 0.8), (2.0, 0.92)], 2.0),  # no evaluation before 0.5 s
        _run("full", 1, [(0.0, 0.1), (1.5, 0.95)], 1.5),
    ]


GRID = [0.0, 1.0, 1.5, 2.0, 3.0, 4.0]


def test_accuracy_bands_by_hand():
    b = accuracy_bands(_runs(), GRID)
    assert list(b["schedules"]) == ["full", "uniform"] and b["target_acc"] == 0.9 and b["time"] == GRID
    full, uni = b["schedules"]["full"], b["schedules"]["uniform"]
    # full, step-wise per seed on GRID (the last value held after each run's end):
    #   seed 0: .1 .5 .5 .9 .9 .9 | seed 1: .1 .1 .95 .95 .95 .95 | seed 2: .1 .3 .3 .3 .6 .6
    assert full["median"] == pytest.approx([0.1, 0.3, 0.5, 0.9, 0.9, 0.9], rel=QUANTILE_RTOL)
    # 25% / 75% quantiles of three values: halfway between the 1st and 2nd / 2nd and 3rd
    assert full["low"] == pytest.approx([0.1, 0.2, 0.4, 0.6, 0.75, 0.75], rel=QUANTILE_RTOL)
    assert full["high"] == pytest.approx([0.1, 0.4, 0.725, 0.925, 0.925, 0.925], rel=QUANTILE_RTOL)
    assert full["seeds"] == [0, 1, 2] and full["time_to_target_s"] == 2.0  # median of (2, 1.5, ∞)
    # uniform: seed 0 is undefined at t = 0, so only seed 1 counts there
    assert uni["median"] == pytest.approx([0.1, 0.85, 0.85, 0.91, 0.91, 0.91], rel=QUANTILE_RTOL)
    assert uni["low"][0] == uni["high"][0] == 0.1
    assert uni["time_to_target_s"] == 1.5
    json.dumps(b)
    # a grid before every evaluation gives null, and a median over a missed target is null
    early = accuracy_bands([_run("full", 0, [(1.0, 0.5)], None)], [0.0, 1.0])
    assert early["schedules"]["full"]["median"] == [None, 0.5]
    assert early["schedules"]["full"]["time_to_target_s"] is None
    # the default grid runs from 0 to the last evaluation of all runs
    d = accuracy_bands(_runs(), points=7)
    assert d["time"] == pytest.approx(np.linspace(0.0, 3.0, 7).tolist(), rel=QUANTILE_RTOL)
    assert list(accuracy_bands(_runs(), GRID, samplings=["uniform"])["schedules"]) == ["uniform"]


def test_accuracy_vs_time_plots_the_medians(saved_ok, labelled_ok, tmp_path):
    runs = _runs()
    fig = plot_accuracy_vs_time(runs)
    assert isinstance(fig, Figure) and fig.get_size_inches()[0] == pytest.approx(3.4)
    labelled_ok(fig)
    ax = fig.axes[0]
    b = accuracy_bands(runs)
    for name, s in b["schedules"].items():
        ln = _gid(ax, f"median:{name}")
        assert list(ln.get_xdata()) == b["time"] and _same(ln.get_ydata(), s["median"])
        assert ln.get_color() == color(name)
        (band,) = [c for c in ax.collections if c.get_gid() == f"band:{name}"]
        ys = band.get_paths()[0].vertices[:, 1]
        assert ys.min() == min(s["low"]) and ys.max() == max(s["high"])
        assert list(_gid(ax, f"ttt:{name}").get_xdata()) == [s["time_to_target_s"]]
    assert list(_gid(ax, "target").get_ydata()) == [0.9, 0.9]
    only = plot_accuracy_vs_time(runs, samplings=["full"], columns=2)
    assert [ln.get_gid() for ln in only.axes[0].lines if ln.get_gid().startswith("median:")] == ["median:full"]
    saved_ok(save_figure(fig, tmp_path / "accuracy_vs_time"))


@pytest.mark.parametrize("edit, kw, message", [
    (lambda rs: rs.clear(), {}, "runs is empty"),
    (lambda rs: rs[2].update(history=[]), {}, r"runs\[2\] \(full, seed 0\) has no history"),
    (lambda rs: rs[0].pop("seed"), {}, r"runs\[0\] lacks the key 'seed'"),
    (lambda rs: rs[0]["history"][1].pop("time_s"), {}, "needs 'time_s' and 'train_acc'"),
    (lambda rs: None, {"samplings": ["optimal-max"]}, "unknown sampling 'optimal-max'"),
])
def test_accuracy_vs_time_rejects_bad_input(edit, kw, message):
    runs = _runs()
    edit(runs)
    with pytest.raises(ValueError, match=message):
        plot_accuracy_vs_time(runs, **kw)


def test_accuracy_bands_rejects_a_bad_grid():
    with pytest.raises(ValueError, match="grid must increase strictly"):
        accuracy_bands(_runs(), [0.0, 2.0, 1.0])


def test_both_figures_read_a_real_tiny_experiment(labelled_ok):
    pytest.importorskip("torch")
    from dropmuon.verification.torchside.experiment import ExperimentConfig, run_experiment

    cfg = ExperimentConfig(seeds=(0, 1), samplings=("full", "uniform"), max_steps=12, target_acc=0.3, batch=32,
                           lr=0.1, width=0.125, eval_every=4, estimate_steps=3, cost_repeats=3,
                           flush_denormals=False)  # this process's thread pool exists already
    ex = json.loads(json.dumps(run_experiment(cfg, progress=False)))  # as experiment.json gives it
    layers = ex["calibration"]["layers"]
    fig = plot_measured_constants(layers)
    labelled_ok(fig)
    for rec in layers:
        assert _same(_gid(fig.axes[0], f"estimate:{rec['layer']}").get_ydata(), rec["estimates"])
    fig = plot_accuracy_vs_time(ex["runs"])
    labelled_ok(fig)
    b = accuracy_bands(ex["runs"])
    assert list(b["schedules"]) == ["full", "uniform"]
    for name, s in b["schedules"].items():
        assert _same(_gid(fig.axes[0], f"median:{name}").get_ydata(), s["median"])
        assert s["seeds"] == [0, 1]


# -- figure 9: predicted against measured ----------------------------------------------------------

def _predictors():
    """Two predictors as an experiment summary lists them (a missing prediction as null)."""
    def row(applies, ps, ms, pr, mr):
        return {"applies": applies, "predicted_speedup": ps, "predicted_iterations_ratio": pr,
                "measured_speedup": {"mean": ms, "low": ms * 0.9, "high": ms * 1.1},
                "measured_iterations_ratio": {"mean": mr, "low": mr * 0.85, "high": mr * 1.2}}
    return [
        {"name": "smooth-deterministic", "label": "T1", "schedules": {
            "full": row(False, 1.0, 1.0, 1.0, 1.0), "uniform": row(False, 0.85, 0.5, 1.7, 2.9),
            "epoch-shift": row(False, None, 0.76, None, 1.8)}},
        {"name": "smooth-stochastic", "label": "T3", "schedules": {
            "full": row(True, 1.0, 1.0, 1.0, 1.0), "uniform": row(False, 0.9, 0.5, 1.65, 2.9),
            "optimal-sum": row(False, 1.01, 0.86, 1.05, 1.22)}},
    ]


def test_predicted_vs_measured_plots_each_prediction_with_its_interval(saved_ok, labelled_ok, tmp_path):
    from dropmuon.figures.torch_plots import plot_predicted_vs_measured, prediction_points

    preds = _predictors()
    pts = prediction_points(preds)
    # full is the reference (1, 1) and epoch-shift has no prediction under T1: left out
    assert [(q["schedule"], q["quantity"]) for q in pts[0]["points"]] == [("uniform", "speedup"),
                                                                          ("uniform", "iterations_ratio")]
    assert len(pts[1]["points"]) == 4
    json.dumps(pts)
    for columns in (1, 2):
        fig = plot_predicted_vs_measured(preds, columns=columns)
        labelled_ok(fig)
        axes = [a for a in fig.axes if a.get_visible()]
        assert len(axes) == 2
        for ax, d, rec in zip(axes, pts, preds):
            assert ax.get_title() == rec["label"].replace("\u2032", "$'$")
            assert ax.get_xscale() == ax.get_yscale() == "log"
            assert ax.get_xlim() == axes[0].get_xlim() == ax.get_ylim()  # same limits: the panels compare
            diag = _gid(ax, f"diagonal:{d['name']}")
            assert list(diag.get_xdata()) == list(diag.get_ydata())
            for q in d["points"]:
                key = f"{d['name']}:{q['schedule']}:{q['quantity']}"
                p = _gid(ax, f"point:{key}")
                s = rec["schedules"][q["schedule"]]
                assert list(p.get_xdata()) == [s[f"predicted_{q['quantity']}"]]
                assert list(p.get_ydata()) == [s[f"measured_{q['quantity']}"]["mean"]]
                iv = _gid(ax, f"interval:{key}")
                assert list(iv.get_ydata()) == [s[f"measured_{q['quantity']}"]["low"],
                                                s[f"measured_{q['quantity']}"]["high"]]
                # filled where the theorem covers the run, hollow where it does not
                assert (p.get_markerfacecolor() == "white") is (not s["applies"])
                assert p.get_color() == color(q["schedule"])
        saved_ok(save_figure(fig, tmp_path / f"predicted_vs_measured_{columns}"))


@pytest.mark.parametrize("bad, message", [
    ([], "predictors is empty"),
    ([{"label": "x"}], r"predictors\[0\] lacks the key 'name'"),
])
def test_predicted_vs_measured_rejects_bad_input(bad, message):
    from dropmuon.figures.torch_plots import plot_predicted_vs_measured

    with pytest.raises(ValueError, match=message):
        plot_predicted_vs_measured(bad)


def _row(regime, schedule, mean, low, high, decided):
    sp = {"mean": mean, "low": low, "high": high, "n": 8, "decided": decided}
    return {"regime": regime, "schedule": schedule, "speedup_time": sp, "speedup_per_step": sp,
            "iterations_ratio": sp, "reached": 8, "runs": 8, "predicted": {}}


#: a campaign of two regimes as campaign.json holds it: a significant loss, a not-significant
#: result, a significant win and a schedule without an interval (one pair)
CAMPAIGN_ROWS = [
    _row("minibatch", "full", 1.0, 1.0, 1.0, "not significant"),
    _row("minibatch", "uniform", 0.62, 0.55, 0.70, "slower"),
    _row("minibatch", "optimal-max", 0.95, 0.85, 1.06, "not significant"),
    _row("full-batch", "full", 1.0, 1.0, 1.0, "not significant"),
    _row("full-batch", "optimal-max", 1.21, 1.08, 1.35, "faster"),
    _row("full-batch", "phase-optimal", 1.1, None, None, "not significant"),
]


def test_campaign_plots_each_speedup_with_its_interval_by_regime(saved_ok, labelled_ok, tmp_path):
    from dropmuon.figures.torch_plots import campaign_points, plot_campaign

    pts = campaign_points(CAMPAIGN_ROWS)
    assert [d["regime"] for d in pts] == ["minibatch", "full-batch"]
    assert [q["schedule"] for q in pts[1]["points"]] == ["optimal-max", "phase-optimal"]  # full is the reference
    for columns in (1, 2):
        fig = plot_campaign(CAMPAIGN_ROWS, columns=columns)
        labelled_ok(fig)
        ax = fig.axes[0]
        assert ax.get_xscale() == "log"
        assert [t.get_text() for t in ax.get_yticklabels()] == ["full-batch", "minibatch"]  # first regime on top
        assert list(_gid(ax, "full-muon").get_xdata()) == [1.0, 1.0]
        for d in pts:
            for q in d["points"]:
                p = _gid(ax, f"point:{d['regime']}:{q['schedule']}")
                assert list(p.get_xdata()) == [q["mean"]] and p.get_color() == color(q["schedule"])
                # filled where the interval excludes 1, hollow where it does not
                assert (p.get_markerfacecolor() == "white") is (q["decided"] not in ("faster", "slower"))
                gids = {ln.get_gid() for ln in ax.lines}
                if q["low"] is None or not math.isfinite(q["low"]):
                    assert f"interval:{d['regime']}:{q['schedule']}" not in gids
                else:
                    assert list(_gid(ax, f"interval:{d['regime']}:{q['schedule']}").get_xdata()) == [q["low"], q["high"]]
        # the regimes' rows do not overlap: every point of a regime lies within half a unit of its tick
        for i, d in enumerate(pts):
            y0 = len(pts) - 1 - i
            for q in d["points"]:
                (y,) = _gid(ax, f"point:{d['regime']}:{q['schedule']}").get_ydata()
                assert abs(y - y0) < 0.5
        saved_ok(save_figure(fig, tmp_path / f"campaign_{columns}"))
    with pytest.raises(ValueError, match="the campaign has no rows"):
        plot_campaign([])
