"""Theorems T1–T4 (docs/theory.md): generated numerics against sympy and against independent
formulas, reductions (full sampling, one layer, split layers, Gluon, δ = 0), the tight instance of
T1, optimal steps, iteration counts and bad input."""

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from dropmuon.theory import symbols as S
from dropmuon.theory import theorems
from dropmuon.theory.bounds import (
    gluon_theorem1_iterations,
    inexact_constant_radius,
    l0l1_deterministic,
    smooth_constant_radius,
    smooth_deterministic,
    smooth_stochastic,
)
from dropmuon.theory.norms import get_norm

from .tolerances import FORMULA_RTOL, LAMBDIFY_RTOL

ALL = list(theorems.values())


# -- random inputs ---------------------------------------------------------------------------

def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def instances(draw, theorem, max_layers=6, fix_params=True):
    """Random valid constants for ``theorem`` (per-layer arrays, Delta0, maybe eta/beta)."""
    b = draw(st.integers(1, max_layers))
    gens = {
        "L": _floats(0.01, 100.0),
        "L0": _floats(0.0, 10.0),
        "L1": _floats(0.05, 20.0),
        "pi": _floats(0.05, 1.0),
        "sigma": _floats(0.0, 2.0),
        "rho": _floats(1.0, 8.0),
        "delta": _floats(0.0, 0.9),
    }
    c = {n: np.array(draw(st.lists(gens[n], min_size=b, max_size=b))) for n in theorem.per_layer}
    c["Delta0"] = draw(_floats(0.01, 100.0))
    if fix_params:
        for p in theorem.parameters:
            if draw(st.booleans()):
                c[p] = draw(_floats(1e-3, 1.0)) if p == "eta" else draw(_floats(0.01, 1.0))
    return c


_CONCRETE = {}


def _concrete(expr, b):
    """``S.concrete(expr, b)``, once per expression and layer count: expanding the sums and maxima
    symbolically is most of an example's time, and depends on neither the constants nor K (the
    same sympy expression every time; only the exact evaluation below sees the example)."""
    key = (expr, b)
    if key not in _CONCRETE:
        _CONCRETE[key] = S.concrete(expr, b)
    return _CONCRETE[key]


def _sympy_value(expr, c, K, params=None, eps=None):
    """Evaluate a generic expression with sympy at 30 digits (no lambdify)."""
    b = len(next(v for k, v in c.items() if isinstance(v, np.ndarray)))
    e = _concrete(expr, b)
    subs = {}
    for sym in e.free_symbols:
        name = sym.name
        if "_" in name and name.rsplit("_", 1)[1].isdigit() and name.rsplit("_", 1)[0] in S.PER_LAYER:
            base, j = name.rsplit("_", 1)
            subs[sym] = sp.Float(repr(float(c[base][int(j) - 1])), 30)
    scal = {S.Delta0: c["Delta0"], S.K: K, S.b: b}
    for p, v in (params or {}).items():
        scal[S.SCALARS[p]] = v
    if eps is not None:
        scal[S.epsilon] = eps
    for k, v in scal.items():
        subs[k] = sp.Float(repr(float(v)), 30)
    return float(e.xreplace(subs).evalf(30))


def _full(theorem, c):
    """Fill defaults the way the theorem does."""
    v = theorem.prepare(**c)
    return {k: v[k] for k in theorem.per_layer} | {"Delta0": v["Delta0"]} | {
        p: v[p] for p in theorem.parameters if p in v
    }


# -- generated numerics agree with sympy -----------------------------------------------------

@pytest.mark.parametrize("theorem", ALL, ids=lambda t: t.name)
@given(data=st.data())
def test_numeric_equals_sympy(theorem, data):
    """Every statement, every additive term and every step-rule value: the generated numpy
    function equals the sympy expression evaluated exactly at random points."""
    c = _full(theorem, data.draw(instances(theorem)))
    K = data.draw(st.integers(1, 10**6))
    for name in theorem.statements:
        bound = theorem.evaluate(K, statement=name, **c)
        params = dict(bound.parameters)
        rhs = theorem.statement(name).rhs
        assert bound.value == pytest.approx(_sympy_value(rhs, c, K, params), rel=LAMBDIFY_RTOL)
        assert sum(v for _, v in bound.terms) == pytest.approx(bound.value, rel=LAMBDIFY_RTOL)
    # rule values against the rule expressions, at the other parameters the step reports
    step = theorem.step(K, **c)
    fixed = frozenset(p for p in theorem.parameters if p in c)
    for p, rule in theorem._rule_table[fixed | (set(theorem.parameters) - {"eta"} - fixed)
                                       if theorem.parameters == ("eta", "beta") else fixed].items():
        others = {q: step[q] for q in theorem.parameters if q != p}
        assert step[p] == pytest.approx(_sympy_value(rule, c, K, others), rel=LAMBDIFY_RTOL)


