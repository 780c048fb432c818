"""The theorems' own quantity along training runs, and the theorems' radius rule in training:
the recorded per-layer squared dual gradient norms are the nuclear norms of the training loss's
gradient at the evaluated weights (summed over a layer's matrices, then squared) and change
nothing in training; the summary's time to ``ε²`` is computed by hand on synthetic runs; the
radius rule takes its inclusion probabilities from the schedule (each epoch's own for the
epoch-shift schedule) and is invisible under full sampling."""

import copy
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dropmuon.theory import RPT  # noqa: E402
from dropmuon.verification.forecasting.schedules import epoch_shift_schedule  # noqa: E402
from dropmuon.verification.torchside import DropMuon, make_cnn  # noqa: E402
from dropmuon.verification.torchside import experiment as ex  # noqa: E402
from dropmuon.verification.torchside import training as tr  # noqa: E402
from dropmuon.verification.torchside.training import dual_gradient_norms, target_crossing, train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

# nuclear_norm takes square roots of the float64 Gram matrix's eigenvalues: each singular value is
# exact to ~sqrt(eps64)·σ_max = 1.5e-8 σ_max, so a norm over at most 16 singular values to ~2.4e-7
NUCLEAR_RTOL = 1e-6
# the training run's gradient is float32, the reference float64: the relative error of a float32
# gradient summed over ~1400 examples in chunks is ~1e-6 (measured: ~2e-7); 1e-4 leaves room and is
# still far below the changes of the norm between evaluations (tens of percent)
FLOAT32_RTOL = 1e-4


def _nuc(G) -> float:
    return float(np.linalg.norm(np.asarray(G, dtype=np.float64), "nuc"))


class TwoMatrixLayer(torch.nn.Module):
    """Layer 1: two matrices and a bias; layer 2: a gate vector only (AdamW); layer 3: a matrix."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.A = torch.nn.Parameter(torch.randn(6, 4, generator=g, dtype=torch.float64))
        self.B = torch.nn.Parameter(torch.randn(6, 4, generator=g, dtype=torch.float64))
        self.bias = torch.nn.Parameter(torch.randn(6, generator=g, dtype=torch.float64))
        self.gate = torch.nn.Parameter(torch.rand(6, generator=g, dtype=torch.float64))
        self.C = torch.nn.Parameter(torch.randn(3, 6, generator=g, dtype=torch.float64))

    def forward(self, x):
        h = torch.tanh(x @ self.A.T + torch.sin(x) @ self.B.T + self.bias) * self.gate
        return h @ self.C.T


def test_a_layers_dual_norm_sums_its_matrices_nuclear_norms_then_squares():
    model = TwoMatrixLayer()
    opt = DropMuon(layers=[[model.A, model.B, model.bias], [model.gate], [model.C]])
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(10, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (10,), generator=g)
    loss = torch.nn.functional.cross_entropy
    # chunks of 3: 3 + 3 + 3 + 1 examples, weighted by size into the mean over all 10
    got = dual_gradient_norms(model, opt, x, y, loss, chunk=3)
    gA, gB, gC = torch.autograd.grad(loss(model(x), y), [model.A, model.B, model.C])
    assert got[1] is None  # a layer with no Muon matrix has no dual norm here
    assert got[0] == pytest.approx((_nuc(gA) + _nuc(gB)) ** 2, rel=NUCLEAR_RTOL)
    assert got[2] == pytest.approx(_nuc(gC) ** 2, rel=NUCLEAR_RTOL)
    # not the sum of squares, nor the nuclear norm of the stacked matrices: the convention matters
    assert abs(got[0] - (_nuc(gA) ** 2 + _nuc(gB) ** 2)) > 0.1 * got[0]
    assert all(p.grad is None for p in model.parameters()) and not opt.state  # nothing written
    assert tr.nuclear_norm(torch.tensor([[3.0, 0.0], [0.0, -4.0]])) == pytest.approx(7.0, rel=NUCLEAR_RTOL)


def _cnn(seed=0):
    m = make_cnn(1, 10, seed=seed, width=0.125)
    return m, DropMuon(layers=m.layer_parameters(), lr=0.1, ns_dtype=torch.float32)


def _reference(model, x, y):
    """Per layer ‖∇_i f‖_nuc² at the model's weights, f the mean cross-entropy over all of (x, y):
    a float64 copy, the whole set in one pass, numpy's SVD."""
    m64 = copy.deepcopy(model).double().eval()
    grads = torch.autograd.grad(torch.nn.functional.cross_entropy(m64(x.double()), y),
                                [layer.weight for layer in m64.layers])
    return [_nuc(g.reshape(g.shape[0], -1)) ** 2 for g in grads]


