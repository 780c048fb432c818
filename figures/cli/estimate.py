"""``dropmuon estimate``: measured layer-wise constants (trajectory estimate, (L0,L1) fit, Hessian
top eigenvalue, probe, gradient noise, Newton–Schulz inexactness, a Delta0 estimate) and per-layer
costs of a model (the paper's CNN by default), in torch (torch extra)."""

from __future__ import annotations

from ._common import emit_json, parse_number
from ._torch import add_common, load_model, parse_common, print_layer_table, progress_flag, torch_command

LIST_OPTIONS = ()

HELP = "measure a model's layer-wise constants and per-layer costs (torch)"


def add_parser(sub):
    p = sub.add_parser(
        "estimate",
        help=HELP,
        description=(
            "Train a model (--model: the paper's CNN by default, or yours) with full Muon for a few "
            "steps and measure, per layer and in the layer's own norm (spectral; dual nuclear), "
            "the trajectory estimate L, the (L0,L1) fit with a penalty on under-estimation, the "
            "Euclidean Hessian top eigenvalue, the direction-maximising probe, the gradient noise "
            "sigma at the batch size (with a bootstrap interval), the Newton-Schulz inexactness "
            "delta on the run's own momenta, an estimate of Delta0 = f(x0) - f*, and the time per "
            "step for every set of updated layers (sampled sets beyond 6 layers) with the fitted "
            "cost model."
        ),
    )
    add_common(p)
    p.add_argument("--steps", default="20", help="trajectory steps (default 20)")
    p.add_argument("--repeats", default="7", help="timing repeats per layer set (default 7)")
    p.add_argument("--noise-draws", default="16",
                   help="minibatch gradients per trajectory point for the noise sigma (default 16; at least 2)")
    p.add_argument("--delta0-steps", default="40",
                   help="full-Muon steps the trajectory is continued by for the Delta0 estimate (default 40)")
    p.add_argument("--json", action="store_true", help="print a JSON list of per-layer records")
    p.set_defaults(run=run)
    return p


