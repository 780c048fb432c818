"""The closed loop (torch extra): measure a model's layer-wise constants and per-layer costs, let
:func:`solvers.optimal_sampling` choose the RPT start distributions of the max- and sum-form, train
with each schedule (full Muon, uniform index sampling, the two optima, the epoch-shift schedule)
over several seeds to a target training accuracy, and compare wall-clock time to target with the
theory's prediction.

Every run is one task whose result is written atomically to ``OUT/runs/<sampling>-seed<k>.json``;
a re-run with the same settings skips finished tasks, so a killed experiment resumes where it
stopped. Speed-ups over full Muon are paired by seed (same initialisation and minibatch order) and
summarised by the geometric mean with a Student-t confidence interval on the log ratios.

The parts, each in a module of its own: the settings, the shared setup and the schedules with
their predicted cost (:mod:`~dropmuon.verification.torchside.plan`), the calibration
(:mod:`~dropmuon.verification.torchside.calibration`), the statistics and the summary
(:mod:`~dropmuon.verification.torchside.speedups`); this module runs the loop — one training task
(:func:`run_task`), the learning-rate tuning (:func:`tune_learning_rates`) and the whole experiment
(:func:`run_experiment`) — and re-exports the names of the other three it held before they were
split off, so that every import from it keeps working.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from dataclasses import replace as dataclasses_replace
from pathlib import Path

import numpy as np

from dropmuon.theory._io import to_jsonable, write_json_atomic

from ..forecasting.measured import load_constants
from .calibration import _fingerprint, calibrate, measure_network, measure_phases, with_phases
from .plan import (CONFIDENCE, EXPERIMENT_SAMPLINGS, PHASE_SEED, PRESETS, TUNE_SEED, ExperimentConfig, Setup,
                   make_setup, predictions, preset_settings, schedules, tuning_seeds)
from .speedups import (ACROSS_RUNS_LIMIT, BOOTSTRAP_RESAMPLES, POWER, RESOLVE_EFFECT, SPREAD_LIMIT, _interpolated,
                       lhs_thresholds, seeds_for_width, seeds_needed, speedup_ci, summarize, suspect_runs)

# every other name this module held before the split stays importable from here (callers use
# _saved_calibration, _t_power, _lhs_crossing, ...)
from dropmuon.theory import CostModel  # noqa: F401
from dropmuon.theory._io import read_json  # noqa: F401
from ..forecasting.measured import TRAJECTORY_METHOD, constants_method  # noqa: F401
from ..forecasting.measured import cost_dict as _cost_dict  # noqa: F401
from .calibration import _phase_settings, _saved_calibration  # noqa: F401
from .plan import DEFAULT_SAMPLINGS, PHASE_ESTIMATE_EVERY  # noqa: F401
from .speedups import _lhs_crossing, _mean_sd, _n_train, _t_power  # noqa: F401

__all__ = [
    "ExperimentConfig", "measure_network", "load_constants", "calibrate", "schedules", "predictions", "run_task",
    "run_experiment", "summarize", "speedup_ci", "seeds_needed", "CONFIDENCE", "BOOTSTRAP_RESAMPLES",
    "RESOLVE_EFFECT", "POWER", "suspect_runs", "SPREAD_LIMIT", "ACROSS_RUNS_LIMIT", "seeds_for_width",
    "PRESETS", "preset_settings", "lhs_thresholds", "measure_phases", "with_phases", "tune_learning_rates",
    "tuning_seeds", "PHASE_SEED", "TUNE_SEED", "EXPERIMENT_SAMPLINGS",
]


# -- one task -------------------------------------------------------------------------------------

def run_task(config: ExperimentConfig, sampling: str, seed: int, calibration: dict, *, setup: Setup | None = None,
             progress=None) -> dict:
    """Train a fresh model (initialised from ``seed``) with one schedule, at the schedule's own
    learning rate (:meth:`~dropmuon.verification.torchside.plan.ExperimentConfig.for_schedule`);
    returns the run's record."""
    import torch

    from .training import train

    config = config.for_schedule(sampling)
    setup = setup or make_setup(config)
    data = setup.data
    L, cm = load_constants(calibration)
    epoch_length = config.epoch_length(len(data.x_train))
    sampler, info = schedules([sampling], len(L), L, cm, epoch_length, calibration.get("phases"))[sampling]
    model, opt, loss, metric = setup.build(config, seed, training=True)
    if len(opt.layer_groups()) != len(L):
        raise ValueError(f"the constants have {len(L)} layers but the network has {len(opt.layer_groups())}")
    r = train(model, opt, data, sampler, max_steps=config.max_steps, batch=config.batch,
              target_acc=config.target_acc, max_seconds=config.max_seconds, eval_every=config.eval_every,
              seed=seed, device=config.device, loss_fn=loss, metric=metric, progress=progress, info=info,
              grad_norm_examples=config.grad_norm_examples, grad_norm_every=config.grad_norm_every,
              stop_at_target=config.stop_at_target)
    from .environment import environment, ns_dtype_of

    return dict(r.as_dict(), settings=config.run_settings(), torch=torch.__version__,
                threads=torch.get_num_threads(), environment=environment(config.device, ns_dtype_of(opt)))


