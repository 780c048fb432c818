"""Pre-registered predictions (``dropmuon predict``, ``dropmuon.verification.forecasting.forecast``) and the
theory hooks they use (``Theorem.iterations_leading``, ``iterations_continuous``, ``floor``): the
numbers against values computed here from the formulas of docs/theory.md, each theorem's coverage
per schedule, missing constants, and the command line. Pure numpy (no torch)."""

import json
import math

import numpy as np
import pytest

from dropmuon.figures.cli import main
from dropmuon.figures.cli._common import json_numbers
from dropmuon.theory import (
    inexact_constant_radius,
    l0l1_deterministic,
    register_theorem,
    smooth_constant_radius,
    smooth_deterministic,
    smooth_stochastic,
    theorems,
)
from dropmuon.theory.builtin_theorems.smooth_constant_radius import SmoothConstantRadius
from dropmuon.verification import PlannedRun, predict
from dropmuon.verification.forecasting.forecast import EPS_FRACTION, PREDICT_SCHEDULES

from .tolerances import FORMULA_RTOL

# T3/T4 at a finite eps: the code takes the smallest integer K whose tuned bound reaches the target
# and interpolates the bound linearly between K - 1 and K (relative error below 1/K ~ 1e-6 at the
# K ~ 2e6 of these constants); the reference below minimises the same bound over beta on a grid in
# log beta refined by golden sections (exact to ~1e-12) and solves for a real K by bisection, so
# 1e-5 separates the two routes' rounding from any error in the formulas (a wrong constant moves
# the ratio by 1e-3 or more here).
SEARCH_RTOL = 1e-5

# -- a hand-written 3-layer record -----------------------------------------------------------------

L = np.array([2.0, 8.0, 4.0])
L_PROBE = np.array([3.0, 6.0, 4.5])
F, A, W, U = 1.0, np.array([0.2, 0.3, 0.1]), np.array([1.0, 2.0, 0.5]), np.array([0.5, 0.5, 0.25])
L0, L1 = np.array([1.0, 2.0, 0.5]), np.array([0.5, 1.0, 2.0])
SIGMA, RHO, DELTA = np.array([0.8, 0.5, 0.2]), np.array([4.0, 8.0, 3.0]), np.array([0.2, 0.25, 0.1])
DELTA0, GNORMS0, BATCH = 2.3, np.array([4.0, 2.0, 1.0]), 128


def records(drop=(), **extra):
    """Per-layer records as ``dropmuon estimate --json`` writes them (plus the optional fields);
    ``drop``: fields to leave out."""
    out = []
    for j in range(3):
        r = {"layer": j + 1, "L": L[j], "L_probe": L_PROBE[j], "L0": L0[j], "L1": L1[j],
             "gnorms": [GNORMS0[j], GNORMS0[j] / 2], "sigma": SIGMA[j], "rho": RHO[j], "delta": DELTA[j],
             "Delta0": DELTA0, "batch": BATCH, "lr": 0.05, "momentum": 0.95, "nesterov": True,
             "costs": {"activation_s": A[j], "weight_s": W[j], "update_s": U[j]}}
        if j == 0:
            r["costs"]["forward_s"] = F
        for k in drop:
            r.pop(k, None)
        r.update({k: v[j] if isinstance(v, (list, tuple, np.ndarray)) else v for k, v in extra.items()})
        out.append({k: (float(v) if isinstance(v, np.floating) else v) for k, v in r.items()})
    return out


def expected_cost(pi):
    """docs/theory.md, cost model: E cost = F + sum_j pi_{j-1} a_j + sum_j pi_j (w_j + u_j), pi_0 = 0."""
    pi = np.asarray(pi, dtype=float)
    return F + np.r_[0.0, pi[:-1]] @ A + pi @ (W + U)


UNIFORM = np.array([1 / 3, 2 / 3, 1.0])  # uniform start index over 3 layers: pi_i = i/b
OPT_MAX = np.maximum.accumulate(L) / L.max()  # the max-form RPT optimum: pi_i = max_{j<=i} L_j / L_max
FULL = np.ones(3)


def row(p, label, sched):
    return next(t for t in p["theorems"] if t["label"] == label)["schedules"][sched]


def theorem_entry(p, label):
    return next(t for t in p["theorems"] if t["label"] == label)


