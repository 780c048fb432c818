"""Certificates that scale and are rigorous (verification/pep/): the banded chordal layer PEP against
the all-pairs one and the closed form, the exact dual check (sound: a perturbed dual fails it, and
whatever passes lies above an attained value), the bracket [lower, upper] at K = 200 and 1000, the
weight bounds from interval arithmetic, and the refusal of a K that cannot finish."""

import json
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropmuon.figures.cli import main
from dropmuon.verification.pep.certificate import _binomial_weights, certify, closed_form_factor, layer_worst_case
from dropmuon.verification.pep import banded, rigorous
from dropmuon.verification.pep.budget import check_fits, estimate_cost
from dropmuon.verification.pep.layer import layer_bracket, prove, quadratic_witness_value

# Clarabel (interior point) on the all-pairs cvxpy model agrees with the closed form to 1e-9..8e-6
# relative for K ≤ 10 (test_certify.py); the banded model below is compared with it at that accuracy.
SDP_RTOL = 2e-5


@pytest.fixture(autouse=True)
def _quiet_solver():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _proved(pi, K, beta, band):
    layer = banded.build(pi, K, beta, band)
    sol, rb, _ = prove(layer, rigorous.weight_upper_bounds(pi, K))
    return layer, sol, rb


@pytest.mark.parametrize("pi,K,beta", [(0.5, 6, 0.5), (1.0, 5, 0.25), (0.3, 8, 0.9)])
@pytest.mark.parametrize("band", [1, 2, None])
def test_banded_value_bounds_the_all_pairs_value(pi, K, beta, band):
    # fewer interpolation conditions: an upper bound on the all-pairs PEP; here it is equal (the worst
    # case is ½x², which every band already forces) to the solvers' accuracy
    ref = layer_worst_case(pi, K, beta=beta, witness=False).value
    layer, sol, rb = _proved(pi, K, beta, band)
    assert sol.value / K == pytest.approx(ref, rel=SDP_RTOL)
    assert rb.rigorous and rb.upper >= ref * (1 - SDP_RTOL)


@pytest.mark.parametrize("pi,K", [(1.0, 4), (0.5, 7), (0.2, 30)])
def test_proved_bound_at_beta_one_is_the_closed_form(pi, K):
    # the closed form is the exact worst case (proved, docs/certify.md): a proved upper bound must lie
    # at or above it, and the dual of the banded PEP reaches it to the solver's accuracy
    _, _, rb = _proved(pi, K, 1.0, 1)
    cf = closed_form_factor(pi, K)
    assert rb.rigorous
    assert cf * (1 - 1e-15) <= rb.upper <= cf * (1 + 1e-8)


def test_a_perturbed_dual_fails_the_check():
    pi, K, beta = 0.5, 12, 0.5
    layer, sol, rb = _proved(pi, K, beta, 1)
    w = rigorous.weight_upper_bounds(pi, K)
    assert rb.rigorous
    # scaled down by 1%: it would claim 0.99·upper, below what ½x² attains; Z loses 1% of C (PSD, ≠ 0)
    low = rigorous.check_dual(layer, 0.99 * sol.lam, weights=w)
    assert not low.rigorous and low.upper is None and "not positive" in low.reason
    attained, _ = quadratic_witness_value(pi, K, beta)
    assert 0.99 * rb.upper < attained  # the claim it refused would have been false


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), size=st.floats(1e-6, 0.5))
def test_whatever_passes_the_check_lies_above_an_attained_value(seed, size):
    # soundness: random multiplicative perturbations of the multipliers either fail the check or give
    # a bound that is still at least what a function of the class attains
    pi, K, beta = 0.4, 6, 0.5
    if (pi, K, beta) not in _MEMO:
        _MEMO[(pi, K, beta)] = _proved(pi, K, beta, 2)
    layer, sol, _ = _MEMO[(pi, K, beta)]
    rng = np.random.default_rng(seed)
    lam = sol.lam * np.exp(size * rng.standard_normal(len(sol.lam)))
    rb = rigorous.check_dual(layer, lam, weights=rigorous.weight_upper_bounds(pi, K))
    attained, _ = quadratic_witness_value(pi, K, beta)
    assert not rb.rigorous or rb.upper >= attained


_MEMO: dict = {}


