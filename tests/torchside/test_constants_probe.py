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