# -- against independent formulas (hand-written from docs/theory.md) -------------

def ref_T1(L, pi, Delta0, K):
    return 2 * Delta0 * np.max(L / pi) / K


def ref_T1p(L, pi, Delta0, K, eta):
    return Delta0 / (K * eta) + eta / 2 * np.sum(L / pi)


def ref_T2(L0, L1, pi, Delta0, K):
    Q = 2 * Delta0 / K
    A = np.sum(pi * L0 / L1**2)
    return (Q + math.sqrt(Q * Q + 4 * Q * A)) / 2


def ref_T4(L, pi, sigma, rho, delta, Delta0, K, eta, beta, noise=None):
    """T4's rate bound (T3's with δ = 0); ``noise`` is the factor of 2R, sqrt(β/(2−β)) by
    default (the proof's sharper form), ``np.sqrt`` for the earlier sqrt(β) form."""
    S2 = np.sum((1 + delta) ** 2 * L / pi)
    S1 = np.sum((1 + delta) * L / pi)
    R = np.sum(rho * sigma)
    Rp = np.sum(rho * sigma / pi)
    factor = np.sqrt(beta / (2 - beta)) if noise is None else noise(beta)
    B = (Delta0 / (K * eta) + eta / 2 * S2 + 2 * eta * (1 - beta) / beta * S1
         + 2 * factor * R + 2 * (1 - beta) / (K * beta) * Rp)
    return B / (1 - np.max(delta))


def ref_eta_star(L, pi, delta, Delta0, K, beta):
    """η*(β) = sqrt(Δ0/(K C(β))), C(β) = S₂/2 + 2S₁(1−β)/β: the exact minimiser over η."""
    S2 = np.sum((1 + delta) ** 2 * L / pi)
    S1 = np.sum((1 + delta) * L / pi)
    return np.sqrt(Delta0 / (K * (S2 / 2 + 2 * S1 * (1 - beta) / beta)))


@given(data=st.data())
def test_against_reference_formulas(data):
    K = data.draw(st.integers(1, 10**6))
    eta = data.draw(_floats(1e-4, 1.0))
    beta = data.draw(_floats(0.01, 1.0))
    c = _full(smooth_deterministic, data.draw(instances(smooth_deterministic)))
    assert smooth_deterministic.evaluate(K, **c).value == pytest.approx(
        ref_T1(c["L"], c["pi"], c["Delta0"], K), rel=FORMULA_RTOL)
    c = _full(smooth_constant_radius, data.draw(instances(smooth_constant_radius, fix_params=False)))
    assert smooth_constant_radius.evaluate(K, eta=eta, **c).value == pytest.approx(
        ref_T1p(c["L"], c["pi"], c["Delta0"], K, eta), rel=FORMULA_RTOL)
    c = _full(l0l1_deterministic, data.draw(instances(l0l1_deterministic)))
    assert l0l1_deterministic.evaluate(K, **c).value == pytest.approx(
        ref_T2(c["L0"], c["L1"], c["pi"], c["Delta0"], K), rel=FORMULA_RTOL)
    Q, W = 2 * c["Delta0"] / K, 1 / np.min(c["pi"])
    Ap = np.sum(c["L0"] / (c["pi"] * c["L1"] ** 2))
    assert l0l1_deterministic.evaluate(K, statement="unweighted", **c).value == pytest.approx(
        (Q * W + math.sqrt(Q * Q * W * W + 4 * Q * Ap)) / 2, rel=FORMULA_RTOL)
    # it is never weaker than dividing the rate bound by min pi
    assert l0l1_deterministic.evaluate(K, statement="unweighted", **c).value <= (
        ref_T2(c["L0"], c["L1"], c["pi"], c["Delta0"], K) * W * (1 + FORMULA_RTOL))
    c = _full(inexact_constant_radius, data.draw(instances(inexact_constant_radius, fix_params=False)))
    assert inexact_constant_radius.evaluate(K, eta=eta, beta=beta, **c).value == pytest.approx(
        ref_T4(c["L"], c["pi"], c["sigma"], c["rho"], c["delta"], c["Delta0"], K, eta, beta),
        rel=FORMULA_RTOL)
    c3 = {k: v for k, v in c.items() if k != "delta"}
    assert smooth_stochastic.evaluate(K, eta=eta, beta=beta, **c3).value == pytest.approx(
        ref_T4(c["L"], c["pi"], c["sigma"], c["rho"], 0 * c["L"], c["Delta0"], K, eta, beta),
        rel=FORMULA_RTOL)


# -- reductions --------------------------------------------------------------------------------

def _zero(expr):
    return sp.simplify(sp.expand(expr.doit())) == 0


