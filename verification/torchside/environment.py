"""What a timing depends on, recorded with every result: the device and its model, the CPU's
instruction-set flags that decide how fast low-precision arithmetic is, threads, versions — and
the Newton–Schulz dtype chosen from them (bfloat16 only where the hardware has it natively: on a
CPU without native bf16, bf16 Newton–Schulz was measured 36× slower than float32)."""

from __future__ import annotations

import os
import platform
import sys

import torch

__all__ = ["ns_dtype_of", "cpu_model", "cpu_flags", "native_bf16", "default_ns_dtype", "resolve_ns_dtype", "environment",
           "NS_DTYPES", "FLAGS_THAT_MATTER"]

#: CPU flags that change the speed of the work we time (vector width, native bf16 and matrix units)
FLAGS_THAT_MATTER = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "bf16", "asimd", "sve")

#: the Newton–Schulz dtypes a user may name (``auto``: :func:`default_ns_dtype`)
NS_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:  # not Linux: fall back to what platform knows
        return []


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    for line in _cpuinfo():
        if line.lower().startswith(("model name", "hardware")) and ":" in line:
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``); empty when unknown."""
    for line in _cpuinfo():
        if line.lower().startswith(("flags", "features")) and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(device="cpu") -> bool:
    """Whether ``device`` does bfloat16 arithmetic natively: CUDA devices that torch says support
    it; x86 CPUs with ``avx512_bf16`` or ``amx_bf16``; Arm CPUs with ``bf16``. Elsewhere bf16 is
    emulated in float32 with conversions on every operation."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if dev.type != "cpu":
        return False
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})


def default_ns_dtype(device="cpu") -> torch.dtype:
    """bfloat16 (``torch.optim.Muon``'s choice) where :func:`native_bf16`, else float32."""
    return torch.bfloat16 if native_bf16(device) else torch.float32


def resolve_ns_dtype(name, device="cpu") -> torch.dtype:
    """A Newton–Schulz dtype from ``"auto"``, a name of :data:`NS_DTYPES` or a ``torch.dtype``.

    >>> resolve_ns_dtype("float64")
    torch.float64
    """
    if isinstance(name, torch.dtype):
        if name not in NS_DTYPES.values():
            raise ValueError(f"the Newton-Schulz dtype must be one of {', '.join(NS_DTYPES)}; got {name}")
        return name
    if name == "auto":
        return default_ns_dtype(device)
    if name not in NS_DTYPES:
        raise ValueError(f"unknown Newton-Schulz dtype {name!r}; choose auto, {', '.join(NS_DTYPES)}")
    return NS_DTYPES[name]


def ns_dtype_of(optimizer):
    """The Newton–Schulz dtype of the optimizer's Muon groups (``None`` when it has none)."""
    return next((g["ns_dtype"] for g in optimizer.param_groups if g.get("algorithm", "muon") == "muon"), None)


def environment(device="cpu", ns_dtype=None) -> dict:
    """Everything a timing on ``device`` depends on that the settings do not say: device type and
    model, CPU model and the flags of :data:`FLAGS_THAT_MATTER` it has, logical CPUs, torch's
    intra-op threads, whether subnormals are flushed, native bf16, the Newton–Schulz dtype, and
    the versions of Python, torch and numpy."""
    import numpy as np

    from .optimizer import denormals_flushed

    dev = torch.device(device)
    env = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_model(),
        "cpu_model": cpu_model(),
        "cpu_flags": sorted(cpu_flags() & set(FLAGS_THAT_MATTER)),
        "machine": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "native_bf16": native_bf16(device),
        "ns_dtype": str(ns_dtype).replace("torch.", "") if ns_dtype is not None else None,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    if dev.type == "cpu":
        env["denormals_flushed"] = denormals_flushed()
    else:
        env["cuda"] = torch.version.cuda
    return env
