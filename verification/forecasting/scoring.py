"""How well did each predictor foresee a training experiment? Paired ratios over seeds against
full Muon with confidence intervals, each predictor's predictions beside them, the rank
correlations (Spearman and Kendall) between predicted and measured speed-ups with bootstrap
intervals over seeds, and whether the predicted winner won. Torch-free: it reads the numbers an
experiment recorded."""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["CONFIDENCE", "BOOTSTRAP_RESAMPLES", "paired_ratio", "score_predictions"]

#: two-sided level of every interval here
CONFIDENCE = 0.95
#: resamples of the percentile bootstrap intervals (seeded: the same data give the same interval)
BOOTSTRAP_RESAMPLES = 4000


def _pairs(num, den) -> np.ndarray:
    """The log ratios ``log(num_k / den_k)`` over the pairs where both are positive and finite."""
    out = [math.log(a / b) for a, b in zip(num, den)
           if a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0]
    return np.asarray(out, dtype=float)


def paired_ratio(num, den, confidence: float = CONFIDENCE) -> dict:
    """The paired ratio ``num_k / den_k`` over seeds ``k``: its geometric ``mean`` with a
    Student-t interval on the log ratios (``low``, ``high``: ``exp(m ± t_{n−1} s/√n)``; ``None``
    with fewer than two pairs) and the number of pairs ``n``. Pairs where either value is missing,
    zero or not finite are left out.

    >>> r = paired_ratio([2.0, 4.0, 3.0], [1.0, 2.0, 1.5])
    >>> round(r["mean"], 12), round(r["low"], 12), r["n"]
    (2.0, 2.0, 3)
    """
    from scipy import stats

    logs = _pairs(num, den)
    n = int(logs.size)
    out = {"mean": None, "low": None, "high": None, "n": n}
    if n == 0:
        return out
    m = float(logs.mean())
    out["mean"] = math.exp(m)
    if n >= 2:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * logs.std(ddof=1) / math.sqrt(n))
        out.update(low=math.exp(m - half), high=math.exp(m + half))
    return out


