"""Public API: every name in ``__all__`` imports and is documented; the core imports without the
heavy optional dependencies."""

import importlib
import inspect
import subprocess
import sys

import pytest

PACKAGES = ["theory", "solvers", "verification", "figures"]


def _public(pkg):
    mod = importlib.import_module(pkg)
    return [(n, getattr(mod, n)) for n in mod.__all__]


@pytest.mark.parametrize("pkg", PACKAGES)
def test_package_has_docstring_and_all(pkg):
    mod = importlib.import_module(pkg)
    assert mod.__doc__ and mod.__doc__.strip()
    assert isinstance(mod.__all__, list)


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_public_name_is_documented(pkg):
    for name, obj in _public(pkg):
        doc = inspect.getdoc(obj)
        assert doc and len(doc.strip()) > 10, f"{pkg}.{name} has no docstring"
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, f"{pkg}.{name} inherits its docstring"


@pytest.mark.parametrize("modules,absent", [
    ("theory", ("torch", "matplotlib", "cvxpy", "scipy")),
    ("theory, figures, dropmuon.figures.cli", ("torch", "matplotlib", "cvxpy", "scipy")),
    ("theory, solvers, verification", ("torch", "matplotlib", "cvxpy")),
])
def test_core_import_stays_light(modules, absent):
    """Heavy dependencies are imported lazily: the theory core and the CLI entry need none of
    them, the solvers import scipy but not cvxpy (until a convex program is solved)."""
    code = f"import sys, {modules}; print(','.join(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
