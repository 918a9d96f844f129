"""The one exception tree of Fontus.

::

    FontusError
    ├── ConfigError            a pipeline file or argument is wrong (raised before anything runs)
    │   └── PipelineInvalid    validation found problems; ``.problems`` lists every one of them
    ├── PayloadError           a payload constructor was given inconsistent data (also a ValueError)
    ├── FrozenMessageError     a transmitted message was modified (also an AttributeError)
    ├── GraphError             a pipeline was used in the wrong state (run twice, configure an unknown node)
    ├── NodeError              a node failed at run time; ``.node`` names it
    │   └── PluginLoadError    a plugin module could not be imported
    └── RemoteError            the remote hop failed (raised by ``fontus.remote``)
        ├── RemoteUnavailable  the server cannot be reached or went away
        ├── RemoteTimeout      a request or session did not finish in time
        ├── RemoteRefused      the server refused the session (unknown mark, bad argument, auth)
        └── WireError          bytes on the wire could not be decoded (also a ValueError)

Every message names the object at fault and, where there is one, the fix.
gRPC status codes are translated into this tree in exactly one place,
``fontus.remote._errors``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "FontusError",
    "FrozenMessageError",
    "GraphError",
    "NodeError",
    "PayloadError",
    "PipelineInvalid",
    "PluginLoadError",
    "RemoteError",
    "RemoteRefused",
    "RemoteTimeout",
    "RemoteUnavailable",
    "WireError",
]


class FontusError(Exception):
    """Root of every error Fontus raises on purpose."""


class ConfigError(FontusError):
    """A pipeline file, a node argument or a command-line option is wrong.

    Raised by config loading and validation before any node runs; fix the
    named field and run again.
    """


class PipelineInvalid(ConfigError):
    """Validation found one or more problems; ``problems`` holds all of them."""

    def __init__(self, problems: Sequence[str], source: str = "pipeline") -> None:
        self.problems = tuple(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{source}: {count} {noun}:\n{lines}")


class PayloadError(FontusError, ValueError):
    """A payload constructor was given data that does not agree with itself."""


class FrozenMessageError(FontusError, AttributeError):
    """A message was changed after it was transmitted.

    Messages are shared between nodes without copies; build a new one with
    ``message.evolve(...)`` instead.
    """


class GraphError(FontusError):
    """A pipeline was used in a way its state does not allow."""


class NodeError(FontusError):
    """A node failed while running; ``node`` is its name."""

    def __init__(self, node: str, detail: str) -> None:
        self.node = node
        self.detail = detail
        super().__init__(f"node '{node}': {detail}")


class PluginLoadError(NodeError):
    """A plugin module could not be imported; raised when one of its marks is used."""


class RemoteError(FontusError):
    """The remote hop failed; raised by ``fontus.remote``."""


class RemoteUnavailable(RemoteError):
    """The server cannot be reached, or went away and no replica took over."""


class RemoteTimeout(RemoteError):
    """A request or a session did not finish within its deadline."""


class RemoteRefused(RemoteError):
    """The server refused the session: unknown mark, refused argument, authentication, limits."""


class WireError(RemoteError, ValueError):
    """Bytes received could not be decoded; the message names the field and the problem."""
