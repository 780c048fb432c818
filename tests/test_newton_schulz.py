"""Newton–Schulz polar factors and their inexactness δ (dropmuon.verification.synthetic.newton_schulz): the matrix
iteration against its scalar map through an SVD, δ against the operator norm, the worst case over
a condition number against random and constructed matrices, and the known shapes of the presets."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropmuon.theory.norms import polar
from dropmuon.verification.synthetic.newton_schulz import (
    PRESETS,
    REFERENCE_EPS,
    coefficients,
    delta,
    delta_table,
    image_interval,
    newton_schulz,
    normalisation,
    scalar_map,
    singular_value_interval,
    worst_case_x,
    worst_delta,
)

from .tolerances import FORMULA_RTOL, SVD_RTOL

NAMES = list(PRESETS)

# The matrix iteration against U diag(p(x)) Vᵀ, entrywise and absolute. Entries and singular values
# are O(1) (|p| ≤ 2 on the normalised spectrum) and each step is a few matrix products of such
# matrices with coefficients |a|, |b|, |c| ≤ 24, so rounding adds O(n · 2⁻⁵²) per step, amplified by
# at most the Lipschitz constant of the steps; measured ≤ 4e-14 over 3000 random cases (shapes up to
# 40 × 40, ≤ 12 steps, condition numbers up to 10³); 1e-11 leaves a wide margin while a wrong
# coefficient, normalisation or transpose is O(1e-3) or larger.
NS_ATOL = 1e-11

# δ from the SVD of a matrix against the worst case at its exact singular values. The SVD moves a
# singular value by O(2⁻⁵² ‖M‖), i.e. x = σ/‖M‖_F by ~1e-15, and p = p_k ∘ … ∘ p_1 has slope at most
# Π a_i ≲ 1e5 (Polar Express, 12 steps) near x = 0, so δ moves by ≲ 1e-10; 1e-9 allows for that.
# A worst case that missed a peak, or an interval that is too narrow, is off by far more.
DELTA_ATOL = 1e-9


def _orthonormal(rng, m, r):
    Q, _ = np.linalg.qr(rng.standard_normal((m, r)))
    return Q


def _with_singular_values(rng, m, n, s):
    """A random m × n matrix with singular values ``s`` (len(s) ≤ min(m, n))."""
    r = len(s)
    return (_orthonormal(rng, m, r) * s) @ _orthonormal(rng, n, r).T


def _reference(M, preset, steps):
    """U diag(p(σ / (f‖M‖_F))) Vᵀ by SVD: what NS must equal."""
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    x = s / (normalisation(preset) * np.linalg.norm(M))
    return (U * scalar_map(x, preset, steps)) @ Vt


shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))
presets = st.sampled_from(NAMES)


@settings(max_examples=60)
@given(shape=shapes, preset=presets, steps=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       scale=st.floats(-3, 3))
def test_matrix_iteration_acts_on_singular_values(shape, preset, steps, seed, scale):
    """NS(M) = U diag(scalar_map(σ/(f‖M‖_F))) Vᵀ for wide, tall and square M of any scale."""
    M = np.random.default_rng(seed).standard_normal(shape) * 10.0**scale
    Q = newton_schulz(M, preset, steps)
    assert Q.shape == M.shape
    np.testing.assert_allclose(Q, _reference(M, preset, steps), rtol=0, atol=NS_ATOL)


@pytest.mark.parametrize("shape", [(5, 5), (3, 17), (17, 3), (30, 30)])
@pytest.mark.parametrize("preset", NAMES)
def test_matrix_iteration_fixed_shapes(shape, preset):
    rng = np.random.default_rng(sum(shape))
    M = rng.standard_normal(shape)
    for steps in (1, 5, 10):
        np.testing.assert_allclose(newton_schulz(M, preset, steps), _reference(M, preset, steps),
                                   rtol=0, atol=NS_ATOL)


def test_custom_table_and_eps_follow_the_same_map():
    """A custom table (its last row repeated) and a non-zero eps enter exactly as documented."""
    rng = np.random.default_rng(7)
    M = rng.standard_normal((6, 9))
    table = [(2.0, -1.5, 0.5), (1.5, -0.5, 0.0)]
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    x = s / (np.linalg.norm(M) + 0.3)
    y = x.copy()
    for a, b, c in [table[0], table[1], table[1], table[1]]:
        y = a * y + b * y**3 + c * y**5
    np.testing.assert_allclose(newton_schulz(M, table, 4, eps=0.3), (U * y) @ Vt,
                               rtol=0, atol=NS_ATOL)
    assert delta(M, table, 4, eps=0.3) == pytest.approx(np.max(np.abs(y - 1)), rel=FORMULA_RTOL)


def test_reference_eps_is_the_reference_normaliser():
    """eps=REFERENCE_EPS divides by f‖M‖_F + 1e-7, which matters for a small M."""
    M = np.diag([2e-7, 1e-7])
    x = np.array([2e-7, 1e-7]) / (1.01 * np.linalg.norm(M) + REFERENCE_EPS)
    expect = np.diag(scalar_map(x, "polar-express", 3))
    np.testing.assert_allclose(newton_schulz(M, "polar-express", 3, eps=REFERENCE_EPS), expect,
                               rtol=0, atol=NS_ATOL)
    # without eps the result is scale-invariant
    np.testing.assert_allclose(newton_schulz(M, "muon", 3), newton_schulz(M * 1e7, "muon", 3),
                               rtol=0, atol=NS_ATOL)


def test_polar_express_normalisation_and_safety_scaling():
    """Polar Express divides by 1.01‖M‖_F and runs p_i(x/1.01) for all but its last polynomial."""
    raw_first = (8.28721201814563, -23.595886519098837, 17.300387312530933)
    a, b, c = coefficients("polar-express", 1)[0]
    for x in (0.1, 0.5, 0.9):
        u = x / 1.01
        assert a * x + b * x**3 + c * x**5 == pytest.approx(
            raw_first[0] * u + raw_first[1] * u**3 + raw_first[2] * u**5, rel=FORMULA_RTOL)
    assert coefficients("polar-express", 12)[7:].tolist() == [[1.875, -1.25, 0.375]] * 5
    assert normalisation("polar-express") == 1.01
    # the published first polynomial equioscillates on [1e-3, 1]: p(1e-3) = 1 − E, p(1) = 1 + E
    p = np.polynomial.Polynomial([0, raw_first[0], 0, raw_first[1], 0, raw_first[2]])
    assert 1 - p(1e-3) == pytest.approx(p(1) - 1, rel=1e-4)


def test_you_table_repeats_its_last_row():
    C = coefficients("you", 9) * 1024
    assert C[0].tolist() == [3955, -8306, 5008]
    assert C[5:].tolist() == [[2172, -1833, 682]] * 4


@pytest.mark.parametrize("preset", NAMES)
@pytest.mark.parametrize("shape", [(4, 4), (3, 11), (11, 3)])
def test_transpose_commutes(preset, shape):
    """NS(Mᵀ) = NS(M)ᵀ (bit for bit when M is not square: the same products are formed)."""
    M = np.random.default_rng(3).standard_normal(shape)
    Q, Qt = newton_schulz(M, preset, 6), newton_schulz(M.T, preset, 6)
    if shape[0] != shape[1]:
        assert np.array_equal(Qt, Q.T)
    np.testing.assert_allclose(Qt, Q.T, rtol=0, atol=NS_ATOL)


@settings(max_examples=60)
@given(shape=shapes, preset=presets, steps=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       deficient=st.booleans())
def test_delta_is_operator_norm_of_the_error(shape, preset, steps, seed, deficient):
    """delta(M) = ‖NS(M) − U Vᵀ‖_op, also for rank-deficient M (U Vᵀ over the non-zero σ)."""
    rng = np.random.default_rng(seed)
    m, n = shape
    if deficient and min(m, n) > 1:
        r = min(m, n) // 2
        M = rng.standard_normal((m, r)) @ rng.standard_normal((r, n))
    else:
        M = rng.standard_normal((m, n))
    err = np.linalg.norm(newton_schulz(M, preset, steps) - polar(M), 2)
    assert delta(M, preset, steps) == pytest.approx(err, rel=SVD_RTOL, abs=NS_ATOL)


def test_delta_of_zero_and_of_exactly_orthogonal_input():
    assert delta(np.zeros((3, 4))) == 0.0
    assert np.array_equal(newton_schulz(np.zeros((3, 4))), np.zeros((3, 4)))
    # M = I_n: every x = 1/√n, so δ = |p(1/√n) − 1| exactly
    for preset in NAMES:
        x = 1 / math.sqrt(4) / normalisation(preset)
        assert delta(np.eye(4), preset, 3) == pytest.approx(
            abs(float(scalar_map(x, preset, 3)) - 1), rel=FORMULA_RTOL)


def test_singular_value_interval_is_tight():
    """Endpoints are attained with condition number exactly κ; 1/√n lies between them."""
    kappa, n = 30.0, 7
    lo, hi = singular_value_interval(kappa, n)
    for x in (lo, hi):
        y = math.sqrt((1 - x * x) / (n - 1))
        assert max(x / y, y / x) == pytest.approx(kappa, rel=FORMULA_RTOL)
    assert lo < 1 / math.sqrt(n) < hi
    assert singular_value_interval(1, 9) == (1 / 3, 1 / 3)


@settings(max_examples=80)
@given(m=st.integers(1, 12), n=st.integers(1, 12), log_kappa=st.floats(0, 4),
       preset=presets, steps=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_worst_delta_bounds_every_matrix(m, n, log_kappa, preset, steps, seed):
    """delta(M) ≤ worst_delta(κ, rank) for M with condition number ≤ κ (extremes included)."""
    rng = np.random.default_rng(seed)
    kappa, r = 10.0**log_kappa, min(m, n)
    s = 10.0 ** rng.uniform(0, log_kappa, r)
    if r >= 2:
        s[0], s[1] = 1.0, kappa  # condition number exactly κ
    M = _with_singular_values(rng, m, n, s)
    assert delta(M, preset, steps) <= worst_delta(preset, steps, kappa=kappa, n=r) + DELTA_ATOL


@pytest.mark.parametrize("preset", NAMES)
@pytest.mark.parametrize("steps", [1, 3, 5, 8, 12])
@pytest.mark.parametrize("kappa,n", [(10, 64), (1000, 64), (3, 2), (100, 5)])
def test_worst_delta_is_attained(preset, steps, kappa, n):
    """The grid-found x (one singular value x, the other n − 1 equal) gives a matrix of condition
    number ≤ κ whose delta is worst_delta — two independent methods agreeing."""
    x = worst_case_x(preset, steps, kappa=kappa, n=n)
    lo, hi = singular_value_interval(kappa, n)
    assert lo <= x <= hi
    y = math.sqrt((1 - x * x) / (n - 1))
    rng = np.random.default_rng(n)
    M = _with_singular_values(rng, n + 2, n, np.array([x] + [y] * (n - 1)) * 5.0)
    w = worst_delta(preset, steps, kappa=kappa, n=n)
    assert delta(M, preset, steps) == pytest.approx(w, abs=DELTA_ATOL)
    # and a dense grid never finds more
    xs = np.geomspace(lo, hi, 200001)
    assert np.max(np.abs(scalar_map(xs / normalisation(preset), preset, steps) - 1)) <= w + 1e-15


def _muon_floor():
    """Muon's quintic p has its local minimum at x_c² = (3·4.775 + √((3·4.775)² − 20·2.0315·3.4445))
    / (10·2.0315); m = p(x_c) and [m, p(m)] is invariant, so once reached δ = 1 − m."""
    a, b, c = 3.4445, -4.7750, 2.0315
    xc = math.sqrt((-3 * b + math.sqrt(9 * b * b - 20 * a * c)) / (10 * c))

    def p(x):
        return a * x + b * x**3 + c * x**5

    return p(xc), p(p(xc))


def test_muon_five_steps_maps_into_its_invariant_interval():
    """Muon, 5 steps, κ = 10, n = 64: singular values land in [0.6818, 1.1344] = [m, p(m)], so
    δ = 1 − m = 0.3182; from 8 steps on the same holds up to κ = 1000."""
    m, pm = _muon_floor()
    assert 0.68 < m < 0.69 and 1.13 < pm < 1.14
    lo, hi = image_interval("muon", 5, kappa=10, n=64)
    assert lo == pytest.approx(m, rel=FORMULA_RTOL)
    assert hi == pytest.approx(pm, rel=FORMULA_RTOL)
    assert worst_delta("muon", 5, kappa=10, n=64) == pytest.approx(1 - m, rel=FORMULA_RTOL)
    for kappa in (10, 100, 1000):
        for steps in range(8, 30):
            d = worst_delta("muon", steps, kappa=kappa, n=64)
            assert d == pytest.approx(1 - m, rel=FORMULA_RTOL)


def test_muon_five_steps_is_not_enough_for_large_kappa():
    """At κ = 1000, n = 64 the smallest x ≈ 1.26e-4 only grows by ≈ 3.4445⁵ in 5 steps: δ ≈ 0.939;
    the floor 1 − m is reached at 8 steps (7 steps: 0.3222)."""
    m, _ = _muon_floor()
    x_lo, _ = singular_value_interval(1000, 64)
    assert worst_delta("muon", 5, kappa=1000, n=64) == pytest.approx(
        1 - float(scalar_map(x_lo, "muon", 5)), rel=FORMULA_RTOL)
    assert worst_delta("muon", 5, kappa=1000, n=64) == pytest.approx(0.9389, abs=1e-4)
    assert worst_delta("muon", 7, kappa=1000, n=64) == pytest.approx(0.3222, abs=1e-4)
    assert worst_delta("muon", 7, kappa=1000, n=64) > 1 - m + 1e-3


@pytest.mark.parametrize("kappa", [10, 100, 1000])
def test_polar_express_delta_decreases_to_zero(kappa):
    """Polar Express at n = 64: δ never increases with the number of steps and reaches rounding
    level (its last polynomial (15x − 10x³ + 3x⁵)/8 has 1 − p(x) = (1 − x)³(8 + 9x + 3x²)/8)."""
    d = [worst_delta("polar-express", k, kappa=kappa, n=64) for k in range(1, 16)]
    assert all(later <= earlier + 1e-15 for earlier, later in itertools.pairwise(d))
    assert d[11] < 1e-14
    assert d[3] > 0.5  # and it is far from converged after 4 steps


def test_you_converges_to_its_fixed_point_not_to_one():
    """YouJiacheng's last polynomial has p(1) = 1021/1024, and its attracting fixed point x* < 1
    sets a floor δ = 1 − x* ≈ 0.00317 however many steps are run."""
    a, b, c = coefficients("you", 6)[-1]
    z = np.roots([c, b, a - 1])  # a + bx² + cx⁴ = 1 in z = x²
    xstar = math.sqrt(min(r.real for r in z if abs(r.imag) == 0 and 0 < r.real < 1.5))
    assert worst_delta("you", 40, kappa=1000, n=64) == pytest.approx(1 - xstar, rel=1e-9)
    assert 0.003 < 1 - xstar < 0.0033


@pytest.mark.parametrize("kappa", [10, 100, 1000])
def test_five_steps_ranking(kappa):
    """At 5 steps: Polar Express < YouJiacheng < Muon (computed; not so at every step count)."""
    d = {p: worst_delta(p, 5, kappa=kappa, n=64) for p in NAMES}
    assert d["polar-express"] < d["you"] < d["muon"]


def test_delta_table_records():
    rows = delta_table(steps=[5], kappas=[10, 1000], n=64)
    assert [(r.preset, r.kappa) for r in rows] == [
        (p, k) for p in NAMES for k in (10.0, 1000.0)]
    for r in rows:
        assert r.delta == worst_delta(r.preset, r.steps, kappa=r.kappa, n=r.n)
        assert r.delta == max(1 - r.lo, r.hi - 1)
        assert set(r.as_dict()) == {"preset", "steps", "kappa", "n", "delta", "lo", "hi"}
    with pytest.raises(AttributeError):
        rows[0].delta = 0.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: newton_schulz(np.eye(2), "newton"), r"unknown Newton-Schulz preset 'newton'"),
        (lambda: coefficients("muon", 0), r"steps = 0"),
        (lambda: delta(np.eye(2), "muon", 2.5), r"steps = 2.5"),
        (lambda: newton_schulz(np.ones(3)), r"shape \(3,\)"),
        (lambda: newton_schulz(np.ones((2, 2, 2))), r"shape \(2, 2, 2\)"),
        (lambda: newton_schulz(np.array([[1.0, np.nan]])), r"M\[0, 1\] = nan"),
        (lambda: delta(np.array([[np.inf]])), r"M\[0, 0\] = inf"),
        (lambda: worst_delta("muon", 5, kappa=0.5, n=4), r"kappa = 0.5"),
        (lambda: worst_delta("muon", 5, kappa=10, n=0), r"n = 0"),
        (lambda: singular_value_interval(float("nan"), 3), r"kappa = nan"),
        (lambda: coefficients([(1.0, np.inf, 0.0)], 2), r"entry 1 .*inf"),
        (lambda: coefficients([(1.0, 2.0)], 2), r"entry 1 .*\(1.0, 2.0\)"),
        (lambda: newton_schulz(np.eye(2), eps=-1.0), r"eps = -1.0"),
        (lambda: scalar_map([0.5, np.nan]), r"x = nan"),
    ],
)
def test_input_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
