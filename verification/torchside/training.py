"""Training any model with Drop-Muon under a layer-sampling schedule, timed: iterations and
wall-clock seconds to a target value of the training metric (accuracy by default), final train and
held-out metric. Evaluations run in ``eval()`` mode with gradients off (``tasks.evaluate``).

The clock counts training steps only (forward, truncated backward, update; synchronised on CUDA);
accuracy evaluations between steps are not counted. A run always ends: at the target (unless
``stop_at_target=False``), at ``max_steps``, when ``max_seconds`` of wall-clock time (evaluations
included) have passed, or when the training loss stops being finite.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..dropmuon import as_sampler
from ..schedules import SAMPLINGS, epoch_shift_schedule, make_schedule
from .costs import _sync
from .build import is_compiled, warm_up_starts
from .constants import estimating_step, online_summary
from .optimizer import DropMuon, denormals_flushed, layers_step
from .tasks import evaluate, objective_for

__all__ = ["SAMPLINGS", "TrainResult", "make_schedule", "epoch_shift_schedule", "train", "accuracy",
           "target_crossing", "step_time_stats"]


def step_time_stats(step_times: dict) -> dict:
    """Per start index ``s`` (``0``: steps with an empty set): the number of steps, the median and
    the 90th percentile of their seconds; and ``spread``, the largest ``p90 / median`` over starts
    with at least 5 steps. Steps with one start do the same work, so their spread is the machine's
    noise: a spread well above 1 says the run shared its cores (the closed loop marks such runs)."""
    per = []
    spread = None
    for s_, ts in sorted(step_times.items()):
        med, p90 = float(np.median(ts)), float(np.quantile(ts, 0.9))
        per.append({"s": int(s_), "n": len(ts), "median_s": med, "p90_s": p90})
        if len(ts) >= 5 and med > 0:
            spread = max(spread or 0.0, p90 / med)
    return {"per_start": per, "spread": spread}


def target_crossing(history, target: float) -> tuple[float, float] | tuple[None, None]:
    """``(step, seconds)`` at which the metric first reaches ``target``, interpolated linearly
    between the two evaluations that bracket it: with ``(k₀, t₀, a₀)`` the last evaluation below
    the target and ``(k₁, t₁, a₁)`` the first at or above it, ``f = (target − a₀)/(a₁ − a₀)`` and
    the crossing is ``(k₀ + f(k₁ − k₀), t₀ + f(t₁ − t₀))``. ``(None, None)`` if never reached; the
    first record itself if it already reaches the target.

    >>> h = [{"step": 0, "time_s": 0.0, "train_acc": 0.5}, {"step": 10, "time_s": 2.0, "train_acc": 1.0}]
    >>> target_crossing(h, 0.75)
    (5.0, 1.0)
    """
    prev = None
    for rec in history:
        if rec["train_acc"] >= target:
            if prev is None:
                return float(rec["step"]), float(rec["time_s"])
            f = (target - prev["train_acc"]) / (rec["train_acc"] - prev["train_acc"])
            return (prev["step"] + f * (rec["step"] - prev["step"]),
                    prev["time_s"] + f * (rec["time_s"] - prev["time_s"]))
        prev = rec
    return None, None


def accuracy(model, x: torch.Tensor, y: torch.Tensor, chunk: int = 256) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` of a classifier on ``(x, y)``, in chunks, in ``eval()``
    mode (:func:`~dropmuon.verification.torchside.tasks.evaluate`)."""
    return evaluate(model, x, y, objective_for("classification"), chunk)


