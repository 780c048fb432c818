"""Ready-made check instances (``dropmuon.verification.synthetic.instances``): T4's asymptotically tight
instance reaches its closed-form ratio and never exceeds the bound; T3's noise- and
momentum-dominated instances hold at their Monte Carlo confidence, and their noise and momentum
terms are most of the bound."""

import math

import numpy as np
import pytest

from dropmuon.theory import get_theorem
from dropmuon.verification.synthetic.checks import BOUND_RTOL, TIGHT_MIN
from dropmuon.verification.synthetic.instances import (
    EXACT_MAX_K,
    GradientAlignedNoise,
    SparseSpikeNoise,
    t3_noise_dominated_instances,
    t4_tight_instance,
    t4_tight_ratio,
)
from dropmuon.verification.synthetic.problems import SeparableQuadratic

# observed and bound are float64 sums of at most a few hundred terms: they agree with the closed form
# to ~1e-14 relative; 1e-10 separates rounding from a wrong formula
RATIO_RTOL = 1e-10


def predicted(delta, K):
    """(1−δ)²(K+1)/(K(1−δ)² + (1+δ)²), written out from the instance: |g_k| = L(K−k)(1−δ)η,
    Δ0 = (L/2)K²(1−δ)²η², B = Δ0/(Kη) + η(1+δ)²L/2, rate bound B/(1−δ)."""
    L, eta = 1.7, 0.3  # the ratio must not depend on them
    lhs = sum(L * (K - k) * (1 - delta) * eta for k in range(K)) / K
    d0 = L / 2 * (K * (1 - delta) * eta) ** 2
    B = d0 / (K * eta) + eta / 2 * (1 + delta) ** 2 * L
    return lhs / (B / (1 - delta))


# -- T4 ----------------------------------------------------------------------------------------

def test_t4_tight_instance_is_the_stated_problem():
    inst = t4_tight_instance(0.3, 400, L=2.0, eta=0.05)
    p = inst.problem
    assert p.shapes == ((1, 1),) and p.fstar == 0.0
    assert p.value([np.zeros((1, 1))]) == 0.0
    assert math.isclose(float(p.x0[0][0, 0]), 400 * 0.7 * 0.05, rel_tol=1e-15)
    assert math.isclose(p.delta0, 2.0 / 2 * (400 * 0.7 * 0.05) ** 2, rel_tol=1e-14)
    assert p.constants.L.tolist() == [2.0]
    assert inst.lmo.kind == "perturbed" and inst.lmo.mode == "shrink" and inst.lmo.delta == 0.3
    assert np.asarray(inst.distribution.inclusion).tolist() == [1.0]
    assert (inst.eta, inst.beta, inst.kind) == (0.05, 1.0, "tight")
    assert math.isclose(inst.predicted_ratio, predicted(0.3, 400), rel_tol=1e-12)


def test_t4_tight_instance_reaches_the_predicted_ratio():
    inst = t4_tight_instance(0.3, 400)
    rs = inst.check()
    assert {r.statement for r in rs} == {"weighted", "rate"}
    want = predicted(0.3, 400)
    assert want >= TIGHT_MIN
    for r in rs:
        assert r.holds and r.method == "exact" and r.kind == "tight", r
        assert math.isclose(r.ratio, want, rel_tol=RATIO_RTOL), (r.ratio, want)
        assert TIGHT_MIN <= r.ratio <= 1 + BOUND_RTOL, r
    assert round(rs[0].ratio, 3) == 0.994


def test_t4_tight_ratio_increases_towards_one_in_K():
    Ks = [1, 4, 20, 100, 400, 1000]
    ratios = []
    for K in Ks:
        r = t4_tight_instance(0.3, K).check(statements=["rate"], kind="bound")[0]
        assert r.holds and math.isclose(r.ratio, predicted(0.3, K), rel_tol=RATIO_RTOL), r
        assert r.method == ("exact" if K <= EXACT_MAX_K else "mc"), r  # one path either way
        ratios.append(r.ratio)
    assert all(a < b for a, b in zip(ratios, ratios[1:])), ratios
    assert ratios[-1] < 1 and 1 - ratios[-1] < 0.003
    # the gap closes like 1/K: 1 − ratio = ((1+δ)² − (1−δ)²)/(K(1−δ)² + (1+δ)²) = 4δ/(K(1−δ)² + (1+δ)²)
    for K, r in zip(Ks, ratios):
        assert math.isclose((1 - r) * (K * 0.49 + 1.69), 1.2, rel_tol=1e-9), (K, r)


