"""The house a newcomer reads: verification/ in subpackages, the earlier flat module paths still
importing (with a warning), no code of ours using them, and every import path, module reference
and file path that the README, CONTRIBUTING.md and docs/ show actually working."""

import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import dropmuon.verification as verification

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("theory", "solvers", "verification", "figures")


def test_verification_top_level_is_only_its_subpackages():
    top = sorted(p.name for p in (ROOT / "verification").glob("*.py"))
    small = [n for n in top if n != "__init__.py"]
    assert "__init__.py" in top and len(small) <= 2, top
    for n in small:  # "at most two small modules"
        assert len((ROOT / "verification" / n).read_text().splitlines()) <= 150, n
    subs = sorted(p.parent.name for p in (ROOT / "verification").glob("*/__init__.py"))
    assert subs == ["forecasting", "pep", "runs", "synthetic", "torchside"]


def test_the_front_door_names_load_from_a_fresh_interpreter():
    code = "import dropmuon.verification as v; print(v.certify.__name__, v.run_suite.__name__, v.predict.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["certify", "run_suite", "predict"]


@pytest.mark.parametrize("old", sorted(verification.MOVED))
def test_an_earlier_flat_path_imports_the_moved_module_with_a_warning(old):
    new = importlib.import_module(f"dropmuon.verification.{verification.MOVED[old]}")
    name = f"dropmuon.verification.{old}"
    sys.modules.pop(name, None)
    with pytest.warns(DeprecationWarning, match=f"{re.escape(name)} moved to {re.escape(new.__name__)}"):
        got = importlib.import_module(name)
    assert got is new  # one module object under both names: classes and pickles are the same


def test_no_code_or_doc_of_ours_uses_an_earlier_flat_path():
    old = re.compile(r"(?<![\w/])(?:dropmuon\.)?verification[./](" + "|".join(map(re.escape, verification.MOVED))
                     + r")\b(?!/)")
    hits = []
    files = [p for top in (*TOP, "tests") for p in (ROOT / top).rglob("*.py")] + DOCS
    for p in files:
        if p == ROOT / "verification" / "__init__.py" or p == Path(__file__):
            continue  # the table of moved paths, and this test
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            for m in old.finditer(line):
                if not (m.group(0).startswith("verification/") and line[m.end():].startswith("/")):
                    hits.append(f"{p.relative_to(ROOT)}:{i}: {m.group(0)}")
    assert hits == []


def _doc_references():
    """Import statements in code blocks and dotted ``dropmuon.…``/``verification.…`` names and
    file paths in backticks, from every doc a newcomer reads."""
    imports, dotted, paths = set(), set(), set()
    stmt = re.compile(r"^\s*(?:>>> |\.\.\. )?((?:from dropmuon[\w.]* import [\w, ]+(?: as \w+)?)"
                      r"|(?:import dropmuon[\w.]*(?: as \w+)?))\s*(?:#.*)?$")
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for line in text.splitlines():
            m = stmt.match(line)
            if m:
                imports.add(m.group(1).strip().rstrip(","))
        for code in re.findall(r"`([^`\n]+)`", text):
            for name in re.findall(r"(?<![\w./-])((?:dropmuon\.)?(?:theory|solvers|verification|figures)"
                                   r"(?:\.[A-Za-z_]\w*)+)", code):
                dotted.add(name if name.startswith("dropmuon.") else "dropmuon." + name)
            for path in re.findall(r"(?<![\w./-])((?:theory|solvers|verification|figures|tests)/[\w/.-]*)", code):
                paths.add(path)
    return sorted(imports), sorted(dotted), sorted(paths)


def _resolve(dotted: str):
    """The object a dotted name names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError:
            continue
        for a in parts[k:]:
            obj = getattr(obj, a)
        return obj
    raise ModuleNotFoundError(dotted)


def test_every_import_the_docs_show_works():
    imports, _, _ = _doc_references()
    assert len(imports) >= 10  # the README's and docs' examples import from several packages
    failed = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # a doc showing a moved path fails
        for s in imports:
            try:
                exec(s, {})
            except Exception as e:  # noqa: BLE001 - every failure is collected and reported
                failed.append(f"{s}: {type(e).__name__}: {e}")
    assert failed == []


def test_every_module_and_name_the_docs_reference_exists():
    _, dotted, _ = _doc_references()
    assert len(dotted) >= 30
    failed = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for d in dotted:
            if d.endswith((".py", ".md", ".json", ".toml")):
                continue
            try:
                _resolve(d)
            except Exception as e:  # noqa: BLE001
                failed.append(f"{d}: {type(e).__name__}: {e}")
    assert failed == []


def test_every_file_path_the_docs_show_exists():
    _, _, paths = _doc_references()
    assert len(paths) >= 20
    missing = [p for p in paths if not (ROOT / p.rstrip(".")).exists()]
    assert missing == []
