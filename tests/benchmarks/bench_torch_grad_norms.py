"""The cost of recording the theorems' quantity: at evaluations a training run computes the
per-layer squared dual gradient norms ``‖∇_i f(x)‖_*²`` of the training loss (one forward and
backward pass over the examples it is computed on, and one small eigenvalue problem per Muon
matrix), off the training clock. Printed: that recording's seconds as a fraction of the training
steps' seconds of the same run (goal ≤ 10%), for the built-in CNN at its defaults — width 1.0,
sklearn digits, batch 256, lr 0.1, evaluations every 5 steps — with the recording at its defaults
(``training.GRAD_NORM_EXAMPLES`` fixed examples, at least ``training.GRAD_NORM_EVERY`` steps apart)
and at every evaluation on 128 examples and on the whole training set; and whether the runs'
final weights agree bit for bit (the recording must not change training).

On a shared machine a run's ratio moves with the load of the moments its recordings fall in, so
part 2 times one recording and one training step in interleaved rounds (medians; the same
weights) and gives the overhead they imply for the recordings of a run of ``STEPS`` steps.
"""

import time

import statistics

from _timing import require_torch

torch = require_torch()

from dropmuon.theory import RPT  # noqa: E402
from dropmuon.verification.torchside import DropMuon, layers_step, load_digits, make_cnn  # noqa: E402
from dropmuon.verification.torchside.environment import default_ns_dtype, environment  # noqa: E402
from dropmuon.verification.torchside.training import (GRAD_NORM_EVERY, GRAD_NORM_EXAMPLES,  # noqa: E402
                                                      dual_gradient_norms, train)

STEPS = 100  # about full Muon's time to 98% on digits at these settings: a typical run's length
EVAL_EVERY = 5  # train's and the CLI's default


def main():
    env = environment("cpu")
    print(f"{env['cpu_model']}, {env['logical_cpus']} logical CPUs; torch {env['torch']}, {env['torch_threads']} threads")
    data = load_digits(seed=0)
    t0 = time.perf_counter()
    print(f"\nthe CNN (width 1.0) on {data.name} ({len(data.x_train)} training examples), batch 256, lr 0.1, "
          f"{STEPS} steps of full Muon, evaluations every {EVAL_EVERY} steps; Newton-Schulz in "
          f"{str(default_ns_dtype('cpu')).replace('torch.', '')}")
    print(f"  {'gradient on':46s} {'train s':>8s} {'recording s':>12s} {'records':>8s} {'overhead':>9s} "
          f"{'same weights':>13s}")
    # a throwaway run first: the first recording in a process pays one-off set-up (kernels, LAPACK)
    m = make_cnn(1, 10, seed=0, width=1.0)
    train(m, DropMuon(layers=m.layer_parameters(), lr=0.1, ns_dtype=default_ns_dtype("cpu")), data, RPT.full(4),
          max_steps=2, batch=256, eval_every=1, grad_norm_every=1, progress=False)
    ref = None
    for n, every in ((GRAD_NORM_EXAMPLES, GRAD_NORM_EVERY), (128, EVAL_EVERY), (None, EVAL_EVERY)):
        m = make_cnn(1, 10, seed=0, width=1.0)
        opt = DropMuon(layers=m.layer_parameters(), lr=0.1, ns_dtype=default_ns_dtype("cpu"))
        r = train(m, opt, data, RPT.full(4), max_steps=STEPS, batch=256, eval_every=EVAL_EVERY, seed=0,
                  grad_norm_examples=n, grad_norm_every=every, progress=False)
        gn = r.info["grad_norms"]
        w = [p.detach().clone() for p in m.parameters()]
        ref = ref or w
        same = all(torch.equal(a, b) for a, b in zip(ref, w))
        label = (f"{gn['examples']} fixed examples" if gn["subset"] else f"all {gn['examples']} examples") + (
            f", every {every} steps" + (" (defaults)" if (n, every) == (GRAD_NORM_EXAMPLES, GRAD_NORM_EVERY) else ""))
        records = sum("grad_dual_sq" in h for h in r.history)
        print(f"  {label:46s} {gn['train_s']:>8.2f} {gn['seconds']:>12.2f} {records:>8d} {gn['overhead']:>9.1%} "
              f"{str(same):>13s}")
    print("  overhead: the recording's seconds / the training steps' seconds of the same run (both measured in it)")
    interleaved(data)
    print(f"\n({time.perf_counter() - t0:.0f} s)")


def interleaved(data, rounds=9):
    """Medians over interleaved rounds of a training step (batch 256, full Muon) and of one
    recording on each subset size, and the overhead they imply for a run of STEPS steps."""
    m = make_cnn(1, 10, seed=0, width=1.0)
    opt = DropMuon(layers=m.layer_parameters(), lr=0.1, ns_dtype=default_ns_dtype("cpu"))
    ce = torch.nn.functional.cross_entropy
    g = torch.Generator().manual_seed(0)
    x0, y0 = data.x_train.clone(), data.y_train.clone()

    def step():
        idx = torch.randint(0, len(x0), (256,), generator=g)
        layers_step(m, opt, ce, x0[idx], y0[idx], (1, 2, 3, 4))

    cases = {"step": step, **{n: (lambda n=n: dual_gradient_norms(m, opt, x0[:n], y0[:n], ce))
                              for n in (128, GRAD_NORM_EXAMPLES, len(x0))}}
    times = {k: [] for k in cases}
    for f in cases.values():
        f()
    for _ in range(rounds):
        for k, f in cases.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n2. interleaved rounds ({rounds}, medians): a training step {med['step'] * 1e3:.0f} ms; one recording on")
    for n, every in ((GRAD_NORM_EXAMPLES, GRAD_NORM_EVERY), (128, EVAL_EVERY), (len(x0), EVAL_EVERY)):
        records = len(range(0, STEPS + 1, every)) + (STEPS % every != 0)  # the first, every `every`, the last
        print(f"  {n:5d} examples {med[n] * 1e3:6.0f} ms = {med[n] / med['step']:.2f} steps; every {every:2d} steps, "
              f"{records} recordings in {STEPS} steps: overhead {records * med[n] / (STEPS * med['step']):.1%}")


if __name__ == "__main__":
    main()
