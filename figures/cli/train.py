"""``dropmuon train``: one training run of a model (the paper's CNN by default) with one
layer-sampling schedule, timed to a target training metric (torch extra)."""

from __future__ import annotations

from ._common import CLIError, emit_json, parse_floats, parse_number
from ._torch import (add_common, add_compile, add_radius_rule, load_model, parse_common, print_layer_table, progress_flag,
                     radius_rule_of, torch_command)

LIST_OPTIONS = ("--probs",)

HELP = "train a model with one Drop-Muon sampling schedule and time it (torch)"


def add_parser(sub):
    from dropmuon.verification.forecasting.schedules import SAMPLINGS

    p = sub.add_parser(
        "train",
        help=HELP,
        description=(
            "Train a model (--model: the paper's CNN by default, or yours) with Drop-Muon under one "
            "sampling schedule until the training metric (accuracy unless your factory gives "
            "another) reaches --target-acc, --max-steps steps are done, or --max-seconds pass. "
            "Reports wall-clock seconds (training steps only) and iterations to the target, final "
            "train and held-out accuracy, and seconds per step. The optimal schedules need "
            "smoothness constants and costs: --constants FILE (from dropmuon estimate --json), or "
            "they are measured first."
        ),
    )
    add_common(p)
    add_compile(p)
    add_radius_rule(p)
    names = [s for s in SAMPLINGS if s != "phase-optimal"]  # it needs a phase measurement: dropmuon experiment
    p.add_argument("--sampling", default="full", choices=names, metavar="|".join(names),
                   help="layer-sampling schedule (default full; phase-optimal runs in dropmuon experiment, which "
                        "measures its phases)")
    p.add_argument("--probs", default=None, help="start probabilities p_1..p_b for --sampling custom")
    p.add_argument("--constants", default=None, help="JSON from dropmuon estimate --json (for optimal-*)")
    add_run_limits(p)
    p.add_argument("--epoch-length", default=None, help="steps per epoch for epoch-shift (default: one pass)")
    p.add_argument("--estimate-every", default=None, metavar="N",
                   help="estimate the updated layers' smoothness constants online at every N-th step "
                        "(same updates; the estimation's time is reported apart, not counted as training)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    return p


def add_run_limits(p, *, target_default=None):
    """Options bounding one training run."""
    p.add_argument("--max-steps", default="300", help="step limit (default 300)")
    p.add_argument("--target-acc", default=target_default,
                   help="target value of the training metric (an accuracy: in (0, 1])"
                        + (f" (default {target_default})" if target_default else ""))
    p.add_argument("--max-seconds", default=None, help="wall-clock limit per run, evaluations included")
    p.add_argument("--eval-every", default="5", help="evaluate the training accuracy every K steps (default 5)")
    p.add_argument("--grad-norm-examples", default=None, metavar="N|all",
                   help="record the per-layer squared nuclear norms of the training loss's gradient (the theorems' "
                        "left-hand side) on a fixed subset of N training examples (default 256) or on all of them")
    p.add_argument("--grad-norm-every", default=None, metavar="K",
                   help="record them at the evaluations at least K steps apart (default 20; with the defaults the "
                        "recording costs under 10%% of the training time on the built-in CNN, docs/torch.md)")


def parse_run_limits(args) -> dict:
    target = parse_number("--target-acc", args.target_acc)
    limits = {
        "max_steps": parse_number("--max-steps", args.max_steps, int, positive=True),
        "target_acc": target,
        "max_seconds": parse_number("--max-seconds", args.max_seconds, positive=True),
        "eval_every": parse_number("--eval-every", args.eval_every, int, positive=True),
    }
    if args.grad_norm_examples is not None:  # else the library's default subset
        limits["grad_norm_examples"] = (None if args.grad_norm_examples == "all" else
                                        parse_number("--grad-norm-examples", args.grad_norm_examples, int,
                                                     positive=True))
    if args.grad_norm_every is not None:
        limits["grad_norm_every"] = parse_number("--grad-norm-every", args.grad_norm_every, int, positive=True)
    return limits


@torch_command
def run(args) -> int:
    import math

    from dropmuon.verification.forecasting.measured import TRAJECTORY_METHOD, constants_method, describe_constants_source
    from dropmuon.verification.torchside.data import batch_size
    from dropmuon.verification.torchside.experiment import load_constants, measure_network
    from dropmuon.verification.torchside.tasks import objective_for
    from dropmuon.verification.torchside.training import make_schedule, train

    dev, seed, batch, width, lr = parse_common(args)
    limits = parse_run_limits(args)
    probs = parse_floats("--probs", args.probs)
    if probs is not None and args.sampling != "custom":
        raise CLIError(f"--probs is for --sampling custom; got --sampling {args.sampling}")
    if args.constants is not None and not args.sampling.startswith("optimal"):
        raise CLIError(f"--constants is for the optimal-max/optimal-sum schedules; got --sampling {args.sampling}")
    epoch_length = parse_number("--epoch-length", args.epoch_length, int, positive=True)
    estimate_every = parse_number("--estimate-every", args.estimate_every, int, positive=True)
    setup, model, opt, loss, metric = load_model(args, dev, seed, width, training=True)
    data = setup.data
    objective_for(data.task, loss, metric).check_target(limits["target_acc"], "--target-acc")
    if epoch_length is None:
        epoch_length = max(1, math.ceil(len(data.x_train) / batch_size(batch, len(data.x_train))))
    b = len(opt.layer_groups())
    L = costs = None
    source = method = None
    if args.sampling.startswith("optimal"):
        if args.constants is not None:
            L, costs = load_constants(args.constants)
            source, method = args.constants, constants_method(args.constants)
        else:  # measure on a copy initialised like the model, so the run itself starts fresh
            _, probe, probe_opt, _, _ = load_model(args, dev, seed, width)
            cal = measure_network(probe, probe_opt, data, batch=batch, seed=seed, device=dev,
                                  progress=progress_flag(args), loss_fn=loss)
            L, costs = load_constants(cal)
            source, method = "measured in this run", TRAJECTORY_METHOD
    sampler, info = make_schedule(args.sampling, b, L=L, costs=costs, probs=probs, epoch_length=epoch_length)
    if source is not None:
        info.update(constants_source=source, constants_method=method, L=L)
    r = train(model, opt, data, sampler, batch=batch, seed=seed, device=dev, loss_fn=loss, metric=metric,
              progress=progress_flag(args), info=info, estimate_every=estimate_every, **limits)
    from dropmuon.verification.torchside.environment import environment, ns_dtype_of

    env = environment(dev, ns_dtype_of(opt))
    out = dict(r.as_dict(), environment=env, model=setup.label, data=data.name, lr=lr, batch=batch, width=width,
               channels_last=args.channels_last, compile=args.compile, radius_rule=radius_rule_of(args),
               max_steps=limits["max_steps"], max_seconds=limits["max_seconds"], eval_every=limits["eval_every"])
    if args.json:
        emit_json(out)
        return 0
    print(f"{setup.label}, {args.sampling} on {data.name} ({env['device_name']}, Newton-Schulz in {env['ns_dtype']}), "
          f"seed {seed}, lr {lr:g}, batch {batch}; start probabilities "
          f"{tuple(round(x, 4) for x in info['start_probs'])}")
    if source is not None:
        origin = (describe_constants_source(source, method) if args.constants is not None
                  else f"{source}: {method}")
        print("smoothness constants L = (" + ", ".join(f"{x:.4g}" for x in L) + f") {origin}")
    print_layer_table(opt.model_layers)
    if radius_rule_of(args) != "common":
        pis = r.info["radius_inclusion"]
        per = "; per epoch: " if len(pis) > 1 else ": "
        print(f"radius rule {radius_rule_of(args)}: layer i moves by lr/pi_i, pi" + per
              + "; ".join("(" + ", ".join(f"{x:.4g}" for x in pi) + ")" for pi in pis))
    if r.info.get("compile_s") is not None:
        print(f"compiled one graph per start index in {r.info['compile_s']:.1f} s (before timing)")
    if r.target_acc is None:
        print("no target accuracy set")
    elif r.iterations_to_target is None:
        print(f"target training {r.info['metric']} {r.target_acc:g} NOT reached ({r.stop_reason} after {r.steps} steps)")
    else:
        print(f"target training {r.info['metric']} {r.target_acc:g} reached after {r.iterations_to_target} steps, "
              f"{r.time_to_target_s:.3f} s of training")
    print(f"{r.steps} steps, {r.seconds_per_step * 1e3:.2f} ms per step; final train {r.info['metric']} {r.final_train_acc:.4f}, "
          f"held-out {r.test_acc:.4f}; steps starting at layer s: {list(r.start_counts)}")
    _print_grad_norms(r)
    if estimate_every:
        _print_online(r.info["online_constants"])
    return 0


def _print_grad_norms(r) -> None:
    """The theorems' quantity at the last evaluation and the running average, with what it cost."""
    gn = r.info.get("grad_norms")
    last = r.history[-1]
    if not gn or last.get("grad_dual_sq_sum") is None:
        return
    from dropmuon.verification.torchside.training import lhs_average

    avg = lhs_average(r.history)
    on = (f"a fixed subset of {gn['examples']} training examples" if gn["subset"]
          else f"all {gn['examples']} training examples")
    over = "-" if gn["overhead"] is None else f"{gn['overhead']:.1%}"
    print(f"sum_i ||grad_i f||_*^2 (nuclear, on {on}, every {gn['every']} steps): {last['grad_dual_sq_sum']:.4g} "
          f"at step {last['step']}; running average over {len(avg)} recordings {avg[-1]['average']:.4g}; "
          f"recording {gn['seconds']:.2f} s (overhead {over} of training)")


def _print_online(oc: dict) -> None:
    """The online constants' per-layer summary and the estimation's overhead."""
    over = "-" if oc["overhead"] is None else f"{oc['overhead']:.1%}"
    print(f"online constants every {oc['every']} steps: estimation {oc['estimate_s']:.2f} s beside "
          f"{oc['train_s']:.2f} s of training (overhead {over})")
    print(f"{'layer':>5s} {'n':>4s} {'L':>9s} {'median':>9s} {'L0':>9s} {'L1':>9s} {'fit':>5s}")
    for s in oc["layers"]:
        def g(v):
            return "-" if v is None else f"{v:.4g}"
        grow = "*" if s["trajectory_converged"] is False else " "
        fit = "-" if s["l0l1_identified"] is None else ("yes" if s["l0l1_identified"] else "n.i.")
        print(f"{s['layer']:>5d} {s['n']:>4d} {g(s['L']):>8s}{grow} {g(s['L_median']):>9s} {g(s['L0']):>9s} "
              f"{g(s['L1']):>9s} {fit:>5s}")
    print("L: largest estimate along the run (a lower bound of the constant along the directions the run took; "
          "* the largest came in the last quarter); fit: (L0, L1) identified, or n.i. when the gradient norm "
          "varied by less than 2x")