@pytest.fixture(scope="module")
def default_prediction():
    """Every theorem and schedule, the records' run (minibatch 128, momentum 0.95, Newton-Schulz)."""
    return predict(records(), PREDICT_SCHEDULES)


# -- T1, T1', the cost model ------------------------------------------------------------------------


def test_t1_and_t1prime_ratios_and_speedups_by_hand(default_prediction):
    p = default_prediction
    pis = {"full": FULL, "uniform": UNIFORM, "optimal-max": OPT_MAX,
           "optimal-sum": np.array(p["schedules"]["optimal-sum"]["inclusion"])}
    assert p["schedules"]["optimal-max"]["inclusion"] == pytest.approx(OPT_MAX, rel=FORMULA_RTOL)
    for name, pi in pis.items():
        step = expected_cost(FULL) / expected_cost(pi)
        t1 = np.max(L / pi) / np.max(L)  # T1: K_max(pi)/K_max(full)
        t1p = np.sum(L / pi) / np.sum(L)  # T1': K_sum(pi)/K_sum(full)
        for label, ratio in (("T1", t1), ("T1′", t1p)):
            r = row(p, label, name)
            assert r["step_speedup"] == pytest.approx(step, rel=FORMULA_RTOL)
            assert r["iterations_ratio"] == pytest.approx(ratio, rel=FORMULA_RTOL)
            assert r["iterations_ratio_limit"] == pytest.approx(ratio, rel=FORMULA_RTOL)
            assert r["predicted_speedup"] == pytest.approx(step / ratio, rel=FORMULA_RTOL)
    # the solvers' own predicted speed-ups of their optima are T1's and T1''s predictions
    assert row(p, "T1", "optimal-max")["predicted_speedup"] == pytest.approx(
        p["schedules"]["optimal-max"]["solver"]["predicted_speedup_vs_full"], rel=1e-9)
    assert row(p, "T1′", "optimal-sum")["predicted_speedup"] == pytest.approx(
        p["schedules"]["optimal-sum"]["solver"]["predicted_speedup_vs_full"], rel=1e-9)


def test_ranking_and_winner_follow_the_predicted_speedups(default_prediction):
    for t in default_prediction["theorems"]:
        rows = t["schedules"]
        ranked = [n for n in t["ranking"]]
        values = [rows[n]["predicted_speedup"] for n in ranked]
        assert values == sorted(values, reverse=True)
        assert t["winner"] == ranked[0] and rows[ranked[0]]["rank"] == 1
        assert "epoch-shift" not in ranked and rows["epoch-shift"]["rank"] is None
        assert default_prediction["winners"][t["theorem"]]["winner"] == t["winner"]
    # T1 on these constants: the max-form optimum wins (its K equals full's, its steps are cheaper)
    assert theorem_entry(default_prediction, "T1")["winner"] == "optimal-max"


def test_ties_share_a_rank():
    # L_1 = max L: the max-form optimum is full updates, so both predict exactly 1
    p = predict(records(L=[8.0, 2.0, 4.0]), ["full", "optimal-max", "uniform"], theorems=["smooth-deterministic"])
    rows = theorem_entry(p, "T1")["schedules"]
    assert rows["full"]["predicted_speedup"] == rows["optimal-max"]["predicted_speedup"] == 1.0
    assert rows["full"]["rank"] == rows["optimal-max"]["rank"] == 1 and rows["uniform"]["rank"] == 3


def test_epoch_shift_has_a_cycle_averaged_step_speedup_and_no_ratio(default_prediction):
    # a cycle of b epochs; in epoch c the start distribution is uniform/2 + delta_c/2 (docs/torch.md)
    costs = []
    for c in range(3):
        p_start = np.full(3, 0.5 / 3)
        p_start[c] += 0.5
        costs.append(expected_cost(np.cumsum(p_start)))
    s = default_prediction["schedules"]["epoch-shift"]
    assert not s["iid"] and s["seconds_per_step"] == pytest.approx(np.mean(costs), rel=FORMULA_RTOL)
    for t in default_prediction["theorems"]:
        r = t["schedules"]["epoch-shift"]
        assert r["iterations_ratio"] is None and r["predicted_speedup"] is None
        assert not r["applies"] and any("i.i.d." in why for why in r["reasons"])
        assert any("not i.i.d." in why for why in r["why_null"])
        assert r["step_speedup"] == pytest.approx(expected_cost(FULL) / np.mean(costs), rel=FORMULA_RTOL)


