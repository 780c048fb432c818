"""The numpy Drop-Muon: full sampling is full Muon bit for bit, frozen layers are untouched, the
step rules, momentum conventions and samplers are as documented."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropmuon.theory import RPT, CompactSubsets, Independent, SubsetDistribution
from dropmuon.theory.norms import get_norm, polar
from dropmuon.verification.synthetic.dropmuon import (
    LMO,
    AdaptiveRadius,
    ConstantRadius,
    EpochShift,
    SharpStep,
    as_sampler,
    beta_from_torch_momentum,
    count_paths,
    dropmuon_step,
    full_sampler,
    init_state,
    muon_step,
    paths,
    torch_momentum_from_beta,
    uniform_sampler,
)
from dropmuon.verification.synthetic.problems import SeparableQuadratic, Stochastic

from ..tolerances import SVD_RTOL

NORMS = ["frobenius", "spectral", "scaled-spectral", "linf"]


def _problem(seed, norms="spectral"):
    return SeparableQuadratic([1.0, 3.0, 2.0], [(3, 4), (2, 2), (4, 3)], norms, seed=seed)


@given(seed=st.integers(0, 10_000), beta=st.sampled_from([1.0, 0.5, 0.05]),
       norm=st.sampled_from(NORMS), rule=st.sampled_from(["sharp", "radius", "adaptive"]),
       lmo=st.sampled_from(["exact", "ns"]))
def test_full_sampling_is_muon_bit_for_bit(seed, beta, norm, rule, lmo):
    """Every layer sampled, every step: the Drop-Muon state equals the full method's exactly."""
    if lmo == "ns" and norm not in ("spectral", "scaled-spectral"):
        norm = "spectral"
    p = _problem(seed, norm)
    L = p.constants.L
    r = {"sharp": SharpStep(L), "radius": ConstantRadius(0.1, [1, 1, 1]),
         "adaptive": AdaptiveRadius(L, [0.5, 0.5, 0.5])}[rule]
    d = LMO() if lmo == "exact" else LMO("newton-schulz", preset="muon", steps=5)
    a = b = init_state(p.x0)
    for k in range(4):
        g = p.grad(a.X)
        S = full_sampler(3).sample(k, np.random.default_rng(k))
        a, _ = dropmuon_step(a, S, g, rule=r, norms=p.norms, beta=beta, lmo=d)
        b = muon_step(b, p.grad(b.X), rule=r, norms=p.norms, beta=beta, lmo=d)
        for x, y in zip(a.X + a.M, b.X + b.M):
            assert np.array_equal(x, y)


def test_frozen_layers_keep_weights_and_momentum_objects():
    p = _problem(0)
    s0 = init_state(p.x0, p.grad(p.x0))
    g = p.grad(s0.X, layers=[3])
    assert g[0] is None and g[1] is None  # unsampled gradients are never formed
    s1, radii = dropmuon_step(s0, (3,), g, rule=ConstantRadius(0.1, [1, 1, 1]), norms=p.norms, beta=0.5)
    assert s1.X[0] is s0.X[0] and s1.M[0] is s0.M[0] and s1.X[1] is s0.X[1] and s1.M[1] is s0.M[1]
    assert not np.array_equal(s1.X[2], s0.X[2]) and set(radii) == {3}
    # the sampled layer moved by exactly the radius in its own norm
    assert p.norms[2].norm(s1.X[2] - s0.X[2]) == pytest.approx(0.1, rel=SVD_RTOL)


def test_momentum_conventions():
    assert beta_from_torch_momentum(0.95) == pytest.approx(0.05)
    assert torch_momentum_from_beta(0.05) == pytest.approx(0.95)
    p = _problem(1)
    s0 = init_state(p.x0, p.grad(p.x0))
    g = [2 * x for x in p.grad(p.x0)]
    s1, _ = dropmuon_step(s0, (1, 2, 3), g, rule=ConstantRadius(0.1, [1, 1, 1]), norms=p.norms, beta=0.25)
    for m0, m1, gi in zip(s0.M, s1.M, g):  # β weighs the new gradient
        np.testing.assert_allclose(m1, 0.75 * m0 + 0.25 * gi, rtol=1e-15)
    with pytest.raises(ValueError, match="momentum = 1.0"):
        beta_from_torch_momentum(1.0)


def test_step_rules_match_theory():
    N = get_norm("spectral")
    M = np.diag([3.0, 1.0])
    # T1: radius ‖M‖_*/L is the sharp step -M♯/L
    t = SharpStep([2.0]).radius(0, N.dual(M))
    np.testing.assert_allclose(N.lmo(M, t), -N.sharp(M) / 2.0, rtol=SVD_RTOL)
    assert ConstantRadius(0.2, [0.5]).radius(0, 7.0) == pytest.approx(0.4)
    assert AdaptiveRadius([1.0], [2.0]).radius(0, 4.0) == pytest.approx(4.0 / 9.0)
    assert AdaptiveRadius([1.0], [2.0]).radius(0, 0.0) == 0.0


