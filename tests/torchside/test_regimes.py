"""The closed loop's regimes beyond minibatch Muon at one learning rate: full-batch runs (a
deterministic function of the seed), learning rates tuned per schedule on seeds disjoint from the
evaluation seeds, and the phase-optimal schedule built from constants measured per phase along a
full-Muon run. Tiny CNN on digits, CPU; no timing assertions."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dropmuon.solvers import optimal_sampling  # noqa: E402 - after the torch check
from dropmuon.verification.torchside import experiment as ex  # noqa: E402


def _config(**kw):
    base = dict(seeds=(0, 1), samplings=("full", "uniform"), max_steps=24, target_acc=0.3, batch=32, lr=0.1,
                width=0.125, eval_every=4, estimate_steps=3, cost_repeats=3, flush_denormals=False, pilot=False)
    base.update(kw)
    return ex.ExperimentConfig(**base)


def _calibration(cfg, setup):
    return ex.calibrate(cfg, None, progress=False, setup=setup)


def test_full_batch_runs_are_a_deterministic_function_of_the_seed(one_thread):
    cfg = _config(batch="full", train_examples=200)
    setup = ex.make_setup(cfg)
    assert len(setup.data.x_train) == 200 and setup.data.name.endswith("[:200]")
    cal = _calibration(cfg, setup)
    # full batch: a step's gradient is the full-batch gradient, so the measured noise is exactly 0
    assert all(rec["sigma"] == 0.0 and rec["sigma_batch"] == "full" for rec in cal["layers"])

    def history(sampling, seed):
        r = ex.run_task(cfg, sampling, seed, cal, setup=setup)
        return [(h["step"], h["train_loss"], h["train_acc"]) for h in r["history"]], r["start_counts"]

    a, b = history("uniform", 3), history("uniform", 3)
    assert a == b  # the same seed: the same layer sets, the same losses, bit for bit
    assert history("uniform", 4)[1] != a[1]  # another seed draws other layer sets
    # with every layer updated at every step, the seed's only other use is the initialisation:
    # two runs from one initialisation with different data seeds see the same batches (all of it)
    from dropmuon.verification.torchside.training import make_schedule, train

    runs = []
    for data_seed in (0, 1):
        model, opt, loss, metric = setup.build(cfg, 7, training=True)
        r = train(model, opt, setup.data, make_schedule("full", 4)[0], max_steps=6, batch="full", eval_every=3,
                  seed=data_seed, loss_fn=loss, metric=metric, grad_norms=False)
        runs.append([h["train_loss"] for h in r.history])
    assert runs[0] == runs[1]


def test_tuning_never_touches_an_evaluation_seed_and_the_evaluation_runs_at_the_tuned_rates(tmp_path, monkeypatch,
                                                                                           one_thread):
    cfg = _config(lr_grid=(0.02, 0.2), tune_runs=2)
    real, calls = ex.run_task, []

    def recorded(config, sampling, seed, *a, **k):
        calls.append((sampling, seed, config.schedule_lr(sampling)))
        return real(config, sampling, seed, *a, **k)

    monkeypatch.setattr(ex, "run_task", recorded)
    res = ex.run_experiment(cfg, tmp_path, progress=False)
    tuning_seeds = set(ex.tuning_seeds(cfg))
    tuned = [c for c in calls if c[1] in tuning_seeds]
    evaluated = [c for c in calls if c[1] in cfg.seeds]
    assert len(calls) == len(tuned) + len(evaluated)  # no other seed ran (the pilot is off)
    assert not tuning_seeds & set(cfg.seeds)
    # every (schedule, rate, tuning seed) ran once, before any evaluation run
    assert sorted(tuned) == sorted((s, k, lr) for s in cfg.samplings for lr in cfg.lr_grid for k in tuning_seeds)
    assert calls.index(evaluated[0]) == len(tuned)
    t = json.loads((tmp_path / "tuning.json").read_text())
    for s in cfg.samplings:
        # the chosen rate has the smallest median iterations to the target (a miss counts as infinite)
        med = {lr: t["table"][s][f"{lr:g}"]["median"] for lr in cfg.lr_grid}
        best = min(cfg.lr_grid, key=lambda lr: math.inf if med[lr] is None else med[lr])
        if len({(math.inf if v is None else v) for v in med.values()}) == len(med):  # no tie
            assert t["lr"][s] == best
        assert {lr for (s2, _, lr) in evaluated if s2 == s} == {t["lr"][s]}
        assert all(r["settings"]["lr"] == t["lr"][s] for r in res["runs"] if r["sampling"] == s)
    summary = res["summary"]["tuning"]
    assert summary["lr"] == t["lr"] and summary["train_time_s"] > 0 and summary["share"] > 0
    # an evaluation seed may not be a tuning seed
    with pytest.raises(ValueError, match="seed 2000004 is both an evaluation seed and a tuning seed"):
        _config(seeds=(0, 2_000_004), lr_grid=(0.02, 0.2), tune_runs=2)
    # resumed: neither the tuning nor the evaluation runs again
    monkeypatch.setattr(ex, "run_task", lambda *a, **k: pytest.fail("a finished run was re-run"))
    again = ex.run_experiment(cfg, tmp_path, progress=False)
    assert again["summary"]["tuning"]["lr"] == t["lr"]


def test_phase_optimal_runs_the_solvers_optimum_of_each_measured_phase(tmp_path, one_thread):
    cfg = _config(samplings=("full", "phase-optimal"), phases=3, seeds=(0,), max_steps=30, target_acc=0.6)
    res = ex.run_experiment(cfg, tmp_path, progress=False)
    ph = res["calibration"]["phases"]
    T = ph["horizon"]
    # the phases split full Muon's steps to the target (or all its steps) into equal parts
    assert T == (ph["iterations_to_target"] or ph["steps"])
    assert ph["starts"] == sorted({round(T * p / 3) for p in range(3)})
    assert all(len(row) == 4 and all(v > 0 for v in row) for row in ph["L"])
    _, cm = ex.load_constants(res["calibration"])
    run = next(r for r in res["runs"] if r["sampling"] == "phase-optimal")
    for p, L in enumerate(ph["L"]):
        r = optimal_sampling(L, cm, family="rpt", objective="max")
        np.testing.assert_allclose(run["start_probs_per_phase"][p], r.distribution.start_probs, atol=1e-9)
    # its per-phase predicted speed-ups were registered with the predictions, before the runs
    saved = json.loads((tmp_path / "predictions.json").read_text())["predictions"]
    row = saved["theorems"]["schedules"]["phase-optimal"]
    assert row["phase_starts"] == ph["starts"] and len(row["predicted_speedup_per_phase"]) == len(ph["starts"])
    assert res["summary"]["phase_predictions"]["predicted_speedup_per_phase"] == row["predicted_speedup_per_phase"]
