"""Named layer-sampling schedules for training runs (numpy only; the torch side and the CLI use
them): full updates, uniform index sampling, the solver's max- and sum-form optima, our epoch-shift
schedule, and a user's RPT start distribution."""

from __future__ import annotations

import numpy as np

from dropmuon.theory import RPT

from .dropmuon import EpochShift, Sampler

__all__ = ["SAMPLINGS", "make_schedule", "epoch_shift_schedule"]

#: the sampling schedules :func:`make_schedule` builds by name
SAMPLINGS = ("full", "uniform", "optimal-max", "optimal-sum", "epoch-shift", "custom")


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


def make_schedule(name: str, nlayers: int, *, L=None, costs=None, probs=None, epoch_length: int = 1):
    """``(sampler, info)`` for a schedule named in :data:`SAMPLINGS`.

    ``optimal-max`` / ``optimal-sum`` call :func:`solvers.optimal_sampling` (RPT family) with the
    smoothness constants ``L`` and ``costs`` (a :class:`theory.CostModel` or one cost per layer);
    ``custom`` takes RPT start probabilities ``probs``; ``epoch-shift`` is
    :func:`epoch_shift_schedule`. ``info`` records the start distribution and, for the optimal
    ones, the solver's predicted speed-up over full updates.
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
