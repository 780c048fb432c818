"""``dropmuon report`` and ``dropmuon figures``: the built-in report (Markdown + HTML + figures) and
the figures alone."""

from __future__ import annotations

from ._common import CLIError, check_out_folder, emit_json, parse_number

LIST_OPTIONS = ()

HELP = "write the built-in report (optimal distributions, verification, figures) into a folder"


def _common(p):
    p.add_argument("--out", default="out", help="output folder (default out/)")
    p.add_argument("--quick", action="store_true",
                   help="quick verification suite and coupling (≈ 30 s) instead of the standard ones (≈ 3 min)")
    p.add_argument("--torch-results", default="auto",
                   help="an experiment JSON of dropmuon experiment; 'auto' (default): the newest "
                        "results/*/experiment.json if any; 'none': leave the torch section empty")
    p.add_argument("--seed", default="0", help="seed of the verification suite (default 0)")
    p.add_argument("--suite-results", default=None, metavar="DIR",
                   help="the verification suite's result files (dropmuon verify --out DIR, same suite and seed): "
                        "finished checks are read back instead of run again, new ones saved there (and the "
                        "coupling table, in DIR/coupling-table/)")
    p.add_argument("--columns", default="1", help="figure width: 1 (one column, default) or 2 (page width)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")


def add_parser(sub):
    p = sub.add_parser("report", help=HELP, description=(
        "Compute the optimal sampling distributions of the built-in (and measured) constant profiles, bound "
        "curves, the verification suite and the inexact-LMO coupling; write every figure as PDF and PNG and "
        "the report as OUT/report.md and OUT/report.html (numbers in OUT/report.json)."))
    _common(p)
    p.set_defaults(run=run, figures_only=False)
    q = sub.add_parser("figures", help="write the analytic figures (and the torch ones, with results) as PDF and PNG",
                       description="The report's figures alone, into OUT/figures/.")
    _common(q)
    q.set_defaults(run=run, figures_only=True)
    return p


def run(args) -> int:
    from dropmuon.figures.report import build_report

    seed = parse_number("--seed", args.seed, int, minimum=0)
    columns = parse_number("--columns", args.columns, int)
    if columns not in (1, 2):
        raise CLIError(f"--columns must be 1 or 2; got {args.columns}")
    check_out_folder("--out", args.out)
    tr = None if args.torch_results == "none" else args.torch_results
    if args.suite_results is not None:
        check_out_folder("--suite-results", args.suite_results)
    res = build_report(args.out, quick=args.quick, torch_results=tr, seed=seed, columns=columns,
                       progress=False if args.no_progress else None, figures_only=args.figures_only,
                       suite_results=args.suite_results)
    figures = [str(p) for p in res["figures"]]
    if args.json:
        emit_json({"report": str(res["report"]) if res["report"] else None,
                   "html": str(res["report"].with_suffix(".html")) if res["report"] else None,
                   "figures": figures, "seconds": res["seconds"], "torch_results": res["data"]["settings"]["torch_results"]})
        return 0
    n = len(figures) // 2
    if res["report"] is not None:
        print(f"wrote {n} figures (PDF and PNG) to {args.out}/figures/ in {res['seconds']:.0f} s")
        print(f"report: {res['report']}  (HTML: {res['report'].with_suffix('.html')})")
    else:
        print(f"wrote {n} figures (PDF and PNG) in {res['seconds']:.0f} s:")
        for f in figures:
            print(f"  {f}")
    return 0
