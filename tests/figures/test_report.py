"""The built-in report: every section present, every linked figure exists and is a valid PDF/PNG,
the numbers come from the run (or the results file it names), and bad input is refused."""

import json
import re
import sys
import time

import pytest

from dropmuon.figures.cli import main
from dropmuon.figures.report import SECTIONS, Report, build_report

from .conftest import check_saved


@pytest.fixture(scope="session")  # session: xdist may interleave another module's tests between this one's
def torch_results(tmp_path_factory):
    """A tiny real experiment (tiny CNN, two schedules, two seeds; ≈ 3 s)."""
    pytest.importorskip("torch")
    from dropmuon.verification.torchside.experiment import ExperimentConfig, run_experiment

    out = tmp_path_factory.mktemp("experiment")
    run_experiment(ExperimentConfig(seeds=(0, 1), samplings=("full", "uniform", "optimal-max"), max_steps=12,
                                    target_acc=0.3, batch=32, lr=0.1, width=0.125, eval_every=4, estimate_steps=3,
                                    cost_repeats=3, flush_denormals=False), out, progress=False)
    return out / "experiment.json"


@pytest.fixture(scope="session")
def report(tmp_path_factory, torch_results, quick_suite_folder):
    """The quick report, its verification section read from the session's quick-suite task files
    (``suite_results``) rather than computed again."""
    out = tmp_path_factory.mktemp("report")
    return out, build_report(out, quick=True, torch_results=torch_results, progress=False,
                             suite_results=quick_suite_folder)


def test_every_section_and_figure(report):
    out, res = report
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for title in SECTIONS:
        assert f"## {title}" in md and f"<h2>{title}</h2>" in html
    pngs = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)
    pdfs = re.findall(r"\[PDF\]\(([^)]+\.pdf)\)", md)
    names = {"optimal_distribution", "cost_landscape", "full_optimal_region", "bound_vs_iterations", "bound_vs_cost",
             "verification", "inexact_lmo", "certify", "measured_constants", "accuracy_vs_time",
             "predicted_vs_measured"}  # torch ones included
    assert sorted(pngs) == sorted(f"figures/{n}.png" for n in names)
    assert sorted(pdfs) == sorted(f"figures/{n}.pdf" for n in names)
    captions = re.findall(r"^\*Figure (\d+)\. ", md, flags=re.M)
    assert captions == [str(k) for k in range(1, len(names) + 1)]  # numbered in order of appearance
    check_saved([out / p for p in pngs + pdfs])
    assert sorted(re.findall(r'<img src="(?!data:)([^"]+)"', html)) == sorted(pngs)
    # the bound's formula is drawn (an SVG by mathtext), not LaTeX source in a <pre>
    assert not re.search(r"<pre>[^<]*\\frac", html) and len(_math_images(html)) == 1
    # figure 7's caption names its panels by letter, as the figure titles them (stacked at one column)
    assert re.search(r"^\*Figure 7\. \(a\) Worst-case δ .* \(b\) Best step size", md, flags=re.MULTILINE)
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
    assert (f"{a['checks']} checks ({a['exact']} exact, {a['mc']} Monte Carlo): {a['holds']} hold, "
            f"{a['violations']} failed, {a['within_tolerance']} within tolerance") in md
    assert f"{a['inconclusive']} inconclusive" in md
    # the exact-worst-case section quotes the savings computed in this run
    assert data["certify"]["savings"] and all(r["saving"] >= -1e-9 for r in data["certify"]["savings"])
    # the optimal distribution of the first built-in profile is the solver's
    from dropmuon.solvers import optimal_sampling
    from dropmuon.verification.synthetic.predictions import builtin_profiles

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


# -- formulas in the HTML: drawn by mathtext, not LaTeX source in a <pre> --------------------------

