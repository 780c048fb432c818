"""``dropmuon sample``: the JSON the acceptance checks read, text output, and bad input."""

import json

import pytest

from dropmuon.figures.cli import main
from dropmuon.solvers import optimal_sampling


def run(capsys, *argv):
    code = main(["sample", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_rpt_json(capsys):
    code, out, err = run(capsys, "--L", "1,5,3,2", "--costs", "1,1,1,1", "--forward-cost", "2",
                         "--family", "rpt", "--objective", "max", "--method", "lp", "--json")
    assert code == 0, err
    rec = json.loads(out)
    for k in ("start_probs", "inclusion", "total_cost", "full_total_cost", "uniform_total_cost",
              "speedup_vs_full", "full_is_optimal", "status"):
        assert k in rec
    assert rec["start_probs"] == pytest.approx([0.2, 0.8, 0, 0], abs=1e-12)
    # hand-derived in tests/solvers/reference_problems.py: 26 against 30 and 45
    assert (rec["total_cost"], rec["full_total_cost"], rec["uniform_total_cost"]) == pytest.approx((26, 30, 45))
    assert rec["full_is_optimal"] is False and rec["status"] == "optimal"


def test_subsets_json(capsys):
    code, out, _ = run(capsys, "--L", "1,5,3,2", "--costs", "1,1,1,1", "--family", "subsets", "--json")
    rec = json.loads(out)
    assert code == 0
    assert rec["lowest_probs"] == pytest.approx([0.2, 0.8, 0, 0])
    assert rec["include_probs"][0] is None and rec["include_probs"][1:] == pytest.approx([1, 0.6, 0.4])
    assert len(rec["sets"]) == len(rec["set_probs"]) and sum(rec["set_probs"]) == pytest.approx(1)
    assert all(isinstance(j, int) and 1 <= j <= 4 for S in rec["sets"] for j in S)
    assert rec["total_cost"] == pytest.approx(11.0)


def test_full_cost_model_and_l0l1(capsys):
    code, out, _ = run(capsys, "--L", "1,5,3", "--weight-costs", "1,2,1", "--activation-costs", "0.5,0.5,0.5",
                       "--update-costs", "0.2,0.2,0.2", "--forward-cost", "1", "--family", "subsets", "--json")
    assert code == 0 and json.loads(out)["status"] == "optimal"
    code, out, _ = run(capsys, "--costs", "1,1", "--objective", "l0l1", "--L0", "0,3", "--L1", "1,1",
                       "--delta0", "1", "--eps", "1", "--json")
    rec = json.loads(out)
    assert code == 0 and rec["total_cost"] == pytest.approx(8 + 4 * 3**0.5, rel=1e-8)


def test_fixed_and_text(capsys):
    code, out, _ = run(capsys, "--L", "1,5,3,2", "--costs", "1,1,1,1", "--family", "fixed",
                       "--sets", "1,2,3,4;2,3,4", "--set-probs", "0.2,0.8")
    assert code == 0 and "total cost              = 16" in out and "full updates            = 20  (this distribution is 1.25x faster)" in out
    code, out, _ = run(capsys, "--L", "1,5,3,2", "--costs", "1,1,1,1")
    assert code == 0 and "start probabilities p   = (0.2, 0.8, 0, 0)" in out


def test_cli_matches_library(capsys):
    code, out, _ = run(capsys, "--L", "2,1,4", "--costs", "1,3,2", "--objective", "sum", "--json")
    r = optimal_sampling([2, 1, 4], [1, 3, 2], objective="sum")
    assert json.loads(out)["total_cost"] == pytest.approx(r.total_cost, rel=1e-12)


BAD = [
    (["--L", "1,2", "--costs", "1,2,3"], "L has 2 entries, costs has 3"),
    (["--L", "1,-2", "--costs", "1,2"], "L_2 = -2.0"),
    (["--L", "1,2", "--costs", "1,nan"], "costs_2 = nan"),
    (["--L", "1,2", "--costs", "1,2", "--family", "x"], "unknown family 'x'"),
    (["--L", "1,2", "--costs", "1,2", "--objective", "x"], "unknown objective 'x'"),
    (["--L", "1,2", "--costs", "1,2", "--method", "x"], "unknown method 'x'"),
    (["--L", "1,2", "--costs", "1,2", "--objective", "l0l1"], "L0 and L1"),
    (["--L", ",".join(["1"] * 31), "--costs", ",".join(["1"] * 31), "--family", "subsets", "--method", "enumerate"],
     "b = 31 > 20"),
    (["--L", "1,2"], "--costs"),
    (["--L", "1,2", "--costs", "1,2", "--weight-costs", "1,2"], "either --costs"),
    (["--L", "1,2", "--costs", "1,2", "--family", "fixed"], "exactly one of"),
    (["--L", "1,2", "--costs", "1,2", "--start-probs", "1,0"], "only used with --family fixed"),
    (["--L", "1,2", "--costs", "1,2", "--seed", "x"], "--seed is 'x'"),
]


@pytest.mark.parametrize("argv,msg", BAD, ids=[m for _, m in BAD])
def test_bad_input(capsys, argv, msg):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0], err
