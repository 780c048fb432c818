"""Layer norms of THEORY.md §1 as numpy functions: the norm, its dual, the sharp operator
``M^♯ = argmax_Z {⟨M, Z⟩ − ½‖Z‖²}`` and the linear minimisation oracle
``LMO_t(M) = argmin_{‖Z‖ ≤ t} ⟨M, Z⟩ = −t M^♯ / ‖M‖_*``, plus the exact polar factor by SVD.

Arrays with more than two dimensions (conv kernels ``C_out × C_in × k × k``) are treated as the
matrix ``C_out × (C_in k k)``; one-dimensional arrays (biases) as a column ``m × 1``. Results keep
the input's shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = [
    "Norm",
    "NORMS",
    "get_norm",
    "as_matrix",
    "polar",
    "frobenius",
    "spectral",
    "scaled_spectral",
    "linf",
]

# Singular values below this fraction of the largest (times the matrix size) count as zero when the
# rank is decided; it is the rank tolerance numpy.linalg.matrix_rank uses.
RANK_RTOL_FACTOR = np.finfo(float).eps


def as_matrix(X) -> np.ndarray:
    """View ``X`` as a 2-D float matrix: vectors become columns, tensors ``m × (rest)``.

    >>> as_matrix(np.ones((4, 2, 3, 3))).shape
    (4, 18)
    >>> as_matrix(np.ones(5)).shape
    (5, 1)
    """
    A = np.asarray(X, dtype=float)
    if A.ndim == 0:
        raise ValueError(f"a layer's parameters must have at least one dimension; got a scalar {A!r}")
    if A.ndim == 1:
        return A.reshape(-1, 1)
    return A.reshape(A.shape[0], -1)


def _svd(M: np.ndarray):
    """Thin SVD keeping only the numerically non-zero singular values."""
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return U[:, :0], s[:0], Vt[:0]
    tol = s[0] * max(M.shape) * RANK_RTOL_FACTOR
    r = int(np.sum(s > tol))
    return U[:, :r], s[:r], Vt[:r]


def polar(M) -> np.ndarray:
    """Exact polar factor ``U Vᵀ`` of ``M = U Σ Vᵀ`` (thin SVD, numerically zero singular values
    dropped), the matrix Newton–Schulz approximates; zero for the zero matrix.

    For a rank-deficient ``M`` this is the minimum-Frobenius-norm element of the spectral norm's
    subdifferential at ``M``: the other maximisers of ``⟨M, Z⟩`` over the unit ball add a
    contraction on the null spaces.

    >>> Q = polar(np.array([[3.0, 0.0], [0.0, -2.0]]))
    >>> Q.tolist()
    [[1.0, 0.0], [0.0, -1.0]]
    """
    A = np.asarray(M, dtype=float)
    U, _, Vt = _svd(as_matrix(A))
    return (U @ Vt).reshape(A.shape)


@dataclass(frozen=True)
class Norm:
    """A layer norm with its dual, sharp operator and LMO (THEORY.md §1).

    ``norm``, ``dual``, ``sharp`` and ``lmo(M, t)`` take any array (see :func:`as_matrix`); the
    sharp operator satisfies ``⟨M, M^♯⟩ = ‖M^♯‖² = ‖M‖_*²`` and the LMO is
    ``LMO_t(M) = −t M^♯ / ‖M‖_*`` (zero when ``M = 0``, where every feasible point is optimal).

    >>> N = get_norm("spectral")
    >>> M = np.array([[3.0, 0.0], [0.0, 1.0]])
    >>> float(N.norm(M)), float(N.dual(M))
    (3.0, 4.0)
    >>> N.lmo(M, 0.5).tolist()
    [[-0.5, -0.0], [-0.0, -0.5]]
    """

    name: str
    latex: str
    dual_latex: str
    description: str
    _norm: Callable = field(repr=False)
    _dual: Callable = field(repr=False)
    _sharp: Callable = field(repr=False)

    def norm(self, X) -> float:
        """The norm ``‖X‖`` of a layer's parameters (or of a step)."""
        return float(self._norm(as_matrix(X)))

    def dual(self, M) -> float:
        """The dual norm ``‖M‖_* = max_{‖Z‖ ≤ 1} ⟨M, Z⟩`` of a gradient block."""
        return float(self._dual(as_matrix(M)))

    def sharp(self, M) -> np.ndarray:
        """The sharp operator ``M^♯ = argmax_Z {⟨M, Z⟩ − ½‖Z‖²}``, same shape as ``M``."""
        A = np.asarray(M, dtype=float)
        return self._sharp(as_matrix(A)).reshape(A.shape)

    def lmo(self, M, t: float = 1.0) -> np.ndarray:
        """``LMO_t(M) = argmin_{‖Z‖ ≤ t} ⟨M, Z⟩ = −t M^♯/‖M‖_*`` (zero for ``M = 0``)."""
        if not (isinstance(t, (int, float, np.floating)) and math.isfinite(t) and t >= 0):
            raise ValueError(f"the LMO radius must be non-negative and finite; got t = {t!r}")
        A = np.asarray(M, dtype=float)
        d = self.dual(A)
        if d == 0.0:
            return np.zeros_like(A)
        return (-t / d) * self.sharp(A)


