"""Juturna's ``ProtoEnvelope``: one request or one reply of ``SendAndReceive``, and its bytes.

A request carries the message, a non-empty ``sender`` (Juturna's server answers
``INVALID_ARGUMENT`` without one), a ``ttl`` in seconds (the server reads 0 as
30 s and caps it at 300 s) and the node ``configuration``.  A reply has a fresh
``id``, ``response_to`` set to the request's ``id``, and ``metadata`` (Juturna
puts ``processing_time`` there).

Every envelope made here gets a fresh random id.  Juturna 2.1.1 itself does not
do that: its envelope helper computes its default id once per process, so all
the envelopes one Juturna process sends carry the same id.  Never rely on a
peer's ids being unique; ``response_to`` still names the request it answers.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from typing import Any

from ...core.errors import WireError
from ...core.message import Message
from .._limits import DEFAULT_LIMITS, WireLimits
from .._wire.juturna import payloads_pb2 as pb
from ._codec import message_from_proto, message_to_proto
from ._struct import fill_struct

__all__ = [
    "DEFAULT_TTL_S",
    "MAX_MESSAGE_BYTES",
    "SEND_AND_RECEIVE",
    "ProtoEnvelope",
    "ProtoMessage",
    "envelope_from_bytes",
    "envelope_message",
    "envelope_to_bytes",
    "make_reply_envelope",
    "make_request_envelope",
]

#: The one method of Juturna's remotizer service (a unary call).
SEND_AND_RECEIVE = "/juturna.proto.messaging.MessagingService/SendAndReceive"
#: Both Juturna ends set gRPC's send and receive limits to 100 MiB.
MAX_MESSAGE_BYTES = 100 * 1024 * 1024
#: What Juturna's server assumes when a request's ttl is 0; it caps any ttl at 300 s.
DEFAULT_TTL_S = 30

ProtoEnvelope = pb.ProtoEnvelope
ProtoMessage = pb.ProtoMessage


def _new_id() -> str:
    # Juturna writes str(uuid4()), hyphens included; same form here, fresh every time.
    return str(uuid.uuid4())


def make_request_envelope(
    message: Message[Any],
    sender: str,
    *,
    ttl: float = DEFAULT_TTL_S,
    configuration: Mapping[str, Any] | None = None,
    receiver: str = "",
    metadata: Mapping[str, Any] | None = None,
    priority: int = 0,
) -> Any:
    """A request ``ProtoEnvelope`` carrying ``message``, with a fresh unique ``id``.

    ``ttl`` is seconds (a float is rounded up); ``configuration`` and ``metadata``
    travel as ``google.protobuf.Struct``.  Raises ``WireError`` for what cannot travel.
    """
    if not isinstance(sender, str) or not sender:
        raise WireError(
            f"envelope.sender must be a non-empty str, got {sender!r}: Juturna's server "
            "refuses requests without a sender"
        )
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl >= 0:
        raise WireError(f"envelope.ttl must be seconds >= 0, got {ttl!r}")
    envelope = _envelope(message, sender, receiver, metadata, "envelope")
    envelope.ttl = math.ceil(ttl)
    envelope.priority = priority
    if configuration:
        fill_struct(configuration, envelope.configuration, "envelope.configuration")
    return envelope


def make_reply_envelope(
    request: Any,
    message: Message[Any] | None,
    metadata: Mapping[str, Any] | None = None,
    *,
    sender: str = "",
) -> Any:
    """The reply to the ``request`` envelope: fresh ``id``, ``response_to`` = the request's id.

    It goes back to the request's sender (``receiver``) with the request's ttl.
    ``message`` may be None for a reply that carries no message.
    """
    envelope = _envelope(message, sender, request.sender, metadata, "reply")
    envelope.response_to = request.id
    envelope.ttl = request.ttl
    return envelope


def _envelope(
    message: Message[Any] | None,
    sender: str,
    receiver: str,
    metadata: Mapping[str, Any] | None,
    path: str,
) -> Any:
    envelope = ProtoEnvelope(id=_new_id(), sender=sender, receiver=receiver, created_at=time.time())
    if message is not None:
        envelope.message.CopyFrom(message_to_proto(message))
        # Juturna names the payload's class here ("AudioPayload"); its server does not act on it.
        envelope.request_type = type(message.payload).__name__
    if metadata:
        fill_struct(metadata, envelope.metadata, f"{path}.metadata")
    return envelope


def envelope_to_bytes(envelope: Any) -> bytes:
    """The bytes of ``envelope`` as they go on the wire (a gRPC request serializer)."""
    data: bytes = envelope.SerializeToString()
    return data


def envelope_from_bytes(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """Parse a ``ProtoEnvelope`` (a gRPC response deserializer); raises ``WireError`` if malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(f"envelope: expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise WireError(f"envelope: {len(data)} bytes, over the limit of {max_bytes}")
    envelope = ProtoEnvelope()
    try:
        envelope.ParseFromString(bytes(data))
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise WireError(f"envelope: malformed ProtoEnvelope: {exc}") from None
    return envelope


def envelope_message(
    envelope: Any, *, ints: bool = False, limits: WireLimits = DEFAULT_LIMITS
) -> Message[Any] | None:
    """The Fontus message inside ``envelope``, or None when it carries none."""
    if not envelope.HasField("message"):
        return None
    return message_from_proto(envelope.message, ints=ints, limits=limits)
