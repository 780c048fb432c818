"""Exact worst-case certificates (verification/pep/certificate.py): the layer PEP against PEPit, its closed
form and the full sampling tree; T1's bound never exceeded and attained where the theory says; the
witness run through Drop-Muon; the coupled relaxation; optimal sampling for the exact worst case;
bad input; the CLI."""

import json
import warnings

import numpy as np
import pytest

from dropmuon.figures.cli import main
from dropmuon.theory import RPT, Independent
from dropmuon.verification.pep.certificate import (
    ATTAIN_RTOL,
    SmoothInterpolant,
    certified_iterations,
    certify,
    closed_form_factor,
    compare_optimal_sampling,
    layer_worst_case,
    tree_worst_case,
)

# Clarabel (interior point) stops at relative gap/feasibility 1e-8, or with status "inaccurate" at
# its reduced tolerances on these degenerate SDPs (optimal faces of rank one: no strict
# complementarity); the measured agreement with the closed form is 1e-9..8e-6 relative for K ≤ 10,
# so 2e-5 is the solver's accuracy with a small margin.
SDP_RTOL = 2e-5
# SCS (first order) is accurate to ~1e-4 relative at its default settings.
SCS_RTOL = 1e-3


@pytest.fixture(autouse=True)
def _quiet_solver():
    with warnings.catch_warnings():  # "solution may be inaccurate": the status field says so
        warnings.simplefilter("ignore", UserWarning)
        yield


def _pepit_gradient_descent(L, K, beta=1.0):
    """PEPit's own worst case of (1/K)Σ_{k<K}‖∇f(x_k)‖² for gradient descent with step 1/L (momentum
    β, warm start at g_0) on L-smooth nonconvex f, with f(x_0) − f* ≤ 1 and f(x_k) − f* ≥ ‖g_k‖²/(2L)."""
    from PEPit import PEP, Expression
    from PEPit.functions import SmoothFunction

    problem = PEP()
    func = problem.declare_function(SmoothFunction, L=L)
    fstar = Expression()
    x = problem.set_initial_point()
    g, f = func.oracle(x)
    f0, m, metric = f, g, 0
    for k in range(K + 1):
        problem.add_constraint(f - fstar >= g**2 / (2 * L))
        if k == K:
            break
        metric = metric + g**2 / K
        m = (1 - beta) * m + beta * g if k > 0 else g
        x = x - m / L
        g, f = func.oracle(x)
    problem.set_initial_condition(f0 - fstar <= 1)
    problem.set_performance_metric(metric)
    return problem.solve(verbose=0, wrapper="cvxpy", solver="CLARABEL")


@pytest.mark.parametrize("L,K,beta", [(2.0, 3, 1.0), (1.0, 5, 1.0), (1.0, 4, 0.5), (3.0, 3, 0.25)])
def test_single_layer_full_sampling_equals_pepit(L, K, beta):
    c = certify(L=[L], pi=[1.0], K=K, statement="rate", beta=beta, attain=False)
    ref = _pepit_gradient_descent(L, K, beta)
    assert c.worst_case == pytest.approx(ref, rel=SDP_RTOL)
    assert c.status in ("optimal", "inaccurate") and c.duality_gap < 1e-6


@pytest.mark.parametrize("pi", [1.0, 0.7, 0.3, 0.1])
@pytest.mark.parametrize("K", [1, 2, 5, 10])
def test_layer_pep_equals_closed_form(pi, K):
    r = layer_worst_case(pi, K, witness=False)
    assert r.value == pytest.approx(closed_form_factor(pi, K), rel=SDP_RTOL)
    # the dual bound (multiplier of the initial condition) agrees: a proof of the same value
    assert r.dual == pytest.approx(r.value, rel=SDP_RTOL)


@pytest.mark.parametrize("L,dist,K,statement,beta", [
    ([1.0], Independent([0.4]), 4, "rate", 1.0),
    ([1.0], Independent([0.4]), 4, "rate", 0.5),  # momentum frozen while unsampled: the reduction holds
    ([4.0, 1.0], RPT([0.5, 0.5]), 3, "rate", 1.0),
    ([1.0, 4.0], RPT([0.5, 0.5]), 3, "weighted", 1.0),
    ([2.0, 1.0], Independent([0.5, 0.8]), 2, "rate", 1.0),
    ([2.0, 1.0], Independent([0.5, 0.8]), 2, "weighted", 0.5),
])
def test_reduction_equals_full_sampling_tree(L, dist, K, statement, beta):
    tree = tree_worst_case(L, dist, K, statement=statement, beta=beta)
    pi = list(dist.inclusion)
    red = certify(L=L, pi=pi, K=K, statement=statement, beta=beta, attain=False)
    assert tree.value == pytest.approx(red.worst_case, rel=SDP_RTOL)