def _fro(M):
    return np.linalg.norm(M)


def _op(M):
    return np.linalg.norm(M, 2) if M.size else 0.0


def _nuc(M):
    return np.linalg.norm(M, "nuc") if M.size else 0.0


def _spectral_sharp(scale: Callable[[np.ndarray], float]):
    # For the norm c‖·‖_op: dual (1/c)‖·‖_nuc and sharp (‖M‖_nuc / c²) U Vᵀ.
    def sharp(M):
        U, s, Vt = _svd(M)
        c = scale(M)
        return (s.sum() / c**2) * (U @ Vt) if s.size else np.zeros_like(M)

    return sharp


def _scale(M):
    m, n = M.shape
    return math.sqrt(n / m)


frobenius = Norm(
    name="frobenius",
    latex=r"\|X\|_F",
    dual_latex=r"\|M\|_F",
    description="Frobenius (Euclidean); sharp M^♯ = M",
    _norm=_fro,
    _dual=_fro,
    _sharp=lambda M: M.copy(),
)

spectral = Norm(
    name="spectral",
    latex=r"\|X\|_{\mathrm{op}}",
    dual_latex=r"\|M\|_{\mathrm{nuc}}",
    description="spectral (Muon); dual nuclear, sharp ‖M‖_nuc U Vᵀ",
    _norm=_op,
    _dual=_nuc,
    _sharp=_spectral_sharp(lambda M: 1.0),
)

scaled_spectral = Norm(
    name="scaled-spectral",
    latex=r"\sqrt{n/m}\,\|X\|_{\mathrm{op}}",
    dual_latex=r"\sqrt{m/n}\,\|M\|_{\mathrm{nuc}}",
    description="scaled spectral sqrt(n/m)‖·‖_op for an m×n matrix (Scion); dual sqrt(m/n)‖·‖_nuc",
    _norm=lambda M: _scale(M) * _op(M),
    _dual=lambda M: _nuc(M) / _scale(M),
    _sharp=_spectral_sharp(_scale),
)

linf = Norm(
    name="linf",
    latex=r"\|X\|_{\infty}",
    dual_latex=r"\|M\|_{1}",
    description="ℓ∞ (max entry, sign descent); dual ℓ1, sharp ‖M‖_1 sign(M)",
    _norm=lambda M: float(np.max(np.abs(M))) if M.size else 0.0,
    _dual=lambda M: float(np.sum(np.abs(M))),
    _sharp=lambda M: np.sum(np.abs(M)) * np.sign(M),
)

NORMS: dict[str, Norm] = {n.name: n for n in (frobenius, spectral, scaled_spectral, linf)}


def get_norm(name: str) -> Norm:
    """Look a norm up by name (``frobenius``, ``spectral``, ``scaled-spectral``, ``linf``).

    >>> get_norm("linf").dual(np.array([1.0, -2.0]))
    3.0
    """
    try:
        return NORMS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown norm {name!r}; known norms: {', '.join(NORMS)}") from None