def _math_images(html):
    import base64

    return [base64.b64decode(m).decode("utf-8")
            for m in re.findall(r'<div class="math"><img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)]


def test_formulas_are_drawn_in_the_html():
    from dropmuon.theory import theorems

    rep = Report("t")
    latex = [t.latex() for t in theorems.values()]
    for tex in latex:
        rep.math(tex)
    rep.math(r"\begin{aligned} a &= \frac{1}{2} \\ b &\le c \end{aligned}")  # beyond mathtext
    html, md = rep.to_html(), rep.to_markdown()
    # no LaTeX source shown as text: not in a <pre>, nor anywhere outside the alt/title attributes
    assert not re.search(r"<pre>[^<]*\\frac", html)
    text = re.sub(r'(alt|title)="[^"]*"', "", html)
    assert "\\frac" not in text and "\\le" not in text
    # every theorem's formula is an SVG drawn by mathtext (glyphs as paths), its LaTeX the alt text
    svgs = _math_images(html)
    assert len(svgs) == len(latex)
    for svg in svgs:
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg and svg.count("<path") > 10
    import html as html_mod

    assert re.findall(r'<img src="data:image/svg\+xml;base64,[^"]+" alt="([^"]*)"', html) == [
        html_mod.escape(t) for t in latex]
    # the one mathtext cannot parse is plain math (Unicode, fractions with a slash), not source
    (plain,) = re.findall(r'<div class="math math-plain"[^>]*>([^<]*)</div>', html)
    assert "1/2" in plain and "≤" in plain and "\\" not in plain
    # nothing is fetched: no script, no external source
    assert "<script" not in html and not re.search(r'src="(?!data:)[^"]*//', html)
    # Markdown keeps the LaTeX in math blocks (rendered by GitHub, KaTeX, ...)
    assert md.count("```math") == len(latex) + 1 and latex[0] in md


# -- progress: every step named when it starts -----------------------------------------------------

def test_progress_names_every_step_as_it_starts(tmp_path, monkeypatch, capsys):
    """The sections are replaced by stubs that write a marker, so the order of lines shows that each
    step's line comes before its work; one stub outlasts the (shortened) line interval."""
    from dropmuon.figures import report

    order = ["_section_distributions", "_section_bounds", "_section_verification", "_section_coupling",
             "_section_certify", "_section_torch"]
    for name in order:
        def stub(*args, _name=name, **kw):
            print(f"RUN {_name}", file=sys.stderr)
            if _name == "_section_verification":
                time.sleep(0.5)  # a long step: periodic lines while it runs
        monkeypatch.setattr(report, name, stub)
    monkeypatch.setattr(report._Steps, "LINE_EVERY", 0.1)
    build_report(tmp_path, quick=True, torch_results=None)  # progress=None; stderr is not a terminal
    err = capsys.readouterr().err.splitlines()
    names = report._report_steps("quick", False, False)
    assert len(names) == 7 and "verification suite (quick)" in names
    starts = [j for j, line in enumerate(err) if line.startswith("report: step ") and " ..." in line]
    assert [err[j].split(" ...")[0] for j in starts] == [f"report: step {k}/7 {n}" for k, n in enumerate(names, 1)]
    # each step's line comes before its work, and after the previous step's work
    for k, section in enumerate(order):
        assert starts[k] < err.index(f"RUN {section}") < (starts[k + 1] if k + 1 < len(starts) else len(err))
    ticks = [line for line in err if line.startswith("report: step 3/7 verification suite (quick): running for")]
    assert len(ticks) >= 2, err
    assert err[-1].startswith("report: done in")
    # silenced with progress=False
    build_report(tmp_path, quick=True, torch_results=None, progress=False)
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("report")]


# -- figure 7's caption: panel letters, which the figure draws in both layouts ----------------------

@pytest.mark.parametrize("columns", [1, 2])
def test_inexact_lmo_caption_names_the_panels_the_figure_draws(columns, monkeypatch):
    from dropmuon.figures.report import _section_coupling
    from dropmuon.verification.synthetic import coupling

    from .test_verification_plots import _coupling

    c = _coupling()
    for r in c["theory"]:
        r["beta"] = 0.9  # the report's table quotes β*(δ); the figure does not draw it
    monkeypatch.setattr(coupling, "coupling_table", lambda seed, suite, results=None: c)
    figs = []
    rep = Report("t")
    _section_coupling(rep, {}, lambda fig, name: figs.append(fig) or f"figures/{name}", "quick", 0, columns)
    (caption,) = [b[2] for b in rep.blocks if b[0] == "figure"]
    (fig,) = figs
    titles = [ax.get_title() for ax in fig.axes]
    letters = re.findall(r"\(([a-z])\)", caption)
    assert letters == ["a", "b"] and [t[:3] for t in titles] == ["(a)", "(b)"]
    # no side or position that holds in one layout only (stacked at one column, side by side at two)
    assert not re.search(r"\b(left|right|top|bottom|above|below)\b", caption, flags=re.IGNORECASE), caption


# -- bad torch results: one line naming the file and the field ---------------------------------------

def _edited(torch_results, edit):
    data = json.loads(torch_results.read_text())
    edit(data)
    return json.dumps(data)


# (file text from the fixture's experiment JSON, the expected message after "the torch results file
# '<file>'"): exact, since docs/errors.md quotes them
BAD_TORCH_RESULTS = {
    "calibration is a string": (
        lambda tr: '{"calibration":"x","runs":5}',
        (", field 'calibration': must be the calibration object of dropmuon experiment, with a non-empty list "
         "of per-layer records 'layers'; got 'x'")),
    "L is NaN (null in JSON)": (
        lambda tr: _edited(tr, lambda d: d["calibration"]["layers"][0].update(L=None)),
        (", field 'calibration': record 1 (layer 1), field 'L': smoothness constants must be positive and "
         "finite; got L = nan")),
    "L is a NaN literal": (
        lambda tr: _edited(tr, lambda d: d["calibration"]["layers"][0].update(L=None)).replace(
            '"L": null', '"L": NaN', 1),
        " holds NaN, which is not JSON (a number without a finite value is written null)"),
    "a bare NaN": (
        lambda tr: "NaN",
        " holds NaN, which is not JSON (a number without a finite value is written null)"),
    "runs is a number": (
        lambda tr: _edited(tr, lambda d: d.update(runs=5)),
        ", field 'runs': must be a non-empty list of run records; got 5"),
    "no summary": (
        lambda tr: _edited(tr, lambda d: d.pop("summary")),
        " lacks the field 'summary' (not a complete experiment JSON of dropmuon experiment)"),
}


@pytest.mark.parametrize("case", list(BAD_TORCH_RESULTS))
def test_bad_torch_results_name_the_file_and_the_field(case, tmp_path, capsys, torch_results):
    """One line on stderr, exit status 2, the file and the field named, before anything is computed
    or written."""
    text, expected = BAD_TORCH_RESULTS[case]
    bad = tmp_path / "bad.json"
    bad.write_text(text(torch_results))
    code = main(["report", "--out", str(tmp_path / "out"), "--quick", "--torch-results", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"dropmuon report: error: the torch results file '{bad}'{expected}\n"
    assert not (tmp_path / "out").exists()  # refused before anything was written
