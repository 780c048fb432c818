"""Results on disk, shared by every layer (theory is the bottom one, so all may import it): strict
JSON from numpy values, written atomically (a temporary file in the same folder, then
``os.replace``), so a reader or a run killed half-way never sees a partial file."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["to_jsonable", "write_json_atomic", "write_text_atomic", "read_json"]


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


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, flushed, then
    ``os.replace``); creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
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


def write_json_atomic(path, obj) -> Path:
    """Write ``to_jsonable(obj)`` to ``path`` atomically; creates the parent folder."""
    text = json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def read_json(path, what: str = "file"):
    """Load JSON from ``path``; an unreadable or malformed file raises ``ValueError`` naming it."""
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read the {what} {str(path)!r}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"the {what} {str(path)!r} is not valid JSON: {e}") from None
