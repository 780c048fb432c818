"""The speed options of the torch side: channels-last weights and a model compiled with one graph
per start index train exactly like the plain model; compiling happens before the clock. The
``eager`` backend exercises the compile path (graph capture, one graph per start, recompiles)
without a C++ compiler; whether inductor's kernels are faster is measured in
``tests/benchmarks/bench_torch_measurements.py``, not asserted here."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dropmuon.theory import RPT  # noqa: E402
from dropmuon.verification.torchside import DropMuon, make_cnn  # noqa: E402
from dropmuon.verification.torchside.build import compile_per_start, is_compiled, warm_up_starts  # noqa: E402
from dropmuon.verification.torchside.experiment import ExperimentConfig, make_setup  # noqa: E402
from dropmuon.verification.torchside.training import train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")



def _run(model, opt, data, steps=8):
    return train(model, opt, data, RPT.uniform(len(opt.layer_groups())), max_steps=steps, batch=32,
                 eval_every=4, seed=1)


def test_channels_last_changes_the_layout_not_the_training(digits):
    cfg = ExperimentConfig(seeds=(0,), data="digits", width=0.125, ns_dtype="float32", channels_last=True)
    setup = make_setup(cfg)
    m1, o1, _, _ = setup.build(cfg, 0, training=True)
    conv = next(p for p in m1.parameters() if p.ndim == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    m0, o0, _, _ = setup.build(ExperimentConfig(seeds=(0,), data="digits", width=0.125, ns_dtype="float32"), 0)
    r0, r1 = _run(m0, o0, setup.data), _run(m1, o1, setup.data)
    # the same arithmetic in another memory order: convolutions may sum in another order, so agree
    # to float32 rounding accumulated over 8 steps, not bit for bit
    for a, b in zip(m0.parameters(), m1.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert r0.history[-1]["train_acc"] == pytest.approx(r1.history[-1]["train_acc"], abs=2 / len(setup.data.x_train))


def test_compiled_model_trains_like_the_plain_one_with_a_graph_per_start(digits):
    m0 = make_cnn(1, 10, seed=0, width=0.125)
    o0 = DropMuon(layers=m0.layer_parameters(), lr=0.1, ns_dtype=torch.float32)
    _run(m0, o0, digits)
    m1 = make_cnn(1, 10, seed=0, width=0.125)
    o1 = DropMuon(layers=m1.layer_parameters(), lr=0.1, ns_dtype=torch.float32)
    compiled_with_grad = []

    def backend(gm, example_inputs):  # eager, recording each graph the compiler builds
        compiled_with_grad.append(torch.is_grad_enabled())
        return gm.forward

    torch._dynamo.reset()
    c = compile_per_start(m1, 4, backend=backend)
    assert is_compiled(c) and not is_compiled(m1)
    limit = getattr(torch._dynamo.config, "recompile_limit", getattr(torch._dynamo.config, "cache_size_limit", 0))
    assert limit >= 4 + 4
    warm_up_starts(c, o1, torch.nn.functional.cross_entropy, digits.x_train[:32], digits.y_train[:32])
    # a graph per start index and one for the empty set, all built with gradients on
    assert compiled_with_grad == [True] * 5
    r = _run(c, o1, digits)
    assert r.info["compile_s"] > 0  # train warms up too (here: nothing left to compile)
    # training steps compiled nothing more: only evaluation's graphs (gradients off, untimed) were added
    assert compiled_with_grad[:5] == [True] * 5 and not any(compiled_with_grad[5:]) and len(compiled_with_grad) > 5
    for a, b in zip(m0.parameters(), m1.parameters()):  # the eager backend runs the same kernels
        assert torch.equal(a, b)


def test_warm_up_leaves_the_model_as_it_was(digits):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10))
    opt = DropMuon(layers=[[net[0].weight, net[0].bias], [net[1].weight, net[1].bias], [net[4].weight, net[4].bias]])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = torch.get_rng_state()
    warm_up_starts(net, opt, torch.nn.functional.cross_entropy, digits.x_train[:16], digits.y_train[:16])
    # BatchNorm's running statistics moved during the passes and were put back; nothing else moved
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters()) and not opt.state
    assert torch.equal(state, torch.get_rng_state())


def test_costs_of_a_compiled_model_are_timed_on_its_compiled_steps(digits):
    from dropmuon.verification.torchside.costs import layer_sets
    from dropmuon.verification.torchside.experiment import measure_network

    m = make_cnn(1, 10, seed=0, width=0.125)
    opt = DropMuon(layers=m.layer_parameters(), lr=0.1, ns_dtype=torch.float32)
    calls = []

    def backend(gm, example_inputs):
        calls.append(1)
        return gm.forward

    torch._dynamo.reset()
    c = compile_per_start(m, len(layer_sets(4)), backend=backend)
    cal = measure_network(m, opt, digits, batch=16, steps=3, repeats=3, timing_model=c, progress=False)
    # every timed set ran through the compiler (one graph per set, and no more than the limit allows)
    assert len(layer_sets(4)) <= len(calls) <= len(layer_sets(4)) + 4
    assert len(cal["per_start"]) == 4 and all(r["L"] > 0 for r in cal["layers"])
