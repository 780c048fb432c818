"""T4's inexact-LMO coupling — δ tables, the theorem's tuned (η, β) against δ, and the
empirically best step and momentum on a synthetic problem (dropmuon.verification.synthetic.coupling) — and
its vectorised engine (dropmuon.verification.synthetic.batched) against the per-path Drop-Muon."""

import ast
import inspect
import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from dropmuon.theory import RPT, Independent
from dropmuon.verification.synthetic.checks import CONFIDENCE
from dropmuon.theory.norms import NORMS
from dropmuon.verification.synthetic import batched, coupling
from dropmuon.verification.synthetic.coupling import (
    ALIGN_RTOL,
    ETA_RTOL,
    coupling_checks,
    coupling_problem,
    delta_summary,
    empirical_coupling,
    grid_run,
    newton_schulz_coupling,
    theory_coupling,
    tune,
)
from dropmuon.verification.synthetic.dropmuon import LMO, ConstantRadius, Sampler, paths
from dropmuon.verification.synthetic.newton_schulz import delta, delta_batched, newton_schulz, newton_schulz_batched
from dropmuon.verification.synthetic.problems import SeparableQuadratic, Stochastic

# The vectorised run against dropmuon.paths on the same sampling paths: both perform the same
# float operations per step (SVD-based polar factor / Newton-Schulz matmuls, K ≤ 5 steps) in a
# different order and batch layout, so the metrics agree to ~1e-15 relative (measured); 1e-12.
ENGINE_RTOL = 1e-12
# Batched Newton-Schulz against the reference on matrices of norm ~1: ≤ 10 quintic steps of a few
# matmuls each, in float64: 1e-12 absolute.
NS_ATOL = 1e-12
# Monte Carlo comparison of two independent samples: their difference is within this many standard
# errors with probability 1 − 1e-6 (two-sided normal quantile), so a real discrepancy fails and
# chance essentially never does.
MC_Z = 4.9


def _paths_metric(problem, dist, K, eta, beta=1.0, lmo=LMO(), **kw):
    P = paths(problem, ConstantRadius(eta, dist.inclusion), Sampler(dist), K, beta=beta, lmo=lmo, **kw)
    per = P.gnorms.sum(axis=2).mean(axis=1)
    return P, per


@pytest.mark.parametrize("lmo", [LMO(), LMO("perturbed", delta=0.3, mode="overshoot"),
                                 LMO("perturbed", delta=0.4, mode="shrink"),
                                 LMO("newton-schulz", preset="muon", steps=2)],
                         ids=["exact", "overshoot", "shrink", "ns-muon-2"])
@pytest.mark.parametrize("dist", [RPT.uniform(2), Independent([0.5, 0.8])], ids=["rpt", "independent"])
def test_grid_run_equals_paths_exact_enumeration(lmo, dist):
    p = coupling_problem()
    etas = [0.1, 0.3]
    r = grid_run(p, dist, 5, etas, lmo=lmo)
    assert r.method == "exact"
    for a, eta in enumerate(etas):
        P, per = _paths_metric(p, dist, 5, eta, lmo=lmo, method="exact")
        assert r.metric[a, 0] == pytest.approx(P.expectation(per), rel=ENGINE_RTOL)
        if lmo.kind == "newton-schulz":
            one = grid_run(p, dist, 5, [eta], lmo=lmo)
            np.testing.assert_allclose(one.delta_max, P.delta_max, rtol=ENGINE_RTOL)


def test_grid_run_with_momentum_matches_paths_in_distribution():
    """With gradient noise both are Monte Carlo with different random streams: their means agree
    within MC_Z combined standard errors."""
    p = coupling_problem(2.0)
    dist = RPT.uniform(2)
    r = grid_run(p, dist, 8, [0.15], [0.4], mc_paths=400, seed=1)
    P, per = _paths_metric(p, dist, 8, 0.15, beta=0.4, stochastic=True, mc_paths=150, seed=2)
    z = NormalDist().inv_cdf(CONFIDENCE)  # grid_run's half-width is z standard errors
    se = math.sqrt((r.half_width[0, 0] / z) ** 2 + per.var(ddof=1) / len(per))
    assert abs(r.metric[0, 0] - per.mean()) <= MC_Z * se


