"""Hypothesis strategies for random sampling problems."""

import numpy as np
from hypothesis import strategies as st

from dropmuon.theory import CostModel


def _vec(draw, b, lo, hi, ties=True):
    if ties and draw(st.booleans()):
        # small integers make ties (L_j = M_{j-1}) and equal constants likely
        return np.array(draw(st.lists(st.integers(1, 4), min_size=b, max_size=b)), dtype=float)
    return np.array(draw(st.lists(st.floats(lo, hi, allow_nan=False), min_size=b, max_size=b)))


@st.composite
def problems(draw, min_layers=1, max_layers=6, full_model=None, forward=True):
    """(L, costs) with costs a CostModel; ``full_model`` None = either."""
    b = draw(st.integers(min_layers, max_layers))
    L = _vec(draw, b, 0.1, 10.0)
    F = draw(st.floats(0.0, 5.0)) if forward and draw(st.booleans()) else 0.0
    use_full = draw(st.booleans()) if full_model is None else full_model
    if use_full:
        a = _vec(draw, b, 0.0, 3.0, ties=False)
        w = _vec(draw, b, 0.05, 3.0, ties=False)
        u = _vec(draw, b, 0.0, 3.0, ties=False)
        model = CostModel(F, a, w, u)
    else:
        model = CostModel.linear(_vec(draw, b, 0.1, 5.0), forward=F)
    return L, model


@st.composite
def l0l1_problems(draw, max_layers=3, linear=True):
    b = draw(st.integers(1, max_layers))
    L0 = _vec(draw, b, 0.0, 5.0, ties=False)
    L1 = _vec(draw, b, 0.2, 5.0, ties=False)
    F = draw(st.floats(0.0, 3.0))
    c = _vec(draw, b, 0.1, 5.0, ties=False)
    if linear:
        model = CostModel.linear(c, forward=F)
    else:
        model = CostModel(F, _vec(draw, b, 0.0, 2.0, ties=False), c, np.zeros(b))
    Delta0 = draw(st.floats(0.1, 10.0))
    eps = draw(st.floats(0.05, 2.0))
    return dict(L0=L0, L1=L1, Delta0=Delta0, epsilon=eps), model


def hard_instance(seed, b=50):
    """Independent sampling, sum-form, with activation costs: ``(L, CostModel)`` with F, a, w, u
    and L log-uniform over nine decades (a on 70% of the layers, u on half), seeded. Costs this
    uneven gave the local method curvatures ~1e-10..0.25 and 3000-iteration runs before its
    analytic gradient (up to 14 s at b = 50). Shared by the tests and tests/benchmarks/bench_solvers.py."""
    rng = np.random.default_rng(seed)

    def lu(lo, hi, k=None):
        return 10 ** rng.uniform(np.log10(lo), np.log10(hi), k)

    F = float(lu(1e-3, 1e3))
    a = lu(1e-6, 1e3, b) * (rng.uniform(size=b) < 0.7)
    w = lu(1e-6, 1e3, b)
    u = lu(1e-6, 1e3, b) * (rng.uniform(size=b) < 0.5)
    return lu(1e-4, 1e4, b), CostModel(F, a, w, u)
