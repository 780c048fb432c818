"""``dropmuon train`` and ``dropmuon experiment``: the JSON interface of the acceptance checks and
one-line errors for bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dropmuon.figures.cli import main  # noqa: E402

# in-process runs keep torch's default for subnormals: this process's thread pool already exists,
# so flushing would reach the main thread only (test_cli_flushes_denormals runs a fresh process)
TINY = ["--device", "cpu", "--width", "0.125", "--batch", "32", "--no-progress", "--keep-denormals"]


def _json(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_train_json(capsys):
    r = _json(capsys, ["train", *TINY, "--sampling", "uniform", "--max-steps", "40", "--target-acc", "0.3",
                       "--seed", "1", "--eval-every", "2", "--json"])
    for k in ("time_to_target_s", "iterations_to_target", "final_train_acc", "test_acc", "seconds_per_step"):
        assert k in r
    assert r["sampling"] == "uniform" and r["start_probs"] == [0.25] * 4
    assert r["iterations_to_target"] is not None and r["iterations_to_target"] % 2 == 0
    assert r["final_train_acc"] >= 0.3 and r["stop_reason"] == "target"


def test_train_unreached_target_is_reported(capsys):
    r = _json(capsys, ["train", *TINY, "--max-steps", "2", "--target-acc", "1.0", "--seed", "0", "--json"])
    assert r["iterations_to_target"] is None and r["time_to_target_s"] is None
    assert r["stop_reason"] == "max_steps" and r["steps"] == 2
    main(["train", *TINY, "--max-steps", "2", "--target-acc", "1.0"])
    assert "NOT reached (max_steps after 2 steps)" in capsys.readouterr().out


def test_train_online_constants(capsys):
    r = _json(capsys, ["train", *TINY, "--max-steps", "12", "--seed", "0", "--estimate-every", "3", "--json"])
    oc = r["online_constants"]
    # full Muon updates every layer at each estimating step k = 0, 3, 6, 9
    assert oc["every"] == 3 and [s["n"] for s in oc["layers"]] == [4, 4, 4, 4]
    assert all(s["L"] > 0 for s in oc["layers"]) and oc["overhead"] == oc["estimate_s"] / oc["train_s"]
    r = _json(capsys, ["train", *TINY, "--max-steps", "2", "--channels-last", "--json"])
    assert r["channels_last"] is True and r["compile"] is False
    assert main(["train", *TINY, "--max-steps", "6", "--estimate-every", "3"]) == 0
    out = capsys.readouterr().out
    assert "online constants every 3 steps" in out and "overhead" in out


def _hand_constants(path):
    """A ``dropmuon estimate --json``-shaped file written by hand (L_j = j): a closed loop that reads
    it has nothing to measure."""
    costs = {"forward_s": 1e-3, "activation_s": 1e-3, "weight_s": 1e-3, "update_s": 1e-4}
    path.write_text(json.dumps([{"layer": j, "L": float(j), "costs": costs} for j in (1, 2, 3, 4)]))
    return path


def test_train_optimal_with_constants_file(capsys, tmp_path):
    # 2 steps, the fewest the estimate takes: the checks below are on where L came from, not its size
    recs = _json(capsys, ["estimate", *TINY, "--steps", "2", "--repeats", "3", "--json"])
    f = tmp_path / "constants.json"
    f.write_text(json.dumps(recs))
    r = _json(capsys, ["train", *TINY, "--sampling", "optimal-max", "--constants", str(f), "--max-steps", "4",
                       "--json"])
    # the max-form RPT optimum: π_i = max_{j≤i} L_j / max_j L_j (docs/sampling.md)
    L = np.array([rec["L"] for rec in recs])
    pi = np.cumsum(r["start_probs"])
    assert np.allclose(pi, np.maximum.accumulate(L) / L.max(), atol=1e-12)
    assert r["constants_source"] == str(f) and r["steps"] == 4
    # the report says where the constants came from: the file, and the method recorded in it
    method = "trajectory estimate (largest along steps of full Muon, spectral/nuclear)"
    assert r["constants_method"] == method and all(rec["method"] == method for rec in recs)
    assert main(["train", *TINY, "--sampling", "optimal-max", "--constants", str(f), "--max-steps", "2"]) == 0
    out = capsys.readouterr().out
    L = ", ".join(f"{rec['L']:.4g}" for rec in recs)
    assert f"smoothness constants L = ({L}) read from {str(f)!r} (method recorded there: {method})" in out
    bare = tmp_path / "bare.json"  # a file that does not say how its L were obtained
    bare.write_text(json.dumps([{k: v for k, v in rec.items() if k != "method"} for rec in recs]))
    assert main(["train", *TINY, "--sampling", "optimal-max", "--constants", str(bare), "--max-steps", "2"]) == 0
    out = capsys.readouterr().out
    assert f"smoothness constants L = ({L}) read from {str(bare)!r} (no method recorded in it)" in out
    # the closed loop's table too: the first version printed "L (trajectory estimate, ...)" for a file
    assert main(["experiment", *TINY, "--constants", str(f), "--seeds", "1", "--samplings", "full,optimal-max",
                 "--max-steps", "2", "--target-acc", "0.3", "--eval-every", "2", "--out", str(tmp_path / "exp")]) == 0
    out = capsys.readouterr().out
    assert f"L read from {str(f)!r} (method recorded there: {method}) = ({L})" in out
    assert "trajectory estimate," not in out


def test_train_bad_input(capsys, tmp_path):
    bad_record = tmp_path / "bad-record.json"
    bad_record.write_text('[{"layer": 1, "L": "abc"}]')
    empty = tmp_path / "empty.npz"
    np.savez(empty, x_train=np.zeros((0, 1, 28, 28), np.float32), y_train=np.zeros(0, np.int64),
             x_test=np.zeros((0, 1, 28, 28), np.float32), y_test=np.zeros(0, np.int64))
    no_test = tmp_path / "no-test.npz"
    np.savez(no_test, x_train=np.zeros((4, 1, 8, 8), np.float32), y_train=np.zeros(4, np.int64),
             x_test=np.zeros((0, 1, 8, 8), np.float32), y_test=np.zeros(0, np.int64))
    cases = [
        # the first versions said "could not convert string to float: 'abc'", and blamed the model factory
        (["--sampling", "optimal-max", "--constants", str(bad_record)],
         f"the constants file {str(bad_record)!r}: record 1 (layer 1), field 'L' must be a number; got 'abc'"),
        (["--data", str(empty)],
         f"the data set is empty: the data file {str(empty)!r} holds 0 training examples "
         f"(x_train has shape (0, 1, 28, 28))"),
        (["--data", str(no_test)], f"the test set is empty: the data file {str(no_test)!r} holds 0 test examples"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--sampling", "custom", "--probs", "0.5,0.5"], "2 entries but the network has 4 layers"),
        (["--sampling", "custom"], "needs start probabilities"),
        (["--sampling", "uniform", "--probs", "1,0,0,0"], "--probs is for --sampling custom"),
        (["--target-acc", "1.5"], "must be in (0, 1]; got --target-acc = 1.5"),
        (["--max-steps", "0"], "--max-steps must be positive"),
        (["--estimate-every", "0"], "--estimate-every must be positive"),
        (["--estimate-every", "2.5"], "--estimate-every"),
        (["--sampling", "optimal-max", "--constants", str(tmp_path / "none.json")], "cannot read the constants file"),
    ]
    for extra, msg in cases:
        assert main(["train", *TINY, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, (extra, err)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((4, 8, 8)), y_train=np.zeros(4, dtype=int), x_test=np.zeros((2, 9, 9)),
             y_test=np.zeros(2, dtype=int))
    assert main(["train", *TINY, "--data", str(bad)]) == 2
    assert "train and test images differ in shape" in capsys.readouterr().err
    assert main(["train", *TINY, "--sampling", "best"]) == 2
    assert "invalid choice: 'best'" in capsys.readouterr().err


def test_experiment_json_and_resume(capsys, tmp_path):
    # --estimate-steps 2 (the fewest): the calibration only has to be measured, not to be accurate
    argv = ["experiment", *TINY, "--seeds", "2", "--samplings", "full,uniform,optimal-max", "--max-steps", "16",
            "--target-acc", "0.3", "--eval-every", "4", "--estimate-steps", "2", "--repeats", "3",
            "--out", str(tmp_path), "--json"]
    s = _json(capsys, argv)
    assert list(s["rows"]) == ["full", "uniform", "optimal-max"]
    assert s["verdict"]["predicted_winner_max"] in ("full", "optimal-max")  # full ties when L_1 = max L
    assert len(list((tmp_path / "runs").glob("*-seed*.json"))) == 6  # and the manifest
    again = _json(capsys, argv)  # resumed: the same runs, so the same numbers
    assert again["rows"] == s["rows"]
    assert main(argv[:-1]) == 0
    out = capsys.readouterr().out
    assert "measured winner" in out and "optimal-max" in out
    assert "L (trajectory estimate, spectral/nuclear) = (" in out  # measured by the experiment itself
    assert main(["experiment", *TINY, "--samplings", "uniform,optimal-max", "--out", str(tmp_path)]) == 2
    assert "needs the 'full' sampling" in capsys.readouterr().err


def test_preset_fills_only_the_options_not_given(capsys, tmp_path):
    import argparse

    from dropmuon.figures.cli import experiment
    from dropmuon.verification.torchside.experiment import preset_settings

    parser = argparse.ArgumentParser()
    experiment.add_parser(parser.add_subparsers())
    args = parser.parse_args(["experiment", "--preset", "paper-gpu", "--batch", "64"])
    experiment.resolve_preset(args, "cuda")
    gpu = preset_settings("paper-gpu", "cuda")
    assert (args.batch, args.width, args.data, args.seeds) == ("64", str(gpu["width"]), "mnist5k", str(gpu["seeds"]))
    args = parser.parse_args(["experiment", "--preset", "paper-gpu"])
    experiment.resolve_preset(args, "cpu")
    cpu = preset_settings("paper-gpu", "cpu")
    assert float(args.width) < float(gpu["width"]) and int(args.seeds) < gpu["seeds"]  # the smaller CPU size
    assert (args.width, args.batch, args.eval_every) == (str(cpu["width"]), str(cpu["batch"]), str(cpu["eval_every"]))
    args = parser.parse_args(["experiment"])  # no preset: the usual defaults
    experiment.resolve_preset(args, "cpu")
    assert (args.batch, args.width, args.data, args.target_acc) == ("256", "1.0", None, "0.98")
    # and it runs, shrunk by explicit options, on the preset's real MNIST images: with constants from
    # a file and no pilot (options no preset fills; measuring the constants on the 28x28 images
    # took 2/3 of the test, and test_experiment_json_and_resume runs both on digits)
    f = _hand_constants(tmp_path / "constants.json")
    s = _json(capsys, ["experiment", "--preset", "paper-gpu", *TINY, "--seeds", "1", "--samplings", "full,uniform",
                       "--max-steps", "4", "--constants", str(f), "--no-pilot", "--out", str(tmp_path / "exp"),
                       "--json"])
    assert s["preset"] == "paper-gpu" and s["data"] == "mnist5k" and s["config"]["eval_every"] == cpu["eval_every"]
    assert s["config"]["width"] == 0.125 and s["config"]["target_acc"] == cpu["target_acc"]


def test_cli_flushes_denormals_in_every_thread(tmp_path):
    """A fresh ``dropmuon train`` sets flushing before torch's pool starts, so every thread
    flushes; ``--keep-denormals`` leaves torch's default (none flushes)."""
    # a small .npz, not the built-in digits: the flag does not depend on the data, and the
    # processes then skip importing sklearn (~3 s each)
    g = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x_train=g.random((64, 1, 8, 8), dtype=np.float32), y_train=g.integers(0, 10, 64),
             x_test=g.random((32, 1, 8, 8), dtype=np.float32), y_test=g.integers(0, 10, 32))
    base = [sys.executable, "-c", "from dropmuon.figures.cli import entry; entry()", "train", *TINY[:-1], "--max-steps", "1",
            "--data", str(data), "--json"]
    # two fresh processes, started together: each spends seconds importing torch. Two intra-op
    # threads each (the suite's conftest sets one for its own processes): "every thread" is then
    # more than the main one
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    procs = [subprocess.Popen(base + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for extra in ([], ["--keep-denormals"])]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    got = [json.loads(out) for out, _ in outs]
    assert got[0]["denormals_flushed"] == 1.0 and got[1]["denormals_flushed"] == 0.0


def test_train_radius_rule_and_gradient_norms(capsys, tmp_path):
    # theory is dropmuon predict's name for the inverse-inclusion rule
    r = _json(capsys, ["train", *TINY, "--sampling", "uniform", "--radius-rule", "theory", "--max-steps", "4",
                       "--eval-every", "2", "--grad-norm-every", "2", "--grad-norm-examples", "64", "--json"])
    assert r["radius_rule"] == "inverse-inclusion" and r["radius_inclusion"] == [[0.25, 0.5, 0.75, 1.0]]
    recorded = [h for h in r["history"] if "grad_dual_sq" in h]
    assert [h["step"] for h in recorded] == [0, 2, 4] and all(len(h["grad_dual_sq"]) == 4 for h in recorded)
    assert (r["grad_norms"]["examples"], r["grad_norms"]["every"]) == (64, 2)
    assert main(["train", *TINY, "--sampling", "epoch-shift", "--radius-rule", "inverse-inclusion", "--max-steps",
                 "2"]) == 0
    out = capsys.readouterr().out
    assert "radius rule inverse-inclusion: layer i moves by lr/pi_i, pi; per epoch: (0.625, 0.75, 0.875, 1)" in out
    assert "(nuclear, on a fixed subset of 256 training examples, every 20 steps)" in out
    for extra, msg in ((["--radius-rule", "best"], "invalid choice: 'best'"),
                       (["--grad-norm-examples", "0"], "--grad-norm-examples must be positive; got 0"),
                       (["--grad-norm-every", "x"], "--grad-norm-every is 'x', not an integer")):
        assert main(["train", *TINY, "--max-steps", "1", *extra]) == 2, extra
        assert msg in capsys.readouterr().err
    # the closed loop under the rule (constants from a file: nothing to measure)
    f = _hand_constants(tmp_path / "constants.json")
    argv = ["experiment", *TINY, "--constants", str(f), "--seeds", "1", "--samplings", "full,uniform", "--max-steps",
            "4", "--target-acc", "0.2", "--eval-every", "2", "--grad-norm-every", "2", "--radius-rule", "theory",
            "--out", str(tmp_path / "exp")]
    s = _json(capsys, argv + ["--json"])
    assert s["config"]["radius_rule"] == "inverse-inclusion" and s["config"]["grad_norm_every"] == 2
    assert len(s["eps2"]) == 1 and "reached_eps2" in s["rows"]["uniform"]
    assert main(argv) == 0
    assert "radius rule inverse-inclusion (lr/pi_i)" in capsys.readouterr().out
