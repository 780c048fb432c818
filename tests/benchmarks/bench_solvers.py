"""Solvers at scale: closed forms at b = 10^6, HiGHS LPs at b = 10^4 and 10^5, cvxpy sum-form at
b = 1000, the log-domain local method for independent sampling with activation costs at b = 3..100
and on hard random instances (costs over nine decades) at b = 50, each against a baseline measured
in the same run."""

import sys
from pathlib import Path

import numpy as np

from _timing import measure, table

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: tests.solvers
from tests.solvers.strategies import hard_instance  # noqa: E402 - after the path
from dropmuon.solvers import closed_form, optimal_sampling
from dropmuon.solvers._problem import make_problem
from dropmuon.theory import CostModel


def model(rng, b):
    return CostModel(1.0, rng.uniform(0, 1, b), rng.uniform(0.1, 1, b), rng.uniform(0, 1, b))


HARD_SEEDS = range(8)


def main():
    rng = np.random.default_rng(0)
    b = 10**6
    L, m = rng.uniform(0.1, 10, b), model(rng, b)
    p = make_problem(L, m, "max")
    rows = [
        ("np.maximum.accumulate(L) (one pass, baseline)", measure(lambda: np.maximum.accumulate(L), number=5)),
        ("closed-form RPT optimum (dropmuon.solvers.closed_form)", measure(lambda: closed_form.max_rpt(p, certify=False), number=3)),
        ("closed-form subsets optimum (dropmuon.solvers.closed_form)", measure(lambda: closed_form.max_subsets(p, certify=False), number=3)),
        ("  + dual certificate, RPT", measure(lambda: closed_form.max_rpt(p), number=3)),
        ("  + dual certificate, subsets", measure(lambda: closed_form.max_subsets(p), number=3)),
        ("optimal_sampling(family=rpt, certify=False)", measure(lambda: optimal_sampling(L, m, certify=False), repeat=5)),
        ("optimal_sampling(family=rpt) with certificate, full+uniform",
         measure(lambda: optimal_sampling(L, m), repeat=5)),
        ("optimal_sampling(family=subsets) with certificate", measure(lambda: optimal_sampling(L, m, family="subsets"), repeat=5)),
    ]
    table("Closed forms, b = 10^6 layers (max-form)", rows, rows[0][0])

    for b in (10**4, 10**5):
        L, m = rng.uniform(0.1, 10, b), model(rng, b)
        rep = 5 if b == 10**4 else 3
        rows = [
            (f"closed form RPT, b={b} (baseline)", measure(lambda: optimal_sampling(L, m), repeat=rep)),
            (f"HiGHS LP RPT (running-sum form), b={b}", measure(lambda: optimal_sampling(L, m, method="lp"), repeat=rep)),
            (f"HiGHS compact subsets LP, b={b}", measure(lambda: optimal_sampling(L, m, family="subsets", method="lp"), repeat=rep)),
        ]
        r = optimal_sampling(L, m, family="subsets", method="lp")
        c = optimal_sampling(L, m, family="subsets")
        print(f"\n  b={b}: compact LP total cost {r.total_cost:.12g} vs closed form {c.total_cost:.12g} "
              f"(rel. diff {abs(r.total_cost / c.total_cost - 1):.1e}); LP duality gap {r.residuals['duality_gap']:.1e}")
        table(f"Exact LPs, b = {b}", rows, rows[0][0])

    b = 1000
    L, c = rng.uniform(0.1, 10, b), rng.uniform(0.1, 1, b)
    rows = [
        ("closed-form sum-form, independent (baseline)", measure(lambda: optimal_sampling(L, c, family="independent", objective="sum"), repeat=5)),
        ("cvxpy sum-form, independent", measure(lambda: optimal_sampling(L, c, family="independent", objective="sum", method="cvxpy"), repeat=3)),
        ("cvxpy sum-form, RPT", measure(lambda: optimal_sampling(L, c, objective="sum"), repeat=3)),
        ("cvxpy sum-form, compact subsets", measure(lambda: optimal_sampling(L, c, family="subsets", objective="sum"), repeat=3)),
    ]
    cf = optimal_sampling(L, c, family="independent", objective="sum").total_cost
    cv = optimal_sampling(L, c, family="independent", objective="sum", method="cvxpy").total_cost
    print(f"\n  b=1000 sum-form independent: cvxpy {cv:.12g} vs closed form {cf:.12g} (rel. diff {abs(cv / cf - 1):.1e})")
    table("Convex programs, b = 1000 layers (sum-form)", rows, rows[0][0])

    rows = []
    for b in (3, 20, 100):
        L, c = rng.uniform(0.1, 10, b), rng.uniform(0.1, 1, b)
        act = CostModel(1.0, rng.uniform(0, 1, b), c, np.zeros(b))
        if b == 3:
            rows.append(("closed-form sum-form, independent, a = 0, b=3 (baseline)",
                         measure(lambda L=L, c=c: optimal_sampling(L, c, family="independent", objective="sum",
                                                                    forward_cost=1.0), repeat=5)))
        rows.append((f"local method sum-form, independent, a > 0, b={b}",
                     measure(lambda L=L, act=act: optimal_sampling(L, act, family="independent", objective="sum"),
                             repeat=3)))
    table("Independent sampling with activation costs (non-convex, multi-start)", rows, rows[0][0])

    # hard instances: one timed run each (the local method is deterministic for a seed); the
    # baseline is the closed form of the same instance without its activation costs
    rows = []
    for seed in HARD_SEEDS:
        L, m = hard_instance(seed)
        if seed == HARD_SEEDS[0]:
            lin = CostModel(m.forward, np.zeros(m.nlayers), m.weight, m.update)
            rows.append(("closed-form sum-form, a = 0, hard instance 0 (baseline)",
                         measure(lambda L=L, lin=lin: optimal_sampling(L, lin, family="independent", objective="sum"),
                                 repeat=5)))
        rows.append((f"local method sum-form, a > 0, hard instance {seed}, b=50",
                     measure(lambda L=L, m=m: optimal_sampling(L, m, family="independent", objective="sum"),
                             repeat=1, warmup=0)))
    worst = max(rows[1:], key=lambda r: r[1])
    rows.append((f"worst of the {len(HARD_SEEDS)} hard instances ({worst[0].split(', ')[2]})", worst[1]))
    table("Independent sampling with activation costs, hard random instances (b = 50)", rows, rows[0][0])


if __name__ == "__main__":
    main()
