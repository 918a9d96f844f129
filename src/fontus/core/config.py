"""Pipeline files: reading, ``${ENV}`` expansion, ``--set`` overrides, and the config dataclasses.

This is the only module of the core that reads files or the environment.
The shape (JSON or YAML)::

    version: "1"
    plugins: [./plugins]              # folders scanned for node classes
    pipeline:
      name: demo
      nodes:
        - {name: src, type: source, mark: counter, configuration: {count: 5}}
        - name: double
          mark: repeat
          configuration: {times: 2}
          inbox: {capacity: 64, overflow: block}     # or drop_oldest
          sync: passthrough                          # or zip, or {mode: window, window_ms: 50}
          on_error: skip                             # or stop
          remote: "127.0.0.1:50051"                  # optional: run it on a server
      links:
        - {from: src, to: double}
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError, PipelineInvalid

__all__ = [
    "DEFAULT_INBOX_CAPACITY",
    "InboxConfig",
    "LinkConfig",
    "NodeConfig",
    "PipelineConfig",
    "SyncConfig",
    "apply_overrides",
    "expand_env",
    "load_pipeline",
    "parse_pipeline",
    "read_config_file",
]

#: Default inbox capacity: deep enough to absorb jitter of a few frames at 30-60 fps,
#: shallow enough that a stalled node pushes back on its producer within a second.
DEFAULT_INBOX_CAPACITY = 64
#: Default window of the ``window`` synchroniser.
DEFAULT_WINDOW_MS = 50.0

Overflow = Literal["block", "drop_oldest"]
SyncMode = Literal["passthrough", "zip", "window"]
OnError = Literal["skip", "stop"]

_OVERFLOWS = ("block", "drop_oldest")
_SYNC_MODES = ("passthrough", "zip", "window")
_ON_ERROR = ("skip", "stop")
_KINDS = ("source", "proc", "sink")
_NODE_KEYS = (
    "name",
    "type",
    "mark",
    "configuration",
    "sync",
    "inbox",
    "on_error",
    "remote",
    "warped",
    "warp_configuration",
    "description",
)


@dataclass(frozen=True)
class InboxConfig:
    """A node's bounded inbox: ``capacity`` messages; ``overflow`` says what happens when full."""

    capacity: int = DEFAULT_INBOX_CAPACITY
    overflow: Overflow = "block"

    def __post_init__(self) -> None:
        if (
            not isinstance(self.capacity, int)
            or isinstance(self.capacity, bool)
            or self.capacity < 1
        ):
            raise ConfigError(f"inbox.capacity must be an int >= 1, got {self.capacity!r}")
        if self.overflow not in _OVERFLOWS:
            raise ConfigError(
                f"inbox.overflow must be one of {', '.join(_OVERFLOWS)}, got {self.overflow!r}"
            )


@dataclass(frozen=True)
class SyncConfig:
    """How a node with several inputs groups them."""

    mode: SyncMode = "passthrough"
    window_ms: float = DEFAULT_WINDOW_MS

    def __post_init__(self) -> None:
        if self.mode not in _SYNC_MODES:
            raise ConfigError(f"sync must be one of {', '.join(_SYNC_MODES)}, got {self.mode!r}")
        if (
            not isinstance(self.window_ms, int | float)
            or isinstance(self.window_ms, bool)
            or self.window_ms <= 0
        ):
            raise ConfigError(f"sync.window_ms must be a number > 0, got {self.window_ms!r}")


