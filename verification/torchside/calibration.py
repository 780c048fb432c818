"""The closed loop's calibration: a model's layer-wise constants and per-layer costs, measured
along steps of full Muon (:func:`measure_network`) or read from a ``dropmuon estimate --json``
file, saved as ``OUT/calibration.json`` and reused while its settings match (:func:`calibrate`);
the per-phase constants of the ``phase-optimal`` schedule, measured along one run of full Muon
(:func:`measure_phases`, :func:`with_phases`); and the fingerprint that ties a training run to
the calibration its schedule was computed from. The settings and the shared setup come from
:mod:`~dropmuon.verification.torchside.plan`."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from dropmuon.theory._io import read_json, to_jsonable, write_json_atomic

from ..forecasting.measured import TRAJECTORY_METHOD, constants_method, load_constants
from ..forecasting.measured import cost_dict as _cost_dict
from .plan import PHASE_ESTIMATE_EVERY, PHASE_SEED, ExperimentConfig, Setup, make_setup

__all__ = ["measure_network", "calibrate", "measure_phases", "with_phases"]


def measure_network(model, optimizer, data, *, batch: int | str, steps: int = 20, repeats: int = 7, seed: int = 0,
                    device="cpu", progress=None, loss_fn=None, timing_model=None, noise_draws: int = 16,
                    delta0_steps: int = 40) -> dict:
    """Measure per-layer costs (every layer set up to 6 layers, sampled sets beyond; at the
    training batch size, the whole training set for ``batch="full"``) and then the layer-wise
    constants along ``steps`` steps of full Muon.
    ``loss_fn`` defaults to the data's task (:func:`~dropmuon.verification.torchside.tasks.objective_for`).
    Returns ``{"layers": [per-layer records], "cost_model": {...}, "per_start": [...],
    "overhead": {...}}``; the per-layer records are those of ``dropmuon estimate --json``, with the
    ``method`` that gave ``L`` and, for an optimizer from ``DropMuon.from_model``, the layer's
    ``parameters`` (name, shape, the optimizer that takes it and why). The
    model and optimizer are trained by the constant estimation (use fresh ones for training
    runs). ``timing_model``: the module whose steps are timed for the costs when it is not
    ``model`` itself (a compiled wrapper of it, sharing its parameters: the constants' second
    derivatives run on the plain model). ``noise_draws`` and ``delta0_steps`` go to
    :func:`~dropmuon.verification.torchside.constants.estimate_constants`: each record also carries
    the gradient noise ``sigma`` (with ``sigma_ci``, ``sigma_batch``, ``sigma_dual``, ``rho``), the
    Newton–Schulz inexactness ``delta`` (with ``ns_dtype``, ``ns_steps``), the probe's settings,
    ``momentum``, ``nesterov`` and the run's ``Delta0`` estimate."""
    import torch

    from .constants import estimate_constants
    from .costs import measure_costs
    from .tasks import objective_for

    from .data import FULL_BATCH

    loss = objective_for(getattr(data, "task", "classification"), loss_fn).loss
    gen = torch.Generator().manual_seed(seed)
    idx = (torch.arange(len(data.x_train)) if batch == FULL_BATCH
           else torch.randint(0, len(data.x_train), (batch,), generator=gen))
    t0 = time.perf_counter()
    costs = measure_costs(timing_model if timing_model is not None else model, optimizer, loss, data.x_train[idx].to(device), data.y_train[idx].to(device),
                          repeats=repeats, device=device, progress=progress, seed=seed)
    t_costs = time.perf_counter() - t0
    consts, overhead = estimate_constants(model, optimizer, loss, data, steps=steps, batch=batch, seed=seed,
                                          device=device, progress=progress, noise_draws=noise_draws,
                                          delta0_steps=delta0_steps)
    overhead = dict(overhead, cost_measurement_s=t_costs)
    labels = optimizer.model_layers.labels if optimizer.model_layers is not None else None
    layers = []
    for c in consts:
        j = c.layer - 1
        rec = dict(c.as_dict(), method=TRAJECTORY_METHOD)
        if labels is not None:
            rec["label"] = labels[j]
            # which optimizer takes each of the layer's parameters, and why (the layer table)
            lay = optimizer.model_layers.as_dict()["layers"][j]
            rec["parameters"] = [{"name": n, "shape": sh, "algorithm": a, "why": w} for n, sh, a, w in
                                 zip(lay["parameters"], lay["shapes"], lay["algorithms"], lay["reasons"])]
        rec["costs"] = {
            "forward_s": costs.forward, "activation_s": float(costs.activation[j]),
            "weight_s": float(costs.weight[j]), "update_s": float(costs.update[j]),
            "start_measured_s": float(costs.start_measured[j]),
            "start_predicted_s": float(costs.start_predicted[j]),
            "start_relative_error": float(costs.start_relative_error[j]),
            **{f"start_{k}": v for k, v in (costs.start_memory[j] if costs.start_memory else {}).items()},
        }
        layers.append(rec)
    cd = costs.as_dict()
    return {"layers": layers, "cost_model": _cost_dict(costs.cost_model()),
            "per_start": cd["per_start"], "sets": cd["sets"], "out_of_sample": cd["out_of_sample"],
            "set_seconds": costs.seconds.tolist(), "overhead": overhead, "device": str(device),
            "batch": batch, "steps": steps, "repeats": repeats}


