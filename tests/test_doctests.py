"""The examples in the packages' docstrings, run as doctests of the installed ``dropmuon.*`` modules
(with pytest's default ``ELLIPSIS``), one test per module."""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

TOP = ("theory", "solvers", "verification", "figures")


def _modules():
    names = []
    for top in TOP:
        pkg = importlib.import_module(f"dropmuon.{top}")
        names.append(pkg.__name__)
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".", onerror=lambda n: None)
                  if not (m.name.startswith("dropmuon.verification.torchside") and not _has_torch())]
    return sorted(names)


def _has_torch():
    return importlib.util.find_spec("torch") is not None


MODULES = _modules()
TORCH = "dropmuon.verification.torchside"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, request):
    if name == TORCH or name.startswith(TORCH + "."):
        pytest.importorskip("torch")
    if name == "dropmuon.verification.synthetic.coupling":
        # its coupling_checks() example runs the quick coupling experiments: those of the session's
        # quick suite where it computed them (tests/conftest.py), the same code and numbers
        request.getfixturevalue("shared_coupling_experiments")
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    report = []
    for t in finder.find(module, name, module=module, globs=vars(module).copy()):
        if not t.examples:
            continue
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        buf: list[str] = []
        runner.run(t, out=buf.append)
        if runner.failures:
            report.append("".join(buf))
    if report:
        pytest.fail("\n".join(report)[:6000])


def test_every_module_is_found():
    assert {"dropmuon.theory.bounds", "dropmuon.solvers.optimal", "dropmuon.verification.synthetic.checks",
            "dropmuon.figures.cli._common"} <= set(MODULES)