def _pi1(theorem, statement=None, tuned=False):
    return S.set_all(theorem.expression(statement, tuned), "pi", 1)


def test_full_sampling_gives_full_network_rates():
    """π ≡ 1: each rate becomes the full-network layer-wise rate, written here independently."""
    i = S.i
    L, L0, L1 = S.L[i], S.L0[i], S.L1[i]
    D0, K, eta = S.Delta0, S.K, S.eta
    assert _zero(_pi1(smooth_deterministic) - 2 * D0 * S.layer_max(L) / K)
    assert _zero(_pi1(smooth_deterministic, "weighted") - 2 * D0 / K)
    assert _zero(_pi1(smooth_constant_radius) - (D0 / (K * eta) + eta / 2 * S.layer_sum(L)))
    assert _zero(_pi1(smooth_constant_radius, tuned=True) - sp.sqrt(2 * D0 * S.layer_sum(L) / K))
    Q = 2 * D0 / K
    A = S.layer_sum(L0 / L1**2)
    assert _zero(_pi1(l0l1_deterministic) - (Q + sp.sqrt(Q**2 + 4 * Q * A)) / 2)
    # iteration counts with full sampling
    for t, want in [
        (smooth_deterministic, 2 * D0 * S.layer_max(L) / S.epsilon**2),
        (smooth_constant_radius, 2 * D0 * S.layer_sum(L) / S.epsilon**2),
    ]:
        assert _zero(S.set_all(t.iterations_expression, "pi", 1) - want)


@pytest.mark.parametrize("nlayers", [1, 2, 3, 4])
def test_l0l1_with_full_sampling_is_gluon_theorem1(nlayers):
    """T2 with π ≡ 1 is Gluon's Theorem 1 exactly: Gluon's metric Σ((1/L1_i)/m)‖g_i‖ ≤ ε is ours
    Σ(1/L1_i)‖g_i‖ ≤ m ε, so K_T2(m ε) − K_Gluon(ε) simplifies to zero (concrete b)."""
    m = S.layer_sum(1 / S.L1[S.i]) / S.b
    ours = S.set_all(l0l1_deterministic.iterations_expression, "pi", 1).subs(S.epsilon, S.epsilon * m)
    diff = S.concrete(ours, nlayers) - S.concrete(gluon_theorem1_iterations(), nlayers)
    assert sp.simplify(diff) == 0


def test_l0l1_unweighted_equals_rate_with_full_sampling():
    """With π ≡ 1 the π-free statement and its K coincide with the rate statement's."""
    st = l0l1_deterministic
    assert _zero(_pi1(st, "unweighted") - _pi1(st, "rate"))
    u = S.set_all(st.iterations_expressions["unweighted"], "pi", 1)
    assert _zero(u - S.set_all(st.iterations_expression, "pi", 1))


def test_l0l1_with_full_sampling_is_gluon_theorem1_generic_b():
    """The same identity for symbolic b (sums kept as atoms)."""
    m = S.layer_sum(1 / S.L1[S.i]) / S.b
    ours = S.set_all(l0l1_deterministic.iterations_expression, "pi", 1).subs(S.epsilon, S.epsilon * m)
    assert sp.simplify(ours - gluon_theorem1_iterations()) == 0


def test_one_layer_gives_single_block_rates():
    """b = 1 with π = 1: the classical single-block results."""
    L, L0, L1 = sp.symbols("L_1 L0_1 L1_1", positive=True)
    D0, K, eta, eps = S.Delta0, S.K, S.eta, S.epsilon
    c1 = lambda e: S.concrete(S.set_all(e, "pi", 1), 1).subs(  # noqa: E731
        {sp.Symbol("L_1", positive=True): L})
    # gradient descent with step 1/L: min ‖∇f‖² ≤ 2 L Δ0 / K
    assert sp.simplify(c1(smooth_deterministic.expression()) - 2 * L * D0 / K) == 0
    # normalised steepest descent with radius η: Δ0/(Kη) + Lη/2
    assert sp.simplify(c1(smooth_constant_radius.expression()) - (D0 / (K * eta) + L * eta / 2)) == 0
    # (L0,L1) normalised GD: ‖∇f‖ ≤ ε' after 2Δ0 L1/ε' + 2Δ0 L0/ε'² (metric ‖g‖/L1 ≤ ε, ε' = L1 ε)
    K2 = S.concrete(S.set_all(l0l1_deterministic.iterations_expression, "pi", 1), 1)
    epsp = sp.Symbol("epsilon_prime", positive=True)
    K2 = K2.subs(eps, epsp / sp.Symbol("L1_1", positive=True))
    want = 2 * D0 * sp.Symbol("L1_1", positive=True) / epsp + 2 * D0 * sp.Symbol("L0_1", nonnegative=True) / epsp**2
    assert sp.simplify(K2 - want) == 0


