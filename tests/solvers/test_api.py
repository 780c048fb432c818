"""The front door's result object, full-network verdicts and bad input."""

import json

import numpy as np
import pytest

from dropmuon.solvers import STATUSES, full_network_optimal, optimal_sampling
from dropmuon.theory import RPT, CompactSubsets, CostModel, Independent


def test_result_fields_and_json():
    r = optimal_sampling([1, 5, 3, 2], [1, 1, 1, 1], family="subsets")
    d = r.to_dict()
    json.dumps(d, allow_nan=False)  # strict JSON: NaN include_probs became None
    for k in ("inclusion", "total_cost", "full_total_cost", "uniform_total_cost", "speedup_vs_full",
              "full_is_optimal", "status", "lowest_probs", "include_probs", "sets", "set_probs", "residuals"):
        assert k in d
    assert d["include_probs"][0] is None
    assert r.status in STATUSES
    assert r.speedup_vs_full == pytest.approx(r.full_total_cost / r.total_cost)
    assert isinstance(r.distribution, CompactSubsets)
    assert sum(r.set_probs) == pytest.approx(1.0)
    # the inclusion probabilities are those of the listed sets
    pi = np.zeros(4)
    for S, q in zip(r.sets, r.set_probs):
        pi[np.array(S) - 1] += q
    np.testing.assert_allclose(pi, r.inclusion, atol=1e-12)


def test_sets_are_not_listed_beyond_twelve_layers():
    r = optimal_sampling(np.arange(1, 14.0), np.ones(13), family="subsets")
    assert r.sets is None and r.lowest_probs is not None


def test_delta0_and_eps_give_iterations():
    """With Δ0 and ε, K is T1's iteration count (real-valued): 2·Δ0·max(L/π)/ε² = 2·10·5/0.01."""
    r = optimal_sampling([1, 5, 3, 2], [1, 1, 1, 1], Delta0=10, epsilon=0.1)
    assert r.iterations == pytest.approx(10000.0) and r.iterations_unit == "iterations"
    assert r.total_cost == pytest.approx(10000.0 * 3.2)


def test_fixed_family_evaluates():
    r = optimal_sampling([1, 5, 3, 2], [1, 1, 1, 1], family="fixed", distribution=RPT.uniform(4))
    assert r.status == "evaluated" and r.full_is_optimal is None
    assert r.total_cost == pytest.approx(25.0) and r.speedup_vs_full == pytest.approx(0.8)
    r = optimal_sampling([1, 5, 3, 2], [1, 1, 1, 1], family="fixed", distribution=Independent([0.2, 1, 0.6, 0.4]))
    assert r.total_cost == pytest.approx(11.0)


def test_full_network_verdicts_and_reasons():
    v = full_network_optimal([5, 1, 3, 2], [1, 1, 1, 1])
    assert v.optimal and "L_1 = 5" in v.reason
    v = full_network_optimal([1, 5, 3, 2], [1, 1, 1, 1])
    assert not v.optimal and "L_2 = 5 > L_1 = 1" in v.reason and "0.2" in v.reason
    assert v.speedup == pytest.approx(1.25)
    v = full_network_optimal([2, 2, 2], [1, 2, 3], family="independent")
    assert v.optimal and "same smoothness constant" in v.reason
    # sum-form RPT: full is optimal iff Σ_{i≥s} L_i/Σ L ≤ C_s/C_1 for every s. With L = (3,1,1)
    # and unit costs: shares (1, 0.4, 0.2) ≤ (1, 2/3, 1/3) → optimal.
    v = full_network_optimal([3, 1, 1], [1, 1, 1], objective="sum")
    assert v.optimal and "for every start s" in v.reason
    # L = (1,1,3): shares (1, 0.8, 0.6) vs (1, 2/3, 1/3) → not optimal; worst s = 3 (0.6 > 1/3)
    v = full_network_optimal([1, 1, 3], [1, 1, 1], objective="sum")
    assert not v.optimal and "starting at layer 3" in v.reason


@pytest.mark.parametrize("seed", range(20))
def test_sum_form_rpt_full_condition_matches_solver(seed):
    """The KKT condition for full updates (sum-form RPT) agrees with solving the problem."""
    rng = np.random.default_rng(seed)
    b = int(rng.integers(2, 6))
    L = rng.uniform(0.5, 5, b)
    c = rng.uniform(0.5, 3, b)
    F = rng.uniform(0, 2)
    v = full_network_optimal(L, c, objective="sum", forward_cost=F)
    C = CostModel.linear(c, forward=F).rpt_costs()
    share = np.cumsum(L[::-1])[::-1] / L.sum()
    cond = bool(np.all(share <= C / C[0] + 1e-9))
    assert v.optimal == cond


BAD = [
    (dict(L=[1, 2], costs=[1, 2, 3]), "L has 2 entries, costs has 3"),
    (dict(L=[1, -2], costs=[1, 2]), "L_2 = -2.0"),
    (dict(L=[1, float("nan")], costs=[1, 2]), "L_2 = nan"),
    (dict(L=[1, 2], costs=[1, 0]), "costs_2 = 0.0"),
    (dict(L=[1, 2], costs=[1, float("inf")]), "costs_2 = inf"),
    (dict(L=[], costs=[]), "is empty"),
    (dict(L=[1, 2], costs=[1, 2], family="bogus"), "unknown family 'bogus'"),
    (dict(L=[1, 2], costs=[1, 2], objective="bogus"), "unknown objective 'bogus'"),
    (dict(L=[1, 2], costs=[1, 2], method="bogus"), "unknown method 'bogus'"),
    (dict(L=[1, 2], costs=[1, 2], objective="l0l1"), "needs the \\(L0,L1\\) constants"),
    (dict(L=None, costs=[1, 2], objective="l0l1", L0=[0, 1], L1=[1, 1]), "needs Delta0 and epsilon"),
    (dict(L=[1] * 31, costs=[1] * 31, family="subsets", method="enumerate"), "b = 31 > 20"),
    (dict(L=[1, 2], costs=[1, 2], objective="sum", method="lp"), "'lp' solves the max-form"),
    (dict(L=[1, 2], costs=[1, 2], family="rpt", method="enumerate"), "applies to family 'subsets'"),
    (dict(L=[1, 2], costs=[1, 2], objective="sum", method="closed-form"), "no closed form"),
    (dict(L=[1, 2, 3, 4], costs=[1, 2, 3, 4], method="grid"), "b <= 3"),
    (dict(L=[1, 2], costs=[1, 2], family="fixed"), "needs distribution="),
    (dict(L=[1, 2], costs=[1, 2], family="fixed", distribution=RPT.uniform(3)), "3 layers"),
    (dict(L=[1, 2], costs=[1, 2], Delta0=1), "give both Delta0 and epsilon"),
    (dict(L=[1, 2], costs=[1, 2], seed=1.5), "seed = 1.5"),
    (dict(L=[1, 2], costs=CostModel(0, [1, 1], [1, 1], [0, 0]), family="independent", method="lp"),
     "non-linear expected cost"),
]


@pytest.mark.parametrize("kw,msg", BAD, ids=[m for _, m in BAD])
def test_bad_input(kw, msg):
    kw = dict(kw)
    with pytest.raises(ValueError, match=msg):
        optimal_sampling(kw.pop("L"), kw.pop("costs"), **kw)
