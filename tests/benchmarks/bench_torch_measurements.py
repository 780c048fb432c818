"""The three measurements the toolkit's claims about real training rest on, side by side in one run
on this machine:

1. **Estimator error against analytic constants.** On least squares a layer's spectral→nuclear
   constant is the sum of the min(m, n) largest eigenvalues of the data's second-moment matrix.
   Printed: the fraction of it each method recovers — the trajectory estimate along full Muon with
   exact polar steps and with Muon's Newton–Schulz steps, the online estimate along a training run
   (``train(estimate_every=1)``), and the probe (power method on Hessian-vector products) — for
   tall, wide and square layers, with the offline estimation's time relative to its training time.
2. **Online estimation overhead** as a fraction of training time (goal ≤ 10%), for the paper's CNN
   on the real MNIST images at the closed loop's setting, estimating every N = 5, 10, 20, 50 steps;
   and whether the updates are unchanged (they are: the same final weights, bit for bit).
3. **Newton–Schulz in float32 against bfloat16**: a whole training step of that CNN, per dtype, on
   this CPU, and the dtype ``--ns-dtype auto`` picks here.
4. **The speed options** ``--channels-last`` and ``--compile`` (inductor, one graph per start
   index, compiled before timing): the step from each start index, against the plain model, and
   the compilation's one-off time.
"""

import pathlib
import sys
import time

import numpy as np
from _timing import measure, require_torch, table

torch = require_torch()

from dropmuon.theory import RPT  # noqa: E402
from dropmuon.verification.torchside import Dataset, DropMuon, dropmuon_training_step, load_mnist5k, make_cnn  # noqa: E402
from dropmuon.verification.torchside.build import compile_per_start, warm_up_starts  # noqa: E402
from dropmuon.verification.torchside.constants import estimate_constants  # noqa: E402
from dropmuon.verification.torchside.environment import default_ns_dtype, environment  # noqa: E402
from dropmuon.verification.torchside.training import train  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from tests.torchside.test_constants_probe import FullBatch  # noqa: E402  (the same model as the test)


def estimator_error():
    print(f"\n1. estimator / analytic constant on least squares (N = 2048 rows)\n  {'layer':16s} "
          f"{'trajectory, polar':>18s} {'trajectory, NS':>15s} {'online, NS':>11s} {'probe':>10s} "
          f"{'offline estimate time / train time':>36s}")
    g = torch.Generator().manual_seed(0)
    for label, (m, n) in {"tall 256x64": (256, 64), "wide 64x256": (64, 256), "square 128x128": (128, 128)}.items():
        N = 2048
        X = torch.randn(N, n, generator=g) * torch.linspace(0.2, 2.0, n)
        Y = torch.randn(N, m, generator=g)
        true = float(np.sort(np.linalg.eigvalsh((X.T @ X / N).double().numpy()))[::-1][:min(m, n)].sum())
        data = Dataset(X, Y, X[:8], Y[:8], "least-squares", task="regression")

        def loss(out, _):
            return 0.5 * ((out - Y) ** 2).sum(1).mean()

        row = []
        for sharp in ("svd", "newton-schulz"):
            torch.manual_seed(0)
            model = FullBatch(X, m)
            opt = DropMuon.from_model(model, X[:4], lr=0.01, sharp=sharp, ns_dtype=torch.float32)
            c, over = estimate_constants(model, opt, loss, data, steps=20, batch=8, hessian_every=0,
                                         probe_iterations=30 if sharp == "svd" else 0)
            row.append((c[0], over))
        (c_svd, o_svd), (c_ns, _) = row
        torch.manual_seed(0)
        model = FullBatch(X, m)
        opt = DropMuon.from_model(model, X[:4], lr=0.01, ns_dtype=torch.float32)
        r = train(model, opt, data, RPT.full(1), max_steps=20, batch=8, eval_every=100, estimate_every=1,
                  loss_fn=loss, metric=lambda out, _: -((out - Y) ** 2).mean())
        online = r.info["online_constants"]["layers"][0]["L"]
        print(f"  {label:16s} {c_svd.L / true:>18.3f} {c_ns.L / true:>15.3f} {online / true:>11.3f} "
              f"{c_svd.L_probe / true:>10.6f} {o_svd['overhead_ratio']:>35.1f}x")
    print("  trajectory: 20 steps of full Muon (exact polar factor or 5 Newton-Schulz steps); online: the same "
          "estimate taken inside train(); probe: 30 power iterations at the last point")