def test_inexact_with_delta_zero_is_constant_radius_and_stochastic():
    """T4 with δ = 0 is T3; with β = 1 and σ = 0 it is T1′ (symbolically, generic b)."""
    t4 = S.set_all(inexact_constant_radius.expression(), "delta", 0)
    assert _zero(t4 - smooth_stochastic.expression())
    t4w = S.set_all(inexact_constant_radius.expression("weighted"), "delta", 0)
    assert _zero(t4w - smooth_stochastic.expression())
    det = S.set_all(t4.subs(S.beta, 1), "sigma", 0)
    assert _zero(det - smooth_constant_radius.expression())
    det3 = S.set_all(smooth_stochastic.expression().subs(S.beta, 1), "sigma", 0)
    assert _zero(det3 - smooth_constant_radius.expression())


@given(data=st.data())
def test_inexact_delta_zero_numerically(data):
    """…and numerically: same iterations and bounds for random constants."""
    c = _full(smooth_constant_radius, data.draw(instances(smooth_constant_radius, fix_params=False)))
    eps = data.draw(_floats(0.01, 10.0))
    b = len(c["L"])
    k1 = smooth_constant_radius.iterations(eps, **c)
    k4 = inexact_constant_radius.iterations(eps, delta=np.zeros(b), **c)
    k3 = smooth_stochastic.iterations(eps, **c)
    assert k1 == k4 == k3
    assert inexact_constant_radius.evaluate(k1, **c).value == pytest.approx(
        smooth_constant_radius.evaluate(k1, **c).value, rel=FORMULA_RTOL)


def test_smooth_deterministic_is_attained_on_separable_quadratic():
    """T1's weighted statement holds with equality on f = Σ (L_i/2)‖X_i‖_F² (Frobenius norm),
    full sampling, K = 1: one sharp step 1/L_i lands on the minimiser."""
    rng = np.random.default_rng(7)
    L = np.array([0.5, 3.0, 8.0])
    X = [rng.standard_normal((3, 2)), rng.standard_normal((4, 4)), rng.standard_normal(5)]
    N = get_norm("frobenius")
    f = lambda Xs: sum(Li / 2 * np.sum(x * x) for Li, x in zip(L, Xs))  # noqa: E731
    grads = [Li * x for Li, x in zip(L, X)]
    X1 = [x - N.sharp(g) / Li for x, g, Li in zip(X, grads, L)]
    Delta0 = f(X) - 0.0
    assert f(X1) == pytest.approx(0.0, abs=1e-14)
    lhs = sum(1.0 / Li * N.dual(g) ** 2 for Li, g in zip(L, grads))  # π = 1, K = 1
    bound = smooth_deterministic.evaluate(1, statement="weighted", L=L, Delta0=Delta0).value
    assert lhs == pytest.approx(bound, rel=FORMULA_RTOL)


@given(data=st.data())
def test_splitting_a_layer_changes_nothing_for_smooth_deterministic(data):
    """Splitting layer j into two identical halves (same L_j, π_j) leaves T1's rate and K
    unchanged (the max-form only sees the largest L_i/π_i). The sum-form theorems measure
    Σ_i ‖g_i‖_*, which itself changes under splitting, so the property does not apply there."""
    c = _full(smooth_deterministic, data.draw(instances(smooth_deterministic)))
    j = data.draw(st.integers(0, len(c["L"]) - 1))
    split = {k: np.insert(v, j, v[j]) if isinstance(v, np.ndarray) else v for k, v in c.items()}
    eps = data.draw(_floats(0.01, 10.0))
    assert smooth_deterministic.iterations(eps, **c) == smooth_deterministic.iterations(eps, **split)
    assert smooth_deterministic.evaluate(10, **c).value == smooth_deterministic.evaluate(10, **split).value


# -- optimal steps -------------------------------------------------------------------------------

def test_optimal_steps_are_stationary_points():
    eta = S.eta
    # T1′: d/dη of the bound vanishes at η*
    rhs = smooth_constant_radius.expression()
    star = smooth_constant_radius.optimal_step["eta"]
    assert _zero(sp.diff(rhs, eta).subs(eta, star))
    assert _zero(smooth_constant_radius.expression(tuned=True) - sp.sqrt(2 * S.Delta0 * S.layer_sum(S.L[S.i] / S.pi[S.i]) / S.K))
    # T3, T4: η*(β) is stationary for every β (the bound is convex in η)
    for t in (smooth_stochastic, inexact_constant_radius):
        rhs = t.expression("weighted" if t is inexact_constant_radius else None)
        star = t.optimal_step["eta"]
        assert _zero(sp.diff(rhs, eta).subs(eta, star))
    # T1: γ = 1/L maximises the per-layer decrease γ‖g‖² − (L/2)γ²‖g‖²
    g, gam, L = sp.symbols("g gamma L", positive=True)
    dec = gam * g**2 - L / 2 * gam**2 * g**2
    assert sp.solve(sp.diff(dec, gam), gam) == [1 / L]
    assert smooth_deterministic.optimal_step["gamma"] == 1 / S.L[S.i]


