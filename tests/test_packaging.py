"""The distribution installs one namespace, ``dropmuon``: every folder with an ``__init__.py`` under
the four top-level folders is a listed package, and nothing generic is importable from
site-packages."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOP = ("theory", "solvers", "verification", "figures")


def test_every_package_folder_is_installed_under_dropmuon():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(ROOT).parts) for top in TOP for p in (ROOT / top).rglob("__init__.py")}
    assert set(cfg["packages"]) == {"dropmuon." + f for f in folders}
    assert cfg["package-dir"] == {"dropmuon." + t: t for t in TOP}


def test_the_wheel_holds_only_the_namespace(tmp_path):
    """Build the wheel from a copy of the sources (offline: the environment's setuptools, no
    isolation; the build folder stays out of the checkout) and list it."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for top in TOP:
        shutil.copytree(ROOT / top, src / top, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--disable-pip-version-check", "-w", str(tmp_path), str(src)], check=True,
                   capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("dropmuon-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"dropmuon", next(t for t in tops if t.endswith(".dist-info"))}, tops
    for top in TOP:
        assert f"dropmuon/{top}/__init__.py" in names
    assert "dropmuon/theory/bounds.py" in names and "dropmuon/figures/cli/__init__.py" in names
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "dropmuon = dropmuon.figures.cli:entry" in entry


def test_the_package_imports_from_its_namespace():
    import dropmuon.theory

    assert pathlib.Path(dropmuon.theory.__file__).resolve() == ROOT / "theory" / "__init__.py"


def test_no_source_imports_a_folder_name_as_a_top_level_module():
    """From the checkout's root ``import theory`` would still work (and load a second copy of each
    module); an installed package has only ``dropmuon.theory``."""
    import re

    bad = re.compile(r"^\s*(?:>>> |\.\.\. )?(?:from|import) (?:theory|solvers|verification|figures)\b", re.M)
    files = [p for top in (*TOP, "tests") for p in (ROOT / top).rglob("*.py")]
    files += [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    found = [f"{p.relative_to(ROOT)}: {m.group(0).strip()}" for p in files for m in bad.finditer(p.read_text())]
    assert not found, found[:10]