def test_overshoot_is_a_larger_step_path_by_path():
    """The reduction behind the empirical predictions: D̃ = (1+δ)LMO_t, so the run at η with an
    overshooting LMO is the exact run at η(1+δ) — with noise and momentum, under common random numbers."""
    p = coupling_problem(1.0)
    etas, betas = np.array([0.1, 0.2]), [0.3, 1.0]
    a = grid_run(p, RPT.uniform(2), 10, etas, betas, lmo=LMO("perturbed", delta=0.5, mode="overshoot"), mc_paths=8)
    b = grid_run(p, RPT.uniform(2), 10, etas * 1.5, betas, mc_paths=8)
    np.testing.assert_allclose(a.metric, b.metric, rtol=ENGINE_RTOL)


def test_batched_newton_schulz_equals_the_reference():
    rng = np.random.default_rng(0)
    for shape in [(4, 4), (3, 7), (7, 3)]:
        M = rng.standard_normal((5,) + shape)
        M[2] = 0.0
        for preset, steps in [("muon", 5), ("polar-express", 8), ("you", 3)]:
            Q = newton_schulz_batched(M, preset, steps)
            d = delta_batched(M, preset, steps)
            for j in range(5):
                np.testing.assert_allclose(Q[j], newton_schulz(M[j], preset, steps), atol=NS_ATOL, rtol=0)
                assert d[j] == pytest.approx(delta(M[j], preset, steps), rel=ENGINE_RTOL, abs=NS_ATOL)
            assert d[2] == 0.0 and not np.any(Q[2])


def _engine_vs_paths(problem, dist, K, etas, lmo, method, mc_paths=1):
    r = batched.grid_run(problem, dist, K, etas, lmo=lmo, method=method, mc_paths=mc_paths, seed=0)
    assert r.method == method
    for a, eta in enumerate(etas):
        P, per = _paths_metric(problem, dist, K, eta, lmo=lmo, method=method, mc_paths=mc_paths, seed=0)
        assert P.method == method
        assert r.metric[a, 0] == pytest.approx(P.expectation(per), rel=ENGINE_RTOL)
        if lmo.kind == "newton-schulz":
            one = batched.grid_run(problem, dist, K, [eta], lmo=lmo, method=method, mc_paths=mc_paths, seed=0)
            np.testing.assert_allclose(one.delta_max, P.delta_max, rtol=ENGINE_RTOL)
            assert np.all(one.delta_max > 0)


@pytest.mark.parametrize("lmo", [LMO(), LMO("newton-schulz", preset="muon", steps=3),
                                 LMO("newton-schulz", preset="polar-express", steps=8)],
                         ids=["exact", "ns-muon-3", "ns-polar-express-8"])
def test_batched_engine_matches_per_path_dropmuon(lmo):
    """dropmuon.verification.synthetic.batched against dropmuon.paths, same rule (t_i = η/π_i) and sampling:
    exact enumeration over the 4^3 paths of Independent([0.5, 0.8]) on non-square spectral layers
    (one wide, one tall: Newton-Schulz's transposed branch), and Monte Carlo with full sampling,
    where both engines run the same deterministic path, mc_paths times."""
    p = SeparableQuadratic([1.0, 3.0], shapes=[(3, 5), (6, 2)], norms="spectral", seed=4)
    _engine_vs_paths(p, Independent([0.5, 0.8]), 3, [0.1, 0.35], lmo, "exact")
    _engine_vs_paths(p, RPT.full(2), 4, [0.1, 0.35], lmo, "mc", mc_paths=3)


def test_batched_engine_matches_per_path_dropmuon_frobenius():
    p = SeparableQuadratic([2.0, 1.0], shapes=[(3, 5), (6, 2)], norms="frobenius", seed=5)
    _engine_vs_paths(p, Independent([0.5, 0.8]), 3, [0.1, 0.35], LMO(), "exact")
    _engine_vs_paths(p, RPT.full(2), 4, [0.1, 0.35], LMO(), "mc", mc_paths=2)