def test_rpt_and_independent_with_same_marginals_agree():
    a = certify(L=[3.0, 1.0, 2.0], start_probs=[0.3, 0.2, 0.5], K=4, attain=False)
    b = certify(L=[3.0, 1.0, 2.0], pi=[0.3, 0.5, 1.0], K=4, attain=False)
    assert a.worst_case == pytest.approx(b.worst_case, rel=SDP_RTOL)


@pytest.mark.parametrize("statement", ["weighted", "rate"])
def test_worst_case_never_exceeds_t1_bound(statement):
    rng = np.random.default_rng(0)
    for _ in range(4):
        b = int(rng.integers(1, 4))
        L = rng.uniform(0.5, 5, b)
        pi = rng.uniform(0.1, 1, b)
        K = int(rng.integers(1, 8))
        c = certify(L=L, pi=pi, K=K, statement=statement, attain=False)
        assert c.worst_case <= c.bound * (1 + SDP_RTOL), c
        assert c.worst_case == pytest.approx(c.closed_form, rel=SDP_RTOL)


def test_closed_form_never_exceeds_bound_and_is_tight_at_full_sampling():
    for pi in np.linspace(0.01, 1, 23):
        for K in (1, 2, 10, 100, 1000):
            # rate statement, one layer with L = 1: W(π, K) ≤ 2/(πK), with equality iff π = 1
            assert closed_form_factor(pi, K) <= 2 / (pi * K) * (1 + 1e-12)
    assert closed_form_factor(1.0, 7) == pytest.approx(2 / 7, rel=1e-15)


def test_t1_tight_instance_k1_reproduced():
    # T1's tight instance: f = Σ (L_i/2)‖X_i‖², full sampling, K = 1, equality in (weighted)
    c = certify(L=[1.0, 4.0, 2.0], pi=[1.0, 1.0, 1.0], K=1, statement="weighted", Delta0=3.0)
    assert c.ratio == pytest.approx(1.0, rel=SDP_RTOL)
    assert c.exact and c.attained == pytest.approx(c.bound, rel=ATTAIN_RTOL)
    # the witness is the quadratic: one step from x_0 lands on its minimum
    w = c.witness
    assert w["f"][1] == pytest.approx(0.0, abs=1e-4 * w["f"][0]) and abs(w["g"][1]) < 1e-4 * abs(w["g"][0])
    assert w["g"][0] == pytest.approx(w["L"] * (w["x"][0] - w["x"][1]), rel=1e-4)
    assert w["f"][0] == pytest.approx(3.0, rel=1e-4)  # all of Δ0 in the worst layer


@pytest.mark.parametrize("kw", [
    dict(L=[1.0, 4.0], pi=[0.5, 1.0], K=3, statement="rate"),
    dict(L=[4.0, 1.0, 2.0], start_probs=[0.5, 0.25, 0.25], K=5, statement="rate"),
    dict(L=[2.0], pi=[0.3], K=6, statement="weighted"),
    dict(L=[2.0], pi=[1.0], K=5, statement="rate", beta=0.5),
    dict(L=[1.0], pi=[0.5], K=20, statement="rate"),  # beyond exact enumeration: own-clock run
])
def test_witness_attains_the_worst_case(kw):
    c = certify(**kw)
    assert c.exact, c.message
    assert c.attained == pytest.approx(c.worst_case, rel=ATTAIN_RTOL)
    assert c.witness["Delta0_witness"] == pytest.approx(c.Delta0, rel=ATTAIN_RTOL)


def test_momentum_exceeds_t1_bound_which_does_not_cover_it():
    c = certify(L=[1.0], pi=[1.0], K=5, beta=0.5)
    assert not c.bound_covers and c.ratio > 1.5 and c.exact


def test_interpolant_is_smooth_and_interpolates():
    x, g, f = np.array([2.0, 0.5, -1.0]), np.array([1.0, -0.5, 0.2]), np.array([1.0, 0.2, 0.9])
    L = 3.0
    s = SmoothInterpolant(x, g, f, L)
    t = np.linspace(-10, 10, 20001)
    gr = s.grad(t)
    # L-smooth: gradient L-Lipschitz (finite differences on a fine grid)
    assert np.max(np.abs(np.diff(gr)) / np.diff(t)) <= L * (1 + 1e-9)
    # the gradient is the derivative of the value: a central difference is exact on a quadratic
    # piece and off by at most L·h where the curvature jumps (between −L and L) inside the stencil
    num = np.gradient(s.value(t), t)
    assert np.max(np.abs(num[1:-1] - gr[1:-1])) <= L * (t[1] - t[0])
    assert s.infimum() <= np.min(s.value(t)) + 1e-12


