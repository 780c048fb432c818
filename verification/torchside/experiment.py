"""The closed loop (torch extra): measure a model's layer-wise constants and per-layer costs, let
:func:`solvers.optimal_sampling` choose the RPT start distributions of the max- and sum-form, train
with each schedule (full Muon, uniform index sampling, the two optima, the epoch-shift schedule)
over several seeds to a target training accuracy, and compare wall-clock time to target with the
theory's prediction.

Every run is one task whose result is written atomically to ``OUT/runs/<sampling>-seed<k>.json``;
a re-run with the same settings skips finished tasks, so a killed experiment resumes where it
stopped. Speed-ups over full Muon are paired by seed (same initialisation and minibatch order) and
summarised by the geometric mean with a Student-t confidence interval on the log ratios.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from dataclasses import replace as dataclasses_replace
from pathlib import Path

import numpy as np

from dropmuon.theory import CostModel

from dropmuon.theory._io import read_json, to_jsonable, write_json_atomic

from ..forecasting.measured import TRAJECTORY_METHOD, constants_method, load_constants
from ..forecasting.measured import cost_dict as _cost_dict

__all__ = [
    "ExperimentConfig", "measure_network", "load_constants", "calibrate", "schedules", "predictions", "run_task",
    "run_experiment", "summarize", "speedup_ci", "seeds_needed", "CONFIDENCE", "BOOTSTRAP_RESAMPLES",
    "RESOLVE_EFFECT", "POWER", "suspect_runs", "SPREAD_LIMIT", "ACROSS_RUNS_LIMIT", "seeds_for_width",
    "PRESETS", "preset_settings", "lhs_thresholds", "measure_phases", "with_phases", "tune_learning_rates",
    "tuning_seeds", "PHASE_SEED", "TUNE_SEED", "EXPERIMENT_SAMPLINGS",
]

#: two-sided level of the confidence intervals on speed-ups
CONFIDENCE = 0.95

# the schedules the closed loop compares, in the order they are reported
DEFAULT_SAMPLINGS = ("full", "uniform", "optimal-max", "optimal-sum", "epoch-shift")
#: every schedule the closed loop can run (``phase-optimal`` on request: it needs a phase measurement)
EXPERIMENT_SAMPLINGS = DEFAULT_SAMPLINGS + ("phase-optimal",)

#: the seed of the full-Muon run along which the phase-optimal schedule's constants are measured
#: (the evaluation seeds are small integers, the pilot's is 1_000_003; this one is neither)
PHASE_SEED = 1_000_033
#: the first of the learning-rate tuning seeds (``tune_runs`` consecutive ones, disjoint from the
#: evaluation, pilot and phase seeds)
TUNE_SEED = 2_000_003
#: steps between two online estimates along the phase measurement's run (1: every step)
PHASE_ESTIMATE_EVERY = 1


def tuning_seeds(config) -> tuple:
    """The seeds the learning rates are tuned on: ``TUNE_SEED, TUNE_SEED + 1, …`` (``tune_runs``
    of them), never an evaluation seed (:class:`ExperimentConfig` refuses a clash).

    >>> tuning_seeds(ExperimentConfig(tune_runs=3))
    (2000003, 2000004, 2000005)
    """
    return tuple(TUNE_SEED + i for i in range(config.tune_runs))


@dataclass(frozen=True)
class ExperimentConfig:
    """Settings of the closed loop. ``model``: a built-in model (``cnn``, ``resnet``,
    ``transformer``) or an import path ``PACKAGE.MODULE:FACTORY``
    (:func:`~dropmuon.verification.torchside.build.resolve_factory`); ``constants``: a
    ``dropmuon estimate --json`` file to use instead of measuring (its ``L`` and cost model);
    ``data``: a built-in data set (``digits``, ``mnist5k``, ``text``) or a local ``.npz`` (default:
    the model's own, digits for a model of yours); ``target_acc``: the target value of the
    metric (accuracy unless the model's factory gives another); ``max_seconds``: wall-clock
    limit per training run; ``flush_denormals``: run with
    subnormal floats flushed to zero on the CPU (:func:`~dropmuon.verification.torchside.optimizer.denormals_flushed`
    says why; :func:`run_experiment` sets it and warns when torch's thread pool did not take it);
    ``radius_rule``: each layer's Muon step length in the training runs
    (:data:`~dropmuon.verification.torchside.optimizer.RADIUS_RULES`): ``"common"``, Muon's one
    ``lr``, or ``"inverse-inclusion"``, ``lr/π_i`` with ``π_i`` the layer's inclusion probability
    under the run's schedule (the theorems' radii; full Muon is unchanged by it). The calibration's
    steps of full Muon do not depend on it. ``grad_norm_examples``, ``grad_norm_every``: the
    training examples on which every run records the gradient norms the summary's ``ε²`` metric
    uses — a fixed subset of that many (the default, ``training.GRAD_NORM_EXAMPLES``) or, with
    ``None``, the whole training set — and the fewest steps between two recordings
    (``training.GRAD_NORM_EVERY``; :func:`~dropmuon.verification.torchside.training.train`);
    ``stop_at_target``: end a run at its target (the default) or train on to ``max_steps`` — the
    time to target is the same either way, but the theorems' running average may still be rising
    at the target, and only a run that goes on shows it fall to the summary's ``ε²``; ``pilot``:
    before the evaluation runs, a short pilot run of every schedule on a seed of its own, whose
    progress per iteration and time per step predict each schedule's speed-up beside the
    theorems (:mod:`~dropmuon.verification.torchside.preregistration`).

    The regimes beyond today's minibatch protocol: ``batch="full"`` (:data:`~dropmuon.verification.torchside.data.FULL_BATCH`),
    every step on the whole training set, which ``train_examples`` (the first that many training
    examples, :meth:`~dropmuon.verification.torchside.data.Dataset.head`) keeps affordable — the
    setting of the deterministic theorems; ``lr_grid``: a learning rate per schedule, tuned over
    this grid on ``tune_runs`` seeds of their own before the evaluation runs
    (:func:`tune_learning_rates`; the chosen rates land in ``tuned_lr``, pairs ``(schedule, lr)``
    that override ``lr`` for that schedule); ``phases``: the number of phases of the
    ``phase-optimal`` schedule, whose constants are measured per phase along full Muon's
    trajectory (:func:`measure_phases`)."""

    seeds: tuple = (0, 1, 2)
    samplings: tuple = DEFAULT_SAMPLINGS
    max_steps: int = 300
    target_acc: float = 0.97
    max_seconds: float | None = None
    batch: int | str = 256
    lr: float = 0.05
    width: float = 1.0
    eval_every: int = 5
    estimate_steps: int = 20
    cost_repeats: int = 7
    device: str = "cpu"
    data: str | None = None
    data_seed: int = 0
    constants: str | None = None
    flush_denormals: bool = True
    model: str = "cnn"
    ns_dtype: str = "auto"
    channels_last: bool = False
    compile: bool = False
    radius_rule: str = "common"
    grad_norm_examples: int | None = 256  # training.GRAD_NORM_EXAMPLES (a test checks they agree)
    grad_norm_every: int = 20  # training.GRAD_NORM_EVERY (likewise)
    stop_at_target: bool = True
    pilot: bool = True
    train_examples: int | None = None
    lr_grid: tuple | None = None
    tune_runs: int = 2
    phases: int = 4
    tuned_lr: tuple = ()

    def __post_init__(self):
        from .data import FULL_BATCH
        from .training import SAMPLINGS

        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "samplings", tuple(self.samplings))
        if not self.seeds:
            raise ValueError("the experiment needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct; got seeds = {list(self.seeds)}")
        bad = [s for s in self.samplings if s not in SAMPLINGS or s == "custom"]
        if bad:
            raise ValueError(f"unknown sampling {bad[0]!r}; choose from: {', '.join(EXPERIMENT_SAMPLINGS)}")
        if "full" not in self.samplings:
            raise ValueError("the experiment needs the 'full' sampling: speed-ups are measured against it")
        if isinstance(self.target_acc, bool) or not (isinstance(self.target_acc, (int, float))
                                                     and math.isfinite(self.target_acc)):
            raise ValueError(f"the target must be a finite number; got target_acc = {self.target_acc!r}")
        from .environment import NS_DTYPES

        if self.ns_dtype != "auto" and self.ns_dtype not in NS_DTYPES:
            raise ValueError(f"unknown Newton-Schulz dtype {self.ns_dtype!r}; choose auto, {', '.join(NS_DTYPES)}")
        if not (isinstance(self.model, str) and self.model):
            raise ValueError(f"model must be a built-in name or PACKAGE.MODULE:FACTORY; got model = {self.model!r}")
        from .optimizer import RADIUS_RULES

        if self.radius_rule not in RADIUS_RULES:
            raise ValueError(f"unknown radius rule {self.radius_rule!r}; choose {', '.join(RADIUS_RULES)}")
        n = self.grad_norm_examples
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"grad_norm_examples must be a positive integer or None (the whole training set); "
                             f"got grad_norm_examples = {n!r}")
        for name in ("channels_last", "compile", "stop_at_target", "pilot"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; got {name} = {getattr(self, name)!r}")
        if self.batch != FULL_BATCH and (isinstance(self.batch, bool) or not isinstance(self.batch, int)
                                         or self.batch < 1):
            raise ValueError(f"batch must be a positive integer or {FULL_BATCH!r}; got batch = {self.batch!r}")
        for name in ("max_steps", "eval_every", "estimate_steps", "cost_repeats", "grad_norm_every", "tune_runs",
                     "phases"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {name} = {v!r}")
        n = self.train_examples
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"train_examples must be a positive integer or None (every training example); "
                             f"got train_examples = {n!r}")
        if self.lr_grid is not None:
            grid = tuple(self.lr_grid) if isinstance(self.lr_grid, (list, tuple)) else (self.lr_grid,)
            bad = [v for v in grid if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                   or v <= 0]
            if bad or len(grid) < 2 or len(set(grid)) != len(grid):
                raise ValueError(f"lr_grid must be at least two distinct positive learning rates; got "
                                 f"lr_grid = {self.lr_grid!r}")
            object.__setattr__(self, "lr_grid", tuple(float(v) for v in grid))
            clash = sorted(set(self.seeds) & set(tuning_seeds(self)))
            if clash:
                raise ValueError(f"seed {clash[0]} is both an evaluation seed and a tuning seed; the learning rates "
                                 f"are tuned on seeds {list(tuning_seeds(self))}, disjoint from the evaluation's")
        object.__setattr__(self, "tuned_lr", tuple((str(k), float(v)) for k, v in dict(self.tuned_lr).items()))
        for k, v in self.tuned_lr:
            if k not in self.samplings or not (math.isfinite(v) and v > 0):
                raise ValueError(f"tuned_lr must pair the experiment's schedules with positive learning rates; "
                                 f"got ({k!r}, {v!r})")
        reserved = {PHASE_SEED: "the phase measurement's"}
        from .preregistration import PILOT_SEED

        reserved[PILOT_SEED] = "the pilot's"
        for k in self.seeds:
            if k in reserved:
                raise ValueError(f"seed {k} is {reserved[k]} seed; choose evaluation seeds other than "
                                 f"{sorted(reserved)}")
        for name in ("lr", "width"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number; got {name} = {v!r}")

    def run_settings(self) -> dict:
        """The settings a training run's result depends on (a resumed run must match them). The
        radius rule is there unless it is Muon's common one, and the gradient norms' examples and
        interval and ``stop_at_target`` unless they are the defaults (absent then, so results from
        before they existed match): runs of one rule are never resumed as runs of the other."""
        keys = ("model", "ns_dtype", "max_steps", "target_acc", "max_seconds", "batch", "lr", "width", "eval_every",
                "device",
                "data", "data_seed", "flush_denormals")
        rule = {} if self.radius_rule == "common" else {"radius_rule": self.radius_rule}
        for k in ("grad_norm_examples", "grad_norm_every", "stop_at_target"):
            if getattr(self, k) != getattr(ExperimentConfig, k):
                rule[k] = getattr(self, k)
        if self.train_examples is not None:
            rule["train_examples"] = self.train_examples
        if self.tuned_lr:
            rule["tuned_lr"] = [list(p) for p in self.tuned_lr]
        return dict({k: getattr(self, k) for k in keys}, **self._speed_settings(), **rule)

    def schedule_lr(self, sampling: str) -> float:
        """The learning rate of ``sampling``'s runs: its tuned rate when there is one, else ``lr``."""
        return dict(self.tuned_lr).get(sampling, self.lr)

    def for_schedule(self, sampling: str) -> "ExperimentConfig":
        """The settings of ``sampling``'s runs: ``lr`` its own (:meth:`schedule_lr`), no other
        schedule's tuned rate (so a run's recorded settings name its rate only)."""
        import dataclasses

        if not self.tuned_lr:
            return self
        return dataclasses.replace(self, lr=self.schedule_lr(sampling), tuned_lr=())

    def epoch_length(self, n_train: int) -> int:
        """Steps per pass over ``n_train`` training examples: 1 at full batch."""
        from .data import batch_size

        return max(1, math.ceil(n_train / batch_size(self.batch, n_train)))

    def _speed_settings(self) -> dict:
        """The speed options that are on (absent when off, so results from before they existed match)."""
        return {k: True for k in ("channels_last", "compile") if getattr(self, k)}


# -- calibration: constants and costs -------------------------------------------------------------

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


# -- schedules and their predicted cost -----------------------------------------------------------

def schedules(samplings, nlayers: int, L, cost_model: CostModel, epoch_length: int, phases=None) -> dict:
    """``{sampling: (sampler, info)}`` for the named schedules (:func:`training.make_schedule`;
    ``phases``: the per-phase constants ``phase-optimal`` needs, :func:`measure_phases`)."""
    from .training import make_schedule

    return {s: make_schedule(s, nlayers, L=L, costs=cost_model, epoch_length=epoch_length, phases=phases)
            for s in samplings}


def predictions(scheds: dict, L, cost_model: CostModel) -> dict:
    """Per schedule: the cost model's expected seconds per step and, for i.i.d. schedules, the
    total cost ``K(π) · E cost`` relative to full updates under the max-form (T1) and the sum-form
    (T1′) — the theory's predicted speed-up. The epoch-shift schedule is not i.i.d.: the theorems
    do not cover it, so it gets its expected cost per step only (averaged over a cycle)."""
    from dropmuon.solvers import optimal_sampling

    out = {}
    for name, (sampler, info) in scheds.items():
        rec = {}
        if hasattr(sampler, "distribution"):  # i.i.d.
            d = sampler.distribution
            rec["seconds_per_step"] = cost_model.expected_cost(d)
            for obj in ("max", "sum"):
                r = optimal_sampling(list(L), cost_model, family="fixed", objective=obj, distribution=d)
                rec[f"speedup_vs_full_{obj}"] = r.speedup_vs_full
            # K(π)/K(full): the predicted iteration ratio, max_i L_i/π_i / max_i L_i and its sum form
            pi, L_ = np.asarray(d.inclusion), np.asarray(L)
            rec["iterations_vs_full_max"] = float(np.max(L_ / pi) / np.max(L_))
            rec["iterations_vs_full_sum"] = float(np.sum(L_ / pi) / np.sum(L_))
        else:  # averaged over a cycle (epoch-shift) or over the measured phases (phase-optimal)
            w = getattr(sampler, "weights", None)
            rec["seconds_per_step"] = float(np.average([cost_model.expected_cost(d) for d in sampler.distributions],
                                                       weights=w))
            if "predicted_speedup_per_phase" in info:
                rec["phase_starts"] = info["phase_starts"]
                rec["predicted_speedup_per_phase"] = info["predicted_speedup_per_phase"]
        out[name] = rec
    return out


# -- one task -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setup:
    """What every run of an experiment shares: the model factory, the data, and the loss and
    metric (``None``: the factory's, else the data's defaults)."""

    factory: object
    label: str
    data: object
    loss_fn: object = None
    metric: object = None

    def build(self, config: "ExperimentConfig", seed: int, *, training: bool = False):
        """``(model, optimizer, loss, metric)``: a fresh model initialised from ``seed``, its
        Drop-Muon optimizer, and the loss and metric to train with. With ``config.channels_last``
        the model's 4-d weights (and so its convolutions' activations) use the channels-last
        memory format; with ``config.compile`` and ``training`` the model is compiled with one
        graph per start index (:func:`~dropmuon.verification.torchside.build.compile_per_start`; the
        constants' Hessian-vector products run uncompiled). ``config.radius_rule`` applies to a
        model for ``training`` (whose schedule gives the inclusion probabilities); the calibration's
        optimizer keeps the common rule, which is the same for its steps of full Muon."""
        import torch

        from .build import build_model, compile_per_start, optimizer_for
        from .environment import resolve_ns_dtype

        built = build_model(self.factory, self.data, seed=seed, device=config.device, width=config.width,
                            label=self.label)
        model = built.model
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = optimizer_for(model, self.data, lr=config.lr, device=config.device,
                            ns_dtype=resolve_ns_dtype(config.ns_dtype, config.device),
                            radius_rule=config.radius_rule if training else "common")
        if config.compile and training:
            model = compile_per_start(model, len(opt.layer_groups()))
        return model, opt, self.loss_fn or built.loss, self.metric or built.metric


def make_setup(config: "ExperimentConfig", factory=None, data=None, loss_fn=None, metric=None) -> Setup:
    """The :class:`Setup` of ``config`` (its ``model`` and ``data``), with a callable ``factory`` or
    a loaded ``data`` set taking their place when given; the model, loss and metric are checked on
    a few examples first (:func:`~dropmuon.verification.torchside.tasks.check_setup`)."""
    from .build import default_data_for, resolve_factory
    from .data import load_data
    from .tasks import check_setup, objective_for

    fac, label = resolve_factory(factory if factory is not None else config.model)
    if data is None:
        data = load_data(config.data if config.data is not None else default_data_for(config.model), config.data_seed)
    if config.train_examples is not None:
        data = data.head(config.train_examples)
    setup = Setup(fac, label, data.to(config.device), loss_fn, metric)
    model, opt, loss, met = setup.build(config, config.seeds[0])
    objective = objective_for(getattr(data, "task", "classification"), loss, met)
    objective.check_target(config.target_acc)
    check_setup(model, setup.data, objective, config.device)
    return setup


def run_task(config: ExperimentConfig, sampling: str, seed: int, calibration: dict, *, setup: Setup | None = None,
             progress=None) -> dict:
    """Train a fresh model (initialised from ``seed``) with one schedule, at the schedule's own
    learning rate (:meth:`ExperimentConfig.for_schedule`); returns the run's record."""
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


# -- statistics -----------------------------------------------------------------------------------

#: the speed-up the power analysis sizes an experiment for (10%: the size of the effects measured)
RESOLVE_EFFECT = 1.10
#: the power the seed count is sized for
POWER = 0.8

#: a run is marked suspect of contention when, for some start index, its p90/median step time
#: exceeds this (the same work timed repeatedly should spread by a few percent on a quiet machine)
SPREAD_LIMIT = 1.5
#: ... or when its median step time for a start differs from the median over all runs by more than
#: this fraction (the same step in another run of the same experiment should cost the same)
ACROSS_RUNS_LIMIT = 0.25

#: resamples of the percentile bootstrap interval beside the t-interval
BOOTSTRAP_RESAMPLES = 4000


def speedup_ci(baseline, other, confidence: float = CONFIDENCE) -> dict:
    """Paired speed-up ``baseline_k / other_k`` over the pairs where both are finite numbers:
    geometric ``mean`` with a Student-t interval on the log ratios (``low``, ``high``; ``None``
    with fewer than two pairs), the ``median`` ratio, a percentile-bootstrap interval of the
    geometric mean (``boot_low``, ``boot_high``; resampling the pairs, seeded, so the same data
    give the same interval), the standard deviation of the log ratios ``sd_log``, and
    ``decided``: ``"faster"`` / ``"slower"`` when the t-interval excludes 1, else
    ``"not significant"``.

    >>> r = speedup_ci([2.0, 4.0, 3.0], [1.0, 2.0, 1.5])
    >>> round(r["mean"], 12), round(r["low"], 12), round(r["high"], 12), r["n"], r["median"]
    (2.0, 2.0, 2.0, 3, 2.0)
    """
    from scipy import stats

    pairs = [(a, b) for a, b in zip(baseline, other)
             if a is not None and b is not None and a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)]
    n = len(pairs)
    out = {"mean": None, "low": None, "high": None, "n": n, "median": None, "boot_low": None, "boot_high": None,
           "sd_log": None, "decided": "not significant"}
    if n == 0:
        return out
    logs = np.log([a / b for a, b in pairs])
    m = float(logs.mean())
    out.update(mean=math.exp(m), median=float(np.exp(np.median(logs))))
    if n < 2:
        return out
    sd = float(logs.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n))
    boot = np.random.default_rng(0).choice(logs, size=(BOOTSTRAP_RESAMPLES, n), replace=True).mean(axis=1)
    lo, hi = np.quantile(boot, [0.5 - confidence / 2, 0.5 + confidence / 2])
    out.update(low=math.exp(m - half), high=math.exp(m + half), boot_low=float(np.exp(lo)),
               boot_high=float(np.exp(hi)), sd_log=sd)
    if m - half > 0:
        out["decided"] = "faster"
    elif m + half < 0:
        out["decided"] = "slower"
    return out


