"""Property tests over random problems (well over 1000 examples in all): the methods agree, the
optimum is never beaten by full, uniform or random distributions, and it is invariant under
scaling the constants or the costs."""

import re

import numpy as np
import pytest
from dropmuon.solvers import optimal_sampling
from dropmuon.theory import RPT, CompactSubsets, CostModel, Independent, SubsetDistribution
from dropmuon.theory.sampling import inclusion_from_start
from hypothesis import given, settings
from hypothesis import strategies as st

from ..tolerances import CONVEX_RTOL, COST_RTOL, EXACT_RTOL, LOCAL_RTOL
from .strategies import l0l1_problems, problems


def _linear(model):
    return not np.any(model.activation > 0)


@settings(max_examples=300)
@given(problems(max_layers=8), st.sampled_from(["rpt", "independent", "subsets"]))
def test_max_closed_form_equals_lp(prob, family):
    """300 examples: closed form = HiGHS LP for the max-form (independent LP needs a = 0)."""
    L, model = prob
    if family == "independent" and not _linear(model):
        model = CostModel(model.forward, np.zeros(model.nlayers), model.weight, model.update)
    cf = optimal_sampling(L, model, family=family, method="closed-form")
    lp = optimal_sampling(L, model, family=family, method="lp")
    assert lp.total_cost == pytest.approx(cf.total_cost, rel=EXACT_RTOL)
    assert cf.total_cost <= lp.total_cost * (1 + EXACT_RTOL)


@settings(max_examples=100)
@given(problems(max_layers=6), st.sampled_from(["rpt", "subsets"]))
def test_max_closed_form_equals_cvxpy(prob, family):
    L, model = prob
    cf = optimal_sampling(L, model, family=family, method="closed-form")
    cv = optimal_sampling(L, model, family=family, method="cvxpy")
    assert cv.total_cost == pytest.approx(cf.total_cost, rel=CONVEX_RTOL)


@settings(max_examples=100)
@given(problems(max_layers=7))
def test_compact_subsets_lp_equals_enumeration(prob):
    """The O(b) compact LP and the LP over all 2^b − 1 subsets have the same optimum."""
    L, model = prob
    compact = optimal_sampling(L, model, family="subsets", method="lp")
    enum = optimal_sampling(L, model, family="subsets", method="enumerate")
    assert enum.total_cost == pytest.approx(compact.total_cost, rel=EXACT_RTOL)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compact_subsets_lp_equals_enumeration_b12(seed):
    rng = np.random.default_rng(seed)
    b = 12
    model = CostModel(rng.uniform(0, 3), rng.uniform(0, 2, b), rng.uniform(0.1, 2, b), rng.uniform(0, 1, b))
    L = rng.uniform(0.1, 10, b)
    cf = optimal_sampling(L, model, family="subsets", method="closed-form")
    enum = optimal_sampling(L, model, family="subsets", method="enumerate")
    assert enum.total_cost == pytest.approx(cf.total_cost, rel=EXACT_RTOL)
    assert len(cf.sets) == len(cf.set_probs) and abs(cf.set_probs.sum() - 1) < 1e-12


@settings(max_examples=100)
@given(problems(max_layers=5), st.sampled_from(["rpt", "subsets", "independent"]))
def test_sum_form_methods_agree(prob, family):
    """Sum-form: cvxpy (convex) = scipy (multi-start local) = closed form where it exists."""
    L, model = prob
    if family == "independent" and not _linear(model):
        model = CostModel(model.forward, np.zeros(model.nlayers), model.weight, model.update)
    cv = optimal_sampling(L, model, family=family, objective="sum", method="cvxpy")
    sp = optimal_sampling(L, model, family=family, objective="sum", method="scipy")
    assert sp.total_cost == pytest.approx(cv.total_cost, rel=LOCAL_RTOL)
    if family == "independent":
        cf = optimal_sampling(L, model, family=family, objective="sum", method="closed-form")
        assert cv.total_cost == pytest.approx(cf.total_cost, rel=CONVEX_RTOL)
        assert cf.total_cost <= sp.total_cost * (1 + EXACT_RTOL)


