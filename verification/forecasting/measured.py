"""Measured constants and costs in the form the solvers take (torch-free): read the per-layer
records of ``dropmuon estimate --json`` (or an experiment's calibration) into smoothness constants
``L`` and a :class:`theory.CostModel` in seconds, and say where they came from."""

from __future__ import annotations

import math
from pathlib import Path

from dropmuon.theory import CostModel
from dropmuon.theory._io import read_json

__all__ = ["load_constants", "constants_method", "describe_constants_source", "cost_dict", "TRAJECTORY_METHOD",
           "COST_FIELDS"]

#: how ``dropmuon estimate`` obtains ``L`` (recorded as ``"method"`` in each per-layer record)
TRAJECTORY_METHOD = "trajectory estimate (largest along steps of full Muon, spectral/nuclear)"

#: the fields of a per-layer record's ``costs`` that the cost model reads (seconds)
COST_FIELDS = ("forward_s", "activation_s", "weight_s", "update_s")


def _records(source):
    """``(records, name)``: the per-layer records of a file, a calibration dict or a list."""
    recs = read_json(source, "constants file") if isinstance(source, (str, Path)) else source
    name = f"the constants file {str(source)!r}" if isinstance(source, (str, Path)) else "the constants"
    if isinstance(recs, dict):
        recs = recs.get("layers")
    if not isinstance(recs, list) or not recs:
        raise ValueError(f"{name} must hold a non-empty list of per-layer records (dropmuon estimate --json)")
    return recs, name


def _number(v, where: str) -> float:
    """A JSON number as a float; the toolkit's own encodings of non-finite values (``null`` for
    NaN, ``"inf"``/``"-inf"``: :func:`theory._io.to_jsonable`) become those values, so that the
    range checks name them. Anything else raises ``ValueError`` naming ``where``."""
    if v is None:
        return math.nan
    if v in ("inf", "-inf"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{where} must be a number; got {v!r}")
    return float(v)


def _field(record: dict, key: str, at: str):
    if key not in record:
        raise ValueError(f"{at} lacks {key!r} (expected layer, L and costs from dropmuon estimate --json)")
    return record[key]


def load_constants(source) -> tuple[list[float], CostModel]:
    """``(L, cost model)`` from a ``dropmuon estimate --json`` file (a list of per-layer records,
    each ``{"layer": j, "L": L_j, "costs": {"forward_s", "activation_s", "weight_s",
    "update_s", …}, …}``), a calibration dict (its ``"layers"``) or an already loaded list. The
    cost model is ``F`` = the first record's ``forward_s`` and per layer ``a_j, w_j, u_j``.

    A bad record raises ``ValueError`` naming the file, the record (1-based, in file order) and
    the field: a missing field, a value that is not a number, layers not numbered ``1..b``, an
    ``L`` that is not positive and finite, a cost that is negative or not finite. ``forward_s`` is
    needed in layer 1's record only.
    """
    recs, name = _records(source)
    checked = []  # (layer, L, costs, record number)
    for i, r in enumerate(recs, start=1):
        at = f"{name}: record {i}"
        if not isinstance(r, dict):
            raise ValueError(f"{at} is not a per-layer record (an object with layer, L and costs from dropmuon "
                             f"estimate --json); got a value of type {type(r).__name__}")
        layer = _field(r, "layer", at)  # the fields are checked in order: the first bad one is named
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise ValueError(f"{at}, field 'layer' must be an integer; got {layer!r}")
        L = _number(_field(r, "L", at), f"{at} (layer {layer}), field 'L'")
        if not (math.isfinite(L) and L > 0):
            raise ValueError(f"{at} (layer {layer}), field 'L': smoothness constants must be positive and finite; "
                             f"got L = {L}")
        c = _field(r, "costs", at)
        if not isinstance(c, dict):
            raise ValueError(f"{at} (layer {layer}), field 'costs' must be an object with {', '.join(COST_FIELDS)}; "
                             f"got {c!r}")
        costs = {}
        for key in COST_FIELDS:
            if key not in c:
                if key == "forward_s":
                    continue  # the forward pass is one cost of the model: layer 1's record must give it (below)
                raise ValueError(f"{at} (layer {layer}) lacks 'costs.{key}' (expected {', '.join(COST_FIELDS)})")
            v = _number(c[key], f"{at} (layer {layer}), field 'costs.{key}'")
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{at} (layer {layer}), field 'costs.{key}': a time must be finite and non-negative; "
                                 f"got {v}")
            costs[key] = v
        checked.append((layer, L, costs, i))
    checked.sort(key=lambda t: t[0])
    if [t[0] for t in checked] != list(range(1, len(checked) + 1)):
        raise ValueError(f"{name}: layers must be numbered 1..b; got {[r['layer'] for r in recs]}")
    if "forward_s" not in checked[0][2]:
        raise ValueError(f"{name}: record {checked[0][3]} (layer 1) lacks 'costs.forward_s' (the forward pass's "
                         f"time, read from layer 1's record)")
    L = [t[1] for t in checked]
    c = [t[2] for t in checked]
    model = CostModel(forward=c[0]["forward_s"], activation=[x["activation_s"] for x in c],
                      weight=[x["weight_s"] for x in c], update=[x["update_s"] for x in c])
    return L, model


def constants_method(source) -> str | None:
    """The method a constants file (or calibration) records for its ``L``: the top-level
    ``"method"`` of a calibration, else the records' ``"method"`` (``dropmuon estimate --json``
    writes :data:`TRAJECTORY_METHOD`; several different ones are joined by ``"; "``), else
    ``None`` — the file does not say how ``L`` was obtained."""
    data = read_json(source, "constants file") if isinstance(source, (str, Path)) else source
    if isinstance(data, dict) and isinstance(data.get("method"), str):
        return data["method"]
    recs = data.get("layers") if isinstance(data, dict) else data
    found = sorted({r["method"] for r in recs or [] if isinstance(r, dict) and isinstance(r.get("method"), str)})
    return "; ".join(found) if found else None


def describe_constants_source(path, method: str | None) -> str:
    """How a report names constants read from a file: the path, and the method recorded there.

    >>> describe_constants_source("c.json", None)
    "read from 'c.json' (no method recorded in it)"
    """
    how = f"method recorded there: {method}" if method else "no method recorded in it"
    return f"read from {str(path)!r} ({how})"


def cost_dict(cm: CostModel) -> dict:
    """``{"forward", "activation", "weight", "update"}`` of a cost model, as plain floats/lists."""
    return {"forward": cm.forward, "activation": cm.activation.tolist(), "weight": cm.weight.tolist(),
            "update": cm.update.tolist()}
