"""The built-in report (``dropmuon report``, ``make demo``): optimal sampling distributions for
built-in and measured constant profiles, bound curves, the verification summary, the inexact-LMO
coupling and, when a results file is present, the torch measurements — as ``report.md`` and
``report.html`` with every figure as PDF and PNG. Every number is computed in the run or read from a
results JSON that the report names. The document it fills, and its rendering to Markdown and HTML,
is :class:`~dropmuon.figures.document.Report`.
"""

from __future__ import annotations

import datetime
import math
import platform
import re
import time
from pathlib import Path

import numpy as np

from .document import Report, _png_width_in

__all__ = ["Report", "build_report", "find_torch_results", "read_torch_results", "SECTIONS", "EXAMPLES"]

#: section titles, in order (the report test checks that each is present)
SECTIONS = (
    "Optimal layer-sampling distributions",
    "Bounds versus iterations",
    "Verification summary",
    "Inexact LMO: Newton–Schulz and the step size",
    "Exact worst cases (performance estimation)",
    "Torch measurements",
)

#: the worked examples the analytic figures use
EXAMPLES = {
    "distribution": {"L": (1.0, 5.0, 3.0, 2.0), "costs": (1.0, 1.0, 1.0, 1.0), "forward_cost": 2.0},
    "bounds": {"theorem": "smooth-deterministic", "L": (1.0, 4.0, 2.0), "Delta0": 1.0},
    "landscape": {"L": (1.0, 4.0, 2.0), "costs": (1.0, 1.0, 1.0)},
    "region": {"costs": (1.0, 1.0, 1.0)},
}


# -- number formatting ---------------------------------------------------------------------------