def test_coupled_relaxation_is_between_separable_and_bound():
    for L, dist, K in [([4.0, 1.0], RPT([0.5, 0.5]), 2), ([1.0, 2.0], RPT([0.3, 0.7]), 3)]:
        for st in ("weighted", "rate"):
            sep = certify(L=L, start_probs=list(dist.start_probs), K=K, statement=st, attain=False)
            cpl = tree_worst_case(L, dist, K, statement=st, coupled=True)
            assert sep.worst_case * (1 - SDP_RTOL) <= cpl.value <= sep.bound * (1 + SDP_RTOL)


def test_optimal_sampling_bound_part_is_t1_closed_form():
    # README: L = (1, 4, 2), unit costs: p = (L_1, L_2 − L_1, 0)/L_max = (0.25, 0.75, 0)
    r = compare_optimal_sampling([1.0, 4.0, 2.0], [1.0, 1.0, 1.0], 0.1)
    assert np.allclose(r.bound_start_probs, [0.25, 0.75, 0.0], atol=1e-12)
    assert r.bound_K == 800 and r.bound_cost == pytest.approx(1800.0, rel=1e-12)


def test_optimal_sampling_for_exact_worst_case_is_cheaper_and_certified():
    r = compare_optimal_sampling([1.0, 4.0, 2.0], [1.0, 1.0, 1.0], 1.0)
    assert r.exact_cost <= r.bound_certified_cost * (1 + 1e-12) <= r.bound_cost * (1 + 1e-12)
    assert not r.same_distribution and r.saving > 0.01
    # the certified K of the exact optimum, checked by the SDP: K reaches ε², K − 1 does not
    at = certify(L=[1.0, 4.0, 2.0], pi=r.exact_pi, K=r.exact_K, attain=False)
    before = certify(L=[1.0, 4.0, 2.0], pi=r.exact_pi, K=r.exact_K - 1, attain=False)
    assert at.worst_case <= 1.0 * (1 + SDP_RTOL) and before.worst_case > 1.0
    assert certified_iterations([1.0, 4.0, 2.0], r.exact_pi, 1.0) == r.exact_K


@pytest.mark.parametrize("kw,match", [
    (dict(L=[1.0, 2.0], pi=[0.0, 1.0], K=3), r"pi_1 = 0.0"),
    (dict(L=[1.0, 2.0], start_probs=[0.0, 1.0], K=3), r"pi_1 = 0.0"),
    (dict(L=[1.0], pi=[1.0], K=0), r"K must be a positive integer; got K = 0"),
    (dict(L=[1.0], pi=[1.0], K=2, beta=0.0), r"beta = 0"),
    (dict(L=[-1.0], pi=[1.0], K=2), r"L"),
    (dict(L=[1.0], K=2), r"give the sampling"),
    (dict(L=[1.0], pi=[1.0], start_probs=[1.0], K=2), r"not both"),
    (dict(L=[1.0], pi=[1.0], K=2, statement="min"), r"statement = 'min'"),
    (dict(L=[1.0], pi=[1.0], K=2, solver="MOSEK"), r"solver = 'MOSEK'"),
])
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        certify(**kw)


@pytest.mark.parametrize("theorem", ["smooth-constant-radius", "l0l1-deterministic", "smooth-stochastic",
                                     "inexact-constant-radius"])
def test_nonlinear_step_theorems_are_refused_naming_what_is_supported(theorem):
    with pytest.raises(ValueError, match=r"supports only smooth-deterministic") as e:
        certify(theorem, L=[1.0], pi=[1.0], K=2)
    assert theorem in str(e.value) and "\n" not in str(e.value)


def test_cli_json_and_errors(capsys):
    assert main(["certify", "--L", "1,4", "--pi", "0.5,1", "--K", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exact"] is True and out["ratio"] == pytest.approx(1.0, rel=SDP_RTOL)
    assert out["worst_case"] == pytest.approx(out["bound"], rel=SDP_RTOL)
    assert main(["certify", "--L", "1,4", "--pi", "0,1", "--K", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pi_1 = 0.0" in err
    assert main(["certify", "--theorem", "smooth-constant-radius", "--L", "1", "--pi", "1", "--K", "3"]) == 2
    assert "supports only smooth-deterministic" in capsys.readouterr().err
    assert main(["certify", "--L", "1", "--pi", "1", "--K", "0"]) == 2


def test_scs_agrees():
    c = certify(L=[1.0, 2.0], pi=[0.5, 1.0], K=4, solver="SCS", attain=False)
    assert c.worst_case == pytest.approx(c.closed_form, rel=SCS_RTOL)
