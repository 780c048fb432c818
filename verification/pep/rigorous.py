r"""A rigorous upper bound from a PEP's dual multipliers, checked in exact arithmetic.

A solver's dual is a floating-point approximation: its "bound" may sit slightly *below* the true
worst case (we have seen a witness attain 1.4e-5 more than a reported bound). Weak duality turns any
multipliers into a proof once two facts hold exactly: for every primal feasible point
``(f, H)`` of the layer PEP (:class:`.banded.BandedLayer`; the true worst case is one, whatever band
is used, because a band only drops constraints),

.. math::

    \sum_n c_n\|g_n\|^2 = \langle C, H\rangle
      \le \sum_r λ_r\,(\text{row}_r) - \langle Z, H\rangle \le λ_{init},
    \qquad Z = \sum_r λ_r Q_r - C,

provided (i) ``λ ≥ 0``, (ii) the multipliers of the function values balance at every point
(stationarity in the free ``f_n``) and (iii) ``Z ⪰ 0``. The check:

1. **Round** the solver's multipliers to dyadic rationals ``Λ_r 2^{−E}`` (negative ones to 0).
2. **Balance exactly.** The value multipliers form a flow: a pair row ``(i, j)`` carries ``λ`` from
   point ``i`` to ``j``, the row ``f_n ≥ ½‖g_n‖²`` drains ``μ_n`` at ``n`` and ``f_0 ≤ 1`` feeds
   ``λ_init`` at 0. Set ``μ_n`` to the net inflow; where that is negative, push the deficit one
   point down through the pair ``(n−1, n)`` (which is in every band); finally
   ``λ_init = μ_0 − net_0``. All in integers, so (i) and (ii) hold exactly.
3. **Recompute** ``Z`` exactly: the rows' forms are integer matrices (``β = p/q``, gradients scaled
   by ``p``), the weights ``c_n`` are replaced by rational upper bounds ``c̄_n ≥ c_n`` from interval
   arithmetic (a larger weight only raises the left-hand side, so the bound still holds).
4. **Prove** ``Z ⪰ 0``: a floating-point Cholesky factor ``L`` of ``Z/s − σI`` (``σ`` half the
   smallest eigenvalue, ``s`` a scale), then the exact residual ``R = Z/s − σI − LLᵀ`` and
   Gershgorin: ``Z/s ⪰ LLᵀ + (σ − max_i Σ_j |R_ij|) I ⪰ 0`` when ``σ ≥ max_i Σ_j|R_ij|``.

The bound is then ``λ_init/K`` (the objective is ``Σ c_n‖g_n‖²``; the PEP's value is that over
``K``), rounded up to a float. Any failure — a negative ``μ`` that cannot be balanced, ``Z`` not
positive definite in floating point, a residual above ``σ`` — returns ``rigorous = False`` and no
bound; it never returns a number that is not proved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["RigorousBound", "check_dual", "weight_upper_bounds"]


@dataclass(frozen=True)
class RigorousBound:
    """``upper``: a float ``≥`` the exact bound ``λ_init/K`` (``None`` when not proved);
    ``rigorous``: whether every step of the check passed; ``reason``: what failed, or how it passed;
    ``sigma`` and ``residual`` the Gershgorin margin and the residual it absorbed."""

    upper: float | None
    rigorous: bool
    reason: str
    sigma: float | None = None
    residual: float | None = None


def weight_upper_bounds(pi: float, K: int, prec: int = 113) -> list[Fraction]:
    r"""Rational ``c̄_n ≥ c_n = Σ_{k=n}^{K−1} P(\mathrm{Bin}(k, π) = n) = P(\mathrm{Bin}(K, π) ≥ n+1)/π``
    for ``n < K``, from interval arithmetic (``mpmath.iv``, ``prec`` bits) on the binomial
    probabilities of ``Bin(K, π)`` (``π`` the float's exact value) by their ratio recurrence; the
    upper endpoints, as exact fractions.

    >>> [float(c) for c in weight_upper_bounds(0.5, 2)]
    [1.5, 0.5]
    """
    from mpmath import iv, mpf

    pi_f = float(pi)
    if pi_f == 1.0:
        return [Fraction(1)] * K
    old = iv.prec
    iv.prec = prec
    try:
        p = iv.mpf(mpf(pi_f))
        one_m = 1 - p
        pmf = [one_m**K]
        ratio = p / one_m
        for j in range(K):
            pmf.append(pmf[-1] * (K - j) / (j + 1) * ratio)
        out = []
        tail = iv.mpf(0)
        tails = [None] * (K + 1)
        for j in range(K, -1, -1):
            tail = tail + pmf[j]
            tails[j] = tail
        for n in range(K):
            c = tails[n + 1] / p
            out.append(_upper_endpoint(c))
    finally:
        iv.prec = old
    return out


def _upper_endpoint(x) -> Fraction:
    """The upper end of an ``mpmath.iv`` interval, exactly (its raw ``(sign, man, exp, bc)``)."""
    sign, man, exp, _ = x._mpi_[1]
    v = Fraction(int(man) << exp) if exp >= 0 else Fraction(int(man), 1 << -exp)
    return -v if sign else v


def _to_dyadic(v: np.ndarray, bits: int = 62) -> tuple[list[int], int]:
    """Round non-negative floats to integers over ``2^E`` (``E`` so that the largest has ``bits``
    bits); negatives become 0."""
    v = np.maximum(np.asarray(v, dtype=float), 0.0)
    top = float(v.max(initial=0.0))
    if top <= 0:
        return [0] * len(v), 0
    E = bits - math.frexp(top)[1]
    return [int(round(math.ldexp(x, E))) for x in v], E


def check_dual(layer, lam, *, weights: list[Fraction] | None = None) -> RigorousBound:
    """Prove ``W ≤ upper`` from the multipliers ``lam`` (``init``, ``lower[0..K]``, pairs) of the
    banded layer PEP ``layer`` (module docstring). ``weights``: the rational ``c̄_n``; default
    :func:`weight_upper_bounds` of the layer's ``π`` is not known here, so pass them."""
    K = layer.K
    d = K + 1
    s = layer.width
    if weights is None:
        raise ValueError("give the rational weight bounds c̄_n (weight_upper_bounds(pi, K))")
    nl = K + 1
    npair = len(layer.pairs)
    lam = np.asarray(lam, dtype=float)
    if len(lam) != 1 + nl + npair:
        raise ValueError(f"expected {1 + nl + npair} multipliers, got {len(lam)}")
    Lam, E = _to_dyadic(lam)
    mu = Lam[1:1 + nl]
    pl = Lam[1 + nl:]
    # 2. balance the flow of value multipliers exactly
    net = [0] * d
    pair_index = {}
    for r, (i, j) in enumerate(layer.pairs):
        i, j = int(i), int(j)
        pair_index[(i, j)] = r
        net[j] += pl[r]
        net[i] -= pl[r]
    for n in range(K, 0, -1):
        if net[n] < 0:
            r = pair_index.get((n - 1, n))
            if r is None:
                return RigorousBound(None, False, f"no pair ({n - 1}, {n}) to balance point {n}")
            delta = -net[n]
            pl[r] += delta
            net[n] += delta
            net[n - 1] -= delta
        mu[n] = net[n]
    mu[0] = max(mu[0], net[0], 0)
    lam_init = mu[0] - net[0]
    # 3. Z·2^(E+F)·4p², exactly, in band storage Zb[a, t] = Z[a+t, a] (lower band)
    F = max((c.denominator.bit_length() - 1 for c in weights), default=0)
    Cn = [c.numerator * (1 << F) // c.denominator for c in weights]  # exact: denominators are powers of 2
    if any(c.denominator & (c.denominator - 1) for c in weights):
        raise ValueError("the weight bounds must be dyadic rationals")
    Zb = np.zeros((d, s), dtype=object)
    Zb[:] = 0
    Q = layer.Q
    coef = mu + pl  # row r of Q: lower[0..K] then pairs
    twoF = 1 << F
    for r in range(Q.shape[0]):
        c = coef[r]
        if c == 0:
            continue
        o = int(layer.lo[r])
        M = Q[r]
        A_, B_ = np.nonzero(np.tril(np.asarray(M, dtype=float)) != 0)
        for a, b in zip(A_.tolist(), B_.tolist()):
            Zb[o + b, a - b] += c * twoF * int(M[a, b])
    c4 = 1 << (E + 2)
    for n in range(K):
        g = layer.ghat[n]
        for a, ca in g.items():
            for b, cb in g.items():
                if a >= b:
                    Zb[b, a - b] -= c4 * Cn[n] * ca * cb
    # 4. Z ⪰ 0 by a floating Cholesky with margin and an exact residual
    ok, why, sig, res = _psd_proof(Zb)
    if not ok:
        return RigorousBound(None, False, why, sig, res)
    exact = Fraction(lam_init, (1 << E) * K)
    up = float(exact)
    if Fraction(up) < exact:
        up = math.nextafter(up, math.inf)
    return RigorousBound(up, True, "dual multipliers balanced exactly; Z ⪰ 0 by Cholesky + exact residual "
                         "(Gershgorin)", sig, res)


def _psd_proof(Zb) -> tuple[bool, str, float | None, float | None]:
    """Is the symmetric banded integer matrix (``Zb[a, t] = Z[a+t, a]``) positive semidefinite?
    Proved by a floating Cholesky of ``Z/S − σI`` and the exact residual (module docstring)."""
    from scipy.linalg import cholesky_banded, eigvals_banded

    d, s = Zb.shape
    S = max((abs(int(v)) for v in Zb.ravel()), default=0)
    if S == 0:
        return True, "Z = 0", 0.0, 0.0
    # float image of Z/S in LAPACK lower band form ab[t, a] = Z[a+t, a]
    ab = np.zeros((s, d))
    for t in range(s):
        for a in range(d - t):
            ab[t, a] = float(Fraction(int(Zb[a, t]), S))
    try:
        lmin = float(eigvals_banded(ab, lower=True, select="i", select_range=(0, 0))[0])
    except Exception as e:  # noqa: BLE001 (LAPACK failure: not proved)
        return False, f"eigenvalue of Z failed: {e}", None, None
    if not lmin > 0:
        return False, f"Z is not positive definite in floating point (smallest eigenvalue {lmin:.3g} of Z/max|Z|)", None, None
    sigma = lmin / 2
    shifted = ab.copy()
    shifted[0] -= sigma
    try:
        cb = cholesky_banded(shifted, lower=True)
    except np.linalg.LinAlgError:
        return False, "Cholesky of Z − σI failed", sigma, None
    # exact residual R = Z/S − σI − LLᵀ, scaled by S·2^(2G) to integers
    G = 0
    for v in cb.ravel():
        if v != 0:
            m, e = math.frexp(float(v))
            G = max(G, 53 - e)
    m, e = math.frexp(sigma)
    G = max(G, (53 - e + 1) // 2 + 1)
    Li = np.zeros((s, d), dtype=object)
    for t in range(s):
        for a in range(d - t):
            Li[t, a] = int(math.ldexp(float(cb[t, a]), G)) if cb[t, a] != 0 else 0
            if Li[t, a] and Fraction(Li[t, a], 1 << G) != Fraction(float(cb[t, a])):
                return False, "internal: factor not exactly scaled", sigma, None
    scale2 = 1 << (2 * G)
    sig_int = Fraction(sigma) * scale2
    assert sig_int.denominator == 1
    sig_int = int(sig_int)
    row_abs = [0] * d
    for t in range(s):
        for a in range(d - t):
            i = a + t  # entry (i, a), i ≥ a
            # (LLᵀ)[i, a] = Σ_k L[i, k] L[a, k], k ≤ a, k ≥ i − s + 1
            acc = 0
            for k in range(max(0, i - s + 1), a + 1):
                acc += Li[i - k, k] * Li[a - k, k]
            r = int(Zb[a, t]) * scale2 - S * acc - (S * sig_int if t == 0 else 0)
            ra = abs(r)
            row_abs[i] += ra
            if t:
                row_abs[a] += ra
    worst = max(row_abs)
    bound = S * sig_int
    resid = worst / bound * sigma if bound else math.inf
    if worst <= bound:
        return True, "proved", sigma, resid
    return False, f"residual {resid:.3g} exceeds the margin sigma = {sigma:.3g}", sigma, resid