# -- T2, T3, T4 -------------------------------------------------------------------------------------


def test_t2_unweighted_count_by_hand(default_prediction):
    eps = EPS_FRACTION * GNORMS0.sum()

    def K(pi):  # docs/theory.md, T2: K = 2 D0 W/eps + 2 D0 A'/eps^2, W = max 1/pi, A' = sum L0/(pi L1^2)
        return 2 * DELTA0 * np.max(1 / pi) / eps + 2 * DELTA0 * np.sum(L0 / (pi * L1**2)) / eps**2

    def lead(pi):
        return np.sum(L0 / (pi * L1**2))

    for name, pi in (("uniform", UNIFORM), ("optimal-max", OPT_MAX)):
        r = row(default_prediction, "T2", name)
        assert r["iterations_ratio"] == pytest.approx(K(pi) / K(FULL), rel=FORMULA_RTOL)
        assert r["iterations_ratio_limit"] == pytest.approx(lead(pi) / lead(FULL), rel=FORMULA_RTOL)
        assert r["K"] == pytest.approx(K(pi), rel=FORMULA_RTOL)


def _sums(pi, delta):
    S2 = np.sum((1 + delta) ** 2 * L / pi)
    S1 = np.sum((1 + delta) * L / pi)
    return S2, S1, np.sum(RHO * SIGMA), np.sum(RHO * SIGMA / pi)


def _golden(f, lo, hi, steps=80):
    g = (math.sqrt(5) - 1) / 2
    for _ in range(steps):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if f(a) < f(b):
            hi = b
        else:
            lo = a
    return (lo + hi) / 2


def _tuned_bound(K, S2, S1, R, Rp):
    """docs/theory.md, T3/T4: B = D0/(K eta) + (eta/2) S2 + 2 eta (1-beta)/beta S1
    + 2 sqrt(beta/(2-beta)) R + 2 (1-beta)/(K beta) R', minimised over eta exactly
    (eta* = sqrt(D0/(K C)), C = S2/2 + 2 S1 (1-beta)/beta) and over beta in (0, 1] numerically."""

    def at(lb):
        beta = np.exp(lb)
        C = S2 / 2 + 2 * S1 * (1 - beta) / beta
        return (2 * np.sqrt(DELTA0 * C / K) + 2 * np.sqrt(beta / (2 - beta)) * R
                + 2 * (1 - beta) / (K * beta) * Rp)

    grid = np.linspace(-40.0, 0.0, 40001)
    j = int(np.argmin(at(grid)))
    if j == len(grid) - 1:
        return float(at(0.0))
    lb = _golden(lambda x: float(at(x)), grid[max(j - 1, 0)], grid[j + 1])
    return min(float(at(lb)), float(at(0.0)))


def _K_by_hand(pi, delta, target):
    sums = _sums(pi, delta)
    lo, hi = 0.0, 80.0  # log K
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _tuned_bound(math.exp(mid), *sums) > target else (lo, mid)
    return math.exp(hi)


@pytest.mark.parametrize("label,delta", [("T3", np.zeros(3)), ("T4", DELTA)])
def test_t3_t4_ratio_at_eps_by_hand(default_prediction, label, delta):
    eps = EPS_FRACTION * GNORMS0.sum()
    target = eps * (1 - delta.max())  # T4's rate divides the bound by 1 - max delta
    K_full = _K_by_hand(FULL, delta, target)
    K_unif = _K_by_hand(UNIFORM, delta, target)
    r = row(default_prediction, label, "uniform")
    assert r["K"] == pytest.approx(K_unif, rel=SEARCH_RTOL)
    assert r["iterations_ratio"] == pytest.approx(K_unif / K_full, rel=SEARCH_RTOL)


@pytest.mark.parametrize("label,delta", [("T3", np.zeros(3)), ("T4", DELTA)])
def test_t3_t4_limit_is_the_ratio_of_S1(default_prediction, label, delta):
    for name, pi in (("uniform", UNIFORM), ("optimal-max", OPT_MAX)):
        S1 = _sums(pi, delta)[1] / _sums(FULL, delta)[1]
        assert row(default_prediction, label, name)["iterations_ratio_limit"] == pytest.approx(S1, rel=FORMULA_RTOL)