def _spearman_kendall(pred: np.ndarray, meas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho (Pearson's correlation of the ranks, ties at their mean rank) and Kendall's
    tau-b between ``pred`` (``n``) and each row of ``meas`` (``B × n``), vectorised over the rows;
    NaN where either side is constant."""
    from scipy.stats import rankdata

    rx = rankdata(pred) - (pred.size + 1) / 2
    ry = rankdata(meas, axis=1) - (pred.size + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ry @ rx) / np.sqrt((rx @ rx) * np.einsum("ij,ij->i", ry, ry))
        iu = np.triu_indices(pred.size, 1)
        sx = np.sign(pred[:, None] - pred[None, :])[iu]
        sy = np.sign(meas[:, :, None] - meas[:, None, :])[:, iu[0], iu[1]]
        tau = (sy @ sx) / np.sqrt(np.count_nonzero(sx) * np.count_nonzero(sy, axis=1))
    return rho, tau


def _rank_correlations(pred: np.ndarray, logs: np.ndarray, confidence: float, seed: int) -> dict:
    """Spearman and Kendall correlations between predicted speed-ups ``pred`` (one per schedule)
    and the measured geometric means ``exp(mean_k logs[:, k])`` (``logs``: seeds × schedules, NaN
    where a pair is missing), with percentile-bootstrap intervals resampling the seeds (rows), so
    the pairing by seed is kept. Resamples where a schedule has no pair are dropped."""
    out = {}
    n = logs.shape[0]
    if pred.size < 3 or n == 0:
        nothing = {"value": None, "low": None, "high": None, "schedules": int(pred.size)}
        return {"spearman": dict(nothing), "kendall": dict(nothing)}
    with warnings.catch_warnings():  # a resample where a schedule has no pair: its mean is NaN, dropped
        warnings.simplefilter("ignore", RuntimeWarning)
        point = _spearman_kendall(pred, np.nanmean(logs, axis=0)[None, :])
        idx = np.random.default_rng(seed).integers(0, n, (BOOTSTRAP_RESAMPLES, n))
        means = np.nanmean(logs[idx], axis=1)  # B × schedules
        means = means[np.isfinite(means).all(axis=1)]
        boots = _spearman_kendall(pred, means)
    a = (1 - confidence) / 2
    for name, v, b in zip(("spearman", "kendall"), point, boots):
        b = b[np.isfinite(b)]
        out[name] = {"value": float(v[0]) if np.isfinite(v[0]) else None,
                     "low": float(np.quantile(b, a)) if b.size else None,
                     "high": float(np.quantile(b, 1 - a)) if b.size else None,
                     "schedules": int(pred.size)}
    return out


def score_predictions(predictors: dict, measured: dict, *, baseline: str = "full",
                      confidence: float = CONFIDENCE, seed: int = 0) -> list[dict]:
    """Each predictor against the measurement.

    ``predictors``: ``{name: {"label", "schedules": {schedule: {"applies", "speedup",
    "iterations_ratio"}}}}`` — a predicted time speed-up over ``baseline`` (``> 1``: faster) and
    iteration ratio ``K(schedule)/K(baseline)`` (``> 1``: more iterations), either ``None`` where
    the predictor makes no prediction. ``measured``: ``{schedule: {"time": [...], "iterations":
    [...]}}``, one value per seed, the same seeds in the same order for every schedule (``None``
    where a run did not reach the target).

    Returns, per predictor (in the given order), ``{"name", "label", "schedules", "spearman",
    "kendall", "winner"}``: per schedule the prediction beside ``measured_speedup`` (baseline's
    time / this schedule's, paired by seed, :func:`paired_ratio`) and
    ``measured_iterations_ratio`` (this schedule's iterations / baseline's); the rank
    correlations of predicted and measured speed-ups over the schedules the predictor predicts
    (the baseline included, at 1 and 1), with bootstrap intervals over seeds; and the ``winner``
    record: the ``predicted`` and ``measured`` winners (largest speed-up, the baseline counting
    as 1), ``won`` (they are the same) and ``within_interval`` (the measured winner's speed-up lies in
    the predicted winner's interval: the two are not told apart at this number of seeds; when
    the baseline wins, that is the predicted winner not significantly slower than it).

    >>> m = {"full": {"time": [10.0, 12.0, 11.0], "iterations": [100, 120, 110]},
    ...      "uniform": {"time": [20.0, 25.0, 21.0], "iterations": [300, 350, 320]}}
    >>> p = {"T1": {"label": "T1", "schedules": {"uniform": {"applies": False, "speedup": 0.8,
    ...                                                     "iterations_ratio": 1.7}}}}
    >>> s = score_predictions(p, m)[0]
    >>> s["winner"]["predicted"], s["winner"]["measured"], s["winner"]["won"]
    ('full', 'full', True)
    >>> round(s["schedules"]["uniform"]["measured_iterations_ratio"]["mean"], 3)
    2.942
    """
    if baseline not in measured:
        raise ValueError(f"the measurement has no {baseline!r} runs to compare with; got schedules "
                         f"{', '.join(measured) or 'none'}")
    base = measured[baseline]
    nseeds = len(base.get("time", []))
    for s, m in measured.items():
        for key in ("time", "iterations"):
            if len(m.get(key, [])) != nseeds:
                raise ValueError(f"measured[{s!r}][{key!r}] has {len(m.get(key, []))} values; every schedule needs "
                                 f"one per seed ({nseeds}, as {baseline!r})")
    meas = {}
    logs = {}
    for s, m in measured.items():
        meas[s] = {"measured_speedup": paired_ratio(base["time"], m["time"], confidence),
                   "measured_iterations_ratio": paired_ratio(m["iterations"], base["iterations"], confidence)}
        logs[s] = np.array([math.log(a / b) if _ok(a) and _ok(b) else math.nan
                            for a, b in zip(base["time"], m["time"])])
    out = []
    for name, p in predictors.items():
        rows = {}
        for s in measured:
            pr = (p.get("schedules") or {}).get(s, {})
            if s == baseline:
                pr = {"applies": pr.get("applies"), "speedup": 1.0, "iterations_ratio": 1.0}
            rows[s] = {"applies": pr.get("applies"), "predicted_speedup": pr.get("speedup"),
                       "predicted_iterations_ratio": pr.get("iterations_ratio"), **meas[s]}
        names = [s for s in measured if _ok(rows[s]["predicted_speedup"])]
        pred = np.array([rows[s]["predicted_speedup"] for s in names], dtype=float)
        corr = _rank_correlations(pred, np.column_stack([logs[s] for s in names]) if names else np.empty((nseeds, 0)),
                                  confidence, seed)
        out.append({"name": name, "label": p.get("label", name), "schedules": rows, **corr,
                    "winner": _winner(rows, names)})
    return out


def _ok(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def _winner(rows: dict, names: list) -> dict:
    """The predicted and the measured winner, and how they compare."""
    if not names:
        return {"predicted": None, "measured": None, "won": None, "within_interval": None}
    predicted = max(names, key=lambda s: rows[s]["predicted_speedup"])
    measured = [s for s in rows if rows[s]["measured_speedup"]["mean"] is not None]
    if not measured:
        return {"predicted": predicted, "measured": None, "won": None, "within_interval": None}
    winner = max(measured, key=lambda s: rows[s]["measured_speedup"]["mean"])
    best = rows[winner]["measured_speedup"]["mean"]
    got = rows[predicted]["measured_speedup"]
    inside = None
    if predicted == winner:
        inside = True
    elif got["low"] is not None:
        inside = bool(got["low"] <= best <= got["high"])
    return {"predicted": predicted, "measured": winner, "won": predicted == winner, "within_interval": inside}