def test_inexact_step_shrinks_by_one_plus_delta():
    """With a common δ, β = 1 and σ = 0: η*(δ) = η*(0)/(1 + δ) (docs/theory.md, T4)."""
    d = sp.Symbol("d", nonnegative=True)
    star = S.set_all(inexact_constant_radius.optimal_step["eta"].subs(S.beta, 1), "delta", d)
    star0 = smooth_constant_radius.optimal_step["eta"]
    assert sp.simplify((star - star0 / (1 + d)).doit()) == 0


# -- iteration counts ------------------------------------------------------------------------------

TARGETED = [(t, st_) for t in ALL for st_ in t.statements if t.statements[st_].target is not None]


@pytest.mark.parametrize("theorem,statement", TARGETED, ids=lambda x: getattr(x, "name", x))
@given(data=st.data())
def test_iterations_is_the_smallest_sufficient_K(theorem, statement, data):
    c = data.draw(instances(theorem, max_layers=4))
    eps = data.draw(_floats(0.05, 20.0))
    try:
        K = theorem.iterations(eps, statement=statement, **c)
    except ValueError as e:  # only fixed parameters can make a target unreachable
        assert "unreachable" in str(e)
        assert any(p in c for p in theorem.parameters)
        return
    target = theorem.target(eps, statement)
    assert theorem.evaluate(K, statement=statement, **c).value <= target * (1 + 1e-12)
    # Minimality: one iteration less must miss the target. The bounds change by O(1/K) relative
    # from K-1 to K, which double precision (2.2e-16) resolves only while K is below ~1e13; beyond
    # that "the smallest K" is not defined in floating point and only sufficiency is checked.
    if 1 < K < 1e13:
        assert theorem.evaluate(K - 1, statement=statement, **c).value > target


@pytest.mark.parametrize("theorem", [smooth_stochastic, inexact_constant_radius], ids=lambda t: t.name)
@given(data=st.data())
def test_closed_form_and_search_agree(theorem, data):
    """Without noise T3/T4 use a closed form; bisection on the bound gives the same K."""
    c = data.draw(instances(theorem, max_layers=4, fix_params=False))
    c["sigma"] = np.zeros(len(c["L"]))
    eps = data.draw(_floats(0.05, 20.0))
    v = theorem.prepare(**c)
    assert theorem.iterations(eps, **c) == theorem._search(v, theorem.target(eps), frozenset())


@pytest.mark.parametrize("theorem", [smooth_stochastic, inexact_constant_radius], ids=lambda t: t.name)
@given(data=st.data())
def test_tuned_stochastic_bound_decreases_in_K(theorem, data):
    """The bisection for K(ε) needs the tuned bound to be non-increasing in K."""
    c = data.draw(instances(theorem, max_layers=4, fix_params=False))
    Ks = np.unique(np.round(np.logspace(0, 9, 400)))
    vals = theorem.evaluate_many(Ks, **c)
    # the minimiser over beta is found to ~1e-13 relative, so the tuned values carry that error
    assert np.all(np.diff(vals) <= 1e-10 * vals[:-1])


_GENERATED = {}


def _bound_and_eta_star(theorem):
    """The numpy functions generated from the theorem's bound and its η*(β) expression, once per
    theorem (sympy's code generation is most of an example's time; the expressions are fixed)."""
    if theorem.name not in _GENERATED:
        scal = ["Delta0", "K", "eta", "beta", "epsilon", "b"]
        _GENERATED[theorem.name] = (S.numeric(theorem.expression(), list(S.PER_LAYER), scal),
                                    S.numeric(theorem.optimal_step["eta"], list(S.PER_LAYER), scal))
    return _GENERATED[theorem.name]


@pytest.mark.parametrize("theorem", [smooth_stochastic, inexact_constant_radius], ids=lambda t: t.name)
@given(data=st.data())
def test_chosen_beta_minimises_the_bound(theorem, data):
    """β from the step rule is no worse than any β on a dense grid (η tuned or fixed alike)."""
    c = data.draw(instances(theorem, max_layers=4, fix_params=False))
    if data.draw(st.booleans()):
        c["eta"] = data.draw(_floats(1e-4, 1.0))
    K = float(data.draw(st.integers(1, 10**8)))
    best = theorem.evaluate(K, **c).value
    # the bound on a dense grid of beta, from the sympy expressions directly (not the class)
    v = theorem.prepare(**c)
    per = [v.get(n, np.ones(v["b"])) for n in S.PER_LAYER]
    rhs, eta_star = _bound_and_eta_star(theorem)
    betas = np.logspace(-12, 0, 20001)
    eta = c["eta"] if "eta" in c else eta_star(*per, v["Delta0"], K, np.nan, betas, np.nan, v["b"])
    vals = rhs(*per, v["Delta0"], K, eta, betas, np.nan, v["b"])
    assert best <= np.min(vals) * (1 + 1e-12)


