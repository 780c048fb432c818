"""The ``dropmuon`` command line: one entry point with subcommands.

Every subcommand that produces numbers has ``--json``. Bad input gives a one-line message on
stderr naming the bad value and exit status 2.
"""

from __future__ import annotations

import sys

from . import bound, estimate, experiment, report, sample, sweep, train, verify
from ._common import EXIT_BAD_INPUT, CLIError, Parser, join_negative_values

__all__ = ["main", "build_parser"]

SUBCOMMANDS = [bound, sample, verify, sweep, estimate, train, experiment, report]


def build_parser() -> Parser:
    """The top-level parser with every subcommand registered."""
    p = Parser(
        prog="dropmuon",
        description=(
            "Theory verification toolkit for Drop-Muon (arXiv 2510.02239): bounds, optimal "
            "layer sampling, verification, measurements and figures."
        ),
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for mod in SUBCOMMANDS:
        mod.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``dropmuon`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
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
    except (CLIError, ValueError) as e:
        msg = " ".join(str(e).split())
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
