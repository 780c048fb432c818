"""Newton–Schulz approximations of the polar factor ``U Vᵀ`` that Muon uses in place of the exact
spectral LMO, their coefficient presets (Muon, YouJiacheng, Polar Express), and the inexactness
``δ = ‖NS(M) − U Vᵀ‖_op`` that theorem T4 needs — per matrix and worst case over a condition number.

Every step maps ``X ← aX + (bA + cA²)X`` with ``A = XXᵀ``; on the singular values of the
normalised input ``x = σ/(f‖M‖_F)`` this is the scalar map ``x ← ax + bx³ + cx⁵`` (same ``U, V``),
so ``NS(M) = U diag(p(x)) Vᵀ`` with ``p`` the composition of the steps' quintics::

    δ(M) = max_j |p(σ_j / (f‖M‖_F)) − 1|          (σ_j the non-zero singular values)

The iteration and ``δ`` are implemented once, on stacks of matrices ``(..., m, n)``
(:func:`newton_schulz_batched`, :func:`delta_batched`, batched over the leading axes); the
per-matrix :func:`newton_schulz` and :func:`delta` call the same code with one matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from types import MappingProxyType

import numpy as np

from dropmuon.theory._validation import check_positive_int, check_scalar
from dropmuon.theory.norms import RANK_RTOL_FACTOR

__all__ = [
    "PRESETS",
    "REFERENCE_EPS",
    "coefficients",
    "normalisation",
    "newton_schulz",
    "newton_schulz_batched",
    "scalar_map",
    "delta",
    "delta_batched",
    "singular_value_interval",
    "image_interval",
    "worst_delta",
    "worst_case_x",
    "DeltaRecord",
    "delta_table",
]

_MUON = ((3.4445, -4.7750, 2.0315),)

_YOU = tuple(
    (a / 1024, b / 1024, c / 1024)
    for a, b, c in (
        (3955, -8306, 5008),
        (3735, -6681, 3463),
        (3799, -6499, 3211),
        (4019, -6385, 2906),
        (2677, -3029, 1162),
        (2172, -1833, 682),
    )
)

# Polar Express (Amsel, Persson, Musco, Gower 2025, arXiv 2505.16932), as published ...
_POLAR_EXPRESS_RAW = (
    (8.28721201814563, -23.595886519098837, 17.300387312530933),
    (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
    (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
    (3.3184196573706015, -2.488488024314874, 0.51004894012372),
    (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
    (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
    (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
    (1.875, -1.25, 0.375),
)
# ... and as the reference implementation uses them: every tuple but the last "safety-scaled"
# (a/1.01, b/1.01³, c/1.01⁵), i.e. the polynomial applied to x/1.01.
_POLAR_EXPRESS_SAFETY = 1.01
_POLAR_EXPRESS = tuple(
    (a / _POLAR_EXPRESS_SAFETY, b / _POLAR_EXPRESS_SAFETY**3, c / _POLAR_EXPRESS_SAFETY**5)
    for a, b, c in _POLAR_EXPRESS_RAW[:-1]
) + (_POLAR_EXPRESS_RAW[-1],)

_TABLES: Mapping[str, tuple] = MappingProxyType(
    {"muon": _MUON, "you": _YOU, "polar-express": _POLAR_EXPRESS}
)
_NORMALISATION: Mapping[str, float] = MappingProxyType(
    {"muon": 1.0, "you": 1.0, "polar-express": _POLAR_EXPRESS_SAFETY}
)

#: preset name -> what it is (coefficient tables beyond their length repeat the last tuple)
PRESETS: Mapping[str, str] = MappingProxyType(
    {
        "muon": "Keller Jordan's Muon quintic (a, b, c) = (3.4445, -4.7750, 2.0315) at every step "
        "(torch.optim.Muon's default ns_coefficients); input normalised by ‖M‖_F",
        "you": "YouJiacheng's six-step table (a, b, c) = (3955, -8306, 5008)/1024, ..., "
        "(2172, -1833, 682)/1024; input normalised by ‖M‖_F",
        "polar-express": "Polar Express (Amsel, Persson, Musco, Gower 2025, arXiv 2505.16932), "
        "eight tuples, all but the last safety-scaled (a/1.01, b/1.01³, c/1.01⁵); "
        "input normalised by 1.01‖M‖_F",
    }
)

#: what the reference (bfloat16, torch) implementations add to the normaliser ``f‖M‖_F`` so that
#: ``M = 0`` does not divide by zero; :func:`newton_schulz` takes it as ``eps`` (default 0)
REFERENCE_EPS = 1e-7

# the witness search of worst_case_x: grid points over the singular-value interval, and how many of
# the grid's best local maxima are refined by bounded Brent
_GRID_POINTS = 20001
_REFINE_PEAKS = 8


def _preset_name(preset) -> str:
    return preset if isinstance(preset, str) else "custom"


def _table(preset) -> np.ndarray:
    """The coefficient table of ``preset`` (a name or explicit tuples) as a ``(k, 3)`` array."""
    if isinstance(preset, str):
        if preset not in _TABLES:
            known = ", ".join(repr(k) for k in _TABLES)
            raise ValueError(
                f"unknown Newton-Schulz preset {preset!r}; choose one of {known} "
                "or give a table of (a, b, c) tuples"
            )
        return np.array(_TABLES[preset], dtype=float)
    if isinstance(preset, bytes) or not isinstance(preset, (Sequence, np.ndarray)):
        raise ValueError(
            "preset must be a preset name or a sequence of (a, b, c) tuples; "
            f"got preset = {preset!r}"
        )
    rows = list(preset)
    if not rows:
        raise ValueError("a custom coefficient table needs at least one (a, b, c) tuple; got []")
    out = np.empty((len(rows), 3))
    for j, row in enumerate(rows):
        try:
            vals = [float(v) for v in row]
        except (TypeError, ValueError):
            raise ValueError(
                f"coefficient table entry {j + 1} must be three numbers (a, b, c); got {row!r}"
            ) from None
        if len(vals) != 3:
            raise ValueError(
                f"coefficient table entry {j + 1} must be three numbers (a, b, c); got {row!r}"
            )
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(
                f"coefficient table entry {j + 1} has a non-finite coefficient; got {tuple(vals)!r}"
            )
        out[j] = vals
    return out


def coefficients(preset="muon", steps: int = 5) -> np.ndarray:
    """The per-step ``(a, b, c)`` of ``preset`` for ``steps ≥ 1`` steps, shape ``(steps, 3)``.

    ``preset`` is a name of :data:`PRESETS` or a custom table (a sequence of ``(a, b, c)``); a table
    shorter than ``steps`` repeats its last tuple. Polar Express comes safety-scaled
    (``a/1.01, b/1.01³, c/1.01⁵`` on all but its last tuple), as its reference implementation runs.

    >>> coefficients("muon", 2).tolist()
    [[3.4445, -4.775, 2.0315], [3.4445, -4.775, 2.0315]]
    >>> coefficients("you", 7)[-1] * 1024
    array([ 2172., -1833.,   682.])
    >>> coefficients("polar-express", 9)[-2:].tolist()
    [[1.875, -1.25, 0.375], [1.875, -1.25, 0.375]]
    >>> coefficients([(1.5, -0.5, 0.0)], 1).tolist()
    [[1.5, -0.5, 0.0]]
    >>> coefficients("newton", 5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown Newton-Schulz preset 'newton'; choose one of 'muon', 'you', ...
    """
    table = _table(preset)
    steps = check_positive_int("steps", steps)
    idx = np.minimum(np.arange(steps), len(table) - 1)
    return table[idx]


def normalisation(preset="muon") -> float:
    """The factor ``f`` of the first iterate ``X₀ = M / (f‖M‖_F + eps)``: 1.01 for Polar Express
    (its reference divides by ``1.01‖M‖_F + 10⁻⁷``), 1 for Muon, YouJiacheng and custom tables.

    Since ``‖M‖_op ≤ ‖M‖_F`` every singular value of ``X₀`` is at most ``1/f``. The reference
    implementations also add ``eps =`` :data:`REFERENCE_EPS` ``= 10⁻⁷``; see :func:`newton_schulz`.

    >>> normalisation("polar-express"), normalisation("muon")
    (1.01, 1.0)
    """
    if isinstance(preset, str):
        _table(preset)  # validates the name
        return _NORMALISATION[preset]
    _table(preset)
    return 1.0


def _check_eps(eps) -> float:
    return check_scalar("eps", eps, "nonnegative")


def _check_matrix(M) -> np.ndarray:
    try:
        A = np.asarray(M)
    except (TypeError, ValueError):  # ragged input
        raise ValueError(f"M must be a 2-D array of real numbers; got M = {M!r}") from None
    if A.ndim != 2:
        raise ValueError(f"M must be a 2-D array (a matrix); got an array of shape {A.shape}")
    if A.dtype.kind not in "biuf":
        raise ValueError(
            f"M must be a 2-D array of real numbers; got dtype {A.dtype} (shape {A.shape})"
        )
    A = A.astype(float)
    bad = ~np.isfinite(A)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"M must be finite; got M[{i}, {j}] = {float(A[i, j])!r} (shape {A.shape})"
        )
    return A


def _check_stack(M) -> np.ndarray:
    try:
        A = np.asarray(M)
    except (TypeError, ValueError):  # ragged input
        raise ValueError(f"M must be an array of real numbers of shape (..., m, n); got M = {M!r}") from None
    if A.ndim < 2:
        raise ValueError(f"M must be a stack of matrices (..., m, n); got an array of shape {A.shape}")
    if A.dtype.kind not in "biuf":
        raise ValueError(f"M must be real numbers; got dtype {A.dtype} (shape {A.shape})")
    A = A.astype(float)
    bad = ~np.isfinite(A)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"M must be finite; got M[{idx}] = {float(A[idx])!r} (shape {A.shape})")
    return A


def _normaliser(A: np.ndarray, preset, eps: float) -> np.ndarray:
    """``f‖M‖_F + eps`` of every matrix of a stack ``(..., m, n)``, shape ``(...)`` — the one place
    :func:`newton_schulz` and :func:`delta` (and their batched forms) compute it."""
    return normalisation(preset) * np.sqrt(np.sum(A * A, axis=(-2, -1))) + eps


def _iterate(A: np.ndarray, preset, steps: int, eps: float) -> np.ndarray:
    """The Newton–Schulz iteration on a validated stack ``(..., m, n)``: ``X₀ = M/(f‖M‖_F + eps)``
    (``0`` where that is 0, i.e. ``M = 0`` with ``eps = 0``), transposed when tall, then
    ``X ← aX + (bA + cA²)X`` with ``A = XXᵀ`` per step, transposed back."""
    table = coefficients(preset, steps)
    denom = _normaliser(A, preset, eps)[..., None, None]
    X = np.divide(A, denom, out=np.zeros_like(A), where=denom > 0)
    tall = X.shape[-2] > X.shape[-1]
    if tall:
        X = np.swapaxes(X, -1, -2)
    for a, b, c in table:
        G = X @ np.swapaxes(X, -1, -2)
        X = a * X + (b * G + c * (G @ G)) @ X
    return np.swapaxes(X, -1, -2) if tall else X


def newton_schulz(M, preset="muon", steps: int = 5, *, eps: float = 0.0) -> np.ndarray:
    """Newton–Schulz approximation of the polar factor ``U Vᵀ`` of ``M`` (float64).

    ``X₀ = M / (f‖M‖_F + eps)`` (``f`` from :func:`normalisation`), transposed when ``M`` is tall so
    that the Gram matrix ``A = XXᵀ`` is the smaller one; then, for each step's ``(a, b, c)``
    (:func:`coefficients`), ``X ← aX + (bA + cA²)X = aX + bXXᵀX + c(XXᵀ)²X``; transposed back.
    On singular values this is :func:`scalar_map`: ``NS(M) = U diag(p(σ/(f‖M‖_F + eps))) Vᵀ``.

    ``eps`` defaults to 0, unlike the reference implementations' :data:`REFERENCE_EPS` ``= 10⁻⁷``:
    they add it only so that ``M = 0`` does not divide by zero in bfloat16; here ``M = 0`` returns
    zeros explicitly, and with ``eps = 0`` the result is invariant under ``M → cM`` (``c > 0``), so
    :func:`delta` and :func:`worst_delta` depend on the singular values' ratios only. Pass
    ``eps=REFERENCE_EPS`` to reproduce the reference arithmetic (it shrinks ``x`` by the factor
    ``1/(1 + eps/(f‖M‖_F))``). A stack of matrices: :func:`newton_schulz_batched` (the same code).

    >>> M = np.array([[3.0, 0.0], [0.0, 1.0]])
    >>> Q = newton_schulz(M, "polar-express", 8)
    >>> np.round(Q, 12).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> np.round(newton_schulz(M, "muon", 5), 4).tolist()    # x = (3, 1)/√10 maps near 1, not to it
    [[0.753, 0.0], [0.0, 1.1337]]
    >>> newton_schulz(np.zeros((2, 3))).tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    A = _check_matrix(M)
    coefficients(preset, steps)  # validates preset and steps
    return np.ascontiguousarray(_iterate(A, preset, steps, _check_eps(eps)))


def newton_schulz_batched(M, preset="muon", steps: int = 5, *, eps: float = 0.0) -> np.ndarray:
    """:func:`newton_schulz` of every matrix of a stack ``M`` of shape ``(..., m, n)`` at once
    (batched matmuls over the leading axes; the same iteration, coefficients and normaliser
    ``f‖M_j‖_F + eps`` per matrix; zero for a zero matrix when ``eps = 0``).

    >>> M = np.stack([np.diag([3.0, 1.0]), np.zeros((2, 2))])
    >>> np.round(newton_schulz_batched(M, "muon", 5), 4).tolist()
    [[[0.753, 0.0], [0.0, 1.1337]], [[0.0, 0.0], [0.0, 0.0]]]
    """
    A = _check_stack(M)
    coefficients(preset, steps)
    return _iterate(A, preset, steps, _check_eps(eps))


def scalar_map(x, preset="muon", steps: int = 5) -> np.ndarray:
    """The Newton–Schulz iteration on scalars, ``x ← ax + bx³ + cx⁵`` per step, elementwise.

    Applied to the normalised singular values ``x = σ/(f‖M‖_F)`` it gives the singular values of
    :func:`newton_schulz` (signed: ``NS(M) = U diag(scalar_map(x)) Vᵀ``); the safety scaling of
    Polar Express is inside :func:`coefficients`, the factor ``f`` is not (divide ``x`` by it).

    >>> scalar_map([0.0, 1.0], "polar-express", 10).tolist()
    [0.0, 1.0]
    >>> round(float(scalar_map(1.0, "muon", 1)), 12)       # 3.4445 − 4.775 + 2.0315
    0.701
    """
    table = coefficients(preset, steps)
    try:
        y = np.array(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"x must be real numbers; got x = {x!r}") from None
    bad = ~np.isfinite(y)
    if bad.any():
        raise ValueError(f"x must be finite; got x = {float(y[bad].flat[0])!r}")
    for a, b, c in table:
        y2 = y * y
        y = y * (a + y2 * (b + c * y2))
    return y


def delta(M, preset="muon", steps: int = 5, *, eps: float = 0.0) -> float:
    """T4's inexactness of Newton–Schulz at ``M``: ``δ = ‖NS(M) − U Vᵀ‖_op``.

    Computed from the singular values alone (``compute_uv=False``)::

        δ = max_j |p(σ_j / (f‖M‖_F + eps)) − 1|,    p = scalar_map(·, preset, steps),

    over the numerically non-zero ``σ_j`` (those above ``σ_max · max(m, n) · 2⁻⁵²``, numpy's
    ``matrix_rank`` rule, as in :func:`dropmuon.theory.norms.polar`; ``U Vᵀ`` is the thin polar factor
    over them, and NS maps the null space to 0 as well). ``δ = 0`` for ``M = 0``.

    The direction ``D̃ = −t NS(M)`` then satisfies T4's ``‖D̃ − LMO_t(M)‖_op ≤ δ t`` with
    ``LMO_t(M) = −t U Vᵀ``; for a scaled spectral norm ``s‖·‖_op`` both are divided by ``s`` and the
    error is measured in ``s‖·‖_op``, so ``δ`` is the same (it is relative). T4 needs ``δ < 1``;
    the value returned may be larger (a singular value left near 0, or one overshooting to ``> 2``).
    A stack of matrices: :func:`delta_batched` (the same code).

    >>> M = np.array([[3.0, 0.0], [0.0, 1.0]])
    >>> round(delta(M, "muon", 5), 4)         # 1 − 0.753
    0.247
    >>> delta(M, "polar-express", 8) < 1e-12
    True
    """
    A = _check_matrix(M)
    coefficients(preset, steps)  # validates preset and steps before the SVD
    return float(_delta(A, preset, steps, _check_eps(eps)))


def delta_batched(M, preset="muon", steps: int = 5, *, eps: float = 0.0) -> np.ndarray:
    """:func:`delta` of every matrix of a stack ``M`` of shape ``(..., m, n)``, shape ``(...)``
    (one batched SVD; the same rank rule and normaliser per matrix).

    >>> M = np.stack([np.diag([3.0, 1.0]), np.zeros((2, 2))])
    >>> np.round(delta_batched(M, "muon", 5), 4).tolist()
    [0.247, 0.0]
    """
    A = _check_stack(M)
    coefficients(preset, steps)
    return _delta(A, preset, steps, _check_eps(eps))


def _delta(A: np.ndarray, preset, steps: int, eps: float) -> np.ndarray:
    """``max_j |p(σ_j/(f‖M‖_F + eps)) − 1|`` over the kept ``σ_j`` of every matrix of a validated
    stack (0 for a zero or empty matrix)."""
    if A.shape[-2] == 0 or A.shape[-1] == 0:
        return np.zeros(A.shape[:-2])
    denom = _normaliser(A, preset, eps)[..., None]
    s = np.linalg.svd(A, compute_uv=False)
    keep = (s > s[..., :1] * max(A.shape[-2:]) * RANK_RTOL_FACTOR) & (s[..., :1] > 0) & (denom > 0)
    x = np.divide(s, denom, out=np.zeros_like(s), where=keep)
    return np.max(np.where(keep, np.abs(scalar_map(x, preset, steps) - 1.0), 0.0), axis=-1)


def _check_kappa_n(kappa, n) -> tuple[float, int]:
    kappa = check_scalar("kappa", kappa, "positive")
    if kappa < 1:
        raise ValueError(
            f"kappa (a condition number σ_max/σ_min) must be ≥ 1; got kappa = {kappa!r}"
        )
    return kappa, check_positive_int("n", n)


def singular_value_interval(kappa: float, n: int) -> tuple[float, float]:
    """The interval ``I = [1/√(1+(n−1)κ²), 1/√(1+(n−1)/κ²)]`` of Frobenius-normalised singular
    values ``x_j = σ_j/‖σ‖₂`` of matrices with exactly ``n`` non-zero singular values and
    condition number ``σ_max/σ_min ≤ κ``.

    *Every x_j lies in I.* ``Σ_k x_k² = 1`` and ``x_min ≤ x_k ≤ κ x_min`` for every ``k``. Hence
    ``1 ≤ x_min² + (n−1)κ²x_min²``, i.e. ``x_j ≥ x_min ≥ 1/√(1+(n−1)κ²)``, and
    ``1 ≥ x_max² + (n−1)x_max²/κ²``, i.e. ``x_j ≤ x_max ≤ 1/√(1+(n−1)/κ²)``. (In particular
    ``x_min ≤ 1/√n ≤ x_max``.)

    *Every point of I is attained.* For ``x ∈ I`` take one singular value ``x`` and ``n − 1``
    equal to ``y = √((1−x²)/(n−1))``: then ``x² + (n−1)y² = 1``, and ``x/y ≤ κ ⟺
    x² ≤ 1/(1+(n−1)/κ²)`` while ``y/x ≤ κ ⟺ x² ≥ 1/(1+(n−1)κ²)``, so the condition number is
    ``≤ κ`` exactly when ``x ∈ I``. (``n = 1`` or ``κ = 1``: ``I`` is the point ``1/√n``.)

    >>> singular_value_interval(1, 4)
    (0.5, 0.5)
    >>> [round(v, 6) for v in singular_value_interval(10, 64)]
    [0.012598, 0.78326]
    """
    kappa, n = _check_kappa_n(kappa, n)
    return 1.0 / math.sqrt(1.0 + (n - 1) * kappa**2), 1.0 / math.sqrt(1.0 + (n - 1) / kappa**2)


def _image(lo: float, hi: float, a: float, b: float, c: float) -> tuple[float, float]:
    """Exact image ``p([lo, hi])`` of ``p(x) = ax + bx³ + cx⁵``: ``p`` is continuous, so the image
    is ``[min, max]`` of ``p`` over the endpoints and the critical points in between (the real roots
    of ``p′(x) = a + 3bx² + 5cx⁴``)."""
    cand = [lo, hi]
    if lo < hi:
        for r in np.roots([5.0 * c, 0.0, 3.0 * b, 0.0, a]):
            if abs(r.imag) <= 1e-12 * max(1.0, abs(r.real)) and lo < r.real < hi:
                cand.append(float(r.real))
    vals = [float(x * (a + x * x * (b + c * x * x))) for x in cand]
    return min(vals), max(vals)


def image_interval(preset="muon", steps: int = 5, *, kappa: float, n: int) -> tuple[float, float]:
    """The range ``[lo, hi]`` of the singular values of ``NS(M)`` (signed, i.e. of
    ``p(x/f)``) over all matrices with ``n`` non-zero singular values and condition number ``≤ κ``.

    By :func:`singular_value_interval` the set of attained normalised singular values is exactly
    ``I``, so the answer is the image ``p(I/f)``; it is propagated one quintic at a time, each image
    of an interval being the interval between the extreme values at its endpoints and interior
    critical points. This is exact up to rounding (the critical points, roots of a quadratic in
    ``x²``, are accurate to a few ulps, and ``p`` is flat there) — no grid.

    >>> lo, hi = image_interval("muon", 5, kappa=10, n=64)
    >>> round(lo, 4), round(hi, 4)
    (0.6818, 1.1344)
    """
    kappa, n = _check_kappa_n(kappa, n)
    table = coefficients(preset, steps)
    x_lo, x_hi = singular_value_interval(kappa, n)
    f = normalisation(preset)
    lo, hi = x_lo / f, x_hi / f
    for a, b, c in table:
        lo, hi = _image(lo, hi, a, b, c)
    return lo, hi


def worst_delta(preset="muon", steps: int = 5, *, kappa: float, n: int) -> float:
    """The worst :func:`delta` over every matrix with ``n`` non-zero singular values (its rank) and
    condition number ``σ_max/σ_min ≤ κ`` (with ``eps = 0``)::

        δ*(κ, n) = max_{x ∈ I} |p(x/f) − 1| = max(1 − lo, hi − 1),   [lo, hi] = p(I/f),

    ``I`` from :func:`singular_value_interval` (every ``x ∈ I`` is attained, so this is a maximum,
    not just a bound) and ``[lo, hi]`` from :func:`image_interval`, exact up to rounding.
    :func:`worst_case_x` finds a singular value attaining it by a grid search (a cross-check).
    ``n`` is the exact rank: ``I`` moves with ``n``, so for "rank at most n" take the max over
    ``1..n``.

    >>> round(worst_delta("muon", 5, kappa=10, n=64), 4)       # Muon's floor, 1 − 0.6818
    0.3182
    >>> round(worst_delta("muon", 5, kappa=1000, n=64), 4)     # x_min = 1.3e-4 not lifted in 5
    0.9389
    >>> worst_delta("polar-express", 10, kappa=1000, n=64) < 1e-3
    True
    """
    lo, hi = image_interval(preset, steps, kappa=kappa, n=n)
    return max(1.0 - lo, hi - 1.0)


def worst_case_x(preset="muon", steps: int = 5, *, kappa: float, n: int) -> float:
    """A normalised singular value ``x ∈ I`` (:func:`singular_value_interval`) at which
    ``|p(x/f) − 1|`` is largest: a witness for :func:`worst_delta`, by search rather than algebra.

    ``|p(x/f) − 1|`` is evaluated on 20001 points spaced geometrically over ``I`` (endpoints
    included; geometric because ``p`` varies on the scale of ``x`` near 0); the 8 largest local
    maxima of the grid are refined by bounded Brent (``scipy.optimize.minimize_scalar``) between
    their neighbours to ``x``-tolerance ``10⁻¹²x``. At a smooth interior maximum the value is then
    accurate to rounding; the search can miss a peak narrower than the grid spacing (relative
    ``κ``-dependent, about ``4·10⁻⁴`` for ``κ = 1000, n = 64``) only if it outranks all 8 refined
    ones — the tests compare it with :func:`worst_delta`, which has no such caveat.

    The matrix with singular values ``(x, y, …, y)``, ``y = √((1−x²)/(n−1))``, then has condition
    number ``≤ κ`` and ``delta = |p(x/f) − 1|``.

    >>> x = worst_case_x("muon", 5, kappa=10, n=64)
    >>> round(abs(float(scalar_map(x, "muon", 5)) - 1), 4)
    0.3182
    """
    from scipy.optimize import minimize_scalar

    kappa, n = _check_kappa_n(kappa, n)
    coefficients(preset, steps)
    x_lo, x_hi = singular_value_interval(kappa, n)
    f = normalisation(preset)
    if x_lo == x_hi:
        return x_lo

    def gap(x):
        return np.abs(scalar_map(np.asarray(x) / f, preset, steps) - 1.0)

    xs = np.geomspace(x_lo, x_hi, _GRID_POINTS)
    xs[0], xs[-1] = x_lo, x_hi
    g = gap(xs)
    left = np.concatenate(([-np.inf], g[:-1]))
    right = np.concatenate((g[1:], [-np.inf]))
    peaks = np.flatnonzero((g >= left) & (g >= right))
    peaks = peaks[np.argsort(g[peaks])[::-1][:_REFINE_PEAKS]]
    best_x, best_g = float(xs[peaks[0]]), float(g[peaks[0]])
    for i in peaks:
        if i == 0 or i == len(xs) - 1:
            continue
        res = minimize_scalar(
            lambda x: -float(gap(x)),
            bounds=(xs[i - 1], xs[i + 1]),
            method="bounded",
            options={"xatol": 1e-12 * xs[i]},
        )
        if -res.fun > best_g:
            best_x, best_g = float(res.x), float(-res.fun)
    return best_x


@dataclass(frozen=True)
class DeltaRecord:
    """One row of :func:`delta_table`: the worst ``delta`` of ``preset`` after ``steps`` steps over
    rank-``n`` matrices with condition number ``≤ kappa``, and the range ``[lo, hi]`` of the
    resulting singular values (:func:`image_interval`)."""

    preset: str
    steps: int
    kappa: float
    n: int
    delta: float
    lo: float
    hi: float

    def as_dict(self) -> dict:
        """The record as a plain ``dict`` (for JSON or a DataFrame)."""
        return asdict(self)


def delta_table(
    presets: Iterable = ("muon", "you", "polar-express"),
    steps: Iterable[int] = range(1, 11),
    kappas: Iterable[float] = (10, 100, 1000),
    n: int = 64,
) -> list[DeltaRecord]:
    """:func:`worst_delta` for every preset × steps × kappa (in that nesting order), one
    :class:`DeltaRecord` each; custom coefficient tables are recorded as ``preset="custom"``.

    >>> rows = delta_table(["muon"], [5], [10])
    >>> [(r.preset, r.steps, r.kappa, r.n, round(r.delta, 4)) for r in rows]
    [('muon', 5, 10.0, 64, 0.3182)]
    """
    presets, steps, kappas = list(presets), list(steps), list(kappas)
    out = []
    for p in presets:
        for k in steps:
            for kap in kappas:
                kap_f, n_i = _check_kappa_n(kap, n)
                k_i = check_positive_int("steps", k)
                lo, hi = image_interval(p, k_i, kappa=kap_f, n=n_i)
                out.append(
                    DeltaRecord(_preset_name(p), k_i, kap_f, n_i, max(1.0 - lo, hi - 1.0), lo, hi)
                )
    return out
