"""Synthetic problems with certified constants, a numpy Drop-Muon, bound checks, and the torch
side behind the ``torch`` extra. Depends on :mod:`theory` and :mod:`solvers`."""

__all__: list[str] = []
