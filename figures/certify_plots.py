"""Figures of the exact worst-case certificates (verification/pep/certificate.py, docs/certify.md): the
certified worst case of T1 against its bound over K for several sampling probabilities, and the
optimal sampling for the exact worst case against the bound's. Data functions return JSON-ready
dicts; plot functions are pure functions of that data."""

from __future__ import annotations

import warnings

import numpy as np
from matplotlib.lines import Line2D

from .style import color, new_figure, styled

__all__ = ["certify_data", "plot_certify"]


def certify_data(*, pis=(1.0, 0.5, 0.2, 0.05), K_max: int = 1000, sdp_K=(1, 2, 4, 8, 16),
                 L=(1.0, 4.0, 2.0), costs=(1.0, 1.0, 1.0), epsilons=(1.2, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3),
                 show_epsilon: float = 1.0, solver: str = "CLARABEL") -> dict:
    r"""Data for :func:`plot_certify`.

    ``curves``: for one layer with ``L = 1``, ``Δ0 = 1`` and each ``π``, the exact worst case of
    T1's rate statement ``W(π, K) = 2(1 − (1−π)^K)/(πK)`` and T1's bound ``2/(πK)`` at
    ``K = 1..K_max`` (log-spaced), with the SDP's value at ``sdp_K``. ``sampling``: for ``L`` and
    per-layer ``costs``, the RPT start distributions minimising total cost under the bound and under
    the certified worst case at ``show_epsilon``, and the total-cost saving of the latter (both
    evaluated under the certified worst case) for each of ``epsilons``.

    >>> d = certify_data(pis=(1.0,), K_max=10, sdp_K=(1, 2), epsilons=(1.0,))
    >>> [round(v, 6) for v in d["curves"][0]["sdp"]]
    [2.0, 1.0]
    """
    from dropmuon.verification.pep.certificate import closed_form_factor, compare_optimal_sampling, layer_worst_case

    K = np.unique(np.geomspace(1, K_max, 60).round().astype(int))
    curves = []
    with warnings.catch_warnings():  # solver accuracy is in the status; the points are checked in the tests
        warnings.simplefilter("ignore", UserWarning)
        for pi in pis:
            sdp = [layer_worst_case(pi, k, solver=solver, witness=False) for k in sdp_K]
            curves.append({
                "pi": float(pi),
                "worst_case": [closed_form_factor(pi, int(k)) for k in K],
                "bound": [2.0 / (pi * k) for k in K],
                "sdp_K": [int(k) for k in sdp_K],
                "sdp": [float(r.value) for r in sdp],
                "sdp_status": [r.status for r in sdp],
            })
    shown = compare_optimal_sampling(L, costs, show_epsilon)
    savings = []
    for eps in epsilons:
        r = compare_optimal_sampling(L, costs, eps)
        savings.append({"epsilon": float(eps), "bound_K": r.bound_K, "exact_K": r.exact_K, "saving": r.saving,
                        "bound_certified_cost": r.bound_certified_cost, "exact_cost": r.exact_cost})
    return {
        "K": K.tolist(),
        "curves": curves,
        "sampling": {
            "L": list(map(float, L)), "costs": list(map(float, costs)), "epsilon": float(show_epsilon),
            "bound_start_probs": list(shown.bound_start_probs), "exact_start_probs": list(shown.exact_start_probs),
            "bound_pi": list(shown.bound_pi), "exact_pi": list(shown.exact_pi),
            "bound_K": shown.bound_K, "exact_K": shown.exact_K, "saving": shown.saving,
        },
        "savings": savings,
    }


