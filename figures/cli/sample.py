"""``dropmuon sample``: the optimal layer-sampling distribution for given smoothness constants and
per-layer costs, and its total cost against full updates and uniform index sampling."""

from __future__ import annotations

import numpy as np

from ._common import CLIError, emit_json, parse_floats, parse_number

LIST_OPTIONS = (
    "--L", "--costs", "--L0", "--L1", "--activation-costs", "--weight-costs", "--update-costs",
    "--start-probs", "--inclusion", "--set-probs",
)

HELP = "optimal layer-sampling distribution and its speed-up"


def add_parser(sub):
    p = sub.add_parser(
        "sample",
        help=HELP,
        description=(
            "Which layers should Drop-Muon update, how often, and how much does it save? Minimises "
            "total cost = iterations(pi) x expected cost per iteration (docs/sampling.md). Per-layer "
            "values are comma-separated, layer 1 (input) first. --theorem optimises any registered "
            "theorem's own K(pi) numerically instead of a built-in objective."
        ),
    )
    p.add_argument("--L", metavar="L1,L2,...", help="layer-wise smoothness constants (max, sum)")
    p.add_argument("--costs", metavar="C1,C2,...", help="cost per layer update (lumped linear model)")
    p.add_argument("--forward-cost", help="cost F paid every iteration (default 0)")
    p.add_argument("--activation-costs", metavar="A1,...", help="full model: backward through activations a_j")
    p.add_argument("--weight-costs", metavar="W1,...", help="full model: weight gradients w_j")
    p.add_argument("--update-costs", metavar="U1,...", help="full model: optimizer updates u_j")
    p.add_argument("--family", default="rpt", help="rpt | independent | subsets | fixed (default rpt)")
    p.add_argument("--objective", default="max", help="max (T1) | sum (T1') | l0l1 (T2) (default max)")
    p.add_argument("--method", default="auto",
                   help="auto | closed-form | lp | enumerate | cvxpy | scipy | grid (default auto)")
    p.add_argument("--theorem", help="optimise this registered theorem's own K(pi) (numeric; needs --delta0, --eps)")
    p.add_argument("--statement", help="with --theorem: the statement defining K (default its rate statement)")
    p.add_argument("--constant", action="append", metavar="NAME=X1,X2,...",
                   help="with --theorem: another per-layer constant, e.g. sigma=0.5,0.1 (repeatable)")
    p.add_argument("--L0", metavar="X1,...", help="(L0,L1) constants L0_i (objective l0l1)")
    p.add_argument("--L1", metavar="X1,...", help="(L0,L1) constants L1_i (objective l0l1)")
    p.add_argument("--delta0", help="initial gap Delta0 (with --eps: K in iterations)")
    p.add_argument("--eps", help="target accuracy epsilon")
    p.add_argument("--start-probs", metavar="P1,...", help="family fixed: an RPT start distribution")
    p.add_argument("--inclusion", metavar="PI1,...", help="family fixed: independent inclusion probabilities")
    p.add_argument("--sets", help="family fixed: subsets as '1,2,3;2,3;3' (1-based layers)")
    p.add_argument("--set-probs", metavar="Q1,...", help="family fixed: probabilities of --sets")
    p.add_argument("--seed", default="0", help="seed of the scipy multi-start (default 0)")
    p.add_argument("--starts", default="8", help="number of scipy starts (default 8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    return p


def _costs(args):
    from dropmuon.theory import CostModel

    full = {k: parse_floats(o, getattr(args, k)) for k, o in [
        ("activation_costs", "--activation-costs"), ("weight_costs", "--weight-costs"),
        ("update_costs", "--update-costs")]}
    F = parse_number("--forward-cost", args.forward_cost)
    c = parse_floats("--costs", args.costs)
    if c is not None and any(v is not None for v in full.values()):
        raise CLIError("give either --costs (one number per layer) or the full model "
                       "(--weight-costs with optional --activation-costs, --update-costs), not both")
    if c is not None:
        return c, F
    if full["weight_costs"] is None:
        if any(v is not None for v in full.values()):
            raise CLIError("the full cost model needs --weight-costs")
        raise CLIError("--costs (or the full model with --weight-costs) is required")
    w = full["weight_costs"]
    a = full["activation_costs"] or [0.0] * len(w)
    u = full["update_costs"] or [0.0] * len(w)
    return CostModel(0.0 if F is None else F, a, w, u), None


def _fixed(args, b):
    from dropmuon.theory import RPT, Independent, SubsetDistribution

    given = [x for x in (args.start_probs, args.inclusion, args.sets) if x is not None]
    if len(given) != 1:
        raise CLIError("family fixed needs exactly one of --start-probs, --inclusion or --sets (with --set-probs)")
    if args.start_probs is not None:
        return RPT(parse_floats("--start-probs", args.start_probs))
    if args.inclusion is not None:
        return Independent(parse_floats("--inclusion", args.inclusion))
    sets = []
    for k, part in enumerate(args.sets.split(";"), start=1):
        try:
            sets.append([int(t) for t in part.split(",") if t.strip()])
        except ValueError:
            raise CLIError(f"--sets: set {k} is {part!r}, not comma-separated layer numbers") from None
    probs = parse_floats("--set-probs", args.set_probs)
    if probs is None:
        raise CLIError("--sets needs --set-probs")
    return SubsetDistribution(b, sets, probs)


def run(args) -> int:
    from dropmuon.solvers import optimal_sampling

    costs, F = _costs(args)
    L = parse_floats("--L", args.L)
    nb = len(costs) if isinstance(costs, list) else costs.nlayers
    dist = _fixed(args, nb) if args.family == "fixed" else None
    for opt, val in (("--start-probs", args.start_probs), ("--inclusion", args.inclusion), ("--sets", args.sets)):
        if val is not None and args.family != "fixed":
            raise CLIError(f"{opt} is only used with --family fixed")
    extra = {}
    if args.theorem is None and (args.statement is not None or args.constant):
        raise CLIError("--statement and --constant go with --theorem")
    for item in args.constant or []:
        name, sep, values = item.partition("=")
        if not sep or not name.strip():
            raise CLIError(f"--constant is {item!r}; give NAME=X1,X2,...")
        extra[name.strip()] = parse_floats(f"--constant {name.strip()}", values)
    more = {} if args.theorem is None else {"theorem": args.theorem, "statement": args.statement,
                                             "constants": extra or None}
    r = optimal_sampling(
        L,
        costs,
        **more,
        family=args.family,
        objective=args.objective,
        method=args.method,
        forward_cost=F,
        L0=parse_floats("--L0", args.L0),
        L1=parse_floats("--L1", args.L1),
        Delta0=parse_number("--delta0", args.delta0),
        epsilon=parse_number("--eps", args.eps),
        distribution=dist,
        seed=parse_number("--seed", args.seed, int, minimum=0),
        starts=parse_number("--starts", args.starts, int),
    )
    record = r.to_dict()
    if args.json:
        emit_json(record)
        return 0
    _print_text(r)
    return 0


def _vec(x):
    return "(" + ", ".join("-" if not np.isfinite(v) else f"{v:.4g}" for v in x) + ")"


def _print_text(r):
    print(f"family {r.family}, objective {r.objective}, method {r.method}: {r.status}")
    print(f"  {r.message}")
    if r.start_probs is not None:
        print(f"  start probabilities p   = {_vec(r.start_probs)}")
    if r.lowest_probs is not None:
        print(f"  lowest-layer probs      = {_vec(r.lowest_probs)}")
        print(f"  include probs above it  = {_vec(r.include_probs)}")
    print(f"  inclusion probs pi      = {_vec(r.inclusion)}")
    print(f"  iterations K            = {r.iterations:.6g} ({r.iterations_unit})")
    print(f"  expected cost per step  = {r.expected_cost:.6g}")
    print(f"  total cost              = {r.total_cost:.6g}")
    # the speed-up is this distribution's over the reference (its total cost ÷ this one's), not the
    # reference's own: say so on the line
    print(f"  full updates            = {r.full_total_cost:.6g}  (this distribution is {r.speedup_vs_full:.4g}x faster)")
    print(f"  uniform index sampling  = {r.uniform_total_cost:.6g}  (this distribution is {r.speedup_vs_uniform:.4g}x "
          "faster)")
    if r.full_is_optimal is not None:
        print(f"  full updates optimal    : {'yes' if r.full_is_optimal else 'no'}")
    if r.sets is not None and len(r.sets) <= 16:
        print("  sets: " + ", ".join(f"{{{','.join(map(str, S))}}}:{q:.4g}" for S, q in zip(r.sets, r.set_probs)))
