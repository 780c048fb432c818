"""Measured constants: the (L0,L1) fit, the Hessian power iteration on a known Hessian, and the
``dropmuon estimate`` interface."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dropmuon.figures.cli import main  # noqa: E402
from dropmuon.verification.torchside.constants import fit_l0l1, hessian_top_eigenvalue  # noqa: E402


def test_fit_penalises_under_estimation():
    rng = np.random.default_rng(0)
    g = rng.uniform(0, 10, 200)
    L = 2.0 + 0.5 * g + rng.normal(0, 0.3, 200)
    L0, L1 = fit_l0l1(g, L)
    below = np.mean(L > L0 + L1 * g)
    # the symmetric fit would leave ~half the points above the line; the penalty leaves few
    assert below < 0.15
    sym0, sym1 = fit_l0l1(g, L, under_penalty=1.0)
    assert abs(sym1 - 0.5) < 0.05 and abs(sym0 - 2.0) < 0.2  # unbiased without the penalty
    with pytest.raises(ValueError, match="non-finite"):
        fit_l0l1([1.0, np.nan], [1.0, 2.0])


def test_hessian_power_iteration_on_a_known_quadratic():
    A = torch.diag(torch.tensor([5.0, 2.0, -1.0, 0.5], dtype=torch.float64))
    x = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    lam = hessian_top_eigenvalue(lambda: 0.5 * x @ A @ x, [x], iterations=200)
    # power iteration converges like (2/5)^k: 200 steps reach rounding
    assert lam == pytest.approx(5.0, rel=1e-10)


def test_cli_estimate_json(capsys, one_thread):
    code = main(["estimate", "--device", "cpu", "--seed", "0", "--json", "--width", "0.125", "--steps", "3",
                 "--batch", "32", "--repeats", "3", "--no-progress", "--noise-draws", "2", "--delta0-steps", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    recs = json.loads(out)
    assert [r["layer"] for r in recs] == [1, 2, 3, 4]
    for r in recs:
        for k in ("layer", "L", "L0", "L1", "hessian_top_eig", "costs"):
            assert k in r
        assert r["L"] > 0 and r["L0"] >= 0 and r["L1"] >= 0
        assert r["costs"]["start_measured_s"] > 0


def test_cli_estimate_bad_input(capsys, tmp_path):
    assert main(["estimate", "--device", "tpu"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((4, 8, 8)), y_train=np.zeros(3, dtype=int), x_test=np.zeros((2, 8, 8)),
             y_test=np.zeros(2, dtype=int))
    assert main(["estimate", "--device", "cpu", "--data", str(bad)]) == 2
    assert "y_train must be a vector of 4 labels" in capsys.readouterr().err
    assert main(["estimate", "--device", "cpu", "--steps", "x"]) == 2
