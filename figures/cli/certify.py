"""``dropmuon certify``: the worst case of T1's left-hand side over separable Frobenius problems,
bracketed between a function that attains it (run through Drop-Muon) and a proved upper bound (the
closed form, or a performance-estimation SDP whose dual is checked in exact arithmetic), beside T1's
bound (docs/certify.md)."""

from __future__ import annotations

from ._common import CLIError, emit_json, parse_floats, parse_number

LIST_OPTIONS = ("--L", "--pi", "--start-probs")

HELP = "worst case of a theorem's left-hand side, bracketed [attained, proved], against its bound"


def add_parser(sub):
    p = sub.add_parser(
        "certify",
        help=HELP,
        description=(
            "Worst case of T1 (smooth-deterministic) over separable problems with Frobenius layers (A1 in "
            "Lipschitz form), for given L, sampling and K, as a bracket [lower, upper]: lower is attained by a "
            "function of the class run through Drop-Muon; upper is proved — for beta = 1 by the closed form "
            "2(1-(1-pi)^K)/(pi K), for beta < 1 by a banded performance-estimation SDP (chordal cliques, "
            "scales to K = 1000+) whose dual multipliers are checked in exact rational arithmetic "
            "(docs/certify.md). 'exact' when the relative gap is <= 1e-6. A K that would not finish here is "
            "refused before any work (exit 2). Per-layer values are comma-separated, layer 1 (input) first. "
            "--theorem smooth-stochastic (T3, one layer, K <= 200, with --sigma): no exact worst case is known, so "
            "a second-moment relaxation (an upper bound, labelled as one) is reported beside T3's bound and the "
            "largest value a Monte Carlo search of test functions and noise laws attains (a lower bound)."
        ),
    )
    p.add_argument("--theorem", default="smooth-deterministic",
                   help="smooth-deterministic (T1, default: linear steps, exact) or smooth-stochastic (T3: a relaxation)")
    p.add_argument("--L", metavar="X1,X2,...", help="layer-wise smoothness constants L_i")
    p.add_argument("--pi", metavar="X1,X2,...", help="inclusion probabilities pi_i in (0,1] (independent layers)")
    p.add_argument("--start-probs", metavar="X1,X2,...", help="RPT start probabilities p_s (instead of --pi)")
    p.add_argument("--K", help="number of iterations K >= 1")
    p.add_argument("--statement", default="rate", choices=("weighted", "rate"), help="which statement (default rate)")
    p.add_argument("--beta", help="momentum weight on the new gradient in (0,1] (default 1: T1's algorithm)")
    p.add_argument("--delta0", default="1", help="initial gap Delta0 (default 1; the worst case is linear in it)")
    p.add_argument("--solver", default="CLARABEL",
                   help="CLARABEL (default: the banded SDP with the exact dual check) or SCS (the all-pairs SDP "
                        "through cvxpy, K <= 100: a cross-check, not a proof)")
    p.add_argument("--max-seconds", default="600",
                   help="refuse (exit 2) when the estimated time exceeds this (default 600)")
    p.add_argument("--no-attain", action="store_true", help="skip running Drop-Muon on the worst-case function")
    p.add_argument("--sigma", help="T3 only: the noise level sigma >= 0 (E||noise||^2 <= sigma^2)")
    p.add_argument("--eta", help="T3 only: the base radius eta (default: T3's step rule)")
    p.add_argument("--paths", default="20000", help="T3 only: Monte Carlo runs per test function and noise law")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    import warnings

    if args.L is None:
        raise CLIError("--L (the smoothness constants, one per layer) is required")
    if args.K is None:
        raise CLIError("--K (the number of iterations) is required")
    K = parse_number("--K", args.K, int)
    if args.theorem in ("smooth-stochastic", "T3"):
        return _run_t3(args, K)
    if args.sigma is not None or args.eta is not None:
        raise CLIError("--sigma and --eta apply to --theorem smooth-stochastic only")
    beta = parse_number("--beta", args.beta) if args.beta is not None else 1.0
    delta0 = parse_number("--delta0", args.delta0)
    max_seconds = parse_number("--max-seconds", args.max_seconds)
    pis = parse_floats("--pi", args.pi)
    starts = parse_floats("--start-probs", args.start_probs)
    if isinstance(K, int) and K >= 1 and 0 < beta <= 1 and max_seconds > 0:
        from dropmuon.verification.pep.budget import check_fits

        # refuse before importing the solvers: one estimate per distinct π (at most one per layer)
        layers = len(set(pis)) if pis is not None else len(starts or [1])
        try:
            check_fits(K, beta, solver=args.solver, max_seconds=max_seconds, layers=layers)
        except ValueError as e:
            raise CLIError(str(e)) from None
    from dropmuon.verification.pep.certificate import certify

    with warnings.catch_warnings():  # the solver's accuracy is reported in the status and the bracket
        warnings.simplefilter("ignore", UserWarning)
        c = certify(args.theorem, L=parse_floats("--L", args.L), K=K, pi=pis,
                    start_probs=starts, statement=args.statement,
                    beta=beta, Delta0=delta0, solver=args.solver, attain=not args.no_attain,
                    max_seconds=max_seconds)
    if args.json:
        emit_json(c.to_dict())
        return 0
    print(f"T1 {c.theorem} [{c.statement}], K = {c.K}, {c.distribution}, beta = {c.beta:g}, Delta0 = {c.Delta0:g}")
    if c.rigorous:
        print(f"  worst case in [{c.lower:.12g}, {c.upper:.12g}]  (relative gap {c.gap:.1e}"
              f"{': exact' if c.exact else ''}; layer {c.layer}; separable Frobenius class)")
        how = ("closed form 2(1-(1-pi)^K)/(pi K), proved" if c.band is None else
               f"banded SDP (band {c.band}), dual checked in exact arithmetic")
        print(f"  upper: {how}")
    else:
        print(f"  worst case ~ {c.worst_case:.6g}  ({c.message})")
    if c.witness is not None:
        print(f"  lower: attained by {c.witness['function']}, run through Drop-Muon")
    print(f"  T1 bound            = {c.bound:.6g}" + ("" if c.bound_covers else "  (T1 does not cover beta < 1: reference only)"))
    print(f"  worst case / bound  = {c.ratio:.6g}")
    if c.closed_form is not None and c.band is not None:
        print(f"  closed form         = {c.closed_form:.6g}  (W(pi,K) = 2(1-(1-pi)^K)/(pi K), docs/certify.md)")
    if c.band is not None or not c.rigorous:
        print(f"  solver {c.solver}: {c.status}")  # the time is in --json (solve_time): not repeatable output
    if c.attained is not None:
        print(f"  Drop-Muon on the witness in the network: {c.attained:.12g} ({c.attained_method})")
    print(f"  {c.message}")
    return 0


