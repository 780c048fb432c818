"""One execution layer for every long run (verification suites, sweeps, the torch experiment): the
same :class:`Task` objects run in local processes through joblib (``jobs``) or on a Dask
distributed cluster (``scheduler="tcp://HOST:PORT"`` or ``DASK_SCHEDULER_ADDRESS``). Each task's
result is written atomically to a results folder as soon as it arrives, in the calling process (the
workers need no shared disk); a re-run reads finished tasks back instead of running them, so a
killed run loses at most the tasks that were in flight.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from theory._io import read_json, to_jsonable, write_json_atomic

from ._progress import Progress

__all__ = ["Task", "run_tasks", "scheduler_address", "InjectedFailure", "SCHEDULER_ENV", "MANIFEST"]

#: the environment variable naming a Dask scheduler when ``--scheduler`` is not given
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
#: the file in a results folder that records which run its task files belong to
MANIFEST = "manifest.json"

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")


class InjectedFailure(RuntimeError):
    """Raised inside a task by ``run_tasks(fail_after=N)``: a deliberate failure part-way through
    a run, to test that a re-run resumes without losing or duplicating results."""


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(*args, **kwargs)``. ``key`` names its result file (letters, digits
    and ``._=+-``; unique within a run). ``fn`` must be picklable by cloudpickle — module
    functions, partials and closures are — since local workers and Dask workers receive it
    serialised; it should return JSON-able data (or pass ``encode=`` to :func:`run_tasks`).
    ``priority``: tasks with a higher one are submitted first (give long tasks a head start, so
    that one of them does not run alone at the end); results still come back in task order."""

    key: str
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    priority: int = 0

    def __post_init__(self):
        if not isinstance(self.key, str) or not _KEY.match(self.key):
            raise ValueError(f"a task key must be letters, digits and ._=+- (a file name); got key = {self.key!r}")

    def __call__(self):
        return self.fn(*self.args, **self.kwargs)


def scheduler_address(value: str | None = None) -> str | None:
    """``value``, else ``$DASK_SCHEDULER_ADDRESS``, else ``None`` (run locally); an address must
    look like ``tcp://HOST:PORT`` (or another Dask protocol)."""
    addr = value if value else os.environ.get(SCHEDULER_ENV) or None
    if addr is not None and not re.match(r"^[a-z0-9+]+://[^\s/]+(:\d+)?/?$", addr):
        raise ValueError(f"a Dask scheduler address looks like tcp://HOST:PORT; got {addr!r}")
    return addr


def _execute(index: int, task: Task, encode, fail: bool):
    """Runs in the worker: the task, then its encoding to plain data."""
    if fail:
        raise InjectedFailure(f"injected failure in task {task.key!r} (fail_after)")
    return index, encode(task())


def _identity(x):
    return x


def _check_manifest(folder: Path, manifest, on_mismatch: str) -> bool:
    """Write the manifest, or compare with the one there; returns whether saved task files may be
    reused."""
    path = folder / MANIFEST
    want = to_jsonable(manifest)
    if path.exists():
        have = read_json(path, "results manifest")
        if have == want:
            return True
        if on_mismatch == "error":
            raise ValueError(f"{str(folder)!r} holds results of another run ({have}, not {want}); choose another "
                             f"folder or remove it")
    write_json_atomic(path, want)
    return False


