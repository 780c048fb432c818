"""Helpers shared by the subcommands: one-line errors with exit status 2, list parsing and JSON."""

from __future__ import annotations

import argparse
import json
import re
import sys

from theory._io import to_jsonable

__all__ = ["CLIError", "Parser", "parse_floats", "parse_number", "emit_json", "to_jsonable", "EXIT_BAD_INPUT"]

EXIT_BAD_INPUT = 2


class CLIError(Exception):
    """Bad input detected by a subcommand; printed as one line, exit status 2."""


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


def parse_number(option: str, text: str | None, kind=float, positive: bool = False):
    """Parse one option value (``None`` stays ``None``); a bad value raises :class:`CLIError`
    naming the option, as does a non-positive one when ``positive``."""
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise CLIError(f"{option} is {text!r}, not {'an integer' if kind is int else 'a number'}") from None
    if positive and not value > 0:
        raise CLIError(f"{option} must be positive; got {text}")
    return value


def emit_json(obj) -> None:
    json.dump(to_jsonable(obj), sys.stdout, indent=2, ensure_ascii=False, allow_nan=False)
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
    from verification.execution import scheduler_address

    jobs = parse_number("--jobs", args.jobs, int)
    if jobs == 0 or jobs < -1:
        raise CLIError(f"--jobs must be a positive integer or -1 (one per core); got {args.jobs}")
    return {"jobs": jobs, "scheduler": scheduler_address(args.scheduler), "resume": not args.no_resume}
