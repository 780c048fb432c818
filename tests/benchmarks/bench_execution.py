"""The execution layer on the standard verification suite (1900 checks in ~1050 tasks): wall-clock
serial (1 local worker, in-process), with 2 local worker processes (joblib), and through a local
Dask cluster with 2 single-threaded worker processes on 127.0.0.1 (scheduler start-up excluded;
first connection included). Ratios against the serial run measured in the same run; every run
must return the same checks. The longest single task (the inexact-LMO coupling, ~40 s) bounds
what parallel runs can gain."""

import math
import sys
import time

from _timing import table
from dropmuon.verification import run_suite


def _key(r):
    d = r.as_dict()
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def main():
    try:
        import distributed
    except ImportError:
        distributed = None
    rows, results = [], {}
    for label, kw in (("serial (jobs=1)", {}), ("2 local processes (joblib, jobs=2)", {"jobs": 2})):
        t0 = time.perf_counter()
        results[label] = run_suite("standard", progress=False, **kw)
        rows.append((label, time.perf_counter() - t0))
        print(f"  {label}: {rows[-1][1]:.1f} s", flush=True)
    if distributed is None:
        print("dask.distributed is not installed: the Dask row is skipped")
    else:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None) as cluster:
            label = "local Dask cluster, 2 workers"
            t0 = time.perf_counter()
            results[label] = run_suite("standard", progress=False, scheduler=cluster.scheduler_address)
            rows.append((label, time.perf_counter() - t0))
            print(f"  {label}: {rows[-1][1]:.1f} s", flush=True)
    base = [_key(r) for r in results["serial (jobs=1)"]]
    same = all([_key(r) for r in v] == base for v in results.values())
    table("standard verification suite (1900 checks), wall-clock", rows, "serial (jobs=1)")
    print(f"  identical checks from every execution mode: {same}; {len(base)} checks")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
