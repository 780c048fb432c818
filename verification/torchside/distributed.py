"""Data-parallel Drop-Muon with ``torch.distributed``: a step on this rank's shard of the global
batch that all-reduces the gradients of the sampled layers only, a K-step loop that reproduces
single-process training on the same global batches, and a bounded local launcher (gloo, 127.0.0.1).

The rule that makes it work: every rank must use the same layer set ``S`` at every step. Draw it
from a sampler seeded identically on all ranks (:func:`draw_layer_sets`); a cheap collective check
(:func:`distributed_layers_step` with ``check_same_set=True``) turns a violation into a
``ValueError`` on every rank instead of a hang or silently diverging replicas (docs/distributed.md).
"""

from __future__ import annotations

import os
import pickle
import socket
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from ..synthetic.dropmuon import as_sampler
from .optimizer import DropMuon, freeze_except

__all__ = [
    "StepStats", "DistributedRun", "LaunchError", "distributed_layers_step", "shard", "draw_layer_sets",
    "draw_global_batches", "broadcast_parameters", "train_distributed", "launch_local",
]


@dataclass(frozen=True)
class StepStats:
    """One data-parallel step: ``loss`` is the *global* mean loss (the mean of the ranks' shard
    means, all-reduced, detached; equal shards make it the mean over the global batch), identical
    on every rank; ``allreduced_elements`` counts the gradient elements this step all-reduced —
    ``Σ_{j∈S} numel(layer j)`` for parameters that got a gradient, 0 for an empty set; the loss
    scalar and the set check are not counted; ``layers`` is ``S``, sorted."""

    loss: Tensor
    allreduced_elements: int
    layers: tuple


@dataclass(frozen=True)
class DistributedRun:
    """A :func:`train_distributed` run seen from one rank: per step ``k``, the layer set
    ``sets[k]``, the global mean loss ``losses[k]`` (before the step's update) and
    ``allreduced_elements[k]``; ``rank`` and ``world_size`` of this process in the group."""

    sets: tuple
    losses: tuple
    allreduced_elements: tuple
    rank: int
    world_size: int


class LaunchError(RuntimeError):
    """A worker of :func:`launch_local` raised. ``rank`` is the rank whose exception came first
    (the likely cause: peers blocked in a collective fail after it); ``failures`` maps every rank
    that reported a failure to ``"ExceptionType: message"``; ``tracebacks`` to its traceback text."""

    def __init__(self, rank: int, failures: dict, tracebacks: dict):
        self.rank = rank
        self.failures = dict(failures)
        self.tracebacks = dict(tracebacks)
        others = "; ".join(f"rank {r}: {m}" for r, m in self.failures.items() if r != rank)
        msg = f"rank {rank} failed: {self.failures[rank]}"
        if others:
            msg += f" (then {others})"
        super().__init__(f"{msg}\n--- traceback of rank {rank} ---\n{self.tracebacks[rank]}")

    def __reduce__(self):  # the default would call __init__ with the message alone
        return type(self), (self.rank, self.failures, self.tracebacks)


# -- one step -------------------------------------------------------------------------------------

def _require_initialised():
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialised: call dist.init_process_group first "
                           "(or run the function through launch_local)")


def _check_same_set(S: frozenset, layers: Sequence[int], group, device) -> None:
    """Raise ``ValueError`` on every rank unless all ranks passed the same ``S`` of valid layers.

    The fingerprint is the indicator ``e ∈ {0,1}^{b+1}`` of ``S`` over the optimizer's layers, with
    a last slot set when ``S`` names a layer the optimizer does not have. One all-reduce with MAX
    of ``[e, −e]`` gives the elementwise max and min over ranks: the ranks agree iff they are equal
    (and the last slot is 0). Every rank sees the same result, so every rank raises — a rank that
    raised alone would leave its peers blocked in the next collective. ``device`` is the
    parameters' (NCCL reduces CUDA tensors only)."""
    index = {j: i for i, j in enumerate(layers)}
    b = len(layers)
    e = torch.zeros(b + 1, device=device)
    for j in S:
        e[index.get(j, b)] = 1.0
    code = torch.cat([e, -e])
    dist.all_reduce(code, op=dist.ReduceOp.MAX, group=group)
    hi, lo = code[:b + 1], -code[b + 1:]
    if torch.equal(hi, lo) and hi[b] == 0:
        return
    # the rare path pays one more collective to name each rank's set in the message
    sets = [None] * dist.get_world_size(group)
    dist.all_gather_object(sets, tuple(sorted(S)), group=group)
    named = ", ".join(f"rank {r}: S = {s}" for r, s in enumerate(sets))
    if hi[b] != 0:
        raise ValueError(f"a layer set names layers outside the optimizer's layers {list(layers)} ({named})")
    raise ValueError(f"ranks passed different layer sets ({named}); every rank must use the same S — draw it "
                     "from a sampler seeded identically on all ranks (draw_layer_sets)")


