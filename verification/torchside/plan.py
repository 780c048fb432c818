"""What a closed-loop experiment runs, before anything is trained or timed: its settings
(:class:`ExperimentConfig`, the named :data:`PRESETS`) and the seeds it reserves, what all its runs
share (:class:`Setup`: the model factory, the data, the loss and the metric), and the schedules it
compares with the theory's predicted cost of each (:func:`schedules`, :func:`predictions`).
:mod:`~dropmuon.verification.torchside.calibration` measures the constants and costs the
schedules come from; :mod:`~dropmuon.verification.torchside.experiment` runs the loop."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dropmuon.theory import CostModel

__all__ = [
    "ExperimentConfig", "Setup", "make_setup", "schedules", "predictions", "tuning_seeds", "PRESETS", "preset_settings",
    "CONFIDENCE", "DEFAULT_SAMPLINGS", "EXPERIMENT_SAMPLINGS", "PHASE_SEED", "TUNE_SEED", "PHASE_ESTIMATE_EVERY",
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
    limit per training run; ``flush_denormals``: run with subnormal floats flushed to zero on the
    CPU (:func:`~dropmuon.verification.torchside.optimizer.denormals_flushed` says why;
    :func:`~dropmuon.verification.torchside.experiment.run_experiment` sets it and warns when
    torch's thread pool did not take it);
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
    (:func:`~dropmuon.verification.torchside.experiment.tune_learning_rates`; the chosen rates land
    in ``tuned_lr``, pairs ``(schedule, lr)`` that override ``lr`` for that schedule); ``phases``:
    the number of phases of the ``phase-optimal`` schedule, whose constants are measured per phase
    along full Muon's trajectory
    (:func:`~dropmuon.verification.torchside.calibration.measure_phases`)."""

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


# -- what every run shares ------------------------------------------------------------------------

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


# -- schedules and their predicted cost -----------------------------------------------------------

def schedules(samplings, nlayers: int, L, cost_model: CostModel, epoch_length: int, phases=None) -> dict:
    """``{sampling: (sampler, info)}`` for the named schedules (:func:`training.make_schedule`;
    ``phases``: the per-phase constants ``phase-optimal`` needs,
    :func:`~dropmuon.verification.torchside.calibration.measure_phases`)."""
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
