"""What a certificate will cost, estimated before the work, and the refusal when it will not fit.

Imports nothing heavy, so ``dropmuon certify`` refuses an impossible ``K`` in a fraction of a second.
"""

from __future__ import annotations

import os

__all__ = ["MAX_K", "MAX_SECONDS", "estimate_cost", "check_fits", "available_memory"]

#: the largest K the all-pairs layer PEP (``certify.layer_worst_case``, cvxpy) is set up for. Its one
#: (K+1)×(K+1) PSD cone costs memory growing like K⁴ and interior-point time like K⁶: K = 50 takes
#: ~18 s and 0.3 GB on 2 cores, K = 100 several minutes and ~2 GB, K = 200 runs out of a 6 GB budget.
#: ``certify`` uses the banded, chordal PEP instead (:mod:`.banded`).
MAX_K = 100
#: the default time limit of ``certify`` (seconds, estimated before the work)
MAX_SECONDS = 600.0


def estimate_cost(K: int, band: int) -> tuple[float, float]:
    """``(seconds, bytes)`` one layer bracket with band ``w`` is expected to need on a 2-core machine:
    build, solve, exact check and witness runs all grow linearly in ``K`` and like the clique size
    (``w + 2``) cubed. Measured with ``w = 1`` (2-core AMD EPYC, 2026-12-07): K = 1000 in 1.8 s,
    K = 3000 in 6.3 s and 181 MB peak (of which ~130 MB is the imported libraries); the estimate rounds
    those up, so a refusal errs on the safe side.

    >>> [round(v, 3) for v in estimate_cost(1000, 1)]
    [2.5, 170000000.0]
    """
    w = max(1, min(int(band), int(K)))
    grow = (w + 2) / 3.0
    return 2.5e-3 * K * grow**3, 1.5e8 + 2e4 * K * grow**2


def available_memory() -> float:
    """Bytes of memory available now (``MemAvailable`` of ``/proc/meminfo``; else total physical)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8e9


def check_fits(K: int, beta: float, *, solver: str = "CLARABEL", max_seconds: float = MAX_SECONDS,
               layers: int = 1) -> None:
    """Refuse, before any work, a certificate that would not finish here: ``ValueError`` with one line
    naming ``K``, the estimate and the largest ``K`` that fits. ``β = 1`` is the closed form (any
    ``K``); ``β < 1`` the banded PEP (:func:`estimate_cost` with band 1, once per distinct ``π``,
    ``layers`` of them); ``solver="SCS"`` the all-pairs SDP (``K ≤`` :data:`MAX_K`).

    >>> check_fits(10**7, 1.0)  # the closed form: any K
    >>> check_fits(10**7, 0.9)
    Traceback (most recent call last):
    ...
    ValueError: K = 10000000 with momentum (beta = 0.9) needs about 2.5e+04 s and 200 GB here ...
    """
    if str(solver).upper() == "SCS":
        if K > MAX_K:
            raise ValueError(f"K = {K} is beyond what the all-pairs SDP can solve here: its (K+1)x(K+1) cone needs "
                             f"memory ~K^4 and time ~K^6 (K = 50: ~18 s); the largest K it accepts is {MAX_K} "
                             f"(the default solver, CLARABEL, scales further)")
        return
    if beta == 1.0:
        return
    mem = available_memory()

    def fits(k):
        sec, byt = estimate_cost(k, 1)
        return sec * layers <= max_seconds and byt <= mem

    if fits(K):
        return
    lo, hi = 0, K
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    sec, byt = estimate_cost(K, 1)
    sec *= layers
    why = [f"max_seconds = {max_seconds:g}"] if sec > max_seconds else []
    if byt > mem:  # named only when binding: the available memory differs from moment to moment
        why.append(f"{mem / 1e9:.3g} GB of memory available")
    raise ValueError(f"K = {K} with momentum (beta = {beta:g}) needs about {sec:.3g} s and {byt / 1e9:.3g} GB "
                     f"here (beyond {' and '.join(why)}); "
                     + (f"the largest K that fits is {lo}" if lo else "no K fits: raise max_seconds"))