def _flat_buckets(tensors: Sequence[Tensor]) -> dict:
    """``{(device, dtype): [tensors]}`` in first-seen order: one flat buffer per kind, because
    ``torch.cat`` needs one dtype and device; a model with one dtype gets one bucket."""
    out: dict = {}
    for t in tensors:
        out.setdefault((t.device, t.dtype), []).append(t)
    return out


def _flatten(tensors: Sequence[Tensor]) -> Tensor:
    """One contiguous 1-D copy of ``tensors`` (``reshape`` copies only non-contiguous ones)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflatten_into(flat: Tensor, tensors: Sequence[Tensor]) -> None:
    """Copy consecutive slices of ``flat`` back into ``tensors`` (the inverse of :func:`_flatten`)."""
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset:offset + n].view(t.shape))
        offset += n


@torch.no_grad()
def _allreduce_mean(grads: Sequence[Tensor], loss: Tensor, world_size: int, group) -> tuple[Tensor, int]:
    """Replace each of ``grads`` by its mean over ranks, in place, and return ``(mean loss, number of
    gradient elements reduced)``. The loss scalar rides in the bucket of its dtype, so a
    one-dtype model pays a single all-reduce per step. gloo has no AVG: SUM, then divide."""
    loss_buf = loss.detach().reshape(1).clone()
    buckets = _flat_buckets(list(grads) + [loss_buf])
    for tensors in buckets.values():
        flat = _flatten(tensors)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        flat.div_(world_size)
        _unflatten_into(flat, tensors)
    return loss_buf[0], sum(g.numel() for g in grads)


def distributed_layers_step(model, optimizer: DropMuon, loss_fn, inputs: Tensor, targets: Tensor, S, *,
                            group=None, check_same_set: bool = True) -> StepStats:
    r"""One data-parallel Drop-Muon step updating exactly the layers in ``S`` (1-based), on this
    rank's shard ``(inputs, targets)``. Every rank must pass the same ``S`` — draw it from a
    sampler seeded identically on all ranks (:func:`draw_layer_sets`).

    With ``W`` ranks holding equal shards of ``m`` examples of a global batch of ``B = W m``, rank
    ``r`` computes ``g_r = ∇ (1/m) Σ_{i∈shard r} ℓ_i`` for the parameters of ``S`` and the step uses

        ḡ = (1/W) Σ_r g_r = ∇ (1/B) Σ_{i=1}^{B} ℓ_i,

    the gradient single-process :func:`~dropmuon.verification.torchside.optimizer.layers_step` forms on the
    global batch; the same :class:`DropMuon` update then runs on every rank, so the replicas stay
    identical (up to float rounding: the sums run in another order). Layers outside ``S`` are
    frozen (:func:`~dropmuon.verification.torchside.optimizer.freeze_except`): the backward pass stops at
    ``min S`` and their gradients are neither formed nor all-reduced — the all-reduce carries
    ``Σ_{j∈S} numel(layer j)`` elements instead of the whole model, in one flat bucket per dtype.
    After the step ``p.grad`` holds the averaged gradient for ``p`` in ``S``.

    An empty ``S`` pays the forward pass only (and the loss all-reduce). ``check_same_set=True``
    first all-reduces a ``2(b+1)``-float fingerprint of ``S`` and raises ``ValueError`` on every
    rank, naming each rank's set, if they differ or name unknown layers; turn it off only when
    ``S`` is known identical (a mismatch then corrupts the reduction or hangs). A parameter of
    ``S`` that gets no gradient must get none on every rank (no data-dependent unused parameters).

    Returns a :class:`StepStats`: the global mean loss and the count of all-reduced gradient
    elements.
    """
    _require_initialised()
    S = frozenset(S)
    groups = optimizer.layer_groups()
    if not groups:
        raise ValueError("the optimizer's param groups carry no 'layer' key; build it with layers=[...]")
    if check_same_set:
        device = next(p.device for gs in groups.values() for g in gs for p in g["params"])
        _check_same_set(S, sorted(groups), group, device)
    world = dist.get_world_size(group)
    if not S:
        with torch.no_grad():
            loss, _ = _allreduce_mean([], loss_fn(model(inputs), targets), world, group)
        return StepStats(loss, 0, ())
    with freeze_except(optimizer, S):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        # exactly the parameters of S: frozen layers have grad None and are never in the bucket
        grads = [p.grad for j in sorted(S) for g in groups[j] for p in g["params"] if p.grad is not None]
        loss, n = _allreduce_mean(grads, loss, world, group)
        optimizer.step()
    return StepStats(loss, n, tuple(sorted(S)))


# -- data, sets and a training loop -----------------------------------------------------------------

def _shard_slice(n: int, rank: int, world_size: int) -> slice:
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer; got world_size = {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in 0..{world_size - 1}; got rank = {rank!r}")
    if n % world_size:
        raise ValueError(f"a global batch of {n} examples does not split evenly over {world_size} ranks "
                         f"({n} = {n // world_size}·{world_size} + {n % world_size}); use a multiple of {world_size}")
    m = n // world_size
    return slice(rank * m, (rank + 1) * m)


def shard(batch_inputs: Tensor, batch_targets: Tensor, rank: int, world_size: int) -> tuple[Tensor, Tensor]:
    """Rank ``rank``'s contiguous share ``[rank·m, (rank+1)·m)`` of a global batch of ``B = W m``
    examples. Equal shares are what make the mean of the ranks' mean losses the global mean, so an
    uneven split is an error naming the numbers.

    >>> x, y = torch.arange(6.0), torch.arange(6)
    >>> shard(x, y, 1, 3)
    (tensor([2., 3.]), tensor([2, 3]))
    """
    if len(batch_inputs) != len(batch_targets):
        raise ValueError(f"inputs and targets differ in length: {len(batch_inputs)} and {len(batch_targets)}")
    s = _shard_slice(len(batch_inputs), rank, world_size)
    return batch_inputs[s], batch_targets[s]


def draw_layer_sets(schedule, steps: int, seed: int = 0) -> tuple:
    """The layer sets ``S_0, …, S_{steps−1}`` that :func:`~dropmuon.verification.torchside.training.train`
    draws with ``seed`` (``rng = numpy.random.default_rng([seed, 1])``, ``S_k = sampler.sample(k,
    rng)``): a function of ``(schedule, seed)`` only, so every rank computes the same sequence
    without communicating.

    >>> from dropmuon.theory import RPT
    >>> draw_layer_sets(RPT.uniform(4), 3, seed=0) == draw_layer_sets(RPT.uniform(4), 3, seed=0)
    True
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer; got steps = {steps!r}")
    sampler = as_sampler(schedule)
    rng = np.random.default_rng([int(seed), 1])
    return tuple(tuple(int(j) for j in sampler.sample(k, rng)) for k in range(int(steps)))


