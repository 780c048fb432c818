"""The paper's CNN, the offline data loaders and the cost measurement (no timing assertions:
speed lives in the benchmarks)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dropmuon.verification.torchside import (  # noqa: E402
    DropMuon,
    freeze_except,
    load_digits,
    load_npz,
    make_cnn,
    measure_costs,
)


def test_digits_and_cnn_shapes():
    d = load_digits(seed=1)
    assert d.x_train.shape[1:] == (1, 8, 8) and d.num_classes == 10
    assert len(d.x_train) == 1438 and len(d.x_test) == 359
    assert float(d.x_train.min()) >= 0 and float(d.x_train.max()) <= 1
    m = make_cnn(1, 10, seed=3)
    assert [tuple(p.shape) for ps in m.layer_parameters() for p in ps] == [
        (64, 1, 3, 3), (128, 64, 3, 3), (256, 128, 3, 3), (10, 256)]
    assert m(d.x_test[:5]).shape == (5, 10)
    m2 = make_cnn(1, 10, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), m2.parameters()))  # seeded


def test_npz_round_trip_and_bad_shapes(tmp_path):
    rng = np.random.default_rng(0)
    f = tmp_path / "mnist-like.npz"
    np.savez(f, x_train=rng.integers(0, 256, (20, 12, 12), dtype=np.uint8), y_train=rng.integers(0, 10, 20),
             x_test=rng.integers(0, 256, (6, 12, 12), dtype=np.uint8), y_test=rng.integers(0, 10, 6))
    d = load_npz(f)
    assert d.x_train.shape == (20, 1, 12, 12) and float(d.x_train.max()) <= 1.0
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((20, 12, 12)), y_train=np.zeros(19, dtype=int),
             x_test=np.zeros((6, 12, 12)), y_test=np.zeros(6, dtype=int))
    with pytest.raises(ValueError, match="y_train must be a vector of 20 labels"):
        load_npz(bad)
    np.savez(bad, x_train=np.zeros((20, 12, 12)), y_train=np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="lacks x_test, y_test"):
        load_npz(bad)
    with pytest.raises(ValueError, match="cannot read the data file"):
        load_npz(tmp_path / "missing.npz")


def test_freeze_except_computes_only_the_chosen_weight_gradients():
    m = make_cnn(1, 10, width=0.125, seed=0)
    opt = DropMuon(layers=m.layer_parameters())
    d = load_digits()
    with freeze_except(opt, {2, 4}):
        torch.nn.functional.cross_entropy(m(d.x_train[:8]), d.y_train[:8]).backward()
        got = [p.grad is not None for ps in m.layer_parameters() for p in ps]
    assert got == [False, True, False, True]
    assert all(p.requires_grad for p in m.parameters())


def test_measure_costs_restores_state_and_fits():
    m = make_cnn(1, 10, width=0.125, seed=0)
    opt = DropMuon(layers=m.layer_parameters(), lr=0.05)
    before = [p.detach().clone() for p in m.parameters()]
    d = load_digits()
    r = measure_costs(m, opt, torch.nn.functional.cross_entropy, d.x_train[:32], d.y_train[:32],
                      repeats=3, warmup=1, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(before, m.parameters()))  # nothing moved
    assert not opt.state  # momentum untouched too
    assert len(r.sets) == 16 and r.sets[0] == () and np.all(r.seconds > 0)
    assert r.forward >= 0 and np.all(r.activation >= 0) and np.all(r.weight >= 0) and np.all(r.update >= 0)
    # the per-start prediction is the fitted model's cost of {s..b}
    model = r.cost_model()
    for s in range(1, 5):
        assert model.cost(tuple(range(s, 5))) == pytest.approx(r.start_predicted[s - 1], rel=1e-9)
    with pytest.raises(ValueError, match="repeats = 1"):
        measure_costs(m, opt, torch.nn.functional.cross_entropy, d.x_train[:8], d.y_train[:8], repeats=1)


def test_activation_memory_shrinks_with_the_start_and_is_recorded_per_start():
    from dropmuon.verification.torchside.costs import activation_memory

    m = make_cnn(1, 10, width=0.125, seed=0)
    opt = DropMuon(layers=m.layer_parameters(), lr=0.05)
    d = load_digits()
    x, y = d.x_train[:16], d.y_train[:16]
    ce = torch.nn.functional.cross_entropy
    saved = [activation_memory(m, opt, ce, x, y, tuple(range(s, 5)))["saved_bytes"] for s in range(1, 5)]
    # freezing the layers below the start removes their part of the graph: strictly less is kept
    assert all(a > b > 0 for a, b in zip(saved, saved[1:])), saved
    # the head-only step still keeps at least the head's float32 input (16 rows of its fan-in)
    head = m.layer_parameters()[-1][0]
    assert saved[-1] >= 16 * head.shape[1] * 4
    assert not opt.state and all(p.grad is None for p in m.parameters())  # no update taken
    # x is a view into the whole data set: only the batch it reaches counts, as for a fresh copy
    assert activation_memory(m, opt, ce, x.clone(), y.clone(), (1, 2, 3, 4))["saved_bytes"] == saved[0]
    r = measure_costs(m, opt, ce, x, y, repeats=3, warmup=1, progress=False)
    assert [s["saved_bytes"] for s in r.start_memory] == saved  # exact: the same count on the same batch
    assert [s["saved_bytes"] for s in r.as_dict()["per_start"]] == saved