@styled
def plot_certify(data: dict, columns: int = 2):
    r"""Three panels from :func:`certify_data`: (a) the certified worst case (solid; SDP values as
    markers) and T1's bound (dashed) against ``K`` for each ``π``, one layer, ``L = Δ0 = 1``;
    (b) the RPT start probabilities minimising total cost under the bound and under the exact worst
    case; (c) the total-cost saving of the exact optimum over the bound's, against the target ``ε``.

    >>> fig = plot_certify(certify_data(pis=(1.0,), K_max=10, sdp_K=(1,), epsilons=(1.0,)))
    >>> len(fig.axes)
    3
    """
    if columns == 2:  # the three panels side by side on the page width
        fig, axes = new_figure(columns, 0.34, ncols=3)
    else:  # one column: stacked, (a) taller (its legends need the room), each y label within its panel
        fig, axes = new_figure(columns, 1.75, nrows=3, gridspec_kw={"height_ratios": [1.35, 1.0, 1.0]})
    ax = axes[0]
    K = np.asarray(data["K"], dtype=float)
    pis = []
    for k, c in enumerate(data["curves"]):
        col = color(k + 1 if k else 0)
        (ln,) = ax.loglog(K, c["worst_case"], color=col, label=rf"$\pi = {c['pi']:g}$", gid=f"worst:{c['pi']:g}")
        pis.append(ln)
        ax.loglog(K, c["bound"], color=col, linestyle="--", linewidth=0.9, gid=f"bound:{c['pi']:g}")
        ax.loglog(c["sdp_K"], c["sdp"], linestyle="none", marker="o", markerfacecolor="white", color=col,
                  markersize=3.5, markeredgewidth=0.9, gid=f"sdp:{c['pi']:g}")
    # every curve falls from the upper left to the lower right: the colours (π) go in the empty lower
    # left, the line styles in the empty upper right, each in one narrow column
    kinds = [Line2D([], [], color="0.4", label="exact worst case"),
             Line2D([], [], color="0.4", linestyle="--", label="T1 bound"),
             Line2D([], [], color="0.4", linestyle="none", marker="o", markerfacecolor="white", label="SDP")]
    leg = ax.legend(handles=pis, loc="lower left", fontsize=5.5, handlelength=1.5, labelspacing=0.2,
                    borderaxespad=0.3)
    ax.add_artist(leg)
    ax.legend(handles=kinds, loc="upper right", fontsize=5.5, handlelength=1.8, labelspacing=0.2,
              borderaxespad=0.3)
    ymin = min(min(min(c["worst_case"]), min(c["bound"])) for c in data["curves"])
    ymax = max(max(max(c["worst_case"]), max(c["bound"])) for c in data["curves"])
    ax.set_ylim(ymin / 30, ymax * 30)  # a decade and a half of room below and above for the legends
    ax.set_xlabel(r"iterations $K$")
    lhs = r"$\frac{1}{K}\sum_k \mathbb{E}\|\nabla f\|^2$"
    ax.set_ylabel(f"worst case of{chr(10) if columns == 1 else ' '}{lhs}")
    ax.set_title(r"(a) one layer, $L = \Delta_0 = 1$", fontsize="small")
    s = data["sampling"]
    ax = axes[1]
    layers = np.arange(1, len(s["L"]) + 1)
    w = 0.38
    ax.bar(layers - w / 2, s["bound_start_probs"], w, color=color("optimal-max"),
           label=f"bound optimum (K = {s['bound_K']})")
    ax.bar(layers + w / 2, s["exact_start_probs"], w, color=color(5),
           label=f"exact optimum (K = {s['exact_K']})")
    ax.set_xticks(layers)
    ax.set_ylim(0, 1.15)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel(r"start layer $s$")
    ax.set_ylabel(r"start probability $p_s$")
    L = ", ".join(f"{v:g}" for v in s["L"])
    ax.set_title(rf"(b) RPT, $L = ({L})$, $\varepsilon = {s['epsilon']:g}$", fontsize="small")
    ax.legend(loc="upper right", fontsize=5.5)
    ax = axes[2]
    eps = [r["epsilon"] for r in data["savings"]]
    sav = [100 * r["saving"] for r in data["savings"]]
    ax.plot(eps, sav, color=color(5), marker="s", markerfacecolor="white", markeredgewidth=0.9)
    for r in data["savings"][:4]:  # the later points sit at zero saving, close together
        ax.annotate(f"K={r['exact_K']}", (r["epsilon"], 100 * r["saving"]), textcoords="offset points",
                    xytext=(0, 4), ha="center", fontsize=5)
    ax.invert_xaxis()
    ax.set_ylim(min(0.0, min(sav)) - 0.05 * max(sav), 1.2 * max(sav) + 1e-9)
    ax.set_xlabel(r"target $\varepsilon$ (rate statement $\leq \varepsilon^2$)")
    ax.set_ylabel("total-cost saving (%)")
    ax.set_title("(c) saving of the exact optimum", fontsize="small")
    return fig
