"""Measured constants and costs in the form the solvers take (torch-free): read the per-layer
records of ``dropmuon estimate --json`` (or an experiment's calibration) into smoothness constants
``L`` and a :class:`theory.CostModel` in seconds."""

from __future__ import annotations

import math
from pathlib import Path

from dropmuon.theory import CostModel
from dropmuon.theory._io import read_json

__all__ = ["load_constants", "cost_dict"]


def load_constants(source) -> tuple[list[float], CostModel]:
    """``(L, cost model)`` from a ``dropmuon estimate --json`` file (a list of per-layer records
    with ``L`` and ``costs``) or an already loaded list of records / calibration dict."""
    recs = read_json(source, "constants file") if isinstance(source, (str, Path)) else source
    if isinstance(recs, dict):
        recs = recs.get("layers")
    name = str(source) if isinstance(source, (str, Path)) else "the constants"
    if not isinstance(recs, list) or not recs:
        raise ValueError(f"{name!r} must hold a non-empty list of per-layer records (dropmuon estimate --json)")
    try:
        recs = sorted(recs, key=lambda r: int(r["layer"]))
        L = [float(r["L"]) for r in recs]
        c = [r["costs"] for r in recs]
        model = CostModel(forward=float(c[0]["forward_s"]), activation=[float(x["activation_s"]) for x in c],
                          weight=[float(x["weight_s"]) for x in c], update=[float(x["update_s"]) for x in c])
    except (KeyError, TypeError) as e:
        raise ValueError(f"{name!r}: a per-layer record lacks {e} (expected layer, L and costs from "
                         f"dropmuon estimate --json)") from None
    if [int(r["layer"]) for r in recs] != list(range(1, len(recs) + 1)):
        raise ValueError(f"{name!r}: layers must be numbered 1..b; got {[r['layer'] for r in recs]}")
    bad = [(j + 1, v) for j, v in enumerate(L) if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"{name!r}: smoothness constants must be positive and finite; got L[{bad[0][0]}] = {bad[0][1]}")
    return L, model


def cost_dict(cm: CostModel) -> dict:
    """``{"forward", "activation", "weight", "update"}`` of a cost model, as plain floats/lists."""
    return {"forward": cm.forward, "activation": cm.activation.tolist(), "weight": cm.weight.tolist(),
            "update": cm.update.tolist()}