def run_tasks(tasks: Sequence[Task], *, results=None, jobs: int = 1, scheduler: str | None = None,
              encode: Callable = _identity, decode: Callable = _identity, manifest: Any = None,
              on_mismatch: str = "error", resume: bool = True, progress: bool | None = None,
              label: str = "tasks", fail_after: int | None = None, connect_timeout: float = 20.0) -> list:
    """Run ``tasks`` and return their decoded results in task order.

    * ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``): submit to that Dask scheduler
      (``distributed.Client``); otherwise ``jobs`` local processes through joblib (``jobs=1``
      runs in this process; ``-1``: one per core). ``connect_timeout``: seconds to wait for the
      scheduler.
    * ``results``: a folder; each result is written to ``results/<key>.json`` (atomically) as it
      arrives, and with ``resume`` a task whose file exists is not run again. ``manifest`` (any
      JSON-able value identifying the run: suite, seed, settings) is kept in
      ``results/manifest.json``; a folder holding another run's results is an error
      (``on_mismatch="error"``) or is overwritten task by task (``"rerun"``).
    * ``encode`` runs in the worker and turns a result into JSON-able data; ``decode`` turns the
      data (from the worker or from disk) back into the result.
    * ``fail_after=N``: the task submitted after the first ``N`` pending ones raises
      :class:`InjectedFailure` in its worker (a test of resumption).

    A task that raises stops the run: results that arrived before are kept on disk, tasks still in
    flight are cancelled, and the exception propagates.
    """
    tasks = list(tasks)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"task keys must be unique; {dup!r} appears {keys.count(dup)} times")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0 or jobs < -1:
        raise ValueError(f"jobs must be a positive integer or -1 (one per core); got jobs = {jobs!r}")
    if on_mismatch not in ("error", "rerun"):
        raise ValueError(f"on_mismatch must be 'error' or 'rerun'; got {on_mismatch!r}")
    if fail_after is not None and (isinstance(fail_after, bool) or not isinstance(fail_after, int) or fail_after < 0):
        raise ValueError(f"fail_after must be a non-negative integer; got fail_after = {fail_after!r}")
    scheduler = scheduler_address(scheduler)
    folder = Path(results) if results is not None else None
    out: list = [None] * len(tasks)
    done = [False] * len(tasks)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        reuse = _check_manifest(folder, manifest, on_mismatch) and resume
        if reuse:
            for i, t in enumerate(tasks):
                p = folder / f"{t.key}.json"
                if p.exists():
                    out[i] = decode(read_json(p, "task result"))
                    done[i] = True
    pending = sorted((i for i in range(len(tasks)) if not done[i]), key=lambda i: -tasks[i].priority)
    fail_index = pending[fail_after] if fail_after is not None and fail_after < len(pending) else None

    def store(i, value):
        if folder is not None:
            write_json_atomic(folder / f"{tasks[i].key}.json", value)
        out[i] = decode(value)

    with Progress(len(tasks), label, enabled=progress) as bar:
        bar.update(len(tasks) - len(pending))
        if pending:
            if scheduler is not None:
                _run_dask(scheduler, tasks, pending, encode, fail_index, store, bar, connect_timeout)
            else:
                _run_joblib(jobs, tasks, pending, encode, fail_index, store, bar)
    return out


def _run_joblib(jobs, tasks, pending, encode, fail_index, store, bar):
    from joblib import Parallel, delayed

    calls = (delayed(_execute)(i, tasks[i], encode, i == fail_index) for i in pending)
    if jobs == 1:  # in this process, in order: no pickling, exceptions as raised
        for call in calls:
            fn, args, kwargs = call
            i, value = fn(*args, **kwargs)
            store(i, value)
            bar.update()
        return
    with Parallel(n_jobs=jobs, return_as="generator_unordered") as parallel:
        for i, value in parallel(calls):
            store(i, value)
            bar.update()


def _run_dask(address, tasks, pending, encode, fail_index, store, bar, connect_timeout):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ValueError("a Dask scheduler was given but dask.distributed is not installed: "
                         "pip install 'dropmuon[dask]'") from None
    try:
        client = Client(address, timeout=f"{float(connect_timeout)}s", set_as_default=False)
    except OSError as e:
        raise ValueError(f"cannot reach the Dask scheduler at {address!r}: {e}") from None
    try:
        futures = [client.submit(_execute, i, tasks[i], encode, i == fail_index, pure=False,
                                 priority=tasks[i].priority) for i in pending]
        try:
            for fut in as_completed(futures, loop=client.loop):
                i, value = fut.result()
                store(i, value)
                bar.update()
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()
