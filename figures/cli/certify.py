"""``dropmuon certify``: the exact worst case of T1's left-hand side over separable Frobenius
problems by performance estimation (an SDP), beside T1's bound, with the worst-case function run
through Drop-Muon to confirm it is attained (docs/certify.md)."""

from __future__ import annotations

from ._common import CLIError, emit_json, parse_floats, parse_number

LIST_OPTIONS = ("--L", "--pi", "--start-probs")

HELP = "exact worst case of a theorem's left-hand side (PEP/SDP) against its bound"


def add_parser(sub):
    p = sub.add_parser(
        "certify",
        help=HELP,
        description=(
            "Exact worst case of T1 (smooth-deterministic) over separable problems with Frobenius layers "
            "(A1 in Lipschitz form), for given L, sampling and K, by a (K+1)-point performance-estimation SDP "
            "per layer (docs/certify.md); compared with T1's bound and confirmed by running Drop-Muon on the "
            "interpolated worst-case function. Per-layer values are comma-separated, layer 1 (input) first."
        ),
    )
    p.add_argument("--theorem", default="smooth-deterministic",
                   help="theorem name (only smooth-deterministic has linear steps; default)")
    p.add_argument("--L", metavar="X1,X2,...", help="layer-wise smoothness constants L_i")
    p.add_argument("--pi", metavar="X1,X2,...", help="inclusion probabilities pi_i in (0,1] (independent layers)")
    p.add_argument("--start-probs", metavar="X1,X2,...", help="RPT start probabilities p_s (instead of --pi)")
    p.add_argument("--K", help="number of iterations K >= 1")
    p.add_argument("--statement", default="rate", choices=("weighted", "rate"), help="which statement (default rate)")
    p.add_argument("--beta", help="momentum weight on the new gradient in (0,1] (default 1: T1's algorithm)")
    p.add_argument("--delta0", default="1", help="initial gap Delta0 (default 1; the worst case is linear in it)")
    p.add_argument("--solver", default="CLARABEL", help="SDP solver shipped with cvxpy: CLARABEL (default) or SCS")
    p.add_argument("--no-attain", action="store_true", help="skip running Drop-Muon on the worst-case function")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    import warnings

    from dropmuon.verification.certify import certify

    if args.L is None:
        raise CLIError("--L (the smoothness constants, one per layer) is required")
    if args.K is None:
        raise CLIError("--K (the number of iterations) is required")
    K = parse_number("--K", args.K, int)
    beta = parse_number("--beta", args.beta) if args.beta is not None else 1.0
    delta0 = parse_number("--delta0", args.delta0)
    with warnings.catch_warnings():  # the solver's accuracy is reported in the status and duality gap
        warnings.simplefilter("ignore", UserWarning)
        c = certify(args.theorem, L=parse_floats("--L", args.L), K=K, pi=parse_floats("--pi", args.pi),
                    start_probs=parse_floats("--start-probs", args.start_probs), statement=args.statement,
                    beta=beta, Delta0=delta0, solver=args.solver, attain=not args.no_attain)
    if args.json:
        emit_json(c.to_dict())
        return 0
    print(f"T1 {c.theorem} [{c.statement}], K = {c.K}, {c.distribution}, beta = {c.beta:g}, Delta0 = {c.Delta0:g}")
    print(f"  exact worst case    = {c.worst_case:.6g}  (layer {c.layer}; separable Frobenius class)")
    print(f"  T1 bound            = {c.bound:.6g}" + ("" if c.bound_covers else "  (T1 does not cover beta < 1: reference only)"))
    print(f"  worst case / bound  = {c.ratio:.6g}")
    if c.closed_form is not None:
        print(f"  closed form         = {c.closed_form:.6g}  (W(pi,K) = 2(1-(1-pi)^K)/(pi K), docs/certify.md)")
    print(f"  solver {c.solver}: {c.status}, duality gap {c.duality_gap:.2g}, "
          f"infeasibility primal {c.residuals['primal_infeasibility']:.2g} dual {c.residuals['dual_infeasibility']:.2g}")
    if c.attained is not None:
        print(f"  Drop-Muon on the witness: {c.attained:.6g} ({c.attained_method})")
        print(f"  {c.message}")
    return 0