def draw_global_batches(n: int, batch: int, steps: int, seed: int = 0) -> tuple:
    """The global minibatch indices :func:`~dropmuon.verification.torchside.training.train` draws with
    ``seed`` (``torch.randint(0, n, (batch,))`` from a ``torch.Generator`` seeded with ``seed``),
    one int64 tensor per step."""
    for name, v in (("n", n), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {name} = {v!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer; got steps = {steps!r}")
    gen = torch.Generator().manual_seed(int(seed))
    return tuple(torch.randint(0, int(n), (int(batch),), generator=gen) for _ in range(int(steps)))


@torch.no_grad()
def broadcast_parameters(model, src: int = 0, group=None) -> None:
    """Overwrite every rank's parameters with rank ``src``'s (one broadcast per dtype bucket), as
    ``DistributedDataParallel`` does at construction: data parallelism needs identical replicas."""
    _require_initialised()
    params = [p.data for p in model.parameters()]
    for tensors in _flat_buckets(params).values():
        flat = _flatten(tensors)
        dist.broadcast(flat, src=src, group=group)
        _unflatten_into(flat, tensors)


def train_distributed(model, optimizer: DropMuon, x: Tensor, y: Tensor, batches: Sequence, schedule, *,
                      seed: int = 0, loss_fn=None, group=None, check_same_set: bool = True,
                      sync_initial: bool = True) -> DistributedRun:
    """``len(batches)`` data-parallel Drop-Muon steps on this rank. Step ``k`` takes the global batch
    ``x[batches[k]], y[batches[k]]`` (index tensors, the same on every rank, e.g. from
    :func:`draw_global_batches`), keeps this rank's :func:`shard` of it, and runs
    :func:`distributed_layers_step` with ``S_k`` from :func:`draw_layer_sets` ``(schedule, K,
    seed)`` — identical on every rank because every rank seeds the sampler alike.

    The result equals single-process ``layers_step`` training on the same global batches and sets
    up to float rounding; with ``draw_global_batches(len(x), B, K, seed)`` both repeat the steps of
    ``train(..., batch=B, max_steps=K, seed=seed)``. ``sync_initial=True`` first broadcasts rank 0's
    parameters (:func:`broadcast_parameters`); the optimizer state is not broadcast, so start from
    a fresh optimizer or from identical states.
    """
    _require_initialised()
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    loss_fn = loss_fn or torch.nn.functional.cross_entropy
    b = len(optimizer.layer_groups())
    sampler = as_sampler(schedule)
    if sampler.nlayers != b:
        raise ValueError(f"the sampling distribution has {sampler.nlayers} layers but the optimizer has {b}")
    sets = draw_layer_sets(sampler, len(batches), seed)
    if sync_initial:
        broadcast_parameters(model, src=dist.get_global_rank(group, 0) if group is not None else 0, group=group)
    losses, counts = [], []
    for idx, S in zip(batches, sets):
        mine = torch.as_tensor(idx)[_shard_slice(len(idx), rank, world)]
        stats = distributed_layers_step(model, optimizer, loss_fn, x[mine], y[mine], S, group=group,
                                        check_same_set=check_same_set)
        losses.append(float(stats.loss))
        counts.append(stats.allreduced_elements)
    return DistributedRun(sets, tuple(losses), tuple(counts), rank, world)


# -- a bounded local launcher ----------------------------------------------------------------------

def _free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it for port 0). Another process could take
    it before rank 0's store binds it; that shows up as a rank failing at start-up."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loopback_interface() -> str | None:
    """The loopback interface's name (``lo`` on Linux, ``lo0`` on macOS), for gloo's
    ``GLOO_SOCKET_IFNAME``; ``None`` if neither exists (gloo then resolves the hostname)."""
    try:
        names = {name for _, name in socket.if_nameindex()}
    except (AttributeError, OSError):
        return None
    return next((n for n in ("lo", "lo0") if n in names), None)


def _run_rank(fn, rank, world_size, port, timeout_s, args, conn, ifname):
    """Body of one worker process: init gloo on 127.0.0.1, run ``fn``, send ``(ok, payload,
    time)`` back, destroy the group. The report is sent *before* the group is destroyed, so a
    failing rank's own exception is on its way before its peers see the connection drop.

    The result travels as bytes of the standard pickle, so tensors in it are copied by value.
    Sent as objects, they would go through ``torch.multiprocessing``'s reducers: each tensor's
    storage moved to shared memory and its file descriptor fetched by the parent from this
    process while unpickling — after this process may have exited, which failed with
    ``FileNotFoundError`` or ``ConnectionResetError`` (measured: 4 launches out of 4 with 200
    tensors per rank, 2 out of 10 with three)."""
    try:
        torch.set_num_threads(1)  # W workers on a few cores: intra-op threads would oversubscribe
        if ifname:
            os.environ["GLOO_SOCKET_IFNAME"] = ifname
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world_size, timeout=timedelta(seconds=timeout_s))
        result = fn(rank, world_size, *args)
        blob = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        conn.send((True, blob, time.time()))
    except BaseException as e:  # noqa: BLE001 - everything goes back to the parent, named by rank
        try:
            conn.send((False, (f"{type(e).__name__}: {e}", traceback.format_exc()), time.time()))
        except Exception:  # noqa: BLE001 - e.g. an unpicklable result; the parent sees the exit code
            pass
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        conn.close()


