"""The constants of the stochastic and inexact theorems, measured with known error: the gradient
noise σ (A3) on least squares with sampled rows, where E‖g_B − g‖² is known in closed form; the
Newton–Schulz inexactness δ (T4) on matrices with known singular values; the Δ0 estimate on a
problem with known f*; and what ``dropmuon estimate --json`` reports of them."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from dropmuon.verification.synthetic.newton_schulz import delta as ns_delta  # noqa: E402
from dropmuon.verification.synthetic.newton_schulz import normalisation, scalar_map  # noqa: E402
from dropmuon.verification.torchside import Dataset, DropMuon  # noqa: E402
from dropmuon.verification.torchside.constants import (  # noqa: E402
    direction_error, estimate_constants, momentum_matrix, step_direction)
from dropmuon.verification.torchside.optimizer import _polar  # noqa: E402
from dropmuon.verification.torchside.noise import (  # noqa: E402
    full_loss, gradient_deviations, noise_rho, summarize_noise)

from .test_constants_probe import FullBatch  # noqa: E402 - the same full-batch least-squares layer

# a point estimate is a mean of R independent draws: within Z_MEAN standard deviations of its
# expectation with probability 1 − 6e-5 (normal approximation of the mean of R = 400 draws, whose
# kurtosis here is about 20: the central limit theorem's correction is of order sqrt(20/400))
Z_MEAN = 4.0


def _rows(N=40, n=5, m=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(N, n, generator=g, dtype=torch.float64)
    Bt = torch.randn(N, m, generator=g, dtype=torch.float64)
    return A, Bt


def _ls_loss(out, target):
    # f(W) = (1/2N) Σ_r ‖W a_r − b_r‖² on a minibatch of rows: the mean of per-row terms
    return 0.5 * ((out - target) ** 2).sum(1).mean()


def _exact_noise(W, A, Bt, B):
    """E‖g_B − g‖² and Var‖g_B − g‖² for a minibatch of B rows drawn uniformly with replacement.

    Per-row gradient g_r = (W a_r − b_r) a_rᵀ, full gradient g = mean_r g_r, d_r = g_r − g (mean
    zero over rows). g_B − g = (1/B) S with S = Σ_{k≤B} d_{r_k}, the r_k independent and uniform.
    ‖S‖² = Σ_{k,l} ⟨d_{r_k}, d_{r_l}⟩; a term with an index that appears once has expectation 0
    (E d = 0 and independence), so E‖S‖² = B·m2 with m2 = mean_r ‖d_r‖², i.e.

        E‖g_B − g‖² = m2 / B.

    For the variance, the terms of E‖S‖⁴ = Σ_{k,l,k',l'} E⟨d_k, d_l⟩⟨d_k', d_l'⟩ that survive have
    every index value at least twice: all four equal (B terms, m4 = mean_r ‖d_r‖⁴) or two pairs
    — {k=l, k'=l'} gives m2², {k=k', l=l'} and {k=l', l=k'} give q = mean_{r,s} ⟨d_r, d_s⟩², each
    B(B−1) times. So Var‖S‖² = B m4 + B(B−1)(m2² + 2q) − B² m2² = B(m4 − m2²) + 2B(B−1)q, and
    Var‖g_B − g‖² = that / B⁴."""
    R = A @ W.T - Bt                       # residuals, N × m
    G = R[:, :, None] * A[:, None, :]      # per-row gradients, N × m × n
    D = (G - G.mean(0)).reshape(len(A), -1)
    K = D @ D.T                            # Gram matrix of the deviations
    m2 = float(torch.diagonal(K).mean())
    m4 = float((torch.diagonal(K) ** 2).mean())
    q = float((K ** 2).mean())
    return m2 / B, (B * (m4 - m2 ** 2) + 2 * B * (B - 1) * q) / B ** 4


def test_closed_form_noise_by_enumeration():
    # the derivation above, checked against every ordered minibatch of a 4-row problem with B = 2
    A, Bt = _rows(N=4, n=2, m=2, seed=3)
    W = torch.randn(2, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    mean, var = _exact_noise(W, A, Bt, 2)
    G = (A @ W.T - Bt)[:, :, None] * A[:, None, :]
    g = G.mean(0)
    vals = np.array([float(((G[i] + G[j]) / 2 - g).pow(2).sum()) for i in range(4) for j in range(4)])
    assert vals.mean() == pytest.approx(mean, rel=1e-12)
    assert vals.var() == pytest.approx(var, rel=1e-10)


def test_noise_of_least_squares_with_sampled_rows():
    A, Bt = _rows()
    lin = nn.Linear(5, 3, bias=False).double()
    B, R = 8, 400
    gen = torch.Generator().manual_seed(11)
    sqs, duals, exact = [], [], []
    for scale in (1.0, 3.0):  # two trajectory points with different noise: the max must pick the larger
        with torch.no_grad():
            lin.weight.copy_(scale * torch.randn(3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
        sq, dual, f = gradient_deviations(lin, _ls_loss, [[lin.weight]], A, Bt, batch=B, draws=R, generator=gen,
                                          chunk=7)  # a chunk that does not divide N: the weights must be right
        assert f == pytest.approx(float(_ls_loss(lin(A), Bt).detach()), rel=1e-12)
        assert lin.weight.grad is None  # the measurement leaves .grad alone
        sqs.append(sq[0])
        duals.append(dual[0])
        exact.append(_exact_noise(lin.weight.detach(), A, Bt, B))
    est = summarize_noise(np.array(sqs), np.array(duals), rho=noise_rho([(3, 5)]), batch=B, seed=0)
    (m_lo, v_lo), (m_hi, v_hi) = exact
    assert m_hi > m_lo + 10 * math.sqrt(v_hi / R)  # the points are far apart: the max is the second
    for p, (m, v) in enumerate(exact):
        assert abs(est.per_point[p] ** 2 - m) <= Z_MEAN * math.sqrt(v / R), (p, est.per_point[p] ** 2, m)
    assert est.sigma == est.per_point[1]
    lo, hi = est.sigma_ci
    assert lo <= math.sqrt(m_hi) <= hi, (lo, hi, math.sqrt(m_hi))
    # the interval's width against the delta method's: sd(σ̂) ≈ sd(σ̂²)/(2σ); a 95% interval spans
    # about 3.92 of them. The bootstrap estimates the draws' variance from R = 400 of them; their
    # kurtosis is about 20 (squared norms of sums of few rows), so that variance has a relative
    # error of about sqrt(20/400) ≈ 22% and the width, its square root, about 11%: a factor 1.5
    # either way is over four such errors (measured: 1.01)
    expected = 3.92 * math.sqrt(v_hi / R) / (2 * math.sqrt(m_hi))
    assert expected / 1.5 <= hi - lo <= 1.5 * expected, (hi - lo, expected)
    # the dual norm: ‖·‖_nuc ≤ ρ‖·‖_F for every draw, so σ_dual ≤ ρσ; and ‖·‖_nuc ≥ ‖·‖_F
    assert est.sigma <= est.sigma_dual <= est.rho * est.sigma
    assert est.rho == math.sqrt(3) and est.batch == B and est.draws == R


def test_bootstrap_interval_coverage():
    # draws with a known mean (scaled chi-square, skewed like a squared norm); the percentile
    # bootstrap's coverage at 40 draws is ~0.95 (measured 0.955 on 200 replications; it under-covers
    # by 2-4 points at 10-20 draws). 400 replications: binomial sd 0.011, so ≥ 0.90 allows the
    # method's small-sample shortfall plus three sd, and ≤ 0.99 catches an interval far too wide
    rng = np.random.default_rng(5)
    hits = 0
    for rep in range(400):
        sq = rng.chisquare(5, size=(1, 40)) / 5 * 3.0
        lo, hi = summarize_noise(sq, seed=rep).sigma_ci
        hits += lo <= math.sqrt(3.0) <= hi
    assert 0.90 <= hits / 400 <= 0.99, hits / 400


def test_noise_rho_is_the_tight_norm_equivalence():
    rng = np.random.default_rng(0)
    shapes = [(4, 7), (3, 3)]
    rho = noise_rho(shapes)
    assert rho == math.sqrt(4 + 3)
    for _ in range(200):
        As = [rng.normal(size=s) for s in shapes]
        nuc = sum(np.linalg.svd(a, compute_uv=False).sum() for a in As)
        assert nuc <= rho * math.sqrt(sum((a * a).sum() for a in As)) * (1 + 1e-12)
    # equality: every singular value equal across both matrices
    As = [np.eye(4, 7), np.eye(3)]
    nuc = sum(np.linalg.svd(a, compute_uv=False).sum() for a in As)
    assert nuc == pytest.approx(rho * math.sqrt(sum((a * a).sum() for a in As)), rel=1e-12)
    with pytest.raises(ValueError, match=r"got \(0, 3\)"):
        noise_rho([(0, 3)])


def test_summarize_noise_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2 draws"):
        summarize_noise([[1.0]])
    with pytest.raises(ValueError, match=r"sq\[0, 1\] = -1.0"):
        summarize_noise([[1.0, -1.0]])
    with pytest.raises(ValueError, match="confidence = 1.5"):
        summarize_noise([[1.0, 2.0]], confidence=1.5)


# -- δ: the Newton–Schulz direction against the exact polar factor ---------------------------------

def _group(**kw):
    opt = DropMuon([nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))], **kw)
    return opt.param_groups[0]


def _known_singular_values(m, n, s, seed=0):
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(m, len(s), generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, len(s), generator=g, dtype=torch.float64))
    return U @ torch.diag(torch.tensor(s, dtype=torch.float64)) @ V.T


@pytest.mark.parametrize("preset, steps, shape", [("muon", 5, (6, 4)), ("muon", 3, (4, 6)),
                                                  ("polar-express", 8, (5, 5))])
def test_direction_error_is_the_scalar_polynomials(preset, steps, shape):
    s = [1.0, 0.5, 0.1, 0.01]
    M = _known_singular_values(*shape, s)
    group = _group(ns_coefficients=preset, ns_steps=steps, ns_dtype=torch.float64)
    # the step normalises by max(f‖M‖_F, eps) (torch.optim.Muon's clamp; eps = 1e-7 is a guard
    # against M = 0 only), so for this M the normaliser is f‖M‖_F
    x = np.array(s) / (normalisation(preset) * math.sqrt(sum(v * v for v in s)))
    want = float(np.max(np.abs(scalar_map(x, preset, steps) - 1)))
    got = direction_error(M, group)
    # float64 iteration of a few steps and a float64 SVD: rounding of order 1e-15 per operation
    assert got == pytest.approx(want, abs=1e-12)
    assert got == pytest.approx(ns_delta(M.numpy(), preset, steps), abs=1e-12)
    # at a lower ns_dtype δ also carries the iteration's rounding, amplified by the polynomials'
    # slopes at small x (about the product of the steps' a's, ~10³ for Polar Express's first
    # steps): float32's unit roundoff 6e-8 gives up to ~1e-4 (measured 1e-4 for Polar Express,
    # 4e-7 for Muon's quintic); bfloat16's 2e-3 can move δ by 0.1 (measured 0.003-0.13), so
    # there we check only that the optimizer's dtype is the one measured
    got32 = direction_error(M, _group(ns_coefficients=preset, ns_steps=steps, ns_dtype=torch.float32))
    assert abs(got32 - want) < 2e-4
    got16 = direction_error(M, _group(ns_coefficients=preset, ns_steps=steps, ns_dtype=torch.bfloat16))
    assert got16 not in (got, got32)


def test_direction_error_is_zero_for_the_exact_polar_factor():
    M = _known_singular_values(5, 3, [2.0, 1.0, 1e-3])
    assert direction_error(M, _group(sharp="svd")) == 0.0


def test_direction_error_of_a_cross_entropy_head_ignores_its_rounding_direction():
    # a head's gradient Σ_n e_n h_nᵀ with e_n = softmax − onehot (summing to 0 over the 10 classes)
    # has rank 9: in float32 its 10th singular value is rounding, which the exact polar factor
    # would map to 1 and Newton–Schulz maps to about 0; any completion on the null spaces is an
    # LMO, so neither may count it
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(64, 10, generator=g, dtype=torch.float64)
    E = torch.softmax(logits, 1) - nn.functional.one_hot(torch.randint(0, 10, (64,), generator=g), 10)
    G64 = E.T @ torch.randn(64, 32, generator=g, dtype=torch.float64) / 64
    G = G64.float()
    s = torch.linalg.svdvals(G.double())
    assert s[-1] < 1e-6 * s[0]  # the rounding direction is there, and the plain distance reads 1
    U, _, Vh = torch.linalg.svd(G.double(), full_matrices=False)
    assert torch.linalg.matrix_norm(_polar(G).double() - U[:, :9] @ Vh[:9], ord=2) > 0.99
    assert direction_error(G, _group(sharp="svd")) < 1e-5  # float32 rounding of the polar factor
    # float32 Newton–Schulz against the exact-arithmetic δ of the rank-9 float64 matrix (the
    # amplified float32 rounding is below 1e-4, as in the test above)
    want = ns_delta(G64.numpy(), "muon", 5)
    assert 0.1 < want < 1
    assert abs(direction_error(G, _group(ns_dtype=torch.float32)) - want) < 1e-4


@pytest.mark.parametrize("nesterov", [True, False])
def test_momentum_matrix_is_what_the_step_orthogonalises(nesterov):
    g = torch.Generator().manual_seed(2)
    w = nn.Parameter(torch.randn(4, 6, generator=g, dtype=torch.float64))
    opt = DropMuon([w], lr=0.1, momentum=0.9, nesterov=nesterov, ns_dtype=torch.float64)
    w.grad = torch.randn(4, 6, generator=g, dtype=torch.float64)
    opt.step()  # a first step fills the buffer
    G = torch.randn(4, 6, generator=g, dtype=torch.float64)
    w.grad = G.clone()
    group = opt.param_groups[0]
    buf = opt.state[w]["momentum_buffer"].clone()
    U = momentum_matrix(G, buf, group)
    assert torch.equal(opt.state[w]["momentum_buffer"], buf)  # the state is not touched
    # the formulas of the brief, written independently: B ← μB + (1 − μ)G, U = G + μ(B − G)
    B_new = 0.9 * buf + 0.1 * G
    assert torch.allclose(U, G + 0.9 * (B_new - G) if nesterov else B_new, rtol=0, atol=1e-14)
    assert not torch.allclose(U, G) and (not nesterov or not torch.allclose(U, B_new))
    before = w.detach().clone()
    opt.step()
    # the buffer the step kept is the non-Nesterov U, bit for bit
    assert torch.equal(opt.state[w]["momentum_buffer"], momentum_matrix(G, buf, dict(group, nesterov=False)))
    # no weight decay, a wide matrix (no lr adjustment): W ← W − lr·O(U)
    assert torch.allclose(before - w.detach(), 0.1 * step_direction(U, group), rtol=0, atol=1e-14)


# -- along a run: estimate_constants ---------------------------------------------------------------

# FullBatch (tests/torchside/test_constants_probe.py): every minibatch gradient is the full
# gradient (σ = 0) and the training loss is known

def _consistent_least_squares(N=30, n=6, m=4, seed=0):
    # Y = X W*ᵀ exactly: f* = 0, so Δ0 = f(x0)
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, n, generator=g, dtype=torch.float64)
    Y = X @ torch.randn(m, n, generator=g, dtype=torch.float64).T
    return X, Y


def _run(model, data, loss, **kw):
    opt = DropMuon.from_model(model, data.x_train[:4], lr=0.05, **kw)
    return estimate_constants(model, opt, loss, data, steps=6, batch=5, hessian_every=0, probe_iterations=3,
                              noise_every=3, noise_draws=4, delta0_steps=30, delta0_every=5)


def test_estimate_measures_delta_noise_and_delta0():
    X, Y = _consistent_least_squares()
    data = Dataset(X, Y, X[:5], Y[:5], "consistent least squares", task="regression")
    loss = lambda out, y: 0.5 * ((out - y) ** 2).sum(1).mean()  # noqa: E731

    torch.manual_seed(0)
    model = nn.Linear(6, 4, bias=False).double()
    f0 = float(loss(model(X), Y).detach())
    consts, over = _run(model, data, loss, ns_dtype=torch.float64)
    c = consts[0]
    # Δ0: f(x0) exactly, the best loss of 36 steps is above f* = 0, so the estimate is below f(x0)
    assert c.delta0["f0"] == pytest.approx(f0, rel=1e-12)
    assert c.delta0["Delta0_estimate"] is True and "36 full-Muon steps" in c.delta0["Delta0_method"]
    assert 0 < c.delta0["Delta0"] == pytest.approx(f0 - c.delta0["f_best"], rel=1e-12)
    # the best loss seen, the last point's among them
    assert c.delta0["f_best"] <= full_loss(model, loss, X, Y) * (1 + 1e-12)
    assert c.delta0["Delta0"] <= f0  # f* = 0
    # δ of float64 Newton–Schulz on the run's momenta: in (0, 1) (Muon's quintic keeps singular
    # values in about [0.68, 1.13] after 5 steps on well-conditioned inputs)
    assert 0 < c.delta < 1 and c.delta_points == 6
    assert c.ns == {"sharp": "newton-schulz", "ns_dtype": "float64", "ns_steps": 5, "ns_coefficients": "muon"}
    assert c.momentum == 0.95 and c.nesterov is True
    # σ: three points (0, 3, 5), four draws each, at batch 5
    assert c.noise.batch == 5 and len(c.noise.per_point) == 3 and c.noise.draws == 4
    assert c.noise.sigma_ci[0] <= c.noise.sigma <= c.noise.sigma_ci[1] and c.noise.rho == 2.0
    rec = c.as_dict()
    for k in ("sigma", "sigma_ci", "sigma_batch", "sigma_dual", "rho", "delta", "ns_dtype", "ns_steps", "momentum",
              "nesterov", "Delta0", "Delta0_estimate", "Delta0_method", "L_probe", "probe_iterations",
              "probe_starts", "probe_last_change", "probe_converged"):
        assert k in rec, k
    assert over["noise_s"] > 0 and over["delta0_s"] > 0


def test_estimate_exact_polar_has_zero_delta_and_full_batch_zero_noise():
    X, Y = _consistent_least_squares(seed=1)
    data = Dataset(X, Y, X[:5], Y[:5], "full batch", task="regression")
    loss = lambda out, _: 0.5 * ((out - Y) ** 2).sum(1).mean()  # noqa: E731
    torch.manual_seed(0)
    model = FullBatch(X, 4).double()
    c = _run(model, data, loss, sharp="svd")[0][0]
    assert c.delta == 0.0  # the step's direction is the exact float64 polar factor
    # every minibatch gradient is the full gradient: σ = 0 up to float64 rounding of the chunk sums
    assert c.noise.sigma < 1e-12 * math.sqrt(c.delta0["f0"]) and c.noise.sigma_ci[1] < 1e-12 * math.sqrt(c.delta0["f0"])


def test_measuring_leaves_the_trajectory_unchanged():
    X, Y = _consistent_least_squares(seed=2)
    data = Dataset(X, Y, X[:5], Y[:5], "least squares", task="regression")
    loss = lambda out, y: 0.5 * ((out - y) ** 2).sum(1).mean()  # noqa: E731
    runs = []
    for noise_every in (0, 2):
        torch.manual_seed(0)
        model = nn.Linear(6, 4, bias=False).double()
        opt = DropMuon.from_model(model, X[:4], lr=0.05, ns_dtype=torch.float64)
        c, _ = estimate_constants(model, opt, loss, data, steps=5, batch=5, hessian_every=0, probe_iterations=0,
                                  noise_every=noise_every, noise_draws=3, delta0_steps=1)
        runs.append((c[0].estimates, c[0].gnorms, model.weight.detach().clone()))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1] and torch.equal(runs[0][2], runs[1][2])


def test_estimate_rejects_bad_counts():
    X, Y = _consistent_least_squares()
    data = Dataset(X, Y, X[:5], Y[:5], "least squares", task="regression")
    model = nn.Linear(6, 4, bias=False).double()
    opt = DropMuon.from_model(model, X[:4])
    with pytest.raises(ValueError, match="delta0_steps must be an integer >= 1; got delta0_steps = 0"):
        estimate_constants(model, opt, _ls_loss, data, steps=3, delta0_steps=0)
    with pytest.raises(ValueError, match="noise_draws = 1"):
        estimate_constants(model, opt, _ls_loss, data, steps=3, noise_draws=1)


# -- dropmuon estimate --json ---------------------------------------------------------------------

def test_cli_estimate_reports_the_theorems_constants(capsys, tmp_path, one_thread):
    pytest.importorskip("sklearn")
    from dropmuon.figures.cli import main
    from dropmuon.verification.forecasting.measured import load_constants

    code = main(["estimate", "--device", "cpu", "--seed", "0", "--json", "--width", "0.125", "--steps", "3",
                 "--batch", "32", "--repeats", "3", "--no-progress", "--noise-draws", "3", "--delta0-steps", "4",
                 "--ns-dtype", "float32"])
    out, err = capsys.readouterr()
    assert code == 0, err
    recs = json.loads(out)
    assert [r["layer"] for r in recs] == [1, 2, 3, 4]
    shapes = {1: (8, 9), 2: (16, 72), 3: (32, 144), 4: (10, 32)}  # the width-0.125 CNN's matrices
    for r in recs:
        assert r["sigma_ci"][0] <= r["sigma"] <= r["sigma_ci"][1] and r["sigma"] > 0
        assert r["sigma"] <= r["sigma_dual"] <= r["rho"] * r["sigma"] * (1 + 1e-12)
        assert r["rho"] == math.sqrt(min(shapes[r["layer"]])) and r["sigma_batch"] == 32
        assert len(r["sigma_points"]) == 2 and r["sigma_draws"] == 3  # points 0 and 2 of 3 steps
        assert 0 <= r["delta"] < 1 and r["ns_dtype"] == "float32" and r["ns_steps"] == 5
        assert r["momentum"] == 0.95 and r["nesterov"] is True and r["lr"] == 0.1 and r["batch"] == 32
        assert r["L_probe"] > 0 and r["probe_iterations"] == 30 and r["probe_starts"] == 1
        assert r["Delta0_estimate"] is True and r["Delta0"] == recs[0]["Delta0"] > 0
        assert r["Delta0"] == pytest.approx(r["f0"] - r["f_best"]) and "7 full-Muon steps" in r["Delta0_method"]
        assert r["f0"] == pytest.approx(math.log(10), rel=0.05)  # a fresh classifier: about uniform outputs
    path = tmp_path / "c.json"
    path.write_text(out)
    L, _ = load_constants(path)  # the new fields are optional for the reader, and ignored
    assert L == [r["L"] for r in recs]
    old = [{k: v for k, v in r.items() if k in ("layer", "L", "costs")} for r in recs]
    assert load_constants(old)[0] == L  # a file from before the new fields still loads
    # bad input: one line, exit 2
    assert main(["estimate", "--device", "cpu", "--delta0-steps", "0"]) == 2
    assert capsys.readouterr().err.strip() == "dropmuon estimate: error: --delta0-steps must be positive; got 0"
    assert main(["estimate", "--device", "cpu", "--noise-draws", "1"]) == 2
    assert capsys.readouterr().err.strip() == "dropmuon estimate: error: --noise-draws must be at least 2; got 1"
