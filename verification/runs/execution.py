"""One execution layer for every long run (verification suites, sweeps, the torch experiment): the
same :class:`Task` objects run in local processes through joblib (``jobs``) or on a Dask
distributed cluster (``scheduler="tcp://HOST:PORT"`` or ``DASK_SCHEDULER_ADDRESS``). Each task's
result is written atomically to a results folder as soon as it arrives, in the calling process (the
workers need no shared disk); a re-run reads finished tasks back instead of running them, so a
killed run loses at most the tasks that were in flight.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from dropmuon.theory._io import read_json, to_jsonable, write_json_atomic

from ._progress import Progress

__all__ = ["Task", "run_tasks", "scheduler_address", "InjectedFailure", "ManifestMismatch", "SchedulerLost",
           "SchedulerUnreachable", "DamagedResult", "SCHEDULER_ENV", "MANIFEST"]

#: the environment variable naming a Dask scheduler when ``--scheduler`` is not given
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
#: the file in a results folder that records which run its task files belong to
MANIFEST = "manifest.json"

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")


class InjectedFailure(RuntimeError):
    """Raised inside a task by ``run_tasks(fail_after=N)``: a deliberate failure part-way through
    a run, to test that a re-run resumes without losing or duplicating results."""


class ManifestMismatch(ValueError):
    """The results folder holds results of a run with another configuration (bad input: exit 2).
    The message lists the changed keys; ``changes`` holds ``(dotted key, old, new)`` triples.
    ``resume=False`` (``--no-resume``) discards the old results and starts afresh."""

    def __init__(self, message: str, changes: list):
        super().__init__(message)
        self.changes = changes


class SchedulerLost(RuntimeError):
    """The Dask scheduler (or the connection to it) went away during a run (an environment error:
    exit 3). Results that arrived before are saved; a re-run with the same results folder resumes."""


class SchedulerUnreachable(RuntimeError):
    """No Dask scheduler answers at the given address (an environment error: exit 3, like a
    scheduler lost during a run); nothing was run."""


class DamagedResult(UserWarning):
    """A saved task result could not be read back (truncated, empty or of the wrong structure); the
    task is run again."""


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


def _short(value, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def manifest_changes(old, new, prefix: str = "") -> list:
    """``(dotted key, old, new)`` for every leaf where two JSON values differ (``a.b[2].c``; a
    missing key is ``<absent>``, lists of another length differ as a whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            key = f"{prefix}.{k}" if prefix else str(k)
            out += manifest_changes(old.get(k, _ABSENT), new.get(k, _ABSENT), key)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += manifest_changes(a, b, f"{prefix}[{i}]")
        return out
    if old == new and type(old) is type(new):
        return []
    return [(prefix or "(manifest)", old, new)]


class _Absent:
    def __repr__(self):
        return "<absent>"


_ABSENT = _Absent()


def _mismatch_message(folder: Path, changes: list, limit: int = 3) -> str:
    shown = "; ".join(f"{k}: {_short(a)} → {_short(b)}" for k, a, b in changes[:limit])
    more = f" and {len(changes) - limit} more" if len(changes) > limit else ""
    return (f"{_short(str(folder), 60)} holds results of another run ({shown}{more}); use --no-resume "
            f"(resume=False) to discard them, or another folder")


def _check_manifest(folder: Path, manifest, on_mismatch: str, resume: bool = True) -> bool:
    """Write the manifest, or compare with the one there; returns whether saved task files may be
    reused. A different manifest is an error (``on_mismatch="error"``) unless ``resume`` is off."""
    path = folder / MANIFEST
    want = to_jsonable(manifest)
    if path.exists():
        try:
            have = read_json(path, "results manifest")
        except ValueError as e:
            warnings.warn(f"{e}; starting afresh", DamagedResult, stacklevel=3)
            have = _ABSENT
        if have == want:
            return resume
        if on_mismatch == "error" and resume and have is not _ABSENT:
            changes = manifest_changes(have, want)
            raise ManifestMismatch(_mismatch_message(folder, changes), changes)
        return False
    return False


def _read_saved(path: Path, decode):
    """A saved result decoded, or ``None`` (with a :class:`DamagedResult` warning naming the file)
    when it is empty, truncated or of the wrong structure."""
    try:
        return True, decode(read_json(path, "task result"))
    except Exception as e:  # noqa: BLE001 - any failure to read back means: run the task again
        why = " ".join(str(e).split()) or type(e).__name__
        warnings.warn(f"the saved task result {str(path)!r} is damaged ({_short(why, 120)}); running that "
                      f"task again", DamagedResult, stacklevel=3)
        return False, None


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
      (:class:`ManifestMismatch`, a ``ValueError`` listing the changed keys, with
      ``on_mismatch="error"``) or is overwritten (``"rerun"``). A saved result that cannot be read
      back (empty, truncated, wrong structure — ``decode`` raises) is run again, with a
      :class:`DamagedResult` warning naming the file.
    * ``resume=False``: start afresh — the saved results of these tasks are deleted and the
      manifest rewritten, whatever run they came from.
    * ``encode`` runs in the worker and turns a result into JSON-able data; ``decode`` turns the
      data (from the worker or from disk) back into the result.
    * ``fail_after=N``: the task submitted after the first ``N`` pending ones raises
      :class:`InjectedFailure` in its worker (a test of resumption).

    A task that raises stops the run: results that arrived before are kept on disk, tasks still in
    flight are cancelled, and the exception propagates. Losing the Dask scheduler raises
    :class:`SchedulerLost`. Local worker processes exit within a second if this process dies.
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
        reuse = _check_manifest(folder, manifest, on_mismatch, resume)
        if reuse:
            for i, t in enumerate(tasks):
                p = folder / f"{t.key}.json"
                if p.exists():
                    done[i], out[i] = _read_saved(p, decode)
        else:  # start afresh: no result of another run (or of a discarded one) may be read back later
            for t in tasks:
                try:
                    (folder / f"{t.key}.json").unlink()
                except FileNotFoundError:
                    pass
            write_json_atomic(folder / MANIFEST, to_jsonable(manifest))
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
                _run_dask(scheduler, tasks, pending, encode, fail_index, store, bar, connect_timeout, folder)
            else:
                _run_joblib(jobs, tasks, pending, encode, fail_index, store, bar)
    return out


def _exit_with_parent(parent_pid: int, interval: float = 0.2) -> None:
    """Local worker initializer: a daemon thread ends this worker (``os._exit``) as soon as the
    process that started it is gone, so a killed run leaves no workers behind (loky's own idle
    timeout would keep them for minutes, and a running task to its end)."""
    if sys.platform == "win32":  # pragma: no cover - os.kill(pid, 0) would terminate the parent there
        return
    direct = os.getppid() == parent_pid

    def gone() -> bool:
        if direct:
            return os.getppid() != parent_pid  # re-parented: the parent died
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    def watch():
        while not gone():
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="dropmuon-parent-watch", daemon=True).start()


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
    with Parallel(n_jobs=jobs, return_as="generator_unordered", initializer=_exit_with_parent,
                  initargs=(os.getpid(),)) as parallel:
        for i, value in parallel(calls):
            store(i, value)
            bar.update()