@pytest.mark.parametrize("thm,extra", [(smooth_stochastic, {}), (inexact_constant_radius, {"delta": DELTA})])
def test_leading_term_is_the_asymptote_of_the_tuned_count(thm, extra):
    """K(eps)/(256 D0 S1 R^2/(eps (1 - max delta))^4) -> 1 with an error proportional to eps, and
    the iteration ratio at a small eps approaches the ratio of the leading terms."""
    kw = dict(L=L, sigma=SIGMA, rho=RHO, Delta0=DELTA0, **extra)
    delta = extra.get("delta", np.zeros(3))
    S1 = np.sum((1 + delta) * L / UNIFORM)
    lead = thm.iterations_leading(pi=UNIFORM, **kw)
    assert lead.power == 4 and not lead.exact and lead.closed_form is None and lead.ratio_free_of_Delta0
    assert lead.coefficient == pytest.approx(
        256 * DELTA0 * S1 * np.sum(RHO * SIGMA) ** 2 / (1 - delta.max()) ** 4, rel=FORMULA_RTOL)
    errs = [thm.iterations_continuous(e, pi=UNIFORM, **kw) / lead.at(e) - 1 for e in (1e-1, 1e-2, 1e-3)]
    assert 0 < errs[2] < errs[1] < errs[0]
    assert errs[1] / errs[0] < 0.2 and errs[2] / errs[1] < 0.2  # O(eps): a factor ~10 per decade
    assert errs[2] < 1e-3
    lim = lead.coefficient / thm.iterations_leading(pi=FULL, **kw).coefficient
    at = thm.iterations_continuous(1e-3, pi=UNIFORM, **kw) / thm.iterations_continuous(1e-3, pi=FULL, **kw)
    assert at == pytest.approx(lim, rel=1e-3)


def test_iterations_leading_from_closed_forms():
    t = smooth_deterministic.iterations_leading(L=L, pi=UNIFORM, Delta0=DELTA0)
    assert t.exact and t.power == 2 and t.closed_form_proportional_to_Delta0
    assert t.coefficient == pytest.approx(2 * DELTA0 * np.max(L / UNIFORM), rel=FORMULA_RTOL)
    # T2 without L0: the 1/eps^2 term vanishes and the 1/eps term leads, exactly
    t2 = l0l1_deterministic.iterations_leading("unweighted", L0=[0, 0, 0], L1=L1, pi=UNIFORM, Delta0=DELTA0)
    assert t2.power == 1 and t2.exact and t2.coefficient == pytest.approx(2 * DELTA0 * 3, rel=FORMULA_RTOL)
    t2 = l0l1_deterministic.iterations_leading("unweighted", L0=L0, L1=L1, pi=UNIFORM, Delta0=DELTA0)
    assert t2.power == 2 and not t2.exact
    # fixed step parameters: the bound has a floor, no leading term
    assert smooth_constant_radius.iterations_leading(L=L, Delta0=1, eta=0.1) is None
    # without noise T3's closed form is exact
    assert smooth_stochastic.iterations_leading(L=L, Delta0=1).exact


def test_iterations_continuous_and_floor():
    kw = dict(L=L, pi=UNIFORM, Delta0=DELTA0)
    assert smooth_constant_radius.iterations_continuous(0.1, **kw) == smooth_constant_radius.iterations_real(0.1, **kw)
    # T1' at a fixed eta: bound D0/(K eta) + eta S/2, floor eta S/2, K = D0/(eta (eps - eta S/2))
    S, eta, eps = np.sum(L / UNIFORM), 0.01, 0.5
    assert smooth_constant_radius.floor(eta=eta, **kw) == pytest.approx(eta * S / 2, rel=FORMULA_RTOL)
    K = smooth_constant_radius.iterations_continuous(eps, eta=eta, **kw)
    # the bound c/K + floor interpolated linearly between integers: K off by at most 1/(4K), i.e.
    # 1/(4K^2) relative
    assert K == pytest.approx(DELTA0 / (eta * (eps - eta * S / 2)), rel=1 / K**2)
    with pytest.raises(ValueError, match="never falls below"):
        smooth_constant_radius.iterations_continuous(eta * S / 4, eta=eta, **kw)


