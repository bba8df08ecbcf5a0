"""The `locksmith` command line: a thin layer that parses arguments and calls the library.

Exit codes: 0 success, 1 a failure while running, 2 bad input (unknown names, invalid files,
an output folder in the way); every bad-input message names the file, field or value.

Modules: `args` (the checks every subcommand shares, `BadInput`), `commands` (one function per
subcommand), `parser` (`build_parser`); here `main`, which maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import logging
import sys

from locksmith.cli.args import EXIT_BAD_INPUT, BadInput
from locksmith.cli.parser import build_parser

__all__ = ["BadInput", "EXIT_BAD_INPUT", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as err:  # a bad flag value: argparse has printed its one-line message
        if err.code == EXIT_BAD_INPUT:
            return EXIT_BAD_INPUT
        raise  # --help, --version
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:  # a file the user named cannot be read or written: say which, no traceback
        where = err.filename if err.filename is not None else ""
        print(f"error: {where}: cannot be read or written ({err.strerror or err})" if where else f"error: {err}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"interrupted: {_resume_hint(args)}", file=sys.stderr)
        return 130


def _resume_hint(args: argparse.Namespace) -> str:
    """What an interrupted command kept on disk and how to go on (one line)."""
    out = getattr(args, "out", None)
    if args.command == "demos":
        return (f"nothing was written to {out} (episodes are recorded into a temporary folder and moved there "
                "when complete); run the same command again")
    if args.command == "adapt":
        return (f"no key was written to {out}/policy (it is written when training ends); run the same command "
                "again, with --overwrite if the folder already held a key")
    if args.command == "pretrain":
        return (f"the demos recorded under {out}/data and the checkpoints under {out}/checkpoints are kept; "
                "run the same command with --resume to continue")
    if args.command == "audit":
        return (f"the finished runs under {out or 'the audit folder'}/runs are kept; run the same command again "
                "to resume (finished runs are never redone)")
    return "nothing was kept"

