"""``dropmuon sweep CONFIG.toml``: a grid of problems × theorems × distributions × seeds, run on
local processes or a Dask cluster, resumable, ending in one table (CSV and JSON)."""

from __future__ import annotations

from ._common import add_execution_options, check_out_folder, emit_json, parse_execution

LIST_OPTIONS = ()

HELP = "run a grid of bound checks from a TOML file (local processes or Dask), one table at the end"


def add_parser(sub):
    p = sub.add_parser("sweep", help=HELP, description=(
        "Expand the grid of a sweep configuration (problems x theorems x distributions x seeds; see "
        "docs/sweep-example.toml and dropmuon.verification.runs.sweep), check each point, save each result as it arrives "
        "(a re-run resumes), and write OUT/table.csv and OUT/table.json. Exit status 1 if any check fails."))
    p.add_argument("config", help="the sweep's TOML file")
    add_execution_options(p, out_default="results/sweep-NAME",
                          out_help="results folder (tasks/ for the points, table.csv, table.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print the summary and the table's paths as JSON")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    from dropmuon.verification.runs.sweep import load_sweep, run_sweep

    cfg = load_sweep(args.config)
    out = args.out if args.out is not None and args.out != "results/sweep-NAME" else f"results/sweep-{cfg.name}"
    check_out_folder("--out", out)
    res = run_sweep(cfg, out, progress=False if args.no_progress else None, **parse_execution(args))
    s = res["summary"]
    if args.json:
        emit_json({"summary": s, "table_csv": str(res["table_csv"]), "table_json": str(res["table_json"])})
    else:
        print(f"sweep {cfg.name}: {s['points']} grid points, {s['checks']} checks: {s['holds']} hold, "
              f"{s['violated']} violated, {s['within_tolerance']} within tolerance, {s['inconclusive']} inconclusive; "
              f"{s['not_applicable']} not applicable; tightness observed/bound median {_g(s['ratio_median'])}, "
              f"max {_g(s['ratio_max'])}")
        print(f"table: {res['table_csv']} and {res['table_json']}")
    return 1 if s["failed"] else 0


def _g(x):
    return "-" if x is None else f"{x:.4g}"
