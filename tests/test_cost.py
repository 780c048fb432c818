"""Cost model (docs/sampling.md) and sampling distributions: closed formulas against brute force."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropmuon.theory import (
    RPT,
    CompactSubsets,
    CostModel,
    Independent,
    SubsetDistribution,
    smooth_deterministic,
    total_cost,
)
from dropmuon.theory.sampling import inclusion_from_start, start_from_inclusion

from .tolerances import COST_RTOL


@st.composite
def models(draw, max_layers=8):
    b = draw(st.integers(1, max_layers))
    f = st.floats(0.0, 10.0, allow_nan=False)
    F = draw(f)
    a, w, u = (np.array(draw(st.lists(f, min_size=b, max_size=b))) for _ in range(3))
    if F + a.sum() + w.sum() + u.sum() == 0:
        F = 1.0
    return CostModel(F, a, w, u)


@st.composite
def start_distributions(draw, b):
    x = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=b, max_size=b)))
    if x.sum() == 0:
        x[0] = 1.0
    return x / x.sum()


def brute_cost(model, S):
    """cost(S) straight from the definition, layer by layer."""
    if not S:
        return model.forward
    s = min(S)
    c = model.forward
    for j in range(1, model.nlayers + 1):
        if j > s:
            c += model.activation[j - 1]
        if j in S:
            c += model.weight[j - 1] + model.update[j - 1]
    return c


@given(data=st.data())
def test_rpt_expected_cost_equals_sum_over_start_indices(data):
    m = data.draw(models())
    p = data.draw(start_distributions(m.nlayers))
    brute = sum(p[s - 1] * brute_cost(m, set(range(s, m.nlayers + 1))) for s in range(1, m.nlayers + 1))
    assert m.expected_cost_rpt(p) == pytest.approx(brute, rel=COST_RTOL, abs=1e-12)
    assert m.expected_cost_inclusion(inclusion_from_start(p)) == pytest.approx(brute, rel=COST_RTOL, abs=1e-12)
    np.testing.assert_allclose(m.rpt_costs(), [m.rpt_cost(s) for s in range(1, m.nlayers + 1)],
                               rtol=COST_RTOL)


@given(data=st.data())
def test_independent_expected_cost_equals_enumeration(data):
    m = data.draw(models(max_layers=7))
    pi = np.array(data.draw(st.lists(st.floats(0.01, 1.0), min_size=m.nlayers, max_size=m.nlayers)))
    brute = 0.0
    for mask in itertools.product((0, 1), repeat=m.nlayers):
        S = {j + 1 for j in range(m.nlayers) if mask[j]}
        prob = np.prod([pi[j] if mask[j] else 1 - pi[j] for j in range(m.nlayers)])
        brute += prob * brute_cost(m, S)
    assert m.expected_cost_independent(pi) == pytest.approx(brute, rel=COST_RTOL, abs=1e-12)
    assert m.expected_cost(Independent(pi)) == pytest.approx(brute, rel=COST_RTOL, abs=1e-12)


@given(data=st.data())
def test_cost_of_a_set_and_subset_distribution(data):
    m = data.draw(models())
    b = m.nlayers
    sets = data.draw(st.lists(st.sets(st.integers(1, b)), min_size=1, max_size=6))
    q = np.array(data.draw(st.lists(st.floats(0.01, 1.0), min_size=len(sets), max_size=len(sets))))
    q /= q.sum()
    for S in sets:
        assert m.cost(S) == pytest.approx(brute_cost(m, S), rel=COST_RTOL, abs=1e-12)
    want = sum(qk * brute_cost(m, S) for S, qk in zip(sets, q))
    assert m.expected_cost_subsets(sets, q) == pytest.approx(want, rel=COST_RTOL, abs=1e-12)


@given(data=st.data())
def test_compact_subsets_cost_and_inclusion_equal_enumeration(data):
    m = data.draw(models(max_layers=7))
    b = m.nlayers
    rho = data.draw(start_distributions(b))
    theta = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=b, max_size=b)))
    d = CompactSubsets(rho, theta)
    outs = list(d.outcomes())
    assert sum(q for _, q in outs) == pytest.approx(1.0)
    brute = sum(q * brute_cost(m, set(S)) for S, q in outs)
    assert m.expected_cost(d) == pytest.approx(brute, rel=COST_RTOL, abs=1e-12)
    pi = np.zeros(b)
    for S, q in outs:
        pi[np.array(S) - 1] += q
    np.testing.assert_allclose(d.inclusion, pi, atol=1e-12)
    # RPT is the special case include_probs = 1
    np.testing.assert_allclose(CompactSubsets.from_rpt(rho).inclusion, RPT(rho).inclusion, atol=1e-12)
    assert m.expected_cost(CompactSubsets.from_rpt(rho)) == pytest.approx(m.expected_cost_rpt(rho), rel=COST_RTOL, abs=1e-12)


def test_lumped_linear_model():
    """cost({s..b}) = F + Σ_{j≥s} c_j, so E cost = c0 + Σ_j c_j π_j under RPT."""
    c = np.array([1.0, 2.0, 3.0, 4.0])
    m = CostModel.linear(c, forward=2.0)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    pi = np.cumsum(p)
    assert m.expected_cost_rpt(p) == pytest.approx(2.0 + c @ pi)
    assert m.full_cost == 12.0


def test_total_cost_is_iterations_times_expected_cost():
    """Hand-derived: L = (1,5,3,2), p = (0.2,0.8,0,0) → π = (0.2,1,1,1), max L/π = 5 (layers 1
    and 2), K = 2·Δ0·5/ε² = 5 with Δ0 = 0.5, ε = 1; E cost = 0.2+1+1+1 = 3.2; TC = 16 against
    20 for full updates (K = 5, cost 4)."""
    m = CostModel.linear([1, 1, 1, 1])
    L = [1, 5, 3, 2]
    assert total_cost(smooth_deterministic, 1.0, m, RPT([0.2, 0.8, 0, 0]), L=L, Delta0=0.5) == 16.0
    assert total_cost(smooth_deterministic, 1.0, m, RPT.full(4), L=L, Delta0=0.5) == 20.0


@given(data=st.data())
def test_sampling_round_trips_and_outcomes(data):
    b = data.draw(st.integers(1, 8))
    p = data.draw(start_distributions(b))
    d = RPT(p)
    np.testing.assert_allclose(start_from_inclusion(d.inclusion), p, atol=1e-12)
    outs = list(d.outcomes())
    assert sum(q for _, q in outs) == pytest.approx(1.0)
    pi = np.zeros(b)
    for S, q in outs:
        for j in S:
            pi[j - 1] += q
    np.testing.assert_allclose(pi, d.inclusion, atol=1e-12)
    ind = Independent(np.clip(d.inclusion, 0.01, 1.0))
    outs = list(ind.outcomes())
    assert sum(q for _, q in outs) == pytest.approx(1.0)


def test_sampling_frequencies_match_inclusion():
    """Monte Carlo with n = 20000 draws: each frequency is within 5 standard errors
    sqrt(π(1−π)/n) of π_i (a false alarm has probability < 1e-6 per layer)."""
    rng = np.random.default_rng(3)
    n = 20000
    for d in (RPT([0.1, 0.2, 0.3, 0.4]), Independent([0.3, 0.9, 0.5, 1.0]),
              SubsetDistribution(4, [(1, 4), (2, 3), (4,)], [0.5, 0.25, 0.25]),
              CompactSubsets([0.3, 0.3, 0.4, 0.0], [1.0, 0.2, 0.7, 0.5])):
        counts = np.zeros(4)
        for _ in range(n):
            for j in d.sample(rng):
                counts[j - 1] += 1
        pi = d.inclusion
        se = np.sqrt(pi * (1 - pi) / n)
        assert np.all(np.abs(counts / n - pi) <= 5 * se + 1e-12)


@pytest.mark.parametrize("call,msg", [
    (lambda: CostModel(-1, [1], [1], [1]), "forward .* got forward = -1.0"),
    (lambda: CostModel(0, [1, 2], [1], [1]), "different lengths"),
    (lambda: CostModel.linear([1, 0, 2]), "costs_2 = 0.0"),
    (lambda: CostModel.linear([1, float("nan")]), "costs_2 = nan"),
    (lambda: CostModel(0, [0], [0], [0]), "identically zero"),
    (lambda: RPT([0.5, 0.2]), "must sum to 1"),
    (lambda: RPT([1.5, -0.5]), "start_probs_2 = -0.5"),
    (lambda: start_from_inclusion([0.5, 0.2, 1.0]), "non-decreasing; got pi_1 = 0.5 > pi_2 = 0.2"),
    (lambda: start_from_inclusion([0.5, 0.7]), "pi_b = 1"),
    (lambda: SubsetDistribution(3, [(1, 4)], [1.0]), "outside 1..3"),
    (lambda: CostModel.linear([1, 2]).cost({3}), "outside 1..2"),
    (lambda: CostModel.linear([1, 2]).expected_cost(RPT.uniform(3)), "3 layers but the cost model has 2"),
])
def test_bad_input(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
