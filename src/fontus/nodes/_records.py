"""Messages as deterministic, JSON-ready records.

The ``jsonl`` sink writes these records; tests and tools compare them.  A
record holds what a message means, never when or where it was made: no id,
no wall-clock time, no timers.  Arrays (payload fields, or anywhere inside
objects and ``meta``) are summarised as ``{"dtype", "shape", "sha256"}`` with
the SHA-256 of their C-order bytes, and bytes as ``{"bytes": length,
"sha256"}``, so two runs with equal data give equal lines::

    {"creator": "vad", "version": 0, "kind": "object",
     "payload": {"start": 0.0, "end": 0.5, "duration": 0.5, "peak_db": -6.02},
     "meta": {}}
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from fontus.core.message import Message
from fontus.core.payloads import Batch, ObjectPayload, Payload

__all__ = ["array_record", "bytes_record", "message_record", "payload_record", "value_record"]


def array_record(array: np.ndarray) -> dict[str, Any]:
    """``{"dtype", "shape", "sha256"}`` of ``array`` (hash of its C-order bytes)."""
    contiguous = np.ascontiguousarray(array)
    return {
        "dtype": str(contiguous.dtype),
        "shape": list(contiguous.shape),
        "sha256": hashlib.sha256(contiguous.data).hexdigest(),
    }


def bytes_record(data: bytes) -> dict[str, Any]:
    """``{"bytes": length, "sha256"}`` of ``data``."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def value_record(value: Any) -> Any:
    """A JSON-ready form of a JSON-like value that may hold arrays, bytes or payloads."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.ndarray):
        return array_record(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes_record(bytes(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Message):
        return message_record(value)
    if isinstance(value, Payload):
        return payload_record(value)
    if isinstance(value, Mapping):
        return {str(key): value_record(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [value_record(item) for item in value]
    raise TypeError(f"cannot record a value of type {type(value).__name__}")


def payload_record(payload: Payload) -> Any:
    """Object payloads in full, a batch as a list of message records, other kinds field by field."""
    if isinstance(payload, ObjectPayload):
        return value_record(payload.data)
    if isinstance(payload, Batch):
        return [message_record(message) for message in payload.messages]
    return {
        f.name: value_record(getattr(payload, f.name))
        for f in dataclasses.fields(payload)  # type: ignore[arg-type]
    }


def message_record(message: Message[Any]) -> dict[str, Any]:
    """``{"creator", "version", "kind", "payload", "meta"}`` of ``message``."""
    return {
        "creator": message.creator,
        "version": message.version,
        "kind": message.payload.kind,
        "payload": payload_record(message.payload),
        "meta": value_record(message.meta),
    }