def seeds_for_width(sd_log: float, ratio: float, *, confidence: float = CONFIDENCE, max_seeds: int = 100_000) -> int:
    """The fewest paired seeds whose ``confidence`` t-interval of a geometric-mean speed-up is
    within a factor ``ratio`` of its centre on each side, ``t_{(1+c)/2, n−1} · sd_log / √n ≤ log ratio``,
    when the log ratios have standard deviation ``sd_log`` (a pilot's). The criterion of a
    comparison planned for a stated interval width rather than a stated power
    (:func:`seeds_needed`); it does not depend on the effect's size. The realised interval uses the
    sample's own spread, so it is within the planned width only when that spread is at most
    ``sd_log``: with probability about ``P(χ²_{n−1} ≤ n−1)``, roughly one half, if ``sd_log`` is the
    true spread; plan with a pilot's upper value for a firmer guarantee.

    >>> seeds_for_width(0.321, 1.10)  # the 8-seed MNIST pilot's largest spread, intervals within ±10%
    47
    """
    from scipy.stats import t as student_t

    if not (sd_log > 0 and math.isfinite(sd_log)):
        raise ValueError(f"sd_log must be a positive number; got sd_log = {sd_log!r}")
    if not (ratio > 1 and math.isfinite(ratio)):
        raise ValueError(f"ratio must be a number above 1; got ratio = {ratio!r}")
    target = math.log(ratio) / sd_log
    n = 2
    while student_t.ppf(0.5 + confidence / 2, n - 1) / math.sqrt(n) > target:
        n += 1
        if n > max_seeds:
            raise ValueError(f"more than {max_seeds} seeds would be needed (ratio {ratio}, sd_log {sd_log})")
    return n


