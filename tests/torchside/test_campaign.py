"""The regimes campaign: every regime is a valid experiment on a CPU and on a GPU, the command
line lists the library's regimes, and a campaign writes its record after every regime (so a
killed one is readable and resumes). The experiments themselves are stood in for here: each is
the closed loop tested in test_training, test_preregistration and test_regimes."""

import json

import pytest

pytest.importorskip("torch")

from dropmuon.figures.cli import main  # noqa: E402 - after the torch check
from dropmuon.figures.cli.campaign import REGIME_NAMES  # noqa: E402
from dropmuon.verification.torchside import campaign as cp  # noqa: E402
from dropmuon.verification.torchside import experiment as ex  # noqa: E402


def test_the_command_line_lists_the_librarys_regimes_and_each_is_a_valid_experiment():
    assert REGIME_NAMES == tuple(cp.REGIMES)
    for name in cp.REGIMES:
        for dev in ("cpu", "cuda"):
            cfg = cp.regime_config(name, dev)
            assert cfg.device == dev and "full" in cfg.samplings and len(cfg.seeds) >= 20
    # the GPU sizes are the paper's width; the full-batch regime takes the whole of mnist5k there
    gpu = cp.regime_settings("full-batch", "cuda")
    assert gpu["width"] == 1.0 and gpu["batch"] == "full" and gpu.get("train_examples") is None
    assert cp.regime_config("phase").samplings[-1] == "phase-optimal"
    assert cp.regime_config("tuned-theory").radius_rule == "inverse-inclusion"
    with pytest.raises(ValueError, match="unknown regime 'fast'"):
        cp.regime_settings("fast")


def _summary(tag):
    sp = {"mean": 0.8, "low": 0.7, "high": 0.9, "n": 2, "decided": "slower", "median": 0.8}
    one = {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 2, "decided": "not significant"}
    rows = {"full": {"speedup_time": one, "speedup_per_step": one, "speedup_iterations": one, "reached": 2, "runs": 2},
            "uniform": {"speedup_time": sp, "speedup_per_step": dict(sp, mean=1.4), "speedup_iterations": sp,
                        "reached": 2, "runs": 2}}
    pred = {"accuracy": [{"name": "pilot", "label": "pilot", "schedules": {
        "full": {"predicted_speedup": 1.0}, "uniform": {"predicted_speedup": 1.2}}}]}
    return {"rows": rows, "predictors": pred, "tag": tag}


def test_a_campaign_writes_its_record_after_every_regime(tmp_path, monkeypatch):
    seen = []

    def fake(cfg, out, progress=None, resume=True, stop_after=None):
        if len(seen) == 2:
            raise KeyboardInterrupt  # killed in the third regime
        seen.append((out.name, cfg.batch, len(cfg.seeds)))
        return {"summary": _summary(out.name)}

    monkeypatch.setattr(ex, "run_experiment", fake)
    with pytest.raises(KeyboardInterrupt):
        cp.run_campaign(["minibatch", "full-batch", "resnet"], out=tmp_path, overrides={"seeds": 2})
    assert seen == [("minibatch", 128, 2), ("full-batch", "full", 2)]
    rec = json.loads((tmp_path / "campaign.json").read_text())
    assert list(rec["regimes"]) == ["minibatch", "full-batch"]
    uni = [r for r in rec["rows"] if r["schedule"] == "uniform"]
    assert [r["regime"] for r in uni] == ["minibatch", "full-batch"]
    assert uni[0]["speedup_time"]["mean"] == 0.8 and uni[0]["speedup_per_step"]["mean"] == 1.4
    assert uni[0]["predicted"] == {"pilot": 1.2}
    with pytest.raises(ValueError, match="unknown regime 'nope'"):  # checked before the first run
        cp.run_campaign(["minibatch", "nope"], out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_campaign_run_one_regime_at_a_time_builds_one_record(tmp_path, monkeypatch):
    def fake(cfg, out, progress=None, resume=True, stop_after=None):
        if stop_after is not None:
            return {"calibration": {}, "tuning": {"lr": {"full": 0.2}}, "stopped_after": stop_after}
        return {"summary": _summary(out.name)}

    monkeypatch.setattr(ex, "run_experiment", fake)
    cp.run_campaign(["resnet"], out=tmp_path, overrides={"seeds": 2})
    cp.run_campaign(["minibatch"], out=tmp_path, overrides={"seeds": 2})
    rec = json.loads((tmp_path / "campaign.json").read_text())
    assert list(rec["regimes"]) == ["minibatch", "resnet"]  # both kept, in the regimes' order
    assert [r["regime"] for r in rec["rows"] if r["schedule"] == "uniform"] == ["minibatch", "resnet"]
    # running a regime again replaces its rows instead of adding them twice
    cp.run_campaign(["resnet"], out=tmp_path, overrides={"seeds": 2})
    rec = json.loads((tmp_path / "campaign.json").read_text())
    assert [r["regime"] for r in rec["rows"]].count("resnet") == 2  # full and uniform
    # a partial run (calibration or tuning only) leaves the record alone and reports the tuned rates
    got = cp.run_campaign(["tuned"], out=tmp_path, overrides={"seeds": 2}, stop_after="tuning")
    assert got["regimes"]["tuned"]["tuned_lr"] == {"full": 0.2} and got["stopped_after"] == "tuning"
    assert json.loads((tmp_path / "campaign.json").read_text()) == rec
    # a record made on another device is not mixed in
    cp.run_campaign(["tuned"], device="cuda", out=tmp_path, overrides={"seeds": 2})
    assert list(json.loads((tmp_path / "campaign.json").read_text())["regimes"]) == ["tuned"]


def test_stop_after_names_a_stage():
    with pytest.raises(ValueError, match="stop_after must be 'calibration' or 'tuning', not 'runs'"):
        ex.run_experiment(ex.ExperimentConfig(seeds=(0,)), stop_after="runs")


def test_campaign_list_prints_every_regime_with_its_settings(capsys):
    assert main(["campaign", "--list", "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["regimes"]) == list(REGIME_NAMES)
    assert out["regimes"]["full-batch"]["settings"] == json.loads(json.dumps(cp.regime_settings("full-batch")))
    assert main(["campaign", "--regimes", "minibatch,fast", "--list"]) == 2
    assert "unknown regime 'fast'" in capsys.readouterr().err
