"""Constants with known error: on least squares, where the spectral→nuclear constant of a layer is
known in closed form (the sum of the min(m, n) largest eigenvalues of the data's second-moment
matrix), the direction-maximising probe reaches it for tall, wide and square layers and for a
convolution; the trajectory estimate stays below it; the flags say what each estimate is."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from dropmuon.verification.torchside import Dataset, DropMuon  # noqa: E402
from dropmuon.verification.torchside.constants import estimate_constants, probe_constant  # noqa: E402

# the probe is a power method in float64 stopped at a relative increase of 1e-7: it lands within
# 1e-6 of a local maximum; the issue asks for 0.99 of the truth, which is what we assert
PROBE_FRACTION = 0.99


def _least_squares(m, n, N=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    # unequal feature scales: a spread spectrum, so the wide case needs the top-m eigenspace
    X = torch.randn(N, n, generator=g, dtype=torch.float64) * torch.linspace(0.2, 2.0, n, dtype=torch.float64)
    Y = torch.randn(N, m, generator=g, dtype=torch.float64)
    ev = np.sort(np.linalg.eigvalsh((X.T @ X / N).numpy()))[::-1]
    return X, Y, float(ev[:min(m, n)].sum())


@pytest.mark.parametrize("m, n", [(40, 10), (10, 40), (20, 20)], ids=["tall", "wide", "square"])
def test_probe_reaches_the_least_squares_constant(m, n):
    X, Y, true = _least_squares(m, n)
    lin = nn.Linear(n, m, bias=False).double()
    got = probe_constant(lambda: 0.5 * ((lin(X) - Y) ** 2).sum() / len(X), [lin.weight], iterations=50)
    assert PROBE_FRACTION * true <= got <= true * (1 + 1e-9), (got, true)


def test_probe_reaches_a_convolutions_constant():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, 6, 6, generator=g, dtype=torch.float64)
    y = torch.randn(16, 4, 4, 4, generator=g, dtype=torch.float64)
    conv = nn.Conv2d(3, 4, 3, bias=False).double()
    # H[Δ] = Δ P Pᵀ / N with P the unfolded 3×3 patches: the constant is the sum of the 4 (= C_out)
    # largest eigenvalues of P Pᵀ / N
    P = nn.functional.unfold(x, 3).permute(1, 0, 2).reshape(27, -1)
    true = float(np.sort(np.linalg.eigvalsh((P @ P.T / 16).numpy()))[::-1][:4].sum())
    got = probe_constant(lambda: 0.5 * ((conv(x) - y) ** 2).sum() / 16, [conv.weight], iterations=50)
    assert PROBE_FRACTION * true <= got <= true * (1 + 1e-9), (got, true)


class FullBatch(nn.Module):
    """A linear layer evaluated on the whole design matrix whatever the minibatch: every step of
    the estimator then sees the same least-squares function, whose constant is known."""

    def __init__(self, X, m):
        super().__init__()
        self.X = X
        self.lin = nn.Linear(X.shape[1], m, bias=False)

    def forward(self, _):
        return self.lin(self.X)


def test_estimate_reports_trajectory_probe_and_flags():
    X, Y, true = _least_squares(10, 40)  # a wide layer: where the trajectory estimate falls short
    X, Y = X.float(), Y.float()
    data = Dataset(X, Y, X[:20], Y[:20], "least-squares", task="regression")
    torch.manual_seed(0)
    model = FullBatch(X, 10)
    opt = DropMuon.from_model(model, data.x_train[:4], lr=0.01, ns_dtype=torch.float32)
    consts, _ = estimate_constants(model, opt, lambda out, _: 0.5 * ((out - Y) ** 2).sum(1).mean(), data,
                                   steps=12, batch=8, hessian_every=0, probe_iterations=50)
    c = consts[0]
    # float32 gradients bound the accuracy of both estimates (~1e-6 relative; 1e-4 leaves room)
    assert c.L <= true * (1 + 1e-4) and PROBE_FRACTION * true <= c.L_probe <= true * (1 + 1e-4), (c.L, c.L_probe, true)
    assert c.L < 0.99 * c.L_probe  # the trajectory misses the worst direction of a wide layer
    assert isinstance(c.trajectory_converged, bool)
    # a quadratic has L1 = 0: a fit whose gradient norms barely vary must not claim to separate L0, L1
    g = np.array(c.gnorms)
    assert c.l0l1_identified == bool(g.max() / g.min() >= 2.0)
    assert c.L0_sd is not None and c.L1_sd is not None
    print(f"wide least squares: trajectory {c.L / true:.3f}, probe {c.L_probe / true:.6f} of the constant")


# -- the probe at the settings `dropmuon estimate` uses ---------------------------------------------

def _two_sided(m, n, seed):
    """f(W) = ½‖PWQ − B‖² with spread spectra on both sides (column scales 0.2..2)."""
    g = torch.Generator().manual_seed(seed)
    P = torch.randn(m + 5, m, generator=g, dtype=torch.float64) * torch.linspace(0.2, 2.0, m, dtype=torch.float64)
    Q = torch.randn(n, n + 5, generator=g, dtype=torch.float64) * torch.linspace(0.2, 2.0, n, dtype=torch.float64)[:, None]
    B = torch.randn(m + 5, n + 5, generator=g, dtype=torch.float64)
    return P, Q, B


def _paired_constant(P, Q):
    # H[Δ] = PᵀP Δ QQᵀ. With s, t the eigenvalues of S = PᵀP and T = QQᵀ sorted decreasingly,
    # sup_{‖Δ‖_op ≤ 1} ‖SΔT‖_nuc = Σ_{i ≤ min(m,n)} s_i t_i: the singular values of a product are
    # weakly log-majorised by the products of the factors' (Horn), so ‖SΔT‖_nuc ≤ Σ_i s_i σ_i(Δ) t_i
    # ≤ Σ_i s_i t_i, and Δ = U_S E U_Tᵀ (E the rectangular identity, U_S, U_T the eigenvectors in
    # that order) attains it. It is not λ_max(S)·λ_max(T), the Euclidean (spectral→spectral)
    # constant: the nuclear norm on the gradient adds up all min(m, n) paired directions
    s = np.sort(np.linalg.eigvalsh((P.T @ P).numpy()))[::-1]
    t = np.sort(np.linalg.eigvalsh((Q @ Q.T).numpy()))[::-1]
    k = min(len(s), len(t))
    return float(np.sum(s[:k] * t[:k]))


def test_two_sided_constant_is_the_paired_eigenvalue_sum():
    # the closed form against its maximiser and against random directions, on small instances
    rng = np.random.default_rng(0)
    for m, n in [(5, 3), (3, 5), (4, 4)]:
        P, Q, _ = _two_sided(m, n, seed=m * 10 + n)
        S, T = (P.T @ P).numpy(), (Q @ Q.T).numpy()
        true = _paired_constant(P, Q)
        _, US = np.linalg.eigh(S)
        _, UT = np.linalg.eigh(T)
        D = US[:, ::-1] @ np.eye(m, n) @ UT[:, ::-1].T
        assert np.linalg.svd(S @ D @ T, compute_uv=False).sum() == pytest.approx(true, rel=1e-12)
        for _ in range(2000):  # the maximum of a convex function is at an extreme point: a partial isometry
            U, _, Vt = np.linalg.svd(rng.normal(size=(m, n)), full_matrices=False)
            assert np.linalg.svd(S @ (U @ Vt) @ T, compute_uv=False).sum() <= true * (1 + 1e-12)
        s, t = np.linalg.eigvalsh(S)[-1], np.linalg.eigvalsh(T)[-1]
        assert true > 1.05 * s * t  # the formula is not λ_max(S)·λ_max(T)


# What the probe at estimate's settings (PROBE_ITERATIONS = 30, PROBE_STARTS = 1, seed 0) reached
# on 300 instances of this family (50 seeds of each of (24, 6), (40, 10), (6, 24), (10, 40),
# (12, 12), (20, 20)): at least 0.9695 of the closed form, median 0.9984, 6% below 0.99. The power
# method converges linearly and slowly where the spectra are dense, so no fraction is guaranteed
# at a fixed count; 0.96 is the measured worst case less a margin for a different start. The
# former settings (10 iterations, every other product scored) reached only 0.917 (65% below 0.99).
ESTIMATE_PROBE_FRACTION = 0.96


@pytest.mark.parametrize("m, n", [(40, 10), (10, 40), (20, 20)], ids=["tall", "wide", "square"])
def test_probe_at_estimates_settings_on_two_sided_least_squares(m, n, one_thread):
    from dropmuon.verification.torchside.constants import PROBE_ITERATIONS, PROBE_STARTS, probe_layer

    for seed in range(4):
        P, Q, B = _two_sided(m, n, seed)
        true = _paired_constant(P, Q)
        W = nn.Parameter(torch.zeros(m, n, dtype=torch.float64))
        r = probe_layer(lambda: 0.5 * ((P @ W @ Q - B) ** 2).sum(), [W], iterations=PROBE_ITERATIONS,
                        starts=PROBE_STARTS, seed=0)
        assert ESTIMATE_PROBE_FRACTION * true <= r.value <= true * (1 + 1e-9), (seed, r.value / true)
        assert r.hessian_products <= 2 * PROBE_ITERATIONS and r.last_change >= 0
        # the last step's increase understates the gap (linear convergence): it is no certificate
        assert r.converged == (r.last_change <= 1e-7)
