"""Figure 1 of the theory figures: a theorem's bound against iterations (or total cost), one curve
per sampling distribution — a data function (JSON-able) and a plot function (data in, Figure out) —
and the test for curves that lie on each other."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dropmuon.theory import RPT, CostModel, get_theorem, start_from_inclusion

from ._theory_common import _LABELS, _floats, _jsonable
from .style import color, mathtext_primes, new_figure, styled

__all__ = ["bound_curves", "plot_bound_vs_iterations", "coinciding_curves"]

# several curves can coincide (the max-form optimum needs exactly as many iterations as full
# updates): distinct dash patterns keep every one of them visible
_LINESTYLES = ("-", (0, (5, 2)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (8, 2, 2, 2)))
_MARKERS = ("o", "s", "^", "D", "v")


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
