"""``paths(method="separable")``: exact per-layer expectations of a separable problem under i.i.d.
sampling, from one run of ``K`` steps, against the joint enumeration of every sampling path."""

import numpy as np
import pytest

from dropmuon.theory import RPT, Independent
from dropmuon.verification.synthetic.dropmuon import (
    LMO,
    AdaptiveRadius,
    ConstantRadius,
    EpochShift,
    SharpStep,
    paths,
)
from dropmuon.verification.synthetic.problems import (
    CoupledQuadratic,
    DeepLinear,
    L0L1Radial,
    Problem,
    SeparableQuadratic,
    Stochastic,
)

# Both methods produce the per-state gradient norms by the very same floating-point operations
# (checked bit for bit below), so they differ only in how the probabilities are combined: the
# joint run sums at most 4^6 = 4096 path probabilities (products of ≤ 6 factors, then
# normalised), the separable run uses Pascal's rule for the binomial weights (≤ 2K ulps per
# entry). All terms are non-negative, so either side is within ~10^-13 relative (measured:
# ≤ 3·10^-14); 1e-12 leaves a margin while any modelling error (a wrong π, a wrong state) is O(1).
SEPARABLE_RTOL = 1e-12

# the Binomial weights summed over m at each (k, i): ≤ 2K ulps of rounding, K = 60
WEIGHT_SUM_ATOL = 1e-13

SHAPES = {2: [(2, 3), (3, 2)], 3: [(3, 4), (2, 2), (4, 3)]}  # wide, tall (and square)


def _samplers(b):
    """(sampler, K): K as large as the joint enumeration comfortably allows."""
    if b == 2:
        return [(RPT.uniform(2), 6), (RPT([0.3, 0.7]), 6), (Independent([0.4, 0.8]), 5)]
    return [(RPT.uniform(3), 6), (RPT([0.0, 0.6, 0.4]), 6), (Independent([0.3, 0.7, 1.0]), 5)]


def _rules(problem, dist, norm):
    out = [("sharp", SharpStep(problem.constants.L), 1.0, LMO()),
           ("radius+momentum", ConstantRadius(0.15, np.maximum(dist.inclusion, 0.1)), 0.5, LMO())]
    if norm == "spectral":
        out.append(("newton-schulz", ConstantRadius(0.15, np.maximum(dist.inclusion, 0.1)), 0.5,
                    LMO("newton-schulz", preset="muon", steps=5)))
    else:
        out.append(("perturbed-shrink", ConstantRadius(0.15, np.maximum(dist.inclusion, 0.1)), 0.7,
                    LMO("perturbed", delta=0.3, mode="shrink")))
    return out


def _relerr(a, c):
    a, c = np.asarray(a), np.asarray(c)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(c))
    return float(np.max(np.abs(a - c) / np.where(a == 0, 1.0, np.abs(a))))


def _compare(problem, rule, dist, K, beta, lmo):
    ex = paths(problem, rule, dist, K, beta=beta, lmo=lmo, method="exact")
    se = paths(problem, rule, dist, K, beta=beta, lmo=lmo)
    assert se.method == "separable" and ex.method == "exact"
    assert se.gnorms.shape == (K + 1, K, problem.nlayers) == se.layer_weights.shape
    for h in (lambda g: g**2, lambda g: g):
        a, c = ex.layer_step_expectation(h(ex.gnorms)), se.layer_step_expectation(h(se.gnorms))
        assert a.shape == c.shape == (K, problem.nlayers)
        assert _relerr(a, c) <= SEPARABLE_RTOL
    assert _relerr(ex.expected_fvals(), se.fvals) <= SEPARABLE_RTOL
    assert np.array_equal(se.fvals, se.expected_fvals())
    # δ met in reachable states: the same states, hence the same numbers, bit for bit
    assert np.array_equal(ex.delta_max, se.delta_max)
    assert not se.diverged.any() and not ex.diverged.any()
    assert not se.left_region.any() and not ex.left_region.any()
    return ex, se