@dataclass(frozen=True)
class TrainResult:
    """One training run. ``iterations_to_target``/``time_to_target_s`` are ``None`` when the target
    was not reached (or none was set); ``time_to_target_s`` counts training steps only. They are
    taken at the first evaluation at or above the target; ``*_interpolated`` place the crossing
    between that evaluation and the one before (:func:`target_crossing`), which resolves it finer
    than ``eval_every``. The
    ``*_acc`` fields hold the run's metric (``info["metric"]`` names it: accuracy for
    classification, token accuracy for language models, or the user's metric).
    ``stop_reason``: ``"target"``, ``"max_steps"``, ``"max_seconds"`` or ``"diverged"`` (a
    non-finite training loss). ``history`` holds one
    record per evaluation (``step``, ``time_s``, ``train_acc``, ``train_loss``)."""

    sampling: str
    seed: int
    steps: int
    target_acc: float | None
    iterations_to_target: int | None
    time_to_target_s: float | None
    iterations_to_target_interpolated: float | None
    time_to_target_interpolated_s: float | None
    final_train_acc: float
    final_train_loss: float
    test_acc: float
    train_time_s: float
    seconds_per_step: float
    stop_reason: str
    start_counts: tuple
    layer_updates: tuple
    history: tuple
    device: str
    info: dict

    def as_dict(self) -> dict:
        return {
            "sampling": self.sampling, "seed": self.seed, "steps": self.steps, "target_acc": self.target_acc,
            "iterations_to_target": self.iterations_to_target, "time_to_target_s": self.time_to_target_s,
            "iterations_to_target_interpolated": self.iterations_to_target_interpolated,
            "time_to_target_interpolated_s": self.time_to_target_interpolated_s,
            "final_train_acc": self.final_train_acc, "final_train_loss": self.final_train_loss,
            "test_acc": self.test_acc, "train_time_s": self.train_time_s,
            "seconds_per_step": self.seconds_per_step, "stop_reason": self.stop_reason,
            "start_counts": list(self.start_counts), "layer_updates": list(self.layer_updates),
            "history": [dict(h) for h in self.history], "device": self.device, **self.info,
        }


