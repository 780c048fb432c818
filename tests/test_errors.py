"""The bad-input table of ``docs/errors.md``: every row is run here and must give its documented
exit status and its documented one-line message, and the table in the docs must be the one these
cases produce (regenerate it with ``python -m tests.test_errors``).

Command-line rows run ``dropmuon`` in-process; library rows run one Python statement and record the
exception it raises. ``TMP`` stands for a scratch folder holding the files of :data:`FILES`.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"

#: the scratch files the rows refer to as TMP/NAME (bytes written as given)
FILES = {
    "file": b"a plain file\n",
    "empty.npz": b"",
    "notzip.npz": b"x",
    "broken.json": b"{",
    "list.json": b"[1, 2]\n",
    "broken.toml": b"name = [\n",
    "noshapes.toml": (b'name = "s"\nK = 4\nseeds = [0]\ntheorems = ["smooth-deterministic"]\n'
                      b'[[problems]]\nname = "q"\nkind = "separable-quadratic"\ncurvature = [1.0, 2.0]\n'
                      b'norms = "spectral"\n[[distributions]]\nname = "u"\nkind = "uniform"\n'),
    "latin1.toml": b'name = "\xe9t\xe9"\nK = 4\n',
    "badconst.json": b'[{"layer": 1, "L": "abc"}]\n',
    "calstring.json": b'{"calibration":"x","runs":5}\n',
    "oneconst.json": (b'[{"layer": 1, "L": 2.0, "gnorms": [1.0], "costs": {"forward_s": 1.0, "activation_s": 0.0, '
                      b'"weight_s": 1.0, "update_s": 0.0}}]\n'),
    "nan.json": b'{"config": {}, "summary": {"speedup": NaN}}\n',
    "hugeK.toml": (b'name = "s"\nK = 1000000\nseeds = [0]\ntheorems = ["smooth-deterministic"]\n'
                   b'[[problems]]\nname = "q"\nkind = "separable-quadratic"\nshapes = [[2, 2], [2, 2]]\n'
                   b'curvature = [1.0, 2.0]\nnorms = "spectral"\n[[distributions]]\nname = "u"\n'
                   b'kind = "uniform"\n'),
}

B = "bound --theorem smooth-deterministic --delta0 1 --eps 0.1"
S = "sample --costs 1,1"
T = "train --max-steps 2"

#: (what is wrong, the command line after ``dropmuon`` or a Python statement prefixed ``>>> ``)
CASES: list[tuple[str, str]] = [
    ("no subcommand", ""),
    ("unknown subcommand", "frobnicate"),
    ("unknown option", "bound --nope 1"),
    ("theorem missing", "bound --L 1,2 --delta0 1 --eps 0.1"),
    ("unknown theorem", "bound --theorem nope --L 1,2 --delta0 1 --eps 0.1"),
    ("negative constant", f"{B} --L 1,-2"),
    ("constant not a number", f"{B} --L 1,x"),
    ("NaN constant", f"{B} --L nan,1"),
    ("infinite constant", f"{B} --L inf,1"),
    ("empty list", f"{B} --L ''"),
    ("zero accuracy", "bound --theorem smooth-deterministic --L 1,2 --delta0 1 --eps 0"),
    ("accuracy so small K overflows", "bound --theorem smooth-deterministic --L 1,2 --delta0 1 --eps 1e-300"),
    ("negative initial gap", "bound --theorem smooth-deterministic --L 1,2 --delta0 -1 --eps 0.1"),
    ("inclusion probability 0", f"{B} --L 1,2 --pi 0,1"),
    ("inclusion probability above 1", f"{B} --L 1,2 --pi 0.5,1.5"),
    ("lists of different lengths", f"{B} --L 1,2 --pi 1"),
    ("constants missing", "sample --costs 1,1"),
    ("costs missing", "sample --L 1,2"),
    ("costs of another length", "sample --L 1,2 --costs 1"),
    ("negative cost", "sample --L 1,2 --costs 1,-1"),
    ("unknown family", f"{S} --L 1,2 --family foo"),
    ("unknown objective", f"{S} --L 1,2 --objective foo"),
    ("unknown method", f"{S} --L 1,2 --method foo"),
    ("no solver starts", f"{S} --L 1,2 --starts 0"),
    ("negative seed", f"{S} --L 1,2 --seed -1"),
    ("fixed RPT start probabilities not summing to 1", f"{S} --L 1,2 --family fixed --start-probs 0.5,0.6"),
    ("unknown suite", "verify --suite nope"),
    ("negative seed", "verify --seed -1"),
    ("zero jobs", "verify --jobs 0"),
    ("--out names a file", "verify --out TMP/file"),
    ("--out under a file", "verify --out TMP/file/sub"),
    ("--out not writable", "verify --out /proc/dropmuon-out"),
    ("negative seed", "report --seed -3"),
    ("three columns", "report --columns 3"),
    ("--out names a file", "report --out TMP/file"),
    ("torch results missing", "report --torch-results TMP/missing.json --out TMP/out"),
    ("torch results not JSON", "report --torch-results TMP/broken.json --out TMP/out"),
    ("torch results of another structure", "report --torch-results TMP/list.json --out TMP/out"),
    ("sweep file missing", "sweep TMP/missing.toml"),
    ("sweep file not TOML", "sweep TMP/broken.toml"),
    ("sweep problem without shapes", "sweep TMP/noshapes.toml --out TMP/sw"),
    ("sweep with K = 10^6", "sweep TMP/hugeK.toml --out TMP/sw"),
    ("data file empty", f"{T} --data TMP/empty.npz"),
    ("data file not a zip archive", f"{T} --data TMP/notzip.npz"),
    ("data file missing", f"{T} --data TMP/missing.npz"),
    ("unknown data set name", f"{T} --data mnist"),
    ("zero batch", f"{T} --batch 0"),
    ("negative learning rate", f"{T} --lr -1"),
    ("unknown device", f"{T} --device tpu"),
    ("unknown schedule", f"{T} --sampling nope"),
    ("zero steps", "train --max-steps 0"),
    ("target accuracy above 1", f"{T} --target-acc 2"),
    ("model factory not importable", f"{T} --model nomodule:make"),
    ("zero trajectory steps", "estimate --steps 0"),
    ("zero seeds", "experiment --seeds 0 --target-acc 0.9 --out TMP/exp"),
    ("--out names a file", "experiment --target-acc 0.9 --out TMP/file"),
    ("certify: inclusion probability 0", "certify --L 1,2 --pi 0,1 --K 3"),
    ("certify: zero iterations", "certify --L 1,2 --pi 1,1 --K 0"),
    ("certify: a theorem with nonlinear steps", "certify --theorem smooth-constant-radius --L 1 --pi 1 --K 2"),
    ("--import of a missing file", "--import TMP/missing.py bound --list"),
    ("sample over an unknown theorem", "sample --theorem nope --L 1,2 --costs 1,1 --delta0 1 --eps 0.1"),
    ("sample over a theorem without Delta0", "sample --theorem smooth-stochastic --L 1,2 --costs 1,1 --eps 0.1"),
    ("verify an unknown theorem", "verify --theorem nope"),
    ("--out empty", "verify --out ''"),
    ("accuracy so large its target overflows", "bound --theorem smooth-deterministic --L 1,2 --delta0 1 --eps 1e200"),
    ("--theorem with --list names an unknown theorem", "bound --list --theorem nope"),
    ("certify at a K that cannot finish here", "certify --L 1 --pi 0.5 --K 500000 --beta 0.9"),
    ("certify with SCS beyond the all-pairs SDP", "certify --L 1 --pi 0.5 --K 200 --beta 0.9 --solver SCS"),
    ("sweep file not UTF-8", "sweep TMP/latin1.toml"),
    ("torch results holding NaN", "report --torch-results TMP/nan.json --out TMP/out"),
    ("torch results with a bad calibration field", "report --torch-results TMP/calstring.json --out TMP/out"),
    ("no Dask scheduler at the address", "verify --scheduler tcp://127.0.0.1:1"),
    ("accuracy so large eps^2 overflows (sample)", "sample --theorem smooth-deterministic --L 1,2 --costs 1,1 "
                                                   "--delta0 1 --eps 1e300"),
    ("a billion solver starts", f"{S} --L 1,2 --method scipy --starts 1000000000"),
    ("constants and costs near the largest double", "sample --L 1e308,1e308 --costs 1e308,1e308 --forward-cost 1e308"),
    ("l0l1 weights beyond a double", f"{S} --objective l0l1 --L0 1e308,1 --L1 1e-200,1 --delta0 1 --eps 1 "
                                     "--family subsets"),
    ("grid over constants 1e400 apart", "sample --L 1e-200,1e200 --costs 1,1 --method grid"),
    ("constants file with a bad record", f"{T} --sampling optimal-max --constants TMP/badconst.json"),
    ("data file of 0 samples", f"{T} --data TMP/nosamples.npz"),
    ("predict without a constants file", "predict --constants TMP/missing.json"),
    ("predict an unknown schedule", "predict --constants TMP/oneconst.json --schedules full,nope"),
    ("predict at eps 0", "predict --constants TMP/oneconst.json --eps 0"),
    ("predict with a batch of 0", "predict --constants TMP/oneconst.json --batch 0"),
    ("estimate with one noise draw", "estimate --noise-draws 1"),
    ("estimate with no Delta0 steps", "estimate --delta0-steps 0"),
    ("train with an unknown radius rule", f"{T} --radius-rule nope"),
    ("a batch neither a size nor full", "experiment --batch fuller --target-acc 0.9 --out TMP/exp"),
    ("a learning-rate grid of one rate", "experiment --lr-grid 0.1 --target-acc 0.9 --out TMP/exp"),
    ("an evaluation seed that is a tuning seed", "experiment --seed 2000003 --seeds 1 --lr-grid 0.05,0.1 "
                                                 "--target-acc 0.9 --out TMP/exp"),
    ("zero phases", "experiment --phases 0 --target-acc 0.9 --out TMP/exp"),
    ("more training examples than the data has", "experiment --data digits --train-examples 100000 "
                                                 "--target-acc 0.9 --out TMP/exp"),
    ("phase-optimal in train (it needs the experiment's phases)", f"{T} --sampling phase-optimal"),
    ("campaign: an unknown regime", "campaign --regimes minibatch,fast --list"),
    ("API: phase-optimal without per-phase constants", ">>> make_schedule('phase-optimal', 2, costs=[1, 1])"),
    ("API: phases that do not start at step 0", ">>> Phased((RPT([1.0]), RPT([1.0])), starts=(5, 10))"),
    ("API: pilot without full Muon", ">>> pilot_prediction({'uniform': dict(iterations=[0, 1], loss=[1, 0.5], "
                                     "seconds_per_step=1.0)})"),
    ("API: scoring without full Muon's runs", ">>> score_predictions({}, {'uniform': dict(time=[1.0], "
                                              "iterations=[1])})"),
    ("API: negative constant", ">>> optimal_sampling([1, -2], [1, 1])"),
    ("API: costs of another length", ">>> optimal_sampling([1, 2], [1])"),
    ("API: zero accuracy", ">>> theorems['smooth-deterministic'].iterations(0, L=[1, 2], pi=[1, 1], Delta0=1)"),
    ("API: start probabilities not summing to 1", ">>> RPT([0.5, 0.6])"),
    ("API: zero jobs", ">>> run_tasks([], jobs=0)"),
    ("API: empty data file", ">>> load_npz('TMP/empty.npz')"),
    ("API: seeds for a zero spread", ">>> seeds_for_width(0.0, 1.1)"),
]

_API = ("from solvers import optimal_sampling\nfrom theory import RPT, theorems\n"
        "from dropmuon.verification.runs.execution import run_tasks\n"
        "from dropmuon.verification.torchside.data import load_npz\n"
        "from dropmuon.verification.torchside.experiment import seeds_for_width\n"
        "from dropmuon.verification.forecasting.pilot import pilot_prediction\n"
        "from dropmuon.verification.forecasting.scoring import score_predictions\n"
        "from dropmuon.verification.forecasting.schedules import make_schedule\n"
        "from dropmuon.verification.synthetic.dropmuon import Phased\n")


def _no_samples_npz() -> bytes:
    """A valid data archive holding 0 training and 0 test examples."""
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros((0, 1, 28, 28), np.float32), y_train=np.zeros(0, np.int64),
             x_test=np.zeros((0, 1, 28, 28), np.float32), y_test=np.zeros(0, np.int64))
    return buf.getvalue()


def make_files(tmp: Path) -> None:
    for name, data in FILES.items():
        (tmp / name).write_bytes(data)
    (tmp / "nosamples.npz").write_bytes(_no_samples_npz())


def run_case(text: str, tmp: Path) -> tuple[int, str]:
    """``(exit status, message)`` of one row: for a library row, 2 for a ``ValueError`` and 3 for
    any other exception (as the command line maps them), with ``Type: message``."""
    text = text.replace("TMP", str(tmp))
    if text.startswith(">>> "):
        ns: dict = {}
        exec(_API, ns)
        try:
            exec(text[4:], ns)
        except Exception as e:  # noqa: BLE001 - the row records what it raises
            msg = f"{type(e).__name__}: {' '.join(str(e).split())}"
            return (2 if isinstance(e, ValueError) else 3), msg.replace(str(tmp), "TMP")
        return 0, ""
    from dropmuon.figures.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(shlex.split(text))
    return code, err.getvalue().strip().replace(str(tmp), "TMP")


def render(rows) -> str:
    """The Markdown table of ``rows`` = ``[(what, text, code, message), ...]``."""
    def cell(s):
        return s.replace("|", "\\|")

    lines = ["| # | what is wrong | input | exit | message |", "| --- | --- | --- | --- | --- |"]
    for k, (what, text, code, msg) in enumerate(rows, 1):
        shown = text[4:] if text.startswith(">>> ") else ("dropmuon " + text).strip()
        lines.append(f"| {k} | {cell(what)} | `{cell(shown)}` | {code} | {cell(msg)} |")
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- table: generated by python -m tests.test_errors -->", "<!-- end of table -->"


def doc_table() -> str:
    text = DOC.read_text()
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip("\n") + "\n"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("errors")
    make_files(tmp)
    return tmp


@pytest.mark.parametrize("k", range(len(CASES)), ids=[f"{k + 1}-{w}" for k, (w, _) in enumerate(CASES)])
def test_each_bad_input_gets_its_documented_exit_status_and_message(k, scratch):
    what, text = CASES[k]
    code, msg = run_case(text, scratch)
    assert code in (2, 3), f"{text!r} exited {code}: {msg}"
    assert "\n" not in msg and "Traceback" not in msg, msg
    rows = {r.split(" | ")[0].lstrip("| "): r for r in doc_table().splitlines()[2:]}
    documented = rows[str(k + 1)].split(" | ")
    assert int(documented[3]) == code, (text, code, msg)
    assert documented[4].rstrip(" |").replace("\\|", "|") == msg, (text, msg)


def test_the_table_has_at_least_forty_cases_from_both_the_cli_and_the_library():
    rows = doc_table().splitlines()[2:]
    assert len(rows) == len(CASES) >= 40
    assert sum(t.startswith(">>> ") for _, t in CASES) >= 5


def test_debug_prints_the_traceback_and_keeps_the_status(scratch, capsys):
    from dropmuon.figures.cli import main

    assert main(["train", "--max-steps", "2", "--data", str(scratch / "empty.npz"), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith("dropmuon train: error:")


def test_an_internal_error_exits_3_with_one_line_and_a_hint(monkeypatch, capsys):
    from dropmuon.figures.cli import bound, main

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(bound, "run", broken)
    assert main(["bound", "--list"]) == 3
    err = capsys.readouterr().err.strip()
    assert err == ("dropmuon bound: error: ZeroDivisionError: division by zero (an internal error; rerun with "
                   "--debug for the traceback and report it)")


def test_an_absent_gpu_or_extra_is_an_environment_error_exit_3(monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    from dropmuon.figures.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "--max-steps", "1", "--device", "cuda"]) == 3
    assert capsys.readouterr().err.strip() == ("dropmuon train: error: --device cuda was asked for but no CUDA "
                                               "device is available here; use --device cpu or auto")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if the torch extra were not installed
    assert main(["estimate", "--steps", "1"]) == 3
    assert capsys.readouterr().err.strip() == ("dropmuon estimate: error: this command needs the torch extra: "
                                               "pip install 'dropmuon[torch]'")


def test_json_output_has_null_for_a_number_without_a_finite_value(capsys):
    import json

    from dropmuon.figures.cli._common import emit_json

    emit_json({"K": float("inf"), "p": [0.5, float("-inf")], "n": 3, "ok": True})
    assert json.loads(capsys.readouterr().out) == {"K": None, "p": [0.5, None], "n": 3, "ok": True}


if __name__ == "__main__":  # regenerate the table of docs/errors.md
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        make_files(tmp)
        rows = []
        for what, text in CASES:
            code, msg = run_case(text, tmp)
            rows.append((what, text, code, msg))
            print(code, text, "->", msg, file=sys.stderr)
    text = DOC.read_text()
    new = text[:text.index(BEGIN) + len(BEGIN)] + "\n" + render(rows) + text[text.index(END):]
    DOC.write_text(re.sub(r"\n{3,}", "\n\n", new))


def test_a_closed_pipe_is_not_an_error(tmp_path):
    """``dropmuon bound --list | head -1``: the reader closing the pipe ends the command quietly
    with status 0, not with an internal-error message."""
    import subprocess

    exe = Path(sys.executable).parent / "dropmuon"
    r = subprocess.run(f"'{exe}' bound --list | head -1", shell=True, capture_output=True, text=True,
                       executable="/bin/bash")
    assert r.stdout.startswith("T1 smooth-deterministic") and "BrokenPipeError" not in r.stderr
    r = subprocess.run(f"'{exe}' bound --list | head -1; exit ${{PIPESTATUS[0]}}", shell=True,
                       capture_output=True, text=True, executable="/bin/bash")
    assert r.returncode == 0, r.stderr
