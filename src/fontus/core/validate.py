"""Validation of a parsed pipeline against the registry.

Every problem is collected and reported at once, each naming the node and the
fix: unknown mark (with close matches), unknown or mistyped argument, missing
required argument, duplicate names, dangling links, cycles, sources with
inputs, sinks with outputs.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .arguments import check_value
from .config import LinkConfig, NodeConfig, PipelineConfig
from .errors import ConfigError, PipelineInvalid, PluginLoadError
from .registry import NodeSpec, Registry
from .remoting import rewrite_remote_nodes

__all__ = ["ResolvedNode", "check_arguments", "find_cycle", "validate_pipeline"]


@dataclass(frozen=True)
class ResolvedNode:
    """A node whose mark was found and whose configuration was checked and converted."""

    config: NodeConfig
    spec: NodeSpec
    arguments: Mapping[str, Any]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_arguments(
    spec: NodeSpec, configuration: Mapping[str, Any], where: str, problems: list[str]
) -> dict[str, Any]:
    """Check ``configuration`` against ``spec``'s declared arguments; returns converted values."""
    converted: dict[str, Any] = {}
    names = spec.argument_names
    for key, value in configuration.items():
        arg = spec.argument(key)
        if arg is None:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else (f"arguments are {', '.join(names)}" if names else "it takes no arguments")
            )
            problems.append(f"{where}: unknown argument '{key}' for mark '{spec.mark}'; {hint}")
            continue
        ok, value2 = check_value(value, arg.annotation)
        if not ok:
            problems.append(
                f"{where}: argument '{key}' must be {arg.type_name}, got "
                f"{type(value).__name__} {_short(value)}"
            )
            continue
        converted[key] = value2
    for arg in spec.arguments:
        if arg.required and arg.name not in configuration:
            help_ = f" ({arg.help})" if arg.help else ""
            problems.append(
                f"{where}: missing required argument '{arg.name}' ({arg.type_name}){help_}; "
                f"add it under configuration"
            )
    return converted


def find_cycle(names: list[str], edges: list[tuple[str, str]]) -> list[str] | None:
    """A cycle in the graph as a list of node names, or None."""
    graph: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        if a in graph and b in graph:
            graph[a].append(b)
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(names, white)
    stack_path: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack_path.append(node)
        for nxt in graph[node]:
            if color[nxt] == grey:
                return [*stack_path[stack_path.index(nxt) :], nxt]
            if color[nxt] == white:
                found = visit(nxt)
                if found:
                    return found
        stack_path.pop()
        color[node] = black
        return None

    for n in names:
        if color[n] == white:
            found = visit(n)
            if found:
                return found
    return None


def validate_pipeline(config: PipelineConfig, registry: Registry) -> list[ResolvedNode]:
    """Resolve every node; raises :class:`PipelineInvalid` listing every problem.

    Remote nodes are first replaced by Warps (a no-op on a config already rewritten),
    so their marks need not be installed here: the server checks them at Open.
    """
    config = rewrite_remote_nodes(config)
    problems: list[str] = []
    for folder in config.plugins:
        try:
            registry.load_plugins(folder)
        except ConfigError as exc:
            problems.append(f"plugins: {exc}")

    seen: set[str] = set()
    for node in config.nodes:
        if node.name in seen:
            problems.append(f"node '{node.name}': duplicate name; node names must be unique")
        seen.add(node.name)

    names = [n.name for n in config.nodes]
    linked: set[LinkConfig] = set()
    for link in config.links:
        if link in linked:
            problems.append(
                f"link {link.source} -> {link.target}: declared twice; remove the duplicate"
            )
        linked.add(link)
        for end, label in ((link.source, "from"), (link.target, "to")):
            if end not in seen:
                close = difflib.get_close_matches(end, names, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                problems.append(
                    f"link {link.source} -> {link.target}: '{label}' names unknown node '{end}'{hint}"
                )
        if link.source == link.target:
            problems.append(f"link {link.source} -> {link.target}: a node cannot link to itself")

    resolved: list[ResolvedNode] = []
    for node in config.nodes:
        where = f"node '{node.name}'"
        spec = _lookup(registry, node, where, problems)
        if spec is None:
            continue
        if node.type and node.type != spec.kind:
            problems.append(
                f"{where}: type is '{node.type}' but mark '{spec.mark}' is a {spec.kind}; "
                f"set type: {spec.kind} or remove it"
            )
        inputs = config.inputs_of(node.name)
        outputs = config.outputs_of(node.name)
        if spec.kind == "source" and inputs:
            problems.append(
                f"{where}: is a source (mark '{spec.mark}') but has inputs from "
                f"{', '.join(inputs)}; remove those links"
            )
        if spec.kind == "sink" and outputs:
            problems.append(
                f"{where}: is a sink (mark '{spec.mark}') but links to {', '.join(outputs)}; "
                "remove those links"
            )
        arguments = check_arguments(spec, node.configuration, where, problems)
        resolved.append(ResolvedNode(node, spec, arguments))

    # Self-links were reported above; a cycle of one node would only repeat that.
    edges = [(link.source, link.target) for link in config.links if link.source != link.target]
    cycle = find_cycle(names, edges)
    if cycle:
        problems.append(
            f"links form a cycle: {' -> '.join(cycle)}; pipelines must be acyclic, remove one link"
        )
    if problems:
        raise PipelineInvalid(problems, config.source)
    return resolved


def _lookup(
    registry: Registry, node: NodeConfig, where: str, problems: list[str]
) -> NodeSpec | None:
    try:
        return registry.get(node.mark)
    except PluginLoadError as exc:
        detail = exc.detail
    except ConfigError as exc:
        detail = str(exc)
    if node.mark == "warp":
        detail = (
            "runs remotely, which needs the 'warp' mark of fontus.remote; "
            f"install it with pip install 'fontus[remote]' ({detail})"
        )
    problems.append(f"{where}: {detail}")
    return None