# -- the whole loop -------------------------------------------------------------------------------

def tune_learning_rates(config: ExperimentConfig, calibration: dict, out: Path | None = None, *,
                        setup: Setup | None = None, progress=None, resume: bool = True) -> dict | None:
    """Each schedule's learning rate, chosen from ``config.lr_grid`` on the tuning seeds
    (:func:`~dropmuon.verification.torchside.plan.tuning_seeds`, disjoint from the evaluation
    seeds): every (schedule, rate, seed) is one run with the experiment's settings; a schedule's
    score at a rate is the median over the
    tuning seeds of its iterations to the target (interpolated; a run that misses counts as
    infinite), ties broken by the median final training loss. Iterations, not seconds: a
    schedule's cost per step does not depend on its rate, so the two orderings agree, and
    iterations do not carry the machine's timing noise. With ``config.radius_rule`` the grid is
    over the base rate ``η`` of that rule (``η/π_i`` for ``inverse-inclusion``).

    The runs are saved under ``OUT/tuning/`` and resume like the evaluation runs. Returns
    ``None`` without a grid, else ``{"lr": {schedule: rate}, "grid", "seeds", "table":
    {schedule: {rate: {"iterations": [...], "median", "reached", "final_loss_median"}}},
    "train_time_s", "runs", "edge": [schedules whose rate is at an end of the grid]}``."""
    from ..runs.execution import Task, run_tasks

    if config.lr_grid is None:
        return None
    setup = setup or make_setup(config)
    fp = _fingerprint(calibration)
    seeds = tuning_seeds(config)
    base = dataclasses_replace(config, tuned_lr=(), pilot=False)
    tasks = []
    for s in config.samplings:
        for lr in config.lr_grid:
            for k in seeds:
                tasks.append(Task(f"{s}-lr{lr:g}-seed{k}", _task_record,
                                  (dataclasses_replace(base, lr=lr), s, k, calibration, fp, setup)))
    runs = run_tasks(tasks, results=out / "tuning" if out is not None else None, decode=_decode_run,
                     manifest={"settings": _jsonable_settings(base), "grid": list(config.lr_grid),
                               "seeds": list(seeds), "calibration": fp},
                     on_mismatch="rerun", resume=resume, progress=progress, label="tuning")
    table, chosen, spent = {}, {}, 0.0
    for s in config.samplings:
        table[s] = {}
        for lr in config.lr_grid:
            rs = [r for r in runs if r["sampling"] == s and r["settings"]["lr"] == lr]
            spent += sum(r.get("train_time_s") or 0.0 for r in rs)
            its = [_interpolated(r, "iterations_to_target_interpolated", "iterations_to_target") for r in rs]
            score = float(np.median([math.inf if v is None else v for v in its]))
            loss = float(np.median([r["final_train_loss"] if math.isfinite(r["final_train_loss"]) else math.inf
                                    for r in rs]))
            table[s][lr] = {"iterations": its, "median": score if math.isfinite(score) else None,
                            "reached": sum(v is not None for v in its), "final_loss_median": loss}
        chosen[s] = min(config.lr_grid, key=lambda lr: (table[s][lr]["median"] if table[s][lr]["median"] is not None
                                                        else math.inf, table[s][lr]["final_loss_median"]))
    grid = sorted(config.lr_grid)
    return {"lr": chosen, "grid": list(config.lr_grid), "seeds": list(seeds), "radius_rule": config.radius_rule,
            "table": {s: {f"{lr:g}": v for lr, v in t.items()} for s, t in table.items()},
            "train_time_s": spent, "runs": len(runs),
            "edge": [s for s, lr in chosen.items() if lr in (grid[0], grid[-1])],
            "criterion": "median over the tuning seeds of the iterations to the target (a miss counts as infinite), "
                         "ties by the median final training loss"}


