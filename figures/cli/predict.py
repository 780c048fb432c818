"""``dropmuon predict``: pre-registered predictions for a training run — per registered theorem and
per layer-sampling schedule, whether the theorem covers the run, the iteration ratio against full
updates, the per-step speed-up of the cost model, the predicted speed-up and the ranking — from a
``dropmuon estimate --json`` file, before any training (torch-free)."""

from __future__ import annotations

import argparse
import textwrap

from ._common import CLIError, emit_json, parse_number

LIST_OPTIONS = ()

HELP = "pre-registered predictions for a run: which schedule each theorem says wins (no training)"

_EPILOG = """\
What each output means (per theorem, per schedule):
  applies     whether the theorem's setting covers this run (theory.Theorem.covers), decided per
              schedule from the run's settings: exact or minibatch gradients (--batch), momentum
              (--momentum), exact or Newton-Schulz LMO (--exact-lmo), the radius rule
              (--radius-rule), full or partial updates, i.i.d. or time-varying sampling. A theorem
              that does not cover the run still predicts, labelled 'no', with its reasons.
  K ratio     K(pi, eps) / K(full, eps): the theorem's iterations to reach eps with the schedule's
              inclusion probabilities pi over those of full updates, at the theorem's own tuned
              step parameters, real K before rounding up. The statement is the one the solvers
              compare distributions with (T1: max_i(L_i/pi_i) / max_i L_i; T1': sum_i L_i/pi_i /
              sum_i L_i; T2: its 'unweighted' K = 2 D0 W/eps + 2 D0 A'/eps^2), else the rate
              statement (T3, T4: by bisection on the tuned bound).
  (eps->0)    the same ratio as eps -> 0, from the leading term of K(eps): equal to the ratio at
              eps for T1 and T1'; for T3/T4 with noise S1(pi)/S1(full), S1 = sum_i (1+delta_i)
              L_i/pi_i, since K ~ 256 D0 S1 R^2/(eps (1 - max delta))^4 with R = sum_i rho_i sigma_i
              (docs/theory.md, section T3, 'Iterations as eps -> 0').
  step        E cost(full) / E cost(pi): the per-step speed-up of the file's cost model (for
              epoch-shift averaged over its cycle).
  speed-up    step speed-up / K ratio: the predicted wall-clock speed-up over full updates.
  rank        1 = the largest predicted speed-up (ties share a rank); the winner is rank 1.
  at run      (JSON: at_run_parameters) the ratio at the run's own eta = --lr and beta = 1 -
              momentum for theorems with step parameters: such a bound has a floor (its limit as
              K -> infinity) and K = infinity (null) when eps lies below it.
eps: the accuracy target of each theorem's statement (eps for the sum of dual gradient norms,
eps^2 for T1's sum of squares). Default: 0.1 x sum_i gnorms_i[0], a tenth of the initial
gradient's total dual (nuclear) norm recorded in the file, fixed before any training; printed.
epoch-shift is not i.i.d.: no theorem gives its K (ratio null). A constant a theorem needs that
the file lacks (sigma, rho, delta, Delta0, L0, L1) is listed as missing and that theorem's numbers
are null; ratios that do not depend on Delta0 are given without it. Per-record fields read: L (or
--L-source L_probe), costs, L0, L1, sigma (rescaled by sqrt(file batch / --batch)), rho, delta,
Delta0, gnorms, batch, momentum, nesterov, lr. Exit status: 0, or 2 for bad input (a missing or
bad file, an unknown schedule, a bad eps)."""


