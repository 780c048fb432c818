"""Results on disk, shared by every layer (theory is the bottom one, so all may import it): strict
JSON from numpy values, written atomically (a temporary file in the same folder, then
``os.replace``), so a reader or a run killed half-way never sees a partial file."""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
import threading
from pathlib import Path

import numpy as np

__all__ = ["to_jsonable", "write_json_atomic", "write_text_atomic", "write_bytes_atomic", "read_json",
           "current_umask"]


def to_jsonable(x):
    """Convert numpy scalars/arrays (and nested containers) to plain JSON types; NaN becomes
    ``null`` and ±inf the strings ``"inf"``/``"-inf"``, so the output is strict JSON.

    >>> to_jsonable({"a": np.arange(2), "b": float("nan"), "c": np.float64(np.inf)})
    {'a': [0, 1], 'b': None, 'c': 'inf'}
    """
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [to_jsonable(v) for v in x.tolist()]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        if math.isnan(f):
            return None
        return f if math.isfinite(f) else str(f)
    return x


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux:
    ``/proc/self/status``); elsewhere set and restored at once under a lock."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        old = os.umask(0o022)
        os.umask(old)
    return old


def _final_mode(path: Path) -> int:
    """The permissions a plain ``open(path, "w")`` would leave: those of the file being replaced,
    else ``0o666`` less the umask (``mkstemp`` alone gives ``0o600``, unreadable to others)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def write_bytes_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (a temporary file in the same folder, flushed, then
    ``os.replace``); creates the parent folder. The file gets the permissions of the one it
    replaces, or for a new file ``0o666`` less the umask, as ``open`` would give it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _final_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        else:  # pragma: no cover - Windows
            os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically, UTF-8 encoded (:func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj) -> Path:
    """Write ``to_jsonable(obj)`` to ``path`` atomically; creates the parent folder."""
    text = json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False)
    return write_text_atomic(path, text + "\n")


class _NonFinite(Exception):
    pass


def _no_constant(token: str):
    # Python's json reads NaN and Infinity, which strict JSON (and every file written here) has not
    raise _NonFinite(token)


def read_json(path, what: str = "file"):
    """Load JSON from ``path``; an unreadable or malformed file (not UTF-8, not JSON, or holding
    ``NaN``/``Infinity``) raises ``ValueError`` naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f, parse_constant=_no_constant)
    except _NonFinite as e:
        raise ValueError(f"the {what} {str(path)!r} holds {e}, which is not JSON (a number without a finite "
                         "value is written null)") from None
    except OSError as e:
        raise ValueError(f"cannot read the {what} {str(path)!r}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"the {what} {str(path)!r} is not valid JSON: {e}") from None
    except UnicodeDecodeError as e:  # the decoder's own message names no file
        raise ValueError(f"the {what} {str(path)!r} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at "
                         f"offset {e.start})") from None
