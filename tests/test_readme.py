"""The README's command-line examples print exactly what the README shows (its Python examples
run as doctests through ``--doctest-glob``)."""

import pathlib
import re
import shlex

from dropmuon.figures.cli import main

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _examples():
    """Yield (argv, expected output) for each ``$ .venv/bin/dropmuon …`` block."""
    text = README.read_text()
    for block in re.findall(r"```\n(\$ .*?)```", text, flags=re.S):
        first, _, rest = block.partition("\n")
        argv = shlex.split(first[2:])
        assert argv[0].endswith("dropmuon")
        yield argv[1:], rest


def test_readme_cli_output_is_real(capsys):
    examples = list(_examples())
    assert examples, "the README shows no dropmuon example"
    for argv, expected in examples:
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert out == expected, f"README output for {argv} is stale"