@pytest.mark.parametrize("b", [2, 3])
@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_separable_matches_joint_enumeration_quadratic(b, norm):
    """E[g²] and E[g] per step and layer, and E f(X^k), equal the enumeration over every path."""
    p = SeparableQuadratic([1.0, 3.0, 2.0][:b], SHAPES[b], norm, seed=b)
    for dist, K in _samplers(b):
        for name, rule, beta, lmo in _rules(p, dist, norm):
            _, se = _compare(p, rule, dist, K, beta, lmo)
            never = np.asarray(dist.inclusion) == 0  # such a layer stays in state 0
            assert np.all(se.gnorms[:, :, never] == se.gnorms[0, 0, never])
            if name == "newton-schulz":
                pi = dist.inclusion
                assert np.all((se.delta_max > 0) == (pi > 0)), name  # a never-sampled layer meets no δ


@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_separable_matches_joint_enumeration_l0l1_adaptive(norm):
    """Gluon's adaptive radius on the (L0, L1) problem, which is separable too."""
    p = L0L1Radial([1.0, 0.5, 2.0], [1.0, 2.0, 0.5], SHAPES[3], norm, x0_scale=2.0, seed=1)
    assert p.separable
    rule = AdaptiveRadius(p.constants.L0, p.constants.L1)
    for dist, K in _samplers(3):
        for beta in (1.0, 0.5):
            _compare(p, rule, dist, K, beta, LMO())


def test_separable_states_are_the_full_runs_bit_for_bit():
    """Layer i's state m is its iterate after m own updates: with every layer sampled every step
    (one path) the state at step k is state k, whatever sampler the separable run was given."""
    p = SeparableQuadratic([1.0, 3.0, 2.0], SHAPES[3], "spectral", seed=7)
    rule = ConstantRadius(0.2, [1.0, 1.0, 1.0])
    K = 8
    full = paths(p, rule, RPT.full(3), K, beta=0.5, method="exact")
    se = paths(p, rule, RPT.uniform(3), K, beta=0.5)
    assert full.n == 1 and se.method == "separable"
    for k in range(K):
        assert np.array_equal(se.gnorms[k, k], full.gnorms[0, k])
        assert np.array_equal(se.gnorms[k, 0], se.gnorms[k, K - 1])  # repeated over k


def test_auto_choice():
    sep = SeparableQuadratic([1.0, 2.0], SHAPES[2], "spectral", seed=0)
    coupled = CoupledQuadratic(SHAPES[2], "spectral", seed=0)
    rule = ConstantRadius(0.1, [0.5, 1.0])
    U = RPT.uniform(2)
    assert paths(sep, rule, U, 4).method == "separable"
    assert paths(sep, rule, Independent([0.5, 0.5]), 4).method == "separable"
    assert paths(Stochastic(sep, 0.0), rule, U, 4).method == "separable"  # deterministic run
    assert paths(coupled, rule, U, 4).method == "exact"
    assert paths(coupled, rule, U, 4, max_exact=8, mc_paths=3).method == "mc"
    assert paths(Stochastic(sep, 0.1), rule, U, 4, stochastic=True, mc_paths=3).method == "mc"
    assert paths(sep, rule, U, 4, lmo=LMO("perturbed", delta=0.2, mode="random"), mc_paths=3).method == "mc"
    shift = EpochShift((RPT.uniform(2), RPT.full(2)), 2)
    assert paths(sep, rule, shift, 4).method == "exact"
    # asked for explicitly, the old methods are still there
    assert paths(sep, rule, U, 3, method="exact").method == "exact"
    assert paths(sep, rule, U, 3, method="mc", mc_paths=3).method == "mc"


