"""Bound checks: they pass on certified problems, *fail* when the constants are wrong, report
divergence as a failed check, and reject bad input with a clear message."""

import json

import numpy as np
import pytest

from dropmuon.figures.cli import main
from dropmuon.theory import RPT, Independent
from dropmuon.verification import CheckResult, check_theorem, run_suite, summarise
from dropmuon.verification.synthetic.checks import BOUND_RTOL, TIGHT_MIN
from dropmuon.verification.synthetic.dropmuon import LMO, EpochShift
from dropmuon.verification.synthetic.problems import Constants, SeparableQuadratic, Stochastic
from dropmuon.verification.synthetic.suites import THEOREMS, quick_tasks, random_instance, tight_instances


def _lying(factor):
    """A separable quadratic whose 'certified' L is `factor` times the true one."""
    p = SeparableQuadratic([1.0, 2.0], [(2, 3), (3, 3)], "spectral", seed=5)
    c = p.constants
    p.constants = Constants(L=c.L * factor, lipschitz=True, L0=c.L0 * factor, L1=None)
    return p


@pytest.mark.parametrize("label", [t[0] for t in tight_instances()])
def test_tight_instances(label, quick_suite_by_task):
    """Each tight instance, as the quick suite ran it (conftest: one run per session)."""
    for r in quick_suite_by_task[label]:
        assert r.holds and r.method in ("exact", "separable"), r
        assert TIGHT_MIN <= r.ratio <= 1 + BOUND_RTOL, r


def test_every_registered_theorem_has_a_tight_instance_or_says_why():
    from dropmuon.theory import theorems

    labels = {label.split(" #")[0] for label, _ in tight_instances()}
    for t in theorems.values():
        assert f"tight {t.label}" in labels or t.tight_note, t.name


@pytest.mark.parametrize("label", [t[0] for t in quick_tasks(0)])
def test_quick_suite_checks_hold(label, quick_suite_by_task):
    """The quick suite's theorem checks, one test each (as the session's quick suite ran them):
    every bound holds."""
    rs = quick_suite_by_task[label]
    assert rs
    for r in rs:
        assert r.holds, r
        assert 0 < r.observed <= r.bound * (1 + BOUND_RTOL) or r.method == "mc", r


def test_lying_constants_are_caught():
    """With L understated fourfold the sharp step overshoots; T1's weighted bound is exceeded
    (an exact, certain violation: the check can fail)."""
    r = check_theorem("smooth-deterministic", _lying(0.25), RPT.full(2), 3, statements=["weighted"])[0]
    assert not r.holds and r.ratio > 1


def test_divergence_is_a_failed_check():
    r = check_theorem("smooth-deterministic", _lying(1e-6), RPT.full(2), 300, statements=["rate"])[0]
    assert not r.holds and "diverged" in r.note and r.observed == float("inf")


def test_monte_carlo_interval():
    p = Stochastic(SeparableQuadratic([1.0, 2.0], [(2, 2), (2, 2)], seed=0), 0.5)
    r = check_theorem("smooth-stochastic", p, RPT.uniform(2), 6, mc_paths=300, seed=3)[0]
    assert r.method == "mc" and r.n == 300 and r.confidence == 0.999
    assert r.ci_low < r.observed < r.ci_high and r.holds