def _run_t3(args, K) -> int:
    """T3: the noise relaxation (an upper bound) beside T3's bound and the Monte Carlo search."""
    from dropmuon.verification.pep.stochastic import t3_noise_relaxation, t3_noise_search

    if args.sigma is None:
        raise CLIError("--sigma (the noise level) is required with --theorem smooth-stochastic")
    Ls, pis = parse_floats("--L", args.L) or [], parse_floats("--pi", args.pi) or [1.0]
    if len(Ls) != 1 or len(pis) != 1 or args.start_probs is not None:
        raise CLIError("the T3 relaxation is for one layer: give one --L and at most one --pi (no --start-probs)")
    kw = dict(sigma=parse_number("--sigma", args.sigma), L=Ls[0], pi=pis[0], Delta0=parse_number("--delta0", args.delta0),
              eta=parse_number("--eta", args.eta) if args.eta is not None else None,
              beta=parse_number("--beta", args.beta) if args.beta is not None else None)
    paths = parse_number("--paths", args.paths, int, positive=True)
    r = t3_noise_relaxation(K, **kw)
    search = t3_noise_search(K, paths=paths, **kw)
    (fun, law), (mean, se) = search["best"]
    out = {"theorem": "smooth-stochastic", "kind": r.kind, "K": K, "L": r.L, "pi": r.pi, "sigma": r.sigma,
           "Delta0": r.Delta0, "eta": r.eta, "beta": r.beta, "relaxation": r.value, "bound": r.bound,
           "relaxation_over_bound": r.ratio, "status": r.status, "time": r.time, "band": r.band,
           "search": {"function": fun, "noise": law, "mean": mean, "se": se, "paths": paths,
                      "over_bound": mean / r.bound}}
    if args.json:
        emit_json(out)
        return 0
    print(f"T3 smooth-stochastic [rate], one layer, K = {K}, L = {r.L:g}, pi = {r.pi:g}, sigma = {r.sigma:g}, "
          f"Delta0 = {r.Delta0:g}; eta = {r.eta:.4g}, beta = {r.beta:.4g}")
    pairs = "all pairs" if r.band >= K else f"pairs within {r.band} steps"
    print(f"  relaxation (upper bound, not exact) = {r.value:.6g}  ({pairs}; {r.status}, {r.time:.1f} s)")
    print(f"  T3 bound                            = {r.bound:.6g}   relaxation / bound = {r.ratio:.3g}")
    print(f"  largest value found (Monte Carlo)   = {mean:.6g} +- {se:.2g}  ({fun}, {law} noise; "
          f"{mean / r.bound:.3g} of the bound)")
    print(f"  so the worst case lies in [{mean:.4g}, {r.value:.4g}] (up to the Monte Carlo error)")
    return 0
