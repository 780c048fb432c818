"""``dropmuon bound``: a theorem's iteration complexity, its bound at that K, its step rule and
its LaTeX, for given constants."""

from __future__ import annotations

import numpy as np

from ._common import CLIError, emit_json, parse_floats

LIST_OPTIONS = ("--L", "--pi", "--L0", "--L1", "--sigma", "--rho", "--delta")
_OPT_TO_NAME = {
    "--L": "L",
    "--pi": "pi",
    "--L0": "L0",
    "--L1": "L1",
    "--sigma": "sigma",
    "--rho": "rho",
    "--delta": "delta",
}

HELP = "iteration complexity, bound and step rule of a theorem"


def add_parser(sub):
    p = sub.add_parser(
        "bound",
        help=HELP,
        description=(
            "Evaluate a theorem (derived in docs/theory.md, or one of your own registered with "
            "--import) for given constants: "
            "the iterations K needed for accuracy eps, the bound at that K, the step rule's "
            "values and the statement in LaTeX. Per-layer constants are comma-separated, layer 1 "
            "(input) first."
        ),
    )
    p.add_argument("--list", action="store_true",
                   help="list the registered theorems with each one's proof, check and figure, and exit")
    p.add_argument("--theorem", help="theorem name (see --list)")
    for opt, text in [
        ("--L", "layer-wise smoothness constants L_i"),
        ("--pi", "inclusion probabilities pi_i in (0,1] (default: all 1, full updates)"),
        ("--L0", "(L0,L1)-smoothness constants L0_i >= 0"),
        ("--L1", "(L0,L1)-smoothness constants L1_i > 0"),
        ("--sigma", "gradient noise levels sigma_i >= 0 (default 0)"),
        ("--rho", "norm-equivalence constants rho_i (default 1)"),
        ("--delta", "LMO inexactness delta_i in [0,1) (default 0)"),
    ]:
        p.add_argument(opt, metavar="X1,X2,...", help=text)
    p.add_argument("--delta0", type=str, help="initial gap Delta0 = f(X^0) - f*")
    p.add_argument("--eps", type=str, help="target accuracy epsilon")
    p.add_argument("--eta", type=str, help="fix the radius scale eta instead of the rule")
    p.add_argument("--beta", type=str, help="fix the momentum weight beta instead of the rule")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    return p


def _scalar(opt, text):
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise CLIError(f"{opt} is {text!r}, not a number") from None


def compute(theorem, epsilon, constants: dict) -> dict:
    """The ``bound`` record for a theorem and validated inputs (shared with the report)."""
    K = theorem.iterations(epsilon, **constants)
    bound = theorem.evaluate(K, epsilon=epsilon, **constants)
    statements = {
        name: theorem.evaluate(K, statement=name, **constants).value for name in theorem.statements
    }
    step = {"rule": theorem.step_rule_text}
    step.update(theorem.step(K, **constants))
    return {
        "theorem": theorem.name,
        "label": theorem.label,
        "title": theorem.title,
        "iterations": K,
        "bound_at_K": bound.value,
        "target": bound.target,
        "epsilon": epsilon,
        "terms": [{"latex": t, "value": v} for t, v in bound.terms],
        "statements": statements,
        "step": step,
        "latex": theorem.latex(),
        "iterations_latex": None
        if theorem.iterations_expression is None
        else _latex(theorem.iterations_expression),
        "inputs": {k: v for k, v in constants.items()},
        "source": theorem.source,
        "derived": theorem.derived,
    }


def _latex(expr):
    from dropmuon.theory.symbols import latex

    return latex(expr)


def run(args) -> int:
    from dropmuon.theory import get_theorem, theorems

    if args.list:
        # --list --theorem NAME lists that theorem alone (an unknown name is the usual error)
        chosen = [get_theorem(args.theorem)] if args.theorem else list(theorems.values())
        entries = [t.catalogue() for t in chosen]
        if args.json:
            emit_json(entries)
        else:
            for e in entries:
                inh = {k: f" (inherited from {v})" for k, v in e["inherited"].items()}
                print(f"{e['label']} {e['name']}: {e['title']}")
                print(f"    statements: {', '.join(e['statements'])} (rate: {e['rate']}); constants: "
                      f"{', '.join(e['constants']) or '-'}; step parameters: {', '.join(e['parameters']) or '-'}")
                print(f"    proof:  {e['proof'] or 'MISSING'}{inh.get('proof', '')}")
                print(f"    check:  {e['check']}")
                tight = ("; ".join(e["tight_instances"]) + inh.get("tight_instances", "")
                         or f"none ({e['tight_note'] or 'MISSING'}{inh.get('tight_note', '')})")
                print(f"    tight:  {tight}")
                print(f"    solver: {e['solver']}")
                print(f"    figure: {e['figure']}")
                if e["missing"]:
                    print(f"    MISSING: {'; '.join(e['missing'])}")
        return 0
    if not args.theorem:
        raise CLIError("--theorem is required (or --list); known theorems: " + ", ".join(theorems))
    theorem = get_theorem(args.theorem)
    if args.eps is None:
        raise CLIError("--eps (the target accuracy) is required")
    if args.delta0 is None:
        raise CLIError("--delta0 (the initial gap f(X^0) - f*) is required")
    given = {name: parse_floats(opt, getattr(args, opt[2:])) for opt, name in _OPT_TO_NAME.items()}
    given = {k: v for k, v in given.items() if v is not None}
    takes = set(theorem.per_layer)
    ignored = sorted(k for k in given if k not in takes)
    constants = {k: v for k, v in given.items() if k in takes}
    constants["Delta0"] = _scalar("--delta0", args.delta0)
    for p in ("eta", "beta"):
        val = _scalar(f"--{p}", getattr(args, p))
        if val is not None:
            if p not in theorem.parameters:
                raise CLIError(f"theorem {theorem.name} has no step parameter {p}")
            constants[p] = val
    eps = _scalar("--eps", args.eps)
    record = compute(theorem, eps, constants)
    if ignored:
        record["ignored"] = ignored
    if args.json:
        emit_json(record)
        return 0
    _print_text(record, ignored)
    return 0


def _fmt(v):
    if isinstance(v, np.ndarray):
        return "(" + ", ".join(f"{x:.6g}" for x in v) + ")"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _print_text(r, ignored):
    tgt = "eps^2" if r["label"] == "T1" else "eps"
    print(f"{r['label']} {r['theorem']}: {r['title']}")
    print(f"  source: {r['source']}")
    print(f"  iterations for eps = {r['epsilon']:g}: K = {r['iterations']}")
    print(f"  rate bound at K: {r['bound_at_K']:.6g}  (target {tgt} = {r['target']:.6g})")
    for name, val in r["statements"].items():
        print(f"    statement {name}: {val:.6g}")
    print(f"  step rule: {r['step']['rule']}")
    for k, v in r["step"].items():
        if k != "rule":
            print(f"    {k} = {_fmt(v)}")
    print(f"  LaTeX: {r['latex']}")
    if ignored:
        print(f"  (ignored, not used by this theorem: {', '.join(ignored)})")
