"""The node registry: marks → node classes.

Marks come from the ``fontus.nodes`` entry-point group (the built-ins register
there exactly like third-party packages) and from plugin folders named in a
pipeline file.  A plugin that fails to import is remembered and reported, with
its file and error, when one of its marks is used — never skipped silently.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata
import importlib.util
import inspect
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .arguments import Argument, declared_arguments
from .errors import ConfigError, PluginLoadError
from .node import Node, Sink, Source

__all__ = ["NodeSpec", "Registry", "default_registry", "kind_of"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "fontus.nodes"


def kind_of(cls: type[Node]) -> str:
    if issubclass(cls, Source):
        return "source"
    if issubclass(cls, Sink):
        return "sink"
    return "proc"


@dataclass(frozen=True)
class NodeSpec:
    """What the registry knows of one mark."""

    mark: str
    cls: type[Node]
    kind: str
    arguments: tuple[Argument, ...]
    summary: str
    origin: str

    def argument(self, name: str) -> Argument | None:
        for arg in self.arguments:
            if arg.name == name:
                return arg
        return None

    @property
    def argument_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arguments)

    def build(self, configuration: dict[str, Any]) -> Node:
        """Instantiate with already validated ``configuration``."""
        return self.cls(**configuration)


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _plugin_line(exc: BaseException, path: Path) -> str:
    """`` (line N)`` of the deepest frame in the plugin file itself, or ``""``.

    The last frame of the traceback may be inside importlib (a SyntaxError
    already names its line) or inside a library the plugin called.
    """
    if isinstance(exc, SyntaxError):
        return ""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f" (line {frames[-1].lineno})" if frames else ""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Registry:
    """Marks available to a pipeline or a server."""

    def __init__(self, *, entry_points: bool = True) -> None:
        self._specs: dict[str, NodeSpec] = {}
        self._lazy: dict[str, importlib.metadata.EntryPoint] = {}
        self._failures: dict[str, str] = {}  # mark or file path -> error text
        self._plugin_dirs: set[Path] = set()
        self._lock = threading.RLock()
        if entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                self._lazy.setdefault(ep.name, ep)

    # -- adding --------------------------------------------------------------
    def add(self, cls: type[Node], mark: str | None = None, origin: str = "code") -> NodeSpec:
        """Register ``cls`` under ``mark`` (default: its ``mark`` attribute or snake_case name)."""
        if not (isinstance(cls, type) and issubclass(cls, Node)):
            raise ConfigError(f"cannot register {cls!r}: node classes must subclass fontus.Node")
        mark = mark or cls.__dict__.get("mark") or _snake(cls.__name__)
        spec = NodeSpec(
            mark=mark,
            cls=cls,
            kind=kind_of(cls),
            arguments=declared_arguments(cls),
            summary=_summary(cls),
            origin=origin,
        )
        with self._lock:
            if not cls.__dict__.get("mark"):
                cls.mark = mark
            self._specs[mark] = spec
            self._lazy.pop(mark, None)
        return spec

    def load_plugins(self, folder: str | Path) -> list[str]:
        """Import every ``*.py`` under ``folder`` and register the node classes they define.

        Returns the marks found.  Import failures are recorded, not raised.
        """
        root = Path(folder).resolve()
        if not root.is_dir():
            raise ConfigError(f"plugin folder '{folder}' does not exist or is not a folder")
        with self._lock:
            if root in self._plugin_dirs:
                return []
            self._plugin_dirs.add(root)
        found = []
        for path in sorted(root.rglob("*.py")):
            if path.name == "__init__.py" or "__pycache__" in path.parts:
                continue
            digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
            module_name = f"fontus_plugin_{digest}_{path.stem}"
            try:
                module_spec = importlib.util.spec_from_file_location(module_name, path)
                if module_spec is None or module_spec.loader is None:
                    raise ImportError("not a loadable Python file")
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[module_name] = module
                module_spec.loader.exec_module(module)
            except Exception as exc:  # noqa: BLE001 - remembered, reported when a mark is used
                sys.modules.pop(module_name, None)
                self._failures[str(path)] = f"{type(exc).__name__}: {exc}{_plugin_line(exc, path)}"
                log.debug("plugin %s failed to import: %s", path, exc)
                continue
            for obj in vars(module).values():
                if (
                    isinstance(obj, type)
                    and issubclass(obj, Node)
                    and obj.__module__ == module_name
                    and obj not in (Node, Source, Sink)
                    and not inspect.isabstract(obj)
                ):
                    found.append(self.add(obj, origin=str(path)).mark)
        return found

    # -- looking up --------------------------------------------------------
    def _load_entry_point(self, mark: str) -> NodeSpec | None:
        ep = self._lazy.get(mark)
        if ep is None:
            return None
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - remembered, reported when the mark is used
            self._failures[mark] = f"{type(exc).__name__}: {exc}"
            self._lazy.pop(mark, None)
            return None
        return self.add(cls, mark, origin=f"entry point {ep.value}")

    def _failure_for(self, mark: str) -> str | None:
        if mark in self._failures:
            return f"entry point for mark '{mark}' failed to import: {self._failures[mark]}"
        for path, error in self._failures.items():
            p = Path(path)
            if p.stem == mark or p.parent.name.lstrip("_") == mark:
                return f"plugin file {path} failed to import: {error}"
        return None

    def get(self, mark: str) -> NodeSpec:
        """The spec of ``mark``; raises ``ConfigError`` (with close matches) or ``PluginLoadError``."""
        with self._lock:
            spec = self._specs.get(mark) or self._load_entry_point(mark)
        if spec is not None:
            return spec
        failure = self._failure_for(mark)
        if failure:
            raise PluginLoadError(mark, failure)
        raise ConfigError(self.unknown_mark_message(mark))

    def unknown_mark_message(self, mark: str) -> str:
        message = f"unknown mark '{mark}'"
        close = difflib.get_close_matches(mark, self.marks(), n=3, cutoff=0.6)
        if close:
            message += "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        else:
            message += "; run 'fontus nodes' to list the available marks"
        if self._failures:
            broken = ", ".join(sorted(self._failures))
            message += f" (plugins that failed to import: {broken})"
        return message

    def __contains__(self, mark: str) -> bool:
        try:
            self.get(mark)
        except (ConfigError, PluginLoadError):
            return False
        return True

    def marks(self) -> list[str]:
        return sorted(set(self._specs) | set(self._lazy))

    def specs(self) -> list[NodeSpec]:
        """Every loadable spec (loads all entry points)."""
        out = []
        for mark in self.marks():
            try:
                out.append(self.get(mark))
            except (ConfigError, PluginLoadError):
                continue
        return out

    @property
    def failures(self) -> dict[str, str]:
        return dict(self._failures)

    def extend(self, specs: Iterable[NodeSpec]) -> None:
        with self._lock:
            for spec in specs:
                self._specs[spec.mark] = spec


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry with every installed mark."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Registry()
        return _default
