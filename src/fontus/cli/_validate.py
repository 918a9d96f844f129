"""``fontus validate PIPELINE``: check a pipeline file without running it."""

from __future__ import annotations

import argparse

from ..core import Pipeline
from ._command import EXIT_OK, Command, add_overrides_option

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", metavar="PIPELINE", help="pipeline file (YAML or JSON)")
    add_overrides_option(parser)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _validate(args: argparse.Namespace) -> int:
    # Building the pipeline runs exactly the checks `fontus run` does before starting
    # (marks, arguments, graph, node constructors) without warming anything up.
    pipeline = Pipeline.from_file(args.pipeline, args.overrides)
    config = pipeline.source_config  # as written, before remote nodes become Warps
    remote = len(pipeline.config.nodes) != len(config.nodes) or any(
        n.mark == "warp" for n in pipeline.config.nodes
    )
    line = f"ok: {_plural(len(config.nodes), 'node')}, {_plural(len(config.links), 'link')}"
    if remote:
        warps = [n.name for n in pipeline.config.nodes if n.mark == "warp"]
        line += f" ({_plural(len(warps), 'remote session')}: {', '.join(warps)})"
    print(line)
    return EXIT_OK


COMMAND = Command(
    name="validate",
    help="check a pipeline file without running it",
    description=(
        "Check PIPELINE (marks, arguments, links, environment variables) and print "
        "'ok: N nodes, M links', or every problem found (exit 2)."
    ),
    configure=_configure,
    handler=_validate,
)
