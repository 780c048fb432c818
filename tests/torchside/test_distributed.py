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
from dropmuon.verification.torchside import DropMuon, TransformerLM, load_digits, load_text, make_cnn  # noqa: E402
from dropmuon.verification.torchside.distributed import (  # noqa: E402
    LaunchError, broadcast_parameters, distributed_layers_step, draw_global_batches, draw_layer_sets,
    launch_local, shard, train_distributed)
from dropmuon.verification.torchside.optimizer import (  # noqa: E402
    ADAMW_DEFAULTS, freeze_except, layer_matrix_shape, layers_step)
from dropmuon.verification.torchside.tasks import objective_for  # noqa: E402
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
# The global mean loss at step 0 (identical weights): the mean of 32 per-example losses against
# the mean of two means of 16, in float32 — a few ulps of a number of order 2.3; 1e-5 relative
# leaves a factor of ~100 over eps = 6e-8 for the per-example forward passes run in another batch.
LOSS_RTOL = 1e-5


def _ce(out, y):
    return torch.nn.functional.cross_entropy(out, y)


# -- how far data-parallel weights may drift from single-process ones: a bound from the numerics --
#
# The runs differ only in float32 summation order, so the gradients (and the momentum, a convex
# combination of them) differ by ε_g = sqrt(n)·u32 relative (GRAD_RTOL's estimate; n = products
# summed into one weight-gradient entry over the global batch). What a step does with that:
#
# Muon weights move by lr·s·O per step, s = sqrt(max(1, m/n)), O = NS(U) the Newton–Schulz output
# in the NS dtype (unit roundoff u). The two runs' O differ by
#  (i) NS's response to its inputs' difference: the input is normalised, X = U/‖U‖_F, so ‖ΔX‖_F ≤
#      2ε_g, and to first order ‖ΔO‖_2 ≤ A·‖ΔX‖_2 with A the largest slope of T = 5 iterations of
#      the quintic p on [0, 1] — a^T = 3.4445^5 ≈ 485, at σ = 0 (_ns_numbers computes it);
#  (ii) NS's own rounding: the cast, the normalisation and three products per iteration each round
#      to the NS dtype (R = 3T + 2 roundings), and two runs rounding numbers that differ by less
#      than an ulp can land one ulp apart: ≤ R·u·max|O|, max|O| ≤ ‖O‖_2 ≤ max p^T ≈ 1.2. Counted
#      additively: first order, not a worst case — compounded by A, as in (i), it would exceed what
#      a bf16 step moves a weight (485·2⁻⁸ ≈ 1.9 > 1.2) and bound nothing.
# Over K steps: |Δw| ≤ K·lr·s_max·(2A·ε_g + R·u·max p^T). float32 NS: (i) dominates (2A·ε_g =
# 2.6e-3 for the CNN's n = 2048, 1.3e-3 for the transformer's 512; R·u·1.2 = 1.2e-6); bfloat16
# NS: (ii), R·u·1.2 = 0.080. Neither term counts the feedback of earlier differences into later
# gradients (second order in them over these few steps).
#
# AdamW-companion parameters (biases, norms, embeddings) move by lr·m̂/(√v̂ + ε), and
# |m̂_t/√v̂_t| ≤ κ_t = (1−β1)/(1−β1^t)·sqrt((1−β2^t)/(1−β2))·sqrt(Σ_{j<t} (β1²/β2)^j) (Cauchy–
# Schwarz on the two moment sums), so two runs differ by at most Σ_t 2·lr·κ_t (≈ 0.012 here): a
# worst case, and no first-order estimate applies, since a gradient that is rounding noise (the
# transformer's attention key bias: softmax ignores a constant added to every key, so its exact
# gradient is 0 and its float one ~1e-10) gets steps of up to ≈ lr whose signs the two runs'
# rounding decides.
#
# The bound still tells a mistake apart (the test checks it): one rank's shard instead of the mean
# moves the Muon weights of these 6-step runs by 0.08–0.13, against Muon bounds of 7.9e-4 (float32
# NS), 0.025 (bf16, the CNN) and 0.049 (bf16, the transformer, whose s_max = 2).
U32 = 2.0 ** -24
UNIT_ROUNDOFF = {torch.float32: U32, torch.bfloat16: 2.0 ** -8}


