"""The ``fontus`` command: parsing and wiring only; what it does lives in ``fontus.core``.

Each subcommand is one :class:`~fontus.cli._command.Command` in its own module;
adding one is adding it to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from .. import __version__
from ..core import ConfigError, FontusError
from . import _nodes, _remote, _run, _serve, _validate
from ._command import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    Command,
    CommandFailed,
)
from ._logging import LOG_FORMATS, configure_logging

__all__ = ["COMMANDS", "build_parser", "main"]

#: The subcommands, in the order ``fontus --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    _run.COMMAND,
    _validate.COMMAND,
    _nodes.COMMAND,
    _serve.SERVE,
    _serve.REMOTIZE,
    _remote.COMMAND,
)

_EPILOG = f"""\
exit codes:
  {EXIT_OK}    done: every source ended and everything was flushed
  {EXIT_FAILED}    failure at run time: a node error with on_error stop, a warmup
       failure, or --timeout reached before the sources ended
  {EXIT_INVALID}    invalid pipeline or arguments (also an unknown MARK for 'nodes')
  {EXIT_INTERRUPTED}  interrupted by SIGINT or SIGTERM, after draining what was queued
"""


def _add_common_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Options accepted before and after the subcommand name.

    On subcommand parsers they default to SUPPRESS, so ``fontus -v run x`` is not
    undone by the subcommand parser's own default.
    """
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="debug logging, and tracebacks with errors",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text" if defaults else argparse.SUPPRESS,
        help="format of log lines on stderr (default: text)",
    )


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fontus",
        description="Real-time streaming pipelines whose nodes run in-process or remotely.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fontus {__version__}")
    _add_common_options(parser, defaults=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        sub = subparsers.add_parser(
            command.name,
            help=command.help,
            description=command.description or command.help,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common_options(sub, defaults=False)
        command.configure(sub)
        sub.set_defaults(handler=command.handler)
    return parser


def _error(message: str) -> None:
    print(f"fontus: error: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fontus`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_INVALID
    configure_logging(args.verbose, args.log_format)
    try:
        return int(args.handler(args))
    except CommandFailed as exc:
        _error(str(exc))
        return exc.code
    except ConfigError as exc:  # includes PipelineInvalid, which lists every problem
        _traceback_if(args.verbose)
        _error(str(exc))
        return EXIT_INVALID
    except FontusError as exc:  # NodeError (warmup failure, ...), GraphError, RemoteError
        _traceback_if(args.verbose)
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`fontus nodes | head`): nothing more to say.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, no traceback
        _traceback_if(args.verbose)
        hint = "" if args.verbose else " (run with -v for the traceback)"
        _error(f"unexpected {type(exc).__name__}: {exc}{hint}")
        return EXIT_FAILED


def _traceback_if(verbose: bool) -> None:
    if verbose:
        traceback.print_exc(file=sys.stderr)
