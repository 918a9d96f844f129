"""Remote nodes in a pipeline file become Warp nodes: one field switches a node to remote.

::

    - {name: vad, mark: energy_vad, remote: "gpu-1:50051"}
    - {name: asr, mark: whisper, remote: {target: "gpu-1:50051", window: 8, timeout: 5}}

A node with ``remote`` is replaced by a node of mark ``warp`` with the same
name, asking the server for that mark and configuration.  Connected nodes
with the same ``remote`` form one *remote group*: one Warp ships them as one
sub-graph, their intermediate messages stay on the server, and each exit
node's outputs reach the right downstream nodes (the Warp transmits them on
the exit node's *port*).  Juturna's ``warped: true`` + ``warp_configuration``
form is accepted too; ``mark: warp`` needs no rewriting.

This module only transforms config data: the core never imports the remote
layer (the ``warp`` mark is found through the registry).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .config import LinkConfig, NodeConfig, PipelineConfig
from .errors import PipelineInvalid

__all__ = ["REMOTE_KEYS", "rewrite_remote_nodes"]

#: Keys of a ``remote`` object passed through to the Warp node.
REMOTE_KEYS = (
    "target",
    "timeout",
    "window",
    "on_error",
    "compression",
    "open_timeout",
    "streams",
    "tls",
    "token_env",
    "protocol",
    "keepalive",
    "array_refs",
)
_JUTURNA_KEYS = {"grpc_host", "grpc_port", "timeout", "remote_config"}


def _remote_of(node: NodeConfig, problems: list[str]) -> dict[str, Any] | None:
    where = f"node '{node.name}'"
    if node.extra.get("warped"):
        conf = node.extra.get("warp_configuration")
        if not isinstance(conf, Mapping):
            problems.append(
                f"{where}: warped: true needs warp_configuration {{grpc_host, grpc_port, timeout}}"
            )
            return None
        unknown = set(conf) - _JUTURNA_KEYS - set(REMOTE_KEYS)
        if unknown:
            problems.append(f"{where}: warp_configuration has unknown keys {sorted(unknown)}")
        out = {k: v for k, v in conf.items() if k in REMOTE_KEYS}
        if "grpc_host" in conf or "grpc_port" in conf:
            out.setdefault(
                "target", f"{conf.get('grpc_host', '127.0.0.1')}:{conf.get('grpc_port', 50051)}"
            )
            # Juturna's form: the server may well be a real `juturna remotize`; ask it.
            out.setdefault("protocol", "auto")
        if "target" not in out:
            problems.append(
                f"{where}: warp_configuration needs grpc_host and grpc_port (or target)"
            )
            return None
        return out
    remote = node.remote
    if remote is None:
        return None
    if isinstance(remote, str):
        if not remote.strip():
            problems.append(f"{where}: remote is empty; give host:port")
            return None
        return {"target": remote.strip()}
    if isinstance(remote, list):
        return {"target": list(remote)}
    if isinstance(remote, Mapping):
        unknown = set(remote) - set(REMOTE_KEYS)
        if unknown:
            problems.append(
                f"{where}: remote has unknown keys {sorted(unknown)}; allowed: {', '.join(REMOTE_KEYS)}"
            )
        if not remote.get("target"):
            problems.append(f"{where}: remote needs a target (host:port)")
            return None
        return {k: v for k, v in remote.items() if k in REMOTE_KEYS}
    problems.append(f"{where}: remote must be host:port, a list of them, or a mapping with target")
    return None


def _key(remote: Mapping[str, Any]) -> str:
    return json.dumps(remote, sort_keys=True, default=str)


def rewrite_remote_nodes(config: PipelineConfig) -> PipelineConfig:
    """Replace remote nodes by Warp nodes; raises ``PipelineInvalid`` on malformed remote fields."""
    problems: list[str] = []
    remotes: dict[str, dict[str, Any]] = {}
    for node in config.nodes:
        remote = _remote_of(node, problems)
        if remote is not None:
            remotes[node.name] = remote
    if problems:
        raise PipelineInvalid(problems, config.source)
    if not remotes:
        return config

    # Group connected remote nodes that share the same remote (union-find over links).
    parent = {name: name for name in remotes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for link in config.links:
        a, b = link.source, link.target
        if a in remotes and b in remotes and _key(remotes[a]) == _key(remotes[b]):
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for node in config.nodes:
        if node.name in remotes:
            groups.setdefault(find(node.name), []).append(node.name)

    by_name = {n.name: n for n in config.nodes}
    new_nodes: list[NodeConfig] = []
    member_of: dict[str, str] = {}
    multi: set[str] = set()
    for members in groups.values():
        first = by_name[members[0]]
        remote = remotes[members[0]]
        if len(members) == 1:
            warp_conf: dict[str, Any] = {
                **remote,
                "node": {"mark": first.mark, "configuration": dict(first.configuration)},
            }
            warp_name = first.name
        else:
            inside = set(members)
            exits = sorted(
                {
                    lk.source
                    for lk in config.links
                    if lk.source in inside and lk.target not in inside
                }
            )
            routes: dict[str, str] = {}
            for lk in config.links:
                if lk.target in inside and lk.source not in inside:
                    if lk.source in routes and routes[lk.source] != lk.target:
                        problems.append(
                            f"node '{lk.source}': feeds two nodes of remote group {'+'.join(members)} "
                            f"('{routes[lk.source]}' and '{lk.target}'); link it to one of them"
                        )
                    routes[lk.source] = lk.target
            warp_conf = {
                **remote,
                "graph": {
                    "nodes": [
                        {
                            "name": m,
                            "mark": by_name[m].mark,
                            "configuration": dict(by_name[m].configuration),
                        }
                        for m in members
                    ],
                    "links": [
                        {"from": lk.source, "to": lk.target}
                        for lk in config.links
                        if lk.source in inside and lk.target in inside
                    ],
                    "exits": exits,
                },
                "routes": routes,
            }
            warp_name = "+".join(members)
            multi.add(warp_name)
        for m in members:
            member_of[m] = warp_name
        # The node's own on_error: stop holds for its remote stand-in too (same behaviour
        # local and remote): a failed request stops the pipeline.
        if first.on_error == "stop" and "on_error" not in remote:
            warp_conf["on_error"] = "stop"
        on_error = "stop" if warp_conf.get("on_error") == "stop" else first.on_error
        new_nodes.append(
            NodeConfig(
                name=warp_name,
                mark="warp",
                type="proc",
                configuration=warp_conf,
                sync=first.sync,
                inbox=first.inbox,
                on_error=on_error,
            )
        )
    if problems:
        raise PipelineInvalid(problems, config.source)

    # Keep the original order: each warp takes the place of its group's first member.
    placed: set[str] = set()
    ordered: list[NodeConfig] = []
    warps = {n.name: n for n in new_nodes}
    for node in config.nodes:
        if node.name in member_of:
            w = member_of[node.name]
            if w not in placed:
                ordered.append(warps[w])
                placed.add(w)
        else:
            ordered.append(node)

    links: list[LinkConfig] = []
    seen: set[tuple[str, str, str]] = set()
    for lk in config.links:
        a, b = member_of.get(lk.source, lk.source), member_of.get(lk.target, lk.target)
        if a == b and lk.source in member_of:
            continue  # inside a group: stays on the server
        port = lk.source if a in multi else lk.port
        key = (a, b, port)
        if key in seen:
            continue
        seen.add(key)
        links.append(LinkConfig(a, b, port))
    return replace(config, nodes=tuple(ordered), links=tuple(links))
