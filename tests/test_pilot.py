"""The pilot predictor (verification.forecasting.pilot): time to a common loss level from pilot runs."""

import pytest

from dropmuon.verification.forecasting.pilot import pilot_prediction


def test_pilot_predicts_time_to_the_highest_final_loss():
    # full: loss 4 -> 1 linearly over 30 steps at 0.3 s; uniform: 4 -> 2 over 30 steps at 0.2 s.
    # Level = 2 (uniform's final loss, the highest). full reaches 2 at k = 20 (4 - 0.1 k), uniform at
    # 30: ratio 1.5, step speed-up 1.5, speed-up 1.0; both exact in binary except 0.3/0.2.
    p = pilot_prediction({
        "full": dict(iterations=[0, 10, 20, 30], loss=[4.0, 3.0, 2.0, 1.0], seconds_per_step=0.3),
        "uniform": dict(iterations=[0, 10, 20, 30], loss=[4.0, 3.5, 2.75, 2.0], seconds_per_step=0.2),
    })
    assert p["level"] == 2.0
    u = p["schedules"]["uniform"]
    assert u["iterations_to_level"] == 30.0 and p["schedules"]["full"]["iterations_to_level"] == 20.0
    assert u["iterations_ratio"] == 1.5
    assert u["step_speedup"] == pytest.approx(1.5, rel=1e-15)  # 0.3/0.2 rounds once
    assert u["speedup"] == pytest.approx(1.0, rel=1e-15)
    assert p["schedules"]["full"]["speedup"] == 1.0


def test_progress_is_the_best_loss_so_far_and_crossings_interpolate():
    # a bump (loss back up to 3.2) does not undo progress; the crossing of 2.5 lies 1/2 of the way
    # from k = 10 (3.0) to k = 20 (2.0)
    p = pilot_prediction({
        "full": dict(iterations=[0, 10, 20], loss=[4.0, 3.0, 2.5], seconds_per_step=1.0),
        "b": dict(iterations=[0, 10, 20, 30], loss=[4.0, 3.0, 3.2, 2.0], seconds_per_step=0.5),
    })
    assert p["level"] == 2.5
    assert p["schedules"]["b"]["iterations_to_level"] == pytest.approx(25.0, rel=1e-15)  # (3 - 2.5)/(3 - 2) of 20..30
    assert p["schedules"]["b"]["speedup"] == pytest.approx(2.0 / (25.0 / 20.0), rel=1e-15)


@pytest.mark.parametrize("pilots, message", [
    ({"u": dict(iterations=[0, 1], loss=[1.0, 0.5], seconds_per_step=1.0)}, "the pilot has no 'full' run"),
    ({"full": dict(iterations=[0], loss=[1.0], seconds_per_step=1.0)}, "pilot 'full' needs at least two"),
    ({"full": dict(iterations=[0, 1], loss=[1.0, float("nan")], seconds_per_step=1.0)}, "finite losses"),
    ({"full": dict(iterations=[0, 1], loss=[1.0, 0.5], seconds_per_step=0.0)}, "seconds_per_step must be positive"),
])
def test_bad_pilots_are_named(pilots, message):
    with pytest.raises(ValueError, match=message):
        pilot_prediction(pilots)
