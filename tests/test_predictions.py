"""Item 5: the solver's predicted best distributions against measured cost-to-ε on quadratics
whose expected gradient norms are known in closed form (dropmuon.verification.synthetic.predictions)."""

import json
import math

import numpy as np
import pytest

from dropmuon.solvers import optimal_sampling
from dropmuon.theory import RPT, Independent
from dropmuon.verification.synthetic.dropmuon import Sampler, SharpStep, paths
from dropmuon.verification.synthetic.predictions import (
    MIN_PREDICTED_GAP,
    Profile,
    builtin_profiles,
    expected_squared_gradient,
    iterations_to_target,
    prediction_checks,
    prediction_problem,
    prediction_summary,
    random_profiles,
    run_predictions,
)
from dropmuon.verification.synthetic.problems import SeparableQuadratic

# Closed form against exact enumeration: the enumeration multiplies each entry by (1 − h/L) up to
# K = 6 times (one rounding each) and sums at most 64 paths × 3 layers × 9 entries of positive
# terms, the closed form raises a rounded factor to the k-th power: both are within ~1e-15
# relative of the truth, so 1e-12 separates rounding from any error in the formula (a misplaced
# square changes the value by O(h/L) ≥ 1e-2 relative here).
CLOSED_FORM_RTOL = 1e-12
# Two evaluations of the same predicted total cost (theory's K_max · E cost here, the solver's own
# total cost there): a handful of float operations each.
PREDICTED_RTOL = 1e-9
# Measured speed-ups on the built-in profiles agree with the predicted ones to 1.5% (the residual is
# ln(#tied bottleneck layers)/ln(1/ε²), see MIN_PREDICTED_GAP); 3% leaves margin without letting a
# wrong measurement (e.g. the sum form, off by 10-40% on these profiles) through.
AGREEMENT_RTOL = 0.03


def _enumerated(problem, dist, K):
    P = paths(problem, SharpStep(problem.constants.L), Sampler(dist), K, method="exact")
    return np.array([P.expectation((P.gnorms[:, k, :] ** 2).sum(axis=1)) for k in range(K)])


@pytest.mark.parametrize("dist", [RPT.uniform(2), RPT([0.25, 0.75]), RPT.full(2)], ids=["uniform", "rpt", "full"])
def test_closed_form_equals_exact_enumeration_rpt(dist):
    p = prediction_problem([1.0, 3.0], shape=(3, 3), seed=1)
    K = 6
    want = _enumerated(p, dist, K)
    got = expected_squared_gradient(p, dist.inclusion, np.arange(K))
    np.testing.assert_allclose(got, want, rtol=CLOSED_FORM_RTOL, atol=0)


def test_closed_form_equals_exact_enumeration_independent_and_random_x0():
    """Only the marginals π_i matter (independent sampling too), and any X^0, X* and curvatures."""
    rng = np.random.default_rng(3)
    shapes = [(2, 3), (3, 2), (1, 4)]
    H = [rng.uniform(0.1, 2.0, s) for s in shapes]
    p = SeparableQuadratic(H, shapes=shapes, norms="frobenius", xstar=[rng.standard_normal(s) for s in shapes], seed=3)
    dist = Independent([0.3, 0.6, 0.9])
    K = 4
    want = _enumerated(p, dist, K)
    got = expected_squared_gradient(p, dist.inclusion, np.arange(K))
    np.testing.assert_allclose(got, want, rtol=CLOSED_FORM_RTOL, atol=0)
    # the square sits inside the generating function: (1 − π h/L)^(2k) is measurably different
    L = p.constants.L
    wrong = sum(float(np.sum((h * (x0 - xs)) ** 2 * (1 - pi * h / Li) ** (2 * (K - 1))))
                for h, x0, xs, Li, pi in zip(p.H, p.x0, p.xstar, L, dist.inclusion))
    assert abs(wrong / want[-1] - 1) > 1e-3


def test_iterations_to_target_is_the_first_crossing():
    p = prediction_problem([1.0, 4.0, 2.0], seed=0)
    pi = np.array([0.25, 1.0, 1.0])
    target = 1e-6 * expected_squared_gradient(p, np.ones(3), 0)
    k = iterations_to_target(p, pi, target)
    assert expected_squared_gradient(p, pi, k) <= target < expected_squared_gradient(p, pi, k - 1)


def test_first_max_profile_full_is_the_optimum_with_equal_cost():
    """docs/sampling.md: full updates are the max-form RPT optimum iff L_1 = max_j L_j."""
    prof = Profile("first-max", (8, 4, 2, 1), (1, 1, 1, 1), forward=2.0)
    recs = {r.distribution: r for r in run_predictions([prof])}
    assert recs["optimal"].start_probs == (1.0, 0.0, 0.0, 0.0)
    assert recs["optimal"].pi == recs["full"].pi == (1.0, 1.0, 1.0, 1.0)
    assert recs["optimal"].measured_iterations == recs["full"].measured_iterations
    assert recs["optimal"].measured_total_cost == recs["full"].measured_total_cost
    assert recs["optimal"].predicted_total_cost == recs["full"].predicted_total_cost
    # uniform index sampling updates layer 1 only a quarter of the time: 4x the iterations
    ratio = recs["uniform"].measured_iterations / recs["optimal"].measured_iterations
    assert ratio == pytest.approx(4.0, rel=0.01)