def train(model, optimizer: DropMuon, data, schedule, *, max_steps: int, batch: int = 256,
          target_acc: float | None = None, max_seconds: float | None = None, eval_every: int = 5,
          seed: int = 0, device="cpu", stop_at_target: bool = True, loss_fn=None, metric=None,
          progress=None, info: dict | None = None, estimate_every: int | None = None) -> TrainResult:
    """Train ``model`` with ``optimizer`` on minibatches of ``data.x_train`` drawn with ``seed``;
    ``loss_fn(output, target)`` and ``metric(output, target)`` default to the data's task
    (:func:`~dropmuon.verification.torchside.tasks.objective_for`: cross-entropy and accuracy for
    classification, next-token cross-entropy and token accuracy for language models), and
    ``target_acc`` is the target value of the metric (higher is better);
    at step ``k`` the layer set ``S`` comes from ``schedule`` (a :class:`theory.RPT` or other
    distribution, or a sampler of :mod:`dropmuon.verification.dropmuon`), lower layers frozen so the
    backward pass stops at ``min S``. The training accuracy on the whole training set is evaluated
    every ``eval_every`` steps (and at the end); the target counts as reached at the first
    evaluation at or above ``target_acc``.

    The minibatch sequence depends on ``seed`` only, the layer sets on ``seed`` and the schedule:
    runs of different schedules with one seed share their data order (common random numbers).
    The result's ``info`` records :func:`~dropmuon.verification.torchside.optimizer.denormals_flushed`: on a
    CPU, subnormal floats make late-training steps up to ~1.6× slower unless
    ``torch.set_flush_denormal(True)`` ran before torch's first parallel operation.

    With ``estimate_every = N`` the layer-wise constants are estimated online: every ``N``-th step
    is an :func:`~dropmuon.verification.torchside.constants.estimating_step` (the same update, plus one
    truncated forward and backward pass and the norms), giving ``L̂_j`` for each layer it updated;
    ``info["online_constants"]`` holds the estimates, their per-layer summary
    (:func:`~dropmuon.verification.torchside.constants.online_summary`) and ``overhead``, the estimation's
    seconds over the training steps' seconds. The estimation time is not on the training clock.
    """
    from .._progress import Progress

    for name, v in (("max_steps", max_steps), ("batch", batch), ("eval_every", eval_every)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {name} = {v!r}")
    objective = objective_for(getattr(data, "task", "classification"), loss_fn, metric)
    objective.check_target(target_acc)
    if max_seconds is not None and not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
        raise ValueError(f"max_seconds must be positive; got max_seconds = {max_seconds!r}")
    if estimate_every is not None and (isinstance(estimate_every, bool) or not isinstance(estimate_every, (int, np.integer))
                                       or estimate_every < 1):
        raise ValueError(f"estimate_every must be a positive integer; got estimate_every = {estimate_every!r}")
    from .layers import check_optimizer

    sampler = as_sampler(schedule)
    check_optimizer(model, optimizer, data.x_train[:8].to(device))  # every parameter in a layer, input first
    groups = optimizer.layer_groups()
    b = len(groups)
    if sampler.nlayers != b:
        raise ValueError(f"the sampling distribution has {sampler.nlayers} layers but the network has {b}")
    loss_fn = objective.loss
    n = len(data.x_train)
    gen = torch.Generator().manual_seed(int(seed))
    rng = np.random.default_rng([int(seed), 1])
    start_counts = np.zeros(b, dtype=int)
    layer_updates = np.zeros(b, dtype=int)
    step_times: dict[int, list] = {}  # start index (0: an empty set) -> seconds of each such step
    history = []
    t_train = t_estimate = 0.0
    online: list[dict] = []
    reached_step = reached_time = None
    stop = "max_steps"
    compile_s = None
    if is_compiled(model):  # build each start's graph before the clock runs
        compile_s = warm_up_starts(model, optimizer, loss_fn, data.x_train[:batch].to(device),
                                   data.y_train[:batch].to(device))
    wall0 = time.perf_counter()
    acc, loss = evaluate(model, data.x_train, data.y_train, objective)
    history.append({"step": 0, "time_s": 0.0, "train_acc": acc, "train_loss": loss})
    if not math.isfinite(loss):
        raise ValueError("the initial training loss is not finite; check the data")
    k = 0
    flushed = denormals_flushed() if torch.device(device).type == "cpu" else None
    info = dict(info or {}, metric=objective.metric_name, denormals_flushed=flushed)
    if compile_s is not None:
        info["compile_s"] = compile_s
    with Progress(max_steps, f"train {info.get('sampling', '')}".strip(), enabled=progress) as bar:
        while k < max_steps:
            idx = torch.randint(0, n, (batch,), generator=gen)
            x, y = data.x_train[idx].to(device), data.y_train[idx].to(device)
            S = sampler.sample(k, rng)
            if estimate_every and S and k % estimate_every == 0:
                dt, de, recs = estimating_step(model, optimizer, loss_fn, x, y, S, seed=seed, k=k, device=device)
                t_estimate += de
                online += recs
            else:
                _sync(device)
                t0 = time.perf_counter()
                layers_step(model, optimizer, loss_fn, x, y, S)  # an empty set pays the forward pass only
                _sync(device)
                dt = time.perf_counter() - t0
            t_train += dt
            step_times.setdefault(min(S) if S else 0, []).append(dt)
            k += 1
            if S:
                start_counts[min(S) - 1] += 1
                layer_updates[[j - 1 for j in S]] += 1
            bar.update()
            if k % eval_every == 0 or k == max_steps:
                acc, loss = evaluate(model, data.x_train, data.y_train, objective)
                history.append({"step": k, "time_s": t_train, "train_acc": acc, "train_loss": loss})
                if not math.isfinite(loss):
                    stop = "diverged"
                    break
                if target_acc is not None and reached_step is None and acc >= target_acc:
                    reached_step, reached_time = k, t_train
                    if stop_at_target:
                        stop = "target"
                        break
            if max_seconds is not None and time.perf_counter() - wall0 >= max_seconds:
                stop = "max_seconds"
                break
    if history[-1]["step"] != k:
        acc, loss = evaluate(model, data.x_train, data.y_train, objective)
        history.append({"step": k, "time_s": t_train, "train_acc": acc, "train_loss": loss})
    test_acc, _ = evaluate(model, data.x_test, data.y_test, objective)
    info["step_times"] = step_time_stats(step_times)
    if estimate_every:
        info["online_constants"] = {"every": int(estimate_every), "estimate_s": t_estimate, "train_s": t_train,
                                    "overhead": t_estimate / t_train if t_train else None,
                                    "layers": online_summary(online, b, seed), "records": online}
    return TrainResult(
        sampling=info.get("sampling", "custom"), seed=int(seed), steps=k, target_acc=target_acc,
        iterations_to_target=reached_step, time_to_target_s=reached_time,
        **dict(zip(("iterations_to_target_interpolated", "time_to_target_interpolated_s"),
                   target_crossing(history, target_acc) if reached_step is not None else (None, None))),
        final_train_acc=history[-1]["train_acc"],
        final_train_loss=history[-1]["train_loss"], test_acc=test_acc, train_time_s=t_train,
        seconds_per_step=t_train / k if k else float("nan"), stop_reason=stop,
        start_counts=tuple(int(c) for c in start_counts), layer_updates=tuple(int(c) for c in layer_updates),
        history=tuple(history), device=str(device), info=info,
    )