def calibrate(config: ExperimentConfig, out: Path | None = None, *, progress=None, setup: Setup | None = None) -> dict:
    """The calibration (constants and costs) of the experiment: read from ``config.constants``,
    reused from ``OUT/calibration.json`` when its settings match, or measured now (and saved)."""
    import torch

    settings = {k: getattr(config, k) for k in ("model", "ns_dtype", "batch", "lr", "width", "device", "data", "data_seed",
                                                 "estimate_steps", "cost_repeats", "constants", "flush_denormals")}
    settings.update(config._speed_settings())
    if config.train_examples is not None:  # absent otherwise: calibrations from before it existed match
        settings["train_examples"] = config.train_examples
    path = out / "calibration.json" if out is not None else None
    if config.constants is not None:
        _, cm = load_constants(config.constants)  # validates, naming the file
        cal = {"layers": read_json(config.constants, "constants file"), "source": str(config.constants),
               "method": constants_method(config.constants), "cost_model": _cost_dict(cm)}
    elif path is not None and (saved := _saved_calibration(path)) is not None and saved.get("settings") == settings:
        return saved
    else:
        setup = setup or make_setup(config)
        model, opt, loss, _ = setup.build(config, config.data_seed)
        timing = None
        if config.compile:  # time the compiled steps that training will take, one graph per timed set
            from .build import compile_per_start
            from .costs import layer_sets

            timing = compile_per_start(model, len(layer_sets(len(opt.layer_groups()))))
        cal = measure_network(model, opt, setup.data, batch=config.batch, steps=config.estimate_steps,
                              repeats=config.cost_repeats, seed=config.data_seed, device=config.device,
                              progress=progress, loss_fn=loss, timing_model=timing)
        cal["source"] = "measured"
        cal["method"] = TRAJECTORY_METHOD
        from .environment import environment, ns_dtype_of

        cal["environment"] = environment(config.device, ns_dtype_of(opt))
        cal["model_layers"] = opt.model_layers.as_dict() if opt.model_layers is not None else None
        cal["torch"] = torch.__version__
    cal["settings"] = settings
    if path is not None:
        write_json_atomic(path, cal)
    return cal


def _saved_calibration(path: Path) -> dict | None:
    """``OUT/calibration.json`` if it exists and reads back as a table; a damaged one is measured
    again, with a warning naming it."""
    import warnings

    if not path.exists():
        return None
    try:
        saved = read_json(path, "calibration")
        if not isinstance(saved, dict):
            raise ValueError(f"the calibration {str(path)!r} is not a table")
        return saved
    except ValueError as e:
        warnings.warn(f"{e}; measuring it again", RuntimeWarning, stacklevel=3)
        return None