def test_recorded_norms_are_the_training_losss_gradient_and_change_nothing(digits):
    m, opt = _cnn()
    r = train(m, opt, digits, RPT.uniform(4), max_steps=10, batch=32, eval_every=3, seed=1, grad_norm_examples=None,
              grad_norm_every=4)
    # evaluations at 0, 3, 6, 9, 10; recordings at 0, then ≥ 4 steps later (6), and the last (10)
    assert [h["step"] for h in r.history] == [0, 3, 6, 9, 10]
    assert [h["step"] for h in r.history if "grad_dual_sq" in h] == [0, 6, 10]
    gn = r.info["grad_norms"]
    assert (gn["examples"], gn["subset"], gn["every"]) == (len(digits.x_train), False, 4)
    assert gn["seconds"] > 0 and gn["overhead"] == gn["seconds"] / gn["train_s"]
    last = r.history[-1]
    want = _reference(m, digits.x_train, digits.y_train)
    assert last["grad_dual_sq"] == pytest.approx(want, rel=FLOAT32_RTOL)
    assert last["grad_dual_sq_sum"] == pytest.approx(sum(last["grad_dual_sq"]), rel=1e-15)
    assert r.history[0]["grad_dual_sq_sum"] != pytest.approx(last["grad_dual_sq_sum"], rel=0.01)  # it moved
    # the same run without the recording: the same weights and metric, bit for bit
    m2, opt2 = _cnn()
    r2 = train(m2, opt2, digits, RPT.uniform(4), max_steps=10, batch=32, eval_every=3, seed=1, grad_norms=False)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), m2.parameters()))
    assert [h["train_acc"] for h in r.history] == [h["train_acc"] for h in r2.history]
    assert "grad_norms" not in r2.info and all("grad_dual_sq" not in h for h in r2.history)
    json.dumps(r.as_dict())  # the run's JSON record carries them


def test_the_default_subset_is_fixed_by_the_data_not_by_the_run(digits):
    runs = []
    for seed in (0, 3):
        m, opt = _cnn()
        runs.append((train(m, opt, digits, RPT.full(4), max_steps=1, batch=16, eval_every=5, seed=seed,
                           grad_norm_examples=100), m))
    pick = torch.randperm(len(digits.x_train), generator=torch.Generator().manual_seed(tr.GRAD_NORM_SUBSET_SEED))
    pick = pick[:100].sort().values
    for r, m in runs:
        assert (r.info["grad_norms"]["examples"], r.info["grad_norms"]["subset"]) == (100, True)
        assert r.history[-1]["grad_dual_sq"] == pytest.approx(_reference(m, digits.x_train[pick], digits.y_train[pick]),
                                                              rel=FLOAT32_RTOL)
    # at step 0 both runs sit at the same initial weights: the same subset gives the same values
    assert runs[0][0].history[0]["grad_dual_sq"] == runs[1][0].history[0]["grad_dual_sq"]
    m, opt = _cnn()
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="grad_norm_examples"):
            train(m, opt, digits, RPT.full(4), max_steps=1, grad_norm_examples=bad)
    with pytest.raises(ValueError, match="grad_norm_every = 0"):
        train(m, opt, digits, RPT.full(4), max_steps=1, grad_norm_every=0)


