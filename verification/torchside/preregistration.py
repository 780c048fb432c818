"""Predict, then measure: the closed loop's predictions, made and written with their SHA-256 digest
before its first training run, and scored against the runs afterwards.

The predictors are every registered theorem (:func:`dropmuon.verification.forecasting.forecast.predict`, from
the calibration's measured constants and the run's settings) and the empirical baseline, short
pilot runs of every schedule on seeds disjoint from the evaluation seeds
(:func:`dropmuon.verification.forecasting.pilot.pilot_prediction`). The file ``OUT/predictions.json`` holds
``{"predictions", "sha256", "written_at", "fingerprint"}``: ``sha256`` is the digest of the
canonical JSON of ``predictions`` (sorted keys, no spaces), so anyone can check that the
predictions were not edited after the runs (:func:`digest`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path

from dropmuon.theory._io import read_json, write_json_atomic

# bound at import: the pilot trains through the function itself, not through a stand-in that a
# caller put in its place to count or stop the evaluation runs
from .experiment import run_task as _run_task

__all__ = ["PILOT_FRACTION", "PILOT_SEED", "pilot_steps", "digest", "register_predictions", "predictors",
           "measured_by_seed", "score_runs"]

#: the pilot's share of the experiment's largest possible number of steps (every run to
#: ``max_steps``) is at most this; its realised share of the training time is reported after the runs
PILOT_FRACTION = 0.03
#: the pilot's seed: the evaluation seeds are small integers, this one is none of them
PILOT_SEED = 1_000_003


def pilot_steps(config) -> int:
    """Steps of each schedule's pilot run: ``⌊PILOT_FRACTION · n_seeds · max_steps⌋``, at least two
    evaluations and at most half of ``max_steps``; ``0`` (no pilot) when ``config.pilot`` is off.
    The experiment itself runs at most ``n_seeds · n_schedules · max_steps`` steps and the pilot
    ``n_schedules`` times this many, so the pilot is at most ``PILOT_FRACTION`` of that."""
    if not getattr(config, "pilot", True):
        return 0
    n = math.floor(PILOT_FRACTION * len(config.seeds) * config.max_steps)
    return int(min(config.max_steps // 2, max(2 * config.eval_every, n)))


def digest(predictions: dict) -> str:
    """The SHA-256 of the canonical JSON of ``predictions`` (sorted keys, ``,``/``:`` separators,
    UTF-8): the same predictions give the same digest on any machine.

    >>> digest({"b": 1, "a": [0.5]}) == digest({"a": [0.5], "b": 1})
    True
    """
    text = json.dumps(predictions, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _pilot(config, calibration: dict, setup, progress) -> dict | None:
    """Each schedule's pilot run (training on to ``pilot_steps``, not stopping at the target) and
    the pilot predictor's output, with the pilot's runs' time."""
    from dropmuon.verification.forecasting.pilot import pilot_prediction

    steps = pilot_steps(config)
    if steps == 0:
        return None
    cfg = dataclasses.replace(config, max_steps=steps, stop_at_target=False, max_seconds=None)
    runs, spent = {}, 0.0
    for s in config.samplings:
        r = _run_task(cfg, s, PILOT_SEED, calibration, setup=setup, progress=progress)
        spent += r["train_time_s"]
        runs[s] = {"iterations": [h["step"] for h in r["history"]], "loss": [h["train_loss"] for h in r["history"]],
                   "seconds_per_step": r["seconds_per_step"]}
    out = pilot_prediction(runs)
    out.update(steps=steps, seed=PILOT_SEED, train_time_s=spent)
    return out