def _fingerprint(cal: dict) -> str:
    """Identifies the constants and costs a run's schedule was computed from (a re-measured
    calibration gives other optimal distributions, so runs made with the old one are stale)."""
    import hashlib
    import json

    L, cm = load_constants(cal)
    fields = {"L": L, "cost_model": _cost_dict(cm)}
    if cal.get("phases"):  # the phase-optimal schedule comes from these (absent otherwise: old results match)
        fields["phases"] = {k: cal["phases"][k] for k in ("starts", "L", "horizon")}
    blob = json.dumps(to_jsonable(fields), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- the phases of the phase-optimal schedule -----------------------------------------------------

def _phase_settings(config: ExperimentConfig) -> dict:
    """What the phase measurement depends on beyond the calibration's settings."""
    return {k: getattr(config, k) for k in ("phases", "max_steps", "target_acc", "eval_every", "train_examples")} | {
        "seed": PHASE_SEED, "estimate_every": PHASE_ESTIMATE_EVERY}


def measure_phases(config: ExperimentConfig, *, setup: Setup | None = None, progress=None) -> dict:
    r"""Per-phase layer-wise constants for the ``phase-optimal`` schedule, measured along one run
    of full Muon (seed :data:`~dropmuon.verification.torchside.plan.PHASE_SEED`, the experiment's
    settings, stopping at the target):
    every step is an :func:`~dropmuon.verification.torchside.constants.estimating_step`, giving
    ``L̂_j^k = ‖∇_j f(X^{k+1}) − ∇_j f(X^k)‖_nuc / ‖X_j^{k+1} − X_j^k‖_op`` on the step's batch —
    smoothness along the segment between consecutive iterates, the only smoothness T1's descent
    step uses. The run's ``T`` steps (to the target, else all of them) are split into
    ``config.phases`` equal phases by iteration, ``starts = [round(T·p/P)]``; phase ``p``'s
    ``L_j`` is the largest ``L̂_j^k`` over its steps (as the calibration takes the largest over
    its trajectory). The last phase is open-ended: a schedule slower than full Muon spends its
    later steps in it.

    Returns ``{"starts", "L", "horizon": T, "iterations_to_target", "steps", "L_median",
    "settings", "method", "estimate_s", "train_s"}``. Phases are by iteration of *full Muon's*
    trajectory; a Drop-Muon run at step ``k`` is at an earlier stage of training, so its phases
    come later in its own progress — a limitation of a fixed, non-adaptive schedule."""
    from .training import make_schedule, train

    setup = setup or make_setup(config)
    cfg = config.for_schedule("full")
    model, opt, loss, metric = setup.build(cfg, PHASE_SEED, training=True)
    b = len(opt.layer_groups())
    sampler, info = make_schedule("full", b)
    r = train(model, opt, setup.data, sampler, max_steps=cfg.max_steps, batch=cfg.batch, target_acc=cfg.target_acc,
              eval_every=cfg.eval_every, seed=PHASE_SEED, device=cfg.device, loss_fn=loss, metric=metric,
              progress=progress, info=dict(info, sampling="phase-measurement"), grad_norms=False,
              estimate_every=PHASE_ESTIMATE_EVERY)
    T = int(r.iterations_to_target or r.steps)
    P = min(config.phases, T)
    starts = sorted({int(round(T * p / P)) for p in range(P)})
    recs = r.info["online_constants"]["records"]
    Ls, medians = [], []
    for p, s0 in enumerate(starts):
        s1 = starts[p + 1] if p + 1 < len(starts) else T
        est = {j: [x["L_hat"] for x in recs if x["layer"] == j and s0 <= x["step"] < s1 and math.isfinite(x["L_hat"])]
               for j in range(1, b + 1)}
        missing = [j for j, v in est.items() if not v]
        if missing:
            raise ValueError(f"phase {p + 1} (steps {s0}..{s1 - 1}) has no finite estimate for layer {missing[0]}; "
                             f"use fewer phases (--phases)")
        Ls.append([float(max(est[j])) for j in range(1, b + 1)])
        medians.append([float(np.median(est[j])) for j in range(1, b + 1)])
    oc = r.info["online_constants"]
    return {"starts": starts, "L": Ls, "horizon": T, "L_median": medians,
            "iterations_to_target": r.iterations_to_target, "steps": r.steps,
            "method": (f"per phase, the largest trajectory estimate |grad_j f(X') - grad_j f(X)|_nuc / |X'_j - X_j|_op "
                       f"over the phase's steps of one full-Muon run (seed {PHASE_SEED}), {P} equal phases by "
                       f"iteration of its {T} steps to the target"),
            "estimate_s": oc["estimate_s"], "train_s": oc["train_s"], "settings": _phase_settings(config)}


def with_phases(config: ExperimentConfig, cal: dict, out: Path | None = None, *, setup: Setup | None = None,
                progress=None) -> dict:
    """``cal`` with its ``phases`` (:func:`measure_phases`) when ``config`` runs the
    ``phase-optimal`` schedule: reused when measured with the same settings, else measured now
    and saved with the calibration."""
    if "phase-optimal" not in config.samplings:
        return cal
    if (cal.get("phases") or {}).get("settings") == to_jsonable(_phase_settings(config)):
        return cal
    cal = dict(cal, phases=to_jsonable(measure_phases(config, setup=setup, progress=progress)))
    if out is not None:
        write_json_atomic(out / "calibration.json", cal)
    return cal
