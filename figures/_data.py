"""Small helpers the plot modules share for reading toolkit data (JSON-loaded or in memory)."""

from __future__ import annotations

import math

__all__ = ["number", "json_number", "check_record"]


def number(v) -> float:
    """A JSON number (``None`` stands for a non-finite value) as a float; NaN when missing.

    >>> number(None), number("inf"), number(2)
    (nan, inf, 2.0)
    """
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def json_number(x: float):
    """``x`` for JSON: ``None`` when not finite."""
    return float(x) if math.isfinite(x) else None


def check_record(r, j: int, what: str, keys, hint: str = "") -> dict:
    """``r`` (the ``j``-th of ``what``) as a dict with every key of ``keys``; a ``ValueError``
    naming the item otherwise."""
    if not isinstance(r, dict):
        raise ValueError(f"{what}[{j}] must be a dict{hint}; got {type(r).__name__}")
    missing = [k for k in keys if k not in r]
    if missing:
        label = f" ({r['name']!r})" if "name" in r else ""
        raise ValueError(f"{what}[{j}]{label} lacks the key {missing[0]!r}")
    return r
