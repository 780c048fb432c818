"""Norms, duals, sharp operators and LMOs (docs/theory.md) on random and rank-deficient matrices."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropmuon.theory.norms import NORMS, as_matrix, get_norm, polar

from .tolerances import SVD_RTOL

NAMES = list(NORMS)


def _matrix(rng, m, n, rank=None):
    if rank is None:
        return rng.standard_normal((m, n))
    return rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n))


shapes = st.tuples(st.integers(1, 12), st.integers(1, 12))


@pytest.mark.parametrize("name", NAMES)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1), deficient=st.booleans())
def test_sharp_identities(name, shape, seed, deficient):
    """⟨M, M♯⟩ = ‖M♯‖² = ‖M‖_*² for random and rank-deficient M."""
    N = get_norm(name)
    rng = np.random.default_rng(seed)
    m, n = shape
    rank = max(1, min(m, n) // 2) if deficient else None
    M = _matrix(rng, m, n, rank)
    Ms = N.sharp(M)
    d2 = N.dual(M) ** 2
    assert np.sum(M * Ms) == pytest.approx(d2, rel=SVD_RTOL)
    assert N.norm(Ms) ** 2 == pytest.approx(d2, rel=SVD_RTOL)


@pytest.mark.parametrize("name", NAMES)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1), deficient=st.booleans(),
       t=st.floats(0.01, 10.0))
def test_lmo_is_optimal_against_random_feasible_points(name, shape, seed, deficient, t):
    """LMO_t(M) is feasible, attains −t‖M‖_*, and beats random points of the ball."""
    N = get_norm(name)
    rng = np.random.default_rng(seed)
    m, n = shape
    rank = max(1, min(m, n) // 2) if deficient else None
    M = _matrix(rng, m, n, rank)
    D = N.lmo(M, t)
    value = np.sum(M * D)
    scale = t * N.dual(M)
    assert N.norm(D) <= t * (1 + SVD_RTOL)
    assert value == pytest.approx(-scale, rel=SVD_RTOL)
    for _ in range(50):
        Z = rng.standard_normal((m, n))
        for r in (1.0, rng.uniform()):  # on the sphere and inside
            Zt = Z * (r * t / N.norm(Z))
            assert value <= np.sum(M * Zt) + SVD_RTOL * scale
    # points near the optimum (the LMO perturbed, then pulled back into the ball) too
    for _ in range(20):
        P = D + 1e-3 * t * rng.standard_normal((m, n))
        P *= min(1.0, t / N.norm(P))
        assert value <= np.sum(M * P) + SVD_RTOL * scale


@pytest.mark.parametrize("name", NAMES)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_dual_norm_is_holder_tight(name, shape, seed):
    """⟨M, Z⟩ ≤ ‖M‖_* ‖Z‖ for random Z, with equality at the sharp direction."""
    N = get_norm(name)
    rng = np.random.default_rng(seed)
    M = rng.standard_normal(shape)
    for _ in range(20):
        Z = rng.standard_normal(shape)
        assert np.sum(M * Z) <= N.dual(M) * N.norm(Z) * (1 + SVD_RTOL)
    Ms = N.sharp(M)
    assert np.sum(M * Ms) == pytest.approx(N.dual(M) * N.norm(Ms), rel=SVD_RTOL)


def test_known_values():
    M = np.array([[3.0, 0.0], [0.0, -4.0], [0.0, 0.0]])  # singular values 4, 3
    assert get_norm("frobenius").norm(M) == pytest.approx(5.0)
    assert get_norm("spectral").norm(M) == pytest.approx(4.0)
    assert get_norm("spectral").dual(M) == pytest.approx(7.0)
    # scaled spectral on a 3 × 2 matrix: sqrt(n/m) = sqrt(2/3)
    assert get_norm("scaled-spectral").norm(M) == pytest.approx(np.sqrt(2 / 3) * 4.0)
    assert get_norm("scaled-spectral").dual(M) == pytest.approx(np.sqrt(3 / 2) * 7.0)
    assert get_norm("linf").norm(M) == 4.0 and get_norm("linf").dual(M) == 7.0
    # Muon's LMO direction is −t U Vᵀ
    np.testing.assert_allclose(get_norm("spectral").lmo(M, 2.0), -2.0 * polar(M), atol=1e-15)


@given(shape=shapes, seed=st.integers(0, 2**32 - 1), deficient=st.booleans())
def test_polar_factor(shape, seed, deficient):
    """U Vᵀ is a partial isometry, M = P Q with P = M Qᵀ ⪰ 0, and spectral sharp = ‖M‖_nuc · polar."""
    rng = np.random.default_rng(seed)
    m, n = shape
    rank = max(1, min(m, n) // 2) if deficient else None
    M = _matrix(rng, m, n, rank)
    Q = polar(M)
    r = np.linalg.matrix_rank(M)
    # singular values of the polar factor: r ones, the rest zero
    sv = np.linalg.svd(Q, compute_uv=False)
    np.testing.assert_allclose(sv[:r], 1.0, rtol=SVD_RTOL)
    np.testing.assert_allclose(sv[r:], 0.0, atol=SVD_RTOL)
    # Q Mᵀ is symmetric positive semidefinite (M = (Q Mᵀ)ᵀ-free polar decomposition M = P Q)
    P = M @ Q.T
    np.testing.assert_allclose(P, P.T, atol=SVD_RTOL * np.linalg.norm(M))
    assert np.linalg.eigvalsh((P + P.T) / 2).min() >= -SVD_RTOL * np.linalg.norm(M)
    np.testing.assert_allclose(P @ Q, M, atol=SVD_RTOL * np.linalg.norm(M) * 10)
    np.testing.assert_allclose(get_norm("spectral").sharp(M), np.linalg.norm(M, "nuc") * Q,
                               atol=SVD_RTOL * np.linalg.norm(M, "nuc"))


def test_tensors_and_vectors_are_flattened():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 2, 3, 3))
    N = get_norm("spectral")
    assert N.norm(W) == pytest.approx(np.linalg.norm(W.reshape(4, 18), 2))
    assert N.sharp(W).shape == W.shape
    v = rng.standard_normal(5)
    assert N.norm(v) == pytest.approx(np.linalg.norm(v))
    assert as_matrix(v).shape == (5, 1)


@pytest.mark.parametrize("name", NAMES)
def test_zero_matrix(name):
    N = get_norm(name)
    Z = np.zeros((3, 2))
    assert N.dual(Z) == 0.0
    np.testing.assert_array_equal(N.lmo(Z, 1.0), 0.0)
    np.testing.assert_array_equal(N.sharp(Z), 0.0)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown norm 'nuclear'"):
        get_norm("nuclear")
    with pytest.raises(ValueError, match="radius must be non-negative.*t = -1"):
        get_norm("spectral").lmo(np.eye(2), -1.0)
    with pytest.raises(ValueError, match="at least one dimension"):
        get_norm("spectral").norm(np.float64(3.0))