def test_check_bad_input():
    p = SeparableQuadratic([1.0, 2.0], [(2, 2), (2, 2)], seed=0)
    with pytest.raises(ValueError, match="the distribution has 3 layers but problem"):
        check_theorem("smooth-deterministic", p, RPT.uniform(3), 2)
    with pytest.raises(ValueError, match="i.i.d."):
        check_theorem("smooth-deterministic", p, EpochShift((RPT.uniform(2),) * 2, 1), 2)
    with pytest.raises(ValueError, match="pi_1 = 0.0"):
        check_theorem("smooth-deterministic", p, Independent([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="needs constants L1"):
        check_theorem("l0l1-deterministic", p, RPT.full(2), 2)
    with pytest.raises(ValueError, match="assumes the exact LMO"):
        check_theorem("smooth-constant-radius", p, RPT.full(2), 2, lmo=LMO("perturbed", delta=0.1))
    with pytest.raises(ValueError, match="no statement 'nope'"):
        check_theorem("smooth-deterministic", p, RPT.full(2), 2, statements=["nope"])
    with pytest.raises(ValueError, match="unknown suite 'huge'"):
        run_suite("huge")


def test_random_instances_are_reproducible():
    a = [random_instance(t, np.random.default_rng(7))[1]() for t in THEOREMS]
    b = [random_instance(t, np.random.default_rng(7))[1]() for t in THEOREMS]
    assert [[r.observed for r in x] for x in a] == [[r.observed for r in x] for x in b]
    assert all(r.holds for x in a for r in x)


def test_result_records_and_summary():
    rs = tight_instances()[0][1]()
    d = rs[0].as_dict()
    for k in ("name", "theorem", "problem", "observed", "bound", "ratio", "holds", "method"):
        assert k in d
    json.dumps(d)
    s = summarise(rs + [CheckResult("x", "t", "s", "p", 2.0, 1.0, 2.0, False, "exact")])
    assert s["all"]["checks"] == 2 and s["all"]["violations"] == 1 and s["all"]["ratio_max"] == 2.0


def test_cli_verify_bad_suite(capsys):
    assert main(["verify", "--suite", "huge"]) == 2
    assert "unknown suite 'huge'" in capsys.readouterr().err
    assert main(["verify", "--seed", "x"]) == 2


def test_cli_verify_quick_json_matches_run_suite(capsys, quick_suite_folder, quick_suite_records):
    """The acceptance interface: a JSON list of records with the named fields, exit status 0,
    and the same records as ``run_suite("quick", seed=0)``. The command reads the session's
    task files back (``--out``; a folder of another suite or seed would be refused, so the
    command's settings are the library call's), instead of computing the suite a third time:
    a run read back equals the run computed, locally or on Dask (test_execution)."""
    code = main(["verify", "--suite", "quick", "--json", "--no-progress", "--out", str(quick_suite_folder)])
    out, err = capsys.readouterr()
    assert code == 0, err
    recs = json.loads(out)
    assert isinstance(recs, list) and len(recs) > 40
    for r in recs:
        for k in ("name", "theorem", "problem", "observed", "bound", "ratio", "holds", "method"):
            assert k in r
        assert r["holds"] is True and r["status"] == "holds"
        assert r["method"] in ("exact", "separable", "mc", "closed-form")
    py = quick_suite_records  # run_suite("quick", seed=0), once per session
    assert [r["name"] for r in recs] == [r["name"] for r in py]
    assert [r["observed"] for r in recs] == pytest.approx([r["observed"] for r in py], rel=1e-12)
    kinds = {r["kind"] for r in recs}
    assert {"bound", "tight", "prediction", "coupling"} <= kinds
    assert {r["theorem"] for r in recs} >= set(THEOREMS)


def test_a_deterministic_instance_is_never_checked_by_monte_carlo():
    """A coupled (non-separable) deterministic problem whose sampling tree is too large to
    enumerate is refused, not silently estimated; asked for explicitly, Monte Carlo runs."""
    from dropmuon.verification.synthetic.problems import CoupledQuadratic

    p = CoupledQuadratic([(2, 2), (2, 2), (2, 2)], "frobenius", coupling=0.5, seed=0)
    with pytest.raises(ValueError, match="never by Monte Carlo"):
        check_theorem("smooth-deterministic", p, Independent([0.5, 0.5, 0.5]), 6, max_exact=1000)
    r = check_theorem("smooth-deterministic", p, Independent([0.5, 0.5, 0.5]), 6, method="mc", mc_paths=50)[0]
    assert r.method == "mc"
    # the same sampling on a separable problem is exact per layer at any K
    q = SeparableQuadratic([1.0, 2.0, 3.0], [(2, 2)] * 3, seed=0)
    assert check_theorem("smooth-deterministic", q, Independent([0.5, 0.5, 0.5]), 40)[0].method == "separable"
