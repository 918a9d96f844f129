"""How a subcommand plugs into ``fontus``: one :class:`Command` value, listed once in ``COMMANDS``.

Exit codes are shared by every subcommand and documented in ``fontus --help``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "Command",
    "CommandFailed",
    "add_overrides_option",
    "positive_seconds",
]

#: Every source ended and everything was flushed (or the command did what it was asked).
EXIT_OK = 0
#: Failure at run time: a node error with on_error stop, a warmup failure, --timeout reached.
EXIT_FAILED = 1
#: Invalid pipeline, arguments or mark (also argparse's own exit code for usage errors).
EXIT_INVALID = 2
#: Interrupted by SIGINT or SIGTERM, after draining what was queued (128 + SIGINT).
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    """A ``fontus`` subcommand.

    ``configure`` adds the subcommand's own options to its parser; ``handler``
    runs it and returns the exit code (or raises: see ``fontus.cli.main``).
    """

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    handler: Handler
    description: str = ""


class CommandFailed(Exception):
    """A subcommand ends with ``message`` printed as ``fontus: error: ...`` and exit ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def add_overrides_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NODE.ARG=VALUE",
        help="override a node argument (VALUE is parsed as YAML: 5 is an int); repeatable",
    )


def positive_seconds(text: str) -> float:
    """argparse type: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text!r}")
    return value
