"""T3's noise (verification/pep/stochastic.py): the second-moment relaxation is an upper bound — never
below what T3's algorithm attains on test functions under several noise laws (Monte Carlo) — it is
labelled a relaxation, and where noise dominates it proves T3's bound loose; bad input; the CLI."""

import json
import math
import warnings

import pytest

from dropmuon.figures.cli import main
from dropmuon.verification.pep.stochastic import MAX_K, _cvxpy_relaxation, t3_noise_relaxation, t3_noise_search

# a Monte Carlo mean may exceed the relaxation only by its sampling error: 4 standard errors
# (one-sided tail probability 3e-5 per comparison)
Z = 4.0


@pytest.fixture(autouse=True)
def _quiet_solver():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


@pytest.mark.parametrize("K,sigma,pi", [(10, 1.0, 1.0), (8, 3.0, 1.0), (6, 1.0, 0.5), (6, 0.0, 1.0)])
def test_relaxation_is_above_every_value_the_algorithm_attains(K, sigma, pi):
    r = t3_noise_relaxation(K, sigma=sigma, pi=pi)
    assert r.kind == "relaxation" and r.status in ("optimal", "inaccurate") and r.band == K
    found = t3_noise_search(K, sigma=sigma, pi=pi, paths=4000, seed=1)
    for key, (mean, se) in found.items():
        if key == "best":
            continue
        assert mean - Z * se <= r.value * (1 + 1e-6), (key, mean, se, r.value)


def test_banded_engine_with_every_pair_is_the_cvxpy_relaxation_and_a_band_only_loosens_it():
    # the Clarabel engine over chordal cliques with band = K keeps every condition: the same problem
    # as the one written in cvxpy (both interior point, ~1e-8 relative; 1e-5 leaves room)
    full = _cvxpy_relaxation(6, sigma=1.0)
    same = t3_noise_relaxation(6, sigma=1.0, band=6)
    assert same.value == pytest.approx(full.value, rel=1e-5)
    # dropping the conditions between iterates more than one step apart can only raise the maximum
    loose = t3_noise_relaxation(6, sigma=1.0, band=1)
    assert loose.value >= full.value * (1 - 1e-6) and loose.band == 1


def test_deterministic_search_is_normalised_descent_by_hand():
    # σ = 0, K = 3: β = 1 and η = sqrt(Δ0/(K·S/2)) = sqrt(2/3); from √2 on x²/2 the iterates are
    # √2, √2 − η, √2 − 2η and the left-hand side is the mean of their absolute values
    found = t3_noise_search(3, sigma=0.0, paths=3)
    eta = math.sqrt(2 / 3)
    x0 = math.sqrt(2)
    expected = (x0 + abs(x0 - eta) + abs(x0 - 2 * eta)) / 3
    assert found[("quadratic", "gaussian")][0] == pytest.approx(expected, rel=1e-12)
    assert found[("quadratic", "gaussian")][1] == 0.0


def test_where_noise_dominates_the_relaxation_proves_t3_loose():
    # measured: K = 10, σ = 3 (T3's rule: β ≈ 0.3); the relaxation is an upper bound on the worst
    # case, so a ratio below 1 proves T3's bound overstates it by at least 1/ratio
    r = t3_noise_relaxation(10, sigma=3.0)
    assert r.ratio < 0.75
    assert r.value < r.bound


@pytest.mark.parametrize("kw,match", [
    (dict(K=MAX_K + 1, sigma=1.0), rf"K = {MAX_K + 1} .* largest K accepted is {MAX_K}"),
    (dict(K=5, sigma=-1.0), r"sigma"),
    (dict(K=0, sigma=1.0), r"K must be a positive integer"),
    (dict(K=5, sigma=1.0, pi=0.0), r"pi"),
])
def test_bad_input(kw, match):
    K = kw.pop("K")
    with pytest.raises(ValueError, match=match):
        t3_noise_relaxation(K, **kw)


def test_cli(capsys):
    assert main(["certify", "--theorem", "smooth-stochastic", "--L", "1", "--K", "5", "--sigma", "1",
                 "--paths", "500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "relaxation" and out["relaxation"] >= out["search"]["mean"] - Z * out["search"]["se"]
    assert out["relaxation_over_bound"] == pytest.approx(out["relaxation"] / out["bound"], rel=1e-12)
    assert main(["certify", "--theorem", "smooth-stochastic", "--L", "1", "--K", "5"]) == 2
    assert "--sigma" in capsys.readouterr().err
    assert main(["certify", "--theorem", "smooth-stochastic", "--L", "1,2", "--K", "5", "--sigma", "1"]) == 2
    assert "one layer" in capsys.readouterr().err
    assert main(["certify", "--L", "1", "--pi", "1", "--K", "5", "--sigma", "1"]) == 2
    assert "smooth-stochastic only" in capsys.readouterr().err
