"""The ``dropmuon`` command line: ``bound`` for every theorem, ``--list``, and bad input (exit 2,
one line naming the bad value)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dropmuon.figures.cli import main
from dropmuon.theory import theorems


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


BASE = ["--L", "1,4,2", "--pi", "0.5,1,1", "--delta0", "10", "--eps", "0.1"]
EXTRA = {
    "l0l1-deterministic": ["--L0", "0.1,0,0.2", "--L1", "1,4,2"],
    "smooth-stochastic": ["--sigma", "0.1,0.2,0.1", "--rho", "1,2,1"],
    "inexact-constant-radius": ["--delta", "0.3,0.1,0.2"],
}


def test_list_json(capsys):
    code, out, _ = run(capsys, "bound", "--list", "--json")
    assert code == 0
    entries = json.loads(out)
    assert [e["name"] for e in entries] == list(theorems)
    for e in entries:  # the catalogue: each theorem with its proof, check and figure, nothing missing
        assert e["proof"].startswith("docs/theory.md") and e["check"] and e["figure"] and e["missing"] == []


@pytest.mark.parametrize("name", list(theorems))
def test_bound_json_for_every_theorem(capsys, name):
    code, out, err = run(capsys, "bound", "--theorem", name, *BASE, *EXTRA.get(name, []), "--json")
    assert code == 0, err
    rec = json.loads(out)
    for key in ("theorem", "iterations", "bound_at_K", "step", "latex"):
        assert key in rec
    assert rec["theorem"] == name
    t = theorems[name]
    # the numbers are the library's
    consts = {k: v for k, v in rec["inputs"].items()}
    assert rec["iterations"] == t.iterations(0.1, **consts)
    assert rec["bound_at_K"] == pytest.approx(t.evaluate(rec["iterations"], **consts).value, rel=1e-12)
    assert rec["bound_at_K"] <= rec["target"] * (1 + 1e-12)
    assert rec["latex"] == t.latex()
    if name == "l0l1-deterministic":
        assert rec["ignored"] == ["L"]  # T2 takes L0, L1 instead of L


def test_bound_text_output(capsys):
    code, out, _ = run(capsys, "bound", "--theorem", "smooth-deterministic", *BASE)
    assert code == 0
    assert "K = 8000" in out and "gamma = (1, 0.25, 0.5)" in out


def test_fixed_step_parameters(capsys):
    code, out, _ = run(capsys, "bound", "--theorem", "smooth-constant-radius", "--L", "1,4,2",
                       "--delta0", "1", "--eps", "1", "--eta", "0.1", "--json")
    assert code == 0
    rec = json.loads(out)
    assert rec["iterations"] == 16 and rec["step"]["eta"] == 0.1
    np.testing.assert_allclose(rec["step"]["radius"], [0.1, 0.1, 0.1])


BAD = [
    (["--theorem", "smooth-deterministic", "--L", "-1,4,2", "--delta0", "10", "--eps", "0.1"], "L_1 = -1.0"),
    (["--theorem", "smooth-deterministic", "--L", "1,0,2", "--delta0", "10", "--eps", "0.1"], "L_2 = 0.0"),
    (["--theorem", "smooth-deterministic", "--L", "1,nan,2", "--delta0", "10", "--eps", "0.1"], "L_2 = nan"),
    (["--theorem", "smooth-deterministic", "--L", "1,inf,2", "--delta0", "10", "--eps", "0.1"], "L_2 = inf"),
    (["--theorem", "smooth-deterministic", "--L", "1,4,2", "--pi", "0.5,1.2,1", "--delta0", "10",
      "--eps", "0.1"], "pi_2 = 1.2"),
    (["--theorem", "smooth-deterministic", "--L", "1,4,2", "--pi", "0,1,1", "--delta0", "10",
      "--eps", "0.1"], "pi_1 = 0.0"),
    (["--theorem", "smooth-deterministic", "--L", "1,4,2", "--pi", "1,1", "--delta0", "10",
      "--eps", "0.1"], "L has 3 entries, pi has 2"),
    (["--theorem", "smooth-deterministic", "--L", "", "--delta0", "10", "--eps", "0.1"], "--L is empty"),
    (["--theorem", "smooth-deterministic", "--L", "1,x", "--delta0", "10", "--eps", "0.1"], "item 2 is 'x'"),
    (["--theorem", "no-such", "--L", "1", "--delta0", "10", "--eps", "0.1"], "unknown theorem 'no-such'"),
    (["--theorem", "smooth-deterministic", "--L", "1,4,2", "--delta0", "10", "--eps", "0"], "epsilon = 0.0"),
    (["--theorem", "smooth-deterministic", "--L", "1,4,2", "--delta0", "10", "--eps", "-0.1"], "epsilon = -0.1"),
    (["--theorem", "smooth-deterministic", "--L", "1,4,2", "--delta0", "-3", "--eps", "0.1"], "Delta0 = -3.0"),
    (["--theorem", "smooth-deterministic", "--L", "1,4,2", "--delta0", "10"], "--eps"),
    (["--theorem", "l0l1-deterministic", "--L0", "0,0", "--delta0", "10", "--eps", "0.1"], "L1"),
    (["--theorem", "smooth-deterministic", "--L", "1", "--delta0", "1", "--eps", "0.1", "--eta", "1"],
     "no step parameter eta"),
    (["--theorem", "smooth-constant-radius", "--L", "1", "--delta0", "1", "--eps", "0.1", "--eta", "5"],
     "unreachable"),
    (["--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("argv,msg", BAD)
def test_bad_input_exit_2_one_line(capsys, argv, msg):
    code = main(["bound", *argv])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert msg in lines[0]


def _console_script():
    exe = shutil.which("dropmuon", path=os.path.dirname(sys.executable))
    if exe is None:
        raise RuntimeError("the dropmuon console script is not installed next to this python")
    return exe


def test_console_script_end_to_end():
    """The installed entry point, as a user runs it."""
    exe = _console_script()
    r = subprocess.run([exe, "bound", "--theorem", "smooth-deterministic", *BASE, "--json"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["iterations"] == 8000
    r = subprocess.run([exe, "bound", "--theorem", "smooth-deterministic", "--L", "1,-2",
                        "--delta0", "1", "--eps", "1"], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "L_2 = -2.0" in r.stderr