def _random_distribution(rng, family, b):
    if family == "rpt":
        return RPT(rng.dirichlet(np.ones(b)) * 0.98 + 0.02 / b)
    if family == "independent":
        return Independent(rng.uniform(0.05, 1.0, b))
    return CompactSubsets(rng.dirichlet(np.ones(b)) * 0.98 + 0.02 / b, rng.uniform(0, 1, b))


@settings(max_examples=200)
@given(problems(max_layers=6), st.sampled_from(["rpt", "independent", "subsets"]),
       st.sampled_from(["max", "sum"]), st.integers(0, 2**32 - 1))
def test_optimum_is_never_worse(prob, family, objective, seed):
    """The optimum costs no more than full updates, uniform index sampling, or 5 random
    distributions of its family."""
    L, model = prob
    r = optimal_sampling(L, model, family=family, objective=objective)
    tol = 1 + (EXACT_RTOL if r.method == "closed-form" else LOCAL_RTOL)
    assert r.total_cost <= r.full_total_cost * tol
    if family != "independent":  # uniform index sampling is an RPT, inside rpt and subsets
        assert r.total_cost <= r.uniform_total_cost * tol
    rng = np.random.default_rng(seed)
    for _ in range(5):
        d = _random_distribution(rng, family, len(L))
        other = optimal_sampling(L, model, family="fixed", objective=objective, distribution=d)
        assert r.total_cost <= other.total_cost * tol


@settings(max_examples=150)
@given(problems(max_layers=6), st.sampled_from(["rpt", "independent", "subsets"]),
       st.sampled_from(["max", "sum"]), st.floats(0.01, 100.0), st.floats(0.01, 100.0))
def test_invariance_under_scaling(prob, family, objective, alpha, gamma):
    """Scaling L by α and every cost by γ scales the total cost by αγ and leaves the optimal
    distribution unchanged (compared where the optimum is unique)."""
    L, model = prob
    if objective == "sum" and family == "independent" and not _linear(model):
        return  # that combination uses the local method; covered by test_sum_form_methods_agree
    r = optimal_sampling(L, model, family=family, objective=objective)
    scaled = CostModel(gamma * model.forward, gamma * model.activation, gamma * model.weight, gamma * model.update)
    s = optimal_sampling(alpha * np.asarray(L), scaled, family=family, objective=objective)
    rtol = EXACT_RTOL if r.method == "closed-form" else CONVEX_RTOL
    assert s.total_cost == pytest.approx(alpha * gamma * r.total_cost, rel=rtol)
    if r.method == "closed-form":
        np.testing.assert_allclose(s.inclusion, r.inclusion, rtol=1e-12, atol=1e-12)


def _round_simplex(p, n: int) -> np.ndarray:
    """The point of the simplex grid {0, 1/n, …, 1} nearest ``p`` in the largest-remainder sense:
    floor ``n·p``, then hand the missing units to the largest remainders."""
    x = np.asarray(p, dtype=float) * n
    k = np.floor(x).astype(int)
    k[np.argsort(k - x)[: n - int(k.sum())]] += 1
    return k / n


def _nearest_grid_point(dist, family: str, n: int):
    """The point of the brute-force grid (``solvers.numeric.solve_grid`` at resolution 1/n) nearest
    ``dist``: start (or lowest-layer) probabilities on the simplex grid, inclusion probabilities
    on {1/n, …, 1} (independent) or {0, 1/n, …, 1} (subsets)."""
    if family == "independent":
        return Independent(np.clip(np.round(np.asarray(dist.pi) * n), 1, n) / n)
    if family == "rpt":
        return RPT(_round_simplex(dist.start_probs, n))
    t = np.round(np.asarray(dist.include_probs) * n) / n
    t[0] = 0.0
    return CompactSubsets(_round_simplex(dist.lowest_probs, n), t)


