"""Named layer-sampling schedules for training runs (numpy only; the torch side and the CLI use
them): full updates, uniform index sampling, the solver's max- and sum-form optima, our epoch-shift
schedule, the phase-optimal schedule (the max-form optimum of each phase's own constants), and a
user's RPT start distribution."""

from __future__ import annotations

import numpy as np

from dropmuon.theory import RPT

from ..synthetic.dropmuon import EpochShift, Phased, Sampler

__all__ = ["SAMPLINGS", "make_schedule", "epoch_shift_schedule", "phase_optimal_schedule", "check_phases"]

#: the sampling schedules :func:`make_schedule` builds by name
SAMPLINGS = ("full", "uniform", "optimal-max", "optimal-sum", "epoch-shift", "phase-optimal", "custom")


def epoch_shift_schedule(nlayers: int, epoch_length: int) -> EpochShift:
    """Our epoch-shift schedule (the paper's appendix describes one only in words; docs/torch.md):
    a cycle of ``b`` epochs; in epoch ``e`` the start index is drawn from
    ``p = ½ · uniform + ½ · δ_{c}``, ``c = 1 + (e mod b)``. The emphasis sweeps from the shallow
    end (``c = 1``: full updates half the time) to the deep end (``c = b``: the head alone half the
    time); averaged over a cycle it is uniform index sampling, so it costs the same per step.

    >>> s = epoch_shift_schedule(4, epoch_length=5)
    >>> [d.start_probs.tolist() for d in s.distributions][:2]
    [[0.625, 0.125, 0.125, 0.125], [0.125, 0.625, 0.125, 0.125]]
    """
    if not (isinstance(nlayers, int) and nlayers >= 1):
        raise ValueError(f"nlayers must be a positive integer; got nlayers = {nlayers!r}")
    dists = []
    for c in range(nlayers):
        p = np.full(nlayers, 0.5 / nlayers)
        p[c] += 0.5
        dists.append(RPT(p))
    return EpochShift(tuple(dists), epoch_length)


def check_phases(phases, nlayers: int | None = None) -> dict:
    """Validate per-phase constants ``{"starts": [s_0 = 0, s_1, …], "L": [[L_1, …, L_b] per phase],
    "horizon": T}`` (``horizon`` optional: the step the phases were measured to) and return them
    as plain lists; bad input raises a one-line ``ValueError`` naming it."""
    if not isinstance(phases, dict) or not {"starts", "L"} <= set(phases):
        raise ValueError("phase-optimal needs per-phase constants {'starts': [...], 'L': [[...], ...]} (the "
                         "experiment measures them along full Muon's trajectory); got "
                         f"{type(phases).__name__ if not isinstance(phases, dict) else sorted(phases)!r}")
    starts, Ls = list(phases["starts"]), [list(map(float, row)) for row in phases["L"]]
    if len(starts) != len(Ls) or not Ls:
        raise ValueError(f"the phases have {len(starts)} starts but {len(Ls)} rows of L; give one row per phase")
    for p, row in enumerate(Ls):
        if nlayers is not None and len(row) != nlayers:
            raise ValueError(f"phase {p + 1}'s L has {len(row)} entries but the network has {nlayers} layers")
        if not all(np.isfinite(v) and v > 0 for v in row):
            raise ValueError(f"phase {p + 1}'s L must be positive finite numbers; got L = {row!r}")
    return {"starts": starts, "L": Ls, "horizon": phases.get("horizon")}


