"""The built-in report: every section present, every linked figure exists and is a valid PDF/PNG,
the numbers come from the run (or the results file it names), and bad input is refused."""

import json
import re

import pytest

from dropmuon.figures.cli import main
from dropmuon.figures.report import SECTIONS, Report, build_report

from .conftest import check_saved


@pytest.fixture(scope="module")
def torch_results(tmp_path_factory):
    """A tiny real experiment (tiny CNN, two schedules, two seeds; ≈ 3 s)."""
    pytest.importorskip("torch")
    from dropmuon.verification.torchside.experiment import ExperimentConfig, run_experiment

    out = tmp_path_factory.mktemp("experiment")
    run_experiment(ExperimentConfig(seeds=(0, 1), samplings=("full", "uniform", "optimal-max"), max_steps=12,
                                    target_acc=0.3, batch=32, lr=0.1, width=0.125, eval_every=4, estimate_steps=3,
                                    cost_repeats=3, flush_denormals=False), out, progress=False)
    return out / "experiment.json"


@pytest.fixture(scope="module")
def report(tmp_path_factory, torch_results):
    out = tmp_path_factory.mktemp("report")
    return out, build_report(out, quick=True, torch_results=torch_results, progress=False)


def test_every_section_and_figure(report):
    out, res = report
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for title in SECTIONS:
        assert f"## {title}" in md and f"<h2>{title}</h2>" in html
    pngs = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)
    pdfs = re.findall(r"\[PDF\]\(([^)]+\.pdf)\)", md)
    names = {"optimal_distribution", "cost_landscape", "full_optimal_region", "bound_vs_iterations", "bound_vs_cost",
             "verification", "inexact_lmo", "certify", "measured_constants", "accuracy_vs_time"}  # torch ones included
    assert sorted(pngs) == sorted(f"figures/{n}.png" for n in names)
    assert sorted(pdfs) == sorted(f"figures/{n}.pdf" for n in names)
    captions = re.findall(r"^\*Figure (\d+)\. ", md, flags=re.M)
    assert captions == [str(k) for k in range(1, len(names) + 1)]  # numbered in order of appearance
    check_saved([out / p for p in pngs + pdfs])
    assert sorted(re.findall(r'<img src="([^"]+)"', html)) == sorted(pngs)
    assert sorted(str(p.relative_to(out)) for p in res["figures"]) == sorted(pngs + pdfs)
    # one scale for all: each <img> is as wide as its PNG (300 dpi) relative to a 7 in page, and
    # at the default --columns 1 every figure is one column wide (none at the page width)
    for src, width in re.findall(r'<img src="([^"]+)" alt="[^"]+" style="width:([0-9.]+)%">', html):
        px = int.from_bytes((out / src).read_bytes()[16:20], "big")
        assert float(width) == pytest.approx(min(100.0, 100 * px / 300 / 7.0), abs=0.06), src
        assert px / 300 <= 3.4 + 0.05, src


def test_numbers_come_from_the_run_and_the_named_file(report, torch_results, quick_suite_records):
    out, res = report
    data = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    # the verification paragraph quotes the suite summary computed in this run
    from dropmuon.verification import CheckResult, summarise

    a = summarise([CheckResult.from_dict(d) for d in quick_suite_records])["all"]
    assert data["verification"]["summary"]["all"] == a
    assert (f"{a['checks']} checks ({a['exact']} exact, {a['mc']} Monte Carlo), {a['violations']} failed, "
            f"{a['inconclusive']} inconclusive") in md
    # the exact-worst-case section quotes the savings computed in this run
    assert data["certify"]["savings"] and all(r["saving"] >= -1e-9 for r in data["certify"]["savings"])
    # the optimal distribution of the first built-in profile is the solver's
    from dropmuon.solvers import optimal_sampling
    from dropmuon.verification.predictions import builtin_profiles

    p = builtin_profiles()[0]
    r = optimal_sampling(list(p.L), p.cost_model)
    assert data["distributions"][0]["max"]["start_probs"] == pytest.approx(r.start_probs.tolist(), abs=0)
    # the torch section names its file and quotes its summary
    assert str(torch_results) in md
    saved = json.loads(torch_results.read_text())
    assert data["torch"]["summary"]["verdict"] == saved["summary"]["verdict"]
    assert "measured CNN" in md  # the measured profile joins the optimal-distribution table


def test_report_without_torch_results_says_how_to_get_them():
    from dropmuon.figures.report import _section_torch

    rep = Report("t")
    _section_torch(rep, {}, None, None, None, 1)
    text = rep.to_markdown()
    assert "## Torch measurements" in text and "dropmuon experiment" in text and "No torch results" in text


def test_markdown_and_html_rendering():
    rep = Report("Title")
    rep.heading("A")
    rep.paragraph("uses `code` & <tags>")
    rep.table(["x", "y|z"], [[1, "a|b"]])
    rep.figure("figures/f", "caption")
    md, html = rep.to_markdown(), rep.to_html()
    assert "| x | y\\|z |" in md and "| 1 | a\\|b |" in md
    assert "![Figure 1. caption](figures/f.png)" in md and "[PDF](figures/f.pdf)" in md
    assert ("<code>code</code> &amp; &lt;tags&gt;" in html
            and '<img src="figures/f.png" alt="Figure 1. caption" style="width:100%">' in html)
    assert rep.figures() == ["figures/f"]


def test_html_shows_every_figure_at_one_scale():
    """An <img> is as wide, relative to the text, as the figure is relative to the page (7 in): a
    one-column figure at about half the width of a page-wide one, never stretched to the text width."""
    rep = Report("t")
    rep.figure("figures/one", "one column", width_in=3.4)
    rep.figure("figures/two", "page width", width_in=7.0)
    rep.figure("figures/wide", "wider than the page", width_in=9.0)
    widths = re.findall(r'<img src="[^"]+" alt="[^"]+" style="width:([0-9.]+)%">', rep.to_html())
    assert widths == ["48.6", "100", "100"]


def test_bad_input(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    assert main(["report", "--out", str(tmp_path), "--torch-results", str(bad), "--quick"]) == 2
    assert "is not an experiment JSON" in capsys.readouterr().err
    assert main(["report", "--out", str(tmp_path), "--columns", "3"]) == 2
    assert "--columns must be 1 or 2" in capsys.readouterr().err
    assert main(["report", "--out", str(tmp_path), "--torch-results", str(tmp_path / "none.json")]) == 2
    assert "cannot read the torch results file" in capsys.readouterr().err
