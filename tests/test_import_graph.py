"""The import graph of the four packages, read from their source with ``ast``: every ``import`` and
``from … import`` statement, at module level or inside a function, plus ``importlib.import_module``
of a literal name and the names a package exports lazily (its ``_LAZY`` table). The layers import
downwards only (theory ← solvers ← verification ← figures), and no modules of ``theory`` or
``solvers`` import each other in a cycle. The module list is found by walking the folders, so
modules may move within a package without this file changing."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

LAYERS = ("theory", "solvers", "verification", "figures")
#: the packages whose modules must not import each other in a cycle
ACYCLIC = ("theory", "solvers")


def _folder(layer: str) -> Path:
    spec = importlib.util.find_spec(f"dropmuon.{layer}")
    return Path(next(iter(spec.submodule_search_locations)))


def _modules() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (path, is_package)}`` for every module below the four folders."""
    out = {}
    for layer in LAYERS:
        root = _folder(layer)
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            package = parts[-1] == "__init__"
            if package:
                parts = parts[:-1]
            if any(not p.isidentifier() for p in parts):
                continue  # not importable (a script folder, say)
            out[".".join(["dropmuon", layer, *parts])] = (path, package)
    return out


MODULES = _modules()


def _lazy_table(path: Path) -> dict[str, str]:
    """``{name: submodule}`` from a package's ``_LAZY = {"submodule": [names], …}`` (the names it
    imports from its submodules on first use; :func:`dropmuon.theory._lazy.lazy_exports`)."""
    out = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets)
                and isinstance(node.value, ast.Dict)):
            for key, names in zip(node.value.keys, node.value.values):
                if isinstance(key, ast.Constant) and isinstance(names, (ast.List, ast.Tuple)):
                    out.update({n.value: key.value for n in names.elts if isinstance(n, ast.Constant)})
    return out


LAZY = {name: _lazy_table(path) for name, (path, package) in MODULES.items() if package}


def _target(base: str, name: str) -> str:
    """What ``from base import name`` imports: the submodule ``base.name``, the submodule that a
    lazy package loads ``name`` from, or ``base`` itself."""
    if f"{base}.{name}" in MODULES:
        return f"{base}.{name}"
    if name in LAZY.get(base, {}):
        return f"{base}.{LAZY[base][name]}"
    return base


def imports(module: str) -> list[tuple[str, int, bool]]:
    """``[(imported module, line, inside a function)]`` for every import statement of ``module``
    naming a ``dropmuon`` module (resolved to the most specific module known; a name that no longer
    exists is kept as written, so that its layer is still checked)."""
    path, package = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module if package else module.rpartition(".")[0]
    out = []

    def visit(node, nested: bool):
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            found = []
            if isinstance(child, ast.Import):
                found = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = here.split(".")
                    base = ".".join(parts[:len(parts) - (child.level - 1)] + ([child.module] if child.module else []))
                else:
                    base = child.module or ""
                found = [_target(base, a.name) for a in child.names if a.name != "*"] or [base]
            elif (isinstance(child, ast.Call) and isinstance(child.func, (ast.Attribute, ast.Name))
                  and getattr(child.func, "attr", getattr(child.func, "id", None)) == "import_module"
                  and child.args and isinstance(child.args[0], ast.Constant)
                  and isinstance(child.args[0].value, str)):
                found = [child.args[0].value]
            out.extend((t, child.lineno, nested) for t in found if t.split(".")[0] == "dropmuon" and t != module)
            visit(child, inner)

    visit(tree, False)
    return out


def _layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_the_folders_are_found():
    for layer in LAYERS:
        assert f"dropmuon.{layer}" in MODULES
    assert "dropmuon.solvers.optimal" in MODULES and "dropmuon.theory.sampling" in MODULES
    # the resolver sees imports inside functions, and the names a package exports lazily
    assert any(nested for m in MODULES for _, _, nested in imports(m))
    assert _target("dropmuon.theory", "RPT") == "dropmuon.theory.sampling"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_layers_import_downwards_only(module):
    """theory imports none of the other three; solvers only theory; verification theory and
    solvers; figures any of them."""
    rank = LAYERS.index(_layer(module))
    wrong = [f"line {line}: {target}" for target, line, _ in imports(module)
             if _layer(target) is not None and LAYERS.index(_layer(target)) > rank]
    assert not wrong, f"{module} ({MODULES[module][0]}) imports a higher layer: " + "; ".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycle_in_theory_and_solvers():
    """No two modules of theory and solvers import each other, directly or through others, at
    module level or inside functions (a lazy import inside a function hides a cycle; it does not
    remove it). A package's ``__init__`` counts as a module; a submodule's implicit import of its
    own package does not."""
    nodes = [m for m in MODULES if _layer(m) in ACYCLIC]
    graph = {m: {t for t, _, _ in imports(m) if t in nodes} for m in nodes}
    where = {(m, t): f"{MODULES[m][0].name}:{line}{' (in a function)' if nested else ''}"
             for m in nodes for t, line, nested in imports(m)}
    found = []
    for comp in _cycles(graph):
        edges = [f"{m} -> {t} ({where[m, t]})" for m in comp for t in sorted(graph[m]) if t in comp]
        found.append("; ".join(edges))
    assert not found, "import cycles: " + " | ".join(found)
