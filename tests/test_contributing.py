"""CONTRIBUTING.md runs: every ``>>>`` example of its five recipes (add a theorem, a problem, a
schedule, a model, a figure) passes as a doctest, no recipe loses its examples, the examples leave
the theorem registry and the import path as they found them, and every test and doc the recipes
cite exists."""

from __future__ import annotations

import contextlib
import doctest
import io
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "CONTRIBUTING.md"

#: the recipes, as their headings, with the number of ``>>>`` examples each was written with: a
#: recipe that loses examples (or a heading that disappears) fails the test instead of passing
#: with less checked
RECIPES = {"Add a theorem": 14, "Add a problem": 10, "Add a schedule": 11, "Add a model": 12, "Add a figure": 13}


def _sections() -> dict[str, str]:
    """``{heading: text}`` for every ``## `` section of the guide."""
    parts = re.split(r"^## (.+)$", GUIDE.read_text(encoding="utf-8"), flags=re.M)
    return {parts[j].strip(): parts[j + 1] for j in range(1, len(parts), 2)}


def test_the_guide_names_all_five_recipes_as_headings():
    assert list(_sections()) == list(RECIPES)


def test_each_recipe_keeps_its_examples():
    parser = doctest.DocTestParser()
    counts = {h: len(parser.get_examples(text)) for h, text in _sections().items()}
    assert all(counts[h] >= n for h, n in RECIPES.items()), counts


def test_every_example_in_the_guide_runs():
    pytest.importorskip("torch")  # the model recipe; the torch extra is part of `make test`
    from dropmuon.theory import theorems

    registered, path = list(theorems), list(sys.path)
    out = io.StringIO()
    left = None
    try:
        with contextlib.redirect_stdout(out):
            res = doctest.testfile(str(GUIDE), module_relative=False, encoding="utf-8",
                                   optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        left = [n for n in theorems if n not in registered]
    finally:  # a failed example must not leave its theorem registered for the rest of the session
        for name in set(theorems) - set(registered):
            theorems.unregister(name)
    assert res.failed == 0, out.getvalue()[-6000:]
    assert res.attempted >= sum(RECIPES.values()), (res.attempted, sum(RECIPES.values()))
    # the examples clean up after themselves: the registry, the import path, the imported modules
    assert left == [] and sys.path == path and "contributing_net" not in sys.modules, left


def test_the_tests_and_docs_the_guide_cites_exist():
    """Every ``tests/FILE.py::test_NAME`` the guide cites is defined there, every file and doc it
    names exists: a test moved or renamed makes the guide stale, and this says where."""
    text = GUIDE.read_text(encoding="utf-8")
    missing = []
    for file, _, test in re.findall(r"(tests/[\w/]+\.py)(::(test_\w+))?", text):
        p = ROOT / file
        if not p.exists() or (test and f"def {test}(" not in p.read_text(encoding="utf-8")):
            missing.append(f"{file}::{test}" if test else file)
    missing += [d for d in re.findall(r"docs/[\w\-]+\.md", text) if not (ROOT / d).exists()]
    assert missing == [], missing