@pytest.mark.parametrize("name", ["spectral", "frobenius"])
def test_engine_norm_maps_are_the_per_matrix_norms(name):
    """The batched dual norm, norm and LMO the engine calls agree with the per-matrix ones."""
    N = NORMS[name]
    rng = np.random.default_rng(1)
    M = rng.standard_normal((2, 3, 4, 5))
    M[1, 2] = 0.0
    M[0, 1] = np.outer(rng.standard_normal(4), rng.standard_normal(5))  # rank 1
    t = np.array([[0.5], [2.0]])
    d, n, D = N.dual_batched(M), N.norm_batched(M), N.lmo_batched(M, t)
    for a in range(2):
        for c in range(3):
            assert d[a, c] == pytest.approx(N.dual(M[a, c]), rel=ENGINE_RTOL, abs=0)
            assert n[a, c] == pytest.approx(N.norm(M[a, c]), rel=ENGINE_RTOL, abs=0)
            np.testing.assert_allclose(D[a, c], N.lmo(M[a, c], float(t[a, 0])), rtol=0, atol=NS_ATOL)
    # handed the stack's dual norms (as the engine does when the momentum is the gradient), the LMO is
    # the same array, bit for bit; dual norms of the wrong shape are refused
    np.testing.assert_array_equal(N.lmo_batched(M, t, dual=d), D)
    with pytest.raises(ValueError, match=r"one dual norm per matrix, shape \(2, 3\); got shape \(3,\)"):
        N.lmo_batched(M, t, dual=d[0])


def test_coupling_has_no_private_newton_schulz_or_norms():
    """coupling.py keeps only the experiments: no Newton-Schulz iteration, SVD or norm helper of its
    own; the engine lives in batched.py and uses newton_schulz.py and theory.norms."""
    for module in (coupling, batched):
        src = inspect.getsource(module)
        names = {node.name for node in ast.walk(ast.parse(src))
                 if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        for removed in ("_ns_batched", "_polar_and_sv", "_layer_norm", "_dual_norm", "newton_schulz",
                        "polar", "delta"):
            assert removed not in names, (module.__name__, removed)
        assert "linalg.svd" not in src and "for a, b, c in" not in src, module.__name__
    # the engine is re-exported by coupling, not copied
    for name in ("grid_run", "GridRun", "tune", "Tuned", "TUNE_LOG_TOL", "MAX_EXACT"):
        assert getattr(coupling, name) is getattr(batched, name)
    assert batched.newton_schulz_batched is newton_schulz_batched


def test_delta_summary_numbers():
    s = delta_summary()
    assert len(s.worst) == 3 * 10 * 3
    assert s.worst_delta("muon", 5, 10) == pytest.approx(0.3182, abs=1e-4)      # δ ≈ 0.3 (docs/theory.md §T4)
    assert s.worst_delta("muon", 5, 1000) == pytest.approx(0.9389, abs=1e-4)
    assert s.worst_delta("polar-express", 10, 1000) < 1e-3
    # the worst case over κ is monotone in κ for every preset and step count
    for p in ("muon", "you", "polar-express"):
        for k in range(1, 11):
            w = [s.worst_delta(p, k, kap) for kap in (10, 100, 1000)]
            assert w == sorted(w)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))  # the first default matrix, drawn with seed 0
    row = next(r for r in s.per_matrix if r.matrix == "gaussian-4x4" and r.preset == "muon" and r.steps == 5)
    assert row.delta == delta(A, "muon", 5)
    json.dumps(s.as_dict())


def test_theory_step_shrinks_as_one_over_one_plus_delta():
    rs = theory_coupling((0.0, 0.1, 0.3, 0.6))
    quiet = [r for r in rs if r.setting == "noiseless"]
    for r in quiet:
        assert r.beta == 1.0
        assert r.eta * (1 + r.delta) == pytest.approx(quiet[0].eta, rel=ETA_RTOL)
    noisy = [r for r in rs if r.setting == "noisy"]
    etas = [r.eta for r in noisy]
    joint = [r.beta for r in noisy]
    pair = [r.beta_fixed_pairing for r in noisy]
    assert etas == sorted(etas, reverse=True) and len(set(etas)) == 4
    # docs/theory.md §T4: the jointly tuned β grows slightly with δ; at a fixed pairing it shrinks
    assert joint == sorted(joint) and joint[-1] > joint[0]
    assert pair == sorted(pair, reverse=True) and pair[-1] < pair[0]
    assert pair[0] == pytest.approx(joint[0], rel=1e-9)


def test_empirical_best_step_follows_the_exact_reductions():
    etas = 0.25 * np.geomspace(0.5, 2.0, 9)
    over = empirical_coupling((0.0, 0.25), mode="overshoot", etas=etas, mc_paths=8)
    shrink = empirical_coupling((0.0, 0.25), mode="shrink", etas=etas, mc_paths=8)
    assert over[1].best_eta * 1.25 == pytest.approx(over[0].best_eta, rel=1e-3)
    assert shrink[1].best_eta * 0.75 == pytest.approx(shrink[0].best_eta, rel=1e-3)
    assert over[1].metric == pytest.approx(over[0].metric, rel=1e-6)