def test_predicted_costs_match_the_solver():
    for prof in builtin_profiles()[:3]:
        recs = {r.distribution: r for r in run_predictions([prof])}
        r = optimal_sampling(list(prof.L), prof.cost_model)
        o = recs["optimal"].predicted_total_cost
        assert recs["full"].predicted_total_cost / o == pytest.approx(r.speedup_vs_full, rel=PREDICTED_RTOL)
        assert recs["uniform"].predicted_total_cost / o == pytest.approx(r.speedup_vs_uniform, rel=PREDICTED_RTOL)
        assert recs["optimal"].pi == pytest.approx(tuple(r.inclusion), rel=PREDICTED_RTOL)


def test_measured_speedups_reproduce_the_predicted_ones():
    rows = prediction_summary()
    assert [r["profile"] for r in rows] == [p.name for p in builtin_profiles()]
    for row in rows:
        for base in ("uniform", "full"):
            pred, meas = row[f"predicted_speedup_vs_{base}"], row[f"measured_speedup_vs_{base}"]
            assert pred >= 1.0 - 1e-12
            assert meas == pytest.approx(pred, rel=AGREEMENT_RTOL), (row["profile"], base)
    inc = rows[0]
    assert inc["predicted_speedup_vs_full"] == pytest.approx(1.5484, abs=1e-4)  # 6 / (2 + 15/8)


def test_measured_iterations_never_exceed_t1s_bound():
    for r in run_predictions():
        assert r.measured_iterations <= r.predicted_K


def test_relative_spread_reverses_the_ordering():
    """The documented negative result: with the same *relative* curvature spread in every layer the
    time to ε no longer scales with L_i/π_i and full updates beat the max-form optimum."""
    rows = prediction_summary(run_predictions(builtin_profiles()[:1], spread="relative"))
    assert rows[0]["predicted_speedup_vs_full"] > 1.5
    assert rows[0]["measured_speedup_vs_full"] < 0.5


@pytest.mark.parametrize("size,n", [("quick", 10), ("standard", 50)])
def test_prediction_checks_all_hold(size, n, quick_suite_by_task):
    # the quick ones as the session's quick suite ran them (prediction_checks(seed=0, size="quick"))
    rs = quick_suite_by_task["solver predictions"] if size == "quick" else prediction_checks(seed=0, size=size)
    assert len(rs) == n
    for r in rs:
        assert r.holds, r.note
        assert r.kind == "prediction" and r.method == "closed-form" and r.theorem == "smooth-deterministic"
        assert r.bound == 1.0 and r.ratio == r.observed <= 1.0
        assert "predicted" in r.note and "measured" in r.note
    tie = [r for r in rs if r.name.startswith("prediction first-max: optimal vs full")]
    assert tie[0].observed == 1.0


def test_random_profiles_respect_the_gap_and_the_seed():
    a, b = random_profiles(5, seed=7), random_profiles(5, seed=7)
    assert a == b
    for prof in a:
        r = optimal_sampling(list(prof.L), prof.cost_model)
        for s in (r.speedup_vs_full, r.speedup_vs_uniform):
            assert s == pytest.approx(1.0, abs=1e-12) or 1.0 / s <= 1.0 - MIN_PREDICTED_GAP


def test_records_are_json_ready(quick_suite_by_task):
    recs = run_predictions(builtin_profiles()[:1])
    json.dumps([r.as_dict() for r in recs])
    json.dumps([r.as_dict() for r in quick_suite_by_task["solver predictions"]])
    d = recs[0].as_dict()
    assert d["distribution"] == "optimal" and isinstance(d["pi"], list)
    assert math.isfinite(d["predicted_K"]) and d["measured_iterations"] > 0


@pytest.mark.parametrize("call,match", [
    (lambda: Profile("x", (1, 2), (1,)), "2 smoothness constants but 1 costs"),
    (lambda: Profile("x", (1, -2), (1, 1)), "L_2"),
    (lambda: Profile("x", (1, 2), (1, 1), forward=-1), "forward"),
    (lambda: prediction_problem([1, 2], spread="sideways"), "spread = 'sideways'"),
    (lambda: prediction_problem([1, 2], floor=1.5), "floor = 1.5"),
    (lambda: expected_squared_gradient(prediction_problem([1, 2]), [1.0], 1), "one inclusion probability per layer"),
    (lambda: expected_squared_gradient(prediction_problem([1, 2]), [1.0, 1.0], -1), "k = "),
    (lambda: expected_squared_gradient(prediction_problem([1, 2]), [0.0, 1.0], 1), "pi_1"),
    (lambda: expected_squared_gradient(SeparableQuadratic([1.0], shapes=[(2, 2)], norms="spectral"), [1.0], 1),
     "Frobenius"),
    (lambda: iterations_to_target(prediction_problem([1, 2]), [1.0, 1.0], 0.0), "target"),
    (lambda: run_predictions(epsilon=2.0), "epsilon = 2.0"),
    (lambda: run_predictions([]), "profiles is empty"),
    (lambda: run_predictions([(1, 2)]), "Profile objects"),
    (lambda: prediction_checks(size="huge"), "size = 'huge'"),
    (lambda: random_profiles(3, min_gap=1.0), "min_gap = 1.0"),
])
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