def _stop(procs) -> None:
    """Terminate, then kill, every worker still running."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(2.0)
        if p.is_alive():
            p.kill()
            p.join(2.0)


def launch_local(fn: Callable, world_size: int = 2, *, timeout_s: float = 60.0, args: tuple = (),
                 grace_s: float = 0.5) -> list:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` fresh processes (spawn) joined in a
    gloo process group on 127.0.0.1, and return the ranks' return values, by rank.

    Bounded and self-stopping: ``timeout_s`` caps both gloo's collectives (``init_process_group``'s
    ``timeout``) and the whole run, start-up included; at the deadline the remaining workers are
    killed and ``TimeoutError`` names the ranks that had not finished. When a worker raises, the
    others get ``grace_s`` seconds to report, are killed, and :class:`LaunchError` names the rank
    whose exception came first, with its text and traceback. Each worker sets
    ``torch.set_num_threads(1)`` and destroys its process group at the end.

    ``fn``, ``args`` and the return values must be picklable (``fn`` defined at module level).
    The return values come back by value — pickled to bytes in the worker, unpickled here — so
    tensors in them are copies that do not depend on the worker process, which may have exited by
    then (sent as objects, torch shares them through file descriptors that vanish with the
    worker: see :func:`_run_rank`); a result the parent cannot unpickle is that rank's failure.
    Workers are daemonic, so ``fn`` cannot start processes of its own. As with any spawn start, a
    script calling this needs the ``if __name__ == "__main__":`` guard: each worker re-imports the
    main module.
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer; got world_size = {world_size!r}")
    if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
        raise ValueError(f"timeout_s must be positive; got timeout_s = {timeout_s!r}")
    ctx = mp.get_context("spawn")  # fork would copy the parent's torch threads and state
    port, ifname = _free_port(), _loopback_interface()
    deadline = time.monotonic() + timeout_s
    procs, readers = [], {}
    results, failures, tracebacks, when = {}, {}, {}, {}
    try:
        for rank in range(world_size):
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_run_rank, name=f"dropmuon-rank{rank}", daemon=True,
                            args=(fn, rank, world_size, port, float(timeout_s), tuple(args), send, ifname))
            p.start()
            send.close()  # the child holds the write end; EOF then means it exited
            procs.append(p)
            readers[recv] = rank
        first_failure_at = None
        while readers:
            now = time.monotonic()
            limit = deadline if first_failure_at is None else min(deadline, first_failure_at + grace_s)
            if now >= limit:
                break
            for conn in wait(list(readers), timeout=limit - now):
                rank = readers.pop(conn)
                try:
                    ok, payload, t = conn.recv()
                except EOFError:  # exited without reporting: crashed or killed
                    procs[rank].join(1.0)
                    ok, payload, t = False, (f"the process exited with code {procs[rank].exitcode} without reporting",
                                             "(no traceback: the process died)"), time.time()
                conn.close()
                if ok:
                    try:  # bytes of the standard pickle (_run_rank): nothing left to fetch from the worker
                        payload = pickle.loads(payload)
                    except Exception as e:  # noqa: BLE001 - e.g. a class the parent cannot import
                        why = f"the result of rank {rank} could not be unpickled here: {type(e).__name__}: {e}"
                        ok, payload, t = False, (why, traceback.format_exc()), time.time()
                if ok:
                    results[rank] = payload
                else:
                    failures[rank], tracebacks[rank] = payload
                    when[rank] = t
                    first_failure_at = first_failure_at or time.monotonic()
        if failures:
            first = min(failures, key=lambda r: when[r])
            raise LaunchError(first, {r: failures[r] for r in sorted(failures, key=when.get)}, tracebacks)
        if readers:
            pending = sorted(readers.values())
            raise TimeoutError(f"launch_local timed out after {timeout_s} s: rank(s) {pending} had not finished "
                               f"(finished: {sorted(results)}); the workers were killed")
        for p in procs:  # all reported: they are only destroying their groups
            p.join(max(1.0, deadline - time.monotonic()))
        return [results[r] for r in range(world_size)]
    finally:
        for conn in readers:
            conn.close()
        _stop(procs)