def test_tune_refines_between_grid_points():
    p = SeparableQuadratic([1.0, 2.0], shapes=[(3, 3), (3, 3)], norms="spectral", seed=0)
    t = tune(p, RPT.full(2), 8, np.geomspace(0.05, 0.8, 9))
    fine = grid_run(p, RPT.full(2), 8, np.geomspace(t.eta / 1.05, t.eta * 1.05, 41))
    assert t.metric <= fine.metric.min() * (1 + 1e-9)


def test_newton_schulz_coupling_reports_measured_delta():
    rs = newton_schulz_coupling([("polar-express", 8), ("muon", 1)], K=4, etas=[0.15, 0.25, 0.4], mc_paths=4)
    assert [r.lmo for r in rs] == ["exact", "newton-schulz(polar-express, 8)", "newton-schulz(muon, 1)"]
    assert rs[0].delta_measured is None and rs[2].delta_measured > 0.5


def test_the_coupling_table_is_kept_beside_the_suite_and_read_back(quick_suite_folder, quick_suite_by_task):
    """The report's coupling table in a suite-results folder (written there by the session's
    quick-suite process, as ``build_report(suite_results=...)`` keeps it) is the table of the same
    experiments as the suite's coupling checks; another seed there is refused."""
    from dropmuon.figures.report import COUPLING_TABLE_FOLDER
    from dropmuon.verification.synthetic.coupling import coupling_table

    folder = quick_suite_folder / COUPLING_TABLE_FOLDER
    table = coupling_table(0, "quick", results=folder)
    assert json.loads((folder / "coupling-table.json").read_text()) == table  # the JSON form, as saved
    assert table["config"]["size"] == "quick" and table["config"]["seed"] == 0
    ov, sh = table["overshoot"], table["shrink"]
    checks = quick_suite_by_task["inexact-LMO coupling"]
    # checks 4 and 5: the best step at the largest delta over the best step at delta = 0, the same floats
    assert checks[3].observed == ov[-1]["best_eta"] / ov[0]["best_eta"]
    assert checks[4].observed == sh[-1]["best_eta"] / sh[0]["best_eta"]
    with pytest.raises(ValueError, match="seed"):
        coupling_table(1, "quick", results=folder)


def test_coupling_checks_quick_all_hold(quick_suite_by_task):
    rs = quick_suite_by_task["inexact-LMO coupling"]  # coupling_checks(seed=0, size="quick"), as the suite ran it
    assert len(rs) == 6
    for r in rs:
        assert r.holds, (r.name, r.note)
        assert r.kind == "coupling" and r.theorem == "inexact-constant-radius"
    step = rs[3]
    assert step.observed < 1 and step.observed == pytest.approx(1 / 1.5, rel=1e-3)
    momentum = rs[5]
    assert momentum.observed == 1.0 and "docs/theory.md" in momentum.note
    assert ALIGN_RTOL < 1e-6
    json.dumps([r.as_dict() for r in rs])


@pytest.mark.parametrize("call,match", [
    (lambda: theory_coupling((0.1, 0.2)), "deltas must start at 0"),
    (lambda: theory_coupling((0.0, 1.2)), r"deltas\[1\] = 1.2"),
    (lambda: empirical_coupling((0.0, 0.1), mode="sideways"), "mode = 'sideways'"),
    (lambda: grid_run(coupling_problem(), RPT.uniform(2), 3, [-0.1]), "eta"),
    (lambda: grid_run(coupling_problem(), RPT.uniform(2), 0, [0.1]), "K"),
    (lambda: grid_run(coupling_problem(), RPT.uniform(3), 3, [0.1]), "3 layers but the problem has 2"),
    (lambda: grid_run(coupling_problem(1.0), RPT.uniform(2), 3, [0.1], method="exact"), "exact enumeration"),
    (lambda: grid_run(SeparableQuadratic([1.0], shapes=[(2, 2)], norms="linf"), RPT.full(1), 3, [0.1]), "'linf'"),
    (lambda: grid_run(SeparableQuadratic([1.0], shapes=[(2, 2)]), RPT.full(1), 3, [0.1],
                      lmo=LMO("newton-schulz")), "spectral"),
    (lambda: grid_run(Stochastic(SeparableQuadratic([1.0], shapes=[(2, 2)]), 0.1), RPT.full(1), 3, [0.1],
                      betas=[0.0]), "beta"),
    (lambda: coupling_checks(size="huge"), "size = 'huge'"),
    (lambda: coupling_checks(seed=1.5), "seed = 1.5"),
])
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
