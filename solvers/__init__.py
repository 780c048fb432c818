"""Numerical optimisation of layer-sampling distributions (closed forms, LPs, convex programs),
cross-checked against each other. Depends only on :mod:`theory`."""

__all__: list[str] = []
