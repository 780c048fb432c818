"""Data-parallel Drop-Muon on two CPU processes (gloo, 127.0.0.1): training equals single-process
training on the same global batches and layer sets, frozen layers are neither updated nor
all-reduced, mismatched layer sets fail loudly on every rank, and the launcher reports a failing
worker by rank and stops a hanging one at its timeout."""

import copy
import multiprocessing
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.distributed as dist  # noqa: E402

from dropmuon.theory import RPT  # noqa: E402
from dropmuon.verification.torchside import DropMuon, load_digits, make_cnn  # noqa: E402
from dropmuon.verification.torchside.distributed import (  # noqa: E402
    LaunchError, broadcast_parameters, distributed_layers_step, draw_global_batches, draw_layer_sets,
    launch_local, shard, train_distributed)
from dropmuon.verification.torchside.optimizer import freeze_except, layers_step  # noqa: E402
from dropmuon.verification.torchside.training import train  # noqa: E402

WORLD = 2
GLOBAL_BATCH = 32  # 16 examples per rank
STEPS = 6
SEED = 3
LR = 0.05
TINY = dict(width=0.125)
UNIFORM = RPT.uniform(4)
TOP_TWO = RPT([0.0, 0.0, 0.5, 0.5])  # layers 1 and 2 are never sampled

# Two processes against one on the same global batch differ only in float32 summation order: per
# rank a sum over 16 examples, then the all-reduce's sum of the two means, against one sum over 32.
# A weight-gradient entry sums n = batch × spatial positions ≤ 32·64 = 2048 products; rounding
# errors of a reordered float32 sum grow like a random walk, ~sqrt(n)·eps ≈ 45·6e-8 ≈ 3e-6 of the
# sum of |terms| (n·eps ≈ 1.2e-4 is the never-reached worst case). Measured against the largest
# gradient entry: ≤ 5.3e-7; 1e-5 allows 3× over the estimate. A wrong reduction is O(1) off
# (no division by the world size: 100%; one rank's shard only: the other half of the batch).
GRAD_RTOL = 1e-5
# The weights after 6 steps. Newton–Schulz normalises its input, so the ~3e-6 relative gradient
# error enters the update relatively; its quintic p(σ) = aσ + bσ³ + cσ⁵ has |p'| ≤ a = 3.4445 on
# [0, 1], so five steps amplify a perturbation of the singular values by at most a⁵ ≈ 490 (a
# worst case, for σ near 0): ≲ 1.5e-3 relative on update entries of size ≤ 1. A step moves a
# weight by lr·sqrt(max(1, m/n))·O = 0.05·O (every layer of the tiny CNN has m ≤ n), so 6 steps
# can drift apart by ~6·0.05·1.5e-3 ≈ 4.5e-4; 1e-3 is that estimate rounded up. Measured: 6.3e-7
# (the worst-case amplification does not happen here). Mistakes in the step itself (a frozen layer
# updated, momentum touched twice, an update applied twice) move weights by O(lr) = O(0.05).
PARAM_ATOL = 1e-3
# The global mean loss at step 0 (identical weights): the mean of 32 per-example losses against
# the mean of two means of 16, in float32 — a few ulps of a number of order 2.3; 1e-5 relative
# leaves a factor of ~100 over eps = 6e-8 for the per-example forward passes run in another batch.
LOSS_RTOL = 1e-5


def _ce(out, y):
    return torch.nn.functional.cross_entropy(out, y)


def _fresh(seed=0):
    model = make_cnn(1, 10, seed=seed, **TINY)
    return model, DropMuon(layers=model.layer_parameters(), lr=LR, ns_dtype=torch.float32)


