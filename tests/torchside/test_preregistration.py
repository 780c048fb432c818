"""Predict, then measure: the closed loop writes its predictions with their digest before the first
evaluation run, reads them back on resume, refuses edited ones, and scores every predictor."""

import json

import pytest

pytest.importorskip("torch")

from dropmuon.theory import theorems as registry  # noqa: E402 - after the torch check
from dropmuon.verification.torchside import experiment as ex  # noqa: E402
from dropmuon.verification.torchside import preregistration as pre  # noqa: E402


def _config(**kw):
    base = dict(seeds=(0, 1), samplings=("full", "uniform", "optimal-sum", "epoch-shift"), max_steps=24,
                target_acc=0.3, batch=32, lr=0.1, width=0.125, eval_every=4, estimate_steps=3, cost_repeats=3,
                flush_denormals=False)
    base.update(kw)
    return ex.ExperimentConfig(**base)


def test_predictions_are_written_with_their_digest_before_the_first_run(tmp_path, monkeypatch):
    cfg = _config()
    real, seen = ex.run_task, []

    def checks_first(*a, **k):
        if not seen:  # the first evaluation run: the predictions must be on disk already, intact
            saved = json.loads((tmp_path / "predictions.json").read_text())
            assert pre.digest(saved["predictions"]) == saved["sha256"]
            seen.append(saved["sha256"])
        return real(*a, **k)

    monkeypatch.setattr(ex, "run_task", checks_first)
    res = ex.run_experiment(cfg, tmp_path, progress=False)
    assert seen and res["predictions_sha256"] == seen[0] == res["summary"]["predictions_sha256"]
    saved = json.loads((tmp_path / "experiment.json").read_text())
    assert pre.digest(saved["predictions"]) == saved["predictions_sha256"] == seen[0]
    # the theorems' predictions are those of predict() on the calibration, one per registered theorem
    names = [t["theorem"] for t in saved["predictions"]["theorems"]["theorems"]]
    assert names == [t.name for t in registry.values()]
    # the pilot ran every schedule on its own seed, for pilot_steps steps
    pilot = saved["predictions"]["pilot"]
    assert set(pilot["schedules"]) == set(cfg.samplings) and pilot["seed"] not in cfg.seeds
    assert pilot["steps"] == pre.pilot_steps(cfg) == 8  # max(2 evaluations of 4 steps, floor(.03·2·24) = 1)
    # every evaluation run records the theorems' quantity beside loss and accuracy, at evaluations
    # at least grad_norm_every steps apart, the first and the last included
    for r in saved["runs"]:
        at = [h["step"] for h in r["history"] if "grad_dual_sq_sum" in h]
        assert at[0] == r["history"][0]["step"] and at[-1] == r["history"][-1]["step"]
        assert all(b - a >= cfg.grad_norm_every for a, b in zip(at[:-1], at[1:-1]))
    # scored: one entry per predictor, predictions as registered
    for basis in ("accuracy", "lhs"):
        scored = saved["summary"]["predictors"][basis]
        assert [d["name"] for d in scored] == names + ["pilot"]
    t = next(t for t in saved["predictions"]["theorems"]["theorems"] if t["label"] == "T1")
    row = next(d for d in saved["summary"]["predictors"]["accuracy"] if d["name"] == t["theorem"])
    assert row["schedules"]["uniform"]["predicted_speedup"] == t["schedules"]["uniform"]["predicted_speedup"]
    assert row["schedules"]["uniform"]["measured_speedup"]["n"] == 2  # both seeds reached the target


def test_a_resumed_experiment_keeps_its_predictions_and_refuses_edited_ones(tmp_path, monkeypatch):
    cfg = _config(seeds=(0,), samplings=("full", "uniform"))
    first = ex.run_experiment(cfg, tmp_path, progress=False)
    monkeypatch.setattr(pre, "_run_task", lambda *a, **k: pytest.fail("the pilot ran again on resume"))
    again = ex.run_experiment(cfg, tmp_path, progress=False)
    assert again["predictions_sha256"] == first["predictions_sha256"]
    path = tmp_path / "predictions.json"
    saved = json.loads(path.read_text())
    saved["predictions"]["pilot"]["schedules"]["uniform"]["speedup"] = 9.0  # edited after the runs
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="do not match their SHA-256 digest"):
        ex.run_experiment(cfg, tmp_path, progress=False)


def test_pilot_length_stays_within_its_share():
    # at most PILOT_FRACTION of the largest possible experiment, at least two evaluations, at most
    # half of max_steps
    assert pre.pilot_steps(_config(seeds=tuple(range(47)), max_steps=1000, eval_every=20)) == 500
    assert pre.pilot_steps(_config(seeds=tuple(range(10)), max_steps=300, eval_every=5)) == 90
    assert pre.pilot_steps(_config(seeds=(0,), max_steps=300, eval_every=5)) == 10
    assert pre.pilot_steps(_config(pilot=False)) == 0
