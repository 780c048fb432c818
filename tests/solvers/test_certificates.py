"""Optimality certificates: every exact path reports KKT residuals (primal and dual feasibility,
complementarity, stationarity, duality gap) that vanish at its solution — and the residuals do
detect a non-optimal point."""

import numpy as np
import pytest
import scipy.sparse as sps
from hypothesis import given, settings
from hypothesis import strategies as st

from dropmuon.solvers import optimal_sampling
from dropmuon.solvers.lp import lp_residuals
from dropmuon.theory import CostModel

from ..tolerances import KKT_CONVEX, KKT_EXACT
from .strategies import problems

KEYS = ("primal_infeasibility", "dual_infeasibility", "stationarity", "complementarity", "duality_gap")


def _check(res, tol):
    for k in KEYS:
        v = res[k]
        if v is not None:
            assert 0.0 <= v <= tol, (k, v)


@settings(max_examples=100)
@given(problems(max_layers=8), st.sampled_from(["rpt", "independent", "subsets"]))
def test_closed_form_certificates(prob, family):
    L, model = prob
    r = optimal_sampling(L, model, family=family, method="closed-form")
    _check(r.residuals, KKT_EXACT)
    assert r.residuals["stationarity"] is not None


@settings(max_examples=60)
@given(problems(max_layers=8, full_model=False), st.sampled_from(["rpt", "independent", "subsets"]))
def test_lp_certificates(prob, family):
    L, model = prob
    r = optimal_sampling(L, model, family=family, method="lp")
    _check(r.residuals, KKT_EXACT)
    assert all(r.residuals[k] is not None for k in KEYS)


@settings(max_examples=60)
@given(problems(max_layers=6, full_model=False), st.sampled_from(["rpt", "subsets", "independent"]),
       st.sampled_from(["max", "sum"]))
def test_cvxpy_certificates(prob, family, objective):
    L, model = prob
    r = optimal_sampling(L, model, family=family, objective=objective, method="cvxpy")
    if r.status == "optimal" and "polished" not in r.message:
        _check(r.residuals, KKT_CONVEX)


def test_sum_form_water_filling_certificate():
    r = optimal_sampling([1, 4, 9, 2], [1, 2, 1, 3], family="independent", objective="sum", forward_cost=2.0)
    assert r.method == "closed-form"
    _check(r.residuals, KKT_EXACT)


def test_residuals_detect_a_non_optimal_point():
    """min x1 + 2 x2 s.t. x1 + x2 ≥ 1: optimum (1, 0) with dual 1. At the feasible but
    non-optimal (0, 1) with the same multipliers, stationarity holds only with a wrong-signed
    bound multiplier and the duality gap opens."""
    c = np.array([1.0, 2.0])
    A = sps.csr_matrix([[-1.0, -1.0]])
    b = np.array([-1.0])
    good = lp_residuals(c, A, b, None, None, np.array([1.0, 0.0]), np.array([-1.0]), None, np.array([0.0, 1.0]))
    assert max(v for v in good.values()) <= 1e-15
    bad = lp_residuals(c, A, b, None, None, np.array([0.0, 1.0]), np.array([-1.0]), None, np.array([0.0, 1.0]))
    assert bad["complementarity"] > 0.1 and bad["duality_gap"] > 0.1


def test_closed_form_certificate_detects_wrong_costs():
    """The max-form RPT certificate is built for the problem's costs; with tampered start costs
    C = (1, 5, 1, 1) (starting at layer 1 cheaper than at 2) y = M is no longer optimal and the
    certificate shows it: a negative multiplier."""
    from dropmuon.solvers import closed_form
    from dropmuon.solvers._problem import make_problem

    p = make_problem([1, 5, 3, 2], CostModel.linear([1, 1, 1, 1]), "max")
    _, res, _ = closed_form.max_rpt(p)
    assert res["dual_infeasibility"] == 0.0

    class Tampered:
        L = p.L
        model = type("M", (), {"rpt_costs": lambda self: np.array([1.0, 5.0, 1.0, 1.0]), "full_cost": 1.0})()

        def rpt_costs(self):
            return self.model.rpt_costs()

    _, res, _ = closed_form.max_rpt(Tampered())
    assert res["dual_infeasibility"] > 0.1


def test_cvxpy_certificate_with_a_small_constant():
    """Regression (found by hypothesis): with L_1 = 0.125 ≪ max L the interior-point solution's
    slack on layer 1's cover row, 1e-7 relative to L_1, is rounding at the problem's scale; it must
    still count as active, or the recovered multipliers cannot certify the optimum."""
    model = CostModel(forward=0.0, activation=np.zeros(3), weight=np.array([0.109375, 1.0, 1.0]),
                      update=np.zeros(3))
    r = optimal_sampling([0.125, 5.0, 4.0], model, family="rpt", objective="max", method="cvxpy")
    assert r.status == "optimal"
    _check(r.residuals, KKT_CONVEX)
    assert r.total_cost == pytest.approx(10.013671875, rel=1e-8)  # the closed form's value
