"""The closed loop's statistics: paired speed-ups over full Muon with a Student-t and a bootstrap
interval (:func:`speedup_ci`), the seed counts a stated power or interval width needs
(:func:`seeds_needed`, :func:`seeds_for_width`), runs suspect of contention (:func:`suspect_runs`),
the thresholds of the theorems' left-hand side (:func:`lhs_thresholds`), and the per-schedule
summary of an experiment's runs against the predictions of
:mod:`~dropmuon.verification.torchside.plan` (:func:`summarize`)."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np

from ..forecasting.measured import load_constants
from .plan import CONFIDENCE, ExperimentConfig, predictions, schedules

__all__ = [
    "speedup_ci", "seeds_needed", "seeds_for_width", "suspect_runs", "lhs_thresholds", "summarize", "RESOLVE_EFFECT",
    "POWER", "SPREAD_LIMIT", "ACROSS_RUNS_LIMIT", "BOOTSTRAP_RESAMPLES",
]


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