@settings(max_examples=60)
@given(l0l1_problems(max_layers=3), st.sampled_from(["rpt", "independent", "subsets"]))
def test_l0l1_scipy_cvxpy_and_grid(prob, family):
    """l0l1 (T2, π-free K): cvxpy (convex reformulation) and scipy (multi-start) agree, and
    neither is beaten by the brute-force grid (b ≤ 3)."""
    kw, model = prob
    cv = optimal_sampling(None, model, family=family, objective="l0l1", method="cvxpy", **kw)
    sp = optimal_sampling(None, model, family=family, objective="l0l1", method="scipy", **kw)
    gr = optimal_sampling(None, model, family=family, objective="l0l1", method="grid", **kw)
    assert sp.total_cost == pytest.approx(cv.total_cost, rel=LOCAL_RTOL)
    assert cv.total_cost <= gr.total_cost * (1 + CONVEX_RTOL)
    assert sp.total_cost <= gr.total_cost * (1 + LOCAL_RTOL)
    # and the grid search works: it is within what its resolution allows of the optimum — no worse
    # than the grid point nearest the convex optimum (a fixed 1% was not a bound: at resolution 1/40
    # the subsets grid can sit 1.4% above it, found by hypothesis; the nearest point is on the grid)
    n = int(re.search(r"resolution 1/(\d+)", gr.message).group(1))
    near = optimal_sampling(None, model, family="fixed", objective="l0l1",
                            distribution=_nearest_grid_point(cv.distribution, family, n), **kw)
    assert gr.total_cost <= near.total_cost * (1 + COST_RTOL)


@settings(max_examples=40)
@given(l0l1_problems(max_layers=3, linear=False))
def test_l0l1_independent_with_activation_costs(prob):
    """With a > 0 independent sampling has no convex form: scipy against the grid."""
    kw, model = prob
    sp = optimal_sampling(None, model, family="independent", objective="l0l1", **kw)
    assert sp.method == ("scipy" if np.any(model.activation[1:] > 0) else "cvxpy")  # a_1 is never paid
    gr = optimal_sampling(None, model, family="independent", objective="l0l1", method="grid", **kw)
    assert sp.total_cost <= gr.total_cost * (1 + LOCAL_RTOL)


@settings(max_examples=100)
@given(st.lists(st.floats(0.1, 10.0), min_size=1, max_size=8), st.integers(0, 2**32 - 1))
def test_serial_sampling(L, seed):
    """Serial sampling (one layer per step, unit costs, F = 0): p ∝ L attains the optimum over all
    subset distributions in the max-form (Nesterov 2012; Richtárik–Takáč), and no other serial
    distribution beats it; in the sum-form p ∝ sqrt(L) does, with TC = (Σ sqrt L_i)²."""
    L = np.asarray(L)
    b = L.size
    costs = np.ones(b)
    singles = [(j + 1,) for j in range(b)]
    prop = SubsetDistribution(b, singles, L / L.sum())
    best = optimal_sampling(L, costs, family="subsets").total_cost
    mine = optimal_sampling(L, costs, family="fixed", distribution=prop).total_cost
    assert mine == pytest.approx(best, rel=EXACT_RTOL) and mine == pytest.approx(L.sum(), rel=1e-12)
    root = SubsetDistribution(b, singles, np.sqrt(L) / np.sqrt(L).sum())
    tc_root = optimal_sampling(L, costs, family="fixed", objective="sum", distribution=root).total_cost
    assert tc_root == pytest.approx(np.sqrt(L).sum() ** 2, rel=1e-12)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        q = rng.dirichlet(np.ones(b))
        d = SubsetDistribution(b, singles, q)
        assert optimal_sampling(L, costs, family="fixed", distribution=d).total_cost >= mine * (1 - 1e-12)
        assert optimal_sampling(L, costs, family="fixed", objective="sum", distribution=d).total_cost >= tc_root * (1 - 1e-12)


@settings(max_examples=100)
@given(problems(max_layers=6))
def test_rpt_inclusion_matches_start_probs(prob):
    L, model = prob
    r = optimal_sampling(L, model)
    np.testing.assert_allclose(r.inclusion, inclusion_from_start(r.start_probs), atol=1e-12)
    M = np.maximum.accumulate(L)
    np.testing.assert_allclose(r.inclusion, M / M[-1], rtol=1e-12)
