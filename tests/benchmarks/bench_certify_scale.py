"""Certificates at scale (verification/pep/): one layer with momentum (beta = 0.9, pi = 0.5) at
K = 50, 200 and 1000 — time, peak memory and the relative gap of the bracket [attained, proved] —
and, in the same run at K = 50 and pi = 1 (PEPit has no layer sampling), PEPit's all-pairs PEP of the
same method beside ours, with the ratio of times and the agreement of the values.

Each case runs in a child process (peak memory = its maximum resident set, which includes ~130 MB of
imported libraries) with a 6 GB address-space limit and a time limit."""

import resource
import subprocess
import sys

from _timing import table

CASE = r"""
import resource, sys, time, warnings
warnings.simplefilter("ignore")
resource.setrlimit(resource.RLIMIT_AS, ({mem}, {mem}))
{imports}
t0 = time.perf_counter()
{body}
dt = time.perf_counter() - t0
print(f"{{dt:.6g}} {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}} {{info}}")
"""

OURS = ("from dropmuon.verification.pep.layer import layer_bracket",
        "b = layer_bracket({pi}, {K}, beta=0.9)\n"
        "info = f'{{b.upper:.12g}} gap {{b.gap:.1e}}, band {{b.band}}, rigorous {{b.rigorous}}'")

PEPIT = ("from PEPit import PEP, Expression\nfrom PEPit.functions import SmoothFunction",
         """problem = PEP()
func = problem.declare_function(SmoothFunction, L=1.0)
fstar = Expression()
x = problem.set_initial_point()
g, f = func.oracle(x)
f0, m, metric = f, g, 0
for k in range({K} + 1):
    problem.add_constraint(f - fstar >= g**2 / 2)
    if k == {K}:
        break
    metric = metric + g**2 / {K}
    m = 0.1 * m + 0.9 * g if k > 0 else g
    x = x - m
    g, f = func.oracle(x)
problem.set_initial_condition(f0 - fstar <= 1)
problem.set_performance_metric(metric)
v = problem.solve(verbose=0, wrapper="cvxpy", solver="CLARABEL")
info = f'{{v:.12g}} (no proof)'""")

MEM = 6 * 1024**3


def _run(case, timeout=900, **kw):
    imports, body = case
    code = CASE.format(mem=MEM, imports=imports, body=body.format(**kw))
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return float(timeout), f"not finished in {timeout} s"
    if p.returncode:
        last = (p.stderr.strip().splitlines() or ["killed"])[-1]
        return float("nan"), f"failed: {last[:60]}"
    sec, mb, info = p.stdout.strip().splitlines()[-1].split(" ", 2)
    return float(sec), f"{mb} MB, {info}"


def main():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    rows = []
    for K in (50, 200, 1000):
        sec, info = _run(OURS, pi=0.5, K=K)
        rows.append((f"ours K={K} pi=0.5: {info}", sec))
    table("One layer, momentum 0.9: bracket [attained, proved] (banded SDP + exact dual check)", rows, rows[0][0])
    rows = []
    sec, info = _run(OURS, pi=1.0, K=50)
    rows.append((f"ours K=50 pi=1: {info}", sec))
    v_ours = float(info.split(", ", 1)[1].split()[0])
    sec, info = _run(PEPIT, K=50)
    rows.append((f"PEPit K=50: {info}", sec))
    try:
        v_pep = float(info.split(", ", 1)[1].split()[0])
        agree = f"relative difference of the values {abs(v_pep / v_ours - 1):.1e}"
    except (IndexError, ValueError):
        agree = "PEPit gave no value"
    table(f"Same method, K = 50, pi = 1: ours against PEPit ({agree})", rows, rows[0][0])


if __name__ == "__main__":
    main()
