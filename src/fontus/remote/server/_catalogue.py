"""What a server hosts, and how a session's Open becomes a plan of nodes to build.

Three shapes (``fontus serve``): ``--allow MARK,...`` (a catalogue: clients ask
for any allowed mark with their own configuration), ``--node MARK`` (one fixed
node, Juturna's shape; the client may override declared arguments), and
``--pipeline FILE`` (a fixed sub-graph).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core._values import thaw_value
from ...core.config import PipelineConfig
from ...core.errors import ConfigError, NodeError, PluginLoadError
from ...core.registry import NodeSpec, Registry
from ...core.validate import check_arguments, find_cycle

__all__ = ["Catalogue", "NodePlan", "Plan", "Refusal"]


class Refusal(Exception):
    """A session cannot be opened; ``code`` is a grpc.StatusCode name."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class NodePlan:
    name: str
    spec: NodeSpec
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class Plan:
    nodes: tuple[NodePlan, ...]
    links: tuple[tuple[str, str], ...] = ()
    exits: tuple[str, ...] | None = None
    entries: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        """Identifies equal plans (shared sessions reuse one instance per key)."""
        return json.dumps(
            [[n.name, n.spec.mark, _jsonable(n.arguments)] for n in self.nodes]
            + [list(link) for link in self.links],
            sort_keys=True,
            default=repr,
        )

    @property
    def entry_name(self) -> str:
        return self.entries[0] if self.entries else self.nodes[0].name


def _jsonable(value: Any) -> Any:
    return thaw_value(value)


class Catalogue:
    """The marks a server allows, or the fixed node or pipeline it hosts."""

    def __init__(
        self,
        registry: Registry,
        *,
        allow: Sequence[str] = (),
        node: str = "",
        node_config: Mapping[str, Any] | None = None,
        pipeline: PipelineConfig | None = None,
    ) -> None:
        given = sum(bool(x) for x in (allow, node, pipeline))
        if given != 1:
            raise ConfigError(
                "serve needs exactly one of --node MARK, --allow MARK[,MARK...] or --pipeline FILE"
            )
        self.registry = registry
        self.allow = tuple(allow)
        self.node = node
        self.node_config = dict(node_config or {})
        self.pipeline = pipeline
        self.hosting = "catalogue" if allow else ("node" if node else "pipeline")
        self._check_startup()

    def _check_startup(self) -> None:
        """Fail at start (not at the first session) when the hosted marks are wrong."""
        problems: list[str] = []
        for mark in self.marks():
            try:
                spec = self.registry.get(mark)
            except (ConfigError, PluginLoadError) as exc:
                problems.append(str(exc))
                continue
            if spec.kind == "source":
                problems.append(
                    f"mark '{mark}' is a source; a server hosts processing nodes and sinks"
                )
        if self.node and not problems:
            spec = self.registry.get(self.node)
            where = f"--node {self.node} --config"
            arguments = check_arguments(spec, self.node_config, where, problems)
            if not problems:
                # A trial build catches values the constructor refuses (k=-1) now rather
                # than at every session; constructors only keep arguments, warmup loads.
                try:
                    spec.build(dict(arguments))
                except Exception as exc:  # noqa: BLE001 - user __init__: reported, exit 1
                    raise NodeError(
                        self.node,
                        f"could not be built from {where}: {type(exc).__name__}: {exc}",
                    ) from None
        if problems:
            raise ConfigError("; ".join(problems))

    def marks(self) -> list[str]:
        if self.allow:
            return list(self.allow)
        if self.node:
            return [self.node]
        assert self.pipeline is not None
        return sorted({n.mark for n in self.pipeline.nodes})

    def specs(self) -> list[NodeSpec]:
        return [self.registry.get(mark) for mark in self.marks()]

    def plan_node(self, name: str, mark: str, configuration: Mapping[str, Any]) -> Plan:
        return Plan((self._node_plan(name, mark, configuration),))

    def _node_plan(self, name: str, mark: str, configuration: Mapping[str, Any]) -> NodePlan:
        if self.node:
            if mark and mark != self.node:
                raise Refusal(
                    "NOT_FOUND",
                    f"this server hosts mark '{self.node}' only; '{mark}' was asked for",
                )
            mark = self.node
            configuration = {**self.node_config, **configuration}
        elif self.allow and not mark:
            raise Refusal(
                "INVALID_ARGUMENT",
                "the session names no mark, and this server hosts a catalogue; ask for one of: "
                f"{', '.join(self.allow)} (node: {{mark: ...}} in the Warp, or the node's own mark)",
            )
        elif self.allow and mark not in self.allow:
            raise Refusal(
                "PERMISSION_DENIED",
                f"mark '{mark}' is not allowed on this server; allowed: {', '.join(self.allow)}",
            )
        elif self.pipeline is not None:
            raise Refusal(
                "FAILED_PRECONDITION",
                "this server hosts a fixed pipeline; open it with an empty target",
            )
        try:
            spec = self.registry.get(mark)
        except (ConfigError, PluginLoadError) as exc:
            raise Refusal("NOT_FOUND", str(exc)) from None
        if spec.kind == "source":
            raise Refusal(
                "INVALID_ARGUMENT",
                f"mark '{mark}' is a source; sources cannot run behind a session",
            )
        problems: list[str] = []
        arguments = check_arguments(spec, thaw_value(configuration), f"node '{name}'", problems)
        if problems:
            raise Refusal("INVALID_ARGUMENT", "; ".join(problems))
        return NodePlan(name or mark, spec, arguments)

    def plan_graph(
        self,
        nodes: Sequence[tuple[str, str, Mapping[str, Any]]],
        links: Sequence[tuple[str, str]],
        exits: Sequence[str],
    ) -> Plan:
        if self.pipeline is not None and not nodes:
            return self.hosted_pipeline_plan()
        if not nodes:
            raise Refusal("INVALID_ARGUMENT", "graph has no nodes")
        plans = tuple(self._node_plan(name, mark, conf) for name, mark, conf in nodes)
        names = [p.name for p in plans]
        if len(set(names)) != len(names):
            raise Refusal("INVALID_ARGUMENT", "graph has duplicate node names")
        for a, b in links:
            if a not in names or b not in names:
                raise Refusal("INVALID_ARGUMENT", f"graph link {a} -> {b} names an unknown node")
        if find_cycle(names, list(links)):
            raise Refusal("INVALID_ARGUMENT", "graph links form a cycle")
        for e in exits:
            if e not in names:
                raise Refusal("INVALID_ARGUMENT", f"graph exit '{e}' is not one of its nodes")
        targets = {b for _, b in links}
        entries = tuple(n for n in names if n not in targets)
        return Plan(plans, tuple(links), tuple(exits) if exits else None, entries)

    def hosted_pipeline_plan(self) -> Plan:
        assert self.pipeline is not None
        plans = []
        for node in self.pipeline.nodes:
            spec = self.registry.get(node.mark)
            problems: list[str] = []
            arguments = check_arguments(spec, node.configuration, f"node '{node.name}'", problems)
            if problems:
                raise Refusal("INVALID_ARGUMENT", "; ".join(problems))
            plans.append(NodePlan(node.name, spec, arguments))
        links = tuple((link.source, link.target) for link in self.pipeline.links)
        targets = {b for _, b in links}
        entries = tuple(p.name for p in plans if p.name not in targets)
        return Plan(tuple(plans), links, None, entries)
