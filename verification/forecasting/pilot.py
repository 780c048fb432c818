"""The empirical baseline predictor: short pilot runs of every schedule predict each one's speed-up
over full Muon from its progress per iteration and its measured time per step — the cheap answer
to "will Drop-Muon help my model?", scored beside the theorems (:mod:`~dropmuon.verification.forecasting.scoring`).
Torch-free: it reads the pilot runs' histories."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["pilot_prediction"]


def _first_crossing(iters: np.ndarray, loss: np.ndarray, level: float) -> float | None:
    """The first iteration at which the piecewise-linear loss curve falls to ``level``."""
    below = np.flatnonzero(loss <= level)
    if below.size == 0:
        return None
    j = int(below[0])
    if j == 0:
        return float(iters[0])
    x0, x1, y0, y1 = iters[j - 1], iters[j], loss[j - 1], loss[j]
    return float(x0 + (x1 - x0) * (y0 - level) / (y0 - y1))


def pilot_prediction(pilots: dict, *, baseline: str = "full") -> dict:
    """Per schedule, the pilot's predicted iteration ratio against ``baseline``, per-step speed-up
    and speed-up.

    ``pilots``: ``{schedule: {"iterations": [k_0, k_1, …], "loss": [ℓ_0, ℓ_1, …],
    "seconds_per_step": t}}`` — each pilot run's training loss at its evaluations and its
    measured median time per step. The common progress level ``ℓ*`` is the highest final loss
    over the pilots, so that every pilot reaches it; ``K_s`` is the first iteration at which
    schedule ``s``'s loss curve (linear between evaluations) falls to ``ℓ*``. Then

        iteration ratio = K_s / K_baseline,   step speed-up = t_baseline / t_s,
        speed-up = step speed-up / iteration ratio,

    i.e. time to ``ℓ*`` of the baseline over that of ``s``. It assumes that what holds at the
    pilots' level holds at the experiment's target — the assumption this predictor is scored on.

    >>> p = pilot_prediction({"full": dict(iterations=[0, 10, 20], loss=[2.0, 1.0, 0.5], seconds_per_step=0.3),
    ...                       "uniform": dict(iterations=[0, 10, 20], loss=[2.0, 1.5, 1.0], seconds_per_step=0.2)})
    >>> p["level"], p["schedules"]["uniform"]["iterations_ratio"], round(p["schedules"]["uniform"]["speedup"], 3)
    (1.0, 2.0, 0.75)
    """
    if baseline not in pilots:
        raise ValueError(f"the pilot has no {baseline!r} run; got {', '.join(pilots) or 'none'}")
    curves = {}
    for s, p in pilots.items():
        it = np.asarray(p.get("iterations", []), dtype=float)
        loss = np.asarray(p.get("loss", []), dtype=float)
        t = p.get("seconds_per_step")
        if it.size < 2 or it.size != loss.size or not np.all(np.isfinite(loss)) or np.any(np.diff(it) <= 0):
            raise ValueError(f"pilot {s!r} needs at least two evaluations at increasing iterations with finite "
                             f"losses; got iterations {list(it)} and losses {list(loss)}")
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
            raise ValueError(f"pilot {s!r}: seconds_per_step must be positive; got {t!r}")
        curves[s] = (it, np.minimum.accumulate(loss), float(t))  # progress so far: the best loss yet
    level = float(max(c[1][-1] for c in curves.values()))
    k = {s: _first_crossing(it, best, level) for s, (it, best, _) in curves.items()}
    kb, tb = k[baseline], curves[baseline][2]
    out = {}
    for s, (_, _, t) in curves.items():
        ratio = k[s] / kb if kb and k[s] else None
        step = tb / t
        out[s] = {"iterations_ratio": ratio, "step_speedup": step,
                  "speedup": step / ratio if ratio else None, "iterations_to_level": k[s]}
    return {"level": level, "schedules": out}
