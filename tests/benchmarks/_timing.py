"""Tiny timing helpers for the benchmarks: medians of repeats, and tables of ratios against a
baseline measured in the same run (never against numbers from another machine or day)."""

from __future__ import annotations

import statistics
import sys
import time


def measure(fn, *, repeat: int = 7, number: int = 1, warmup: int = 1) -> float:
    """Median wall-clock seconds of one call of ``fn`` over ``repeat`` batches of ``number``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def table(title: str, rows: list[tuple[str, float]], baseline: str) -> None:
    """Print ``rows`` (label, seconds) with each row's ratio to the row named ``baseline``."""
    base = dict(rows)[baseline]
    print(f"\n{title}")
    print(f"  {'case':58s} {'time':>12s} {'vs ' + baseline[:18]:>22s}")
    for label, sec in rows:
        print(f"  {label:58s} {_fmt(sec):>12s} {sec / base:>21.3g}x")


def _fmt(sec: float) -> str:
    if sec >= 1:
        return f"{sec:.3f} s"
    if sec >= 1e-3:
        return f"{sec * 1e3:.3f} ms"
    return f"{sec * 1e6:.2f} us"


def require_torch():
    """``torch``, with subnormal floats flushed to zero; exits the benchmark (status 0) without the
    torch extra. Called before torch's first parallel operation so that its worker threads inherit
    the flag: subnormals would otherwise put late-training CPU steps on a slow path
    (``dropmuon.verification.torchside.optimizer.denormals_flushed``)."""
    try:
        import torch
    except ImportError:  # the torch extra is optional
        print("torch is not installed: skipped")
        sys.exit(0)
    torch.set_flush_denormal(True)
    return torch
