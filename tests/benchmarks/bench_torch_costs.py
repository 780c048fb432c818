"""Torch CNN (the paper's 64/128/256 channels, sklearn digits, CPU) at batch 256 (the CLI default)
and 512: the measured time of a Drop-Muon step for each RPT start s against the fitted cost
model's prediction, and each start's time relative to the full step (s = 1) measured in the same
run."""

from _timing import require_torch

torch = require_torch()

from dropmuon.verification.torchside import DropMuon, load_digits, make_cnn, measure_costs  # noqa: E402


def main():
    torch.manual_seed(0)
    d = load_digits()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for batch in (256, 512):
        m = make_cnn(1, 10, seed=0)
        opt = DropMuon(layers=m.layer_parameters(), lr=0.1)
        r = measure_costs(m, opt, torch.nn.functional.cross_entropy, d.x_train[:batch], d.y_train[:batch],
                          repeats=9, progress=False)
        print(f"\nbatch {batch}, device {r.device}: {len(r.sets)} layer sets and {r.nlayers} updates timed, "
              f"median of {r.repeats} interleaved rounds")
        print(f"fitted model (ms): F = {r.forward * 1e3:.2f}, a = {[round(float(x) * 1e3, 2) for x in r.activation]}, "
              f"w = {[round(float(x) * 1e3, 2) for x in r.weight]}, u = {[round(float(x) * 1e3, 2) for x in r.update]}")
        print(f"  {'start s':>8s} {'measured':>12s} {'predicted':>12s} {'error':>8s} {'vs s=1':>8s}")
        for s in range(r.nlayers):
            meas, pred = r.start_measured[s], r.start_predicted[s]
            print(f"  {s + 1:>8d} {meas * 1e3:>9.2f} ms {pred * 1e3:>9.2f} ms {abs(pred - meas) / meas:>7.1%} "
                  f"{meas / r.start_measured[0]:>7.3f}x")
        print(f"  largest per-start error: {r.start_relative_error.max():.1%} (goal: within 10%)")


if __name__ == "__main__":
    main()