def _numpy(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


# -- workers (module level: spawned processes import them by name) ---------------------------------

def _state(layer, opt):
    """Copies of a layer's weights and momentum buffers (``None`` before its first update)."""
    return [(p.detach().clone(), opt.state[p]["momentum_buffer"].clone() if p in opt.state else None)
            for p in layer]


def _same_state(saved, layer, opt):
    """Bit for bit: the weights, and the momentum (still absent, or equal)."""
    return all(torch.equal(w, p) and (m is None and p not in opt.state
                                      or m is not None and torch.equal(m, opt.state[p]["momentum_buffer"]))
               for (w, m), p in zip(saved, layer))


def _global_batch_gradient(model, S, x, y):
    """The single-process gradient of the layers in ``S`` on the whole global batch."""
    ref = copy.deepcopy(model)
    opt = DropMuon(layers=ref.layer_parameters())
    with freeze_except(opt, S):
        _ce(ref(x), y).backward()
    return [p.grad for j in sorted(S) for p in ref.layer_parameters()[j - 1]]


def _train_worker(rank, world, x, y):
    """The uniform-RPT run through train_distributed; then a top-two run step by step, comparing
    every step's all-reduced gradient with the global-batch gradient and checking that the frozen
    layers' weights and momentum did not change by a single bit."""
    batches = draw_global_batches(len(x), GLOBAL_BATCH, STEPS, seed=SEED)
    model, opt = _fresh()
    run = train_distributed(model, opt, x, y, batches, UNIFORM, seed=SEED)
    out = {"run": run, "params": _numpy(model)}

    model, opt = _fresh(seed=1)
    layers = model.layer_parameters()
    initial = [_state(layer, opt) for layer in layers]
    steps = []
    for idx, S in zip(batches, draw_layer_sets(TOP_TWO, STEPS, seed=SEED)):
        saved = [_state(layer, opt) for layer in layers]
        ref = _global_batch_gradient(model, S, x[idx], y[idx])
        stats = distributed_layers_step(model, opt, _ce, *shard(x[idx], y[idx], rank, world), S)
        mine = [p.grad for j in sorted(S) for p in layers[j - 1]]  # the all-reduced mean gradient
        steps.append({
            "S": S,
            "allreduced": stats.allreduced_elements,
            "expected": sum(p.numel() for j in S for p in layers[j - 1]),
            "grad_rel_err": max(float((g - r).abs().max() / r.abs().max()) for g, r in zip(mine, ref)),
            "frozen_bitwise": all(_same_state(saved[j - 1], layers[j - 1], opt) for j in range(1, 5) if j not in S),
            "sampled_moved": not any(_same_state(saved[j - 1], layers[j - 1], opt) for j in S),
        })
    out["top_two"] = steps
    out["never_sampled_unchanged"] = [_same_state(initial[j], layers[j], opt) for j in (0, 1)]
    return out


def _edge_worker(rank, world):
    """An empty set, mismatched sets, an unknown layer on one rank, a matching step after the
    errors, and the initial broadcast."""
    model, opt = _fresh()
    g = torch.Generator().manual_seed(rank)
    x, y = torch.rand(4, 1, 8, 8, generator=g), torch.randint(0, 10, (4,), generator=g)
    before = _numpy(model)
    out = {}
    empty = distributed_layers_step(model, opt, _ce, x, y, ())
    out["empty"] = (empty.allreduced_elements, empty.layers, float(empty.loss))
    for key, S in (("mismatch", (3, 4) if rank == 0 else (2, 3, 4)), ("unknown", (4,) if rank == 0 else (4, 5))):
        try:
            distributed_layers_step(model, opt, _ce, x, y, S)
            out[key] = None
        except ValueError as e:
            out[key] = str(e)
    out["unchanged"] = all(np.array_equal(a, b) for a, b in zip(before, _numpy(model)))
    out["after"] = distributed_layers_step(model, opt, _ce, x, y, (4,)).allreduced_elements
    other = make_cnn(1, 10, seed=10 + rank, **TINY)
    broadcast_parameters(other)
    out["broadcast"] = _numpy(other)
    return out


def _worker(rank, world, x, y):
    """Both of the above in one launch: spawning two processes that import torch costs seconds."""
    return {**_train_worker(rank, world, x, y), "edge": _edge_worker(rank, world)}


def _failing_worker(rank, world):
    if rank == 1:
        raise ValueError("deliberate failure on rank 1")
    dist.barrier()  # blocks on the failed rank: the launcher must stop it, not wait for it
    return rank


def _hanging_worker(rank, world):
    if rank == 1:
        time.sleep(600)
    return rank


# -- tests -----------------------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/torchside/conftest.py says why


@pytest.fixture(scope="module")
def digits():
    # here, not at module level: the spawned workers import this module and need no sklearn
    pytest.importorskip("sklearn")
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def launched(digits):
    """Both ranks' results of :func:`_worker`: one launch serves three tests."""
    return launch_local(_worker, WORLD, timeout_s=90, args=(digits.x_train, digits.y_train))


def test_two_processes_equal_single_process_training(digits, launched):
    x, y = digits.x_train, digits.y_train
    r0, r1 = launched
    sets = draw_layer_sets(UNIFORM, STEPS, seed=SEED)
    assert r0["run"].sets == r1["run"].sets == sets
    assert len(set(sets)) > 1  # the schedule did vary the set (else the test proves less)
    assert (r0["run"].rank, r1["run"].rank, r0["run"].world_size) == (0, 1, WORLD)

    # single process, same global batches and sets
    model, opt = _fresh()
    batches = draw_global_batches(len(x), GLOBAL_BATCH, STEPS, seed=SEED)
    losses = [float(layers_step(model, opt, _ce, x[idx], y[idx], S)) for idx, S in zip(batches, sets)]
    ref = _numpy(model)
    for r in (r0, r1):
        diff = max(float(np.abs(a - b).max()) for a, b in zip(r["params"], ref))
        assert diff <= PARAM_ATOL, f"rank {r['run'].rank}: max |Δparam| = {diff:.3e} > {PARAM_ATOL:.0e}"
    # the replicas, though, agree bit for bit: the all-reduce hands both ranks the same sum (a + b
    # = b + a exactly in floating point) and the update that follows is deterministic
    replicas = max(float(np.abs(a - b).max()) for a, b in zip(r0["params"], r1["params"]))
    assert replicas == 0.0, f"the replicas drifted apart: max |Δ| = {replicas:.3e}"
    assert r0["run"].losses == r1["run"].losses
    assert r0["run"].losses[0] == pytest.approx(losses[0], rel=LOSS_RTOL)

    # exactly the sampled layers were all-reduced
    numel = [sum(p.numel() for p in layer) for layer in model.layer_parameters()]
    assert list(r0["run"].allreduced_elements) == [sum(numel[j - 1] for j in S) for S in sets]


def test_frozen_layers_are_untouched_and_not_reduced(launched):
    r0, r1 = launched
    assert r0["top_two"] == r1["top_two"]
    for step in r0["top_two"]:
        assert min(step["S"]) >= 3
        assert step["allreduced"] == step["expected"], step
        assert step["grad_rel_err"] <= GRAD_RTOL, f"mean of the shard gradients vs the global batch: {step}"
        assert step["frozen_bitwise"] and step["sampled_moved"], step
    assert r0["never_sampled_unchanged"] == r1["never_sampled_unchanged"] == [True, True]


def test_mismatched_sets_raise_on_every_rank_and_edge_cases(launched):
    r0, r1 = (r["edge"] for r in launched)
    for r in (r0, r1):
        assert r["empty"][:2] == (0, ())
        assert "ranks passed different layer sets" in r["mismatch"]
        assert "rank 0: S = (3, 4)" in r["mismatch"] and "rank 1: S = (2, 3, 4)" in r["mismatch"]
        assert "outside the optimizer's layers [1, 2, 3, 4]" in r["unknown"] and "rank 1: S = (4, 5)" in r["unknown"]
        assert r["unchanged"]  # the check runs before any forward or update
        assert r["after"] == make_cnn(1, 10, **TINY).head.weight.numel()  # layer 4 alone
    assert r0["empty"][2] == r1["empty"][2]  # the global mean loss, the same on both ranks
    seed0 = _numpy(make_cnn(1, 10, seed=10, **TINY))
    assert all(np.array_equal(a, b) for a, b in zip(r1["broadcast"], seed0))


def _children_left(before) -> list:
    """Child processes alive now that were not before (other tests leave joblib's pool alive)."""
    return [p for p in multiprocessing.active_children() if p.pid not in before]


def test_failing_worker_is_reported_with_its_rank_quickly():
    before = {p.pid for p in multiprocessing.active_children()}
    t0 = time.monotonic()
    with pytest.raises(LaunchError) as info:
        launch_local(_failing_worker, WORLD, timeout_s=40)
    elapsed = time.monotonic() - t0
    assert info.value.rank == 1
    assert info.value.failures[1] == "ValueError: deliberate failure on rank 1"
    assert str(info.value).startswith("rank 1 failed: ValueError: deliberate failure on rank 1")
    assert elapsed < 20, f"the launcher waited {elapsed:.1f} s for a failed run"
    assert not _children_left(before)  # the blocked rank 0 was killed


def test_hanging_worker_times_out():
    before = {p.pid for p in multiprocessing.active_children()}
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=r"rank\(s\) \[(0, )?1\] had not finished"):
        launch_local(_hanging_worker, WORLD, timeout_s=4)
    assert time.monotonic() - t0 < 4 + 10  # the deadline plus terminate/kill
    assert not _children_left(before)


