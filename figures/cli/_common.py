"""Helpers shared by the subcommands: one-line errors, list and number parsing, output folders
checked before any work, and JSON.

Exit statuses, kept by every subcommand: 0 success; 1 a check failed (a theorem violated, a sweep
row failed); 2 bad input or a bad file (a one-line message naming the value); 3 an internal or
environment error (a one-line message with a hint; the traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

__all__ = ["CLIError", "EnvironmentFailure", "Parser", "parse_floats", "parse_number", "emit_json", "json_numbers", "check_out_folder",
           "EXIT_OK", "EXIT_CHECK_FAILED", "EXIT_BAD_INPUT", "EXIT_INTERNAL"]

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class CLIError(Exception):
    """Bad input detected by a subcommand; printed as one line, exit status 2."""


class EnvironmentFailure(Exception):
    """What the command needs is missing from this machine (an extra, a GPU, a scheduler); printed
    as one line with its hint, exit status 3."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage dump) and exit with status 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def parse_floats(option: str, text: str | None) -> list[float] | None:
    """Parse ``"1,4,2"`` into floats; a bad item raises :class:`CLIError` naming it.

    Validation of the values (sign, finiteness) is left to the library, whose messages name
    the layer.
    """
    if text is None:
        return None
    items = [t.strip() for t in text.split(",")]
    if items == [""]:
        raise CLIError(f"{option} is empty; give comma-separated numbers, one per layer")
    out = []
    for k, t in enumerate(items, start=1):
        try:
            out.append(float(t))
        except ValueError:
            raise CLIError(f"{option}: item {k} is {t!r}, not a number") from None
    return out