def _lost(address: str, folder, e: BaseException) -> SchedulerLost:
    saved = (f"results so far are saved in {str(folder)!r} and a re-run resumes" if folder is not None
             else "no results folder was given, so a re-run starts again")
    return SchedulerLost(f"lost the Dask scheduler at {address} ({type(e).__name__}); {saved}")


def _probe(address: str, timeout: float) -> None:
    """Fail at once when nothing listens at a ``tcp://HOST:PORT`` address: Dask's client retries a
    refused connection until its timeout (about 30 s), a plain socket is refused immediately."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    if parts.scheme != "tcp" or parts.port is None:
        return  # other protocols (tls, inproc, ucx) are left to Dask
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=timeout).close()
    except OSError as e:
        raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {address!r}: "
                                   f"{e.strerror or type(e).__name__}") from None


def _run_dask(address, tasks, pending, encode, fail_index, store, bar, connect_timeout, folder=None):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ValueError("a Dask scheduler was given but dask.distributed is not installed: "
                         "pip install 'dropmuon[dask]'") from None
    _probe(address, connect_timeout)
    try:
        client = Client(address, timeout=f"{float(connect_timeout)}s", set_as_default=False)
    except OSError as e:
        raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {address!r}: {e}") from None
    try:
        futures = [client.submit(_execute, i, tasks[i], encode, i == fail_index, pure=False,
                                 priority=tasks[i].priority) for i in pending]
        try:
            for fut in as_completed(futures, loop=client.loop):
                try:
                    i, value = fut.result()
                except BaseException as e:
                    if _connection_lost(client, e):
                        raise _lost(address, folder, e) from None
                    raise
                store(i, value)
                bar.update()
        except SchedulerLost:
            raise
        except BaseException:  # a task failed or the run was interrupted: stop the rest
            with contextlib.suppress(Exception):  # the connection may be gone too
                client.cancel(futures)
            raise
    finally:
        with contextlib.suppress(Exception):  # closing a client whose scheduler is gone can fail
            client.close(timeout=5)


def _connection_lost(client, e: BaseException) -> bool:
    """Whether a future's failure is the scheduler (or the connection to it) going away rather than
    the task raising."""
    name = type(e).__name__
    if name in ("CommClosedError", "StreamClosedError"):
        return True
    if name in ("FutureCancelledError", "CancelledError"):
        reason = str(getattr(e, "reason", "") or e)
        return "scheduler" in reason or "lost" in reason or client.status not in ("running", "connecting")
    return False
