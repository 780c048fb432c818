"""Newton–Schulz in bfloat16 against float32 (and float64) on this machine's CPU: one DropMuon
update of each of the paper's CNN layers (full width) and a whole training step, per dtype, as
ratios to float32 measured in the same run — and the dtype ``--ns-dtype auto`` picks here. On a CPU
without native bf16 the bf16 update was measured ~36× slower than float32; with it, faster."""

from _timing import measure, require_torch, table

torch = require_torch()

from dropmuon.verification.torchside import DropMuon, dropmuon_training_step, load_digits, make_cnn  # noqa: E402
from dropmuon.verification.torchside.environment import default_ns_dtype, environment  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


def main():
    torch.set_flush_denormal(True)
    env = environment("cpu")
    print(f"{env['cpu_model']}, flags {', '.join(env['cpu_flags'])}; native bf16: {env['native_bf16']}; "
          f"torch {env['torch']}, {env['torch_threads']} threads; --ns-dtype auto picks "
          f"{str(default_ns_dtype('cpu')).replace('torch.', '')}")
    shapes = {"conv1 64x9": (64, 1, 3, 3), "conv2 128x576": (128, 64, 3, 3), "conv3 256x1152": (256, 128, 3, 3),
              "head 10x256": (10, 256)}
    g = torch.Generator().manual_seed(0)
    for label, shape in shapes.items():
        rows = []
        for name, dt in DTYPES.items():
            p = torch.nn.Parameter(torch.randn(shape, generator=g))
            p.grad = torch.randn(shape, generator=g)
            opt = DropMuon([p], lr=0.01, ns_dtype=dt)
            rows.append((f"update {label}, Newton-Schulz in {name}", measure(opt.step, repeat=7, warmup=2)))
        table(f"one DropMuon update of {label} (5 Newton-Schulz steps)", rows, rows[0][0])
    d = load_digits()
    rows = []
    for name, dt in DTYPES.items():
        m = make_cnn(1, 10, seed=0)
        opt = DropMuon(layers=m.layer_parameters(), lr=0.1, ns_dtype=dt)
        x, y = d.x_train[:256], d.y_train[:256]
        rows.append((f"full training step, batch 256, NS in {name}",
                     measure(lambda: dropmuon_training_step(m, opt, torch.nn.functional.cross_entropy, x, y, 1),
                             repeat=7, warmup=2)))
    table("a full Drop-Muon step of the paper's CNN on digits", rows, rows[0][0])


if __name__ == "__main__":
    main()
