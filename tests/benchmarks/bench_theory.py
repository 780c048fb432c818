"""Theory core: the numpy functions generated from the sympy expressions against evaluating the
same expressions with sympy (the baseline they replace), and the cost of K(ε) by closed form and
by search."""

import subprocess
import sys

import numpy as np

from _timing import measure, table
from dropmuon.theory import symbols as S
from dropmuon.theory.bounds import (
    inexact_constant_radius,
    l0l1_deterministic,
    smooth_constant_radius,
    smooth_deterministic,
    smooth_stochastic,
)


def main():
    rng = np.random.default_rng(0)
    b = 10
    L = rng.uniform(0.5, 5, b)
    pi = rng.uniform(0.2, 1, b)
    c = dict(L=L, pi=pi, Delta0=10.0)

    # baseline: the concrete sympy expression, substituted and evaluated by sympy
    expr = S.concrete(smooth_constant_radius.expression(tuned=True), b)
    subs = {sym: val for sym, val in zip(
        [S.concrete_symbol("L", j + 1) for j in range(b)] + [S.concrete_symbol("pi", j + 1) for j in range(b)],
        list(L) + list(pi))}
    subs[S.Delta0] = 10.0
    subs[S.K] = 1000.0
    rows = [
        ("sympy subs+evalf of T1' tuned bound (b=10)", measure(lambda: float(expr.subs(subs).evalf()), repeat=5)),
        ("theory.evaluate T1' (generated numpy, b=10)", measure(lambda: smooth_constant_radius.evaluate(1000, **c), number=50)),
        ("theory.evaluate_many T1', 1000 K values", measure(lambda: smooth_constant_radius.evaluate_many(np.arange(1, 1001.0), **c), number=10)),
    ]
    table("Bound evaluation: generated numpy vs sympy (same expression)", rows, rows[0][0])

    big = dict(L=rng.uniform(0.5, 5, 10_000), pi=rng.uniform(0.2, 1, 10_000), Delta0=10.0)
    noisy = dict(L=L, pi=pi, sigma=np.full(b, 0.1), Delta0=10.0)
    rows = [
        ("T1 K(eps) closed form, b=10", measure(lambda: smooth_deterministic.iterations(0.1, **c), number=100)),
        ("T1 K(eps) closed form, b=10^4", measure(lambda: smooth_deterministic.iterations(0.1, **big), number=20)),
        ("T2 K(eps) closed form, b=10", measure(lambda: l0l1_deterministic.iterations(0.1, L0=L, L1=L, pi=pi, Delta0=10.0), number=100)),
        ("T3 K(eps) by search, joint (eta,beta) optimum, b=10", measure(lambda: smooth_stochastic.iterations(0.1, **noisy), number=5)),
        ("T4 K(eps) by search, joint optimum, b=10", measure(lambda: inexact_constant_radius.iterations(0.1, delta=np.full(b, 0.2), **noisy), number=5)),
    ]
    table("Iteration complexity K(eps)", rows, rows[0][0])

    code = "import theory"
    t_core = measure(lambda: subprocess.run([sys.executable, "-c", code], check=True), repeat=5, warmup=1)
    t_py = measure(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat=5, warmup=1)
    t_sympy = measure(lambda: subprocess.run([sys.executable, "-c", "import sympy"], check=True), repeat=5, warmup=1)
    table("Import time (fresh interpreter)", [
        ("python -c pass", t_py), ("python -c 'import sympy'", t_sympy), ("python -c 'import theory'", t_core),
    ], "python -c pass")


if __name__ == "__main__":
    main()
