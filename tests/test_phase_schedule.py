"""The phase-optimal schedule: each phase's distribution is the solver's optimum for that phase's
constants, steps draw from their own phase's distribution, and predict() carries the per-phase
speed-ups while no theorem claims the whole (non-i.i.d.) run."""

import numpy as np
import pytest

from dropmuon.solvers import optimal_sampling
from dropmuon.theory import RPT, CostModel
from dropmuon.verification.synthetic.dropmuon import Phased, as_sampler
from dropmuon.verification.forecasting.forecast import predict
from dropmuon.verification.forecasting.measured import load_constants
from dropmuon.verification.forecasting.schedules import make_schedule

# three phases whose constants move the bottleneck from the output end to the input end
PHASES = {"starts": [0, 40, 90], "L": [[1.0, 2.0, 30.0], [5.0, 5.0, 5.0], [40.0, 3.0, 1.0]], "horizon": 150}
COSTS = CostModel(forward=1.0, activation=[0.5, 0.5, 0.5], weight=[1.0, 2.0, 1.5], update=[0.2, 0.2, 0.2])


def test_each_phase_gets_the_solvers_optimum_for_its_own_constants():
    sched, info = make_schedule("phase-optimal", 3, costs=COSTS, phases=PHASES)
    assert isinstance(sched, Phased) and sched.starts == (0, 40, 90) and not sched.iid
    for p, L in enumerate(PHASES["L"]):
        r = optimal_sampling(L, COSTS, family="rpt", objective="max")
        # the same solver on the same inputs: the same distribution to its tolerance (1e-9 on probabilities)
        np.testing.assert_allclose(sched.distributions[p].start_probs, r.distribution.start_probs, atol=1e-9)
        assert info["predicted_speedup_per_phase"][p] == pytest.approx(r.speedup_vs_full, rel=1e-12)
    # the phases differ: the bottleneck moves, so the optima do
    assert not np.allclose(sched.distributions[0].start_probs, sched.distributions[2].start_probs, atol=1e-3)
    # the time-averaged start probabilities weigh the phases by their measured lengths 40, 50, 60
    w = np.array([40, 50, 60]) / 150
    np.testing.assert_allclose(info["start_probs"], w @ np.array(info["start_probs_per_phase"]), rtol=1e-12)


def test_a_step_draws_from_its_own_phases_distribution():
    sched, _ = make_schedule("phase-optimal", 3, costs=COSTS, phases=PHASES)
    assert as_sampler(sched) is sched
    for k, p in ((0, 0), (39, 0), (40, 1), (89, 1), (90, 2), (10_000, 2)):  # the last phase is open-ended
        assert sched.phase_at(k) == p
        np.testing.assert_array_equal(sched.inclusion_at(k), sched.distributions[p].inclusion)
    # draws at a step of phase 0 have phase 0's start frequencies (20000 draws: 3 sd of a frequency <= 0.011)
    rng = np.random.default_rng(0)
    starts = np.array([min(sched.sample(5, rng)) for _ in range(20_000)])
    freq = np.bincount(starts, minlength=4)[1:] / len(starts)
    np.testing.assert_allclose(freq, sched.distributions[0].start_probs, atol=0.011)


def test_phased_schedules_refuse_malformed_phases():
    with pytest.raises(ValueError, match="starts must be increasing integer steps beginning at 0"):
        Phased((RPT([1.0]), RPT([1.0])), starts=(0, 0))
    with pytest.raises(ValueError, match="one start step per phase"):
        Phased((RPT([1.0]),), starts=(0, 5))
    with pytest.raises(ValueError, match="horizon must be an integer step after"):
        Phased((RPT([1.0]), RPT([1.0])), starts=(0, 5), horizon=5)
    with pytest.raises(ValueError, match="phase 2's L has 2 entries but the network has 3 layers"):
        make_schedule("phase-optimal", 3, costs=COSTS, phases={"starts": [0, 4], "L": [[1, 1, 1], [1, 1]]})
    with pytest.raises(ValueError, match="phase 1's L must be positive"):
        make_schedule("phase-optimal", 3, costs=COSTS, phases={"starts": [0], "L": [[1, 0, 1]]})


def _records():
    return [{"layer": j + 1, "L": L, "gnorms": [1.0],
             "costs": {"forward_s": 1.0 if j == 0 else 0.0, "activation_s": 0.5, "weight_s": w, "update_s": 0.2}}
            for j, (L, w) in enumerate(zip([1.0, 2.0, 30.0], [1.0, 2.0, 1.5]))]


def test_predict_carries_each_phases_speedup_and_no_theorem_claims_the_whole_run():
    cal = {"layers": _records(), "phases": PHASES}
    p = predict(cal, ["full", "uniform", "phase-optimal"], run={"batch": "full", "momentum": 0, "exact_lmo": True})
    row = p["schedules"]["phase-optimal"]
    assert row["iid"] is False and row["phase_starts"] == [0, 40, 90]
    _, cm = load_constants(_records())  # the cost model predict() reads from the records
    for sp, L in zip(row["predicted_speedup_per_phase"], PHASES["L"]):
        assert sp == pytest.approx(optimal_sampling(L, cm, family="rpt", objective="max").speedup_vs_full, rel=1e-9)
    for t in p["theorems"]:
        r = t["schedules"]["phase-optimal"]
        assert r["predicted_speedup"] is None and any("not i.i.d." in w for w in r["why_null"])
    with pytest.raises(ValueError, match="phase-optimal needs per-phase constants"):
        predict(_records(), ["full", "phase-optimal"])