def _ns_numbers(steps=5):
    """``(A, largest output)``: the largest |d p^T/dσ| over σ ∈ [0, 1] for T = ``steps`` iterations
    of the Muon quintic, and the largest singular value ``max p^T`` they output (on a grid of 2e5)."""
    from dropmuon.verification.synthetic.newton_schulz import coefficients

    x = np.linspace(0.0, 1.0, 200_001)
    slope = np.ones_like(x)
    for a, b, c in coefficients("muon", steps):
        slope *= a + 3 * b * x ** 2 + 5 * c * x ** 4
        x = a * x + b * x ** 3 + c * x ** 5
    return float(np.abs(slope).max()), float(x.max())


def _muon_bound(ns_dtype, n_summed, s_max, steps, lr, ns_steps=5):
    A, o_max = _ns_numbers(ns_steps)
    rounding = 3 * ns_steps + 2
    return steps * lr * s_max * (2 * A * np.sqrt(n_summed) * U32 + rounding * UNIT_ROUNDOFF[ns_dtype] * o_max)


def _adamw_bound(steps, lr, betas):
    b1, b2 = betas
    total = 0.0
    for t in range(1, steps + 1):
        kappa = ((1 - b1) / (1 - b1 ** t) * np.sqrt((1 - b2 ** t) / (1 - b2))
                 * np.sqrt(sum((b1 ** 2 / b2) ** j for j in range(t))))
        total += 2 * lr * kappa
    return total


def _fresh(seed=0):
    model = make_cnn(1, 10, seed=seed, **TINY)
    return model, DropMuon(layers=model.layer_parameters(), lr=LR, ns_dtype=torch.float32)


LM_CONTEXT = 16  # the transformer runs on windows of 16 characters, 16 windows per rank
#: (model, Newton–Schulz dtype) of the runs compared with single-process training
DTYPE_RUNS = (("cnn", torch.float32), ("cnn", torch.bfloat16), ("lm", torch.float32), ("lm", torch.bfloat16))
#: products summed into one weight-gradient entry over the global batch: examples × positions
#: (the CNN's first convolution sees all 8 × 8 pixels; the transformer's maps every token)
N_SUMMED = {"cnn": GLOBAL_BATCH * 8 * 8, "lm": GLOBAL_BATCH * LM_CONTEXT}


def _model(kind, ns_dtype, vocab=None):
    """``(model, optimizer, loss)``: the tiny CNN, or a small transformer language model (the
    built-in ``TransformerLM``, d_model 32, two blocks, Muon on its linear maps and AdamW on its
    embeddings, norms and biases), with Newton–Schulz in ``ns_dtype``."""
    if kind == "cnn":
        model = make_cnn(1, 10, seed=0, **TINY)
        return model, DropMuon(layers=model.layer_parameters(), lr=LR, ns_dtype=ns_dtype), _ce
    torch.manual_seed(0)
    model = TransformerLM(vocab, LM_CONTEXT, d_model=32, n_layers=2, n_heads=4)
    opt = DropMuon.from_model(model, torch.zeros(2, LM_CONTEXT, dtype=torch.long), groups=model.dropmuon_layers(),
                              lr=LR, ns_dtype=ns_dtype)
    return model, opt, objective_for("language-model").loss


