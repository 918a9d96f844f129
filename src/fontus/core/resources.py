"""A process-wide resource cache, so node instances can share one heavy model.

A server with isolated sessions builds a node instance per session; without
sharing, every session would load its own copy of a 2 GB model.  Load it
through this cache instead, typically in ``warmup``::

    class Transcribe(Node):
        def __init__(self, model: str = "small") -> None:
            self.model_name = model

        def warmup(self) -> None:
            self.model = shared_resource(("whisper", self.model_name), lambda: load(self.model_name))

The first caller for a key runs ``factory``; concurrent callers for the same
key wait for it and get the same object; other keys are not blocked.  A
factory that raises is not cached (the next caller tries again).  The object
must be safe to use from several node threads at once, or guard itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["clear_resources", "release_resource", "shared_resource"]

T = TypeVar("T")

_lock = threading.Lock()
_values: dict[Hashable, Any] = {}
_building: dict[Hashable, threading.Lock] = {}


def shared_resource(key: Hashable, factory: Callable[[], T]) -> T:
    """The object cached under ``key``, built by ``factory`` on first use."""
    with _lock:
        if key in _values:
            return _values[key]
        key_lock = _building.setdefault(key, threading.Lock())
    with key_lock:
        with _lock:
            if key in _values:
                return _values[key]
        value = factory()
        with _lock:
            _values[key] = value
            _building.pop(key, None)
        return value


def release_resource(key: Hashable) -> Any:
    """Forget ``key`` (returns the object, or None); the next user builds it again."""
    with _lock:
        return _values.pop(key, None)


def clear_resources() -> None:
    """Forget every cached object (tests, or a server reloading its models)."""
    with _lock:
        _values.clear()