# -- the run: coverage, batch, momentum, LMO, radius rule ---------------------------------------------

IID = ("full", "uniform", "optimal-max", "optimal-sum")
COVERAGE_CASES = [
    # (run, {label: schedules the theorem covers}); T1 (sharp steps) and T2 (adaptive radius) never
    # cover a Muon run, and no theorem covers the epoch-shift schedule (not i.i.d.)
    ({"batch": "full", "momentum": 0, "exact_lmo": True}, {"T1′": {"full"}, "T3": {"full"}, "T4": {"full"}}),
    ({"batch": "full", "momentum": 0, "exact_lmo": True, "radius_rule": "theory"},
     {"T1′": set(IID), "T3": set(IID), "T4": set(IID)}),
    ({"batch": 64, "momentum": 0, "exact_lmo": True, "radius_rule": "theory"}, {"T3": set(IID), "T4": set(IID)}),
    ({"batch": "full", "momentum": 0.9, "exact_lmo": True, "radius_rule": "theory"},
     {"T3": set(IID), "T4": set(IID)}),
    ({"batch": 64, "momentum": 0.9, "radius_rule": "inverse-inclusion"}, {"T4": set(IID)}),
    ({"batch": 64, "momentum": 0.95}, {"T4": {"full"}}),
]


@pytest.mark.parametrize("run,covered", COVERAGE_CASES)
def test_coverage_per_schedule(run, covered):
    p = predict(records(), PREDICT_SCHEDULES, run=run)
    for t in p["theorems"]:
        got = {n for n, r in t["schedules"].items() if r["applies"]}
        assert got == covered.get(t["label"], set()), (t["label"], run)
        for r in t["schedules"].values():  # a theorem that does not cover still predicts, labelled so
            assert r["applies"] == (not r["reasons"]) and r["coverage"].startswith(
                "covers" if r["applies"] else "does not cover this run")


def test_coverage_reasons_name_the_difference():
    p = predict(records(), ["full", "uniform"], run={"batch": 64, "momentum": 0.9},
                theorems=["smooth-constant-radius", "smooth-stochastic"])
    reasons = row(p, "T1′", "uniform")["reasons"]
    assert any("minibatch" in x for x in reasons) and any("momentum" in x for x in reasons)
    assert any("one learning rate" in x for x in reasons) and any("Newton-Schulz" in x for x in reasons)
    assert row(p, "T3", "full")["reasons"] == [
        "assumes the exact LMO; the run's Newton-Schulz direction is inexact (delta > 0)"]


def test_run_settings_from_the_file_and_their_defaults():
    p = predict(records(), ["full"], theorems=["smooth-deterministic"])
    r = p["run"]
    assert (r["batch"], r["full_batch"], r["momentum"], r["nesterov"], r["lr"]) == (128, False, 0.95, True, 0.05)
    assert r["beta"] == pytest.approx(0.05) and r["step"] == "common-lr" and r["notes"]
    p = predict(records(drop=("batch", "momentum", "nesterov", "lr")), ["full"], theorems=["smooth-deterministic"])
    assert p["run"]["momentum"] == 0.95 and "default" in p["run"]["momentum_source"]
    assert p["run"]["lr"] is None and not p["run"]["full_batch"]


def test_sigma_follows_the_batch_and_delta_the_lmo():
    p = predict(records(), ["full"], run=PlannedRun(batch=512), theorems=["smooth-stochastic"])
    assert p["inputs"]["constants_used"]["sigma"] == pytest.approx(SIGMA / 2, rel=FORMULA_RTOL)  # sqrt(128/512)
    p = predict(records(drop=("sigma", "delta")), ["full"], run={"batch": "full", "exact_lmo": True},
                theorems=["inexact-constant-radius"])
    used = p["inputs"]["constants_used"]
    assert used["sigma"] == [0.0] * 3 and used["delta"] == [0.0] * 3
    assert theorem_entry(p, "T4")["missing"] == []


# -- missing constants, epsilon, L source ------------------------------------------------------------


