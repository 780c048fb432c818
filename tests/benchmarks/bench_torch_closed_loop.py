"""The closed loop on the CPU (torch, the paper's CNN at full width, sklearn digits, batch 256,
lr 0.1): measured constants and costs → the solver's max- and sum-form optima → training runs of
full Muon, uniform index sampling, both optima and the epoch-shift schedule over 8 seeds to 98%
training accuracy. Speed-ups are ratios against full Muon measured in the same run, paired by seed
(geometric mean, 95% Student-t interval). Results go to a fresh temporary folder (no resume)."""

import tempfile
import time

from _timing import require_torch

torch = require_torch()

from dropmuon.figures.cli.experiment import print_summary  # noqa: E402
from dropmuon.verification.torchside.experiment import ExperimentConfig, run_experiment  # noqa: E402


def main():
    cfg = ExperimentConfig(seeds=tuple(range(8)), max_steps=200, target_acc=0.98, batch=256, lr=0.1,
                           eval_every=2, device="cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        res = run_experiment(cfg, out, progress=False)
    cal = res["calibration"]
    print("calibration: per-start step time, measured vs the fitted cost model")
    for r in cal["per_start"]:
        print(f"  s = {r['s']}: {r['measured_s'] * 1e3:7.2f} ms measured, {r['predicted_s'] * 1e3:7.2f} ms predicted "
              f"({r['relative_error']:.1%})")
    print()
    print_summary(res["summary"])
    print(f"\nwall-clock of the whole benchmark: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
