"""Figure 4 of the theory figures: where full-network updates are optimal, for 3 layers over the
``(L_2/L_1, L_3/L_1)`` plane — the numerical verdict on a grid (solved by the solvers, or proved
without solving by a certificate; data function), the closed-form
region as half-planes clipped to a convex polygon, and the plot that draws the region and checks the
verdict against it."""

from __future__ import annotations

import numpy as np

from dropmuon.solvers import FULL_OPTIMAL_RTOL, optimal_sampling, optimum_lower_bound
from dropmuon.theory import RPT, CostModel

from ._theory_common import _OBJECTIVE_NAMES, _SEARCH_ONLY, _floats, _jsonable, _nlayers
from .style import PALETTE, color, new_figure, styled

__all__ = ["full_optimal_region", "plot_full_optimal_region", "full_optimal_halfplanes", "full_optimal_polygon"]

# cheap RPT start distributions that beat full updates wherever full is clearly not optimal (on
# the 61 x 61 default grid with equal costs they decide 2660 of the 2756 points where full is not
# optimal; the region itself is decided by the lower bound, and only points near the region's
# boundary need the solver)
_CANDIDATES = ((0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.9, 0.1, 0.0), (0.9, 0.0, 0.1),
               (1 / 3, 1 / 3, 1 / 3))
_FULL = RPT((1.0, 0.0, 0.0))  # every step from layer 1: the full-network update
_BOUND_KW = ("forward_cost", "L0", "L1", "Delta0", "epsilon")  # what optimum_lower_bound takes


def _decided(L, costs, objective, family, fixed_kw) -> bool | None:
    """Whether full updates are optimal, where a certificate decides it without solving, else
    ``None``. Two certificates, both valid for the ``rpt`` and ``subsets`` families (every RPT
    distribution belongs to both), both within the solvers' tie tolerance ``FULL_OPTIMAL_RTOL``:

    - ``False``: some simple RPT distribution costs less than full updates — so does the optimum;
    - ``True``: the weak-duality lower bound read off full updates
      (:func:`solvers.optimum_lower_bound`) reaches their cost — the optimum lies between the two.
      The bound is exact wherever full updates are optimal, so this decides the whole region."""
    full_tc = None
    for p in _CANDIDATES:
        r = optimal_sampling(L, costs, family="fixed", objective=objective, distribution=RPT(p),
                             **fixed_kw)
        full_tc = r.full_total_cost
        if r.total_cost * (1 + FULL_OPTIMAL_RTOL) < full_tc:
            return False
    bound = optimum_lower_bound(L, costs, _FULL, family=family, objective=objective,
                                **{k: v for k, v in fixed_kw.items() if k in _BOUND_KW})
    return True if full_tc <= bound * (1 + FULL_OPTIMAL_RTOL) else None


def full_optimal_region(costs3, *, ratios=None, objectives=("max", "sum"), family: str = "rpt",
                        **kw) -> dict:
    r"""Where full-network updates are optimal, for ``b = 3`` layers with ``L = (1, r2, r3)``,
    over the grid ``r2, r3 ∈ ratios`` (default ``np.geomspace(0.1, 10, 61)``), one mask per
    objective (``"max"``, ``"sum"``).

    A point is full-optimal when :func:`solvers.optimal_sampling` says so (``full_is_optimal``:
    full updates cost at most ``1 + FULL_OPTIMAL_RTOL`` times the optimum). For the sum-form with
    the ``rpt`` or ``subsets`` family, where the solver is an interior-point method (~15 ms a
    point), two certificates decide most points without it: a simple RPT distribution that
    beats full (the optimum is at least as cheap), and the weak-duality lower bound read off full
    updates themselves (:func:`solvers.optimum_lower_bound`: exact wherever full is optimal). Only
    points near the region's boundary are solved. docs/sampling.md: max-form RPT is full-optimal iff ``L_1 = max_j L_j``.

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
                verdict = _decided(L, costs3, obj, family, fixed_kw) if screen else None
                if verdict is None:
                    verdict = bool(optimal_sampling(L, costs3, family=family, objective=obj, **kw).full_is_optimal)
                row.append(verdict)
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
                                  label=(f"verdicts disagree at {nw} of {m.size} grid points" if nw else
                                         f"verdicts agree at all {m.size} grid points")))
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