RULE_CASES = [(K, scale, eta) for K in (10.0, 1e3, 1e6) for scale in (0.01, 0.3, 3.0)
              for eta in (None, 1e-3, 0.05)]


@pytest.mark.parametrize("theorem", [smooth_stochastic, inexact_constant_radius], ids=lambda t: t.name)
@pytest.mark.parametrize("K,scale,eta", RULE_CASES)
def test_rule_beta_is_the_brute_force_minimiser(theorem, K, scale, eta):
    """The rule's β (η given, or joint with η = η*(β)) is the minimiser of the bound: no β on a
    dense grid (20001 log-spaced in [1e-12, 1], hand-written bound) does better, the grid's best β
    is a neighbour of the rule's, and a fine grid around the rule's β (±1%) has its best point
    within two of its steps (2·10⁻⁵ relative). The joint rule also beats a 2-D (β, η) grid."""
    c = dict(L=np.array([1.0, 4.0, 2.0]), pi=np.array([0.5, 1.0, 1.0]),
             sigma=scale * np.array([1.0, 0.5, 2.0]), rho=np.array([1.0, 2.0, 1.0]), Delta0=10.0)
    delta = np.array([0.3, 0.1, 0.5]) if theorem is inexact_constant_radius else np.zeros(3)
    if theorem is inexact_constant_radius:
        c["delta"] = delta
    if eta is not None:
        c["eta"] = eta
    bound = theorem.evaluate(int(K), **c)
    beta_rule = float(bound.parameters["beta"])
    assert 0 < beta_rule <= 1

    def h(beta):
        e = eta if eta is not None else ref_eta_star(c["L"], c["pi"], delta, c["Delta0"], K, beta)
        return ref_T4(c["L"], c["pi"], c["sigma"], c["rho"], delta, c["Delta0"], K, e, beta)

    assert bound.value == pytest.approx(h(beta_rule), rel=FORMULA_RTOL)
    betas = np.logspace(-12, 0, 20001)
    vals = h(betas)
    assert bound.value <= np.min(vals) * (1 + 1e-12)
    j = int(np.argmin(vals))
    assert betas[max(j - 1, 0)] * (1 - 1e-12) <= beta_rule <= betas[min(j + 1, betas.size - 1)] * (1 + 1e-12)
    fine = np.linspace(beta_rule * 0.99, min(1.0, beta_rule * 1.01), 2001)
    k = int(np.argmin(h(fine)))
    assert abs(fine[k] - beta_rule) <= 2 * (fine[1] - fine[0]) * (1 + 1e-9)
    if eta is None:
        # the pair (η, β) against a 2-D grid: β log-spaced, η from η*(β)/30 to 30 η*(β)
        b2 = np.logspace(-8, 0, 1501)[:, None]
        e2 = ref_eta_star(c["L"], c["pi"], delta, c["Delta0"], K, b2) * np.logspace(-1.5, 1.5, 1001)[None, :]
        grid = ref_T4(c["L"], c["pi"], c["sigma"], c["rho"], delta, c["Delta0"], K, e2, b2)
        assert bound.value <= np.min(grid) * (1 + 1e-12)
        assert float(bound.parameters["eta"]) == pytest.approx(
            ref_eta_star(c["L"], c["pi"], delta, c["Delta0"], K, beta_rule), rel=FORMULA_RTOL)


