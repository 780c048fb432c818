"""Four theory figures: a bound against iterations per sampling distribution, the optimal
distribution per layer, the total-cost landscape over 3-layer start distributions, and where full
updates are optimal; each is a data function (JSON-able) and a plot function (data in, Figure out)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from dropmuon.solvers import FULL_OPTIMAL_RTOL, optimal_sampling
from dropmuon.theory import RPT, CostModel, get_theorem, start_from_inclusion

from .style import PALETTE, color, mathtext_primes, new_figure, styled

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

# legend text for the schedule names that have a fixed colour
_LABELS = {
    "full": r"full ($\pi \equiv 1$)",
    "uniform": r"uniform ($\pi_i = i/b$)",
    "optimal-max": "optimal (max-form)",
    "optimal-sum": "optimal (sum-form)",
    "optimal": "optimal",
}
_OBJECTIVE_NAMES = {"max": "max-form (T1)", "sum": r"sum-form (T1$'$)", "l0l1": "(L0,L1) (T2)"}
# several curves can coincide (the max-form optimum needs exactly as many iterations as full
# updates): distinct dash patterns keep every one of them visible
_LINESTYLES = ("-", (0, (5, 2)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (8, 2, 2, 2)))
_MARKERS = ("o", "s", "^", "D", "v")
# contour levels of relative total cost, and the candidates for the top of its colour scale
_ROUND_LEVELS = (1.05, 1.1, 1.25, 1.5, 2, 3, 5, 10, 20, 50, 100)
# keyword arguments of optimal_sampling that only concern its search, not the evaluation of a
# given distribution (family "fixed" refuses them)
_SEARCH_ONLY = ("method", "seed", "starts", "certify")


# -- helpers -----------------------------------------------------------------------------------
def _floats(x) -> list:
    """A flat list of floats, ``None`` for non-finite entries (JSON has no NaN)."""
    flat = np.asarray(x, dtype=float).ravel().tolist()
    return [float(v) if math.isfinite(v) else None for v in flat]


def _jsonable(v):
    if isinstance(v, CostModel):
        return {"forward": v.forward, "activation": _floats(v.activation),
                "weight": _floats(v.weight), "update": _floats(v.update)}
    if isinstance(v, (np.ndarray, list, tuple)):
        return _floats(v)
    if isinstance(v, (np.floating, np.integer)):
        return float(v)
    return v


def _nlayers(costs) -> int:
    if isinstance(costs, CostModel):
        return costs.nlayers
    return int(np.size(np.asarray(costs, dtype=float)))


def _optimum_name(objective: str) -> str:
    return f"optimal-{objective}" if objective in ("max", "sum") else "optimal"


def _ternary_xy(p):
    """2-D coordinates of start distributions ``p = (p1, p2, p3)``: ``x = p3 − p2``, ``y = p1``
    (an affine image of the simplex: full updates at the top, ``(0, 1)``)."""
    p = np.asarray(p, dtype=float).reshape(-1, 3)
    return p[:, 2] - p[:, 1], p[:, 0]


def _contour_label(v: float) -> str:
    """The label of a relative-cost contour: ``×1.25``, never a bare number a contour line could
    turn into a minus sign."""
    return f"\u00d7{v:g}"


# -- figure 1: bound versus iterations ---------------------------------------------------------
def bound_curves(theorem: str, K, distributions, *, statement: str | None = None, costs=None,
                 forward_cost: float | None = None, **constants) -> dict:
    r"""A theorem's bound (the right-hand side of one statement) at the iteration counts ``K``,
    one curve per sampling distribution.

    ``distributions`` maps a name (``"full"``, ``"uniform"``, ``"optimal-max"``, … have fixed
    colours) to inclusion probabilities ``π`` or to a distribution object with ``.inclusion``
    (:class:`theory.RPT`, :class:`theory.Independent`, …). ``constants`` are the theorem's other
    constants (``L=``, ``Delta0=``, ``sigma=``, a fixed ``eta=`` …); step parameters not given
    follow the theorem's rule at each ``K`` (T1′: ``η*(K) = sqrt(2Δ0/(K Σ_i L_i/π_i))``, so its
    curve is ``sqrt(2Δ0 Σ_i (L_i/π_i)/K)``).

    The statement defaults to the one that compares distributions fairly: the rate statement, or
    ``"unweighted"`` where the rate weights layer ``i`` by ``π_i`` (T2). With ``costs`` (one per
    layer, plus ``forward_cost``; or a :class:`theory.CostModel`) each curve also carries its
    expected cost per iteration, so the bound can be drawn against total cost ``K · E cost``; a
    plain ``π`` is then read as the RPT distribution with those inclusion probabilities.

    Returns ``{"theorem", "label", "statement", "lhs", "kind", "K", "constants", "curves"}`` with
    ``curves = [{"name", "label", "pi", "bound", "cost_per_iteration"}, …]``.

    >>> d = bound_curves("smooth-deterministic", [1, 10], {"full": [1, 1], "uniform": [0.5, 1]},
    ...                  L=[1, 2], Delta0=1)
    >>> [c["bound"] for c in d["curves"]]
    [[4.0, 0.4], [4.0, 0.4]]
    """
    th = get_theorem(theorem)
    if "pi" in constants:
        raise ValueError("give the inclusion probabilities through distributions=, not pi="
                         f"{constants['pi']!r}")
    if not isinstance(distributions, Mapping) or not distributions:
        raise ValueError("distributions must be a non-empty mapping name -> pi; got "
                         f"distributions = {distributions!r}")
    if statement is None:
        statement = "unweighted" if "unweighted" in th.statements else th.rate
    st = th.statement(statement)
    Ks = np.asarray(K, dtype=float)
    model = None
    if isinstance(costs, CostModel):
        if forward_cost is not None:
            raise ValueError(f"forward_cost = {forward_cost!r} is part of the CostModel already; "
                             "do not pass both")
        model = costs
    elif costs is not None:
        model = CostModel.linear(costs, forward=0.0 if forward_cost is None else forward_cost)
    curves = []
    for name, dist in distributions.items():
        pi = np.asarray(getattr(dist, "inclusion", dist), dtype=float)
        values = th.evaluate_many(Ks, statement=st.name, pi=pi, **constants)
        entry = {"name": str(name), "label": _LABELS.get(str(name), str(name)), "pi": _floats(pi),
                 "bound": _floats(values), "cost_per_iteration": None}
        if model is not None:
            d = dist if hasattr(dist, "inclusion") else RPT(start_from_inclusion(pi))
            entry["cost_per_iteration"] = model.expected_cost(d)
        curves.append(entry)
    return {
        "theorem": th.name,
        "label": th.label,
        "statement": st.name,
        "lhs": st.lhs,
        "kind": st.kind,
        "K": _floats(Ks),
        "constants": {k: _jsonable(v) for k, v in constants.items()},
        "curves": curves,
    }


@styled
def plot_bound_vs_iterations(data: dict, columns: int = 1, *, x: str = "iterations"):
    r"""Log-log plot of :func:`bound_curves` data: the bound against iterations ``K``
    (``x="iterations"``) or against total cost ``K · E cost`` (``x="cost"``, needs ``costs=`` in
    :func:`bound_curves`), one line per distribution.

    >>> d = bound_curves("smooth-deterministic", [1, 10], {"full": [1, 1]}, L=[1, 2], Delta0=1)
    >>> plot_bound_vs_iterations(d).axes[0].get_lines()[0].get_ydata().tolist()
    [4.0, 0.4]
    """
    if x not in ("iterations", "cost"):
        raise ValueError(f"x must be 'iterations' or 'cost'; got x = {x!r}")
    fig, ax = new_figure(columns, 0.75 if columns == 1 else 0.42)
    K = np.asarray(data["K"], dtype=float)
    xy = []
    for c in data["curves"]:
        if x == "cost":
            if c.get("cost_per_iteration") is None:
                raise ValueError(f"curve {c['name']!r} has no cost per iteration; "
                                 "pass costs= to bound_curves")
            xs = K * c["cost_per_iteration"]
        else:
            xs = K
        xy.append((np.asarray(xs, dtype=float), np.asarray(c["bound"], dtype=float)))
    same = coinciding_curves(xy)
    n = len(K)
    every = max(1, n // 7)
    lines, labels = [], []
    for k, (c, (xs, ys)) in enumerate(zip(data["curves"], xy)):
        # open markers of a distinct shape per curve, staggered along the curve, so that a curve
        # lying exactly on another still shows (its markers sit between the other's)
        start = (k * max(1, every // max(1, len(xy)))) % every
        (ln,) = ax.loglog(xs, ys, color=color(c["name"], default=k),
                          linestyle=_LINESTYLES[k % len(_LINESTYLES)], label=c["label"],
                          marker=_MARKERS[k % len(_MARKERS)], markevery=(start, every),
                          markersize=3.8, markerfacecolor="white", markeredgewidth=0.9,
                          zorder=3 + k)  # later (dashed) lines over earlier (solid) ones
        lines.append(ln)
        label = c["label"]
        if same[k] is not None:
            label += f" — same curve as {data['curves'][same[k]]['name']}"
        labels.append(label)
    ax.set_xlabel(r"iterations $K$" if x == "iterations"
                  else r"total cost $K \cdot \mathbb{E}\,\mathrm{cost}$")
    ax.set_ylabel("bound (right-hand side)")
    ax.set_title(f"{mathtext_primes(data['label'])}: bound on ${data['lhs']}$", fontsize="small")
    ax.legend(lines, labels, loc="lower left")
    return fig


def coinciding_curves(xy, rtol: float = 0.02) -> list:
    """For each curve ``(x, y)`` (log–log), the index of an earlier curve it lies on (within
    ``rtol`` in ``y`` over their common ``x`` range, which must cover most of the shorter one), or
    ``None``. Such pairs are drawn with staggered markers and named in the legend.

    >>> coinciding_curves([([1, 10], [1, 0.1]), ([1, 10], [1, 0.1]), ([1, 10], [2, 0.2])])
    [None, 0, None]
    """
    out = []
    for j, (xj, yj) in enumerate(xy):
        xj, yj = np.log(np.asarray(xj, float)), np.log(np.asarray(yj, float))
        hit = None
        for i in range(j):
            xi, yi = np.log(np.asarray(xy[i][0], float)), np.log(np.asarray(xy[i][1], float))
            lo, hi = max(xi.min(), xj.min()), min(xi.max(), xj.max())
            span = min(xi.max() - xi.min(), xj.max() - xj.min())
            if not hi >= lo or (span > 0 and hi - lo < 0.5 * span):
                continue
            order = np.argsort(xi)
            mask = (xj >= lo) & (xj <= hi)
            if not mask.any():
                continue
            if np.all(np.abs(np.interp(xj[mask], xi[order], yi[order]) - yj[mask]) <= np.log1p(rtol)):
                hit = i
                break
        out.append(hit)
    return out


# -- figure 2: the optimal distribution, layer by layer ----------------------------------------
def distribution_data(L, costs, *, objective: str = "max", family: str = "rpt", **kw) -> dict:
    r"""The optimal sampling distribution (:func:`solvers.optimal_sampling`) with full updates
    and uniform index sampling for reference: per layer, the start probabilities ``p_s`` and the
    inclusion probabilities ``π_i``.

    For ``family="rpt"`` the first quantity is the start distribution ``p_s``; for the other
    families it is its generalisation, the distribution of the lowest updated layer
    ``P(min S = s)`` (``"subsets"``: ``lowest_probs``; ``"independent"``:
    ``π_s Π_{k<s}(1 − π_k)``, which sums to less than 1 when the empty set is possible).
    ``kw`` goes to the solver (``forward_cost=``, ``method=``, ``Delta0=``, ``epsilon=``, …).

    Returns ``{"objective", "family", "method", "status", "L", "costs", "layers", "first",
    "series", "speedup_vs_full", "speedup_vs_uniform", "total_cost", …}`` with
    ``series = [{"name", "label", "first", "inclusion"}, …]`` (optimum, full, uniform).

    >>> d = distribution_data([1, 5, 3, 2], [1, 1, 1, 1])
    >>> d["series"][0]["first"], round(d["speedup_vs_full"], 4)
    ([0.2, 0.8, 0.0, 0.0], 1.25)
    """
    if family not in ("rpt", "independent", "subsets"):
        raise ValueError(f"distribution_data plots an optimum of family 'rpt', 'independent' or "
                         f"'subsets'; got family = {family!r}")
    r = optimal_sampling(L, costs, family=family, objective=objective, **kw)
    b = len(r.inclusion)
    if family == "rpt":
        first = r.start_probs
    elif family == "subsets":
        first = r.lowest_probs
    else:
        pi = r.inclusion
        first = pi * np.concatenate([[1.0], np.cumprod(1.0 - pi)[:-1]])
    name = _optimum_name(objective)
    label = (f"{_LABELS[name]}: {r.speedup_vs_full:.3g}" + r"$\times$ faster than full, "
             f"{r.speedup_vs_uniform:.3g}" + r"$\times$ than uniform")
    series = [{"name": name, "label": label,
               "first": _floats(first), "inclusion": _floats(r.inclusion)}]
    for ref in ("full", "uniform"):
        d = getattr(RPT, ref)(b)
        series.append({"name": ref, "label": _LABELS[ref], "first": _floats(d.start_probs),
                       "inclusion": _floats(d.inclusion)})
    return {
        "objective": r.objective,
        "family": family,
        "method": r.method,
        "status": r.status,
        "L": None if L is None else _floats(L),
        "costs": _jsonable(costs),
        "options": {k: _jsonable(v) for k, v in kw.items()},
        "layers": list(range(1, b + 1)),
        "first": "start" if family == "rpt" else "lowest",
        "series": series,
        "total_cost": r.total_cost,
        "full_total_cost": r.full_total_cost,
        "uniform_total_cost": r.uniform_total_cost,
        "speedup_vs_full": r.speedup_vs_full,
        "speedup_vs_uniform": r.speedup_vs_uniform,
        "iterations_unit": r.iterations_unit,
    }


@styled
def plot_optimal_distribution(data: dict, columns: int = 2):
    r"""Two panels of grouped bars from :func:`distribution_data`: start probabilities ``p_s``
    (or ``P(min S = s)``) and inclusion probabilities ``π_i`` per layer, for the optimum, full
    updates and uniform index sampling; the optimum's speed-up over full is in its legend entry.

    >>> fig = plot_optimal_distribution(distribution_data([1, 5, 3, 2], [1, 1, 1, 1]))
    >>> [round(float(p.get_height()), 12) for p in fig.axes[0].containers[0]]
    [0.2, 0.8, 0.0, 0.0]
    """
    fig, axes = new_figure(columns, 0.36 if columns == 2 else 0.75, ncols=2)
    layers = np.asarray(data["layers"])
    n = len(data["series"])
    width = 0.8 / n
    for ax, key in zip(axes, ("first", "inclusion")):
        for k, s in enumerate(data["series"]):
            ax.bar(layers + (k - (n - 1) / 2) * width, s[key], width,
                   color=color(s["name"], default=k), label=s["label"], edgecolor="white",
                   linewidth=0.3)
        ax.set_xticks(layers)
        ax.set_ylim(0, 1.08)
        ax.grid(axis="x", visible=False)
    if data["first"] == "start":
        axes[0].set_xlabel(r"start layer $s$")
        axes[0].set_ylabel(r"start probability $p_s$")
    else:
        axes[0].set_xlabel(r"lowest updated layer $s$")
        axes[0].set_ylabel(r"$P(\min S = s)$")
    axes[1].set_xlabel(r"layer $i$")
    axes[1].set_ylabel(r"inclusion probability $\pi_i$")
    # one row at page width; one entry a row at one column, where a row would overflow the column
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=n if columns == 2 else 1,
               fontsize=None if columns == 2 else 6.0)
    return fig


# -- figure 3: total cost over the simplex of 3-layer start distributions -----------------------
def cost_landscape(L, costs, *, objective: str = "max", resolution: int = 60, **kw) -> dict:
    r"""Total cost ``TC(p) = K(π(p)) · E_p cost`` of RPT start distributions ``p = (p1, p2, p3)``
    on a lattice of the simplex (``p = (i, j, k)/resolution``), relative to the optimum.

    Each value is :func:`solvers.optimal_sampling` with ``family="fixed"`` (the same evaluation
    the solvers use); the optimum is ``optimal_sampling(family="rpt")``. Points with ``p1 = 0``
    have ``π_1 = 0``, where no theorem bounds anything (infinite cost): they are left out, so the
    lattice starts at ``p1 = 1/resolution``. ``kw`` goes to the solver (``forward_cost=``,
    ``Delta0=``, ``epsilon=``, ``method=`` for the optimum, …).

    Returns ``{"p", "total_cost", "relative", "triangles", "optimum", "full", "uniform", …}``:
    ``triangles`` index ``p`` (a triangulation of the lattice), ``relative = total_cost / TC*``;
    ``optimum``, ``full`` and ``uniform`` are ``{"p", "total_cost"}``.

    >>> d = cost_landscape([1, 4, 2], [1, 1, 1], resolution=4)
    >>> d["optimum"]["p"], min(d["relative"])
    ([0.25, 0.75, 0.0], 1.0)
    """
    b = len(np.ravel(L)) if L is not None else _nlayers(costs)
    if b != 3:
        raise ValueError(f"cost_landscape needs b = 3 layers; got b = {b}")
    if (isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer))
            or resolution < 2):
        raise ValueError(f"resolution must be an integer >= 2; got resolution = {resolution!r}")
    n = int(resolution)
    opt = optimal_sampling(L, costs, family="rpt", objective=objective, **kw)
    fixed_kw = {k: v for k, v in kw.items() if k not in _SEARCH_ONLY}
    index, points, tc = {}, [], []
    for i in range(1, n + 1):
        for j in range(n - i + 1):
            p = (i / n, j / n, (n - i - j) / n)
            index[i, j] = len(points)
            points.append(p)
            tc.append(optimal_sampling(L, costs, family="fixed", objective=objective,
                                       distribution=RPT(p), **fixed_kw).total_cost)
    triangles = []
    for (i, j), a in index.items():
        if (i + 1, j) in index and (i, j + 1) in index:
            triangles.append([a, index[i + 1, j], index[i, j + 1]])
        if (i + 1, j) in index and (i + 1, j - 1) in index:
            triangles.append([a, index[i + 1, j - 1], index[i + 1, j]])
    tc = np.asarray(tc)
    return {
        "objective": opt.objective,
        "L": None if L is None else _floats(L),
        "costs": _jsonable(costs),
        "options": {k: _jsonable(v) for k, v in kw.items()},
        "resolution": n,
        "p": [list(p) for p in points],
        "total_cost": _floats(tc),
        "relative": _floats(tc / opt.total_cost),
        "triangles": triangles,
        "optimum": {"p": _floats(opt.start_probs), "total_cost": opt.total_cost,
                    "speedup_vs_full": opt.speedup_vs_full, "method": opt.method},
        "full": {"p": [1.0, 0.0, 0.0], "total_cost": opt.full_total_cost},
        "uniform": {"p": [1 / 3, 1 / 3, 1 / 3], "total_cost": opt.uniform_total_cost},
        "iterations_unit": opt.iterations_unit,
    }


@styled
def plot_cost_landscape(data: dict, columns: int = 1):
    r"""Ternary heat map of :func:`cost_landscape` data: ``TC(p)/TC*`` on a log colour scale over
    the simplex (drawn as ``x = p3 − p2``, ``y = p1``: full updates at the top corner), with the
    optimum, full updates and uniform index sampling marked.

    >>> fig = plot_cost_landscape(cost_landscape([1, 4, 2], [1, 1, 1], resolution=4))
    >>> fig.axes[0].get_ylabel()
    'start probability $p_1$'
    """
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    fig, ax = new_figure(columns, 0.82 if columns == 1 else 0.6)
    x, y = _ternary_xy(data["p"])
    tri = np.asarray(data["triangles"])
    rel = np.asarray(data["relative"], dtype=float)
    top = float(np.max(rel))
    # TC blows up as p1 -> 0 (pi_1 -> 0): a colour scale up to the maximum would spend most of its
    # range on a thin strip along the bottom edge, so it ends at the 90th percentile (rounded up
    # to a round number) and saturates beyond
    vmax = next((v for v in _ROUND_LEVELS if v >= np.quantile(rel, 0.9)), max(top, 1.5))
    mesh = ax.tripcolor(x, y, tri, rel, shading="gouraud", cmap="viridis",
                        norm=LogNorm(vmin=1.0, vmax=vmax), rasterized=True)
    levels = [v for v in _ROUND_LEVELS if v < min(top, vmax)]
    if levels:
        cs = ax.tricontour(x, y, tri, rel, levels=levels, colors="white", linewidths=0.35,
                           alpha=0.8)
        # "×1.25" (times the optimum), with room around it: a bare "1.25" with the contour line
        # running into it read as a negative number ("–1.25")
        ax.clabel(cs, fmt=_contour_label, fontsize=5, inline_spacing=5)
    cbar = fig.colorbar(mesh, ax=ax, label=r"$\mathrm{TC}(p)\,/\,\mathrm{TC}(p^\star)$",
                        shrink=0.85, extend="max" if top > vmax else "neither")
    cbar.set_ticks([1.0] + [v for v in _ROUND_LEVELS if 1.2 < v <= vmax], labels=None)
    cbar.ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    cbar.ax.yaxis.set_minor_formatter(NullFormatter())
    ax.plot([-1, 0, 1, -1], [0, 1, 0, 0], color="0.3", linewidth=0.6)
    marks = [("optimum", _optimum_name(data["objective"]), "*", 9, r"optimum $p^\star$"),
             ("full", "full", "s", 5, "full"),
             ("uniform", "uniform", "o", 5, "uniform")]
    for key, cname, marker, size, label in marks:
        mx, my = _ternary_xy(data[key]["p"])
        ax.plot(mx, my, linestyle="none", marker=marker, markersize=size, color=color(cname),
                markeredgecolor="white", markeredgewidth=0.6, label=label, clip_on=False, zorder=5)
    ax.text(-1, -0.04, r"$p_2 = 1$", ha="center", va="top", fontsize="x-small")
    ax.text(1, -0.04, r"$p_3 = 1$", ha="center", va="top", fontsize="x-small")
    ax.set_aspect(math.sqrt(3) / 2 * 2)  # equilateral: base 2 in x, height 1 in y
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-0.12, 1.05)
    ax.set_xticks([-1, 0, 1])
    ax.set_yticks([0, 0.5, 1])
    ax.grid(False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(r"$p_3 - p_2$")
    ax.set_ylabel(r"start probability $p_1$")
    ax.legend(loc="upper left", fontsize="x-small", handletextpad=0.3, borderaxespad=0.1)
    ax.set_title(f"{_OBJECTIVE_NAMES[data['objective']]}: optimum "
                 rf"{data['optimum']['speedup_vs_full']:.3g}$\times$ faster than full",
                 fontsize="small")
    return fig


# -- figure 4: where full-network updates are optimal ------------------------------------------
# cheap RPT start distributions that beat full updates wherever full is clearly not optimal (on
# the 61 x 61 default grid with equal costs they decide 2660 of the 2756 points where full is not
# optimal; only points near the region's boundary, and the region itself, need the solver)
_CANDIDATES = ((0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.9, 0.1, 0.0), (0.9, 0.0, 0.1),
               (1 / 3, 1 / 3, 1 / 3))


def _beats_full(L, costs, objective, family, fixed_kw) -> bool:
    """Whether some simple RPT distribution costs less than full updates by more than the
    solvers' tie tolerance: then the optimum does too, and full updates are not optimal. Every
    RPT distribution belongs to the ``rpt`` and ``subsets`` families, so this is a certificate for
    both; it only spares solving where the answer is already decided."""
    for p in _CANDIDATES:
        r = optimal_sampling(L, costs, family="fixed", objective=objective, distribution=RPT(p),
                             **fixed_kw)
        if r.total_cost * (1 + FULL_OPTIMAL_RTOL) < r.full_total_cost:
            return True
    return False


def full_optimal_region(costs3, *, ratios=None, objectives=("max", "sum"), family: str = "rpt",
                        **kw) -> dict:
    r"""Where full-network updates are optimal, for ``b = 3`` layers with ``L = (1, r2, r3)``,
    over the grid ``r2, r3 ∈ ratios`` (default ``np.geomspace(0.1, 10, 61)``), one mask per
    objective (``"max"``, ``"sum"``).

    A point is full-optimal when :func:`solvers.optimal_sampling` says so (``full_is_optimal``:
    full updates cost at most ``1 + FULL_OPTIMAL_RTOL`` times the optimum). For the sum-form with
    the ``rpt`` or ``subsets`` family, where the solver is an interior-point method (~15 ms a
    point), points where a simple RPT distribution already beats full are decided without it
    (a certificate: the optimum is at least as cheap); the 61 × 61 default then takes about 10 s
    instead of about 50 s. docs/sampling.md: max-form RPT is full-optimal iff ``L_1 = max_j L_j``.

    Returns ``{"costs", "family", "ratios", "panels"}`` with ``panels = [{"objective",
    "full_optimal"}, …]``, ``full_optimal[j][i]`` for ``r3 = ratios[j]``, ``r2 = ratios[i]``.

    >>> d = full_optimal_region([1, 1, 1], ratios=[0.5, 2.0], objectives=("max",))
    >>> d["panels"][0]["full_optimal"]
    [[True, False], [False, False]]
    """
    b = _nlayers(costs3)
    if b != 3:
        raise ValueError(f"full_optimal_region needs b = 3 layers; got b = {b}")
    if family not in ("rpt", "independent", "subsets"):
        raise ValueError("family must be 'rpt', 'independent' or 'subsets'; "
                         f"got family = {family!r}")
    r = np.geomspace(0.1, 10, 61) if ratios is None else np.asarray(ratios, dtype=float)
    if r.ndim != 1 or r.size == 0 or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ValueError("ratios must be a non-empty list of positive numbers; "
                         f"got ratios = {ratios!r}")
    objectives = tuple(objectives)
    for obj in objectives:
        if obj not in ("max", "sum"):
            raise ValueError(f"objectives must be 'max' or 'sum' (they use L); got {obj!r}")
    if not objectives:
        raise ValueError("objectives is empty; give 'max' and/or 'sum'")
    fixed_kw = {k: v for k, v in kw.items() if k not in _SEARCH_ONLY}
    panels = []
    for obj in objectives:
        screen = obj == "sum" and family in ("rpt", "subsets")
        mask = []
        for r3 in r:
            row = []
            for r2 in r:
                L = (1.0, float(r2), float(r3))
                if screen and _beats_full(L, costs3, obj, family, fixed_kw):
                    row.append(False)
                else:
                    res = optimal_sampling(L, costs3, family=family, objective=obj, **kw)
                    row.append(bool(res.full_is_optimal))
            mask.append(row)
        panels.append({"objective": obj, "full_optimal": mask})
    return {
        "costs": _jsonable(costs3),
        "family": family,
        "options": {k: _jsonable(v) for k, v in kw.items()},
        "ratios": _floats(r),
        "panels": panels,
    }


# the closed-form conditions of docs/sampling.md (and solvers.full_network_optimal) under which full
# updates are optimal, written on the panels they hold for (C_s: cost of an RPT step from layer s)
_FULL_OPTIMAL_CONDITION = {
    ("rpt", "max"): r"full optimal iff $L_1 = \max_j L_j$",
    ("rpt", "sum"): (r"full optimal iff $\Sigma_{i \geq s} L_i \,/\, \Sigma_i L_i \leq C_s / C_1$"
                     r" for all $s$"),
    ("independent", "max"): r"full optimal iff all $L_i$ are equal",
    ("subsets", "max"): r"full optimal iff all $L_i$ are equal",
    ("independent", "sum"): r"full optimal iff $L_i / c_i \geq \Sigma L \,/\, (F + \Sigma c)$ for all $i$",
}


def _cost_model(costs, forward_cost=None) -> CostModel:
    if isinstance(costs, CostModel):
        return costs
    return CostModel.linear(costs, forward=0.0 if forward_cost is None else forward_cost)


def full_optimal_halfplanes(costs3, objective: str, family: str = "rpt", *, forward_cost=None):
    r"""The closed-form region where full updates are optimal for ``L = (1, r2, r3)``, as
    half-planes ``[(a2, a3, c), …]`` meaning ``a2·r2 + a3·r3 ≤ c`` (the region is their
    intersection, a convex polygon in the linear ``(r2, r3)`` plane), or ``None`` where no closed
    form is known. The conditions are those :func:`solvers.full_network_optimal` states:

    - max-form RPT: ``L_1 = max_j L_j``, i.e. ``r2 ≤ 1`` and ``r3 ≤ 1``;
    - max-form independent/subsets: all ``L_i`` equal (the single point ``(1, 1)``);
    - sum-form RPT: ``Σ_{i≥s} L_i ≤ (C_s/C_1) Σ_i L_i`` for ``s = 2, 3`` (``C_s``: cost of a step
      from layer ``s``), i.e. ``Σ_i (1[i≥s] − C_s/C_1) L_i ≤ 0``;
    - sum-form independent, linear costs without activation terms:
      ``c_i Σ L − L_i (F + Σ c) ≤ 0`` for every ``i``.

    >>> full_optimal_halfplanes([1, 1, 1], "max")
    [(1.0, 0.0, 1.0), (0.0, 1.0, 1.0)]
    """
    model = _cost_model(costs3, forward_cost)
    if objective == "max" and family == "rpt":
        return [(1.0, 0.0, 1.0), (0.0, 1.0, 1.0)]
    if objective == "max" and family in ("independent", "subsets"):
        return [(1.0, 0.0, 1.0), (-1.0, 0.0, -1.0), (0.0, 1.0, 1.0), (0.0, -1.0, -1.0)]
    if objective == "sum" and family == "rpt":
        C = np.asarray(model.rpt_costs(), dtype=float)
        out = []
        for s in (2, 3):  # s = 1 is always an equality (share 1, cost ratio 1)
            g = C[s - 1] / C[0]
            w = np.array([1.0 if i >= s else 0.0 for i in (1, 2, 3)]) - g
            # w1·1 + w2·r2 + w3·r3 ≤ 0
            out.append((float(w[1]), float(w[2]), float(-w[0])))
        return out
    if objective == "sum" and family == "independent" and not np.any(np.asarray(model.activation) > 0):
        c = np.asarray(model.per_layer, dtype=float)
        T = float(model.forward + c.sum())
        # c_i (1 + r2 + r3) − L_i T ≤ 0 with L = (1, r2, r3)
        out = []
        for i in range(3):
            e = np.zeros(3)
            e[i] = 1.0
            w = c[i] * np.ones(3) - T * e
            out.append((float(w[1]), float(w[2]), float(-w[0])))
        return out
    return None


def _clip_polygon(poly, a2, a3, c):
    """Sutherland–Hodgman: the part of the convex polygon ``poly`` with ``a2·x + a3·y ≤ c``."""
    out = []
    n = len(poly)
    scale = abs(a2) + abs(a3) + abs(c) or 1.0
    for k in range(n):
        p, q = poly[k], poly[(k + 1) % n]
        fp = (a2 * p[0] + a3 * p[1] - c) / scale
        fq = (a2 * q[0] + a3 * q[1] - c) / scale
        if fp <= 0:
            out.append(p)
        if (fp < 0 < fq) or (fq < 0 < fp):
            t = fp / (fp - fq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def full_optimal_polygon(halfplanes, lo: float, hi: float) -> list:
    """The vertices (linear ``(r2, r3)`` coordinates, counter-clockwise) of the intersection of
    ``halfplanes`` (:func:`full_optimal_halfplanes`) with the box ``[lo, hi]²``; ``[]`` when empty.
    A region that is a single point (all ``L_i`` equal) comes back as that point (repeated)."""
    poly = [(lo, lo), (hi, lo), (hi, hi), (lo, hi)]
    for a2, a3, c in halfplanes:
        poly = _clip_polygon(poly, a2, a3, c)
        if not poly:
            return []
    return [(float(x), float(y)) for x, y in poly]


def _inside(halfplanes, r2, r3, rtol=1e-9):
    r2, r3 = np.asarray(r2, dtype=float), np.asarray(r3, dtype=float)
    ok = np.ones(np.broadcast(r2, r3).shape, dtype=bool)
    for a2, a3, c in halfplanes:
        scale = abs(a2) * r2 + abs(a3) * r3 + abs(c)
        ok &= a2 * r2 + a3 * r3 - c <= rtol * scale
    return ok


def _densify(poly, n: int = 400, *, box=None):
    """The closed outline of ``poly`` with ``n`` points per edge: its straight edges (linear
    coordinates) become the curves they are on log axes. With ``box = (lo, hi)`` the edges that
    lie on the box (the plotting range, not a boundary of the region) are left out, separated by
    NaN."""
    xs, ys = [], []
    for k in range(len(poly)):
        p, q = poly[k], poly[(k + 1) % len(poly)]
        if box is not None and any(np.isclose(p[a], v, rtol=1e-12, atol=0) and
                                   np.isclose(q[a], v, rtol=1e-12, atol=0) for a in (0, 1) for v in box):
            xs.append([np.nan])
            ys.append([np.nan])
            continue
        t = np.linspace(0.0, 1.0, n)
        xs.append(p[0] + t * (q[0] - p[0]))
        ys.append(p[1] + t * (q[1] - p[1]))
    if box is None:
        xs.append([poly[0][0]])
        ys.append([poly[0][1]])
    return np.concatenate(xs), np.concatenate(ys)


@styled
def plot_full_optimal_region(data: dict, columns: int = 2):
    r"""One panel per objective of :func:`full_optimal_region` data, in the ``(L_2/L_1, L_3/L_1)``
    plane (log axes): the region where full-network updates are optimal, filled and outlined from
    its closed-form boundary (:func:`full_optimal_halfplanes`: straight lines in the linear plane,
    drawn exactly on the log axes), with the solver's verdict on the data's grid checked against
    it (grid points where the two disagree are marked with a red cross; the legend says how many).
    Without a closed form (e.g. sum-form subsets) the solver's full-optimal grid points are drawn
    as dots. ``columns=1`` stacks the panels.

    >>> d = full_optimal_region([1, 1, 1], ratios=[0.5, 2.0], objectives=("max",))
    >>> fig = plot_full_optimal_region(d)
    >>> fig.axes[0].get_xlabel()
    '$L_2/L_1$'
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    panels = data["panels"]
    n_p = len(panels)
    if columns == 2 or n_p == 1:
        fig, axes = new_figure(columns, (0.46 if n_p > 1 else 0.8) if columns == 2 else 0.95, ncols=n_p)
    else:  # one column: side by side leaves no room for the legends, so the panels are stacked
        fig, axes = new_figure(columns, 0.9 * n_p, nrows=n_p)
    axes = np.atleast_1d(axes)
    r = np.asarray(data["ratios"], dtype=float)
    lo, hi = float(r.min()), float(r.max())
    pad = (hi / lo) ** 0.02 if hi > lo else 1.2
    xlim = (lo / pad, hi * pad)
    fill = color("full")
    opts = data.get("options", {})
    forward = opts.get("forward_cost")
    costs = data["costs"]
    if isinstance(costs, dict):  # a CostModel, as _jsonable wrote it
        costs = CostModel(forward=costs["forward"], activation=costs["activation"], weight=costs["weight"],
                          update=costs["update"])
    R2, R3 = np.meshgrid(r, r)  # [j][i]: r3 = ratios[j], r2 = ratios[i]
    for ax, panel in zip(axes, panels):
        m = np.asarray(panel["full_optimal"], dtype=bool)
        hp = full_optimal_halfplanes(costs, panel["objective"], data["family"], forward_cost=forward)
        handles = []
        if hp is not None:
            poly = full_optimal_polygon(hp, xlim[0], xlim[1])
            bx, by = _densify(poly) if poly else (np.array([]), np.array([]))
            area = 0.0
            if len(poly) >= 3:
                px, py = np.log([p[0] for p in poly]), np.log([p[1] for p in poly])
                area = 0.5 * abs(np.dot(px, np.roll(py, 1)) - np.dot(py, np.roll(px, 1)))
            if area > 1e-9:
                ax.fill(bx, by, color=fill, alpha=0.3, linewidth=0, gid="region")
                ox, oy = _densify(poly, box=xlim)
                ax.plot(ox, oy, color=fill, linewidth=1.0, gid="boundary")
                handles.append(Patch(facecolor=fill, alpha=0.3, edgecolor=fill, linewidth=1.0,
                                     label="full updates optimal (closed form)"))
            elif poly:  # a single point: all L_i equal
                ax.plot([poly[0][0]], [poly[0][1]], ls="none", marker="o", ms=4, color=fill,
                        gid="boundary")
                handles.append(Line2D([], [], ls="none", marker="o", ms=4, color=fill,
                                      label=r"full updates optimal (only $L_2 = L_3 = L_1$)"))
            wrong = m != _inside(hp, R2, R3)
            nw = int(wrong.sum())
            if nw:
                ax.plot(R2[wrong], R3[wrong], ls="none", marker="x", ms=3, mew=0.8, color=PALETTE[5],
                        gid="disagree")
            handles.append(Line2D([], [], ls="none", marker="x" if nw else "none", ms=3, mew=0.8,
                                  color=PALETTE[5],
                                  label=(f"solver disagrees at {nw} of {m.size} grid points" if nw else
                                         f"the solver agrees at all {m.size} grid points")))
        else:
            ax.plot(R2[m], R3[m], ls="none", marker="o", ms=1.2, color=fill, gid="grid")
            handles.append(Line2D([], [], ls="none", marker="o", ms=2, color=fill,
                                  label=f"full optimal (solver; {int(m.sum())} of {m.size} grid points)"))
        ax.axvline(1.0, color="0.5", linewidth=0.6, linestyle=(0, (3, 2)))
        ax.axhline(1.0, color="0.5", linewidth=0.6, linestyle=(0, (3, 2)))
        handles.append(Line2D([], [], color="0.5", linewidth=0.6, linestyle=(0, (3, 2)),
                              label=r"$L_j = L_1$"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(*xlim)
        ax.set_ylim(*xlim)
        ax.set_aspect("equal")
        ax.set_title(f"{_OBJECTIVE_NAMES[panel['objective']]}, {data['family']}")
        ax.set_xlabel(r"$L_2/L_1$")
        ax.set_ylabel(r"$L_3/L_1$")
        ax.legend(handles=handles, loc="upper right", fontsize="x-small", borderaxespad=0.3,
                  labelspacing=0.3, handlelength=1.5, frameon=True, facecolor="white", edgecolor="none",
                  framealpha=0.9)
        condition = _FULL_OPTIMAL_CONDITION.get((data["family"], panel["objective"]))
        if condition and hp is not None:
            ax.text(0.03, 0.70, condition, transform=ax.transAxes, fontsize=5.5, ha="left",
                    va="top", bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8,
                                    "pad": 1.0})
    return fig