def test_radius_rule_in_training_full_sampling_unchanged_epoch_shift_per_epoch(digits):
    # full sampling: π ≡ 1, so the rule is Muon's common lr, bit for bit through a run
    m0, o0 = _cnn()
    train(m0, o0, digits, RPT.full(4), max_steps=4, batch=32, eval_every=10, seed=2, grad_norms=False)
    m1 = make_cnn(1, 10, seed=0, width=0.125)
    o1 = DropMuon(layers=m1.layer_parameters(), lr=0.1, ns_dtype=torch.float32, radius_rule="inverse-inclusion")
    r1 = train(m1, o1, digits, RPT.full(4), max_steps=4, batch=32, eval_every=10, seed=2, grad_norms=False)
    assert all(torch.equal(a, b) for a, b in zip(m0.parameters(), m1.parameters()))
    assert r1.info["radius_rule"] == "inverse-inclusion" and r1.info["radius_inclusion"] == [[1.0] * 4]
    # epoch-shift: before each step the optimizer holds that step's epoch's inclusion probabilities
    sched = epoch_shift_schedule(4, epoch_length=2)
    m2 = make_cnn(1, 10, seed=0, width=0.125)
    o2 = DropMuon(layers=m2.layer_parameters(), lr=0.1, ns_dtype=torch.float32, radius_rule="inverse-inclusion")
    seen = []
    real_step = o2.step

    def spy(*a, **k):
        seen.append(tuple(g["inclusion"] for g in o2.param_groups))
        return real_step(*a, **k)

    o2.step = spy
    r2 = train(m2, o2, digits, sched, max_steps=6, batch=32, eval_every=10, seed=2, grad_norms=False)
    # RPT sets are never empty (π_b = 1), so each of the 6 steps calls the optimizer; epochs of 2 steps
    want = [tuple(sched.distributions[k // 2].inclusion.tolist()) for k in range(6)]
    assert seen == want and len(set(seen)) == 3  # three epochs, three different π
    assert r2.info["radius_inclusion"] == [d.inclusion.tolist() for d in sched.distributions]
    # the epoch's π, not the cycle's average: epoch 1 (c = 2) gives layer 1 π = 1/8, the average 1/4
    assert seen[2][0] == pytest.approx(0.125, rel=1e-15) and sched.inclusion[0] == pytest.approx(0.25, rel=1e-15)


def _synthetic_run(sampling, seed, G, acc, dt, target=0.9):
    history = [{"step": 10 * j, "time_s": 10 * j * dt, "train_acc": a, "train_loss": 1.0, "grad_dual_sq": [g],
                "grad_dual_sq_sum": g} for j, (g, a) in enumerate(zip(G, acc))]
    it, t = target_crossing(history, target)
    return {"sampling": sampling, "seed": seed, "history": history, "iterations_to_target_interpolated": it,
            "time_to_target_interpolated_s": t, "iterations_to_target": it, "time_to_target_s": t,
            "final_train_acc": acc[-1], "test_acc": 0.5, "seconds_per_step": dt}


def test_summary_time_to_eps2_by_hand():
    """ε² per seed = full Muon's running average at its target crossing; a schedule reaches it when
    its running average falls to it. Worked out by hand (averages over the recordings):

    seed 0: full G 8, 4, 0, 0 (averages 8, 6, 4, 3), accuracy reaches 0.9 at step 20 → ε² = 4,
            full falls to 4 at step 20; uniform G 8, 8, 4, 0, 0 (8, 8, 6.67, 5, 4) → step 40.
    seed 1: full G 2, 10, 0, 0 (2, 6, 4, 3), accuracy 0.8 → 1.0 between 10 and 20: crossing 15,
            ε² = 6 + ½(4 − 6) = 5; full's average starts below 5 (2: not counted, it has not fallen
            to it) and falls to it at 10 + 10·(6 − 5)/(6 − 4) = 15; uniform G 2, 10, 6, 0
            (2, 6, 6, 4.5) → 20 + 10·(6 − 5)/(6 − 4.5) = 26.67.
    seed 2: full never reaches the target → no ε², no pair.
    Iteration speed-ups (full's / uniform's) 20/40 and 15/26.67: geometric mean √(0.5 · 0.5625);
    seconds (full 0.1 s per step, uniform 0.05): 2/2 and 1.5/1.333: √1.125."""
    runs = [_synthetic_run("full", 0, [8, 4, 0, 0], [0.1, 0.5, 0.9, 0.95], 0.1),
            _synthetic_run("uniform", 0, [8, 8, 4, 0, 0], [0.1, 0.2, 0.3, 0.5, 0.95], 0.05),
            _synthetic_run("full", 1, [2, 10, 0, 0], [0.1, 0.8, 1.0, 1.0], 0.1),
            _synthetic_run("uniform", 1, [2, 10, 6, 0], [0.1, 0.2, 0.3, 0.95], 0.05),
            _synthetic_run("full", 2, [1, 2, 3], [0.1, 0.2, 0.3], 0.1),
            _synthetic_run("uniform", 2, [1, 2, 0], [0.1, 0.2, 0.3], 0.05)]
    cfg = ex.ExperimentConfig(seeds=(0, 1, 2), samplings=("full", "uniform"), target_acc=0.9)
    costs = {"forward_s": 1e-3, "activation_s": 1e-3, "weight_s": 1e-3, "update_s": 1e-4}
    cal = {"layers": [{"layer": j, "L": float(j), "costs": costs} for j in (1, 2, 3, 4)], "cost_model": {}}
    s = ex.summarize(cfg, cal, runs, n_train=100)
    assert s["eps2"][0] == pytest.approx(4.0, rel=1e-15) and s["eps2"][1] == pytest.approx(5.0, rel=1e-15)
    assert s["eps2"][2] is None
    full, uni = s["rows"]["full"], s["rows"]["uniform"]
    assert full["reached_eps2"] == 2 and uni["reached_eps2"] == 2
    assert full["iterations_to_eps2"]["mean"] == pytest.approx(17.5, rel=1e-12)
    assert uni["iterations_to_eps2"]["mean"] == pytest.approx((40 + 80 / 3) / 2, rel=1e-12)
    assert uni["time_to_eps2_s"]["mean"] == pytest.approx((2.0 + 4 / 3) / 2, rel=1e-12)
    si, st = uni["speedup_iterations_eps2"], uni["speedup_time_eps2"]
    assert si["n"] == 2 and si["mean"] == pytest.approx(math.sqrt(0.5 * 0.5625), rel=1e-12)
    assert st["n"] == 2 and st["mean"] == pytest.approx(math.sqrt(1.125), rel=1e-12)
    assert si["low"] < si["mean"] < si["high"]
    assert full["speedup_iterations_eps2"]["mean"] == pytest.approx(1.0, rel=1e-12)
    # the existing time-to-target fields are still there, from the same runs
    assert uni["iterations_to_target"]["n"] == 2 and "speedup_time" in uni


def test_experiment_config_radius_rule_and_recording_settings(tmp_path, monkeypatch):
    assert (ex.ExperimentConfig.grad_norm_examples, ex.ExperimentConfig.grad_norm_every) == (
        tr.GRAD_NORM_EXAMPLES, tr.GRAD_NORM_EVERY)
    base = ex.ExperimentConfig()
    assert "radius_rule" not in base.run_settings() and "grad_norm_examples" not in base.run_settings()
    rule = ex.ExperimentConfig(radius_rule="inverse-inclusion", grad_norm_examples=None)
    assert rule.run_settings()["radius_rule"] == "inverse-inclusion"
    assert rule.run_settings()["grad_norm_examples"] is None
    with pytest.raises(ValueError, match="unknown radius rule 'theory'"):
        ex.ExperimentConfig(radius_rule="theory")
    with pytest.raises(ValueError, match="grad_norm_examples = 0"):
        ex.ExperimentConfig(grad_norm_examples=0)
    with pytest.raises(ValueError, match="grad_norm_every = 0"):
        ex.ExperimentConfig(grad_norm_every=0)
    # a whole experiment under the rule, from a constants file (no calibration to measure)
    costs = {"forward_s": 1e-3, "activation_s": 1e-3, "weight_s": 1e-3, "update_s": 1e-4}
    f = tmp_path / "constants.json"
    f.write_text(json.dumps([{"layer": j, "L": float(j), "costs": costs} for j in (1, 2, 3, 4)]))
    kw = dict(seeds=(0,), samplings=("full", "uniform"), max_steps=4, target_acc=0.3, batch=16, width=0.125,
              eval_every=2, constants=str(f), flush_denormals=False, grad_norm_every=2)
    res = ex.run_experiment(ex.ExperimentConfig(radius_rule="inverse-inclusion", **kw), tmp_path / "out",
                            progress=False)
    by = {r["sampling"]: r for r in res["runs"]}
    assert by["uniform"]["radius_inclusion"] == [[0.25, 0.5, 0.75, 1.0]]
    assert by["uniform"]["settings"]["radius_rule"] == "inverse-inclusion" and by["full"]["radius_rule"] == (
        "inverse-inclusion")
    assert all(h["grad_dual_sq_sum"] > 0 for r in res["runs"] for h in r["history"])
    assert res["summary"]["config"]["radius_rule"] == "inverse-inclusion" and "eps2" in res["summary"]
    # the same folder under the common rule: the saved runs are not reused
    real = ex.run_task
    monkeypatch.setattr(ex, "run_task", lambda *a, **k: dict(real(*a, **k), rerun=True))
    again = ex.run_experiment(ex.ExperimentConfig(**kw), tmp_path / "out", progress=False)
    assert all(r.get("rerun") and r["radius_rule"] == "common" for r in again["runs"])
    # training on past the target: the same time to target, runs to max_steps, not mixed with the others
    past = ex.run_experiment(ex.ExperimentConfig(**dict(kw, target_acc=0.15), stop_at_target=False), tmp_path / "out",
                             progress=False)
    assert past["runs"][0]["settings"]["stop_at_target"] is False and all(r.get("rerun") for r in past["runs"])
    assert all(r["steps"] == 4 and r["stop_reason"] == "max_steps" for r in past["runs"])
    assert any(r["iterations_to_target"] is not None for r in past["runs"])