@pytest.mark.parametrize("theorem", [smooth_stochastic, inexact_constant_radius], ids=lambda t: t.name)
@pytest.mark.parametrize("beta", [1e-6, 0.01, 0.2, 0.5, 0.9, 1.0])
def test_sharper_noise_term_is_below_the_sqrt_beta_form(theorem, beta):
    """The bound's noise term is 2 sqrt(β/(2−β)) R: 1/sqrt(2−β) times the earlier 2 sqrt(β) R
    (equal at β = 1), and the whole bound is at most the earlier one, by exactly that difference."""
    c = dict(L=np.array([1.0, 4.0, 2.0]), pi=np.array([0.5, 1.0, 1.0]),
             sigma=np.array([0.3, 0.1, 0.7]), rho=np.array([1.0, 2.0, 1.0]), Delta0=10.0)
    delta = np.array([0.3, 0.1, 0.5]) if theorem is inexact_constant_radius else np.zeros(3)
    if theorem is inexact_constant_radius:
        c["delta"] = delta
    K, eta, R = 1000, 0.01, float(np.sum(c["rho"] * c["sigma"]))
    name = "weighted" if theorem is inexact_constant_radius else "rate"
    bound = theorem.evaluate(K, statement=name, eta=eta, beta=beta, **c)
    # the additive term carrying R alone: it involves sigma but not K
    terms = [v for t, (_, v) in zip(sp.Add.make_args(theorem.statement(name).rhs), bound.terms)
             if t.has(S.sigma) and not t.has(S.K)]
    assert len(terms) == 1
    assert terms[0] == pytest.approx(2 * math.sqrt(beta / (2 - beta)) * R, rel=FORMULA_RTOL)
    assert terms[0] / (2 * math.sqrt(beta) * R) == pytest.approx(1 / math.sqrt(2 - beta), rel=FORMULA_RTOL)
    new = theorem.evaluate(K, eta=eta, beta=beta, **c).value
    old = ref_T4(c["L"], c["pi"], c["sigma"], c["rho"], delta, c["Delta0"], K, eta, beta, noise=np.sqrt)
    assert new <= old * (1 + 1e-15)
    gap = 2 * R * (math.sqrt(beta) - math.sqrt(beta / (2 - beta))) / (1 - np.max(delta))
    assert old - new == pytest.approx(gap, rel=1e-9, abs=1e-14 * old)
    # and the tuned bound (each rule minimises its own bound) is no larger either
    tuned_new = theorem.evaluate(K, **c).value
    betas = np.logspace(-12, 0, 20001)
    old_tuned = np.min(ref_T4(c["L"], c["pi"], c["sigma"], c["rho"], delta, c["Delta0"], K,
                              ref_eta_star(c["L"], c["pi"], delta, c["Delta0"], K, betas), betas, noise=np.sqrt))
    assert tuned_new <= old_tuned


def test_known_iteration_counts():
    """Hand-computed: T1 2·10·max(1/0.5, 4, 2)/0.1² = 8000; T1′ 2·10·(2+4+2)/0.01 = 16000;
    T2 with L0 = 0: 2Δ0/ε = 200; T4 with δ = 0.3: 2·10·1.69·8/(0.01·0.49) = 55183.7 → 55184."""
    L, pi = [1, 4, 2], [0.5, 1, 1]
    assert smooth_deterministic.iterations(0.1, L=L, pi=pi, Delta0=10) == 8000
    assert smooth_constant_radius.iterations(0.1, L=L, pi=pi, Delta0=10) == 16000
    assert l0l1_deterministic.iterations(0.1, L0=[0, 0, 0], L1=L, pi=pi, Delta0=10) == 200
    assert inexact_constant_radius.iterations(0.1, L=L, pi=pi, delta=[0.3] * 3, Delta0=10) == 55184


def test_fixed_step_can_make_target_unreachable():
    # floor of T1′ with η fixed: η Σ L/π / 2 = 0.5 · 7 / 2 = 1.75 > ε
    with pytest.raises(ValueError, match="unreachable"):
        smooth_constant_radius.iterations(1.0, L=[1, 4, 2], Delta0=1, eta=0.5)
    # but a small enough η reaches it: K = ⌈Δ0/(η(ε − η·7/2))⌉ = ⌈1/(0.1·0.65)⌉ = 16
    assert smooth_constant_radius.iterations(1.0, L=[1, 4, 2], Delta0=1, eta=0.1) == 16


# -- objects, LaTeX, docstrings ----------------------------------------------------------------

@pytest.mark.parametrize("theorem", ALL, ids=lambda t: t.name)
def test_latex_comes_from_the_expression(theorem):
    for st_ in theorem.statements.values():
        assert theorem.latex(st_.name).endswith(S.latex(st_.rhs))
        assert r"\le" in theorem.latex(st_.name)
    assert theorem.latex_all().startswith(r"\begin{aligned}")


@pytest.mark.parametrize("theorem", ALL, ids=lambda t: t.name)
def test_latex_is_well_formed(theorem):
    """Balanced braces and no double superscript such as L^{1}_{i}^{2}."""
    import re

    texts = [theorem.latex_all()] + [S.latex(S.concrete(st_.rhs, 2)) for st_ in theorem.statements.values()]
    for tex in texts:
        depth = 0
        for ch in tex:
            depth += {"{": 1, "}": -1}.get(ch, 0)
            assert depth >= 0
        assert depth == 0
        # a superscript group followed (after an optional subscript group) by another superscript
        assert not re.search(r"\^\{[^{}]*\}(_\{[^{}]*\})?\^", tex), tex


