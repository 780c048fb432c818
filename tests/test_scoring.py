"""Scoring predictors against a measured experiment (verification.forecasting.scoring): paired ratios with
their t-intervals, rank correlations with bootstrap intervals over seeds, and the winner."""

import math

import numpy as np
import pytest
from scipy import stats

from dropmuon.verification.forecasting.scoring import paired_ratio, score_predictions


def _measured(rng, ratios, nseeds=12, sd=0.1):
    """Per schedule, times = full's time / true speed-up, with log-normal noise per run."""
    full = rng.uniform(8, 12, nseeds)
    out = {"full": {"time": list(full), "iterations": list(full * 10)}}
    for s, r in ratios.items():
        t = full / r * np.exp(rng.normal(0, sd, nseeds))
        out[s] = {"time": list(t), "iterations": list(t * 10 * r)}
    return out


def test_paired_ratio_is_the_geometric_mean_with_the_t_interval():
    num, den = [3.0, 5.0, 4.0, 7.0], [2.0, 2.0, 3.0, 4.0]
    logs = np.log(np.array(num) / np.array(den))
    half = stats.t.ppf(0.975, 3) * logs.std(ddof=1) / 2  # t_{0.975,3} s / sqrt(4)
    r = paired_ratio(num, den)
    assert r["n"] == 4
    assert r["mean"] == pytest.approx(math.exp(logs.mean()), rel=1e-14)  # same operations, rounding only
    assert r["low"] == pytest.approx(math.exp(logs.mean() - half), rel=1e-12)
    assert r["high"] == pytest.approx(math.exp(logs.mean() + half), rel=1e-12)


def test_pairs_with_a_missing_run_are_left_out():
    r = paired_ratio([2.0, None, 4.0, math.inf], [1.0, 1.0, 2.0, 1.0])
    assert r["n"] == 2 and r["mean"] == pytest.approx(2.0, rel=1e-15)
    assert paired_ratio([2.0], [1.0])["low"] is None  # one pair: no interval


def test_a_predictor_that_orders_the_schedules_right_has_rank_correlation_one():
    rng = np.random.default_rng(0)
    true = {"a": 1.5, "b": 0.8, "c": 0.5, "d": 1.2}
    m = _measured(rng, true, nseeds=16, sd=0.05)
    right = {s: {"applies": True, "speedup": v**1.3, "iterations_ratio": 1 / v} for s, v in true.items()}
    wrong = {s: {"applies": True, "speedup": 1 / v, "iterations_ratio": v} for s, v in true.items()}
    sr, sw = score_predictions({"right": {"schedules": right}, "wrong": {"schedules": wrong}}, m)
    # full (1, 1) included: 5 schedules, all in the true order for "right", reversed for "wrong"
    assert sr["spearman"]["value"] == pytest.approx(1.0) and sr["kendall"]["value"] == pytest.approx(1.0)
    assert sw["spearman"]["value"] == pytest.approx(-1.0) and sw["kendall"]["value"] == pytest.approx(-1.0)
    assert sr["spearman"]["schedules"] == 5
    # noise of 5% against gaps of >= 20%: the order survives (almost) every resample
    assert sr["spearman"]["low"] >= 0.9
    assert sr["winner"] == {"predicted": "a", "measured": "a", "won": True, "within_interval": True}
    assert sw["winner"]["predicted"] == "c" and sw["winner"]["won"] is False
    assert sw["winner"]["within_interval"] is False  # c is 3x slower than a: far outside


def test_the_measured_ratios_are_paired_by_seed():
    rng = np.random.default_rng(1)
    m = _measured(rng, {"u": 0.5}, nseeds=30, sd=0.2)
    s = score_predictions({"p": {"schedules": {"u": {"speedup": 0.9, "iterations_ratio": 1.7}}}}, m)[0]
    sp = s["schedules"]["u"]["measured_speedup"]
    assert sp["low"] < 0.5 < sp["high"]  # the truth is inside the 95% interval (seeded draw)
    want = math.exp(np.mean(np.log(np.array(m["full"]["time"]) / np.array(m["u"]["time"]))))
    assert sp["mean"] == pytest.approx(want, rel=1e-12)
    assert s["schedules"]["full"]["measured_speedup"]["mean"] == pytest.approx(1.0, rel=1e-15)
    assert s["schedules"]["u"]["predicted_iterations_ratio"] == 1.7


def test_no_prediction_leaves_the_schedule_out_of_the_correlation():
    rng = np.random.default_rng(2)
    m = _measured(rng, {"a": 1.2, "b": 0.7, "epoch": 0.9})
    p = {"a": {"speedup": 1.1}, "b": {"speedup": 0.6}, "epoch": {"speedup": None}}
    s = score_predictions({"T": {"schedules": p}}, m)[0]
    assert s["spearman"]["schedules"] == 3
    assert s["schedules"]["epoch"]["predicted_speedup"] is None


def test_a_winner_not_told_apart_is_within_the_interval():
    rng = np.random.default_rng(3)
    m = _measured(rng, {"a": 1.02, "b": 1.0}, nseeds=6, sd=0.3)  # 2% apart with 30% noise
    s = score_predictions({"T": {"schedules": {"a": {"speedup": 0.9}, "b": {"speedup": 1.2}}}}, m)[0]
    w = s["winner"]
    assert w["predicted"] == "b"
    if not w["won"]:
        assert w["within_interval"] is True


def test_bad_measurements_are_named():
    with pytest.raises(ValueError, match="no 'full' runs"):
        score_predictions({}, {"uniform": {"time": [1.0], "iterations": [1]}})
    with pytest.raises(ValueError, match=r"measured\['u'\]\['time'\] has 1 values"):
        score_predictions({}, {"full": {"time": [1.0, 2.0], "iterations": [1, 2]},
                               "u": {"time": [1.0], "iterations": [1, 2]}})


def test_vectorised_rank_correlations_equal_scipy():
    from dropmuon.verification.forecasting.scoring import _spearman_kendall

    rng = np.random.default_rng(4)
    pred = np.array([1.0, 0.5, 2.0, 0.5, 1.5])  # a tie: tau-b and mean ranks matter
    meas = rng.normal(size=(20, 5))
    meas[3, 1] = meas[3, 0]  # a tie in one row
    rho, tau = _spearman_kendall(pred, meas)
    for k in range(20):
        assert rho[k] == pytest.approx(stats.spearmanr(pred, meas[k]).statistic, abs=1e-12)
        assert tau[k] == pytest.approx(stats.kendalltau(pred, meas[k]).statistic, abs=1e-12)
