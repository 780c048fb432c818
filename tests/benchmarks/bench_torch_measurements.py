"""Estimator error against analytic constants: on least squares, where a layer's spectral→nuclear
constant is the sum of the min(m, n) largest eigenvalues of the data's second-moment matrix, the
fraction of it that the trajectory estimate (Gluon's, along full Muon) and the probe (power method
on Hessian-vector products) recover, for tall, wide and square layers — and what each costs,
relative to the trajectory's training time measured in the same run."""

import pathlib
import sys
import time

import numpy as np
from _timing import require_torch

torch = require_torch()

from verification.torchside import Dataset, DropMuon  # noqa: E402
from verification.torchside.constants import estimate_constants  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from tests.torchside.test_constants_probe import FullBatch  # noqa: E402  (the same model as the test)


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"\n  {'layer':16s} {'trajectory / true':>18s} {'probe / true':>14s} {'trajectory, NS':>16s} "
          f"{'estimate time / train time':>28s}")
    g = torch.Generator().manual_seed(0)
    for label, (m, n) in {"tall 256x64": (256, 64), "wide 64x256": (64, 256), "square 128x128": (128, 128)}.items():
        N = 2048
        X = torch.randn(N, n, generator=g) * torch.linspace(0.2, 2.0, n)
        Y = torch.randn(N, m, generator=g)
        true = float(np.sort(np.linalg.eigvalsh((X.T @ X / N).double().numpy()))[::-1][:min(m, n)].sum())
        data = Dataset(X, Y, X[:8], Y[:8], "least-squares", task="regression")
        row = []
        for sharp in ("svd", "newton-schulz"):
            torch.manual_seed(0)
            model = FullBatch(X, m)
            opt = DropMuon.from_model(model, X[:4], lr=0.01, sharp=sharp, ns_dtype=torch.float32)
            t0 = time.perf_counter()
            c, over = estimate_constants(model, opt, lambda out, _: 0.5 * ((out - Y) ** 2).sum(1).mean(), data,
                                         steps=20, batch=8, hessian_every=0, probe_iterations=30 if sharp == "svd" else 0)
            row.append((c[0], over, time.perf_counter() - t0))
        (c_svd, o_svd, _), (c_ns, _, _) = row
        print(f"  {label:16s} {c_svd.L / true:>18.3f} {c_svd.L_probe / true:>14.6f} {c_ns.L / true:>16.3f} "
              f"{o_svd['overhead_ratio']:>27.1f}x")
    print("\ntrajectory: exact polar steps (svd) and Muon's Newton-Schulz steps; the probe runs at the last point")


if __name__ == "__main__":
    main()
