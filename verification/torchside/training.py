"""Training any model with Drop-Muon under a layer-sampling schedule, timed: iterations and
wall-clock seconds to a target value of the training metric (accuracy by default), final train and
held-out metric. Evaluations run in ``eval()`` mode with gradients off (``tasks.evaluate``).

The clock counts training steps only (forward, truncated backward, update; synchronised on CUDA);
accuracy evaluations between steps are not counted. A run always ends: at the target (unless
``stop_at_target=False``), at ``max_steps``, when ``max_seconds`` of wall-clock time (evaluations
included) have passed, or when the training loss stops being finite.

At every evaluation a run also records the theorems' own quantity, the per-layer squared dual
gradient norms ``‖∇_i f(x)‖_*²`` of the training loss (:func:`dual_gradient_norms`, off the clock
too), and :func:`lhs_average` / :func:`lhs_crossing` turn them into the running average the
theorems bound and the step at which it reaches a threshold.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..synthetic.dropmuon import as_sampler
from ..forecasting.schedules import SAMPLINGS, epoch_shift_schedule, make_schedule
from .costs import _sync
from .build import is_compiled, warm_up_starts
from .constants import estimating_step, online_summary
from .optimizer import DropMuon, denormals_flushed, layer_matrix_shape, layers_step
from .data import FULL_BATCH
from .tasks import evaluate, objective_for

__all__ = ["SAMPLINGS", "TrainResult", "make_schedule", "epoch_shift_schedule", "train", "accuracy",
           "target_crossing", "step_time_stats", "dual_gradient_norms", "nuclear_norm", "lhs_average", "lhs_average_at",
           "lhs_crossing", "GRAD_NORM_EXAMPLES", "GRAD_NORM_EVERY", "GRAD_NORM_SUBSET_SEED"]

#: the size of the fixed subset of training examples on which train records the gradient
#: norms by default (``None`` there: the whole training set; :data:`GRAD_NORM_EVERY` says why)
GRAD_NORM_EXAMPLES = 256
#: the fewest steps between two recordings by default (they are made at evaluations). A recording
#: costs a forward and backward pass over its examples, about ``examples / (steps between · batch)``
#: of the training time. On the built-in CNN at the defaults (batch 256, an evaluation every 5
#: steps; ``tests/benchmarks/bench_torch_grad_norms.py``) the whole digits training set (1438
#: examples) at every evaluation took about as long as the training itself, a subset of 128 at
#: every evaluation 11-27%; these defaults about 6% (10% in a run under heavy load). A subset's
#: gradient is not the whole set's: along 80 steps of full Muon (the CNN at width 0.5, lr 0.1),
#: ``Σ_i ‖∇_i f_S‖_*²`` on 256 examples was 1.05-2.7x the whole set's (the subset's sampling noise
#: adds to the squared norm), on 64 examples 0.1-14x.
GRAD_NORM_EVERY = 20
#: the seed of the fixed subset: the same examples for every run on the same data, whatever its
#: schedule or seed, so that all runs measure the gradient of one function
GRAD_NORM_SUBSET_SEED = 0


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


def dual_gradient_norms(model, optimizer: DropMuon, x: torch.Tensor, y: torch.Tensor, loss_fn,
                        chunk: int = 256) -> tuple:
    """Per layer ``i`` (input first), ``‖∇_i f(x)‖_*²`` for ``f`` the mean of ``loss_fn`` over all
    of ``(x, y)``: the gradient of the whole set, accumulated over chunks weighted by their size,
    in ``eval()`` mode (the function whose value evaluations record as ``train_loss``), with no
    parameter update, no ``.grad`` written and no optimizer state touched.

    The norm is the dual of the layer's norm in Muon's geometry: a layer's matrices ``W_1 … W_m``
    (its parameters the optimizer sends to Muon, each viewed as :func:`layer_matrix_shape`) have
    the norm ``max_j ‖W_j‖_op``, whose dual is ``Σ_j ‖G_j‖_nuc``. So the value is
    ``(Σ_j ‖∇_{W_j} f‖_nuc)²`` — nuclear norms summed over the layer's matrices, then squared.
    The AdamW companion's parameters (biases, norm scales) are not part of it; a layer with no
    Muon matrix gets ``None``. Nuclear norms come from :func:`nuclear_norm`. A compiled model is
    run uncompiled (its parameters are the plain model's), so the recording adds no graph to the
    compiler's.
    """
    model = getattr(model, "_orig_mod", model)
    groups = optimizer.layer_groups()
    mats = {j: [p for g in gs if g["algorithm"] == "muon" for p in g["params"]] for j, gs in sorted(groups.items())}
    params = [p for ps in mats.values() for p in ps]
    total = [torch.zeros_like(p) for p in params]
    n = len(x)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            for i in range(0, n, chunk):
                xc, yc = x[i:i + chunk], y[i:i + chunk]
                loss = loss_fn(model(xc), yc) * (len(xc) / n)
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                for acc, g in zip(total, grads):
                    if g is not None:
                        acc.add_(g)
    finally:
        model.train(was_training)
    out, k = [], 0
    for j, ps in mats.items():
        if not ps:
            out.append(None)
            continue
        dual = 0.0
        for p in ps:
            dual += nuclear_norm(total[k].reshape(layer_matrix_shape(p.shape)))
            k += 1
        out.append(dual * dual)
    return tuple(out)


def nuclear_norm(G: torch.Tensor) -> float:
    """``‖G‖_nuc``, the sum of the singular values, as the sum of the square roots of the
    eigenvalues of the smaller Gram matrix (``G Gᵀ`` or ``Gᵀ G``) in float64: on a 2-core CPU about
    7x faster than an SVD of the CNN's 256 × 1152 layer in float32. Each eigenvalue is exact to
    ``~ε₆₄ σ_max²``, so each singular value to ``~sqrt(ε₆₄) σ_max ≈ 1.5e-8 σ_max``, and the norm to a
    relative ``min(m, n) · 1.5e-8`` at worst.

    >>> nuclear_norm(torch.tensor([[3.0, 0.0], [0.0, -4.0]]))
    7.0
    """
    G = G.double()
    A = G @ G.T if G.shape[0] <= G.shape[1] else G.T @ G
    return float(torch.linalg.eigvalsh(A).clamp(min=0).sqrt().sum())


def lhs_average(history) -> list[dict]:
    """The running average of ``Σ_i ‖∇_i f‖_*²`` over a run's evaluations, the theorems'
    left-hand side ``(1/K) Σ_{k<K} Σ_i ‖∇_i f(x^k)‖_*²`` with the average over iterations
    approximated by the plain average over the recordings made so far (evenly spaced from step 0,
    :func:`train`'s ``grad_norm_every``, but for a shorter last interval; each stands for the
    iterations around it). One ``{"step", "time_s", "average"}`` per record carrying
    ``grad_dual_sq_sum``, in order; records without it (evaluations between recordings, runs made
    before it was recorded) are skipped, and the average stops at the first non-finite value.

    >>> h = [{"step": 0, "time_s": 0.0, "grad_dual_sq_sum": 9.0}, {"step": 5, "time_s": 1.0, "grad_dual_sq_sum": 3.0},
    ...      {"step": 10, "time_s": 2.0, "grad_dual_sq_sum": 0.0}]
    >>> [r["average"] for r in lhs_average(h)]
    [9.0, 6.0, 4.0]
    """
    out, total = [], 0.0
    for rec in history:
        v = rec.get("grad_dual_sq_sum")
        if v is None:
            continue
        if not math.isfinite(v):
            break
        total += v
        out.append({"step": rec["step"], "time_s": rec["time_s"], "average": total / (len(out) + 1)})
    return out


def lhs_average_at(history, step: float) -> float | None:
    """The running average of :func:`lhs_average` at ``step``, interpolated linearly between the
    two records that bracket it; ``None`` outside the recorded steps.

    >>> h = [{"step": 0, "time_s": 0.0, "grad_dual_sq_sum": 9.0}, {"step": 5, "time_s": 1.0, "grad_dual_sq_sum": 3.0}]
    >>> lhs_average_at(h, 2.5)
    7.5
    """
    avg = lhs_average(history)
    if avg and avg[0]["step"] == step:
        return avg[0]["average"]
    for a, b in zip(avg, avg[1:]):
        if a["step"] <= step <= b["step"]:
            f = (step - a["step"]) / (b["step"] - a["step"]) if b["step"] > a["step"] else 0.0
            return a["average"] + f * (b["average"] - a["average"])
    return None


def lhs_crossing(history, eps2: float) -> tuple[float, float] | tuple[None, None]:
    """``(step, seconds)`` at which the running average of :func:`lhs_average` first *falls* to
    ``eps2``: the first record at or below ``eps2`` whose predecessor is above it, the crossing
    interpolated linearly between the two (as :func:`target_crossing` does for the metric,
    downwards); ``(None, None)`` if it never falls to it. Records at or below ``eps2`` before the
    average has ever been above it do not count: at a near-flat initialisation the gradient is
    tiny (on the built-in CNN ``Σ_i ‖∇_i f‖_*²`` grows about a thousandfold in the first steps),
    and a run would otherwise "reach" any threshold at step 0 without having moved.

    >>> h = [{"step": 0, "time_s": 0.0, "grad_dual_sq_sum": 9.0}, {"step": 5, "time_s": 1.0, "grad_dual_sq_sum": 3.0}]
    >>> lhs_crossing(h, 7.5)
    (2.5, 0.5)
    >>> h = [{"step": 0, "time_s": 0.0, "grad_dual_sq_sum": 0.0}, {"step": 5, "time_s": 1.0, "grad_dual_sq_sum": 8.0},
    ...      {"step": 10, "time_s": 2.0, "grad_dual_sq_sum": 0.0}]  # averages 0, 4, 8/3
    >>> lhs_crossing(h, 3.0)
    (8.75, 1.75)
    """
    prev = None
    for rec in lhs_average(history):
        if rec["average"] <= eps2 and prev is not None and prev["average"] > eps2:
            f = (prev["average"] - eps2) / (prev["average"] - rec["average"])
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
    record per evaluation (``step``, ``time_s``, ``train_acc``, ``train_loss``); the records at
    which the gradient norms were recorded (:func:`train`: every ``grad_norm_every`` steps, and
    the first and last) also hold ``grad_dual_sq`` — per layer ``‖∇_i f(x)‖_*²``
    (:func:`dual_gradient_norms`; ``None`` for a layer without Muon matrices or after a
    non-finite loss) — and ``grad_dual_sq_sum``, their sum over layers;
    ``info["grad_norms"]`` says on how many training examples they were computed, how often,
    and what the recording cost."""

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
          progress=None, info: dict | None = None, estimate_every: int | None = None, grad_norms: bool = True,
          grad_norm_examples: int | None = GRAD_NORM_EXAMPLES, grad_norm_every: int = GRAD_NORM_EVERY) -> TrainResult:
    """Train ``model`` with ``optimizer`` on minibatches of ``data.x_train`` drawn with ``seed``;
    ``loss_fn(output, target)`` and ``metric(output, target)`` default to the data's task
    (:func:`~dropmuon.verification.torchside.tasks.objective_for`: cross-entropy and accuracy for
    classification, next-token cross-entropy and token accuracy for language models), and
    ``target_acc`` is the target value of the metric (higher is better);
    at step ``k`` the layer set ``S`` comes from ``schedule`` (a :class:`theory.RPT` or other
    distribution, or a sampler of :mod:`dropmuon.verification.synthetic.dropmuon`), lower layers frozen so the
    backward pass stops at ``min S``. The training accuracy on the whole training set is evaluated
    every ``eval_every`` steps (and at the end); the target counts as reached at the first
    evaluation at or above ``target_acc``.

    The minibatch sequence depends on ``seed`` only, the layer sets on ``seed`` and the schedule:
    runs of different schedules with one seed share their data order (common random numbers).
    With ``batch="full"`` (:data:`FULL_BATCH`) every step uses the whole training set — exact
    gradients of the training loss, the setting of the deterministic theorems — and the seed
    varies only the layer sets (and the initialisation, made by the caller): a run is then a
    deterministic function of the seed, up to the floating-point order of the device's kernels.
    The result's ``info`` records :func:`~dropmuon.verification.torchside.optimizer.denormals_flushed`: on a
    CPU, subnormal floats make late-training steps up to ~1.6× slower unless
    ``torch.set_flush_denormal(True)`` ran before torch's first parallel operation.

    With ``estimate_every = N`` the layer-wise constants are estimated online: every ``N``-th step
    is an :func:`~dropmuon.verification.torchside.constants.estimating_step` (the same update, plus one
    truncated forward and backward pass and the norms), giving ``L̂_j`` for each layer it updated;
    ``info["online_constants"]`` holds the estimates, their per-layer summary
    (:func:`~dropmuon.verification.torchside.constants.online_summary`) and ``overhead``, the estimation's
    seconds over the training steps' seconds. The estimation time is not on the training clock.

    **The theorems' quantity.** With ``grad_norms`` (the default) evaluations also record
    ``‖∇_i f(x)‖_*²`` per layer (:func:`dual_gradient_norms`), for ``f`` the training loss on
    ``grad_norm_examples`` training examples: a fixed subset (:data:`GRAD_NORM_EXAMPLES` by
    default, drawn with :data:`GRAD_NORM_SUBSET_SEED`, the same for every run on the same data),
    or the whole training set with ``None`` (or a number at least its size). They are recorded at
    the first evaluation, then at each evaluation at least ``grad_norm_every`` steps
    (:data:`GRAD_NORM_EVERY`) after the last recording, and at the run's last evaluation; with
    ``grad_norm_every ≤ eval_every``, at every evaluation. Subset and interval are choices of
    cost (:data:`GRAD_NORM_EVERY` gives the measurements): the whole set at every evaluation
    costs one forward and backward pass over every training example per evaluation. So, by
    default, ``f`` is the mean loss over that subset — a fixed function, the same for every
    schedule and seed, whose gradient carries the subset's sampling noise — not over the whole
    training set. The recording is off the training clock; ``info["grad_norms"]`` holds
    ``examples`` (how many), ``subset``, ``every``, ``seconds`` and ``overhead``, its seconds over
    the training steps' seconds.

    **Radius rule.** An optimizer built with ``radius_rule="inverse-inclusion"`` gets its
    inclusion probabilities from ``schedule`` (:meth:`DropMuon.set_inclusion`): before step ``k``,
    those of the distribution step ``k``'s set is drawn from. For an i.i.d. schedule that is one
    ``π`` for the whole run; for an epoch-shift schedule it is the current epoch's distribution —
    not the cycle's average, because the one-step descent argument behind the theorems' radii
    ``t_i = η/π_i`` needs ``π`` of the distribution the step is drawn from: the expected move of
    layer ``i`` is then ``π_i^k · η/π_i^k = η`` at every step. ``info["radius_rule"]`` records the
    rule and ``info["radius_inclusion"]`` the ``π`` used (one list per distribution of the
    schedule).
    """
    from ..runs._progress import Progress

    for name, v in (("max_steps", max_steps), ("batch", batch), ("eval_every", eval_every)):
        if name == "batch" and v == FULL_BATCH:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer{' or ' + repr(FULL_BATCH) if name == 'batch' else ''}; "
                             f"got {name} = {v!r}")
    objective = objective_for(getattr(data, "task", "classification"), loss_fn, metric)
    objective.check_target(target_acc)
    if max_seconds is not None and not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
        raise ValueError(f"max_seconds must be positive; got max_seconds = {max_seconds!r}")
    if estimate_every is not None and (isinstance(estimate_every, bool) or not isinstance(estimate_every, (int, np.integer))
                                       or estimate_every < 1):
        raise ValueError(f"estimate_every must be a positive integer; got estimate_every = {estimate_every!r}")
    if grad_norm_examples is not None and (isinstance(grad_norm_examples, bool)
                                           or not isinstance(grad_norm_examples, (int, np.integer))
                                           or grad_norm_examples < 1):
        raise ValueError(f"grad_norm_examples must be a positive integer or None (the whole training set); "
                         f"got grad_norm_examples = {grad_norm_examples!r}")
    if isinstance(grad_norm_every, bool) or not isinstance(grad_norm_every, (int, np.integer)) or grad_norm_every < 1:
        raise ValueError(f"grad_norm_every must be a positive integer; got grad_norm_every = {grad_norm_every!r}")
    from .layers import check_optimizer

    sampler = as_sampler(schedule)
    check_optimizer(model, optimizer, data.x_train[:8].to(device))  # every parameter in a layer, input first
    groups = optimizer.layer_groups()
    b = len(groups)
    if sampler.nlayers != b:
        raise ValueError(f"the sampling distribution has {sampler.nlayers} layers but the network has {b}")
    loss_fn = objective.loss
    n = len(data.x_train)
    rules = sorted({g.get("radius_rule", "common") for g in optimizer.param_groups if g["algorithm"] == "muon"})
    by_inclusion = rules != ["common"]
    pi_now = None
    if grad_norms:
        if grad_norm_examples is None or grad_norm_examples >= n:
            gn_x, gn_y = data.x_train, data.y_train
        else:
            pick = torch.randperm(n, generator=torch.Generator().manual_seed(GRAD_NORM_SUBSET_SEED))[:grad_norm_examples]
            pick = pick.sort().values.to(data.x_train.device)
            gn_x, gn_y = data.x_train[pick], data.y_train[pick]
        gn_x, gn_y = gn_x.to(device), gn_y.to(device)
    t_gn = 0.0
    gn_last = None  # the step of the last recording

    def add_norms(rec: dict) -> None:
        """The gradient norms at the current weights, into the evaluation record ``rec``."""
        nonlocal t_gn, gn_last
        gn_last = rec["step"]
        if not math.isfinite(rec["train_loss"]):
            rec["grad_dual_sq"], rec["grad_dual_sq_sum"] = [None] * b, None
            return
        _sync(device)
        t0 = time.perf_counter()
        sq = dual_gradient_norms(model, optimizer, gn_x, gn_y, loss_fn)
        _sync(device)
        t_gn += time.perf_counter() - t0
        rec["grad_dual_sq"] = list(sq)
        rec["grad_dual_sq_sum"] = float(sum(v for v in sq if v is not None))

    def record(step: int, t: float, acc: float, loss: float) -> None:
        rec = {"step": step, "time_s": t, "train_acc": acc, "train_loss": loss}
        if grad_norms and (gn_last is None or step - gn_last >= grad_norm_every or not math.isfinite(loss)):
            add_norms(rec)
        history.append(rec)

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
    full_batch = batch == FULL_BATCH
    if full_batch:  # every step on the whole training set, in its order: no draw, the same batch every step
        x_all, y_all = data.x_train.to(device), data.y_train.to(device)
    if is_compiled(model):  # build each start's graph before the clock runs
        nb = n if full_batch else batch
        compile_s = warm_up_starts(model, optimizer, loss_fn, data.x_train[:nb].to(device),
                                   data.y_train[:nb].to(device))
    wall0 = time.perf_counter()
    acc, loss = evaluate(model, data.x_train, data.y_train, objective)
    record(0, 0.0, acc, loss)
    if not math.isfinite(loss):
        raise ValueError("the initial training loss is not finite; check the data")
    k = 0
    flushed = denormals_flushed() if torch.device(device).type == "cpu" else None
    info = dict(info or {}, metric=objective.metric_name, denormals_flushed=flushed)
    if compile_s is not None:
        info["compile_s"] = compile_s
    with Progress(max_steps, f"train {info.get('sampling', '')}".strip(), enabled=progress) as bar:
        while k < max_steps:
            if full_batch:
                x, y = x_all, y_all
            else:
                idx = torch.randint(0, n, (batch,), generator=gen)
                x, y = data.x_train[idx].to(device), data.y_train[idx].to(device)
            S = sampler.sample(k, rng)
            if by_inclusion:
                pi = sampler.inclusion_at(k)
                if pi_now is None or not np.array_equal(pi, pi_now):
                    optimizer.set_inclusion(pi)
                    pi_now = pi
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
                record(k, t_train, acc, loss)
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
        record(k, t_train, acc, loss)
    if grad_norms and "grad_dual_sq" not in history[-1]:  # the last evaluation: the weights are still its own
        add_norms(history[-1])
    test_acc, _ = evaluate(model, data.x_test, data.y_test, objective)
    info["step_times"] = step_time_stats(step_times)
    info["radius_rule"] = rules[0] if len(rules) == 1 else rules
    if by_inclusion:
        dists = getattr(sampler, "distributions", None) or (sampler.distribution,)
        info["radius_inclusion"] = [np.asarray(d.inclusion, dtype=float).tolist() for d in dists]
    if grad_norms:
        info["grad_norms"] = {"examples": len(gn_x), "subset": len(gn_x) < n, "every": int(grad_norm_every),
                              "seconds": t_gn, "train_s": t_train,
                              "overhead": t_gn / t_train if t_train else None,
                              "norm": "per layer (sum over its Muon matrices of the nuclear norm of the gradient)^2"}
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