def add_parser(sub):
    from dropmuon.verification.forecasting.forecast import EPS_FRACTION, L_SOURCES, PREDICT_SCHEDULES, RADIUS_RULES

    p = sub.add_parser(
        "predict",
        help=HELP,
        description=textwrap.fill(
            "Pre-register what the theory predicts for a training run before running it: for every "
            "registered theorem and every layer-sampling schedule, whether the theorem covers the run, "
            "the predicted iteration ratio against full updates, the cost model's per-step speed-up, "
            "their quotient (the predicted speed-up) and the ranking of the schedules, from the "
            "constants and costs of a 'dropmuon estimate --json' file. Needs no torch.", 96),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--constants", required=True, metavar="FILE",
                   help="a 'dropmuon estimate --json' file (per-layer records)")
    p.add_argument("--schedules", default=",".join(PREDICT_SCHEDULES), metavar="S1,S2,...",
                   help=f"schedules to predict, from {', '.join(PREDICT_SCHEDULES)} (default: all)")
    p.add_argument("--theorem", action="append", metavar="NAME",
                   help="predict for this registered theorem only (repeatable; default: every one)")
    p.add_argument("--eps", help=f"accuracy target eps (default {EPS_FRACTION:g} x sum_i gnorms_i[0] of the file)")
    p.add_argument("--batch", metavar="N|full",
                   help="the run's minibatch size, or 'full' for exact gradients (default: the file's batch)")
    p.add_argument("--momentum", metavar="MU",
                   help="the run's PyTorch momentum mu, beta = 1 - mu (default: the file's, else 0.95)")
    p.add_argument("--lr", help="the run's learning rate, read as the theorems' eta (default: the file's lr)")
    p.add_argument("--radius-rule", default="common", choices=list(RADIUS_RULES),
                   help="common: one learning rate for every sampled layer (Muon); theory: radii eta/pi_i "
                        "(default common)")
    p.add_argument("--exact-lmo", action="store_true",
                   help="the run uses the exact polar factor (delta = 0) instead of Newton-Schulz")
    p.add_argument("--L-source", dest="L_source", default="L", choices=list(L_SOURCES),
                   help="the record field the theorems' L comes from (default L, the trajectory estimate; "
                        "the optimal schedules are built from L either way, as training builds them)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    return p


def _batch(text):
    if text is None or text == "full":
        return text
    return parse_number("--batch", text, int, positive=True)


def run(args) -> int:
    from dropmuon.verification.forecasting.forecast import PlannedRun, predict

    schedules = [s.strip() for s in args.schedules.split(",")]
    if any(not s for s in schedules):
        raise CLIError(f"--schedules has an empty item: {args.schedules!r}")
    eps = parse_number("--eps", args.eps, positive=True)
    mu = parse_number("--momentum", args.momentum, minimum=0)
    if mu is not None and not mu < 1:
        raise CLIError(f"--momentum must be below 1 (PyTorch's mu; beta = 1 - mu); got {args.momentum}")
    plan = PlannedRun(batch=_batch(args.batch), momentum=mu, exact_lmo=args.exact_lmo,
                      radius_rule=args.radius_rule, lr=parse_number("--lr", args.lr, positive=True))
    result = predict(args.constants, schedules, run=plan, epsilon=eps, L_source=args.L_source,
                     theorems=args.theorem)
    if args.json:
        emit_json(result)
        return 0
    print(format_text(result))
    return 0


def _num(x, fmt="{:.4g}"):
    return "-" if x is None else ("inf" if x == float("inf") else fmt.format(x))


def _vec(xs):
    return "(" + ", ".join(_num(x, "{:.3g}") for x in xs) + ")"


def format_text(p: dict) -> str:
    """The text report of a :func:`~dropmuon.verification.forecasting.forecast.predict` result: the inputs,
    one table per theorem and the winners."""
    r, inp = p["run"], p["inputs"]
    lines = [f"dropmuon predict: {inp['layers']} layers from {inp['constants']}"]
    lines.append(f"eps = {_num(p['epsilon'], '{:.6g}')}  ({p['epsilon_rule']})")
    grad = "full batch (exact gradients)" if r["full_batch"] else f"minibatch {r['batch'] or '?'}"
    lines.append(f"run: {grad} [{r['batch_source']}]; momentum mu = {r['momentum']:g}, beta = {r['beta']:g} "
                 f"[{r['momentum_source']}]{', Nesterov' if r['nesterov'] else ''}; "
                 f"{'exact LMO' if r['exact_lmo'] else 'Newton-Schulz LMO (inexact)'}; radius rule {r['radius_rule']}; "
                 f"lr {_num(r['lr'], '{:g}')} [{r['lr_source']}]")
    for note in r["notes"]:
        lines.append(f"  note: {note}")
    lines.append(f"L for the theorems: the records' {inp['L_source']!r} = {_vec(inp['constants_used'].get('L', []))}; "
                 f"Delta0 = {_num(inp['Delta0'], '{:.6g}')}")
    for n, src in inp["constants_source"].items():
        if n != "L":
            lines.append(f"  {n} = {_vec(inp['constants_used'][n])}  [{src}]")
    for n, why in inp["constants_absent"].items():
        lines.append(f"  {n}: absent ({why})")
    lines.append("schedules (start probabilities p; expected seconds per step; step speed-up over full):")
    for name, s in p["schedules"].items():
        tail = "" if s["iid"] else "  (not i.i.d.: cycle average)"
        lines.append(f"  {name:<12s} p = {_vec(s['start_probs'])}  {s['seconds_per_step']:.4g} s  "
                     f"{s['step_speedup']:.4g}x{tail}")
    head = (f"  {'schedule':<12s} {'applies':>7s} {'K ratio':>9s} {'(eps->0)':>9s} {'step':>7s} {'speed-up':>9s} "
            f"{'(eps->0)':>9s} {'rank':>4s}")
    for t in p["theorems"]:
        lines.append("")
        lines.append(f"{t['label']} {t['theorem']}: {t['title']}")
        lines.append(f"  K from statement {t['statement']!r} ({t['statement_description']}) <= "
                     f"{t['target_expression'].replace('epsilon', 'eps').replace('**', '^')}")
        lines.append(head)
        for name, row in t["schedules"].items():
            rank = "-" if row["rank"] is None else str(row["rank"])
            lines.append(f"  {name:<12s} {'yes' if row['applies'] else 'no':>7s} {_num(row['iterations_ratio']):>9s} "
                         f"{_num(row['iterations_ratio_limit']):>9s} {_num(row['step_speedup']):>7s} "
                         f"{_num(row['predicted_speedup']):>9s} {_num(row['predicted_speedup_limit']):>9s} {rank:>4s}")
        groups: dict = {}
        for name, row in t["schedules"].items():
            if not row["applies"]:
                groups.setdefault(tuple(row["reasons"]), []).append(name)
        for reasons, names in groups.items():
            lines.append(f"  does not cover {', '.join(names)}: {'; '.join(reasons)}")
        if t["missing"]:
            lines.append(f"  missing: {'; '.join(t['missing'])}")
        nulls = {w for row in t["schedules"].values() for w in row["why_null"]}
        for w in sorted(nulls):
            lines.append(f"  null: {w}")
        notes = {row["at_run_parameters"].get("note") for row in t["schedules"].values()
                 if row["at_run_parameters"] is not None} - {None}
        for note in sorted(notes):
            lines.append(f"  at the run's parameters: {note}")
        for name, row in t["schedules"].items():
            a = row["at_run_parameters"]
            if a is None:
                continue
            given = ", ".join(f"{k} = {v:g}" for k, v in a["parameters"].items())
            if a["floor"] is None:  # not computed: say why
                lines.append(f"  at the run's parameters ({given or '-'}), {name}: {'; '.join(a['why_null'])}")
                continue
            k, kf = (_num(x) if x is not None else "inf" for x in (a["K"], a["K_full"]))
            lines.append(f"  at the run's parameters ({given}), {name}: K = {k} (full {kf}; bound's floor "
                         f"{_num(a['floor'])}, target {_num(t['target'])}), K ratio {_num(a['iterations_ratio'])}")
    lines.append("")
    lines.append("predicted winners (largest predicted speed-up at eps; as eps -> 0):")
    for name, w in p["winners"].items():
        t = next(x for x in p["theorems"] if x["theorem"] == name)
        win = w["winner"]
        at = "-" if win is None else (f"{win} ({t['schedules'][win]['predicted_speedup']:.4g}x; "
                                      f"{'covered' if w['covers_winner'] else 'not covered'})")
        lim = w["winner_limit"]
        lim_s = "-" if lim is None else f"{lim} ({t['schedules'][lim]['predicted_speedup_limit']:.4g}x)"
        lines.append(f"  {w['label']:<3s} {name:<24s} {at}; eps -> 0: {lim_s}")
    return "\n".join(lines)
