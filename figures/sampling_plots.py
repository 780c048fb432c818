"""Figures 2 and 3 of the theory figures, the optimal sampling distribution: its start (or lowest
layer) and inclusion probabilities per layer against full updates and uniform sampling, and the
total-cost landscape over the simplex of 3-layer start distributions; each is a data function
(JSON-able) and a plot function (data in, Figure out)."""

from __future__ import annotations

import math

import numpy as np

from dropmuon.solvers import optimal_sampling
from dropmuon.theory import RPT

from ._theory_common import _LABELS, _OBJECTIVE_NAMES, _SEARCH_ONLY, _floats, _jsonable, _nlayers, _optimum_name
from .style import color, new_figure, styled

__all__ = ["distribution_data", "plot_optimal_distribution", "cost_landscape", "plot_cost_landscape"]

# contour levels of relative total cost, and the candidates for the top of its colour scale
_ROUND_LEVELS = (1.05, 1.1, 1.25, 1.5, 2, 3, 5, 10, 20, 50, 100)


def _ternary_xy(p):
    """2-D coordinates of start distributions ``p = (p1, p2, p3)``: ``x = p3 − p2``, ``y = p1``
    (an affine image of the simplex: full updates at the top, ``(0, 1)``)."""
    p = np.asarray(p, dtype=float).reshape(-1, 3)
    return p[:, 2] - p[:, 1], p[:, 0]


def _contour_label(v: float) -> str:
    """The label of a relative-cost contour: ``×1.25``, never a bare number a contour line could
    turn into a minus sign."""
    return f"\u00d7{v:g}"


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