def test_long_separable_run_weights_are_distributions():
    """K = 60 (3^60 paths jointly): the binomial weights sum to 1 at every (k, i)."""
    p = SeparableQuadratic([1.0, 3.0, 2.0], SHAPES[3], "spectral", seed=3)
    dist = RPT([0.2, 0.5, 0.3])
    P = paths(p, ConstantRadius(0.05, dist.inclusion), dist, 60, beta=0.5,
              lmo=LMO("newton-schulz", preset="muon", steps=5))
    assert P.method == "separable" and P.n == 61
    W = P.layer_weights
    assert W.shape == (61, 60, 3) and np.all(W >= 0)
    assert np.max(np.abs(W.sum(axis=0) - 1.0)) <= WEIGHT_SUM_ATOL
    assert np.array_equal(W[:, :, 2], np.eye(61)[:, :60])  # π_3 = 1: exactly m = k
    assert np.all(np.triu(W[:, :, 0].T, 1) == 0)  # nothing at m > k
    E = P.layer_step_expectation(P.gnorms**2)
    assert E.shape == (60, 3) and np.all(np.isfinite(E)) and np.all(np.isfinite(P.fvals))
    assert P.fvals.shape == (61,) and P.fvals[-1] < P.fvals[0]
    assert np.all(P.delta_max > 0)


def test_per_path_api_and_h_shape():
    p = SeparableQuadratic([1.0, 2.0], SHAPES[2], seed=0)
    P = paths(p, SharpStep(p.constants.L), RPT.uniform(2), 4)
    with pytest.raises(ValueError, match="per-path totals are not defined for per-layer exact expectations"):
        P.expectation(P.gnorms.sum(axis=(1, 2)))
    assert np.all(np.isnan(P.weights)) and P.n == 5
    with pytest.raises(ValueError, match="h must have the shape of gnorms"):
        P.layer_step_expectation(np.ones((3, 4, 2)))
    # broadcastable h: a constant has expectation itself
    assert np.allclose(P.layer_step_expectation(np.ones((1, 1, 2))), 1.0, rtol=0, atol=WEIGHT_SUM_ATOL)
    ex = paths(p, SharpStep(p.constants.L), RPT.uniform(2), 4, method="exact")
    a = ex.layer_step_expectation(ex.gnorms)
    assert ex.layer_weights is None
    assert _relerr(a.mean(axis=0).sum(), ex.expectation(ex.gnorms.sum(axis=2).mean(axis=1))) <= SEPARABLE_RTOL


@pytest.mark.parametrize("make,kw,why", [
    (lambda: CoupledQuadratic(SHAPES[2], seed=0), {}, "is not separable"),
    (lambda: DeepLinear([2, 3, 2], seed=0), {}, "is not separable"),
    (lambda: Stochastic(SeparableQuadratic([1.0, 2.0], SHAPES[2]), 0.1), {"stochastic": True},
     "gradients are stochastic"),
    (lambda: SeparableQuadratic([1.0, 2.0], SHAPES[2]), {"sampler": EpochShift((RPT.uniform(2), RPT.full(2)), 2)},
     "not i.i.d."),
    (lambda: SeparableQuadratic([1.0, 2.0], SHAPES[2]), {"lmo": LMO("perturbed", delta=0.2, mode="random")},
     "random"),
])
def test_separable_bad_input(make, kw, why):
    p = make()
    sampler = kw.pop("sampler", RPT.uniform(2))
    with pytest.raises(ValueError, match=f"method='separable' does not apply: .*{why}") as e:
        paths(p, ConstantRadius(0.1, [0.5, 1.0]), sampler, 3, method="separable", **kw)
    assert "\n" not in str(e.value)


def test_separable_too_large():
    p = SeparableQuadratic([1.0, 2.0], SHAPES[2])
    with pytest.raises(ValueError, match="MAX_SEPARABLE_ENTRIES"):
        paths(p, ConstantRadius(0.1, [0.5, 1.0]), RPT.uniform(2), 5000, method="separable")
    # auto falls back to Monte Carlo rather than failing
    assert paths(p, ConstantRadius(0.1, [0.5, 1.0]), RPT.uniform(2), 3000, mc_paths=1).method == "mc"