#: Named settings of ``dropmuon experiment --preset``, per device type: what the options not given
#: on the command line become. ``paper-gpu`` is the paper's MNIST setting as far as the shipped data
#: allows (the 5000 real 28×28 MNIST images, the CNN at full width, a large batch), sized to finish
#: in under 8 minutes on one H200 (an estimate: full Muon reached 0.97 in 90 steps at batch 512 on a
#: CPU, uniform sampling needs ~3x more; ~2 s per run at a few ms per step, 5 schedules × 40 seeds,
#: not yet timed on a GPU); on a CPU the same preset runs at the 2-core size of the MNIST pilot
#: (862 s on a 2-core EPYC).
PRESETS = {
    "paper-gpu": {
        "cuda": {"model": "cnn", "data": "mnist5k", "width": 1.0, "batch": 512, "lr": 0.1, "seeds": 40,
                 "target_acc": 0.97, "max_steps": 600, "eval_every": 10},
        "cpu": {"model": "cnn", "data": "mnist5k", "width": 0.25, "batch": 128, "lr": 0.1, "seeds": 8,
                "target_acc": 0.97, "max_steps": 1000, "eval_every": 20},
    },
}


def preset_settings(name: str, device: str) -> dict:
    """The settings of preset ``name`` on ``device`` (``cpu`` or ``cuda``; other torch devices
    take the CPU size).

    >>> preset_settings("paper-gpu", "cuda")["width"], preset_settings("paper-gpu", "cpu")["width"]
    (1.0, 0.25)
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose {', '.join(PRESETS)}")
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    return dict(PRESETS[name][kind])


def seeds_needed(sd_log: float, effect: float, *, confidence: float = CONFIDENCE, power: float = 0.8,
                 max_seeds: int = 100_000) -> int:
    """The fewest paired seeds with which the two-sided paired t-test at level ``1 − confidence``
    (the interval of :func:`speedup_ci` excluding 1) detects a true speed-up ``effect`` with
    probability at least ``power``, when the log ratios have standard deviation ``sd_log``. Exact
    for normal log ratios: the power with ``n`` seeds is ``P(|T| > t_{1−α/2, n−1})`` for ``T``
    non-central t with ``n − 1`` degrees of freedom and non-centrality ``√n |log effect| / sd_log``.

    >>> seeds_needed(0.25, 1.10)  # the spread measured on CPU closed loops, a 10% effect
    56
    """

    if not (sd_log > 0 and math.isfinite(sd_log)):
        raise ValueError(f"sd_log must be a positive number; got sd_log = {sd_log!r}")
    if not (effect > 0 and effect != 1 and math.isfinite(effect)):
        raise ValueError(f"effect must be a positive speed-up other than 1; got effect = {effect!r}")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1); got power = {power!r}")
    delta = abs(math.log(effect)) / sd_log
    lo, hi = 2, 2
    while _t_power(hi, delta, confidence) < power:  # double, then bisect: power grows with n
        lo, hi = hi, hi * 2
        if hi > max_seeds:
            raise ValueError(f"more than {max_seeds} seeds would be needed (effect {effect}, sd_log {sd_log})")
    while lo < hi:
        mid = (lo + hi) // 2
        if _t_power(mid, delta, confidence) >= power:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _t_power(n: int, delta: float, confidence: float) -> float:
    from scipy import stats

    df = n - 1
    tc = stats.t.ppf(0.5 + confidence / 2, df)
    nc = delta * math.sqrt(n)
    return float(stats.nct.sf(tc, df, nc) + stats.nct.cdf(-tc, df, nc))


def suspect_runs(runs: list[dict]) -> list[dict]:
    """Runs whose step times suggest the machine was shared (contention): within the run, a start
    index whose steps spread by more than :data:`SPREAD_LIMIT` (p90 / median); across runs, a start
    index whose median step time differs from the median over all runs by more than
    :data:`ACROSS_RUNS_LIMIT`. Returns ``[{"sampling", "seed", "reason"}]``; runs without step-time
    records are not judged."""
    medians: dict[int, list] = {}
    for r in runs:
        for rec in (r.get("step_times") or {}).get("per_start", []):
            if rec["n"] >= 5:
                medians.setdefault(rec["s"], []).append(rec["median_s"])
    overall = {s: float(np.median(v)) for s, v in medians.items()}
    out = []
    for r in runs:
        st = r.get("step_times")
        if not st:
            continue
        reasons = []
        if st.get("spread") is not None and st["spread"] > SPREAD_LIMIT:
            reasons.append(f"step times spread {st['spread']:.2f}x (p90/median) within the run")
        for rec in st.get("per_start", []):
            ref = overall.get(rec["s"])
            if rec["n"] >= 5 and ref and abs(rec["median_s"] / ref - 1) > ACROSS_RUNS_LIMIT:
                reasons.append(f"start {rec['s']}: median step {rec['median_s'] * 1e3:.1f} ms against "
                               f"{ref * 1e3:.1f} ms over all runs")
        if reasons:
            out.append({"sampling": r["sampling"], "seed": r["seed"], "reason": "; ".join(reasons)})
    return out


def _interpolated(run, key: str, fallback: str):
    """A run's interpolated time or iterations to target; records written before interpolation
    existed give the value at the evaluation."""
    if run is None:
        return None
    return run.get(key, run.get(fallback))


def lhs_thresholds(runs_by_seed: dict, seeds) -> list:
    """Per seed, the threshold ``ε²`` of the theorems' left-hand side: the value the running
    average of ``Σ_i ‖∇_i f‖_*²`` over full Muon's recordings
    (:func:`~dropmuon.verification.torchside.training.lhs_average`) has at full Muon's (interpolated)
    target crossing, by linear interpolation between the recordings around it — so ``ε`` is the
    stationarity full Muon has on average when it reaches the target, and a schedule's time to
    ``ε²`` is paired with full Muon's by seed. ``None`` for a seed whose full run did not reach the
    target or recorded no gradient norms. ``runs_by_seed``: full Muon's run records by seed."""
    from .training import lhs_average_at

    out = []
    for k in seeds:
        r = runs_by_seed.get(k)
        at = _interpolated(r, "iterations_to_target_interpolated", "iterations_to_target")
        out.append(lhs_average_at(r.get("history") or [], at) if at is not None else None)
    return out


