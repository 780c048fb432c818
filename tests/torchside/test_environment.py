"""The Newton–Schulz dtype follows the hardware (bf16 only where it is native), a user's choice
is validated, and results record the machine they were measured on."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dropmuon.figures.cli import main  # noqa: E402
from dropmuon.verification.torchside import environment as envmod  # noqa: E402


@pytest.mark.parametrize("flags, native", [
    ({"avx2", "fma"}, False),                   # an AVX2 EPYC: bf16 emulated, 36x slower measured
    ({"avx2", "avx512f", "avx512_bf16"}, True),
    ({"amx_tile", "amx_bf16"}, True),
    ({"asimd", "bf16"}, True),                  # Arm with the BF16 extension
    (set(), False),                             # flags unknown: the safe choice
])
def test_default_dtype_follows_native_bf16(monkeypatch, flags, native):
    monkeypatch.setattr(envmod, "cpu_flags", lambda: set(flags))
    assert envmod.native_bf16("cpu") is native
    assert envmod.default_ns_dtype("cpu") == (torch.bfloat16 if native else torch.float32)
    assert envmod.resolve_ns_dtype("auto", "cpu") == envmod.default_ns_dtype("cpu")


def test_dtype_names_are_validated():
    assert envmod.resolve_ns_dtype("float32") is torch.float32
    assert envmod.resolve_ns_dtype(torch.bfloat16) is torch.bfloat16
    with pytest.raises(ValueError, match="unknown Newton-Schulz dtype 'half'"):
        envmod.resolve_ns_dtype("half")
    with pytest.raises(ValueError, match="must be one of bfloat16, float32, float64; got torch.float16"):
        envmod.resolve_ns_dtype(torch.float16)


def test_environment_is_recorded_and_the_dtype_reaches_the_optimizer(capsys):
    env = envmod.environment("cpu", torch.float32)
    assert env["ns_dtype"] == "float32" and env["torch"] == torch.__version__ and env["cpu_model"]
    assert set(env["cpu_flags"]) <= set(envmod.FLAGS_THAT_MATTER)
    assert main(["train", "--device", "cpu", "--width", "0.125", "--max-steps", "2", "--ns-dtype", "float64",
                 "--no-progress", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["environment"]["ns_dtype"] == "float64" and out["environment"]["torch_threads"] >= 1
    assert main(["train", "--device", "cpu", "--max-steps", "1", "--ns-dtype", "half"]) == 2
    err = capsys.readouterr().err
    assert "unknown Newton-Schulz dtype 'half'" in err and err.count("\n") == 1