def _g(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def _vec(xs, digits: int = 3) -> str:
    return "(" + ", ".join(_g(float(x), digits) for x in xs) + ")"


# -- torch results ---------------------------------------------------------------------------------

def find_torch_results(root=".") -> Path | None:
    """The newest ``results/*/experiment.json`` below ``root`` (written by ``dropmuon
    experiment``), or ``None``."""
    cands = sorted(Path(root).glob("results/*/experiment.json"), key=lambda p: p.stat().st_mtime)
    return cands[-1] if cands else None


# -- the report ------------------------------------------------------------------------------------

class _Steps:
    """The report's progress on stderr: a line when each step starts, naming it
    (``report: step 3/7 verification suite (quick) ...``), and, when stderr is not a terminal (a
    log, a pipe, CI), a line every :attr:`LINE_EVERY` seconds while a step runs, so that a long
    step is never silent. ``enabled=False``: nothing; ``None``: as described; ``True``: the periodic
    lines on a terminal too."""

    #: seconds between two lines while one step runs (stderr not a terminal)
    LINE_EVERY = 15.0

    def __init__(self, names: list[str], enabled=None, stream=None, label: str = "report"):
        import sys

        self.names, self.label = list(names), label
        self.stream = stream if stream is not None else sys.stderr
        tty = self.stream.isatty() if hasattr(self.stream, "isatty") else False
        self.enabled = enabled is not False
        self.ticking = enabled is True or (enabled is None and not tty)
        self.start = time.perf_counter()
        self._k = 0
        self._stop = None
        self._thread = None
        self._lock = None

    def _write(self, line: str):
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def step(self, name: str):
        """Start the step ``name`` (one of ``names``, in order): its line, and its ticker."""
        import threading

        if not self.enabled:
            return
        self._end_step()
        if self._lock is None:
            self._lock = threading.Lock()
        self._k += 1
        n, k, began = len(self.names), self._k, time.perf_counter()
        total = f" ({began - self.start:.0f} s)" if k > 1 else ""
        self._write(f"{self.label}: step {k}/{n} {name} ...{total}")
        if not self.ticking:
            return
        stop = self._stop = threading.Event()

        def tick():
            while not stop.wait(self.LINE_EVERY):
                now = time.perf_counter()
                self._write(f"{self.label}: step {k}/{n} {name}: running for {now - began:.0f} s "
                            f"({now - self.start:.0f} s in all)")

        self._thread = threading.Thread(target=tick, name="report-progress", daemon=True)
        self._thread.start()

    def _end_step(self):
        if self._stop is not None:
            self._stop.set()
            self._thread.join()
            self._stop = self._thread = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self._end_step()
        if self.enabled and exc_type is None:
            self._write(f"{self.label}: done in {time.perf_counter() - self.start:.0f} s")


def _report_steps(suite: str, torch: bool, figures_only: bool) -> list[str]:
    """The names of the report's steps, in order (the progress lines name them)."""
    names = ["optimal sampling distributions", "bound curves", f"verification suite ({suite})",
             f"inexact-LMO coupling ({suite})", "exact worst cases (SDPs)",
             "torch measurements" if torch else "torch section (no results)"]
    if not figures_only:
        names.append("writing report.md, report.html, report.json")
    return names


def build_report(out="out", *, quick: bool = True, torch_results="auto", seed: int = 0, columns: int = 1,
                 progress=None, figures_only: bool = False, suite_results=None) -> dict:
    """Compute everything, write the figures (``OUT/figures/*.pdf|png``) and, unless
    ``figures_only``, ``OUT/report.md``, ``OUT/report.html`` and ``OUT/report.json`` (the numbers
    behind the tables). ``quick``: the quick verification suite and coupling experiments (≈ 30 s in
    all on 2 cores) instead of the standard ones (≈ 3 min). ``torch_results``: an experiment JSON
    (``dropmuon experiment``), ``"auto"`` (the newest ``results/*/experiment.json``, if any) or
    ``None``; it is checked before anything is computed (a bad file raises ``ValueError`` naming
    it and the field). ``suite_results``: a folder of the verification suite's task files
    (``dropmuon verify --out DIR`` with the same suite and seed): finished checks are read back
    instead of run again, new ones are saved there (a folder holding another suite or seed raises
    ``ValueError``), and so is the coupling table (in ``coupling-table/`` there).
    ``progress``: ``False`` for silence, else a line on stderr as each step
    starts (and every 15 s while it runs when stderr is not a terminal). Returns ``{"report": path
    or None, "figures": [paths], "data": {...}, "seconds": …}``."""
    from dropmuon.figures.style import save_figure
    from dropmuon.theory._io import write_json_atomic, write_text_atomic

    t0 = time.perf_counter()
    out = Path(out)
    figdir = out / "figures"
    if columns not in (1, 2):
        raise ValueError(f"columns must be 1 or 2; got columns = {columns!r}")
    if torch_results == "auto":
        torch_results = find_torch_results()
    torch_data = None
    if torch_results is not None:
        torch_data = read_torch_results(torch_results)
    suite = "quick" if quick else "standard"
    rep = Report("Drop-Muon toolkit report")
    data: dict = {"settings": {"quick": quick, "seed": seed, "torch_results": str(torch_results) if torch_results else None}}
    written: list[Path] = []

    def save(fig, name):
        written.extend(save_figure(fig, figdir / name))
        widths[f"figures/{name}"] = _png_width_in(figdir / f"{name}.png")
        return f"figures/{name}"

    widths: dict = {}

    names = _report_steps(suite, torch_data is not None, figures_only)
    with _Steps(names, enabled=progress) as steps:
        rep.paragraph(
            f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} by `dropmuon report"
            f"{' --quick' if quick else ''}` (seed {seed}) with Python {platform.python_version()}, "
            f"numpy {np.__version__}. Every number below is computed in this run, except the torch "
            f"measurements, which are read from the results file named in their section. The theorems are "
            f"derived in this project (docs/theory.md), not quoted from the paper.")
        steps.step(names[0])
        _section_distributions(rep, data, save, torch_data, columns)
        steps.step(names[1])
        _section_bounds(rep, data, save, columns)
        steps.step(names[2])
        _section_verification(rep, data, save, suite, seed, columns, suite_results)
        steps.step(names[3])
        _section_coupling(rep, data, save, suite, seed, columns, suite_results)
        steps.step(names[4])
        _section_certify(rep, data, save, columns)
        steps.step(names[5])
        _section_torch(rep, data, save, torch_data, torch_results, columns)
        # every figure at one scale in the HTML: its width as saved (one column or page width)
        rep.blocks = [(*blk[:3], widths.get(blk[1], blk[3])) if blk[0] == "figure" else blk for blk in rep.blocks]
        result = {"report": None, "figures": written, "data": data, "document": rep}
        if not figures_only:
            steps.step(names[6])
            out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out / "report.md", rep.to_markdown())
            write_text_atomic(out / "report.html", rep.to_html())
            data["seconds"] = time.perf_counter() - t0
            write_json_atomic(out / "report.json", data)
            result["report"] = out / "report.md"
    data["seconds"] = result["seconds"] = time.perf_counter() - t0
    return result