@pytest.mark.parametrize("delta", [0.0, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("K", [1, 7, 60])
def test_t4_tight_instance_never_exceeds_the_bound(delta, K):
    inst = t4_tight_instance(delta, K, L=3.0, eta=0.2)
    assert math.isclose(t4_tight_ratio(delta, K), predicted(delta, K), rel_tol=1e-12)
    for r in inst.check(kind="bound"):
        assert r.holds and r.ratio <= 1 + BOUND_RTOL, r
        assert math.isclose(r.ratio, predicted(delta, K), rel_tol=RATIO_RTOL), r


def test_t4_tight_ratio_rejects_bad_input():
    with pytest.raises(ValueError, match="delta"):
        t4_tight_ratio(1.0, 10)
    with pytest.raises(ValueError, match="K"):
        t4_tight_instance(0.3, 0)


# -- T3 ----------------------------------------------------------------------------------------

T3 = get_theorem("smooth-stochastic")
INSTANCES = t3_noise_dominated_instances()


@pytest.fixture(scope="module")
def t3_results(quick_suite_by_task):
    """Each instance's check as the quick suite ran it — the suite's noise-dominated tasks are
    these instances' ``inst.check()`` at seed 0 — read from the session's run (conftest) instead
    of a second Monte Carlo run of the same paths."""
    return {inst.name: quick_suite_by_task[f"T3 noise-dominated {inst.name}"][0] for inst in INSTANCES}


def _bound(K, eta, beta, L, pi, sigma, rho, Delta0):
    """T3's right-hand side, written out: Δ0/(Kη) + ηS/2 + 2η(1−β)S/β + 2√(β/(2−β)) R + 2(1−β)R′/(Kβ)."""
    S, R, Rp = np.sum(L / pi), np.sum(rho * sigma), np.sum(rho * sigma / pi)
    return (Delta0 / (K * eta) + eta * S / 2 + 2 * eta * (1 - beta) * S / beta
            + 2 * math.sqrt(beta / (2 - beta)) * R + 2 * (1 - beta) * Rp / (K * beta))


@pytest.mark.parametrize("inst", INSTANCES, ids=[i.name for i in INSTANCES])
def test_t3_instance_holds_at_its_confidence(inst, t3_results):
    r = t3_results[inst.name]
    assert r.method == "mc" and r.n == inst.mc_paths and r.confidence == 0.999
    assert r.holds and r.ci_low <= r.bound, r
    assert 0 < r.ratio < 1, r
    # the bound check_theorem used is T3's expression at the instance's step
    c = inst.problem.constants
    pi = np.asarray(inst.distribution.inclusion, dtype=float)
    fixed = {k: v for k, v in (("eta", inst.eta), ("beta", inst.beta)) if v is not None}
    p = T3.evaluate(inst.K, L=c.L, pi=pi, sigma=c.sigma, rho=c.rho, Delta0=inst.problem.delta0, **fixed).parameters
    eta, beta = float(p["eta"]), float(p["beta"])
    if inst.beta is not None:
        assert beta == inst.beta
    assert beta < 1
    want = _bound(inst.K, eta, beta, c.L, pi, c.sigma, c.rho, inst.problem.delta0)
    assert math.isclose(r.bound, want, rel_tol=1e-9), (r.bound, want)


@pytest.mark.parametrize("inst", INSTANCES, ids=[i.name for i in INSTANCES])
def test_t3_noise_and_momentum_dominate_the_bound(inst):
    c = inst.problem.constants
    pi = np.asarray(inst.distribution.inclusion, dtype=float)
    kw = dict(L=c.L, pi=pi, rho=c.rho, Delta0=inst.problem.delta0)
    fixed = {k: v for k, v in (("eta", inst.eta), ("beta", inst.beta)) if v is not None}
    p = T3.evaluate(inst.K, sigma=c.sigma, **kw, **fixed).parameters
    eta, beta = float(p["eta"]), float(p["beta"])
    full = T3.evaluate(inst.K, sigma=c.sigma, **kw, eta=eta, beta=beta).value
    quiet = T3.evaluate(inst.K, sigma=np.zeros_like(c.sigma), **kw, eta=eta, beta=beta).value
    deterministic = T3.evaluate(inst.K, sigma=np.zeros_like(c.sigma), **kw, eta=eta, beta=1.0).value
    share = 1 - deterministic / full
    assert share > 0.6, (inst.name, share)
    assert full - quiet > 0 and quiet - deterministic > 0  # both noise and momentum contribute
    terms = inst.bound_terms()
    assert math.isclose(terms["share"], share, rel_tol=1e-9)
    assert math.isclose(terms["noise"] + terms["momentum"] + terms["deterministic"], full, rel_tol=1e-12)


def test_t3_instances_cover_partial_sampling_small_beta_and_non_gaussian_noise():
    pis = [np.asarray(i.distribution.inclusion) for i in INSTANCES]
    assert any(np.any(pi < 1) for pi in pis) and any(np.all(pi == 1) for pi in pis)
    assert any(i.beta is not None and i.beta <= 0.05 for i in INSTANCES)
    kinds = {type(i.problem).__name__ for i in INSTANCES}
    assert {"Stochastic", "GradientAlignedNoise", "SparseSpikeNoise"} <= kinds
    assert any(i.problem.norms[0].name == "spectral" for i in INSTANCES)


@pytest.mark.parametrize("make", [lambda b: GradientAlignedNoise(b, [0.7, 2.0]),
                                  lambda b: SparseSpikeNoise(b, [0.3, 0.5], p=0.1)],
                         ids=["aligned", "spikes"])
def test_noise_models_are_unbiased_with_the_certified_variance(make):
    base = SeparableQuadratic([1.0, 2.0], [(2, 2), (1, 3)], seed=3)
    prob = make(base)
    X = prob.x0
    g = prob.grad(X)
    rng = np.random.default_rng(0)
    n = 20000
    noise = [np.stack([G[i] - g[i] for G in (prob.stochastic_grad(X, rng) for _ in range(n))]) for i in (0, 1)]
    sigma = prob.constants.sigma
    for i in (0, 1):
        var = np.mean(np.sum(noise[i] ** 2, axis=(1, 2)))
        assert abs(var / sigma[i] ** 2 - 1) < 0.1, (i, var, sigma[i] ** 2)
        # mean zero: within 5 standard errors, entry-wise
        se = sigma[i] / math.sqrt(n)
        assert np.all(np.abs(noise[i].mean(axis=0)) < 5 * se), noise[i].mean(axis=0)
    assert prob.constants.lipschitz and prob.constants.L.tolist() == base.constants.L.tolist()
    assert prob.stochastic_grad(X, rng, layers=[2])[0] is None