def test_psd_proof_accepts_a_definite_and_refuses_an_indefinite_matrix():
    d, s = 6, 3
    A = 4 * np.eye(d) - np.eye(d, k=1) - np.eye(d, k=-1)  # eigenvalues 4 − 2cos(kπ/7) > 0
    Zb = np.zeros((d, s), dtype=object)
    Zb[:] = 0
    for a in range(d):
        for t in range(s):
            if a + t < d:
                Zb[a, t] = int(A[a + t, a]) * 10**20
    assert rigorous._psd_proof(Zb)[0]
    Zb[2, 0] = -1  # a negative diagonal entry: not PSD
    assert not rigorous._psd_proof(Zb)[0]


@pytest.mark.parametrize("pi,K", [(0.5, 2), (0.3, 17), (0.999, 40), (0.01, 300)])
def test_weight_bounds_enclose_the_binomial_weights(pi, K):
    w = rigorous.weight_upper_bounds(pi, K)
    c = _binomial_weights(pi, K)
    assert all(isinstance(v, Fraction) for v in w)
    # upper endpoints of 113-bit intervals: above the float weights (within their rounding, ~K·1e-16)
    # and no more than 1e-12 relative above them — compared where the float weights are normal
    # numbers (at π = 0.01, K = 300 the tail weights reach 1e-320, subnormal, with few digits left)
    normal = [(a, b) for a, b in zip(w, c) if b > 1e-290]
    assert len(normal) >= min(K, 150)
    assert all(float(a) >= b * (1 - 1e-13) for a, b in normal)
    assert all(float(a) <= b * (1 + 1e-12) for a, b in normal)
    # Σ c_n = K exactly, so the upper bounds sum to at least K
    assert sum(w) >= K


def test_rank_one_chain_recovers_the_vector():
    import scipy.sparse as sp

    u = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 2.0])
    s = 3
    H = np.outer(u, u)
    H[np.abs(np.subtract.outer(np.arange(6), np.arange(6))) >= s] = 0.0  # keep the band only
    v, second = banded.rank_one(sp.csr_matrix(H), s)
    assert np.allclose(v, u) or np.allclose(v, -u)
    assert second < 1e-12


@pytest.mark.parametrize("K", [200, 1000])
def test_momentum_bracket_closes_at_large_K(K):
    b = layer_bracket(0.5, K, beta=0.9)
    assert b.rigorous and b.lower <= b.upper
    assert b.gap <= 1e-4
    # more than T1's 2/(πK) (momentum is not covered by T1) but close to it
    assert 1.0 < b.upper / (2 / (0.5 * K)) < 1.05


def test_rate_statement_at_beta_half_pi_one_K_three_is_exactly_five_sixths():
    c = certify(L=[1.0], pi=[1.0], K=3, beta=0.5, statement="rate")
    assert c.exact is True and c.rigorous
    assert c.lower <= 5 / 6 <= c.upper and c.upper - c.lower <= 1e-6 * c.upper


def test_weighted_ratio_at_K_1000_pi_0001_is_one_minus_0999_to_the_1000():
    c = certify(L=[1.0], pi=[0.001], K=1000, beta=1.0, statement="weighted")
    assert c.ratio == pytest.approx(1 - 0.999**1000, abs=1e-9)
    assert c.rigorous and c.exact and c.band is None


def test_never_a_worst_case_above_its_upper_bound():
    for kw in (dict(L=[1.0, 3.0], pi=[0.5, 0.8], K=9, beta=0.7), dict(L=[2.0], pi=[0.25], K=40, beta=0.3)):
        c = certify(**kw)
        assert c.rigorous and c.lower <= c.worst_case <= c.upper
        assert c.attained <= c.upper


def test_refusal_names_K_and_the_largest_K_that_fits(capsys):
    with pytest.raises(ValueError, match=r"K = 10000000 .* the largest K that fits is \d+"):
        check_fits(10**7, 0.9)
    check_fits(10**7, 1.0)  # the closed form takes any K
    assert main(["certify", "--theorem", "smooth-deterministic", "--L", "1", "--pi", "0.5", "--K", "10000000",
                 "--beta", "0.9", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "K = 10000000" in err and "largest K that fits" in err
    # the largest K named fits, and one more does not
    largest = int(err.rsplit(" ", 1)[1])
    assert estimate_cost(largest, 1)[0] <= 600 < estimate_cost(largest + 1, 1)[0]


def test_cli_json_reports_the_bracket(capsys):
    assert main(["certify", "--L", "1", "--pi", "0.5", "--K", "60", "--beta", "0.9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rigorous"] is True and out["upper"] >= out["lower"]
    assert out["gap"] == pytest.approx((out["upper"] - out["lower"]) / out["upper"], rel=1e-9)
    assert out["exact"] is (out["gap"] <= 1e-6)
    assert out["worst_case"] == out["upper"] and math.isfinite(out["bound"])