def register_predictions(config, calibration: dict, out: Path | None, fingerprint: str, *, setup=None,
                         progress=None) -> tuple[dict, str]:
    """``(predictions, sha256)`` for the experiment, made before its first training run: the
    theorems' (:func:`~dropmuon.verification.forecasting.forecast.predict` on the calibration's records, with
    the run's batch, learning rate and radius rule) and the pilot's. With ``out`` they are written
    to ``OUT/predictions.json`` atomically; a resumed experiment with the same ``fingerprint``
    (settings and calibration) reads them back — and refuses a file whose digest does not match
    its predictions — instead of predicting again."""
    from dropmuon.verification.forecasting.forecast import PlannedRun, predict

    path = out / "predictions.json" if out is not None else None
    if path is not None and path.exists():
        saved = read_json(path)
        if isinstance(saved, dict) and saved.get("fingerprint") == fingerprint:
            if digest(saved.get("predictions")) != saved.get("sha256"):
                raise ValueError(f"{path}: the predictions do not match their SHA-256 digest; they were edited "
                                 f"after they were written (delete the file to predict again)")
            return saved["predictions"], saved["sha256"]
    samplings = [s for s in config.samplings]
    theory = predict(calibration, samplings, run=PlannedRun(batch=config.batch, lr=config.schedule_lr("full"),
                                                            radius_rule=config.radius_rule))
    pred = {"theorems": theory, "pilot": _pilot(config, calibration, setup, progress)}
    pred = json.loads(json.dumps(pred, allow_nan=False))  # plain JSON types: the digest is of what is stored
    sha = digest(pred)
    if path is not None:
        write_json_atomic(path, {"predictions": pred, "sha256": sha, "fingerprint": fingerprint,
                                 "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return pred, sha


def predictors(predictions: dict) -> dict:
    """``{name: {"label", "schedules": {schedule: {"applies", "speedup", "iterations_ratio"}}}}``
    for :func:`~dropmuon.verification.forecasting.scoring.score_predictions`: each theorem (its predicted
    speed-up and iteration ratio at the pre-registered ``ε``; ``applies``: it covers that run),
    then the pilot (``applies`` true: it is an empirical predictor, no setting to cover)."""
    out = {}
    for t in predictions["theorems"]["theorems"]:
        out[t["theorem"]] = {"label": t["label"], "schedules": {
            s: {"applies": r["applies"], "speedup": r["predicted_speedup"], "iterations_ratio": r["iterations_ratio"]}
            for s, r in t["schedules"].items()}}
    pilot = predictions.get("pilot")
    if pilot:
        out["pilot"] = {"label": "pilot", "schedules": {
            s: {"applies": True, "speedup": r["speedup"], "iterations_ratio": r["iterations_ratio"]}
            for s, r in pilot["schedules"].items()}}
    return out


def measured_by_seed(config, runs: list[dict]) -> dict:
    """The measurements the predictors are scored on, per schedule and seed (the config's seed
    order; ``None`` where a run did not get there): ``accuracy`` — interpolated time and
    iterations to the target metric; ``lhs`` — time and iterations until the running average of
    the theorems' left-hand side ``Σ_i ‖∇_i f‖_*²`` falls to the seed's ``ε²``
    (:func:`~dropmuon.verification.torchside.speedups.lhs_thresholds`)."""
    from .speedups import _interpolated, _lhs_crossing, lhs_thresholds

    by = {s: {r["seed"]: r for r in runs if r["sampling"] == s} for s in config.samplings}
    seeds = list(config.seeds)
    eps2 = lhs_thresholds(by["full"], seeds)
    acc, lhs = {}, {}
    for s in config.samplings:
        rs = [by[s].get(k) for k in seeds]
        acc[s] = {"time": [_interpolated(r, "time_to_target_interpolated_s", "time_to_target_s") for r in rs],
                  "iterations": [_interpolated(r, "iterations_to_target_interpolated", "iterations_to_target")
                                 for r in rs]}
        cross = [_lhs_crossing(r, e) for r, e in zip(rs, eps2)]
        lhs[s] = {"time": [c[1] for c in cross], "iterations": [c[0] for c in cross]}
    return {"accuracy": acc, "lhs": lhs}


def score_runs(config, predictions: dict, runs: list[dict]) -> dict:
    """Every predictor scored on both measurements (:func:`measured_by_seed`):
    ``{"lhs": [...], "accuracy": [...], "pilot_share": …}`` with the lists of
    :func:`~dropmuon.verification.forecasting.scoring.score_predictions`, and the pilot's training time as a
    share of the runs' training time."""
    from dropmuon.verification.forecasting.scoring import score_predictions

    m = measured_by_seed(config, runs)
    p = predictors(predictions)
    spent = sum(r.get("train_time_s") or 0.0 for r in runs)
    pilot = predictions.get("pilot") or {}
    return {"lhs": score_predictions(p, m["lhs"]), "accuracy": score_predictions(p, m["accuracy"]),
            "pilot_share": pilot.get("train_time_s", 0.0) / spent if spent else None}
