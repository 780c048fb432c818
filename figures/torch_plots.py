"""Figures of the torch closed loop, from its JSON output (no torch needed): the CNN's measured
layer-wise smoothness along training (figure 7) and training accuracy against wall-clock time per
schedule with bands over seeds (figure 8)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from ._data import check_record, json_number, number
from .style import PALETTE, color, mathtext_primes, new_figure, styled

__all__ = [
    "SCHEDULE_ORDER",
    "BAND_QUANTILES",
    "constants_series",
    "plot_measured_constants",
    "accuracy_bands",
    "plot_accuracy_vs_time",
    "prediction_points",
    "plot_predicted_vs_measured",
    "campaign_points",
    "plot_campaign",
]

#: the order in which schedules are listed (others follow in order of appearance)
SCHEDULE_ORDER = ("full", "uniform", "optimal-max", "optimal-sum", "epoch-shift", "phase-optimal")

#: the band of :func:`accuracy_bands`: the 25% and 75% quantiles over seeds (the interquartile
#: range; numpy's linear interpolation between order statistics)
BAND_QUANTILES = (0.25, 0.75)

_LAYER_KEYS = ("layer", "L", "L0", "L1", "gnorms", "estimates")
_RUN_KEYS = ("sampling", "seed", "history")


# -- figure 7: measured constants ------------------------------------------------------------------

def constants_series(layers) -> list[dict]:
    """The data of :func:`plot_measured_constants`, one dict per layer (sorted by layer):
    ``layer``, ``shape``, ``L``, ``L0``, ``L1``, ``step`` (0, 1, …), ``estimate`` (Gluon's
    ``L̂_i`` per step, ``None`` where not finite), ``gnorm`` (``‖∇_i f‖_nuc`` per step) and
    ``fit`` (``{"gnorm": [min, max] of the finite gradient norms, "L": L0 + L1·g there}``).

    ``layers``: the per-layer records of ``dropmuon estimate --json`` (or
    ``calibration["layers"]`` of an experiment).

    >>> s = constants_series([dict(layer=1, L=2.0, L0=1.0, L1=1.0, gnorms=[0.5, 1.0],
    ...                            estimates=[1.5, None])])
    >>> s[0]["step"], s[0]["estimate"], s[0]["fit"]
    ([0, 1], [1.5, None], {'gnorm': [0.5, 1.0], 'L': [1.5, 2.0]})
    """
    if layers is None or len(layers) == 0:
        raise ValueError("layers is empty; give the per-layer records of `dropmuon estimate --json`")
    out = []
    for j, r in enumerate(layers):
        check_record(r, j, "layers", _LAYER_KEYS)
        est = [number(v) for v in r["estimates"]]
        gn = [number(v) for v in r["gnorms"]]
        if not est:
            raise ValueError(f"layer {r['layer']} has no estimates (an empty trajectory)")
        if len(gn) != len(est):
            raise ValueError(f"layer {r['layer']}: {len(gn)} gradient norms but {len(est)} estimates; "
                             "they must be per step")
        L, L0, L1 = number(r["L"]), number(r["L0"]), number(r["L1"])
        ok = [g for g in gn if math.isfinite(g) and g > 0]
        g = [min(ok), max(ok)] if ok else []
        out.append({"layer": int(r["layer"]), "shape": list(r.get("shape", [])), "L": json_number(L),
                    "L0": json_number(L0), "L1": json_number(L1), "step": list(range(len(est))),
                    "estimate": [json_number(v) for v in est], "gnorm": [json_number(v) for v in gn],
                    "fit": {"gnorm": g, "L": [L0 + L1 * x for x in g]}})
    layers_seen = [s["layer"] for s in out]
    if len(set(layers_seen)) != len(layers_seen):
        raise ValueError(f"layer numbers must be distinct; got {layers_seen}")
    return sorted(out, key=lambda s: s["layer"])


def _nan(xs) -> list[float]:
    return [math.nan if v is None else v for v in xs]


@styled
def plot_measured_constants(layers, columns: int = 2) -> Figure:
    """Measured smoothness of the CNN's layers along full-Muon training (data:
    :func:`constants_series`).

    Left: Gluon's estimate ``L̂_i`` versus the training step, one line per layer (log y; a step
    without a finite estimate leaves a gap), with each layer's ``L_i`` (the largest estimate, used
    by the schedules) as a dotted horizontal line. Right: ``L̂_i`` against the gradient's nuclear
    norm ``‖∇_i f‖_nuc`` at that step (log–log) with the fitted ``(L0, L1)`` line
    ``L0 + L1·g``. ``columns=1`` stacks the two panels.
    """
    series = constants_series(layers)
    # side by side on the page width; stacked at one column, where side by side leaves no room
    grid = dict(nrows=1, ncols=2) if columns == 2 else dict(nrows=2, ncols=1)
    fig, (ax, bx) = new_figure(columns, 0.4 if columns == 2 else 1.35, **grid)
    for j, s in enumerate(series):
        c = color(j + 1) if j + 1 < len(PALETTE) - 1 else color(j + 2)
        y = _nan(s["estimate"])
        ax.plot(s["step"], y, color=c, lw=1.1, marker="o", ms=2.0, label=f"layer {s['layer']}",
                gid=f"estimate:{s['layer']}")
        if s["L"] is not None:
            ax.axhline(s["L"], color=c, ls=":", lw=0.9, gid=f"L:{s['layer']}")
        bx.plot(_nan(s["gnorm"]), y, color=c, ls="none", marker="o", ms=2.2, alpha=0.8,
                gid=f"scatter:{s['layer']}")
        if s["fit"]["gnorm"] and s["L0"] is not None and s["L1"] is not None:
            g = np.geomspace(*s["fit"]["gnorm"], 50) if s["fit"]["gnorm"][1] > s["fit"]["gnorm"][0] else \
                np.array(s["fit"]["gnorm"])
            bx.plot(g, s["L0"] + s["L1"] * g, color=c, lw=1.0, gid=f"fit:{s['layer']}")
    ax.set_yscale("log", nonpositive="mask")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(r"training step $k$")
    ax.set_ylabel(r"$\hat L_i$")
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.3", ls=":", lw=0.9, label=r"$L_i$ (max over $k$)"))
    ax.legend(handles=handles, loc="lower right", ncols=2, columnspacing=0.8, handlelength=1.4,
              borderaxespad=0.3, labelspacing=0.25)
    bx.set_xscale("log", nonpositive="mask")
    bx.set_yscale("log", nonpositive="mask")
    bx.set_xlabel(r"$\|\nabla_i f\|_{\mathrm{nuc}}$")
    bx.set_ylabel(r"$\hat L_i$")
    bx.legend(handles=[Line2D([], [], color="0.3", ls="none", marker="o", ms=2.5, label="measured"),
                       Line2D([], [], color="0.3", lw=1.0, label=r"fit $L_0 + L_1 g$")],
              loc="lower right", borderaxespad=0.3, labelspacing=0.25)
    return fig


# -- figure 8: accuracy against time ---------------------------------------------------------------

def _check_runs(runs) -> list[dict]:
    if runs is None or len(runs) == 0:
        raise ValueError("runs is empty; give experiment['runs'] of `dropmuon experiment`")
    for j, r in enumerate(runs):
        check_record(r, j, "runs", _RUN_KEYS)
        if not r["history"]:
            raise ValueError(f"runs[{j}] ({r['sampling']}, seed {r['seed']}) has no history")
        for h in r["history"]:
            if "time_s" not in h or "train_acc" not in h:
                raise ValueError(f"runs[{j}] ({r['sampling']}, seed {r['seed']}): every history entry needs "
                                 f"'time_s' and 'train_acc'; got {sorted(h)}")
    return list(runs)


def _step_values(times, values, grid) -> np.ndarray:
    """``values`` of the last evaluation at or before each grid time (NaN before the first)."""
    order = np.argsort(times, kind="stable")
    t, v = np.asarray(times, float)[order], np.asarray(values, float)[order]
    idx = np.searchsorted(t, grid, side="right") - 1
    out = np.where(idx >= 0, v[np.clip(idx, 0, None)], np.nan)
    return out


def accuracy_bands(runs, grid=None, *, samplings=None, points: int = 201) -> dict:
    """Per-schedule training accuracy on a common time grid: median and interquartile band over
    seeds (:data:`BAND_QUANTILES`).

    Each run's accuracy is a step function of its training time: at time ``t`` it is the accuracy
    of the last evaluation at or before ``t`` (undefined, and left out of the statistics, before the
    first). Runs stop at the target accuracy (or their step limit), so after a run's last
    evaluation its last value is held. ``grid``: the times in seconds (default ``points`` values
    from 0 to the last evaluation time of all runs). ``samplings``: the schedules to keep (default
    all, in :data:`SCHEDULE_ORDER`); a name with no run is an error.

    Returns ``{"time": grid, "target_acc": the runs' target (None if absent or not common),
    "schedules": {name: {"median", "low", "high": lists over the grid (None where no run is
    defined), "seeds": [seeds], "time_to_target_s": median over seeds of the time to target (a
    run that missed it counts as +∞; None when the median is infinite)}}}``.

    >>> runs = [dict(sampling="full", seed=s, history=[dict(time_s=0.0, train_acc=0.1),
    ...                                                 dict(time_s=1.0, train_acc=a)]) for s, a in
    ...         [(0, 0.5), (1, 0.7), (2, 0.9)]]
    >>> b = accuracy_bands(runs, grid=[0.0, 0.5, 1.0])
    >>> b["schedules"]["full"]["median"], b["schedules"]["full"]["low"]
    ([0.1, 0.1, 0.7], [0.1, 0.1, 0.6])
    """
    runs = _check_runs(runs)
    present = list(dict.fromkeys(str(r["sampling"]) for r in runs))
    if samplings is None:
        names = [s for s in SCHEDULE_ORDER if s in present] + [s for s in present if s not in SCHEDULE_ORDER]
    else:
        names = [str(s) for s in samplings]
        if not names:
            raise ValueError("samplings is empty; give at least one schedule name or None for all")
        for s in names:
            if s not in present:
                raise ValueError(f"unknown sampling {s!r}: no run has it; the runs have {present}")
    if grid is None:
        if isinstance(points, bool) or not isinstance(points, int) or points < 2:
            raise ValueError(f"points must be an integer >= 2; got points = {points!r}")
        tmax = max(number(h["time_s"]) for r in runs if r["sampling"] in names for h in r["history"])
        grid = np.linspace(0.0, tmax if tmax > 0 else 1.0, points)
    else:
        grid = np.asarray(grid, dtype=float)
        if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)):
            raise ValueError(f"grid must be a non-empty 1-D list of finite times; got grid = {grid!r}")
        if np.any(np.diff(grid) <= 0):
            raise ValueError("grid must increase strictly")
    targets = {number(r.get("target_acc")) for r in runs if r["sampling"] in names}
    target = targets.pop() if len(targets) == 1 else math.nan
    q_lo, q_hi = BAND_QUANTILES
    out = {}
    for name in names:
        mine = sorted((r for r in runs if r["sampling"] == name), key=lambda r: r["seed"])
        acc = np.array([_step_values([number(h["time_s"]) for h in r["history"]],
                                     [number(h["train_acc"]) for h in r["history"]], grid) for r in mine])
        defined = np.any(np.isfinite(acc), axis=0)
        med, lo, hi = (np.full(grid.shape, np.nan) for _ in range(3))
        if defined.any():
            a = acc[:, defined]
            med[defined] = np.nanmedian(a, axis=0)
            lo[defined] = np.nanquantile(a, q_lo, axis=0)
            hi[defined] = np.nanquantile(a, q_hi, axis=0)
        ttt = [number(r.get("time_to_target_s")) for r in mine]
        ttt = [t if math.isfinite(t) else math.inf for t in ttt]
        m = float(np.median(ttt))
        out[name] = {"median": [json_number(v) for v in med], "low": [json_number(v) for v in lo],
                     "high": [json_number(v) for v in hi], "seeds": [r["seed"] for r in mine],
                     "time_to_target_s": json_number(m)}
    return {"time": grid.tolist(), "target_acc": json_number(target), "schedules": out}


@styled
def plot_accuracy_vs_time(runs, samplings=None, columns: int = 1) -> Figure:
    """Training accuracy against wall-clock training time per schedule: the median over seeds as a
    line (step-wise, see :func:`accuracy_bands`) and the interquartile band (25–75%) shaded; the
    target accuracy as a dashed line, with a tick at each schedule's median time to target.
    ``samplings``: the schedules to draw (default all present)."""
    b = accuracy_bands(runs, samplings=samplings)
    t = np.asarray(b["time"])
    fig, ax = new_figure(columns, 0.72)
    target = b["target_acc"]
    if target is not None:
        ax.axhline(target, color="0.35", ls="--", lw=0.8, zorder=1, gid="target")
    counts = {len(s["seeds"]) for s in b["schedules"].values()}
    for j, (name, s) in enumerate(b["schedules"].items()):
        c = color(name, default=j + 1)
        med, lo, hi = (np.asarray(_nan(s[k]), dtype=float) for k in ("median", "low", "high"))
        ax.fill_between(t, lo, hi, color=c, alpha=0.16, lw=0, step="post", gid=f"band:{name}")
        label = name if len(counts) == 1 else f"{name} ({len(s['seeds'])} seeds)"
        ax.plot(t, med, color=c, lw=1.1, drawstyle="steps-post", label=label, gid=f"median:{name}")
        if target is not None and s["time_to_target_s"] is not None:
            ax.plot([s["time_to_target_s"]], [target], color=c, marker="|", ms=7, mew=1.4, ls="none",
                    zorder=4, gid=f"ttt:{name}")
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("training accuracy")
    handles, _ = ax.get_legend_handles_labels()
    if target is not None:
        handles.append(Line2D([], [], color="0.35", ls="--", lw=0.8, label=f"target {target:g}"))
        if any(s["time_to_target_s"] is not None for s in b["schedules"].values()):
            handles.append(Line2D([], [], color="0.35", marker="|", ms=7, mew=1.4, ls="none",
                                  label="median time to target"))
    seeds = f"{counts.pop()} seeds" if len(counts) == 1 else "seeds"
    ax.legend(handles=handles, loc="lower right", borderaxespad=0.3, labelspacing=0.25, handlelength=1.4,
              title=f"median, 25–75% over {seeds}", title_fontsize=6.5)
    return fig


# -- figure 9: predicted against measured ----------------------------------------------------------

_PREDICTOR_KEYS = ("name", "schedules")
_QUANTITIES = (("speedup", "o", "time speed-up"), ("iterations_ratio", "s", "iteration ratio"))


def prediction_points(predictors) -> list[dict]:
    """The data of :func:`plot_predicted_vs_measured`, one dict per predictor: ``name``,
    ``label`` and ``points``, a list of ``{schedule, quantity, predicted, measured, low, high,
    applies}`` with ``quantity`` ``"speedup"`` or ``"iterations_ratio"`` (both relative to full
    Muon, so full itself is left out), one per schedule and quantity with both a finite
    prediction and a finite measurement.

    ``predictors``: the ``predictors`` list of an experiment summary, each
    ``{"name", "label", "schedules": {schedule: {"applies", "predicted_speedup",
    "measured_speedup": {"mean", "low", "high"}, "predicted_iterations_ratio",
    "measured_iterations_ratio": {...}}}}``.

    >>> p = prediction_points([dict(name="T1", schedules={"uniform": dict(
    ...     applies=False, predicted_speedup=0.85, measured_speedup=dict(mean=0.5, low=0.46, high=0.54),
    ...     predicted_iterations_ratio=1.7, measured_iterations_ratio=dict(mean=2.9, low=2.6, high=3.2))})])
    >>> [(q["quantity"], q["predicted"], q["measured"], q["applies"]) for q in p[0]["points"]]
    [('speedup', 0.85, 0.5, False), ('iterations_ratio', 1.7, 2.9, False)]
    """
    if predictors is None or len(predictors) == 0:
        raise ValueError("predictors is empty; give the 'predictors' list of a `dropmuon experiment` summary")
    out = []
    for j, r in enumerate(predictors):
        check_record(r, j, "predictors", _PREDICTOR_KEYS)
        pts = []
        for sched, s in r["schedules"].items():
            if sched == "full":
                continue
            for q, _, _ in _QUANTITIES:
                pred, meas = number(s.get(f"predicted_{q}")), s.get(f"measured_{q}") or {}
                m = number(meas.get("mean"))
                if not (math.isfinite(pred) and pred > 0 and math.isfinite(m) and m > 0):
                    continue
                pts.append({"schedule": sched, "quantity": q, "predicted": pred, "measured": m,
                            "low": number(meas.get("low")), "high": number(meas.get("high")),
                            "applies": bool(s.get("applies"))})
        out.append({"name": r["name"], "label": r.get("label", r["name"]), "points": pts})
    return out


@styled
def plot_predicted_vs_measured(predictors, columns: int = 1) -> Figure:
    """Each predictor's predictions against the measurement, one panel per predictor (data:
    :func:`prediction_points`): per schedule, the predicted time speed-up over full Muon (circle)
    and iteration ratio against full (square) on the x axis, the measured one (geometric mean
    over paired seeds) on the y axis with its confidence interval as a vertical bar, log–log, with
    the line ``y = x`` where a perfect predictor would put every point. A filled marker: the
    predictor's theorem covers that run; hollow: it does not (it still predicts, labelled so).
    Every panel has the same limits, so the panels compare. ``columns=1``: two panels a row;
    ``columns=2``: three."""
    data = prediction_points(predictors)
    n = len(data)
    ncols = min(n, 2 if columns == 1 else 3)
    nrows = math.ceil(n / ncols)
    fig, axes = _grid(columns, nrows, ncols)
    vals = [v for d in data for q in d["points"] for v in (q["predicted"], q["measured"], q["low"], q["high"])
            if math.isfinite(v) and v > 0]
    lo, hi = (min(vals), max(vals)) if vals else (0.5, 2.0)
    lo, hi = lo / 1.25, hi * 1.25
    schedules = []
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_visible(False)
            continue
        d = data[k]
        ax.plot([lo, hi], [lo, hi], color="0.55", lw=0.8, ls="--", zorder=1, gid=f"diagonal:{d['name']}")
        for q in d["points"]:
            if q["schedule"] not in schedules:
                schedules.append(q["schedule"])
            c = color(q["schedule"], default=len(schedules))
            marker = _MARKER[q["quantity"]]
            if math.isfinite(q["low"]) and math.isfinite(q["high"]):
                ax.plot([q["predicted"]] * 2, [q["low"], q["high"]], color=c, lw=0.9, zorder=2,
                        gid=f"interval:{d['name']}:{q['schedule']}:{q['quantity']}")
            ax.plot([q["predicted"]], [q["measured"]], ls="none", marker=marker, ms=4.2, mew=0.9, color=c,
                    mfc=c if q["applies"] else "white", zorder=3,
                    gid=f"point:{d['name']}:{q['schedule']}:{q['quantity']}")
        # powers of two, written plainly: ratios read as 0.5, 1, 2
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(mathtext_primes(d["label"]), fontsize=7)
        ax.set_ylabel("measured")
        ax.set_xlabel("predicted")
    handles = [Line2D([], [], color=color(s, default=j + 1), lw=0, marker="o", ms=4, label=s)
               for j, s in enumerate(schedules)]
    handles += [Line2D([], [], color="0.3", lw=0, marker=m, ms=4, label=t) for _, m, t in _QUANTITIES]
    handles += [Line2D([], [], color="0.3", lw=0, marker="o", ms=4, mfc="white", label="theorem does not cover"),
                Line2D([], [], color="0.55", lw=0.8, ls="--", label="y = x")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3 if columns == 1 else 5, handlelength=1.2,
               columnspacing=0.9, labelspacing=0.25, fontsize=6.5)
    return fig


_MARKER = {q: m for q, m, _ in _QUANTITIES}


def _grid(columns, nrows, ncols):
    # about square panels (height per row = width per column), plus room for the legend under them
    fig, axes = new_figure(columns, nrows / ncols + (0.28 if columns == 1 else 0.14), nrows=nrows, ncols=ncols)
    axes = np.atleast_2d(np.asarray(axes, dtype=object)).reshape(nrows, ncols)
    return fig, axes


# -- figure 12: the regimes campaign ---------------------------------------------------------------

def campaign_points(rows) -> list[dict]:
    """The data of :func:`plot_campaign`: per regime (in order of appearance), per schedule other
    than full, the measured time speed-up over full Muon with its interval (``nan`` where there
    is none) and its decision. ``rows``: ``campaign.json``'s ``rows``
    (:func:`~dropmuon.verification.torchside.campaign.campaign_rows`).

    >>> pts = campaign_points([{"regime": "a", "schedule": "uniform", "speedup_time":
    ...                         {"mean": 0.8, "low": 0.7, "high": 0.9, "decided": "slower"}}])
    >>> pts[0]["regime"], pts[0]["points"][0]["mean"], pts[0]["points"][0]["decided"]
    ('a', 0.8, 'slower')
    """
    if not rows:
        raise ValueError("the campaign has no rows; run dropmuon campaign first")
    out: dict = {}
    for j, r in enumerate(rows):
        check_record(r, j, "rows", ("regime", "schedule", "speedup_time"))
        if r["schedule"] == "full":
            continue
        sp = r["speedup_time"] or {}
        out.setdefault(r["regime"], []).append({
            "schedule": r["schedule"], "mean": number(sp.get("mean")), "low": number(sp.get("low")),
            "high": number(sp.get("high")), "decided": sp.get("decided")})
    return [{"regime": k, "points": v} for k, v in out.items()]


@styled
def plot_campaign(rows, columns: int = 1) -> Figure:
    """Time speed-up over full Muon by regime × schedule (data: :func:`campaign_points`): one row
    of points per regime, one colour per schedule, the geometric mean over paired seeds with its
    95% interval as a horizontal bar, on a log axis with the line 1 (full Muon) dashed. A filled
    marker: the interval excludes 1 (significantly faster or slower); hollow: not significant."""
    data = campaign_points(rows)
    fig, ax = new_figure(columns, 0.18 + 0.16 * len(data) if columns == 1 else 0.09 + 0.08 * len(data))
    schedules = []
    for d in data:
        for q in d["points"]:
            if q["schedule"] not in schedules:
                schedules.append(q["schedule"])
    order = sorted(schedules, key=lambda s: SCHEDULE_ORDER.index(s) if s in SCHEDULE_ORDER else len(SCHEDULE_ORDER))
    width = 0.7 / max(1, len(order))
    vals = []
    for i, d in enumerate(data):
        y0 = len(data) - 1 - i
        for q in d["points"]:
            k = order.index(q["schedule"])
            y = y0 + 0.35 - width * (k + 0.5)
            c = color(q["schedule"], default=k + 1)
            if math.isfinite(q["low"]) and math.isfinite(q["high"]):
                ax.plot([q["low"], q["high"]], [y, y], color=c, lw=1.0, zorder=2,
                        gid=f"interval:{d['regime']}:{q['schedule']}")
                vals += [q["low"], q["high"]]
            if math.isfinite(q["mean"]):
                sig = q["decided"] in ("faster", "slower")
                ax.plot([q["mean"]], [y], ls="none", marker="o", ms=3.8, mew=0.9, color=c, mfc=c if sig else "white",
                        zorder=3, gid=f"point:{d['regime']}:{q['schedule']}")
                vals.append(q["mean"])
    vals = [v for v in vals if v > 0] or [0.5, 2.0]
    lo, hi = min(min(vals), 1.0) / 1.15, max(max(vals), 1.0) * 1.15
    ax.axvline(1.0, color="0.55", lw=0.8, ls="--", zorder=1, gid="full-muon")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(lo, hi)
    ax.set_yticks(range(len(data)))
    ax.set_yticklabels([d["regime"] for d in reversed(data)])
    ax.set_ylim(-0.5, len(data) - 0.5)
    ax.set_xlabel("time speed-up over full Muon")
    ax.set_ylabel("regime")
    handles = [Line2D([], [], color=color(s, default=order.index(s) + 1), lw=0, marker="o", ms=4, label=s)
               for s in order]
    handles += [Line2D([], [], color="0.3", lw=1.0, marker="o", ms=4, mfc="white", label="not significant; bar: 95% CI"),
                Line2D([], [], color="0.55", lw=0.8, ls="--", label="full Muon")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2 if columns == 1 else 6, handlelength=1.2,
               columnspacing=0.9, labelspacing=0.25, fontsize=6.5)
    return fig
