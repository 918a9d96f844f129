"""``fontus nodes [MARK]``: list the installed marks, or describe one mark's arguments."""

from __future__ import annotations

import argparse
import sys

from ..core import PluginLoadError, default_registry
from . import _render
from ._command import EXIT_INVALID, EXIT_OK, Command, CommandFailed

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mark", metavar="MARK", nargs="?", help="show this mark's arguments")
    parser.add_argument(
        "--plugins",
        action="append",
        default=[],
        metavar="DIR",
        help="also load node classes from this plugin folder; repeatable",
    )


def _nodes(args: argparse.Namespace) -> int:
    # An unknown mark or a missing plugin folder raises ConfigError: main() exits 2.
    registry = default_registry()
    for folder in args.plugins:
        registry.load_plugins(folder)
    console = _render.make_console()
    if args.mark:
        try:
            spec = registry.get(args.mark)
        except PluginLoadError as exc:
            raise CommandFailed(str(exc), EXIT_INVALID) from exc
        console.print(_render.mark_table(spec, console))
        return EXIT_OK
    specs = registry.specs()
    console.print(_render.marks_table(specs, console))
    for where, error in sorted(registry.failures.items()):
        print(f"fontus: warning: {where} failed to import: {error}", file=sys.stderr)
    return EXIT_OK


COMMAND = Command(
    name="nodes",
    help="list the available marks, or show one mark's arguments",
    description=(
        "Without MARK: every installed mark with its kind and summary. With MARK: its "
        "arguments (name, type, default or 'required', help)."
    ),
    configure=_configure,
    handler=_nodes,
)