def test_missing_constants_are_named_and_the_others_still_predict():
    p = predict(records(drop=("sigma", "rho", "delta", "Delta0", "L0")), ["full", "uniform"])
    missing = {t["label"]: [m.split(":")[0] for m in t["missing"]] for t in p["theorems"]}
    assert missing == {"T1": ["Delta0"], "T1′": ["Delta0"], "T2": ["L0", "Delta0"],
                       "T3": ["sigma", "rho", "Delta0"], "T4": ["sigma", "rho", "delta", "Delta0"]}
    for label in ("T2", "T3", "T4"):
        r = row(p, label, "uniform")
        assert r["iterations_ratio"] is None and r["iterations_ratio_limit"] is None
        assert any(w.startswith("missing constants:") for w in r["why_null"])
    # T1 and T1' ratios do not depend on Delta0 (K proportional to it): given without it, K is not
    for label, ratio in (("T1", np.max(L / UNIFORM) / np.max(L)), ("T1′", np.sum(L / UNIFORM) / np.sum(L))):
        r = row(p, label, "uniform")
        assert r["iterations_ratio"] == pytest.approx(ratio, rel=FORMULA_RTOL) and r["K"] is None


def test_without_delta0_t3_gives_its_limit_only():
    p = predict(records(drop=("Delta0",)), ["full", "uniform"], theorems=["smooth-stochastic"])
    r = row(p, "T3", "uniform")
    assert r["iterations_ratio"] is None and any("needs Delta0" in w for w in r["why_null"])
    assert r["iterations_ratio_limit"] == pytest.approx(np.sum(L / UNIFORM) / np.sum(L), rel=FORMULA_RTOL)


def test_default_epsilon_is_a_fraction_of_the_initial_gradient_norm():
    p = predict(records(), ["full"], theorems=["smooth-deterministic"])
    assert p["epsilon"] == pytest.approx(EPS_FRACTION * GNORMS0.sum(), rel=FORMULA_RTOL)
    assert "gnorms" in p["epsilon_rule"]
    assert predict(records(), ["full"], epsilon=0.3, theorems=["smooth-deterministic"])["epsilon"] == 0.3
    p = predict(records(drop=("gnorms",)), ["full", "uniform"], theorems=["smooth-stochastic"])
    assert p["epsilon"] is None and "--eps" in p["epsilon_rule"]
    r = row(p, "T3", "uniform")
    assert r["iterations_ratio"] is None and r["iterations_ratio_limit"] is not None


def test_L_source_changes_the_theorems_not_the_schedules():
    p = predict(records(), ["full", "uniform", "optimal-max"], L_source="L_probe", theorems=["smooth-deterministic"])
    assert p["inputs"]["L_source"] == "L_probe"
    assert p["schedules"]["optimal-max"]["inclusion"] == pytest.approx(OPT_MAX, rel=FORMULA_RTOL)  # from L
    r = row(p, "T1", "uniform")
    assert r["iterations_ratio"] == pytest.approx(np.max(L_PROBE / UNIFORM) / np.max(L_PROBE), rel=FORMULA_RTOL)


def test_at_run_parameters_report_the_floor():
    p = predict(records(), ["full", "uniform"], theorems=["smooth-constant-radius", "smooth-stochastic"])
    eps, eta = EPS_FRACTION * GNORMS0.sum(), 0.05
    a = row(p, "T1′", "uniform")["at_run_parameters"]
    S = np.sum(L / UNIFORM)
    assert a["parameters"] == {"eta": eta} and a["floor"] == pytest.approx(eta * S / 2, rel=FORMULA_RTOL)
    assert a["K"] == pytest.approx(DELTA0 / (eta * (eps - eta * S / 2)), rel=1 / a["K"] ** 2)  # as above
    # the run's radius rule is common (lr for every layer): the bound is for radii lr/pi_i, and says so
    assert "lr/pi_i" in a["note"] and "note" not in row(p, "T1′", "full")["at_run_parameters"]
    a = row(p, "T3", "uniform")["at_run_parameters"]  # beta = 0.05 leaves a noise floor far above eps
    assert a["parameters"] == {"eta": eta, "beta": pytest.approx(0.05)} and a["floor"] > eps
    assert a["K"] is None and a["iterations_ratio"] is None and "floor" in a["why_null"][0]
    assert row(p, "T3", "uniform")["iterations_ratio"] is not None  # the tuned prediction is unaffected
    assert row(predict(records(), ["full"], theorems=["smooth-deterministic"]), "T1", "full")["at_run_parameters"] is None


