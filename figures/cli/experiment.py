"""``dropmuon experiment``: the closed loop — measured constants and costs → optimal sampling →
training runs of every schedule over several seeds → speed-ups over full Muon with confidence
intervals (torch extra)."""

from __future__ import annotations

from ._common import (CLIError, add_execution_options, check_out_folder, emit_json, parse_execution, parse_floats,
                      parse_number)
from ._torch import add_common, add_compile, add_radius_rule, parse_common, progress_flag, radius_rule_of, torch_command
from .train import add_run_limits, parse_run_limits

LIST_OPTIONS = ()

#: Options a ``--preset`` fills when they are not given on the command line (argparse dest names).
PRESET_OPTIONS = ("model", "data", "width", "batch", "lr", "seeds", "target_acc", "max_steps", "eval_every")
_UNSET = object()

HELP = "closed loop: measure, solve, train every schedule over seeds, compare (torch)"


def add_parser(sub):
    p = sub.add_parser(
        "experiment",
        help=HELP,
        description=(
            "Measure a model's layer-wise constants and per-layer costs (--model: the paper's CNN "
            "by default, a built-in model, or yours as PACKAGE.MODULE:FACTORY; or read them with "
            "--constants), compute the max- and sum-form optimal start distributions, and train "
            "full Muon, uniform index sampling, both optima and the epoch-shift schedule with "
            "several seeds to a target training metric (accuracy by default). Prints wall-clock and iterations to "
            "target, accuracies, and speed-ups over full Muon (paired by seed, geometric mean, "
            "95% t-interval), and which form's prediction picked the measured winner. Every run "
            "is saved atomically under --out; a re-run resumes."
        ),
    )
    add_common(p)
    add_compile(p)
    add_radius_rule(p)
    p.add_argument("--seeds", default="5", help="number of training seeds, starting at --seed (default 5)")
    p.add_argument("--samplings", default="full,uniform,optimal-max,optimal-sum,epoch-shift",
                   help="comma-separated schedules (full is required) from full, uniform, optimal-max, optimal-sum, "
                        "epoch-shift and phase-optimal (the max-form optimum of each phase's own constants, measured "
                        "per phase along a full-Muon run; see --phases)")
    p.add_argument("--phases", default="4",
                   help="phases of the phase-optimal schedule: full Muon's steps to the target split into this many "
                        "equal parts, each with its own optimal sampling (default 4)")
    p.add_argument("--train-examples", default=None, metavar="N",
                   help="train on the first N training examples only (a fixed subset; e.g. to make --batch full "
                        "affordable)")
    p.add_argument("--lr-grid", default=None, metavar="LR,LR,...",
                   help="tune each schedule's learning rate over this grid (e.g. 0.025,0.05,0.1,0.2,0.4) on "
                        "--tune-seeds seeds of their own before the evaluation runs, by the median iterations to the "
                        "target; the evaluation runs each schedule at its tuned rate (with --radius-rule, the base "
                        "rate of that rule is tuned)")
    p.add_argument("--tune-seeds", default="2", help="seeds per grid point of --lr-grid (default 2)")
    p.add_argument("--constants", default=None, help="JSON from dropmuon estimate --json instead of measuring")
    p.add_argument("--estimate-steps", default="20", help="trajectory steps for the constants (default 20)")
    p.add_argument("--repeats", default="7", help="timing rounds for the costs (default 7)")
    p.add_argument("--out", default="results/experiment", help="results folder (default results/experiment)")
    p.add_argument("--no-resume", action="store_true", help="re-run tasks whose results exist")
    p.add_argument("--past-target", action="store_true",
                   help="train every run on to --max-steps after it reaches the target (the time to target is the "
                        "same; the theorems' running average, which may still rise at the target, can then fall to "
                        "the summary's eps^2)")
    p.add_argument("--no-pilot", action="store_true",
                   help="skip the pilot runs (a short run of every schedule on a seed of its own before the "
                        "evaluation runs, the empirical predictor scored beside the theorems)")
    add_execution_options(p, results=False)
    add_run_limits(p, target_default="0.98")
    p.add_argument("--preset", default=None, choices=["paper-gpu"], metavar="paper-gpu",
                   help="named settings for the options not given: paper-gpu = the CNN at full width on the "
                        "28x28 MNIST images, batch 512, 40 seeds on a GPU; on a CPU the same at width 0.25, "
                        "batch 128, 8 seeds (docs/torch.md lists every value)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    # remember the usual defaults, then mark the preset's options unset so that a preset fills
    # exactly the ones the user did not give
    p.set_defaults(run=run, _defaults={k: p.get_default(k) for k in PRESET_OPTIONS},
                   **{k: _UNSET for k in PRESET_OPTIONS})
    return p


def resolve_preset(args, dev: str) -> dict | None:
    """Fill the options the user did not give: from ``--preset`` on device ``dev`` when one is
    named, else with their usual defaults. Returns the preset's settings (``None`` without one)."""
    from dropmuon.verification.torchside.experiment import preset_settings

    preset = preset_settings(args.preset, dev) if args.preset else None
    for k in PRESET_OPTIONS:
        if getattr(args, k) is _UNSET:
            v = preset[k] if preset and k in preset else args._defaults[k]
            setattr(args, k, v if v is None else str(v))
    return preset


@torch_command
def run(args) -> int:
    from dropmuon.verification.torchside.experiment import ExperimentConfig, run_experiment

    from ._torch import device

    check_out_folder("--out", args.out)
    preset = resolve_preset(args, device(args.device))
    dev, seed, batch, width, lr = parse_common(args)
    nseeds = parse_number("--seeds", args.seeds, int, positive=True)
    limits = parse_run_limits(args)
    if limits["target_acc"] is None:
        raise CLIError("--target-acc is needed: the experiment measures time to a target accuracy")
    cfg = ExperimentConfig(
        model=args.model, ns_dtype=args.ns_dtype,
        seeds=tuple(range(seed, seed + nseeds)),
        samplings=tuple(s.strip() for s in args.samplings.split(",") if s.strip()),
        batch=batch, lr=lr, width=width,
        estimate_steps=parse_number("--estimate-steps", args.estimate_steps, int, positive=True),
        cost_repeats=parse_number("--repeats", args.repeats, int, positive=True),
        device=dev, data=args.data, data_seed=seed, constants=args.constants,
        flush_denormals=not args.keep_denormals, channels_last=args.channels_last, compile=args.compile,
        radius_rule=radius_rule_of(args), stop_at_target=not args.past_target, pilot=not args.no_pilot,
        phases=parse_number("--phases", args.phases, int, positive=True),
        train_examples=(None if args.train_examples is None
                        else parse_number("--train-examples", args.train_examples, int, positive=True)),
        lr_grid=(None if args.lr_grid is None else tuple(parse_floats("--lr-grid", args.lr_grid))),
        tune_runs=parse_number("--tune-seeds", args.tune_seeds, int, positive=True), **limits,
    )
    if preset and not args.json:
        print(f"preset {args.preset} on {dev}: " + ", ".join(f"--{k.replace('_', '-')} {getattr(args, k)}"
                                                              for k in PRESET_OPTIONS), flush=True)
    res = run_experiment(cfg, out=args.out, progress=progress_flag(args), **parse_execution(args))
    summary = res["summary"]
    if args.json:
        emit_json(dict(summary, out=str(args.out), preset=args.preset))
        return 0
    print_summary(summary)
    print(f"\nresults: {args.out}/experiment.json (runs in {args.out}/runs/); predictions, written before the "
          f"first run: {args.out}/predictions.json (SHA-256 {summary.get('predictions_sha256')})")
    return 0


def _ci(d, fmt="{:.3f}"):
    if d["mean"] is None:
        return "-"
    if d["low"] is None:
        return fmt.format(d["mean"])
    return (fmt + " [" + fmt + ", " + fmt + "]").format(d["mean"], d["low"], d["high"])


def _ms(d, scale=1.0, fmt="{:.1f}"):
    return "-" if d["mean"] is None else fmt.format(d["mean"] * scale)


def _constants_origin(summary) -> str:
    """Where the summary's constants came from: the ``--constants`` file and the method recorded
    in it, or the trajectory estimate measured by the experiment."""
    from dropmuon.verification.forecasting.measured import describe_constants_source

    path = summary["config"].get("constants")
    if path is not None:
        return describe_constants_source(path, summary.get("L_method"))
    return "(trajectory estimate, spectral/nuclear)"


def print_summary(summary) -> None:
    """The experiment's table: one row per schedule."""
    cfg = summary["config"]
    print(f"closed loop: {cfg['model']} on {summary.get('data')} ({cfg['device']}), {len(cfg['seeds'])} seeds, "
          f"target train {summary.get('metric') or 'accuracy'} {cfg['target_acc']}, "
          f"batch {cfg['batch']}" + ("" if cfg.get("train_examples") is None else
                                     f" on the first {cfg['train_examples']} training examples")
          + f", lr {cfg['lr']}, width {cfg['width']}"
          + ("" if cfg.get("radius_rule", "common") == "common" else f", radius rule {cfg['radius_rule']} (lr/pi_i)"))
    print(f"L {_constants_origin(summary)} = (" + ", ".join(f"{x:.4g}" for x in summary["L"]) + ")")
    _print_phases(summary)
    _print_tuning(summary)
    print(f"\n{'sampling':<12s} {'start probs p':<26s} {'reached':>7s} {'iters':>6s} {'time s':>7s} "
          f"{'ms/step':>8s} {'pred':>6s} {'speed-up time [95% CI]':>25s} {'iters ratio':>11s} "
          f"{'pred max':>8s} {'pred sum':>8s} {'train':>6s} {'test':>6s}")
    for s, r in summary["rows"].items():
        p = "(" + ", ".join(f"{x:.2f}" for x in r["start_probs"]) + ")"
        pm = "-" if r["predicted_speedup_max"] is None else f"{r['predicted_speedup_max']:.3f}"
        ps = "-" if r["predicted_speedup_sum"] is None else f"{r['predicted_speedup_sum']:.3f}"
        print(f"{s:<12s} {p:<26s} {r['reached']:>3d}/{r['runs']:<3d} {_ms(r['iterations_to_target']):>6s} "
              f"{_ms(r['time_to_target_s'], 1, '{:.2f}'):>7s} {_ms(r['seconds_per_step'], 1e3):>8s} "
              f"{r['predicted_seconds_per_step'] * 1e3:>6.1f} {_ci(r['speedup_time']):>25s} "
              f"{_ci(r['speedup_iterations'], '{:.2f}').split(' ')[0]:>11s} {pm:>8s} {ps:>8s} "
              f"{_ms(r['final_train_acc'], 1, '{:.3f}'):>6s} {_ms(r['test_acc'], 1, '{:.3f}'):>6s}")
    pa = summary.get("power_analysis")
    if pa:
        print(f"\nagainst full Muon ({round(100 * pa['confidence'])}% t-interval of the time speed-up; median and "
              f"bootstrap interval beside it; seeds that would resolve a {pa['effect'] - 1:.0%} effect at this spread "
              f"with {pa['power']:.0%} power):")
        for s, r in summary["rows"].items():
            c = r["speedup_time"]
            if s == "full" or c["mean"] is None:
                continue
            boot = "" if c.get("boot_low") is None else f", bootstrap [{c['boot_low']:.3f}, {c['boot_high']:.3f}]"
            need = "" if r.get("seeds_to_resolve") is None else f"; {r['seeds_to_resolve']} seeds would resolve 10%"
            print(f"  {s:<12s} {c.get('decided', '?'):<16s} median {c.get('median') or float('nan'):.3f}{boot}"
                  f" ({c['n']} seeds{need})")
    _print_eps2(summary)
    _print_predictors(summary)
    sus = summary.get("suspect_runs")
    if sus:
        print(f"\nruns suspect of contention (the machine was shared?): {len(sus)}")
        for r in sus[:10]:
            print(f"  {r['sampling']} seed {r['seed']}: {r['reason']}")
    elif sus is not None:
        print("\nno run suspect of contention (step times consistent within and across runs)")
    v = summary["verdict"]
    print(f"\nmeasured winner (largest time speed-up over full): {v['measured_winner']}")
    for obj, label in (("max", "max-form (T1, K ∝ max L_i/π_i)"), ("sum", "sum-form (T1′, K ∝ Σ L_i/π_i)")):
        rc = v.get(f"rank_correlation_{obj}")
        rc = "" if rc is None else f"; rank correlation of predicted vs measured speed-ups {rc:+.2f}"
        print(f"  {label} predicts {v[f'predicted_winner_{obj}']}: "
              f"{'matched' if v[f'{obj}_form_matched'] else 'did not match'}{rc}")
    print("speed-up: full's time to target / this schedule's, paired by seed; iters ratio: full's iterations / "
          "this schedule's; pred: the theory's total-cost speed-up K(full)·cost(full) / K(π)·E cost(π)")


def _print_phases(summary) -> None:
    """The phase-optimal schedule: each phase's steps, constants and predicted speed-up."""
    ph = summary.get("phases")
    row = summary["rows"].get("phase-optimal")
    if not ph or row is None:
        return
    pred = summary.get("phase_predictions") or {}
    print(f"phase-optimal: {len(ph['starts'])} phases of full Muon's {ph['horizon']} steps to the target "
          f"(the last one open-ended)")
    ends = ph["starts"][1:] + [None]
    for j, (s0, s1, L) in enumerate(zip(ph["starts"], ends, ph["L"])):
        sp = pred.get("predicted_speedup_per_phase")
        probs = pred.get("start_probs_per_phase")
        extra = "" if not sp else f"; start probs ({', '.join(f'{x:.2f}' for x in probs[j])}), predicted speed-up " \
                                  f"{sp[j]:.3f}"
        print(f"  phase {j + 1}: steps {s0}..{'' if s1 is None else s1 - 1}, L = "
              f"({', '.join(f'{x:.4g}' for x in L)}){extra}")


def _print_tuning(summary) -> None:
    """The learning rates tuned per schedule, and the tuning's cost."""
    t = summary.get("tuning")
    if not t:
        return
    share = "" if t.get("share") is None else f", {t['share']:.0%} of the evaluation runs' training time"
    print(f"learning rates tuned on seeds {t['seeds']} over {t['grid']} ({t['runs']} runs, "
          f"{t['train_time_s']:.0f} s of training{share}): "
          + ", ".join(f"{s} {lr:g}" for s, lr in t["lr"].items()))
    if t.get("edge"):
        print(f"  at an end of the grid (widen it?): {', '.join(t['edge'])}")


def _print_predictors(summary) -> None:
    """Each predictor (every theorem at the pre-registered eps, and the pilot) against the
    measurement: predicted and measured speed-up and iteration ratio per schedule, the rank
    correlations and the winner."""
    scored = summary.get("predictors")
    if not scored:
        return
    share = scored.get("pilot_share")
    for basis, what in (("accuracy", "time and iterations to the target"),
                        ("lhs", "time and iterations to eps^2 on the theorems' running average")):
        rows = scored.get(basis) or []
        if not rows or not any(r["measured_speedup"]["n"] for d in rows for s, r in d["schedules"].items()
                               if s != "full"):
            print(f"\npredicted vs measured on {what}: no paired runs (see above)")
            continue
        print(f"\npredicted vs measured on {what} (predictions written before the first run; "
              f"'*': the theorem covers that run)")
        print(f"  {'predictor':<26s} {'schedule':<12s} {'speed-up pred':>13s} {'measured [95% CI]':>25s} "
              f"{'K ratio pred':>12s} {'measured [95% CI]':>25s}")
        for d in rows:
            for s, r in d["schedules"].items():
                if s == "full":
                    continue
                mark = "*" if r["applies"] else " "
                ps = "-" if r["predicted_speedup"] is None else f"{r['predicted_speedup']:.3f}"
                pr = "-" if r["predicted_iterations_ratio"] is None else f"{r['predicted_iterations_ratio']:.3f}"
                print(f"  {_who(d):<26.26s} {s:<12s} {ps:>12s}{mark} "
                      f"{_ci3(r['measured_speedup']):>25s} {pr:>12s} {_ci3(r['measured_iterations_ratio']):>25s}")
        for d in rows:
            w = d["winner"]
            sp, kd = d["spearman"], d["kendall"]
            corr = "rank correlation -" if sp["value"] is None else (
                f"Spearman {sp['value']:+.2f} [{_f(sp['low'])}, {_f(sp['high'])}], "
                f"Kendall {kd['value']:+.2f} [{_f(kd['low'])}, {_f(kd['high'])}]")
            verdict = ("-" if w["won"] is None else "won" if w["won"] else
                       "within the winner's interval" if w["within_interval"] else "did not win")
            print(f"  {_who(d):<26.26s} predicted winner {w['predicted']} (measured "
                  f"{w['measured']}: {verdict}); {corr}")
    if share is not None:
        flag = "" if share <= 0.10 else " - above the 10% aimed for: a longer experiment dilutes it"
        print(f"  the pilot's training time was {share:.1%} of the evaluation runs'{flag}")


def _who(d) -> str:
    return d["name"] if d["label"] == d["name"] else f"{d['label']} {d['name']}"


def _ci3(d) -> str:
    if d.get("mean") is None:
        return "-"
    if d.get("low") is None:
        return f"{d['mean']:.3f}"
    return f"{d['mean']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def _f(v) -> str:
    return "-" if v is None else f"{v:+.2f}"


def _print_eps2(summary) -> None:
    """The theorems' left-hand side: per schedule, iterations and seconds until the running average
    of sum_i ||grad_i f||_*^2 falls to full Muon's value at its target crossing (paired by seed)."""
    eps2 = summary.get("eps2")
    if not eps2 or all(e is None for e in eps2):
        return
    vals = ", ".join("-" if e is None else f"{e:.4g}" for e in eps2)
    print(f"\ntheorems' left-hand side: iterations until the running average over the recordings of "
          f"sum_i ||grad_i f||_*^2 falls to eps^2 = full Muon's average at its target crossing, per seed ({vals})")
    print(f"  {'sampling':<12s} {'reached':>7s} {'iters':>7s} {'time s':>7s} {'iters speed-up [95% CI]':>25s} "
          f"{'time speed-up [95% CI]':>25s} {'pred (sum)':>10s}")
    for s, r in summary["rows"].items():
        if "reached_eps2" not in r:
            continue
        ratio = r.get("predicted_iterations_ratio_sum")
        pred = "-" if not ratio else f"{1 / ratio:.3f}"
        print(f"  {s:<12s} {r['reached_eps2']:>3d}/{r['runs']:<3d} {_ms(r['iterations_to_eps2']):>7s} "
              f"{_ms(r['time_to_eps2_s'], 1, '{:.2f}'):>7s} {_ci(r['speedup_iterations_eps2']):>25s} "
              f"{_ci(r['speedup_time_eps2']):>25s} {pred:>10s}")
    print("  speed-up: full's / this schedule's, paired by seed; pred (sum): the sum-form theorem's iteration "
          "speed-up K(full)/K(pi) = sum_i L_i / sum_i L_i/pi_i; a run counts as reaching eps^2 only when its "
          "average falls to it (a run stopped at its target may end while the average still rises)")