def _lhs_crossing(run, eps2):
    """``(iterations, seconds)`` at which a run's running average falls to ``eps2``."""
    from .training import lhs_crossing

    if run is None or eps2 is None:
        return None, None
    return lhs_crossing(run.get("history") or [], eps2)


def _mean_sd(xs):
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    if not xs:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(np.mean(xs)), "sd": float(np.std(xs, ddof=1)) if len(xs) > 1 else None, "n": len(xs)}


def summarize(config: ExperimentConfig, calibration: dict, runs: list[dict], n_train: int | None = None) -> dict:
    """Per schedule: runs reaching the target, mean time and iterations to target (interpolated
    between the evaluations that bracket the target: :func:`~dropmuon.verification.torchside.training.target_crossing`),
    final train and
    test accuracy, measured vs predicted seconds per step, and speed-ups over full Muon (time and
    iterations) with confidence intervals; then the measured winner and whether the max-form's or
    the sum-form's prediction picked it. ``L_source`` and ``L_method`` say where the constants came
    from: ``"measured"`` and the trajectory estimate, or the file of ``config.constants`` and the
    method recorded in it (``None`` when it records none).

    Beside time to target, the theorems' own quantity: per schedule, the iterations and seconds
    until the running average of ``Σ_i ‖∇_i f‖_*²`` over the run's recordings (the theorems'
    left-hand side, the average over iterations approximated by the average over the recordings)
    falls to ``ε²`` (:func:`~dropmuon.verification.torchside.training.lhs_crossing`), with ``ε²``
    set per seed from full Muon's run (:func:`lhs_thresholds`; the summary's ``eps2``), so the
    metric is paired by seed: ``reached_eps2``, ``iterations_to_eps2``, ``time_to_eps2_s`` and the
    speed-ups over full Muon ``speedup_iterations_eps2`` / ``speedup_time_eps2`` (full's / this
    schedule's, with confidence intervals, like the others). A run stopped at its target may end
    while its average still rises; it has then not fallen to ``ε²`` and counts as not reaching it
    (``config.stop_at_target=False`` trains on)."""
    L, cm = load_constants(calibration)
    epoch_length = config.epoch_length(n_train if n_train is not None else _n_train(config))
    scheds = schedules(config.samplings, len(L), L, cm, epoch_length, calibration.get("phases"))
    pred = predictions(scheds, L, cm)
    by = {s: {r["seed"]: r for r in runs if r["sampling"] == s} for s in config.samplings}
    seeds = list(config.seeds)
    rows = {}
    full = by["full"]
    eps2 = lhs_thresholds(full, seeds)
    full_eps = [_lhs_crossing(full.get(k), e) for k, e in zip(seeds, eps2)]
    for s in config.samplings:
        rs = [by[s].get(k) for k in seeds]
        eps = [_lhs_crossing(r, e) for r, e in zip(rs, eps2)]
        t = [_interpolated(r, "time_to_target_interpolated_s", "time_to_target_s") for r in rs]
        it = [_interpolated(r, "iterations_to_target_interpolated", "iterations_to_target") for r in rs]
        row = {
            "sampling": s, "start_probs": scheds[s][1]["start_probs"], "runs": sum(r is not None for r in rs),
            "reached": sum(x is not None for x in t),
            "time_to_target_s": _mean_sd(t), "iterations_to_target": _mean_sd(it),
            "final_train_acc": _mean_sd([r["final_train_acc"] if r else None for r in rs]),
            "test_acc": _mean_sd([r["test_acc"] if r else None for r in rs]),
            "seconds_per_step": _mean_sd([r["seconds_per_step"] if r else None for r in rs]),
            "predicted_seconds_per_step": pred[s]["seconds_per_step"],
            "speedup_time": speedup_ci([_interpolated(full.get(k), "time_to_target_interpolated_s", "time_to_target_s")
                                        for k in seeds], t),
            "speedup_iterations": speedup_ci([_interpolated(full.get(k), "iterations_to_target_interpolated",
                                                            "iterations_to_target") for k in seeds], it),
            "time_to_target_at_evaluation_s": _mean_sd([r["time_to_target_s"] if r else None for r in rs]),
            "speedup_per_step": speedup_ci([full[k]["seconds_per_step"] if k in full else None for k in seeds],
                                           [r["seconds_per_step"] if r else None for r in rs]),
            "predicted_speedup_max": pred[s].get("speedup_vs_full_max"),
            "predicted_speedup_sum": pred[s].get("speedup_vs_full_sum"),
            "predicted_iterations_ratio_max": pred[s].get("iterations_vs_full_max"),
            "predicted_iterations_ratio_sum": pred[s].get("iterations_vs_full_sum"),
            "reached_eps2": sum(i is not None for i, _ in eps),
            "iterations_to_eps2": _mean_sd([i for i, _ in eps]), "time_to_eps2_s": _mean_sd([t_ for _, t_ in eps]),
            "speedup_iterations_eps2": speedup_ci([i for i, _ in full_eps], [i for i, _ in eps]),
            "speedup_time_eps2": speedup_ci([t_ for _, t_ in full_eps], [t_ for _, t_ in eps]),
        }
        sd = row["speedup_time"]["sd_log"]
        # how many seeds this spread needs to resolve a 10% effect: a result "not significant" with
        # fewer is undecided, not evidence of no effect
        row["seeds_to_resolve"] = seeds_needed(sd, RESOLVE_EFFECT, power=POWER) if sd else None
        rows[s] = row
    measured = {s: r["speedup_time"]["mean"] for s, r in rows.items() if r["speedup_time"]["mean"] is not None}
    winner = max(measured, key=measured.get) if measured else None
    verdict = {"measured_winner": winner}
    iid = [s for s in config.samplings if rows[s]["predicted_speedup_max"] is not None]
    for obj in ("max", "sum"):
        p = {s: rows[s][f"predicted_speedup_{obj}"] for s in iid}
        pw = max(p, key=p.get)
        verdict[f"predicted_winner_{obj}"] = pw
        verdict[f"{obj}_form_matched"] = pw == winner
        common = [s for s in iid if s in measured]
        if len(common) >= 3:
            from scipy.stats import spearmanr

            verdict[f"rank_correlation_{obj}"] = float(spearmanr([p[s] for s in common],
                                                                 [measured[s] for s in common]).statistic)
    return {"config": asdict(config), "L": L, "L_source": calibration.get("source"),
            "L_method": calibration.get("method"), "cost_model": calibration["cost_model"], "rows": rows,
            "verdict": verdict, "confidence": CONFIDENCE, "suspect_runs": suspect_runs(runs), "eps2": eps2,
            "power_analysis": {"effect": RESOLVE_EFFECT, "power": POWER, "confidence": CONFIDENCE}}