def test_newton_schulz_direction_is_close_to_exact():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((5, 8))
    for name in ("spectral", "scaled-spectral"):
        N = get_norm(name)
        exact = N.lmo(M, 0.3)
        ns = LMO("newton-schulz", preset="polar-express", steps=10).direction(M, N, 0.3)
        # ten Polar Express steps converge to rounding on a well-conditioned 5 × 8 matrix
        np.testing.assert_allclose(ns, exact, atol=1e-6)
        np.testing.assert_allclose(polar(M) * (-0.3 / (N.norm(polar(M)))), exact, rtol=SVD_RTOL)


@pytest.mark.parametrize("mode,expected", [("shrink", 0.7), ("overshoot", 1.3)])
def test_perturbed_directions(mode, expected):
    N = get_norm("spectral")
    M = np.diag([2.0, 1.0])
    D = LMO("perturbed", delta=0.3, mode=mode).direction(M, N, 0.5)
    assert N.norm(D) == pytest.approx(0.5 * expected)
    E = LMO("perturbed", delta=0.3, mode="random").direction(M, N, 0.5, np.random.default_rng(0))
    assert N.norm(E - N.lmo(M, 0.5)) == pytest.approx(0.3 * 0.5)  # exactly δt away from the LMO


def test_samplers_and_epoch_shift():
    assert as_sampler(RPT.uniform(3)).inclusion.tolist() == pytest.approx([1 / 3, 2 / 3, 1])
    assert uniform_sampler(2).outcomes(0) == [((1, 2), 0.5), ((2,), 0.5)]
    sched = EpochShift((RPT([1.0, 0, 0]), RPT([0, 0, 1.0])), epoch_length=2)
    rng = np.random.default_rng(0)
    assert [sched.sample(k, rng) for k in range(6)] == [(1, 2, 3)] * 2 + [(3,)] * 2 + [(1, 2, 3)] * 2
    assert sched.inclusion.tolist() == [0.5, 0.5, 1.0] and not sched.iid
    for d in (Independent([0.5, 1.0]), CompactSubsets([0.5, 0.5], [1.0, 0.5]),
              SubsetDistribution(2, [(1,), (2,)], [0.5, 0.5])):
        assert count_paths(as_sampler(d), 3) == len(list(d.outcomes())) ** 3
    with pytest.raises(ValueError, match="different numbers of layers"):
        EpochShift((RPT.uniform(2), RPT.uniform(3)), 1)


def test_exact_paths_against_monte_carlo():
    """The enumerated expectation lies inside the Monte Carlo estimate's 99.9% interval."""
    p = _problem(2)
    rule = ConstantRadius(0.2, RPT.uniform(3).inclusion)
    ex = paths(p, rule, RPT.uniform(3), 4, method="exact")
    mc = paths(p, rule, RPT.uniform(3), 4, method="mc", mc_paths=3000, seed=1)
    assert ex.n == 3**4 and ex.weights.sum() == pytest.approx(1.0)
    f_ex = ex.expectation(ex.fvals[:, -1])
    vals = mc.fvals[:, -1]
    half = 3.3 * vals.std(ddof=1) / np.sqrt(mc.n)  # 3.3 standard errors: two-sided 99.9%
    assert abs(vals.mean() - f_ex) <= half


def test_paths_bad_input_and_divergence():
    p = _problem(3)
    with pytest.raises(ValueError, match="the sampler has 2 layers but problem"):
        paths(p, SharpStep(p.constants.L), RPT.uniform(2), 3)
    with pytest.raises(ValueError, match="exact enumeration needs deterministic"):
        paths(Stochastic(p, 0.1), ConstantRadius(0.1, [1, 1, 1]), RPT.full(3), 2, stochastic=True, method="exact")
    with pytest.raises(ValueError, match="unknown method"):
        paths(p, SharpStep(p.constants.L), RPT.full(3), 2, method="fast")
    # a step size a million times too long: the run overflows and is reported, not raised
    bad = paths(p, SharpStep(p.constants.L * 1e-6), RPT.full(3), 200, method="exact")
    assert bad.diverged.all() and np.isinf(bad.fvals[0, -1])


def test_problem_iterate_validation():
    p = _problem(4)
    X = [x.copy() for x in p.x0]
    X[1][0, 0] = np.nan
    with pytest.raises(ValueError, match="layer 2 has a non-finite entry"):
        p.value(X)
    with pytest.raises(ValueError, match="has 3 layers; got an iterate with 2"):
        p.grad(X[:2])
    with pytest.raises(ValueError, match="layer 4 is outside 1..3"):
        p.grad(p.x0, layers=[4])