def phase_optimal_schedule(phases, costs, *, objective: str = "max") -> tuple[Phased, list]:
    """The phase-optimal schedule: in phase ``p`` (steps ``starts[p] ≤ k < starts[p+1]``) the RPT
    start distribution that :func:`solvers.optimal_sampling` finds optimal for that phase's
    constants ``L^{(p)}`` and the per-layer ``costs`` (the ``objective``-form, max by default:
    T1's iteration count ``max_i L_i^{(p)}/π_i`` times the expected cost per step). T1's descent
    step uses smoothness only on the segment between consecutive iterates, so constants measured
    along one phase of training are the ones that phase's steps need. Returns the
    :class:`~dropmuon.verification.synthetic.dropmuon.Phased` schedule and the solver's result per phase
    (each with ``speedup_vs_full``: the predicted speed-up of that phase).

    >>> from dropmuon.theory import CostModel
    >>> s, rs = phase_optimal_schedule({"starts": [0, 5], "L": [[1.0, 1.0], [1e-6, 1.0]]},
    ...                                CostModel.linear([1.0, 1.0]))
    >>> [[round(float(p), 3) for p in d.start_probs] for d in s.distributions], s.starts
    ([[1.0, 0.0], [0.0, 1.0]], (0, 5))
    """
    from dropmuon.solvers import optimal_sampling

    ph = check_phases(phases)
    results = [optimal_sampling(row, costs, family="rpt", objective=objective) for row in ph["L"]]
    return Phased(tuple(r.distribution for r in results), tuple(ph["starts"]), ph["horizon"]), results


def make_schedule(name: str, nlayers: int, *, L=None, costs=None, probs=None, epoch_length: int = 1,
                  phases=None):
    """``(sampler, info)`` for a schedule named in :data:`SAMPLINGS`.

    ``optimal-max`` / ``optimal-sum`` call :func:`solvers.optimal_sampling` (RPT family) with the
    smoothness constants ``L`` and ``costs`` (a :class:`theory.CostModel` or one cost per layer);
    ``custom`` takes RPT start probabilities ``probs``; ``epoch-shift`` is
    :func:`epoch_shift_schedule`. ``info`` records the start distribution and, for the optimal
    ones, the solver's predicted speed-up over full updates. ``phase-optimal`` takes ``phases``
    (per-phase constants, :func:`check_phases`) and ``costs`` (:func:`phase_optimal_schedule`);
    its ``info`` holds each phase's start step, start distribution and predicted speed-up.
    """
    if name not in SAMPLINGS:
        raise ValueError(f"unknown sampling {name!r}; choose one of: {', '.join(SAMPLINGS)}")
    info: dict = {"sampling": name}
    if name == "full":
        dist = RPT.full(nlayers)
    elif name == "uniform":
        dist = RPT.uniform(nlayers)
    elif name == "custom":
        if probs is None:
            raise ValueError("sampling 'custom' needs start probabilities (probs / --probs)")
        probs = np.asarray(probs, dtype=float)
        if probs.ndim != 1 or len(probs) != nlayers:
            raise ValueError(f"the start distribution has {probs.size} entries but the network has {nlayers} "
                             f"layers; give one probability per start layer")
        dist = RPT(probs)
    elif name == "epoch-shift":
        sched = epoch_shift_schedule(nlayers, epoch_length)
        info["start_probs_per_epoch"] = [d.start_probs.tolist() for d in sched.distributions]
        info["epoch_length"] = sched.epoch_length
        info["start_probs"] = np.mean([d.start_probs for d in sched.distributions], axis=0).tolist()
        return sched, info
    elif name == "phase-optimal":
        if phases is None or costs is None:
            raise ValueError("sampling 'phase-optimal' needs per-phase constants and costs (the experiment "
                             "measures them along full Muon's trajectory)")
        check_phases(phases, nlayers)
        sched, results = phase_optimal_schedule(phases, costs)
        info.update(phase_starts=list(sched.starts), phase_horizon=sched.horizon,
                    start_probs_per_phase=[np.asarray(d.start_probs).tolist() for d in sched.distributions],
                    predicted_speedup_per_phase=[r.speedup_vs_full for r in results],
                    solver_status_per_phase=[r.status for r in results],
                    start_probs=(sched.weights @ np.array([d.start_probs for d in sched.distributions])).tolist())
        return sched, info
    else:
        from dropmuon.solvers import optimal_sampling

        if L is None or costs is None:
            raise ValueError(f"sampling {name!r} needs smoothness constants L and costs (measure them, "
                             f"or pass a constants file)")
        if len(L) != nlayers:
            raise ValueError(f"L has {len(L)} entries but the network has {nlayers} layers")
        r = optimal_sampling(list(L), costs, family="rpt", objective=name.split("-")[1])
        dist = r.distribution
        info.update(predicted_speedup_vs_full=r.speedup_vs_full, solver_status=r.status)
    info["start_probs"] = np.asarray(dist.start_probs).tolist()
    return Sampler(dist), info
