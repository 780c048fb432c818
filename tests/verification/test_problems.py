"""Every certified constant is checked where it claims to hold: gradients against finite
differences, A1 (descent / Lipschitz form) and A2 on random pairs, A3's variance by sampling."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropmuon.verification.synthetic.problems import (
    CoupledQuadratic,
    DeepLinear,
    L0L1Radial,
    SeparableQuadratic,
    Stochastic,
    norm_equivalence,
)

NORMS = ["frobenius", "spectral", "scaled-spectral", "linf"]
# Central differences with h = 1e-6 on functions of size O(1-100): truncation O(h²) and
# cancellation O(ε_mach/h) ≈ 1e-10 relative; 1e-6 separates a wrong gradient (O(1)) from that.
FD_RTOL = 1e-6
# The certified inequalities are checked with a relative slack for rounding in the two sides
# (sums of a few hundred products): 1e-9.
CERT_RTOL = 1e-9


def _shapes(rng, b):
    return [tuple(int(v) for v in rng.integers(1, 5, size=2)) for _ in range(b)]


def _make(kind, seed):
    rng = np.random.default_rng(seed)
    b = int(rng.integers(1, 4))
    shapes = _shapes(rng, b)
    norms = [str(n) for n in rng.choice(NORMS, size=b)]
    c = np.exp(rng.uniform(-2, 2, size=b))
    if kind == "separable":
        H = [np.exp(rng.uniform(-2, 1, size=s)) for s in shapes]
        return SeparableQuadratic(H, shapes, norms, seed=seed)
    if kind == "coupled":
        return CoupledQuadratic(shapes, norms, coupling=float(rng.uniform()), scales=c, seed=seed)
    if kind == "deep":
        dims = [int(v) for v in rng.integers(1, 5, size=b + 2)]
        return DeepLinear(dims, R=rng.uniform(0.5, 2.0, size=b + 1), seed=seed)
    nrm = [n if n in ("frobenius", "spectral") else "frobenius" for n in norms]
    return L0L1Radial(c, np.exp(rng.uniform(-1, 1, size=b)), shapes, nrm, x0_scale=1.5, seed=seed)


def _random_point(p, rng, scale=1.0):
    if isinstance(p, DeepLinear):  # inside the region ‖W_i‖_op ≤ R_i
        out = []
        for x, r in zip(p.x0, p.R):
            Z = rng.standard_normal(x.shape)
            out.append(Z * (rng.uniform(0, r) / np.linalg.norm(Z, 2)))
        return out
    return [x + scale * rng.standard_normal(x.shape) for x in p.x0]


@settings(max_examples=40)
@given(kind=st.sampled_from(["separable", "coupled", "deep", "cosh"]), seed=st.integers(0, 10_000))
def test_gradients_match_finite_differences(kind, seed):
    p = _make(kind, seed)
    rng = np.random.default_rng(seed + 1)
    X = _random_point(p, rng, 0.3)
    D = [rng.standard_normal(x.shape) for x in X]
    h = 1e-6
    fd = (p.value([x + h * d for x, d in zip(X, D)]) - p.value([x - h * d for x, d in zip(X, D)])) / (2 * h)
    an = sum(float(np.sum(g * d)) for g, d in zip(p.grad(X), D))
    assert fd == pytest.approx(an, rel=FD_RTOL, abs=FD_RTOL * (1 + abs(p.value(X))))


@settings(max_examples=60)
@given(kind=st.sampled_from(["separable", "coupled", "deep"]), seed=st.integers(0, 10_000))
def test_descent_form_holds_on_random_pairs(kind, seed):
    """A1, descent form: f(Y) ≤ f(X) + ⟨∇f(X), Y − X⟩ + Σ (L_i/2)‖Y_i − X_i‖² (in the region)."""
    p = _make(kind, seed)
    rng = np.random.default_rng(seed + 2)
    L = p.constants.L
    for _ in range(5):
        X, Y = _random_point(p, rng), _random_point(p, rng)
        lin = sum(float(np.sum(g * (y - x))) for g, x, y in zip(p.grad(X), X, Y))
        quad = sum(Li / 2 * n.norm(y - x) ** 2 for Li, n, x, y in zip(L, p.norms, X, Y))
        rhs = p.value(X) + lin + quad
        assert p.value(Y) <= rhs + CERT_RTOL * (abs(rhs) + quad)


@settings(max_examples=40)
@given(seed=st.integers(0, 10_000))
def test_separable_lipschitz_form_and_attained_constant(seed):
    p = _make("separable", seed)
    rng = np.random.default_rng(seed)
    X, Y = _random_point(p, rng), _random_point(p, rng)
    for i, n in enumerate(p.norms):
        lhs = n.dual(p.grad(X)[i] - p.grad(Y)[i])
        assert lhs <= p.constants.L[i] * n.norm(X[i] - Y[i]) * (1 + CERT_RTOL)


def test_separable_constant_is_exact():
    """‖G‖_* ≤ κ²‖G‖ is attained, so L_i = c_i κ_i² cannot be lowered for H_i ≡ c_i."""
    for name, shape in [("spectral", (3, 5)), ("scaled-spectral", (4, 2)), ("linf", (2, 3)), ("frobenius", (2, 2))]:
        p = SeparableQuadratic([2.0], [shape], name)
        G = np.eye(*shape) if name != "linf" else np.ones(shape)
        if name == "scaled-spectral":
            G = np.eye(*shape)
        ratio = p.norms[0].dual(2.0 * G) / p.norms[0].norm(G)
        assert ratio == pytest.approx(p.constants.L[0], rel=1e-12)
    assert norm_equivalence("scaled-spectral", (4, 2)) == pytest.approx(2.0)  # sqrt(2·4/2)


@settings(max_examples=40)
@given(seed=st.integers(0, 10_000))
def test_l0l1_radial_holds_within_radius(seed):
    """A2 for steps ‖Y_i − X_i‖ ≤ 1/L1_i, including the steepest (radial) direction at the
    limit of the radius."""
    p = _make("cosh", seed)
    rng = np.random.default_rng(seed)
    L0, L1 = p.constants.L0, p.constants.L1
    for _ in range(5):
        X = _random_point(p, rng, 1.0)
        gX = p.grad(X)
        for i, n in enumerate(p.norms):
            D = X[i] if rng.uniform() < 0.5 else rng.standard_normal(X[i].shape)
            D = D / n.norm(D) * rng.uniform(0.5, 1.0) / L1[i]
            Y = list(X)
            Y[i] = X[i] + D
            lhs = n.dual(p.grad(Y)[i] - gX[i])
            assert lhs <= (L0[i] + L1[i] * n.dual(gX[i])) * n.norm(D) * (1 + CERT_RTOL)


def test_l0l1_radial_is_not_globally_smooth():
    """The (e−1) factor is needed: one long radial step beyond 1/a breaks the inequality."""
    p = L0L1Radial([1.0], [1.0], [(1,)], x0=[np.array([0.0])])
    X, Y = [np.array([0.0])], [np.array([8.0])]
    lhs = abs(p.grad(Y)[0][0] - p.grad(X)[0][0])
    assert lhs > (p.constants.L0[0] + 0) * 8.0  # sinh(8) ≫ (e−1)·8


def test_stochastic_variance_is_certified():
    base = SeparableQuadratic([1.0, 2.0], [(3, 4), (2, 1)], ["spectral", "linf"], seed=0)
    p = Stochastic(base, [0.5, 0.1])
    assert p.constants.sigma.tolist() == pytest.approx([0.5 * math.sqrt(12), 0.1 * math.sqrt(2)])
    assert p.constants.rho.tolist() == pytest.approx([math.sqrt(3), math.sqrt(2)])
    rng = np.random.default_rng(0)
    g = base.grad(p.x0)
    n = 20000
    sq = np.zeros(2)
    for _ in range(n):
        G = p.stochastic_grad(p.x0, rng)
        sq += [float(np.sum((Gi - gi) ** 2)) for Gi, gi in zip(G, g)]
    # the sample mean of a scaled chi-square with d dof has relative sd sqrt(2/(d n)) ≤ 0.007;
    # 5 standard deviations
    np.testing.assert_allclose(sq / n, p.constants.sigma**2, rtol=5 * math.sqrt(2 / (2 * n)))


def test_bad_problem_input():
    with pytest.raises(ValueError, match="curvature"):
        SeparableQuadratic([1.0, -1.0], [(2, 2), (2, 2)])
    with pytest.raises(ValueError, match="got 1 norms for 2 layers"):
        SeparableQuadratic([1.0, 1.0], [(2, 2), (2, 2)], ["spectral"])
    with pytest.raises(ValueError, match="positive semidefinite"):
        CoupledQuadratic([(1,), (1,)], H=[[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="certifies Frobenius or spectral"):
        L0L1Radial([1.0], [1.0], [(2, 2)], "linf")
    with pytest.raises(ValueError, match="at least two layers"):
        DeepLinear([3, 2])
