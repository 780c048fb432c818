"""Figures of the numerical verification: every bound check's observed left-hand side against its
bound (figure 5), and the inexact-LMO coupling of T4 — Newton–Schulz's δ and the best step size
versus δ (figure 6). Plain data in (JSON-loaded records), :class:`matplotlib.figure.Figure` out."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ._data import check_record, number
from .style import PALETTE, color, new_figure, styled

__all__ = [
    "PLOTTED_KINDS",
    "theorem_labels",
    "verification_points",
    "plot_verification",
    "inexact_lmo_curves",
    "plot_inexact_lmo",
    "ROUNDING_DELTA",
]

#: the check kinds that compare a left-hand side with a bound and so belong on the observed-vs-bound
#: plot; ``prediction`` and ``coupling`` checks report a ratio against 1 (an ordering or a
#: direction), not a bound pair, and are left out
PLOTTED_KINDS = ("bound", "tight")

def theorem_labels() -> dict:
    """Short labels of the registered theorems (``Theorem.label``, primes as mathtext: the font's
    U+2032 renders as an acute accent), in registry order: the order they are drawn in, and the
    index of each one's colour and marker.

    >>> theorem_labels()["smooth-constant-radius"]
    "T1$'$"
    """
    from dropmuon.theory import theorems

    return {name: t.label.replace("′", "$'$") for name, t in theorems.items()}


def __getattr__(name):
    if name == "THEOREM_LABELS":  # read from the registry when asked (users may register theorems)
        return theorem_labels()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# palette indices of the theorems (vermillion is kept for violations, black for y = x), and a marker
# shape per theorem, so that the theorems differ by more than colour (T1 and T4 are two blues)
_THEOREM_COLOURS = (4, 1, 3, 6, 2)
_THEOREM_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_VIOLATION = PALETTE[5]
_REFERENCE = "0.45"
_RECORD_KEYS = ("name", "theorem", "kind", "observed", "bound", "holds")


def _record(r, j: int) -> dict:
    if hasattr(r, "as_dict"):
        r = r.as_dict()
    return check_record(r, j, "records", _RECORD_KEYS, " (CheckResult.as_dict())")


def verification_points(records) -> dict:
    """The points of :func:`plot_verification`: the checks of a kind in :data:`PLOTTED_KINDS` with a
    positive, finite ``observed`` and ``bound`` (so that they can be drawn on log axes).

    ``records``: :class:`~dropmuon.verification.synthetic.checks.CheckResult` dicts (``r.as_dict()``, or JSON with
    ``null`` for non-finite numbers). Returns ``{"points": [{name, theorem, kind, observed, bound,
    holds, method, interval, confidence}, …] (in input order; ``interval = [ci_low, ci_high]`` of a
    Monte Carlo estimate of ``observed``, ``None`` for exact values), "theorems": [names in drawing order], "dropped": [names of
    bound/tight checks with a non-positive or non-finite value], "excluded": {kind: count} (other
    kinds)}``.

    >>> d = verification_points([dict(name="a", theorem="smooth-deterministic", kind="bound",
    ...                               observed=1.0, bound=2.0, holds=True),
    ...                          dict(name="b", theorem="smooth-deterministic", kind="coupling",
    ...                               observed=0.5, bound=1.0, holds=True)])
    >>> [p["name"] for p in d["points"]], d["excluded"], d["dropped"]
    (['a'], {'coupling': 1}, [])
    """
    if records is None or len(records) == 0:
        raise ValueError("records is empty; give the CheckResult dicts of a verification run")
    points, dropped, excluded = [], [], {}
    for j, raw in enumerate(records):
        r = _record(raw, j)
        if r["kind"] not in PLOTTED_KINDS:
            excluded[r["kind"]] = excluded.get(r["kind"], 0) + 1
            continue
        obs, bnd = number(r["observed"]), number(r["bound"])
        if not (math.isfinite(obs) and math.isfinite(bnd) and obs > 0 and bnd > 0):
            dropped.append(str(r["name"]))
            continue
        lo, hi = number(r.get("ci_low")), number(r.get("ci_high"))
        interval = [lo, hi] if math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi else None
        points.append({"name": str(r["name"]), "theorem": str(r["theorem"]), "kind": str(r["kind"]),
                       "observed": obs, "bound": bnd, "holds": bool(r["holds"]),
                       "status": str(r.get("status") or ("holds" if r["holds"] else "violated")),
                       "method": str(r.get("method") or ""), "interval": interval,
                       "confidence": number(r.get("confidence"))})
    if not points and not dropped:
        raise ValueError(f"no check of kind {' or '.join(PLOTTED_KINDS)} among the {len(records)} records "
                         f"(kinds: {sorted(excluded)}); nothing to plot")
    present = {p["theorem"] for p in points}
    labels = theorem_labels()
    theorems = [t for t in labels if t in present] + sorted(present - set(labels))
    return {"points": points, "theorems": theorems, "dropped": dropped, "excluded": excluded}


def _theorem_label(name: str) -> str:
    short = theorem_labels().get(name)
    return f"{short} {name}" if short else name


@styled
def plot_verification(records, columns: int = 1) -> Figure:
    """Observed left-hand side (x) against the bound (y) for every bound and tight check, log–log,
    with the line ``y = x``: a check holds when its point is on or above it.

    Only the kinds in :data:`PLOTTED_KINDS` (``bound``, ``tight``) are drawn; ``prediction`` and
    ``coupling`` checks compare a ratio with 1 rather than a left-hand side with a bound, and are
    counted in the annotation instead. Points with a non-positive or non-finite value cannot be
    drawn on log axes: the annotation reports how many were dropped. Colour and marker shape mark
    the theorem, stars the tight instances (observed/bound ≥ 0.99 by design), red rings checks that
    failed; a Monte Carlo estimate carries its confidence interval as a horizontal bar.
    The data are :func:`verification_points`. At one column the legend sits in the triangle under
    ``y = x`` (only a violation can be there) when it fits, else under the axes (the figure grows
    by its height); at page width beside the axes.
    """
    d = verification_points(records)
    pts = d["points"]
    # one column: square; page width: the same square axes, the legend beside them
    fig, ax = new_figure(columns, 0.95 if columns == 1 else 0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    handles = []
    # a theorem keeps its colour and marker whichever others are present: indexed by registry order
    registered = list(theorem_labels())
    order = {th: j for j, th in enumerate(registered + [t for t in d["theorems"] if t not in registered])}
    style = {th: (color(_THEOREM_COLOURS[order[th] % len(_THEOREM_COLOURS)]),
                  _THEOREM_MARKERS[order[th] % len(_THEOREM_MARKERS)]) for th in d["theorems"]}
    for th in d["theorems"]:
        c, mk = style[th]
        mine = [p for p in pts if p["theorem"] == th and p["kind"] != "tight"]
        exact = [p for p in mine if p["interval"] is None]
        estimated = [p for p in mine if p["interval"] is not None]
        if exact:
            ax.scatter([p["observed"] for p in exact], [p["bound"] for p in exact], s=16, marker=mk, color=c,
                       edgecolors="white", linewidths=0.3, alpha=0.9, zorder=3, gid=f"theorem:{th}")
        if estimated:  # Monte Carlo estimates: open markers (their interval bars are drawn below)
            ax.scatter([p["observed"] for p in estimated], [p["bound"] for p in estimated], s=16, marker=mk,
                       facecolors="white", edgecolors=c, linewidths=0.9, zorder=3, gid=f"theorem:{th}:mc")
        handles.append(Line2D([], [], ls="none", marker=mk, ms=4, color=c, mec="white", mew=0.3,
                              label=_theorem_label(th)))
    mc = [p for p in pts if p["interval"] is not None]
    if mc:
        # Monte Carlo estimates of the left-hand side: their confidence interval as a horizontal bar
        ax.hlines([p["bound"] for p in mc], [p["interval"][0] for p in mc], [p["interval"][1] for p in mc],
                  colors="0.2", linewidths=0.8, zorder=3.5, gid="interval")
        ax.plot([v for p in mc for v in p["interval"]], [p["bound"] for p in mc for _ in (0, 1)], ls="none",
                marker="|", ms=3.0, mew=0.8, color="0.2", zorder=3.5, gid="interval-caps")
        conf = {p["confidence"] for p in mc if math.isfinite(p["confidence"])}
        level = f"{100 * conf.pop():g}% " if len(conf) == 1 else ""
        # the widest interval, relative to its estimate: at the usual sample sizes the bars are
        # narrower than the markers, which the legend says rather than leaving them unseen
        width = max(max(p["observed"] - p["interval"][0], p["interval"][1] - p["observed"]) / p["observed"]
                    for p in mc)
        # (two lines at one column: the legend must fit under the diagonal, see below)
        handles.append(Line2D([], [], color="0.2", lw=0.8, marker="|", ms=3.0, mew=0.8,
                              label=f"open: Monte Carlo,{chr(10) if columns == 1 else ' '}{level}CI ≤ "
                                    f"±{100 * width:.2g}%"))
    tight = [p for p in pts if p["kind"] == "tight"]
    if tight:
        colours = [style[p["theorem"]][0] for p in tight]
        ax.scatter([p["observed"] for p in tight], [p["bound"] for p in tight], s=55, marker="*",
                   c=colours, edgecolors="black", linewidths=0.5, zorder=4, gid="tight")
        handles.append(Line2D([], [], ls="none", marker="*", ms=7, mfc="white", mec="black", mew=0.6,
                              label="tight instance"))
    failed = [p for p in pts if p["status"] == "violated"]
    if failed:
        ax.scatter([p["observed"] for p in failed], [p["bound"] for p in failed], s=70, marker="o",
                   facecolors="none", edgecolors=_VIOLATION, linewidths=1.2, zorder=5, gid="violated")
        handles.append(Line2D([], [], ls="none", marker="o", ms=7, mfc="none", mec=_VIOLATION, mew=1.2,
                              label=f"violated ({len(failed)})"))
    near = [p for p in pts if p["status"] == "within-tolerance"]
    if near:  # not shown to hold, any violation below 2%: a dashed ring in the violation colour
        ax.scatter([p["observed"] for p in near], [p["bound"] for p in near], s=70, marker="o",
                   facecolors="none", edgecolors=_VIOLATION, linewidths=1.0, linestyle="--", zorder=5,
                   gid="within-tolerance")
        handles.append(Line2D([], [], ls="none", marker="o", ms=7, mfc="none", mec=_VIOLATION, mew=1.0,
                              label=f"within tolerance ({len(near)})"))
    unsure = [p for p in pts if p["status"] == "inconclusive"]
    if unsure:
        ax.scatter([p["observed"] for p in unsure], [p["bound"] for p in unsure], s=70, marker="o",
                   facecolors="none", edgecolors="0.5", linewidths=1.2, linestyle=":", zorder=5, gid="inconclusive")
        handles.append(Line2D([], [], ls="none", marker="o", ms=7, mfc="none", mec="0.5", mew=1.2,
                              label=f"inconclusive ({len(unsure)})"))
    values = [v for p in pts for v in (p["observed"], p["bound"])]
    if values:
        lo, hi = min(values), max(values)
        pad = (hi / lo) ** 0.06 if hi > lo else 2.0
        lims = (lo / pad, hi * pad)
    else:
        lims = (0.1, 10.0)
    ax.plot(lims, lims, color=_REFERENCE, ls="--", lw=0.8, zorder=2)
    handles.append(Line2D([], [], color=_REFERENCE, ls="--", lw=0.8, label="$y = x$"))
    ax.set_xlim(lims)
    ax.set_ylim(lims)
    ax.set_xlabel("observed left-hand side")
    ax.set_ylabel("bound")
    ax.set_aspect("equal")
    if columns == 1:
        # in the empty triangle under y = x (a point there is a violation), if it fits: the line
        # must not run through the legend; else (many entries: violations, more theorems) below
        leg = ax.legend(handles=handles, loc="lower right", handletextpad=0.3, borderaxespad=0.2,
                        labelspacing=0.2, handlelength=1.3, fontsize=6.5)
        fig.draw_without_rendering()  # the layout and the legend's size
        (x0, _), (_, y1) = ax.transAxes.inverted().transform(leg.get_window_extent().get_points())
        if y1 > x0 - 0.01:  # its upper-left corner is above the diagonal y = x
            leg.remove()
            leg = ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2,
                            handletextpad=0.3, borderaxespad=0.0, labelspacing=0.2, columnspacing=1.0,
                            handlelength=1.3, fontsize=6)
            # the figure grows by the legend's height, so that the axes keep their size
            fig.set_figheight(fig.get_figheight() + leg.get_window_extent().height / fig.dpi + 0.2)
    else:
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), handletextpad=0.3,
                  borderaxespad=0.3, labelspacing=0.3)
    notes = [f"{len(pts)} checks plotted"]
    if d["dropped"]:
        notes.append(f"{len(d['dropped'])} dropped (value ≤ 0 or non-finite)")
    else:
        notes.append("0 dropped")
    if d["excluded"]:
        notes.append("not shown: " + ", ".join(f"{n} {k}" for k, n in sorted(d["excluded"].items())))
    ax.text(0.03, 0.97, "\n".join(notes), transform=ax.transAxes, ha="left", va="top", fontsize=6.5,
            linespacing=1.25, gid="counts")
    return fig


# -- figure 6: the inexact-LMO coupling ------------------------------------------------------------

_KAPPA_STYLES = ("-", "--", ":", "-.")

#: a worst-case δ at or below this is rounding error (Newton–Schulz converged to the polar factor)
ROUNDING_DELTA = 1e-12
_PRESET_COLOURS = {"muon": 4, "you": 1, "polar-express": 3}


def _rows(coupling: dict, key: str, fields) -> list[dict]:
    if key not in coupling:
        raise ValueError(f"coupling lacks the key {key!r} (a dropmuon.verification.synthetic.coupling.coupling_table dict)")
    rows = coupling[key]
    if not isinstance(rows, (list, tuple)) or not rows:
        raise ValueError(f"coupling[{key!r}] is empty; it needs rows with {', '.join(fields)}")
    for j, r in enumerate(rows):
        check_record(r, j, f"coupling[{key!r}]", fields)
    return list(rows)


def _series(rows, x: str, y: str) -> dict:
    pairs = sorted((number(r[x]), number(r[y])) for r in rows)
    return {x: [a for a, _ in pairs], y: [b for _, b in pairs]}


def inexact_lmo_curves(coupling: dict, *, prediction_points: int = 101) -> dict:
    """The data of :func:`plot_inexact_lmo` from a
    :func:`dropmuon.verification.synthetic.coupling.coupling_table` dict.

    Returns ``{"delta_lines": [{preset, kappa, steps, delta}, …] (one per preset × κ, steps
    increasing, δ ≤ 0 or non-finite dropped for the log axis), "dropped": that count, "theory":
    {delta, eta} (the bound's tuned step η*(δ), noiseless rows), "prediction": {delta, eta}
    (η*(0)/(1+δ) on ``prediction_points`` values of δ over the plotted range), "overshoot" and
    "shrink": {delta, best_eta} (empirical best step), "measured_reference": {delta, overshoot,
    shrink} (the measured best step at δ = 0 scaled as 1/(1+δ) and 1/(1−δ); ``None`` without a
    δ = 0 row)}``, each sorted by δ.
    """
    if not isinstance(coupling, dict):
        raise ValueError(f"coupling must be a dict (coupling_table output); got {type(coupling).__name__}")
    worst = _rows(coupling, "delta_worst", ("preset", "steps", "kappa", "delta"))
    lines, order, dropped = {}, [], 0
    for r in worst:
        key = (str(r["preset"]), number(r["kappa"]))
        if key not in lines:
            lines[key] = []
            order.append(key)
        dv = number(r["delta"])
        if not (math.isfinite(dv) and dv > 0):
            dropped += 1
            continue
        lines[key].append((int(r["steps"]), dv))
    delta_lines = []
    for preset, kappa in order:
        pts = sorted(lines[(preset, kappa)])
        delta_lines.append({"preset": preset, "kappa": kappa, "steps": [s for s, _ in pts],
                            "delta": [v for _, v in pts]})
    theory_rows = _rows(coupling, "theory", ("delta", "eta"))
    quiet = [r for r in theory_rows if r.get("setting", "noiseless") == "noiseless"]
    if not quiet:
        raise ValueError("coupling['theory'] has no noiseless rows (setting = 'noiseless')")
    theory = _series(quiet, "delta", "eta")
    if 0.0 not in theory["delta"]:
        raise ValueError(f"coupling['theory'] needs a row at delta = 0 for η*(0); got deltas {theory['delta']}")
    eta0 = theory["eta"][theory["delta"].index(0.0)]
    over = _series(_rows(coupling, "overshoot", ("delta", "best_eta")), "delta", "best_eta")
    shrink = _series(_rows(coupling, "shrink", ("delta", "best_eta")), "delta", "best_eta")
    dmax = max(theory["delta"] + over["delta"] + shrink["delta"])
    grid = np.linspace(0.0, dmax, int(prediction_points)) if dmax > 0 else np.zeros(1)
    ref = None
    if 0.0 in over["delta"] and 0.0 in shrink["delta"]:
        e_over = over["best_eta"][over["delta"].index(0.0)]
        e_shrink = shrink["best_eta"][shrink["delta"].index(0.0)]
        dref = np.linspace(0.0, max(over["delta"] + shrink["delta"]), int(prediction_points))
        if math.isfinite(e_over) and math.isfinite(e_shrink) and dref[-1] < 1:
            ref = {"delta": dref.tolist(), "overshoot": (e_over / (1.0 + dref)).tolist(),
                   "shrink": (e_shrink / (1.0 - dref)).tolist()}
    return {"delta_lines": delta_lines, "dropped": dropped, "theory": theory,
            "prediction": {"delta": grid.tolist(), "eta": (eta0 / (1.0 + grid)).tolist()},
            "overshoot": over, "shrink": shrink, "measured_reference": ref}


@styled
def plot_inexact_lmo(coupling: dict, columns: int = 2) -> Figure:
    """Two panels from a :func:`dropmuon.verification.synthetic.coupling.coupling_table` dict (data:
    :func:`inexact_lmo_curves`).

    (a): the worst-case ``δ`` of Newton–Schulz versus its number of steps, one colour per preset
    and one line style per condition number ``κ`` (log y; δ = 0 at rounding level is dropped).
    (b): the step size versus ``δ``: the bound's tuned ``η*(δ)`` (noiseless) with the prediction
    ``η*(0)/(1+δ)`` (dotted), and the empirically best ``η`` for the overshooting and the shrinking
    perturbation of the LMO. Side by side at ``columns=2``; ``columns=1`` stacks them ((a) on top).
    """
    d = inexact_lmo_curves(coupling)
    # side by side on the page width; stacked at one column, where side by side leaves no room
    grid = dict(nrows=1, ncols=2) if columns == 2 else dict(nrows=2, ncols=1)
    fig, (ax, bx) = new_figure(columns, 0.38 if columns == 2 else 1.35, **grid)
    kappas = sorted({ln["kappa"] for ln in d["delta_lines"]})
    presets = list(dict.fromkeys(ln["preset"] for ln in d["delta_lines"]))
    pcol = {p: color(_PRESET_COLOURS.get(p, 5 + j)) for j, p in enumerate(presets)}
    for ln in d["delta_lines"]:
        ax.plot(ln["steps"], ln["delta"], color=pcol[ln["preset"]], marker="o", ms=2.2, lw=1.0,
                ls=_KAPPA_STYLES[kappas.index(ln["kappa"]) % len(_KAPPA_STYLES)],
                gid=f"delta:{ln['preset']}:{ln['kappa']:g}")
    ax.set_yscale("log")
    # δ at rounding level (polar-express from 8 steps: ~1e-16) would stretch the axis over 16
    # decades and squash every other preset into its top fifth: the axis ends a decade below the
    # smallest δ above rounding level, and the rounding-level rows are marked on its floor
    rounding = [(s, v, ln) for ln in d["delta_lines"] for s, v in zip(ln["steps"], ln["delta"])
                if v <= ROUNDING_DELTA]
    above = [v for ln in d["delta_lines"] for v in ln["delta"] if v > ROUNDING_DELTA]
    if rounding and above:
        floor = 10.0 ** (math.floor(math.log10(min(above))) - 1)
        ax.set_ylim(floor, max(above) * 2.0)
        ax.plot([s for s, _, _ in rounding], [floor] * len(rounding), ls="none", marker="v", ms=3.5,
                mfc="white", mec="0.2", mew=0.7, clip_on=False, zorder=5, gid="rounding")
        lowest = min(v for _, v, _ in rounding)
        ax.text(0.98, 0.05, f"▽ on the floor:\nδ ≤ {ROUNDING_DELTA:.0e}, rounding\n(down to {lowest:.0e}):\n"
                + ",\n".join(sorted({ln["preset"] for _, _, ln in rounding})), transform=ax.transAxes,
                ha="right", va="bottom", fontsize=5.5, gid="rounding-note")
    ax.set_xlabel("Newton–Schulz steps")
    ax.set_ylabel(r"worst-case $\delta$")
    # panel letters, which the report's caption uses (left/right at page width, stacked at one column)
    ax.set_title(r"(a) worst-case $\delta$ of Newton–Schulz", fontsize="small")
    h1 = [Line2D([], [], color=pcol[p], lw=1.2, label=p) for p in presets]
    h2 = [Line2D([], [], color="black", lw=1.0, ls=_KAPPA_STYLES[j % len(_KAPPA_STYLES)],
                 label=rf"$\kappa = {k:g}$") for j, k in enumerate(kappas)]
    # in the empty middle left (few steps, small δ: no preset gets there)
    leg = ax.legend(handles=h1, loc="upper left", bbox_to_anchor=(0.0, 0.66), handlelength=1.6,
                    borderaxespad=0.3, labelspacing=0.25)
    ax.add_artist(leg)
    ax.legend(handles=h2, loc="upper left", bbox_to_anchor=(0.0, 0.40), handlelength=2.2, borderaxespad=0.3,
              labelspacing=0.25)
    if d["dropped"]:
        ax.text(0.98, 0.97, f"{d['dropped']} rows with δ = 0 not shown", transform=ax.transAxes, ha="right",
                va="top", fontsize=6)

    th, pr = d["theory"], d["prediction"]
    bx.plot(pr["delta"], pr["eta"], color=color(0), ls=":", lw=1.0, label=r"$\eta^*(0)/(1+\delta)$",
            gid="prediction")
    bx.plot(th["delta"], th["eta"], color=color(0), ls="none", marker="o", ms=3.5,
            label=r"bound's $\eta^*(\delta)$", gid="theory")
    ov, sh = d["overshoot"], d["shrink"]
    bx.plot(ov["delta"], ov["best_eta"], color=color(5), marker="v", ms=3.5, lw=1.0,
            label=r"best $\eta$, overshoot $(1+\delta)$", gid="overshoot")
    bx.plot(sh["delta"], sh["best_eta"], color=color(2), marker="^", ms=3.5, lw=1.0,
            label=r"best $\eta$, shrink $(1-\delta)$", gid="shrink")
    # the measured optimum's own δ = 0 value scaled as 1/(1+δ) and 1/(1−δ): the overshooting LMO
    # follows the bound's prediction, the shrinking one the opposite (the bound is worst-case)
    ref = d["measured_reference"]
    if ref is not None:
        bx.plot(ref["delta"], ref["overshoot"], color=color(5), ls=(0, (1, 1.5)), lw=0.8,
                gid="overshoot-reference")
        bx.plot(ref["delta"], ref["shrink"], color=color(2), ls=(0, (1, 1.5)), lw=0.8,
                label=r"best $\eta(0)/(1\pm\delta)$", gid="shrink-reference")
    bx.set_xlabel(r"$\delta$")
    bx.set_ylabel(r"step size $\eta$")
    bx.set_title(r"(b) best step size versus $\delta$", fontsize="small")
    bx.legend(loc="upper left", borderaxespad=0.3, labelspacing=0.25)
    bx.text(0.97, 0.36, "bound: tuned for the worst case\n"
            "overshoot (worst): best $\\eta \\propto 1/(1+\\delta)$,\nas predicted\n"
            "shrink (not worst): best\n$\\eta \\propto 1/(1-\\delta)$, larger steps",
            transform=bx.transAxes, ha="right", va="center", multialignment="left", fontsize=5.5,
            linespacing=1.3, gid="note",
            bbox={"facecolor": "white", "edgecolor": "0.8", "linewidth": 0.4, "pad": 2.0})
    return fig
