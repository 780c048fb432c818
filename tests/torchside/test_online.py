"""Online estimation of the layer-wise constants along a training run: an estimating step makes
exactly the update of a plain step, its estimates stay below the closed-form least-squares constant,
only updated layers are estimated, and the summary and overhead are reported. No timing
assertions: the overhead's size is measured in ``tests/benchmarks/bench_torch_measurements.py``."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dropmuon.theory import RPT  # noqa: E402
from dropmuon.verification.torchside import Dataset, DropMuon, make_cnn  # noqa: E402
from dropmuon.verification.torchside.constants import online_summary  # noqa: E402
from dropmuon.verification.torchside.training import train  # noqa: E402

from .test_constants_probe import FullBatch, _least_squares  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")



def _cnn(seed=0):
    m = make_cnn(1, 10, seed=seed, width=0.125)
    return m, DropMuon(layers=m.layer_parameters(), lr=0.1, ns_dtype=torch.float32)


def test_estimating_steps_make_the_same_update_bit_for_bit(digits):
    m0, o0 = _cnn()
    train(m0, o0, digits, RPT.uniform(4), max_steps=12, batch=32, eval_every=50, seed=3)
    m1, o1 = _cnn()
    r = train(m1, o1, digits, RPT.uniform(4), max_steps=12, batch=32, eval_every=50, seed=3, estimate_every=2)
    for a, b in zip(m0.state_dict().values(), m1.state_dict().values()):
        assert torch.equal(a, b)
    oc = r.info["online_constants"]
    assert oc["every"] == 2 and oc["estimate_s"] > 0 and oc["overhead"] == oc["estimate_s"] / oc["train_s"]
    assert {rec["step"] for rec in oc["records"]} <= set(range(0, 12, 2))
    # an RPT step from start s updates {s..4}: the head is in every set, so it has an estimate at
    # every estimating step; a layer is estimated exactly at the steps whose set contains it
    head = [rec["step"] for rec in oc["records"] if rec["layer"] == 4]
    assert head == list(range(0, 12, 2))
    for j in (1, 2, 3):
        steps_j = [rec["step"] for rec in oc["records"] if rec["layer"] == j]
        assert all(s in head for s in steps_j)
    assert [s["n"] for s in oc["layers"]] == [sum(rec["layer"] == j for rec in oc["records"]) for j in (1, 2, 3, 4)]


def test_only_updated_layers_are_estimated(digits):
    m, o = _cnn()
    r = train(m, o, digits, RPT([0, 0, 0, 1.0]), max_steps=6, batch=16, eval_every=50, estimate_every=1)
    oc = r.info["online_constants"]
    assert {rec["layer"] for rec in oc["records"]} == {4} and len(oc["records"]) == 6
    assert [s["n"] for s in oc["layers"]] == [0, 0, 0, 6] and oc["layers"][0]["L"] is None


def test_online_estimates_stay_below_the_least_squares_constant():
    X, Y, true = _least_squares(10, 40)
    X, Y = X.float(), Y.float()
    data = Dataset(X, Y, X[:20], Y[:20], "least-squares", task="regression")
    torch.manual_seed(0)
    model = FullBatch(X, 10)
    opt = DropMuon.from_model(model, data.x_train[:4], lr=0.01, ns_dtype=torch.float32)
    r = train(model, opt, data, RPT.full(1), max_steps=20, batch=8, eval_every=50, estimate_every=4,
              loss_fn=lambda out, _: 0.5 * ((out - Y) ** 2).sum(1).mean(),
              metric=lambda out, _: -((out - Y) ** 2).mean())
    oc = r.info["online_constants"]
    L = [rec["L_hat"] for rec in oc["records"]]
    assert [rec["step"] for rec in oc["records"]] == [0, 4, 8, 12, 16]
    # a quadratic's trajectory estimate is a ratio ‖H[Δ]‖_nuc/‖Δ‖_op: at most the constant (float32
    # gradients: ~1e-6 relative; 1e-4 leaves room) and positive
    assert all(0 < v <= true * (1 + 1e-4) for v in L), (L, true)
    s = oc["layers"][0]
    assert s["L"] == max(L) and s["n"] == 5 and s["L_median"] == float(np.median(L))
    assert s["l0l1_identified"] in (True, False) and s["L0"] is not None


def test_summary_of_records_by_hand():
    recs = [{"step": k, "layer": 1, "gnorm": g, "L_hat": v}
            for k, g, v in [(0, 1.0, 2.0), (5, 2.0, 3.0), (10, 4.0, 5.0), (15, 8.0, 9.0)]]
    (s,) = online_summary(recs, 1)
    # L̂ = 1 + g exactly: the fit recovers (L0, L1) = (1, 1); g spans 8x: identified; the largest
    # estimate came last: still growing
    assert (s["n"], s["L"], s["L_median"]) == (4, 9.0, 4.0)
    assert s["L0"] == pytest.approx(1.0, abs=1e-9) and s["L1"] == pytest.approx(1.0, abs=1e-9)
    assert s["l0l1_identified"] is True and s["trajectory_converged"] is False


def test_bad_estimate_every_is_refused(digits):
    m, o = _cnn()
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="estimate_every"):
            train(m, o, digits, RPT.full(4), max_steps=2, batch=8, estimate_every=bad)