@torch_command
def run(args) -> int:
    from dropmuon.verification.torchside.experiment import measure_network

    dev, seed, batch, width, lr = parse_common(args)
    steps = parse_number("--steps", args.steps, int, positive=True)
    repeats = parse_number("--repeats", args.repeats, int, positive=True)
    noise_draws = parse_number("--noise-draws", args.noise_draws, int, minimum=2)
    delta0_steps = parse_number("--delta0-steps", args.delta0_steps, int, positive=True)
    setup, model, opt, loss, _ = load_model(args, dev, seed, width)
    data = setup.data
    cal = measure_network(model, opt, data, batch=batch, steps=steps, repeats=repeats, seed=seed, device=dev,
                          progress=progress_flag(args), loss_fn=loss, noise_draws=noise_draws,
                          delta0_steps=delta0_steps)
    from dropmuon.verification.torchside.environment import environment, ns_dtype_of

    env = environment(dev, ns_dtype_of(opt))
    records = [dict(r, device=dev, data=data.name, model=setup.label, seed=seed, lr=lr, batch=batch, width=width,
                    overhead=cal["overhead"], environment=env) for r in cal["layers"]]
    if args.json:
        emit_json(records)
        return 0
    o = cal["overhead"]
    print(f"{setup.label} on {data.name} ({env['device_name']}, {env['torch_threads']} threads, Newton-Schulz in "
          f"{env['ns_dtype']}), {steps} steps of full Muon (lr {lr:g}), batch {batch}; cost timing "
          f"{o['cost_measurement_s']:.1f} s, constants {o['estimate_s']:.1f} s (training itself {o['train_s']:.1f} s)")
    print_layer_table(opt.model_layers)
    print(f"{'layer':>5s} {'module':>14s} {'shape':>18s} {'L':>9s} {'probe':>9s} {'L0':>9s} {'L1':>9s} {'fit':>5s} "
          f"{'Hess eig':>9s} {'sigma':>9s} {'delta':>6s} {'t(s=layer)':>11s} {'predicted':>10s} {'error':>6s} "
          f"{'saved MB':>8s}")
    for r in records:
        c = r["costs"]
        probe = "-" if r.get("L_probe") is None else f"{r['L_probe']:.4g}"
        grow = "" if r.get("trajectory_converged", True) else "*"
        fit = "ok" if r.get("l0l1_identified") else "n.i."
        sigma = "-" if r.get("sigma") is None else f"{r['sigma']:.4g}"
        delta = "-" if r.get("delta") is None else f"{r['delta']:.3f}"
        print(f"{r['layer']:>5d} {r.get('label', '')[-14:]:>14s} {str(tuple(r['shape'])):>18s} {r['L']:>8.4g}{grow:1s} "
              f"{probe:>9s} {r['L0']:>9.4g} {r['L1']:>9.4g} {fit:>5s} {r['hessian_top_eig']:>9.4g} {sigma:>9s} "
              f"{delta:>6s} {c['start_measured_s'] * 1e3:>8.2f} ms {c['start_predicted_s'] * 1e3:>7.2f} ms "
              f"{c['start_relative_error']:>6.1%} {_mb(c.get('start_saved_bytes')):>8s}")
    cm = cal["cost_model"]
    print(f"cost model (ms): F = {cm['forward'] * 1e3:.2f}, a = {_ms(cm['activation'])}, w = {_ms(cm['weight'])}, "
          f"u = {_ms(cm['update'])}")
    oos = cal["out_of_sample"]
    if oos["sets"]:
        print(f"out of sample: the model fitted on the empty set, the RPT starts and the singletons predicts the "
              f"{len(oos['sets'])} other measured sets within {oos['median']:.1%} (median), {oos['max']:.1%} (max)")
    print("L: largest trajectory estimate (* still growing in the last quarter: more steps may raise it); probe: the "
          "direction-maximising power method at the last point (exact on quadratics); fit: (L0, L1) identified, or "
          "n.i. when the gradient norm varied by less than 2x")
    print("t(s=layer): measured time of a step starting at that layer (RPT set {s..b}); predicted: the fitted cost "
          "model; saved MB: activations that step keeps for its backward pass (truncation saves memory too)")
    _print_theory_constants(records)
    return 0


def _print_theory_constants(records) -> None:
    """The notes on sigma, delta and Delta0 (the constants of the stochastic and inexact theorems)."""
    r0 = records[0]
    if r0.get("sigma") is not None:
        cis = ", ".join(f"{r['layer']}: [{r['sigma_ci'][0]:.4g}, {r['sigma_ci'][1]:.4g}]" for r in records
                        if r.get("sigma_ci") is not None)
        print(f"sigma: gradient noise at batch {r0['sigma_batch']}, sqrt of the largest over "
              f"{len(r0['sigma_points'])} trajectory points of the mean ||G - grad f||_2^2 over {r0['sigma_draws']} "
              f"minibatches (A3's Euclidean sigma; rho = sqrt(min(m, n)) converts to the nuclear norm); "
              f"{r0['sigma_confidence']:.0%} bootstrap intervals: {cis}")
    if r0.get("delta") is not None:
        print(f"delta: ||NS(U) - polar(U)||_op on the momentum the step orthogonalises (Newton-Schulz in "
              f"{r0.get('ns_dtype')}, {r0.get('ns_steps')} steps, coefficients {r0.get('ns_coefficients')}; momentum "
              f"{r0.get('momentum')}, nesterov {r0.get('nesterov')}), largest over {r0.get('delta_points')} steps")
    if r0.get("Delta0") is not None:
        print(f"Delta0 ~ {r0['Delta0']:.4g} (an estimate: f(x0) = {r0['f0']:.4g} minus the best full-batch loss "
              f"{r0['f_best']:.4g} of {r0['Delta0_steps']} full-Muon steps; f* may be lower, so Delta0 may be larger)")


def _mb(n):
    return "-" if n is None else f"{n / 1e6:.2f}"


def _ms(xs):
    return "(" + ", ".join(f"{x * 1e3:.2f}" for x in xs) + ")"
