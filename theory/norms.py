"""Layer norms (docs/theory.md) as numpy functions: the norm, its dual, the sharp operator
``M^♯ = argmax_Z {⟨M, Z⟩ − ½‖Z‖²}`` and the linear minimisation oracle
``LMO_t(M) = argmin_{‖Z‖ ≤ t} ⟨M, Z⟩ = −t M^♯ / ‖M‖_*``, plus the exact polar factor by SVD.

Arrays with more than two dimensions (conv kernels ``C_out × C_in × k × k``) are treated as the
matrix ``C_out × (C_in k k)``; one-dimensional arrays (biases) as a column ``m × 1``. Results keep
the input's shape.

**Batched use.** Every norm is implemented once, on *stacks* of matrices ``(..., m, n)`` (numpy
broadcasting over the leading axes; one ``np.linalg.svd`` call per stack for the spectral norms).
The per-layer methods ``norm``, ``dual``, ``sharp``, ``lmo`` and :func:`polar` call that
implementation with one matrix (no leading axes); ``norm_batched``, ``dual_batched``,
``sharp_batched``, ``lmo_batched`` and :func:`polar_batched` expose it for a stack, where each
trailing ``m × n`` block is one matrix (no :func:`as_matrix` reshaping), as the vectorised
Drop-Muon of :mod:`dropmuon.verification.synthetic.batched` needs.
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
    "polar_batched",
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


def _stack(M) -> np.ndarray:
    """``M`` as a float stack of matrices ``(..., m, n)`` (at least two dimensions)."""
    A = np.asarray(M, dtype=float)
    if A.ndim < 2:
        raise ValueError(f"a stack of matrices needs shape (..., m, n); got an array of shape {A.shape}")
    return A


def _empty(M: np.ndarray) -> bool:
    return M.shape[-2] == 0 or M.shape[-1] == 0


def _svd(M: np.ndarray):
    """Thin SVD of a stack ``M = U diag(s) Vᵀ`` (shape ``(..., m, n)``) with the numerically zero
    singular values masked out: ``(U, s, Vt, keep)``, ``keep`` true for ``σ_j > σ_max·max(m, n)·2⁻⁵²``
    (numpy's ``matrix_rank`` rule) and ``s`` zeroed where ``keep`` is false."""
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    tol = s[..., :1] * max(M.shape[-2:]) * RANK_RTOL_FACTOR
    keep = (s > tol) & (s[..., :1] > 0)
    return U, np.where(keep, s, 0.0), Vt, keep


def _polar_from_svd(U, Vt, keep) -> np.ndarray:
    """``Σ_{j kept} u_j v_jᵀ`` of every matrix of a stack (from :func:`_svd`); ``+0`` for a zero matrix."""
    Q = (U * keep[..., None, :]) @ Vt
    return np.where(keep[..., :1, None], Q, 0.0)


def _polar(M: np.ndarray) -> np.ndarray:
    """The thin polar factor ``U Vᵀ`` over the kept singular values of every matrix of a stack."""
    if _empty(M):
        return np.zeros_like(M)
    U, _, Vt, keep = _svd(M)
    return _polar_from_svd(U, Vt, keep)


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
    return _polar(as_matrix(A)).reshape(A.shape)


def polar_batched(M) -> np.ndarray:
    """:func:`polar` of every matrix of a stack ``(..., m, n)`` at once (the same implementation;
    the singular values ``σ_j ≤ σ_max·max(m, n)·2⁻⁵²`` of each matrix are dropped).

    >>> Q = polar_batched(np.stack([np.diag([3.0, -2.0]), np.zeros((2, 2))]))
    >>> Q.tolist()
    [[[1.0, 0.0], [0.0, -1.0]], [[0.0, 0.0], [0.0, 0.0]]]
    """
    return _polar(_stack(M))


@dataclass(frozen=True)
class Norm:
    """A layer norm with its dual, sharp operator and LMO (docs/theory.md).

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

    def lmo(self, M, t: float = 1.0, *, dual: float | None = None) -> np.ndarray:
        """``LMO_t(M) = argmin_{‖Z‖ ≤ t} ⟨M, Z⟩ = −t M^♯/‖M‖_*`` (zero for ``M = 0``). ``dual``:
        ``‖M‖_*`` (:meth:`dual`) when the caller already holds it — Drop-Muon's step forms it
        for the radius — so that it is not computed again (the same result)."""
        _check_radius(t)
        A = np.asarray(M, dtype=float)
        return self._lmo(as_matrix(A), t, dual).reshape(A.shape)

    # -- the same maps on stacks of matrices (..., m, n): one matrix per trailing m × n block ------

    def norm_batched(self, X) -> np.ndarray:
        """``‖X_j‖`` of every matrix of a stack ``(..., m, n)``, shape ``(...)``.

        >>> spectral.norm_batched(np.stack([np.diag([3.0, 1.0]), np.eye(2)])).tolist()
        [3.0, 1.0]
        """
        return np.asarray(self._norm(_stack(X)), dtype=float)

    def dual_batched(self, M) -> np.ndarray:
        """``‖M_j‖_*`` of every matrix of a stack ``(..., m, n)``, shape ``(...)``.

        >>> spectral.dual_batched(np.stack([np.diag([3.0, 1.0]), np.eye(2)])).tolist()
        [4.0, 2.0]
        """
        return np.asarray(self._dual(_stack(M)), dtype=float)

    def sharp_batched(self, M) -> np.ndarray:
        """``M_j^♯`` of every matrix of a stack ``(..., m, n)``, same shape."""
        return self._sharp(_stack(M))

    def lmo_batched(self, M, t=1.0, *, dual=None) -> np.ndarray:
        """``LMO_{t_j}(M_j) = −t_j M_j^♯/‖M_j‖_*`` of every matrix of a stack ``(..., m, n)`` (zero
        where ``M_j = 0``); ``t`` is a radius or an array of radii broadcastable to ``M.shape[:-2]``.
        ``dual``: the stack's ``‖M_j‖_*`` (:meth:`dual_batched`, shape ``M.shape[:-2]``) when the
        caller already holds it, so that it is not computed again (the same result).

        >>> M = np.stack([np.diag([3.0, 1.0]), np.zeros((2, 2))])
        >>> spectral.lmo_batched(M, np.array([0.5, 2.0])).tolist()
        [[[-0.5, -0.0], [-0.0, -0.5]], [[0.0, 0.0], [0.0, 0.0]]]
        """
        t_arr = np.asarray(t, dtype=float)
        if not (np.all(np.isfinite(t_arr)) and np.all(t_arr >= 0)):
            raise ValueError(f"the LMO radius must be non-negative and finite; got t = {t!r}")
        A = _stack(M)
        if dual is not None and np.shape(dual) != A.shape[:-2]:
            raise ValueError(f"dual must hold one dual norm per matrix, shape {A.shape[:-2]}; got shape {np.shape(dual)}")
        return self._lmo(A, t, dual)

    def _lmo(self, M: np.ndarray, t, d=None) -> np.ndarray:
        # the one implementation of LMO_t on a stack: −t/‖M‖_* times M^♯, zero where ‖M‖_* = 0
        if M.ndim == 2 and isinstance(t, (int, float)):
            # one matrix and one radius: the same arithmetic without the stack's broadcasting (and
            # without M^♯ where it is not used); d = ‖M‖_* when the caller already has it
            d = self._dual(M) if d is None else d
            return (-t / d) * self._sharp(M) if d > 0 else np.zeros(M.shape)
        d = self._dual(M) if d is None else np.asarray(d, dtype=float)
        pos = d > 0
        coef = -t / np.where(pos, d, 1.0)
        return np.where(pos[..., None, None], np.asarray(coef)[..., None, None] * self._sharp(M), 0.0)


def _check_radius(t) -> None:
    if not (isinstance(t, (int, float, np.floating)) and math.isfinite(t) and t >= 0):
        raise ValueError(f"the LMO radius must be non-negative and finite; got t = {t!r}")


# The maps below act on stacks of matrices (..., m, n) and return shape (...) (norms) or the stack's
# shape (sharp operators); a single matrix is the stack with no leading axes. Reductions call the
# ufuncs' ``reduce`` directly: what np.sum/np.max do for an ndarray, without their Python wrapper.

_sum, _max = np.add.reduce, np.maximum.reduce


def _fro(M):
    return np.sqrt(_sum(M * M, axis=(-2, -1)))


def _op(M):
    if _empty(M):
        return np.zeros(M.shape[:-2])
    return _max(np.linalg.svd(M, compute_uv=False), axis=-1)


def _nuc(M):
    if _empty(M):
        return np.zeros(M.shape[:-2])
    return _sum(np.linalg.svd(M, compute_uv=False), axis=-1)


def _spectral_sharp(scale: Callable[[np.ndarray], float]):
    # For the norm c‖·‖_op: dual (1/c)‖·‖_nuc and sharp (‖M‖_nuc / c²) U Vᵀ.
    def sharp(M):
        if _empty(M):
            return np.zeros_like(M)
        U, s, Vt, keep = _svd(M)
        c = scale(M)
        return (_sum(s, axis=-1) / c**2)[..., None, None] * _polar_from_svd(U, Vt, keep)

    return sharp


def _scale(M):
    m, n = M.shape[-2:]
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
    _norm=lambda M: np.zeros(M.shape[:-2]) if _empty(M) else _max(np.abs(M), axis=(-2, -1)),
    _dual=lambda M: _sum(np.abs(M), axis=(-2, -1)),
    _sharp=lambda M: _sum(np.abs(M), axis=(-2, -1))[..., None, None] * np.sign(M),
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