def test_every_registered_theorem_is_predicted():
    class Copy(SmoothConstantRadius):
        """T1' under another name: forecast knows nothing about it but what the object says."""

        name = "test-forecast-copy"
        label = "T1′-copy"

    register_theorem(Copy(), replace=True)
    try:
        p = predict(records(), ["full", "uniform"], run={"batch": "full", "momentum": 0, "exact_lmo": True})
        assert [t["theorem"] for t in p["theorems"]] == list(theorems)
        assert row(p, "T1′-copy", "uniform") == row(p, "T1′", "uniform")
    finally:
        theorems.unregister("test-forecast-copy")


@pytest.mark.parametrize("kwargs,match", [
    ({"schedules": ["full", "bogus"]}, "unknown schedule 'bogus'"),
    ({"schedules": []}, "no schedule"),
    ({"epsilon": -1.0}, "epsilon"),
    ({"L_source": "L_median"}, "unknown L source"),
    ({"run": {"batch": 0}}, "batch"),
    ({"run": {"momentum": 1.0}}, "momentum"),
    ({"run": {"radius_rule": "sometimes"}}, "radius rule"),
])
def test_bad_input_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        predict(records(), **{"schedules": ["full"], **kwargs})


def test_records_that_disagree_on_a_run_value_are_refused():
    recs = records()
    recs[2]["batch"] = 64
    with pytest.raises(ValueError, match="disagree on 'batch'"):
        predict(recs, ["full"], theorems=["smooth-deterministic"])


# -- the command line --------------------------------------------------------------------------------


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def constants_file(tmp_path):
    path = tmp_path / "constants.json"
    path.write_text(json.dumps(records()))
    return str(path)


def test_cli_json_round_trip(capsys, constants_file):
    code, out, err = _cli(capsys, "predict", "--constants", constants_file, "--json", "--eps", "0.7",
                          "--batch", "full", "--momentum", "0", "--exact-lmo", "--radius-rule", "theory")
    assert code == 0, err
    got = json.loads(out)
    want = predict(constants_file, PREDICT_SCHEDULES, epsilon=0.7,
                   run=PlannedRun(batch="full", momentum=0.0, exact_lmo=True, radius_rule="theory"))
    assert got == json_numbers(want)
    assert got["epsilon"] == 0.7 and got["inputs"]["constants"] == constants_file
    assert {t["label"]: t["winner"] for t in got["theorems"]}["T1"] == "optimal-max"


def test_cli_text_tables_and_winners(capsys, constants_file):
    code, out, err = _cli(capsys, "predict", "--constants", constants_file, "--schedules", "full,uniform,epoch-shift",
                          "--theorem", "smooth-deterministic", "--theorem", "smooth-stochastic")
    assert code == 0, err
    assert f"eps = {EPS_FRACTION * GNORMS0.sum():.6g}" in out and "gnorms" in out
    assert out.count("schedule     applies") == 2 and "predicted winners" in out
    assert "does not cover epoch-shift: assumes i.i.d." in out and "bound's floor" in out


def test_cli_help_explains_the_outputs(capsys):
    code, out, _ = _cli(capsys, "predict", "--help")
    assert code == 0
    for word in ("applies", "K(pi, eps) / K(full, eps)", "(eps->0)", "step speed-up / K ratio", "rank",
                 "sum_i gnorms_i[0]", "epoch-shift is not i.i.d."):
        assert word in out


@pytest.mark.parametrize("argv,match", [
    (["--constants", "/nonexistent/c.json"], "/nonexistent/c.json"),
    (["--schedules", "full,bogus"], "unknown schedule 'bogus'"),
    (["--schedules", "full,,uniform"], "empty item"),
    (["--eps", "abc"], "--eps is 'abc'"),
    (["--eps", "-1"], "--eps must be positive"),
    (["--eps", "0"], "--eps must be positive"),
    (["--eps", "nan"], "--eps must be a finite number"),
    (["--batch", "0"], "--batch must be positive"),
    (["--momentum", "1"], "--momentum must be below 1"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys, constants_file, argv, match):
    if "--constants" not in argv:
        argv = ["--constants", constants_file] + argv
    code, out, err = _cli(capsys, "predict", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and match in err