def _decode_run(record):
    """A training task's record as saved; a damaged one raises, so that the task is run again."""
    if not isinstance(record, dict) or not {"sampling", "seed", "calibration"} <= set(record):
        raise ValueError("not a training run record")
    return record


def _task_record(config: ExperimentConfig, sampling: str, seed: int, calibration: dict, fingerprint: str,
                 setup: Setup | None = None) -> dict:
    """One training task as the execution layer runs it (in this process, a local worker or a Dask
    worker): subnormal flushing set first, then :func:`run_task`."""
    _set_denormals(config)
    return dict(run_task(config, sampling, seed, calibration, setup=setup, progress=False), calibration=fingerprint)


def run_experiment(config, data=None, *, loss_fn=None, metric=None, out=None, progress=None, resume: bool = True,
                   jobs: int = 1, scheduler: str | None = None, settings: ExperimentConfig | None = None,
                   stop_after: str | None = None) -> dict:
    """The closed loop, in either of two forms:

    * ``run_experiment(config, out=…)`` (or ``run_experiment(config, OUT)``) — everything from an
      :class:`~dropmuon.verification.torchside.plan.ExperimentConfig` (its ``model`` and ``data`` by name);
    * ``run_experiment(model_factory, data, loss_fn=…, metric=…, settings=ExperimentConfig(…),
      out=…)`` — your factory (called ``factory(data)`` with torch seeded per run; it returns the
      model, or ``(model, loss[, metric])``) and a loaded
      :class:`~dropmuon.verification.torchside.data.Dataset` (its ``task`` picks the default loss and
      metric). The factory must be picklable for ``jobs > 1`` or a Dask scheduler (a module-level
      function is).

    Calibrate, then run every (seed, sampling) task — seeds in order, the samplings of each seed
    in an order shuffled by the seed so that slow drifts of the machine do not favour one
    schedule — and summarise. The tasks go through :func:`dropmuon.verification.runs.execution.run_tasks`:
    ``jobs`` local processes or a Dask ``scheduler`` (on a CPU, parallel runs share the cores, so
    their wall-clock times are comparable with each other only; one worker per machine or GPU is
    the setting for timing). With ``out`` every task's result is written atomically to
    ``OUT/runs/`` and, with ``resume``, finished tasks made with the same settings and calibration
    are read back instead of re-run. Returns ``{"calibration", "runs", "summary"}``.

    ``stop_after="calibration"`` or ``"tuning"`` stops there, before the predictions and the
    first evaluation run, and returns ``{"calibration", "tuning", "stopped_after"}``: the
    calibration (which times the layers) wants an idle machine, the tuning (scored in
    iterations) does not, so the two can be run at different times; a later call without
    ``stop_after`` reads both back and goes on."""
    import warnings

    from ..runs.execution import Task, run_tasks, scheduler_address
    from .build import resolve_factory

    if stop_after not in (None, "calibration", "tuning"):
        raise ValueError(f"stop_after must be 'calibration' or 'tuning', not {stop_after!r}")

    if isinstance(config, ExperimentConfig):
        if settings is not None or hasattr(data, "x_train"):
            raise ValueError("with an ExperimentConfig, give the data and settings in it (config.data), not as arguments")
        if data is not None:  # run_experiment(config, OUT): the results folder, positionally
            out, data = data, None
        factory = None
    else:
        factory = config
        _, label = resolve_factory(factory)
        config = ExperimentConfig(**dict(asdict(settings or ExperimentConfig()), model=label))
        if isinstance(data, str):
            config = ExperimentConfig(**dict(asdict(config), data=data))
            data = None
    out = Path(out) if out is not None else None
    _set_denormals(config)
    setup = make_setup(config, factory, data, loss_fn, metric)
    scheduler = scheduler_address(scheduler)
    if scheduler is None and jobs != 1 and config.device == "cpu":
        warnings.warn("parallel training runs on one machine share its CPU: their wall-clock times are comparable "
                      "with each other, not with serial runs", RuntimeWarning, stacklevel=2)
    cal = calibrate(config, out, progress=progress, setup=setup)
    cal = with_phases(config, cal, out, setup=setup, progress=progress)
    if stop_after == "calibration":
        return {"calibration": cal, "tuning": None, "stopped_after": stop_after}
    tuning = tune_learning_rates(config, cal, out, setup=setup, progress=progress, resume=resume)
    if tuning is not None:  # each schedule runs at its tuned rate from here on: pilot, predictions, evaluation
        config = dataclasses_replace(config, tuned_lr=tuple(tuning["lr"].items()))
        if out is not None:
            write_json_atomic(out / "tuning.json", tuning)
    if stop_after == "tuning":
        return {"calibration": cal, "tuning": tuning, "stopped_after": stop_after}
    fp = _fingerprint(cal)
    # predict first: the theorems' and the pilot's predictions, written with their digest before
    # the first evaluation run starts
    from .preregistration import register_predictions, score_runs

    pred, sha = register_predictions(config, cal, out, _predictions_fingerprint(config, fp), setup=setup,
                                     progress=progress)
    tasks = []
    for seed in config.seeds:
        order = np.random.default_rng([seed, 2]).permutation(len(config.samplings))
        tasks += [Task(f"{config.samplings[i]}-seed{seed}", _task_record,
                       (config, config.samplings[i], seed, cal, fp, setup)) for i in order]
    runs = run_tasks(tasks, results=out / "runs" if out is not None else None, jobs=jobs, scheduler=scheduler,
                     decode=_decode_run, manifest={"settings": _jsonable_settings(config), "calibration": fp},
                     on_mismatch="rerun",
                     resume=resume, progress=progress, label="runs")
    summary = summarize(config, cal, runs, n_train=len(setup.data.x_train))
    summary["data"] = setup.data.name
    summary["metric"] = runs[0].get("metric") if runs else None
    summary["predictions_sha256"] = sha
    summary["predictors"] = score_runs(config, pred, runs)
    if tuning is not None:
        spent = sum(r.get("train_time_s") or 0.0 for r in runs)
        summary["tuning"] = dict({k: v for k, v in tuning.items() if k != "table"},
                                 share=tuning["train_time_s"] / spent if spent else None)
    if cal.get("phases"):
        summary["phases"] = {k: cal["phases"][k] for k in ("starts", "horizon", "L", "method")}
        ph = ((pred.get("theorems") or {}).get("schedules") or {}).get("phase-optimal") or {}
        summary["phase_predictions"] = {k: ph.get(k) for k in ("phase_starts", "start_probs_per_phase",
                                                               "predicted_speedup_per_phase")}
    result = {"calibration": cal, "predictions": pred, "predictions_sha256": sha, "runs": runs, "summary": summary}
    if out is not None:
        write_json_atomic(out / "experiment.json", result)
    return result


def _set_denormals(config: ExperimentConfig) -> None:
    import warnings

    import torch

    from .optimizer import denormals_flushed

    if torch.device(config.device).type != "cpu":
        return
    torch.set_flush_denormal(config.flush_denormals)
    got = denormals_flushed()
    if config.flush_denormals and got < 1.0:
        warnings.warn(f"subnormal floats are flushed in only {got:.0%} of torch's CPU work: the worker threads "
                      f"started before torch.set_flush_denormal(True); call it before torch's first parallel "
                      f"operation (the dropmuon commands do), or CPU timings of late training are distorted",
                      RuntimeWarning, stacklevel=3)


def _predictions_fingerprint(config: ExperimentConfig, calibration_fp: str) -> str:
    """What the predictions depend on: the runs' settings, the schedules, the seeds (the pilot's
    length) and the calibration."""
    from dropmuon.verification.torchside.preregistration import digest

    return digest({"settings": _jsonable_settings(config), "samplings": list(config.samplings),
                   "seeds": list(config.seeds), "pilot": config.pilot, "radius_rule": config.radius_rule,
                   "calibration": calibration_fp})


def _jsonable_settings(config: ExperimentConfig) -> dict:
    return to_jsonable(config.run_settings())