def parse_number(option: str, text: str | None, kind=float, positive: bool = False, minimum=None,
                 maximum=None):
    """Parse one option value (``None`` stays ``None``); a bad value raises :class:`CLIError`
    naming the option, as does a non-finite one, a non-positive one when ``positive`` and one
    outside ``[minimum, maximum]``.

    >>> parse_number("--seed", "-3", int, minimum=0)
    Traceback (most recent call last):
    ...
    dropmuon.figures.cli._common.CLIError: --seed must be at least 0; got -3
    """
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise CLIError(f"{option} is {text!r}, not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise CLIError(f"{option} must be a finite number; got {text}")
    if positive and not value > 0:
        raise CLIError(f"{option} must be positive; got {text}")
    if minimum is not None and value < minimum:
        raise CLIError(f"{option} must be at least {minimum}; got {text}")
    if maximum is not None and value > maximum:
        raise CLIError(f"{option} must be at most {maximum}; got {text}")
    return value


def check_out_folder(option: str, path) -> Path:
    """Check, before any work, that ``path`` can be (or is) a writable folder: not an existing
    file, not under a file, and writable where it exists or where it would be created. Raises
    :class:`CLIError` naming the option and the path; creates nothing. An empty path is refused
    (``Path("")`` is the current folder, which would silently receive the results)."""
    if not str(path).strip():
        raise CLIError(f"{option} is empty; name a folder (use {option} . for the current folder)")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CLIError(f"{option} {str(path)!r} is a file, not a folder; name a folder")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise CLIError(f"{option} {str(path)!r} lies under the file {str(probe)!r}; name a folder")
    if probe.exists():
        import tempfile

        try:  # a real write, not os.access: root passes access checks on read-only file systems
            os.rmdir(tempfile.mkdtemp(prefix=".dropmuon-probe-", dir=probe))
        except OSError as e:
            where = "" if probe == path else f" (in its nearest existing parent {str(probe)!r})"
            raise CLIError(f"{option} {str(path)!r} is not writable{where}: {e.strerror or e}; "
                           f"name a folder you can write to") from None
    return path


def json_numbers(x):
    """Plain JSON values of ``x`` (numpy scalars and arrays included) with every non-finite number
    as ``null``, so a field keeps its type (a number, or null where no finite value exists).

    >>> json_numbers({"K": float("inf"), "p": [0.5, float("nan")], "n": 3})
    {'K': None, 'p': [0.5, None], 'n': 3}
    """
    import numpy as np

    if isinstance(x, dict):
        return {str(k): json_numbers(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_numbers(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_numbers(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return f if math.isfinite(f) else None
    if isinstance(x, Path):
        return str(x)
    return x


def emit_json(obj) -> None:
    """Print ``obj`` as strict JSON on stdout (non-finite numbers as ``null``: see
    :func:`json_numbers`)."""
    json.dump(json_numbers(obj), sys.stdout, indent=2, ensure_ascii=False, allow_nan=False)
    sys.stdout.write("\n")


_NEGATIVE_LIST = re.compile(r"-(\d|\.\d|nan|inf)", re.IGNORECASE)


def join_negative_values(argv: list[str], options: set[str]) -> list[str]:
    """Turn ``--L -1,2`` into ``--L=-1,2`` so argparse does not take ``-1,2`` for an option and
    the library can name the bad value."""
    out: list[str] = []
    k = 0
    while k < len(argv):
        tok = argv[k]
        if tok in options and k + 1 < len(argv) and _NEGATIVE_LIST.match(argv[k + 1]):
            out.append(f"{tok}={argv[k + 1]}")
            k += 2
            continue
        out.append(tok)
        k += 1
    return out


def add_execution_options(p, *, out_default=None, out_help="results folder: one file per task, so a re-run resumes",
                          results: bool = True):
    """``--jobs``, ``--scheduler`` and (with ``results``) ``--out`` and ``--no-resume`` of the
    long-running commands."""
    p.add_argument("--jobs", default="1", help="local worker processes (joblib; -1: one per core; default 1)")
    p.add_argument("--scheduler", default=None,
                   help="run the tasks on a Dask cluster: tcp://HOST:PORT (default: $DASK_SCHEDULER_ADDRESS, "
                        "else local)")
    if results:
        p.add_argument("--out", default=out_default,
                       help=out_help + (f" (default {out_default})" if out_default else ""))
        p.add_argument("--no-resume", action="store_true", help="run every task again even if its result exists")


def parse_execution(args) -> dict:
    """``{"jobs", "scheduler", "resume"}`` from :func:`add_execution_options`' options."""
    from dropmuon.verification.runs.execution import scheduler_address

    jobs = parse_number("--jobs", args.jobs, int)
    if jobs == 0 or jobs < -1:
        raise CLIError(f"--jobs must be a positive integer or -1 (one per core); got {args.jobs}")
    return {"jobs": jobs, "scheduler": scheduler_address(args.scheduler), "resume": not args.no_resume}


def load_plugins(argv: list[str]) -> list[str]:
    """Import every ``--import MODULE`` of ``argv`` (anywhere, repeatable; a module name on the
    path or a ``.py`` file) and return ``argv`` without them: a module that registers theorems
    (``dropmuon.theory.register_theorem``) makes them known to every subcommand. ``CLIError`` when
    one cannot be imported."""
    import importlib
    import importlib.util
    import os

    out, plugins = [], []
    it = iter(range(len(argv)))
    for j in it:
        a = argv[j]
        if a == "--import":
            if j + 1 >= len(argv):
                raise CLIError("--import needs a module name or a .py file")
            plugins.append(argv[j + 1])
            next(it, None)
        elif a.startswith("--import="):
            plugins.append(a.split("=", 1)[1])
        else:
            out.append(a)
    for name in plugins:
        try:
            if name.endswith(".py"):
                if not os.path.isfile(name):
                    raise CLIError(f"--import {name!r}: no such file")
                mod_name = "dropmuon_plugin_" + os.path.splitext(os.path.basename(name))[0]
                spec = importlib.util.spec_from_file_location(mod_name, name)
                module = importlib.util.module_from_spec(spec)
                sys.modules[mod_name] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(name)
        except CLIError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of the user's module is bad input
            raise CLIError(f"--import {name!r} failed: {type(e).__name__}: {' '.join(str(e).split())}") from None
    return out
