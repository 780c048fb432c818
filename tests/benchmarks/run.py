"""Run every benchmark (``bench_*.py`` here), each in its own interpreter: ``make bench``.

Benchmarks print wall-clock medians and ratios against a baseline measured in the same run; they
assert nothing about speed. Pass names to run a subset: ``python tests/benchmarks/run.py theory``.
"""

import argparse
import pathlib
import platform
import subprocess
import sys


def main(argv):
    here = pathlib.Path(__file__).resolve().parent
    files = sorted(here.glob("bench_*.py"))
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Run the benchmarks (bench_*.py next to this file), each in its own interpreter; "
        "they print wall-clock medians and ratios against a baseline measured in the same run.",
        epilog="available: " + ", ".join(f.stem[len("bench_"):] for f in files),
    )
    parser.add_argument("names", nargs="*", help="run only benchmarks whose file name contains one of these")
    argv = parser.parse_args(argv).names
    if argv:
        files = [f for f in files if any(a in f.stem for a in argv)]
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.node()}")
    failed = []
    for f in files:
        print(f"\n=== {f.stem} ===", flush=True)
        r = subprocess.run([sys.executable, str(f)], cwd=here)
        if r.returncode:
            failed.append(f.stem)
    if failed:
        print(f"\nbenchmarks that failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
