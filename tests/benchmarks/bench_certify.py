"""Exact worst-case certificates (verification/pep/certificate.py): solve time of one layer's (K+1)-point PEP
at K = 10, 50, 200 (Clarabel and SCS), with its error against the closed form it reproduces, and of
the PEP over the full sampling tree (no reduction, separable and coupled) at b = 3, K = 4.

Each case runs in a child process with a 6 GB address-space limit and a time limit, so that a case
that does not fit (Clarabel's KKT system at K = 200) is reported instead of exhausting the machine."""

import resource
import subprocess
import sys
import time

from _timing import table

CASE = r"""
import resource, sys, time, warnings
warnings.simplefilter("ignore", UserWarning)
resource.setrlimit(resource.RLIMIT_AS, ({mem}, {mem}))
from dropmuon.theory import RPT
from dropmuon.verification.pep.certificate import closed_form_factor, layer_worst_case, tree_worst_case
t0 = time.perf_counter()
{body}
print(f"{{time.perf_counter() - t0:.6g}} {{info}}")
"""

LAYER = ("r = layer_worst_case(0.5, {K}, solver='{solver}', witness=False)\n"
         "info = f'{{r.status}}, rel.err {{abs(r.value / closed_form_factor(0.5, {K}) - 1):.1e}}'")
TREE = ("r = tree_worst_case([1.0, 4.0, 2.0], RPT.uniform(3), 4, solver='{solver}', coupled={coupled})\n"
        "info = f'{{r.nodes}} pts, {{r.status}}, value {{r.value:.4g}}'")

MEM = 6 * 1024**3


def _run(body, timeout=600):
    code = CASE.format(mem=MEM, body=body)
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - t0, f"not finished in {timeout} s"
    if p.returncode:
        last = (p.stderr.strip().splitlines() or ["killed"])[-1]
        return time.perf_counter() - t0, f"failed ({'out of memory (6 GB limit)' if 'Memory' in last or p.returncode < 0 else last[:60]})"
    sec, info = p.stdout.strip().split(" ", 1)
    return float(sec), info


def main():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    rows = []
    for K in (10, 50, 200):
        for solver in ("CLARABEL", "SCS"):
            sec, info = _run(LAYER.format(K=K, solver=solver))
            rows.append((f"layer PEP K={K} {solver}: {info}", sec))
    table("One layer's PEP (pi = 0.5), build + solve, one run each", rows, rows[0][0])
    rows = []
    for coupled in (False, True):
        for solver in ("SCS", "CLARABEL"):
            sec, info = _run(TREE.format(solver=solver, coupled=coupled), timeout=300)
            rows.append((f"tree b=3 K=4 {'coupled' if coupled else 'separable'} {solver}: {info}", sec))
    table("Sampling-tree PEP (RPT uniform, L = (1, 4, 2)), build + solve", rows, rows[0][0])


if __name__ == "__main__":
    main()
