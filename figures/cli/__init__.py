"""The ``dropmuon`` command line: one entry point with subcommands.

Every subcommand that produces numbers has ``--json``. Exit statuses: 0 success; 1 a check failed
(a theorem violated); 2 bad input or a bad file, with a one-line message on stderr naming the bad
value; 3 an internal or environment error, with a one-line message and a hint. ``--debug``
(anywhere on the line) adds the traceback of an error. The table of bad inputs and their messages
is ``docs/errors.md``.
"""

from __future__ import annotations

import sys

from . import bound, campaign, certify, estimate, experiment, predict, report, sample, sweep, train, verify
from ._common import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    CLIError,
    EnvironmentFailure,
    Parser,
    join_negative_values,
    load_plugins,
)

__all__ = ["main", "build_parser"]

SUBCOMMANDS = [bound, sample, verify, sweep, estimate, predict, train, experiment, campaign, report, certify]


def build_parser() -> Parser:
    """The top-level parser with every subcommand registered."""
    p = Parser(
        prog="dropmuon",
        description=(
            "Theory verification toolkit for Drop-Muon (arXiv 2510.02239): bounds, optimal "
            "layer sampling, verification, measurements and figures."
        ),
        epilog=("Exit status: 0 success, 1 a check failed (a theorem violated), 2 bad input or a bad file, "
                "3 an internal or environment error. --debug (anywhere) prints the traceback of an error. "
                "--import MODULE_OR_FILE.py (anywhere, repeatable) imports a module first, e.g. one "
                "that registers theorems of your own."),
    )
    p.add_argument("--debug", action="store_true", help="print the traceback of an error")
    p.add_argument("--import", dest="plugins", metavar="MODULE", action="append",
                   help="import a module (a name or a .py file) first, e.g. one registering theorems")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for mod in SUBCOMMANDS:
        mod.add_parser(sub)
    return p


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _environment_hint(e: BaseException) -> str | None:
    """A hint for errors of the environment rather than of the input or the code."""
    if isinstance(e, ImportError):
        name = getattr(e, "name", None) or ""
        extra = {"torch": "torch", "sklearn": "torch", "mlxtend": "torch", "dask": "dask",
                 "distributed": "dask"}.get(name.split(".")[0])
        if extra:
            return f"this command needs the '{extra}' extra: pip install 'dropmuon[{extra}]'"
        return "a module is missing: reinstall the package (make test installs every extra)"
    if isinstance(e, MemoryError):
        return "out of memory: use a smaller problem, batch or width"
    if type(e).__name__ == "SchedulerUnreachable":
        return "nothing was run; start the scheduler ('dask scheduler') or check --scheduler"
    if type(e).__name__ in ("SchedulerLost", "FutureCancelledError", "CommClosedError", "TimeoutError"):
        return "the Dask scheduler or its workers went away; results so far are saved and a re-run resumes"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run ``dropmuon`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status: 0
    success, 1 a check failed, 2 bad input or a bad file, 3 an internal or environment error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        argv = load_plugins(argv)
    except CLIError as e:
        print(f"dropmuon: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    list_opts = set()
    for mod in SUBCOMMANDS:
        list_opts |= set(getattr(mod, "LIST_OPTIONS", ()))
    argv = join_negative_values(argv, list_opts)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code or 0)
    prog = f"dropmuon {args.command}"
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader closed the pipe (``| head``): not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001 - the one place every error becomes an exit status
        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(e, EnvironmentFailure):
            print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
            return EXIT_INTERNAL
        hint = _environment_hint(e)
        if isinstance(e, (CLIError, ValueError)) and hint is None:
            print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if isinstance(e, OSError) and e.filename is not None and hint is None:
            # a path given by the user that cannot be read or written
            print(f"{prog}: error: cannot use {str(e.filename)!r}: {e.strerror or _one_line(e)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if hint is None:
            hint = "an internal error; " + ("please report it" if debug else
                                            "rerun with --debug for the traceback and report it")
        print(f"{prog}: error: {type(e).__name__}: {_one_line(e)} ({hint})", file=sys.stderr)
        return EXIT_INTERNAL


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