def _torch_field_error(path, field: str, message: str) -> ValueError:
    return ValueError(f"the torch results file {str(path)!r}, field {field!r}: {message}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_torch_results(path) -> dict:
    """The experiment JSON of ``dropmuon experiment`` at ``path``, checked for everything the
    report reads from it — before the report computes anything, so that a bad file fails at once.
    Every problem raises a one-line ``ValueError`` naming the file and, where the JSON is well
    formed, the field: not JSON, ``NaN``/``Infinity`` in it, no ``calibration`` or ``runs``, a
    calibration that is not an object of per-layer records or holds a bad record (a missing or
    non-finite ``L``, a bad cost), runs that cannot be plotted, an incomplete ``summary``."""
    from dropmuon.figures.torch_plots import accuracy_bands, constants_series
    from dropmuon.theory._io import read_json
    from dropmuon.verification.forecasting.measured import load_constants

    data = read_json(path, "torch results file")  # unreadable, not JSON, NaN/Infinity: the file is named
    if not isinstance(data, dict) or "runs" not in data or "calibration" not in data:
        raise ValueError(f"{str(path)!r} is not an experiment JSON of dropmuon experiment "
                         f"(it needs 'calibration' and 'runs')")
    cal = data["calibration"]
    if not isinstance(cal, dict) or not isinstance(cal.get("layers"), list) or not cal["layers"]:
        raise _torch_field_error(path, "calibration", "must be the calibration object of dropmuon experiment, "
                                 f"with a non-empty list of per-layer records 'layers'; got {_short(cal)}")
    try:
        load_constants(cal)
    except ValueError as e:  # its message names "the constants" for a dict: name the file and the field
        msg = re.sub(r"^'?the constants'?:\s*", "", _one_line(e))
        raise _torch_field_error(path, "calibration", msg) from None
    runs = data["runs"]
    if not isinstance(runs, list) or not runs:
        raise _torch_field_error(path, "runs", f"must be a non-empty list of run records; got {_short(runs)}")
    for key, check in (("calibration", lambda: constants_series(cal["layers"])),
                       ("runs", lambda: accuracy_bands(runs))):
        try:
            check()
        except (ValueError, KeyError, TypeError) as e:
            raise _torch_field_error(path, key, _one_line(e)) from None
    try:
        _torch_text(data, path)
    except KeyError as e:
        raise ValueError(f"the torch results file {str(path)!r} lacks the field {e.args[0]!r} "
                         f"(not a complete experiment JSON of dropmuon experiment)") from None
    except (TypeError, ValueError, AttributeError, IndexError) as e:
        raise ValueError(f"the torch results file {str(path)!r} is not a complete experiment JSON of "
                         f"dropmuon experiment: {_one_line(e)}") from None
    return data


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return " ".join(text.split())


def _section_distributions(rep, data, save, torch_data, columns):
    from dropmuon.figures.theory_plots import (
        cost_landscape, distribution_data, full_optimal_region, plot_cost_landscape, plot_full_optimal_region,
        plot_optimal_distribution,
    )
    from dropmuon.solvers import optimal_sampling
    from dropmuon.theory import CostModel
    from dropmuon.verification.synthetic.predictions import builtin_profiles

    rep.heading(SECTIONS[0])
    rep.paragraph(
        "For each constant profile: the start distribution `p` of the RPT sampler (start at layer `s`, "
        "update `s..b`) minimising total cost `K(π) · E cost`, for the max-form (T1, `K ∝ max_i L_i/π_i`) "
        "and the sum-form (T1′, `K ∝ Σ_i L_i/π_i`), and its speed-up over full-network updates and over "
        "uniform index sampling (`solvers.optimal_sampling`). Costs: one number per layer plus the forward "
        "pass F (lumped model), or the measured model.")
    profiles = [(p.name, list(p.L), p.cost_model, f"c = {_vec(p.costs)}, F = {_g(p.forward)}")
                for p in builtin_profiles()]
    if torch_data:
        from dropmuon.verification.forecasting.measured import load_constants

        L, cm = load_constants(torch_data["calibration"])
        profiles.append(("measured CNN", L, cm, "measured (seconds)"))
    rows, recs = [], []
    for name, L, cm, cdesc in profiles:
        rmax = optimal_sampling(L, cm, objective="max")
        rsum = optimal_sampling(L, cm, objective="sum")
        rows.append([name, _vec(L), cdesc, _vec(rmax.start_probs), _g(rmax.speedup_vs_full),
                     _g(rmax.speedup_vs_uniform), "yes" if rmax.full_is_optimal else "no",
                     _vec(rsum.start_probs), _g(rsum.speedup_vs_full), _g(rsum.speedup_vs_uniform)])
        recs.append({"profile": name, "L": L, "max": rmax.to_dict(), "sum": rsum.to_dict()})
    rep.table(["profile", "L", "costs", "max-form p*", "vs full", "vs uniform", "full optimal",
               "sum-form p*", "vs full", "vs uniform"], rows)
    data["distributions"] = recs

    ex = EXAMPLES["distribution"]
    d = distribution_data(list(ex["L"]), CostModel.linear(list(ex["costs"]), forward=ex["forward_cost"]))
    stem = save(plot_optimal_distribution(d, columns=columns), "optimal_distribution")
    rep.figure(stem, f"The max-form optimal RPT distribution for L = {_vec(ex['L'])}, unit costs and "
                     f"forward cost {_g(ex['forward_cost'])}: start probabilities and inclusion probabilities, "
                     f"with full updates and uniform index sampling for reference.")
    ex = EXAMPLES["landscape"]
    land = cost_landscape(list(ex["L"]), list(ex["costs"]))
    stem = save(plot_cost_landscape(land, columns=columns), "cost_landscape")
    rep.figure(stem, f"Total cost (max-form) over the simplex of start distributions for "
                     f"L = {_vec(ex['L'])}, costs {_vec(ex['costs'])}; the optimum is marked.")
    ex = EXAMPLES["region"]
    reg = full_optimal_region(list(ex["costs"]))
    stem = save(plot_full_optimal_region(reg, columns=columns), "full_optimal_region")
    rep.figure(stem, f"Where full-network updates are optimal, in the (L2/L1, L3/L1) plane, for "
                     f"costs {_vec(ex['costs'])}: max-form and sum-form.")
    data["figures_data"] = {"distribution": d, "landscape": land, "region": reg}


def _section_bounds(rep, data, save, columns):
    from dropmuon.figures.theory_plots import bound_curves, plot_bound_vs_iterations
    from dropmuon.solvers import optimal_sampling
    from dropmuon.theory import RPT, theorems

    ex = EXAMPLES["bounds"]
    L = list(ex["L"])
    b = len(L)
    opt = optimal_sampling(L, [1.0] * b)
    dists = {"full": RPT.full(b).inclusion.tolist(), "uniform": RPT.uniform(b).inclusion.tolist(),
             "optimal-max": np.asarray(opt.inclusion).tolist()}
    K = np.unique(np.geomspace(1, 1e4, 41).round().astype(int)).tolist()
    curves = bound_curves(ex["theorem"], K, dists, L=L, Delta0=ex["Delta0"], costs=[1.0] * b)
    rep.heading(SECTIONS[1])
    th = theorems[ex["theorem"]]
    rep.paragraph(f"{th.label} `{ex['theorem']}` for L = {_vec(L)}, Δ0 = {_g(ex['Delta0'])}: the bound on the "
                  f"gradient measure after K iterations for three sampling distributions (inclusion "
                  f"probabilities π). Iterations to reach ε = 0.1:")
    rows = []
    for name, pi in dists.items():
        rows.append([name, _vec(pi), str(th.iterations(0.1, L=L, pi=pi, Delta0=ex["Delta0"]))])
    rep.table(["distribution", "π", "K(ε = 0.1)"], rows)
    stem = save(plot_bound_vs_iterations(curves, columns=columns), "bound_vs_iterations")
    rep.figure(stem, f"{th.label} bound versus iterations for full, uniform and the max-form optimal "
                     f"sampling (L = {_vec(L)}).")
    stem = save(plot_bound_vs_iterations(curves, columns=columns, x="cost"), "bound_vs_cost")
    rep.figure(stem, "The same bounds against total cost (iterations × expected cost per step, unit costs per "
                     "layer): the optimum needs as many iterations as full updates but each is cheaper.")
    rep.paragraph(f"{th.label}'s statement (derived in docs/theory.md):")
    rep.math(th.latex())
    data["bounds"] = curves


def _section_verification(rep, data, save, suite, seed, columns, suite_results=None):
    from dropmuon.figures.verification_plots import plot_verification
    from dropmuon.verification import run_suite, summarise

    results = run_suite(suite, seed=seed, progress=False, results=suite_results)
    summ = summarise(results)
    rep.heading(SECTIONS[2])
    a = summ["all"]
    rep.paragraph(f"`dropmuon verify --suite {suite} --seed {seed}`: {a['checks']} checks ({a['exact']} exact, "
                  f"{a['mc']} Monte Carlo): {a['holds']} hold, {a['violations']} failed, {a['within_tolerance']} "
                  f"within tolerance (Monte Carlo upper limit above the bound by at most 2%), {a['inconclusive']} "
                  f"inconclusive. Tightness observed/bound over the bound and tight checks: min {_g(a['ratio_min'])}, "
                  f"median {_g(a['ratio_median'])}, max {_g(a['ratio_max'])} (exact checks only: max "
                  f"{_g(a['ratio_max_exact'])}; Monte Carlo ratios are sample means and may exceed 1 within "
                  f"their confidence interval).")
    rows = [[k, v["checks"], v["holds"], v["violations"], v["within_tolerance"], v["inconclusive"], _g(v["ratio_min"]),
             _g(v["ratio_median"]), _g(v["ratio_max"]), _g(v["ratio_max_exact"])] for k, v in summ["by_theorem"].items()]
    rep.table(["theorem", "checks", "hold", "failed", "within tolerance", "inconclusive", "ratio min", "median", "max",
               "max (exact)"], rows)
    records = [r.as_dict() for r in results]
    stem = save(plot_verification(records, columns=columns), "verification")
    rep.figure(stem, f"Observed left-hand side against the bound for every check of the {suite} suite "
                     f"(log–log, y = x dashed); tight instances highlighted.")
    data["verification"] = {"suite": suite, "summary": summ}


#: where, in a ``suite_results`` folder, the report keeps the coupling table (read back on a re-run)
COUPLING_TABLE_FOLDER = "coupling-table"


def _section_coupling(rep, data, save, suite, seed, columns=1, suite_results=None):
    from dropmuon.figures.verification_plots import plot_inexact_lmo
    from dropmuon.verification.synthetic.coupling import coupling_table

    c = coupling_table(seed, suite, results=None if suite_results is None else Path(suite_results) / COUPLING_TABLE_FOLDER)
    rep.heading(SECTIONS[3])
    rep.paragraph("T4 (inexact LMO, δ): the worst-case δ of Newton–Schulz over matrices of rank 64 with condition "
                  "number ≤ κ (exact up to rounding), and the step size that minimises the bound / the measured "
                  "metric as δ grows (`dropmuon.verification.synthetic.coupling.coupling_table`). The theory predicts "
                  "η*(δ) = η*(0)/(1+δ).")
    rows = []
    for r in c["delta_worst"]:
        if r["steps"] in (5, 8):
            rows.append([r["preset"], r["steps"], _g(r["kappa"]), _g(r["delta"])])
    rep.table(["preset", "steps", "κ", "worst δ"], rows)
    th = c["theory"]
    rows = [[r["setting"], _g(r["delta"]), _g(r["eta"]), _g(r["eta"] * (1 + r["delta"])), _g(r["beta"])] for r in th]
    rep.table(["setting", "δ", "η*(δ) (bound)", "η*(δ)·(1+δ)", "β*(δ)"], rows)
    stem = save(plot_inexact_lmo(c, columns=columns), "inexact_lmo")
    rep.figure(stem, "(a) Worst-case δ versus Newton–Schulz steps per preset and condition number. "
                     "(b) Best step size versus δ — the bound's η*(δ), and the measured best η for "
                     "overshooting and shrinking perturbations.")
    data["coupling"] = {"delta_worst": c["delta_worst"], "theory": th, "overshoot": c["overshoot"],
                        "shrink": c["shrink"]}


def _section_certify(rep, data, save, columns):
    from dropmuon.figures.certify_plots import certify_data, plot_certify

    d = certify_data()  # about 3 s: 20 small SDPs plus the closed forms
    rep.heading(SECTIONS[4])
    rep.paragraph("The exact worst case of T1's rate statement over all separable problems with Frobenius layers "
                  "(a semidefinite program per layer, `dropmuon certify`, docs/certify.md) against T1's bound, and "
                  "the optimal RPT sampling for the exact worst case against the bound's: its total-cost saving.")
    rep.table(["ε", "K", "saving of the exact optimum"],
              [[f"{r['epsilon']:g}", str(r["exact_K"]), f"{100 * r['saving']:.2g}%"] for r in d["savings"]])
    stem = save(plot_certify(d, columns=columns), "certify")
    rep.figure(stem, "(a) exact worst case (solid, SDP circles) against T1's bound (dashed) over K for π = 1, 0.5, "
                     "0.2, 0.05; (b) optimal RPT start probabilities, bound against exact, L = (1, 4, 2), ε = 1; "
                     "(c) total-cost saving against ε.")
    data["certify"] = d


def _ms(seconds) -> str:
    """Seconds as milliseconds for a table ("–" for a missing or non-finite value)."""
    return _g(seconds * 1e3) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else "–"


def _torch_text(torch_data, torch_results) -> list:
    """The torch section's paragraphs and tables (blocks of :class:`Report`) from an experiment
    JSON; :func:`read_torch_results` runs it first, so that a file missing a field fails at once."""
    s = torch_data["summary"]
    cfg = s["config"]
    cal = torch_data["calibration"]
    model = cfg.get("model", "cnn")  # results written before models were selectable are the paper's CNN's
    dataset = s.get("data") or cfg.get("data") or "sklearn-digits"
    blocks = [("paragraph", (
               f"Read from `{torch_results}` (written by `dropmuon experiment`): model {model} "
               f"(width {cfg.get('width', 1.0)}) on {dataset}, {len(cfg['seeds'])} seeds, "
               f"target training {s.get('metric') or 'accuracy'} {cfg['target_acc']}, batch {cfg['batch']}, "
               f"lr {cfg['lr']}, device "
               f"{cfg['device']}. Speed-ups over full Muon are paired by seed: geometric mean with a "
               f"{round(100 * float(s.get('confidence') or 0.95))}% Student-t interval."))]
    rows = []
    for lay in cal["layers"]:
        c = lay["costs"]
        rows.append([lay["layer"], "×".join(str(x) for x in lay["shape"]), _g(lay["L"]), _g(lay.get("L0")),
                     _g(lay.get("L1")), _g(lay.get("hessian_top_eig")),
                     f"{_ms(c.get('start_measured_s'))} / {_ms(c.get('start_predicted_s'))}"])
    blocks.append(("table", ["layer", "shape", "L", "L0", "L1", "Hessian top eig",
                             "ms per step from s = layer: measured / model"], rows))
    rows = []
    for name, r in s["rows"].items():
        sp = r["speedup_time"]
        ci = "–" if sp.get("low") is None else f"[{_g(sp['low'])}, {_g(sp.get('high'))}]"
        rows.append([name, _vec(r["start_probs"]), f"{r['reached']}/{r['runs']}",
                     _g(r["iterations_to_target"]["mean"]), _g(r["time_to_target_s"]["mean"]),
                     f"{_ms(r['seconds_per_step']['mean'])} / {_ms(r['predicted_seconds_per_step'])}",
                     f"{_g(sp['mean'])} {ci}", _g(r["predicted_speedup_max"]), _g(r["predicted_speedup_sum"]),
                     _g(r["test_acc"]["mean"])])
    blocks.append(("table", ["schedule", "p", "reached", "iterations", "time (s)", "ms/step measured / predicted",
                             "speed-up [CI]", "predicted (max)", "predicted (sum)", "test acc"], rows))
    blocks = [(b[0], [str(h) for h in b[1]], [[str(c) for c in r] for r in b[2]]) if b[0] == "table" else b
              for b in blocks]
    v = s["verdict"]
    blocks.append(("paragraph", (
                   f"Measured winner: {v['measured_winner']}; the max-form predicted {v['predicted_winner_max']} "
                   f"({'matched' if v['max_form_matched'] else 'did not match'}), the sum-form predicted "
                   f"{v['predicted_winner_sum']} ({'matched' if v['sum_form_matched'] else 'did not match'}).")))
    return blocks


_BASES = {"lhs": "the theorems' own quantity (time and iterations until the running average of the squared "
                 "dual gradient norms falls to full Muon's value at its target)",
          "accuracy": "time and iterations to the target accuracy"}


def predictions_scored(summary) -> tuple[str | None, list]:
    """``(basis, predictors)`` for figure 9 from an experiment summary: the scoring on the theorems'
    own quantity where any schedule other than full has paired runs there (it needs runs that go
    on past their target), else on the target accuracy; ``(None, [])`` for a summary without
    predictions."""
    scored = summary.get("predictors") or {}

    def paired(rows):
        return any(r["measured_speedup"]["n"] for d in rows for k, r in d["schedules"].items() if k != "full")

    for basis in ("lhs", "accuracy"):
        if scored.get(basis) and paired(scored[basis]):
            return basis, scored[basis]
    return None, []


def _section_torch(rep, data, save, torch_data, torch_results, columns):
    rep.heading(SECTIONS[5])
    if torch_data is None:
        rep.paragraph("No torch results were found (none given, and no `results/*/experiment.json`). Measure "
                      "them with the torch extra: `dropmuon experiment --device cpu --seeds 8 --target-acc 0.98 "
                      "--out results/experiment`, then `dropmuon report --torch-results "
                      "results/experiment/experiment.json`.")
        return
    from dropmuon.figures.torch_plots import plot_accuracy_vs_time, plot_measured_constants, plot_predicted_vs_measured

    s = torch_data["summary"]
    model = s["config"].get("model", "cnn")
    rep.blocks.extend(_torch_text(torch_data, torch_results))
    stem = save(plot_measured_constants(torch_data["calibration"]["layers"], columns=columns), "measured_constants")
    rep.figure(stem, f"Measured layer-wise smoothness estimates of the model ({model}) along full-Muon training "
                     "(spectral norm, dual nuclear).")
    stem = save(plot_accuracy_vs_time(torch_data["runs"], columns=columns), "accuracy_vs_time")
    rep.figure(stem, "Training accuracy against wall-clock training time per schedule, median and band "
                     "over seeds.")
    basis, scored = predictions_scored(s)
    if scored:  # experiments from before predictions were registered have none
        stem = save(plot_predicted_vs_measured(scored, columns=columns), "predicted_vs_measured")
        rep.figure(stem, f"Predicted against measured, one panel per predictor (every theorem at its "
                         f"pre-registered epsilon, and the pilot runs): time speed-up over full Muon (circles) and "
                         f"iteration ratio against full (squares), measured on {_BASES[basis]} as the geometric "
                         f"mean over paired seeds with its 95% interval; hollow where the theorem does not cover "
                         f"the run; the dashed line is y = x. The predictions were written, with their SHA-256 "
                         f"digest {s.get('predictions_sha256', '')[:12]}…, before the first training run.")
    data["torch"] = {"file": str(torch_results), "summary": s}
