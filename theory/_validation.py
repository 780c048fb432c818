"""Input validation shared by every public function: clear ``ValueError`` messages naming the
bad value, never an ``assert`` and never a NaN that travels on into a wrong number.

Layers are numbered from 1 in every message, as in docs/theory.md (``L_3`` is the third layer)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = [
    "DOMAINS",
    "check_layer_array",
    "check_scalar",
    "check_same_length",
    "check_positive_int",
]

# name of a domain -> (predicate on a finite float, words for the message)
DOMAINS: Mapping[str, tuple] = {
    "positive": (lambda v: v > 0, "positive and finite"),
    "nonnegative": (lambda v: v >= 0, "non-negative and finite"),
    "probability": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "unit_open": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "unit_closed": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "real": (lambda v: True, "finite"),
}

# the same predicates on the smallest and the largest entry of an array (must agree with DOMAINS):
# every domain is an interval, so two reductions decide it, and NaN (which min and max propagate)
# fails every comparison
_RANGE_PREDICATES: Mapping[str, object] = {
    "positive": lambda lo, hi: lo > 0 and hi < math.inf,
    "nonnegative": lambda lo, hi: lo >= 0 and hi < math.inf,
    "probability": lambda lo, hi: lo > 0 and hi <= 1,
    "unit_open": lambda lo, hi: lo >= 0 and hi < 1,
    "unit_closed": lambda lo, hi: lo >= 0 and hi <= 1,
    "real": lambda lo, hi: -math.inf < lo and hi < math.inf,
}

# what each constant is, for the messages
DESCRIPTIONS: Mapping[str, str] = {
    "L": "smoothness constants",
    "L0": "(L0,L1)-smoothness constants",
    "L1": "(L0,L1)-smoothness constants",
    "pi": "inclusion probabilities",
    "sigma": "gradient noise levels",
    "rho": "norm-equivalence constants",
    "delta": "LMO inexactness levels",
    "Delta0": "the initial gap",
    "epsilon": "the target accuracy",
    "eta": "the radius scale",
    "beta": "the momentum weight on the new gradient",
    "costs": "per-layer",
    "start_probs": "start-index probabilities",
}


def _describe(name: str) -> str:
    return DESCRIPTIONS.get(name, name)


def _to_float(name: str, value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        try:
            if isinstance(value, (str, bytes)) or value is None:
                raise TypeError
            value = float(value)  # numpy scalars, 0-d arrays
        except (TypeError, ValueError):
            raise ValueError(f"{_describe(name)} must be numbers; got {where} = {value!r}") from None
    return float(value)


def check_scalar(name: str, value, domain: str = "positive") -> float:
    """Return ``value`` as a float after checking it is finite and lies in ``domain``.

    >>> check_scalar("epsilon", 0.1)
    0.1
    >>> check_scalar("epsilon", 0)
    Traceback (most recent call last):
    ...
    ValueError: epsilon (the target accuracy) must be positive and finite; got epsilon = 0.0
    """
    pred, words = DOMAINS[domain]
    v = _to_float(name, value, name)
    if not math.isfinite(v) or not pred(v):
        what = name if _describe(name) == name else f"{name} ({_describe(name)})"
        raise ValueError(f"{what} must be {words}; got {name} = {v!r}")
    return v


def check_layer_array(name: str, values, domain: str = "positive") -> np.ndarray:
    """Return ``values`` as a 1-D float array, one entry per layer, each in ``domain``.

    The message names the first bad entry by its 1-based layer number:

    >>> check_layer_array("L", [1.0, 4.0, 2.0])
    array([1., 4., 2.])
    >>> check_layer_array("L", [1.0, -4.0])
    Traceback (most recent call last):
    ...
    ValueError: smoothness constants L must be positive and finite; got L_2 = -4.0 (layer 2)
    """
    if values is None:
        raise ValueError(f"{_describe(name)} {name} are missing; give one value per layer")
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{_describe(name)} {name} must be a sequence of numbers; got {values!r}")
    if isinstance(values, np.ndarray):
        arr_in = values
    elif isinstance(values, Iterable):
        arr_in = list(values)
    else:
        raise ValueError(f"{_describe(name)} {name} must be a sequence of numbers; got {values!r}")
    if isinstance(arr_in, np.ndarray) and arr_in.ndim != 1:
        raise ValueError(
            f"{_describe(name)} {name} must be one-dimensional (one value per layer); "
            f"got shape {arr_in.shape}"
        )
    if len(arr_in) == 0:
        raise ValueError(f"{_describe(name)} {name} is empty; give one value per layer")
    pred, words = DOMAINS[domain]
    # fast path (large b): a real numeric array, checked in one vectorised pass
    fast = None
    if isinstance(arr_in, np.ndarray) and arr_in.dtype.kind in "fiu":
        fast = arr_in.astype(float, copy=True)
    if fast is not None:
        if _RANGE_PREDICATES[domain](float(fast.min()), float(fast.max())):
            return fast
        arr_in = list(fast)  # fall through to name the first bad entry
    out = np.empty(len(arr_in), dtype=float)
    for j, v in enumerate(arr_in):
        f = _to_float(name, v, f"{name}_{j + 1}")
        if not math.isfinite(f) or not pred(f):
            raise ValueError(
                f"{_describe(name)} {name} must be {words}; got {name}_{j + 1} = {f!r} (layer {j + 1})"
            )
        out[j] = f
    return out


def check_same_length(**arrays) -> int:
    """Check that every given per-layer array has the same length and return it.

    >>> check_same_length(L=[1, 2], pi=[1, 1])
    2
    >>> check_same_length(L=[1, 2, 3], pi=[1, 1])
    Traceback (most recent call last):
    ...
    ValueError: per-layer inputs have different lengths: L has 3 entries, pi has 2 entries
    """
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n} entries" for k, n in lengths.items())
        raise ValueError(f"per-layer inputs have different lengths: {desc}")
    return next(iter(lengths.values())) if lengths else 0


def check_positive_int(name: str, value) -> int:
    """Return ``value`` as an int after checking it is a positive integer (floats like 3.0 pass).

    >>> check_positive_int("K", 3.0)
    3
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive integer; got {name} = {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive integer; got {name} = {value!r}") from None
    if not math.isfinite(f) or f < 1 or f != math.floor(f):
        raise ValueError(f"{name} must be a positive integer; got {name} = {value!r}")
    return int(f)