def _n_train(config: ExperimentConfig) -> int:
    from .build import default_data_for
    from .data import load_data

    name = config.data if config.data is not None else default_data_for(config.model)
    n = len(load_data(name, config.data_seed).x_train)
    return n if config.train_examples is None else min(n, config.train_examples)


# -- the whole loop -------------------------------------------------------------------------------

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


def _phase_settings(config: ExperimentConfig) -> dict:
    """What the phase measurement depends on beyond the calibration's settings."""
    return {k: getattr(config, k) for k in ("phases", "max_steps", "target_acc", "eval_every", "train_examples")} | {
        "seed": PHASE_SEED, "estimate_every": PHASE_ESTIMATE_EVERY}


def measure_phases(config: ExperimentConfig, *, setup: Setup | None = None, progress=None) -> dict:
    r"""Per-phase layer-wise constants for the ``phase-optimal`` schedule, measured along one run
    of full Muon (seed :data:`PHASE_SEED`, the experiment's settings, stopping at the target):
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


def tune_learning_rates(config: ExperimentConfig, calibration: dict, out: Path | None = None, *,
                        setup: Setup | None = None, progress=None, resume: bool = True) -> dict | None:
    """Each schedule's learning rate, chosen from ``config.lr_grid`` on the tuning seeds
    (:func:`tuning_seeds`, disjoint from the evaluation seeds): every (schedule, rate, seed) is
    one run with the experiment's settings; a schedule's score at a rate is the median over the
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
      :class:`ExperimentConfig` (its ``model`` and ``data`` by name);
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