def _run_single(kind, ns_dtype, data, shard_only=False):
    """Single-process ``layers_step`` training on the global batches and sets of the data-parallel
    runs (``shard_only``: on rank 0's half of each batch — the mistake of skipping the all-reduce)."""
    x, y, vocab = data
    model, opt, loss = _model(kind, ns_dtype, vocab)
    batches = draw_global_batches(len(x), GLOBAL_BATCH, STEPS, seed=SEED)
    for idx, S in zip(batches, draw_layer_sets(RPT.uniform(len(opt.layer_groups())), STEPS, seed=SEED)):
        idx = idx[:GLOBAL_BATCH // WORLD] if shard_only else idx
        layers_step(model, opt, loss, x[idx], y[idx], S)
    return model, opt


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


def _dtype_worker(rank, world, data):
    """The weights after data-parallel training of each of :data:`DTYPE_RUNS`."""
    out = {}
    for kind, ns_dtype in DTYPE_RUNS:
        x, y, vocab = data[kind]
        model, opt, loss = _model(kind, ns_dtype, vocab)
        train_distributed(model, opt, x, y, draw_global_batches(len(x), GLOBAL_BATCH, STEPS, seed=SEED),
                          RPT.uniform(len(opt.layer_groups())), seed=SEED, loss_fn=loss)
        out[(kind, str(ns_dtype))] = _numpy(model)
    return out


def _worker(rank, world, x, y, lm):
    """All of the above in one launch, and :func:`_tensor_worker`'s many tensors (the first of the
    two launches of test_workers_hand_back_many_tensors_without_a_race): spawning two processes that
    import torch costs seconds."""
    return {**_train_worker(rank, world, x, y), "edge": _edge_worker(rank, world),
            "dtypes": _dtype_worker(rank, world, {"cnn": (x, y, None), "lm": lm}),
            "tensors": _tensor_worker(rank, world, N_TENSORS)}


def _failing_worker(rank, world):
    if rank == 1:
        raise ValueError("deliberate failure on rank 1")
    dist.barrier()  # blocks on the failed rank: the launcher must stop it, not wait for it
    return rank


N_TENSORS = 200  # small tensors per rank in a launch of _tensor_worker


def _tensor_worker(rank, world, n):
    """``n`` small tensors of assorted shapes, a large one (4 MiB), integers and a nested float64
    one: each a storage that torch.multiprocessing would share by a file descriptor fetched from
    this process while the parent unpickles — after this process may have exited."""
    g = torch.Generator().manual_seed(rank)
    return {"small": [torch.randn(k % 7 + 1, k % 5 + 1, generator=g) for k in range(n)],
            "large": torch.full((1 << 20,), float(rank)), "ints": torch.arange(n) * (rank + 1),
            "nested": [(rank, {"x": torch.full((2, 3), 0.5 + rank, dtype=torch.float64)})]}


def _refuse_to_load():
    raise RuntimeError("this result cannot be rebuilt here")


class _Unloadable:
    """Pickles fine in the worker; rebuilding it raises (as a class the parent cannot import would)."""

    def __reduce__(self):
        return _refuse_to_load, ()


def _unloadable_worker(rank, world):
    return _Unloadable() if rank == 1 else rank


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
def lm_data():
    """``(x, y, vocab size)``: 2048 windows of the built-in text, enough for 6 global batches."""
    d = load_text(context=LM_CONTEXT)
    return d.x_train[:2048], d.y_train[:2048], d.vocab_size


@pytest.fixture(scope="module")
def launched(digits, lm_data):
    """Both ranks' results of :func:`_worker`: one launch serves the tests below."""
    return launch_local(_worker, WORLD, timeout_s=120, args=(digits.x_train, digits.y_train, lm_data))


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
    bound = _muon_bound(torch.float32, N_SUMMED["cnn"], 1.0, STEPS, LR)  # every layer of the tiny CNN has m ≤ n
    for r in (r0, r1):
        diff = max(float(np.abs(a - b).max()) for a, b in zip(r["params"], ref))
        assert diff <= bound, f"rank {r['run'].rank}: max |Δparam| = {diff:.3e} > {bound:.2e}"
    # the replicas, though, agree bit for bit: the all-reduce hands both ranks the same sum (a + b
    # = b + a exactly in floating point) and the update that follows is deterministic
    replicas = max(float(np.abs(a - b).max()) for a, b in zip(r0["params"], r1["params"]))
    assert replicas == 0.0, f"the replicas drifted apart: max |Δ| = {replicas:.3e}"
    assert r0["run"].losses == r1["run"].losses
    assert r0["run"].losses[0] == pytest.approx(losses[0], rel=LOSS_RTOL)

    # exactly the sampled layers were all-reduced
    numel = [sum(p.numel() for p in layer) for layer in model.layer_parameters()]
    assert list(r0["run"].allreduced_elements) == [sum(numel[j - 1] for j in S) for S in sets]


@pytest.mark.parametrize("kind, ns_dtype", DTYPE_RUNS, ids=[f"{k}-{str(d)[6:]}" for k, d in DTYPE_RUNS])
def test_data_parallel_weights_stay_within_the_rounding_bound(launched, digits, lm_data, kind, ns_dtype):
    """Per model and Newton–Schulz dtype: the replicas agree bit for bit, and both stay within the
    bound of the numerics (the comment at _muon_bound) of single-process training — Muon weights
    and AdamW-companion parameters apart — while skipping the all-reduce would not."""
    data = {"cnn": (digits.x_train, digits.y_train, None), "lm": lm_data}[kind]
    model, opt = _run_single(kind, ns_dtype, data)
    r0, r1 = (r["dtypes"][(kind, str(ns_dtype))] for r in launched)
    assert all(np.array_equal(a, b) for a, b in zip(r0, r1))
    algorithm = {id(p): g["algorithm"] for g in opt.param_groups for p in g["params"]}
    s_max = max(np.sqrt(max(1.0, m / n)) for p in model.parameters() if algorithm[id(p)] == "muon"
                for m, n in [layer_matrix_shape(p.shape)])
    bound = {"muon": _muon_bound(ns_dtype, N_SUMMED[kind], s_max, STEPS, LR),
             "adamw": _adamw_bound(STEPS, ADAMW_DEFAULTS["adamw_lr"], ADAMW_DEFAULTS["adamw_betas"])}
    worst = {"muon": 0.0, "adamw": 0.0}
    for p, w in zip(model.parameters(), r0):
        worst[algorithm[id(p)]] = max(worst[algorithm[id(p)]], float(np.abs(p.detach().numpy() - w).max()))
    for alg in ("muon", "adamw"):
        assert worst[alg] <= bound[alg], f"{kind}, {ns_dtype}: {alg} max |Δw| = {worst[alg]:.3e} > {bound[alg]:.3e}"
    # the bound tells a mistake apart: rank 0's shard alone moves the Muon weights beyond it
    wrong, _ = _run_single(kind, ns_dtype, data, shard_only=True)
    miss = max(float((p - q).detach().abs().max()) for p, q in zip(wrong.parameters(), model.parameters())
               if algorithm[id(q)] == "muon")
    assert miss > bound["muon"], (miss, bound)


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


def test_workers_hand_back_many_tensors_without_a_race(launched):
    """The first version sent results as objects: every tensor went to shared memory and the
    parent fetched its file descriptor from the worker while unpickling, racing the worker's exit —
    FileNotFoundError or ConnectionResetError in 4 launches out of 4 with 200 tensors per rank.
    Results now come back as bytes: copies owned by the parent, whatever the worker does next."""
    n = N_TENSORS
    # two launches in a row, 2 × 2 × 203 tensors: the launched fixture's (its workers return
    # _tensor_worker's tensors beside their other results: one spawn fewer) and one of its own
    shared = [r["tensors"] for r in launched]
    for results in (shared, launch_local(_tensor_worker, WORLD, timeout_s=60, args=(n,))):
        for rank, r in enumerate(results):
            g = torch.Generator().manual_seed(rank)
            assert all(torch.equal(t, torch.randn(k % 7 + 1, k % 5 + 1, generator=g)) for k, t in enumerate(r["small"]))
            assert r["large"].shape == (1 << 20,) and bool((r["large"] == rank).all())
            assert torch.equal(r["ints"], torch.arange(n) * (rank + 1))
            x = r["nested"][0][1]["x"]
            assert r["nested"][0][0] == rank and x.dtype == torch.float64 and bool((x == 0.5 + rank).all())
            # by value: no tensor refers to memory shared with (and owned by) the worker
            assert not any(t.is_shared() for t in (*r["small"], r["large"], r["ints"], x))


def test_a_result_the_parent_cannot_unpickle_is_that_ranks_failure():
    with pytest.raises(LaunchError) as info:
        launch_local(_unloadable_worker, WORLD, timeout_s=40)
    assert info.value.rank == 1 and list(info.value.failures) == [1]
    assert info.value.failures[1] == ("the result of rank 1 could not be unpickled here: "
                                      "RuntimeError: this result cannot be rebuilt here")


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