def test_separable_flags():
    sep = SeparableQuadratic([1.0, 2.0], SHAPES[2], seed=0)
    l0l1 = L0L1Radial([1.0, 1.0], [1.0, 1.0], SHAPES[2])
    assert sep.separable and l0l1.separable
    assert not CoupledQuadratic(SHAPES[2]).separable and not DeepLinear([2, 3, 2]).separable
    assert Stochastic(sep, 0.1).separable and not Stochastic(CoupledQuadratic(SHAPES[2]), 0.1).separable

    class Mine(Problem):
        pass

    assert Mine.separable is False
    for q in (sep, l0l1, Stochastic(l0l1, 0.2)):
        X = [x + 0.3 for x in q.x0]
        assert q.layer_values(X).sum() == pytest.approx(q.value(X), rel=1e-14)
    with pytest.raises(NotImplementedError, match="not separable"):
        CoupledQuadratic(SHAPES[2]).layer_values(CoupledQuadratic(SHAPES[2]).x0)


class _Exponential(Problem):
    """A separable user problem without per-layer values, "certified" on ‖X_i‖_F ≤ R:
    ``f = Σ exp(s X)`` (pushes every entry to −∞: the iterates leave any ball) or, with
    ``cosh=True``, ``f = Σ cosh(s X)`` (a far too long step overflows it)."""

    separable = True

    def __init__(self, R, scale=1.0, cosh=False):
        self.norms = SeparableQuadratic([1.0, 1.0], SHAPES[2]).norms
        self.x0 = (np.full((2, 3), 0.1), np.full((3, 2), 0.2))
        self.R, self.s, self.cosh, self.name = R, scale, cosh, "exponential"

    def in_region(self, X):
        return all(np.linalg.norm(x) <= self.R for x in X)

    def _value(self, X):
        f = np.cosh if self.cosh else np.exp
        return sum(float(np.sum(f(self.s * x))) for x in X)

    def _grad(self, X, i):
        return self.s * (np.sinh if self.cosh else np.exp)(self.s * X[i])


def test_user_separable_problem_region_and_divergence():
    """No layer values: fvals is NaN but the gradient expectations are exact; leaving the region
    and diverging (states of positive probability) are reported as the joint run reports them."""
    dist = RPT([0.5, 0.5])
    for R, rule in ((10.0, ConstantRadius(0.1, [0.5, 1.0])), (0.8, ConstantRadius(0.2, [0.5, 1.0]))):
        p = _Exponential(R)
        ex = paths(p, rule, dist, 6, method="exact")
        se = paths(p, rule, dist, 6)
        assert se.method == "separable" and np.all(np.isnan(se.fvals))
        assert _relerr(ex.layer_step_expectation(ex.gnorms**2), se.layer_step_expectation(se.gnorms**2)) \
            <= SEPARABLE_RTOL
        assert ex.left_region.any() == se.left_region.any() == (R < 1)
        assert se.extra["left_region_layers"].shape == (7, 2)
    # a far too long step overflows the exponential: diverged, inf expectations, no NaN
    p = _Exponential(10.0, scale=20.0, cosh=True)
    ex = paths(p, SharpStep([1e-3, 1e-3]), dist, 5, method="exact")
    se = paths(p, SharpStep([1e-3, 1e-3]), dist, 5)
    assert ex.diverged.any() and se.diverged.any() and not se.diverged[0]
    E = se.layer_step_expectation(se.gnorms)
    assert not np.any(np.isnan(E)) and np.isinf(E[-1]).any() and np.all(np.isfinite(E[0]))


def test_separable_divergence_of_a_quadratic():
    """A step a million times too long: reported (not raised), the expectation of every later step
    infinite, the probabilities of the states that cannot occur yet do not produce NaN."""
    p = SeparableQuadratic([1.0, 3.0, 2.0], SHAPES[3], "spectral", seed=3)
    P = paths(p, SharpStep(p.constants.L * 1e-6), RPT.uniform(3), 200)
    assert P.method == "separable" and P.diverged.any() and np.isinf(P.fvals[-1])
    E = P.layer_step_expectation(P.gnorms**2)
    assert not np.any(np.isnan(E)) and np.all(np.isinf(E[-1]))
    bad = P.extra["first_bad_state"]
    assert np.all(bad <= 200) and np.array_equal(P.diverged, np.arange(201) >= bad.min())
