"""Newton–Schulz in numpy float64 (dropmuon.verification.synthetic.newton_schulz) against the exact polar factor by
SVD, at 256 × 256, 1024 × 1024 and 1024 × 4096, with the cost of measuring δ (singular values
only), each against the SVD polar factor measured in the same run."""

import numpy as np

from _timing import measure, table
from dropmuon.verification.synthetic.newton_schulz import delta, newton_schulz


def svd_polar(M):
    U, _, Vt = np.linalg.svd(M, full_matrices=False)
    return U @ Vt


def main():
    rng = np.random.default_rng(0)
    for m, n in ((256, 256), (1024, 1024), (1024, 4096)):
        M = rng.standard_normal((m, n))
        big = m * n > 10**6
        rep = 3 if big else 7
        num = 1 if big else 5
        rows = [
            ("exact polar factor U@Vt, np.linalg.svd (baseline)",
             measure(lambda: svd_polar(M), repeat=rep, number=num)),
            ("newton_schulz, muon, 5 steps",
             measure(lambda: newton_schulz(M, "muon", 5), repeat=rep, number=num)),
            ("newton_schulz, polar-express, 8 steps",
             measure(lambda: newton_schulz(M, "polar-express", 8), repeat=rep, number=num)),
            ("delta(M), muon, 5 steps (singular values only)",
             measure(lambda: delta(M, "muon", 5), repeat=rep, number=num)),
        ]
        Q = svd_polar(M)
        err = np.linalg.norm(newton_schulz(M, "muon", 5) - Q, 2) if not big else None
        print(f"\n  {m}x{n} Gaussian: delta(muon, 5) = {delta(M, 'muon', 5):.4f}, "
              f"delta(polar-express, 8) = {delta(M, 'polar-express', 8):.2e}"
              + (f"; ||NS - U Vt||_op by SVD = {err:.4f}" if err is not None else ""))
        table(f"Polar factor, {m} x {n}, float64", rows, rows[0][0])


if __name__ == "__main__":
    main()