@pytest.mark.parametrize("theorem", ALL, ids=lambda t: t.name)
def test_docstring_has_the_house_order(theorem):
    doc = type(theorem).__doc__
    heads = ["**Setting.**", "**Algorithm.**", "**Statement**", "**Source.**", "**Example.**"]
    pos = [doc.find(h) for h in heads]
    assert all(p > 0 for p in pos), pos
    assert pos == sorted(pos)
    assert "derived" in doc.lower()


@pytest.mark.parametrize("theorem", ALL, ids=lambda t: t.name)
def test_assumptions_state_themselves(theorem):
    c = {n: [1.0, 2.0] for n in theorem.required} | {"Delta0": 1.0}
    assumptions = theorem.assumptions_for(**c)
    assert assumptions and all(a.latex() and a.statement() for a in assumptions)
    labels = {a.label for a in assumptions}
    assert "A4" in labels


def test_registry_names_are_stable():
    assert list(theorems) == [
        "smooth-deterministic",
        "smooth-constant-radius",
        "l0l1-deterministic",
        "smooth-stochastic",
        "inexact-constant-radius",
    ]
    assert [t.label for t in theorems.values()] == ["T1", "T1′", "T2", "T3", "T4"]


def test_registry_accepts_a_users_theorem():
    from dropmuon.theory.bounds import SmoothDeterministic
    from dropmuon.theory.registry import TheoremRegistry

    class PaperT1(SmoothDeterministic):
        """The paper's statement would go here."""

        name = "paper-t1"

    reg = TheoremRegistry(theorems.values())
    reg.register(PaperT1())
    assert "paper-t1" in reg and len(reg) == 6
    with pytest.raises(ValueError, match="already registered"):
        reg.register(PaperT1())


# -- bad input -------------------------------------------------------------------------------------

BAD = [
    (dict(L=[1, -4, 2]), "L_2 = -4.0"),
    (dict(L=[1, 0, 2]), "L_2 = 0.0"),
    (dict(L=[1, float("nan"), 2]), "L_2 = nan"),
    (dict(L=[1, float("inf"), 2]), "L_2 = inf"),
    (dict(L=[1, 4, 2], pi=[0.5, 1.5, 1]), "pi_2 = 1.5"),
    (dict(L=[1, 4, 2], pi=[0.0, 1, 1]), "pi_1 = 0.0"),
    (dict(L=[1, 4, 2], pi=[1, 1]), "L has 3 entries, pi has 2"),
    (dict(L=[]), "L is empty"),
    (dict(L="1,2"), "must be a sequence of numbers"),
    (dict(L=[1, "x"]), "L_2 = 'x'"),
    (dict(L=[1, 2], foo=[1, 2]), "does not take 'foo'"),
]


@pytest.mark.parametrize("kwargs,msg", BAD)
def test_bad_constants_raise_value_error_naming_the_value(kwargs, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        smooth_deterministic.iterations(0.1, Delta0=10, **kwargs)


@pytest.mark.parametrize("eps", [0, -1, float("nan"), float("inf")])
def test_bad_epsilon(eps):
    with pytest.raises(ValueError, match=f"epsilon = {float(eps)!r}"):
        smooth_deterministic.iterations(eps, L=[1, 2], Delta0=1)


def test_bad_delta0_and_missing_constants():
    with pytest.raises(ValueError, match="Delta0 = -1.0"):
        smooth_deterministic.iterations(0.1, L=[1, 2], Delta0=-1)
    with pytest.raises(ValueError, match="needs the per-layer constants L1"):
        l0l1_deterministic.iterations(0.1, L0=[1, 2], Delta0=1)
    with pytest.raises(ValueError, match=r"delta_1 = 1.0"):
        inexact_constant_radius.iterations(0.1, L=[1], delta=[1.0], Delta0=1)
    with pytest.raises(ValueError, match=r"beta = 0.0"):
        smooth_stochastic.iterations(0.1, L=[1], beta=0.0, Delta0=1)
    with pytest.raises(ValueError, match="K must be a positive integer; got K = 0"):
        smooth_deterministic.evaluate(0, L=[1], Delta0=1)


def test_unknown_theorem():
    from dropmuon.theory import get_theorem

    with pytest.raises(ValueError, match="unknown theorem 'nope'; known theorems: smooth-deterministic"):
        get_theorem("nope")


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=8),
       st.sampled_from(["positive", "nonnegative", "probability", "unit_open", "unit_closed"]))
def test_vectorised_validation_agrees_with_elementwise(values, domain):
    """The numpy fast path of check_layer_array accepts and rejects exactly what the
    element-by-element path does, with the same message."""
    from dropmuon.theory._validation import check_layer_array

    def outcome(v):
        try:
            return ("ok", check_layer_array("x", v, domain).tolist())
        except ValueError as e:
            return ("error", str(e))

    assert outcome(np.array(values, dtype=float)) == outcome(list(values))
