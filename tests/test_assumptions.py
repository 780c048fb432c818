"""Assumptions A1–A4 carry their constants, validate them and state themselves."""

import pytest

from dropmuon.theory import (
    IndependentSampling,
    LayerwiseL0L1Smoothness,
    LayerwiseSmoothness,
    StochasticGradients,
)


def test_statements_contain_the_constants():
    a1 = LayerwiseSmoothness(L=(1, 4, 2))
    assert a1.L == (1.0, 4.0, 2.0) and a1.nlayers == 3
    assert "L = (1, 4, 2)" in a1.statement() and "descent" in a1.statement()
    assert r"\frac{L_i}{2}" in a1.latex() and "(1, 4, 2)" in a1.latex()
    assert "for all X, Y" in LayerwiseSmoothness(L=(1,), form="lipschitz").statement()
    a2 = LayerwiseL0L1Smoothness(L0=(0, 0.5), L1=(1, 2))
    assert "L^{0}_i" in a2.latex() and "L0 = (0, 0.5)" in a2.statement()
    a3 = StochasticGradients(sigma=(0.1,), rho=(3,))
    assert r"\sigma_i^2" in a3.latex() and "rho = (3)" in a3.statement()
    a4 = IndependentSampling(pi=(0.5, 1))
    assert a4.label == "A4" and "pi = (0.5, 1)" in a4.statement()


@pytest.mark.parametrize("call,msg", [
    (lambda: LayerwiseSmoothness(L=(1, -2)), "L_2 = -2.0"),
    (lambda: LayerwiseSmoothness(L=(1,), form="nope"), "form = 'nope'"),
    (lambda: LayerwiseL0L1Smoothness(L0=(-1,), L1=(1,)), "L0_1 = -1.0"),
    (lambda: LayerwiseL0L1Smoothness(L0=(0, 0), L1=(1,)), "L0 has 2 entries, L1 has 1"),
    (lambda: StochasticGradients(sigma=(float("inf"),), rho=(1,)), "sigma_1 = inf"),
    (lambda: IndependentSampling(pi=(0.0,)), "pi_1 = 0.0"),
    (lambda: IndependentSampling(pi=()), "pi is empty"),
])
def test_bad_constants(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