def online_overhead(data, steps=200):
    print(f"\n2. online estimation along training: the paper's CNN (width 0.25) on {data.name}, batch 128, "
          f"lr 0.1, {steps} steps of full Muon and of uniform RPT, Newton-Schulz in float32")
    print(f"  {'schedule':9s} {'every N':>8s} {'train s':>9s} {'estimate s':>11s} {'overhead':>9s} "
          f"{'same weights':>13s}")
    for name, sched in (("full", RPT.full(4)), ("uniform", RPT.uniform(4))):
        ref = None
        for every in (None, 5, 10, 20, 50):
            m = make_cnn(1, 10, seed=0, width=0.25)
            opt = DropMuon(layers=m.layer_parameters(), lr=0.1, ns_dtype=torch.float32)
            r = train(m, opt, data, sched, max_steps=steps, batch=128, eval_every=10 * steps, seed=0,
                      estimate_every=every)
            w = [p.detach().clone() for p in m.parameters()]
            if every is None:
                ref = w
                print(f"  {name:9s} {'-':>8s} {r.train_time_s:>9.2f} {'-':>11s} {'-':>9s} {'-':>13s}")
                continue
            oc = r.info["online_constants"]
            same = all(torch.equal(a, b) for a, b in zip(ref, w))
            print(f"  {name:9s} {every:>8d} {oc['train_s']:>9.2f} {oc['estimate_s']:>11.2f} "
                  f"{oc['overhead']:>9.1%} {str(same):>13s}")
    print("  overhead: the estimation's seconds (one more forward and backward pass on the step's batch, "
          "the copies and the norms) / the training steps' seconds of the same run")


def ns_step_time(data):
    env = environment("cpu")
    print(f"\n3. Newton-Schulz dtype: {env['cpu_model']}; native bf16: {env['native_bf16']}; --ns-dtype auto "
          f"picks {str(default_ns_dtype('cpu')).replace('torch.', '')}")
    x, y = data.x_train[:128], data.y_train[:128]
    for width in (0.25, 1.0):
        rows = []
        for name, dt in {"float32": torch.float32, "bfloat16": torch.bfloat16}.items():
            m = make_cnn(1, 10, seed=0, width=width)
            opt = DropMuon(layers=m.layer_parameters(), lr=0.1, ns_dtype=dt)
            rows.append((f"NS in {name}",
                         measure(lambda: dropmuon_training_step(m, opt, torch.nn.functional.cross_entropy, x, y, 1),
                                 repeat=7, warmup=2)))
        table(f"  a full Drop-Muon step of the CNN (width {width:g}) on {data.name}, batch 128", rows, rows[0][0])


def speed_options(data):
    print(f"\n4. speed options: the CNN (width 0.25) on {data.name}, batch 128, Newton-Schulz in float32; "
          f"a step from each start index s (the RPT set {{s..4}})")
    x, y = data.x_train[:128].clone(), data.y_train[:128].clone()
    ce = torch.nn.functional.cross_entropy
    variants = {}
    for name in ("plain", "channels-last", "compiled", "compiled, channels-last"):
        m = make_cnn(1, 10, seed=0, width=0.25)
        if "channels-last" in name:
            m = m.to(memory_format=torch.channels_last)
        opt = DropMuon(layers=m.layer_parameters(), lr=0.1, ns_dtype=torch.float32)
        extra = ""
        if name.startswith("compiled"):
            torch._dynamo.reset()
            m = compile_per_start(m, 4)
            extra = f" (compiled in {warm_up_starts(m, opt, ce, x, y):.1f} s)"
        variants[name + extra] = [measure(lambda s=s: dropmuon_training_step(m, opt, ce, x, y, s), repeat=9, warmup=2)
                                  for s in (1, 2, 3, 4)]
    base = next(iter(variants.values()))
    print(f"  {'variant':44s} " + " ".join(f"{'s = ' + str(s):>16s}" for s in (1, 2, 3, 4)))
    for name, ts in variants.items():
        print(f"  {name:44s} " + " ".join(f"{t * 1e3:>7.2f} ms {t / b:>5.2f}x" for t, b in zip(ts, base)))
    print("  ratios against the plain model's step from the same start, measured in this run")


def main():
    env = environment("cpu")
    print(f"{env['cpu_model']}, flags {', '.join(env['cpu_flags'])}; torch {env['torch']}, "
          f"{env['torch_threads']} threads")
    t0 = time.perf_counter()
    estimator_error()
    data = load_mnist5k()
    online_overhead(data)
    ns_step_time(data)
    speed_options(data)
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
