"""Verification suites: wall-clock of the quick and standard suites and of their parts, against
one exact T1 check (the unit of work: 3 layers, 243 enumerated paths) measured in the same run."""

import time

from _timing import measure, table
from dropmuon.theory import RPT
from dropmuon.verification.synthetic.checks import check_theorem
from dropmuon.verification.synthetic.problems import SeparableQuadratic
from dropmuon.verification.synthetic.suites import THEOREMS, _tasks, summarise


def _timed(tasks):
    out, t0 = [], time.perf_counter()
    for _, task in tasks:
        out.extend(task())
    return time.perf_counter() - t0, out


def main():
    p = SeparableQuadratic([1.0, 4.0, 2.0], [(3, 4), (2, 3), (4, 2)], "spectral", seed=0)
    unit = measure(lambda: check_theorem("smooth-deterministic", p, RPT.uniform(3), 5, method="exact"), repeat=5)
    per_layer = measure(lambda: check_theorem("smooth-deterministic", p, RPT.uniform(3), 5), repeat=5)
    rows = [("one exact T1 check (b=3, K=5, 243 paths)", unit),
            ("the same check per layer (separable: K+1 = 6 states)", per_layer)]
    for name in ("quick", "standard"):
        tasks = _tasks(name, 0)
        groups = {}
        for label, task in tasks:
            key = label if label in ("solver predictions", "inexact-LMO coupling") else (
                "random instances" if label.startswith(THEOREMS) else "fixed checks and tight instances")
            groups.setdefault(key, []).append((label, task))
        total = 0.0
        results = []
        for key, ts in groups.items():
            sec, res = _timed(ts)
            total += sec
            results += res
            rows.append((f"{name}: {key} ({len(res)} checks)", sec))
        rows.append((f"{name} suite total ({len(results)} checks)", total))
        s = summarise(results)["all"]
        print(f"{name}: {s['checks']} checks, {s['violations']} violations, tightness min/median/max "
              f"{s['ratio_min']:.3g}/{s['ratio_median']:.3g}/{s['ratio_max']:.3g} "
              f"(exact checks only: max {s['ratio_max_exact']:.4g})")
    table("Verification suites (seed 0)", rows, rows[0][0])


if __name__ == "__main__":
    main()
