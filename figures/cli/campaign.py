"""``dropmuon campaign``: the regimes campaign — one closed-loop experiment per regime (minibatch,
full batch, tuned learning rates, the phase-optimal schedule, a second model), each predicting
first and measuring with power, sized for the device it runs on (torch extra)."""

from __future__ import annotations

from ._common import CLIError, check_out_folder, emit_json, parse_number
from ._torch import device, progress_flag, torch_command
from .experiment import _ci3 as _ci

LIST_OPTIONS = ()

#: the campaign's regimes, in order (``dropmuon.verification.torchside.campaign.REGIMES``; repeated
#: here so that ``dropmuon --help`` does not import torch; a test checks they agree)
REGIME_NAMES = ("minibatch", "full-batch", "tuned", "tuned-theory", "phase", "resnet")

HELP = "the regimes campaign: a closed loop per regime, where can Drop-Muon win? (torch)"


def add_parser(sub):
    p = sub.add_parser(
        "campaign",
        help=HELP,
        description=(
            "Run the closed loop (dropmuon experiment) in every regime, one after the other: "
            + ", ".join(REGIME_NAMES) + ". Each regime writes its predictions before its first run and "
            "resumes when re-run; --out/campaign.json sums up the time speed-up, per-step speed-up and "
            "iteration ratio of every schedule against full Muon, with intervals, and each predictor's "
            "prediction, drawn in --out/campaign.png and .pdf. On a GPU the regimes take the paper's "
            "width and batch sizes (--list prints both); the same command runs the whole campaign."
        ),
    )
    p.add_argument("--regimes", default=",".join(REGIME_NAMES),
                   help=f"comma-separated regimes (default all: {','.join(REGIME_NAMES)})")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--seeds", default=None,
                   help="override every regime's seed count (e.g. 2 for a dry run; the default counts come "
                        "from the power analysis)")
    p.add_argument("--out", default="results/campaign", help="results folder (default results/campaign)")
    p.add_argument("--no-resume", action="store_true", help="re-run tasks whose results exist")
    p.add_argument("--list", action="store_true", help="print the regimes and their settings on this device, run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--keep-denormals", action="store_true", help="do not flush subnormal floats while timing")
    p.add_argument("--stop-after", default=None, choices=["calibration", "tuning"],
                   help="run each regime only up to its calibration (times the layers: wants an idle machine) or "
                        "its learning-rate tuning (scored in iterations: any machine), before its predictions; "
                        "re-run without it to go on")
    p.add_argument("--json", action="store_true", help="print the campaign record as JSON")
    p.set_defaults(run=run)
    return p


def _regimes(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise CLIError("--regimes is empty; name at least one of " + ", ".join(REGIME_NAMES))
    for n in names:
        if n not in REGIME_NAMES:
            raise CLIError(f"unknown regime {n!r}; choose from: {', '.join(REGIME_NAMES)}")
    if len(set(names)) != len(names):
        raise CLIError(f"--regimes names a regime twice: {text}")
    return names


@torch_command
def run(args) -> int:
    from dropmuon.verification.torchside.campaign import REGIMES, regime_settings, run_campaign

    names = _regimes(args.regimes)
    dev = device(args.device)
    seeds = parse_number("--seeds", args.seeds, int, positive=True)
    if args.list:
        listing = {n: {"about": REGIMES[n]["about"], "settings": regime_settings(n, dev)} for n in names}
        if args.json:
            emit_json({"device": dev, "regimes": listing})
            return 0
        for n, r in listing.items():
            print(f"{n}: {r['about']}")
            print("  " + ", ".join(f"{k} {v}" for k, v in r["settings"].items()))
        return 0
    check_out_folder("--out", args.out)
    rec = run_campaign(names, device=dev, out=args.out, progress=progress_flag(args), resume=not args.no_resume,
                       overrides=None if seeds is None else {"seeds": seeds}, stop_after=args.stop_after)
    if args.stop_after is not None:
        if args.json:
            emit_json(dict(rec, out=str(args.out)))
            return 0
        for n, r in rec["regimes"].items():
            lr = r.get("tuned_lr")
            print(f"{n}: stopped after the {args.stop_after}"
                  + (": tuned rates " + ", ".join(f"{s} {v:g}" for s, v in lr.items()) if lr else "")
                  + f" ({args.out}/{n}/)")
        print("re-run without --stop-after to register the predictions and run the evaluation seeds")
        return 0
    from dropmuon.figures.style import save_figure
    from dropmuon.figures.torch_plots import plot_campaign

    rec["figure"] = [str(p) for p in save_figure(plot_campaign(rec["rows"]), f"{args.out}/campaign")]
    if args.json:
        emit_json(dict(rec, out=str(args.out)))
        return 0
    print_rows(rec["rows"])
    print(f"\nresults: {args.out}/campaign.json, each regime's experiment in {args.out}/<regime>/; figure: "
          f"{args.out}/campaign.png (.pdf)")
    return 0


def print_rows(rows) -> None:
    """The campaign's table: per regime and schedule, speed-ups over full Muon with intervals."""
    print(f"{'regime':<13s} {'schedule':<14s} {'reached':>7s} {'per-step speed-up':>25s} "
          f"{'iteration speed-up':>25s} {'time speed-up [95% CI]':>25s} decided")
    for r in rows:
        if r["schedule"] == "full":
            continue
        print(f"{r['regime']:<13s} {r['schedule']:<14s} {r['reached']:>3d}/{r['runs']:<3d} "
              f"{_ci(r['speedup_per_step']):>25s} {_ci(r['iterations_ratio']):>25s} {_ci(r['speedup_time']):>25s} "
              f"{r['speedup_time'].get('decided') or '-'}")
    print("speed-ups: full Muon's / the schedule's, paired by seed (geometric mean, 95% t-interval); a schedule "
          "wins only where its per-step speed-up times its iteration speed-up exceeds 1")