@dataclass(frozen=True)
class NodeConfig:
    """One node of a pipeline file."""

    name: str
    mark: str
    type: str = ""
    configuration: Mapping[str, Any] = field(default_factory=dict)
    sync: SyncConfig = field(default_factory=SyncConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    on_error: OnError = "skip"
    remote: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkConfig:
    source: str
    target: str
    #: Only messages the source transmits on this output port follow the link
    #: (set when a remote group's Warp stands for several exit nodes).
    port: str = ""


@dataclass(frozen=True)
class PipelineConfig:
    """A parsed (not yet validated against the registry) pipeline."""

    name: str
    nodes: tuple[NodeConfig, ...]
    links: tuple[LinkConfig, ...] = ()
    id: str = ""
    version: str = "1"
    folder: str = ""
    plugins: tuple[Path, ...] = ()
    source: str = "pipeline"

    def node(self, name: str) -> NodeConfig:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ConfigError(f"{self.source}: no node named '{name}'")

    def inputs_of(self, name: str) -> list[str]:
        return [link.source for link in self.links if link.target == name]

    def outputs_of(self, name: str) -> list[str]:
        return [link.target for link in self.links if link.source == name]


def read_config_file(path: str | Path) -> Any:
    """Read a JSON or YAML file; errors name the file, line and fix."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: file not found; check the path")
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder, expected a JSON or YAML pipeline file")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{p}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{p}: invalid YAML{where}: {problem}") from None


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(
    value: Any, where: str, problems: list[str], environ: Mapping[str, str] | None = None
) -> Any:
    """Replace ``${NAME}`` (or ``${NAME:-default}``) in every string of ``value``; ``$${`` escapes."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        if "${" not in value:
            return value

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(
                f"{where} refers to ${{{name}}}, which is not set; export {name}=... "
                f"or write ${{{name}:-default}}"
            )
            return match.group(0)

        escaped = value.replace("$${", "\0")
        return _ENV_REF.sub(sub, escaped).replace("\0", "${")
    if isinstance(value, Mapping):
        return {k: expand_env(v, f"{where}.{k}", problems, env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{where}[{i}]", problems, env) for i, v in enumerate(value)]
    return value


_TOP_KEYS = ("version", "plugins", "pipeline", "description")
_PIPELINE_KEYS = ("name", "id", "folder", "nodes", "links", "description")


def _unknown_keys(
    mapping: Mapping[str, Any], allowed: tuple[str, ...], where: str, problems: list[str]
) -> None:
    """A misspelt section (``link:``) must not silently give an empty pipeline."""
    if "pipeline" not in mapping and where == "the file":
        allowed = (*allowed, *_PIPELINE_KEYS)  # the flat form: nodes and links at the top
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
            problems.append(f"{where}: unknown key '{key}'; {hint}")


def _parse_sync(raw: Any, where: str, problems: list[str]) -> SyncConfig:
    try:
        if raw is None:
            return SyncConfig()
        if isinstance(raw, str):
            return SyncConfig(mode=raw)  # type: ignore[arg-type]
        if isinstance(raw, Mapping):
            unknown = set(raw) - {"mode", "window_ms"}
            if unknown:
                problems.append(
                    f"{where}: sync has unknown keys {sorted(unknown)}; use mode and window_ms"
                )
            return SyncConfig(
                mode=raw.get("mode", "passthrough"),
                window_ms=raw.get("window_ms", DEFAULT_WINDOW_MS),
            )
        problems.append(f"{where}: sync must be a string or a mapping, got {type(raw).__name__}")
    except ConfigError as exc:
        problems.append(f"{where}: {exc}")
    return SyncConfig()


def _parse_inbox(raw: Any, where: str, problems: list[str]) -> InboxConfig:
    if raw is None:
        return InboxConfig()
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: inbox must be a mapping like {{capacity: 64, overflow: block}}")
        return InboxConfig()
    unknown = set(raw) - {"capacity", "overflow"}
    if unknown:
        problems.append(
            f"{where}: inbox has unknown keys {sorted(unknown)}; use capacity and overflow"
        )
    try:
        return InboxConfig(
            capacity=raw.get("capacity", DEFAULT_INBOX_CAPACITY),
            overflow=raw.get("overflow", "block"),
        )
    except ConfigError as exc:
        problems.append(f"{where}: {exc}")
        return InboxConfig()


def parse_pipeline(
    raw: Any,
    *,
    source: str = "pipeline",
    base_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
) -> PipelineConfig:
    """Turn the loaded file content into a :class:`PipelineConfig`; raises ``PipelineInvalid``
    listing every structural problem found."""
    problems: list[str] = []
    if raw is None:
        raise PipelineInvalid(
            ["the file is empty; it must hold a mapping with a 'pipeline' section"], source
        )
    if not isinstance(raw, Mapping):
        raise PipelineInvalid([f"the file must hold a mapping, got {type(raw).__name__}"], source)
    body = raw.get("pipeline", raw if "nodes" in raw else None)
    if not isinstance(body, Mapping):
        raise PipelineInvalid(["missing 'pipeline' section with 'nodes' and 'links'"], source)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    _unknown_keys(raw, _TOP_KEYS, "the file", problems)
    _unknown_keys(body, _PIPELINE_KEYS, "pipeline", problems)

    plugins_raw = raw.get("plugins", []) or []
    if isinstance(plugins_raw, str):
        plugins_raw = [plugins_raw]
    plugins = []
    for p in plugins_raw:
        if not isinstance(p, str):
            problems.append(f"plugins: entries must be folder paths, got {p!r}")
            continue
        path = (base / p).resolve() if not Path(p).is_absolute() else Path(p)
        if not path.is_dir():
            problems.append(f"plugins: folder '{p}' does not exist (looked in {path})")
        plugins.append(path)

    nodes_raw = body.get("nodes")
    if not isinstance(nodes_raw, list) or not nodes_raw:
        problems.append("pipeline.nodes must be a non-empty list of nodes")
        nodes_raw = []
    nodes: list[NodeConfig] = []
    for i, node in enumerate(nodes_raw):
        if not isinstance(node, Mapping):
            problems.append(f"pipeline.nodes[{i}] must be a mapping with name and mark")
            continue
        name = node.get("name")
        where = f"node '{name}'" if isinstance(name, str) and name else f"pipeline.nodes[{i}]"
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: missing 'name'; every node needs a unique name")
            continue
        mark = node.get("mark")
        if not isinstance(mark, str) or not mark:
            problems.append(f"{where}: missing 'mark'; run 'fontus nodes' to list marks")
            mark = ""
        unknown = set(node) - set(_NODE_KEYS)
        for key in sorted(unknown):
            problems.append(
                f"{where}: unknown field '{key}'; node fields are {', '.join(_NODE_KEYS)}"
            )
        kind = node.get("type", "") or ""
        if kind and kind not in _KINDS:
            problems.append(f"{where}: type must be one of {', '.join(_KINDS)}, got {kind!r}")
        configuration = node.get("configuration", {}) or {}
        if not isinstance(configuration, Mapping):
            problems.append(f"{where}: configuration must be a mapping of argument to value")
            configuration = {}
        on_error = node.get("on_error", "skip")
        if on_error not in _ON_ERROR:
            problems.append(
                f"{where}: on_error must be one of {', '.join(_ON_ERROR)}, got {on_error!r}"
            )
            on_error = "skip"
        extra = {k: node[k] for k in ("warped", "warp_configuration", "description") if k in node}
        nodes.append(
            NodeConfig(
                name=name,
                mark=mark,
                type=kind,
                configuration=dict(configuration),
                sync=_parse_sync(node.get("sync"), where, problems),
                inbox=_parse_inbox(node.get("inbox"), where, problems),
                on_error=on_error,
                remote=node.get("remote"),
                extra=extra,
            )
        )

    links_raw = body.get("links", []) or []
    links: list[LinkConfig] = []
    if not isinstance(links_raw, list):
        problems.append("pipeline.links must be a list of {from, to}")
        links_raw = []
    for i, link in enumerate(links_raw):
        if (
            not isinstance(link, Mapping)
            or not isinstance(link.get("from"), str)
            or not isinstance(link.get("to"), str)
        ):
            problems.append(
                f"pipeline.links[{i}] must be a mapping {{from: NODE, to: NODE}}, got {link!r}"
            )
            continue
        links.append(LinkConfig(link["from"], link["to"]))

    config = PipelineConfig(
        name=str(body.get("name", "") or "pipeline"),
        id=str(body.get("id", "") or ""),
        version=str(raw.get("version", "1")),
        folder=str(body.get("folder", "") or ""),
        nodes=tuple(nodes),
        links=tuple(links),
        plugins=tuple(plugins),
        source=source,
    )
    try:
        config = apply_overrides(config, overrides)
    except PipelineInvalid as exc:
        problems.extend(exc.problems)
    expanded = []
    for node in config.nodes:
        conf = expand_env(
            node.configuration, f"node '{node.name}': configuration", problems, environ
        )
        # remote: "${ASR_SERVER}" lets one file point at different servers per environment.
        remote = expand_env(node.remote, f"node '{node.name}': remote", problems, environ)
        expanded.append(replace(node, configuration=conf, remote=remote))
    config = replace(config, nodes=tuple(expanded))
    if problems:
        raise PipelineInvalid(problems, source)
    return config


def _parse_override_value(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def apply_overrides(config: PipelineConfig, overrides: Sequence[str]) -> PipelineConfig:
    """Apply ``node.argument=value`` overrides (value parsed as YAML: ``5`` is an int, ``a`` a str)."""
    if not overrides:
        return config
    problems = []
    nodes = {n.name: n for n in config.nodes}
    configs = {n.name: dict(n.configuration) for n in config.nodes}
    for item in overrides:
        key, sep, value = item.partition("=")
        node_name, dot, arg_path = key.partition(".")
        if not sep or not dot or not node_name or not arg_path:
            problems.append(
                f"--set {item!r}: expected NODE.ARGUMENT=VALUE, for example src.count=5"
            )
            continue
        if node_name not in nodes:
            problems.append(
                f"--set {item!r}: no node named '{node_name}'; nodes are {', '.join(sorted(nodes))}"
            )
            continue
        target = configs[node_name]
        *parents, last = arg_path.split(".")
        for part in parents:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                target[part] = nxt
            else:
                nxt = dict(nxt)
                target[part] = nxt
            target = nxt
        target[last] = _parse_override_value(value)
    if problems:
        raise PipelineInvalid(problems, config.source)
    return replace(
        config, nodes=tuple(replace(n, configuration=configs[n.name]) for n in config.nodes)
    )


def load_pipeline(
    path: str | Path, overrides: Sequence[str] = (), environ: Mapping[str, str] | None = None
) -> PipelineConfig:
    """Read and parse a pipeline file (JSON or YAML)."""
    p = Path(path)
    raw = read_config_file(p)
    return parse_pipeline(
        raw, source=str(p), base_dir=p.resolve().parent, environ=environ, overrides=overrides
    )
