"""Training runs, schedules and the closed loop on a tiny CNN (CPU): limits end every run, frozen
layers stay frozen through training, runs are reproducible, and the experiment resumes from its
saved tasks. No timing assertions: speed lives in the benchmarks."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from ..tolerances import EXACT_RTOL  # noqa: E402
from dropmuon.theory import RPT  # noqa: E402
from dropmuon.verification.forecasting.schedules import epoch_shift_schedule, make_schedule  # noqa: E402
from dropmuon.verification.torchside import DropMuon, make_cnn  # noqa: E402
from dropmuon.verification.torchside import experiment as ex  # noqa: E402
from dropmuon.verification.torchside.environment import resolve_ns_dtype  # noqa: E402
from dropmuon.verification.torchside.training import accuracy, train  # noqa: E402

TINY = dict(width=0.125)



def _fresh(seed=0, lr=0.1):
    m = make_cnn(1, 10, seed=seed, **TINY)
    return m, DropMuon(layers=m.layer_parameters(), lr=lr)


def test_full_training_reaches_a_target(digits):
    m, opt = _fresh()
    r = train(m, opt, digits, RPT.full(4), max_steps=200, batch=64, target_acc=0.6, eval_every=4, seed=0)
    assert r.stop_reason == "target"
    assert r.iterations_to_target == r.steps and r.steps % 4 == 0
    assert r.final_train_acc >= 0.6 and r.history[-1]["train_acc"] == r.final_train_acc
    # the reported accuracy is the model's accuracy on the whole training set
    assert accuracy(m, digits.x_train, digits.y_train)[0] == r.final_train_acc
    assert 0 < r.time_to_target_s <= r.train_time_s + 1e-12
    assert r.start_counts == (r.steps, 0, 0, 0) and r.layer_updates == (r.steps,) * 4
    assert 0 <= r.test_acc <= 1


def test_unreached_target_is_reported_not_a_hang(digits):
    m, opt = _fresh()
    r = train(m, opt, digits, RPT.uniform(4), max_steps=3, batch=16, target_acc=1.0, eval_every=10)
    assert (r.iterations_to_target, r.time_to_target_s, r.stop_reason, r.steps) == (None, None, "max_steps", 3)
    assert [h["step"] for h in r.history] == [0, 3]  # the last step is always evaluated
    m, opt = _fresh()
    r = train(m, opt, digits, RPT.uniform(4), max_steps=10**9, batch=16, target_acc=1.0, max_seconds=0.2)
    assert r.stop_reason == "max_seconds" and r.iterations_to_target is None and r.steps < 10**9


def test_frozen_layers_stay_frozen_through_training(digits):
    m, opt = _fresh()
    before = [p.detach().clone() for p in m.parameters()]
    r = train(m, opt, digits, RPT([0, 0, 0.5, 0.5]), max_steps=12, batch=32, eval_every=6, seed=3)
    after = list(m.parameters())
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])  # layers 1, 2: bit for bit
    assert not torch.equal(before[3], after[3])
    assert r.layer_updates[:2] == (0, 0) and r.layer_updates[3] == 12
    assert r.start_counts[2] + r.start_counts[3] == 12 and r.start_counts[2] == r.layer_updates[2]
    assert all(p not in opt.state for p in m.layer_parameters()[0])  # no momentum was ever formed


def test_runs_are_reproducible(digits):
    runs = []
    for _ in range(2):
        m, opt = _fresh(seed=5)
        r = train(m, opt, digits, RPT.uniform(4), max_steps=8, batch=32, eval_every=4, seed=7)
        runs.append((r, [p.detach().clone() for p in m.parameters()]))
    (r1, w1), (r2, w2) = runs
    assert r1.start_counts == r2.start_counts
    assert [h["train_acc"] for h in r1.history] == [h["train_acc"] for h in r2.history]
    assert all(torch.equal(a, b) for a, b in zip(w1, w2))


def test_bad_training_input(digits):
    m, opt = _fresh()
    with pytest.raises(ValueError, match="target_acc = 1.5"):
        train(m, opt, digits, RPT.full(4), max_steps=1, target_acc=1.5)
    with pytest.raises(ValueError, match="max_steps = 0"):
        train(m, opt, digits, RPT.full(4), max_steps=0)
    with pytest.raises(ValueError, match="3 layers but the network has 4"):
        train(m, opt, digits, RPT.full(3), max_steps=1)


def test_schedules():
    with pytest.raises(ValueError, match="2 entries but the network has 4 layers"):
        make_schedule("custom", 4, probs=[0.5, 0.5])
    with pytest.raises(ValueError, match="unknown sampling 'best'"):
        make_schedule("best", 4)
    with pytest.raises(ValueError, match="needs smoothness constants"):
        make_schedule("optimal-max", 4)
    # the max-form optimum of docs/sampling.md: π_i = max_{j≤i} L_j / L_max, whatever the costs
    s, info = make_schedule("optimal-max", 4, L=[1, 5, 3, 2], costs=[1, 1, 1, 1])
    assert np.allclose(info["start_probs"], [0.2, 0.8, 0, 0], atol=1e-12)
    assert info["predicted_speedup_vs_full"] == pytest.approx(1.25, rel=1e-12)
    # epoch-shift: one distribution per epoch, cycling, averaging to uniform index sampling
    sched = epoch_shift_schedule(4, epoch_length=3)
    assert np.allclose(np.mean([d.start_probs for d in sched.distributions], axis=0), 0.25, atol=1e-15)
    assert sched._at(0) is sched.distributions[0] and sched._at(3) is sched.distributions[1]
    assert sched._at(12) is sched.distributions[0]


def test_speedup_ci_is_exact_on_constant_ratios_and_covers_at_its_level():
    r = ex.speedup_ci([2.0, 6.0, None, 3.0], [1.0, 3.0, 1.0, 1.5])
    assert r["n"] == 3 and r["mean"] == pytest.approx(2.0, rel=1e-14)
    assert r["low"] == pytest.approx(2.0, rel=1e-14) and r["high"] == pytest.approx(2.0, rel=1e-14)
    empty = ex.speedup_ci([1.0], [None])
    assert (empty["mean"], empty["low"], empty["high"], empty["n"], empty["decided"]) == (None, None, None, 0,
                                                                                         "not significant")
    # coverage of the true median ratio (1.3) by log-normal paired ratios, n = 5 per interval:
    # 4000 intervals give a binomial standard error sqrt(.95 · .05 / 4000) = 0.0034; 4 of them
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(4000):
        base = rng.uniform(1, 3, 5)
        other = base / (1.3 * np.exp(rng.normal(0, 0.2, 5)))
        c = ex.speedup_ci(base.tolist(), other.tolist())
        hits += c["low"] <= 1.3 <= c["high"]
    assert abs(hits / 4000 - ex.CONFIDENCE) < 4 * math.sqrt(0.95 * 0.05 / 4000)


def _tiny_config(**kw):
    base = dict(seeds=(0, 1), samplings=("full", "uniform", "optimal-max", "optimal-sum", "epoch-shift"),
                max_steps=24, target_acc=0.3, batch=32, lr=0.1, width=0.125, eval_every=4, estimate_steps=3,
                cost_repeats=3, flush_denormals=False)  # this process's thread pool exists already
    base.update(kw)
    return ex.ExperimentConfig(**base)


def test_experiment_runs_summarises_and_resumes(tmp_path, monkeypatch):
    cfg = _tiny_config()
    res = ex.run_experiment(cfg, tmp_path, progress=False)
    files = sorted(p.name for p in (tmp_path / "runs").glob("*-seed*.json"))
    assert files == sorted(f"{s}-seed{k}.json" for s in cfg.samplings for k in cfg.seeds)
    assert not [p for p in tmp_path.rglob("*.tmp")]  # atomic writes leave no temporaries
    # every run and the calibration record the machine and the Newton-Schulz dtype they ran with
    dtype = str(resolve_ns_dtype("auto", "cpu")).replace("torch.", "")
    assert all(r["environment"]["ns_dtype"] == dtype for r in res["runs"])
    assert res["calibration"]["environment"]["cpu_model"] == res["runs"][0]["environment"]["cpu_model"]
    rows = res["summary"]["rows"]
    assert list(rows) == list(cfg.samplings)
    assert rows["full"]["speedup_time"]["mean"] == pytest.approx(1.0, rel=1e-12)
    # the predicted speed-ups are the solver's: optimal-max is best under the max form, optimal-sum
    # under the sum form, among the i.i.d. schedules run (ties allowed: full can be optimal);
    # the solvers are exact to ~1e-9 relative (tests/tolerances.py EXACT_RTOL)
    iid = [s for s in cfg.samplings if rows[s]["predicted_speedup_max"] is not None]
    for obj in ("max", "sum"):
        best = rows[f"optimal-{obj}"][f"predicted_speedup_{obj}"]
        assert all(rows[s][f"predicted_speedup_{obj}"] <= best * (1 + EXACT_RTOL) for s in iid)
    assert rows["epoch-shift"]["predicted_speedup_max"] is None  # not i.i.d.: no theorem covers it
    saved = json.loads((tmp_path / "experiment.json").read_text())
    assert saved["summary"]["verdict"] == json.loads(json.dumps(res["summary"]["verdict"]))
    # a re-run reads every task back instead of training
    monkeypatch.setattr(ex, "run_task", lambda *a, **k: pytest.fail("a finished task was re-run"))
    again = ex.run_experiment(cfg, tmp_path, progress=False)
    assert [r["time_to_target_s"] for r in again["runs"]] == [r["time_to_target_s"] for r in res["runs"]]


def test_experiment_killed_part_way_resumes_without_loss_or_duplicates(tmp_path, monkeypatch):
    cfg = _tiny_config(seeds=(3,), samplings=("full", "uniform", "epoch-shift"))
    real = ex.run_task
    calls = []

    def dies_after_two(*a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(a[1])
        return real(*a, **k)

    monkeypatch.setattr(ex, "run_task", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        ex.run_experiment(cfg, tmp_path, progress=False)
    assert len(list((tmp_path / "runs").glob("*-seed*.json"))) == 2
    monkeypatch.setattr(ex, "run_task", real)
    res = ex.run_experiment(cfg, tmp_path, progress=False)
    assert sorted(r["sampling"] for r in res["runs"]) == sorted(cfg.samplings)
    # a changed setting invalidates the saved tasks
    monkeypatch.setattr(ex, "run_task", lambda *a, **k: dict(real(*a, **k), rerun=True))
    res2 = ex.run_experiment(_tiny_config(seeds=(3,), samplings=cfg.samplings, max_steps=20), tmp_path,
                             progress=False)
    assert all(r.get("rerun") for r in res2["runs"])


def test_experiment_config_errors():
    with pytest.raises(ValueError, match="needs the 'full' sampling"):
        _tiny_config(samplings=("uniform",))
    with pytest.raises(ValueError, match="unknown sampling 'custom'"):
        _tiny_config(samplings=("full", "custom"))
    with pytest.raises(ValueError, match="seeds must be distinct"):
        _tiny_config(seeds=(1, 1))
    # the range of a target depends on the model's metric: checked when the experiment starts,
    # before any measurement or training
    with pytest.raises(ValueError, match=r"target accuracy must be in \(0, 1\]; got target_acc = 0"):
        ex.run_experiment(_tiny_config(target_acc=0), progress=False)


def test_load_constants_errors(tmp_path):
    f = tmp_path / "c.json"
    f.write_text("[{\"layer\": 1, \"L\": 2.0}]")
    with pytest.raises(ValueError, match="lacks 'costs'"):
        ex.load_constants(f)
    f.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        ex.load_constants(f)
    with pytest.raises(ValueError, match="cannot read the constants file"):
        ex.load_constants(tmp_path / "missing.json")
    # a bad value is named by file, record and field (the first version let float() speak:
    # "could not convert string to float: 'abc'")
    costs = {"forward_s": 1e-3, "activation_s": 1e-3, "weight_s": 1e-3, "update_s": 1e-4}
    cases = [
        ([{"layer": 1, "L": "abc"}], "record 1 (layer 1), field 'L' must be a number; got 'abc'"),
        ([{"layer": 1, "L": 1.0, "costs": costs}, {"layer": 2, "L": 1.0, "costs": dict(costs, weight_s="x")}],
         "record 2 (layer 2), field 'costs.weight_s' must be a number; got 'x'"),
        ([{"layer": 1, "L": 1.0, "costs": dict(costs, update_s=-1)}],
         "record 1 (layer 1), field 'costs.update_s': a time must be finite and non-negative; got -1.0"),
        ([{"layer": 1, "L": 0, "costs": costs}],
         "record 1 (layer 1), field 'L': smoothness constants must be positive and finite; got L = 0.0"),
        ([{"layer": "1", "L": 1.0, "costs": costs}], "record 1, field 'layer' must be an integer; got '1'"),
        ([[1.0]], "record 1 is not a per-layer record"),
    ]
    for recs, msg in cases:
        f.write_text(json.dumps(recs))
        with pytest.raises(ValueError) as info:
            ex.load_constants(f)
        assert str(info.value).startswith(f"the constants file {str(f)!r}: {msg}"), info.value
    # the toolkit writes an infinite L as "inf" (strict JSON): read back, it is refused as infinite
    f.write_text(json.dumps([{"layer": 1, "L": "inf", "costs": costs}]))
    with pytest.raises(ValueError, match="field 'L': smoothness constants must be positive and finite; got L = inf"):
        ex.load_constants(f)
    f.write_text(json.dumps([{"layer": 1, "L": 2.0, "costs": costs}]))
    assert ex.load_constants(f)[0] == [2.0]


def test_time_to_target_is_interpolated_between_the_bracketing_evaluations(digits):
    m, opt = _fresh()
    r = train(m, opt, digits, RPT.full(4), max_steps=200, batch=64, target_acc=0.6, eval_every=4, seed=0)
    below = [h for h in r.history if h["train_acc"] < 0.6][-1]
    above = r.history[-1]
    assert above["step"] == r.iterations_to_target and below["step"] == above["step"] - 4
    # the crossing lies between the two evaluations, where the straight line through them meets 0.6
    f = (0.6 - below["train_acc"]) / (above["train_acc"] - below["train_acc"])
    assert 0 <= f <= 1
    assert r.iterations_to_target_interpolated == pytest.approx(below["step"] + 4 * f, rel=EXACT_RTOL)
    assert r.time_to_target_interpolated_s == pytest.approx(
        below["time_s"] + f * (above["time_s"] - below["time_s"]), rel=EXACT_RTOL)
    assert r.time_to_target_interpolated_s <= r.time_to_target_s
    m, opt = _fresh()
    r = train(m, opt, digits, RPT.full(4), max_steps=2, batch=16, target_acc=1.0, eval_every=1)
    assert (r.iterations_to_target_interpolated, r.time_to_target_interpolated_s) == (None, None)


def test_power_analysis_detects_the_effect_at_its_stated_power():
    """seeds_needed from the non-central t; checked by simulating paired log ratios with a known
    10% effect and the spread measured on CPU closed loops: the t-test with that many seeds must
    detect it in a fraction of experiments equal to the power, within 4 binomial standard errors."""
    from scipy import stats

    sd, effect, power = 0.25, 1.10, 0.8
    n = ex.seeds_needed(sd, effect, power=power)
    assert ex._t_power(n - 1, math.log(effect) / sd, ex.CONFIDENCE) < power <= ex._t_power(
        n, math.log(effect) / sd, ex.CONFIDENCE)
    trials = 4000
    logs = np.random.default_rng(1).normal(math.log(effect), sd, size=(trials, n))
    t = logs.mean(1) / (logs.std(1, ddof=1) / math.sqrt(n))
    detected = np.mean(np.abs(t) > stats.t.ppf(0.5 + ex.CONFIDENCE / 2, n - 1))
    assert abs(detected - power) < 4 * math.sqrt(power * (1 - power) / trials), (n, detected)
    # a slow-down of the same size needs about as many seeds; the CPU estimate of "about 50" holds
    assert abs(ex.seeds_needed(sd, 1 / effect) - n) <= 1 and 45 <= n <= 60
    with pytest.raises(ValueError, match="effect = 1"):
        ex.seeds_needed(sd, 1)


def test_seeds_for_width_gives_intervals_of_the_planned_width():
    """seeds_for_width: the fewest n with t_{n-1} sd / sqrt(n) <= log ratio. Simulated with the
    planning spread, the realised half-width is within the plan exactly when the sample sd is at
    most the planning sd: probability P(chi2_{n-1} <= n-1), matched within 4 binomial standard
    errors; and the intervals cover the true log ratio at the stated level."""
    from scipy import stats

    sd, ratio = 0.321, 1.10
    n = ex.seeds_for_width(sd, ratio)
    q = stats.t.ppf(0.5 + ex.CONFIDENCE / 2, n - 1)
    assert q * sd / math.sqrt(n) <= math.log(ratio) < stats.t.ppf(0.5 + ex.CONFIDENCE / 2, n - 2) * sd / math.sqrt(n - 1)
    trials = 4000
    logs = np.random.default_rng(2).normal(math.log(0.8), sd, size=(trials, n))
    half = q * logs.std(1, ddof=1) / math.sqrt(n)
    within = np.mean(half <= math.log(ratio))
    p = stats.chi2.cdf((n - 1) * (math.log(ratio) * math.sqrt(n) / (q * sd)) ** 2, n - 1)
    assert abs(within - p) < 4 * math.sqrt(p * (1 - p) / trials), (n, within, p)
    covered = np.mean(np.abs(logs.mean(1) - math.log(0.8)) <= half)
    c = ex.CONFIDENCE
    assert abs(covered - c) < 4 * math.sqrt(c * (1 - c) / trials)
    for bad, msg in (((0.0, 1.1), "sd_log"), ((0.3, 1.0), "ratio")):
        with pytest.raises(ValueError, match=msg):
            ex.seeds_for_width(*bad)


def test_speedup_summary_has_median_bootstrap_and_a_decision():
    r = ex.speedup_ci([2.0, 2.2, 1.9, 2.1, 2.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert r["decided"] == "faster" and r["low"] > 1 and r["median"] == pytest.approx(2.0, rel=EXACT_RTOL)
    assert r["low"] <= r["mean"] <= r["high"] and r["boot_low"] <= r["mean"] <= r["boot_high"]
    assert ex.speedup_ci([1.0, 1.0, 1.0], [1.1, 0.9, 1.05])["decided"] == "not significant"
    assert ex.speedup_ci([1.0, 1.0, 1.0], [2.1, 1.9, 2.0])["decided"] == "slower"
    # the bootstrap is seeded: the same data give the same interval
    a, b = ex.speedup_ci([3, 1, 2], [1, 2, 1]), ex.speedup_ci([3, 1, 2], [1, 2, 1])
    assert (a["boot_low"], a["boot_high"]) == (b["boot_low"], b["boot_high"])


def test_contention_check_marks_runs_whose_step_times_disagree(digits):
    from dropmuon.verification.torchside.training import step_time_stats

    quiet = [{"sampling": "full", "seed": k, "step_times": step_time_stats({1: [0.050] * 9 + [0.052]})}
             for k in range(4)]
    noisy = {"sampling": "uniform", "seed": 7, "step_times": step_time_stats({1: [0.05] * 7 + [0.2] * 3})}
    slow = {"sampling": "uniform", "seed": 8, "step_times": step_time_stats({1: [0.08] * 10})}
    marked = ex.suspect_runs(quiet + [noisy, slow])
    assert [(m["sampling"], m["seed"]) for m in marked] == [("uniform", 7), ("uniform", 8)]
    assert "spread 4.00x" in marked[0]["reason"] and "80.0 ms against 50.0 ms" in marked[1]["reason"]
    assert ex.suspect_runs(quiet) == []
    # a training run records its step times per start index
    m, opt = _fresh()
    r = train(m, opt, digits, RPT([0.5, 0, 0, 0.5]), max_steps=20, batch=32, eval_every=10, seed=2)
    per = {rec["s"]: rec for rec in r.info["step_times"]["per_start"]}
    assert set(per) == {1, 4} and per[1]["n"] + per[4]["n"] == 20 == sum(r.start_counts)
    assert per[1]["n"] == r.start_counts[0] and per[1]["median_s"] <= per[1]["p90_s"]