def test_helpers_reproduce_train(digits):
    """draw_global_batches and draw_layer_sets repeat train()'s draws: the same steps bit for bit."""
    a, opt_a = _fresh()
    train(a, opt_a, digits, UNIFORM, max_steps=4, batch=16, seed=SEED, eval_every=100)
    b, opt_b = _fresh()
    batches = draw_global_batches(len(digits.x_train), 16, 4, seed=SEED)
    for idx, S in zip(batches, draw_layer_sets(UNIFORM, 4, seed=SEED)):
        layers_step(b, opt_b, _ce, digits.x_train[idx], digits.y_train[idx], S)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_shard_and_input_errors():
    x, y = torch.arange(12.0), torch.arange(12)
    parts = [shard(x, y, r, 3) for r in range(3)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x) and all(len(p[1]) == 4 for p in parts)
    with pytest.raises(ValueError, match=r"10 examples does not split evenly over 4 ranks"):
        shard(x[:10], y[:10], 0, 4)
    with pytest.raises(ValueError, match=r"rank must be in 0\.\.1; got rank = 2"):
        shard(x, y, 2, 2)
    with pytest.raises(ValueError, match="world_size must be a positive integer"):
        launch_local(_hanging_worker, 0)
    model, opt = _fresh()
    with pytest.raises(RuntimeError, match="torch.distributed is not initialised"):
        distributed_layers_step(model, opt, _ce, x, y, (4,))
