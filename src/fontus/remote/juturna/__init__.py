"""Juturna compatibility: Fontus messages on the wire of Juturna's remotizer (Juturna >= 2.0).

Juturna's remote service is one unary gRPC method, :data:`SEND_AND_RECEIVE`,
taking and returning a ``ProtoEnvelope`` that wraps a ``ProtoMessage``::

    request = make_request_envelope(message, sender="my-pipeline", ttl=10,
                                    configuration={"threshold": 0.5})
    data = envelope_to_bytes(request)                # what goes on the wire
    reply = envelope_from_bytes(data_from_the_peer)  # WireError if malformed
    answer = envelope_message(reply)                 # a frozen Fontus Message

Every built-in payload except control and config crosses; what the Juturna
wire loses (objects and ``meta`` are ``google.protobuf.Struct``: numbers come
back as floats, no bytes or arrays inside them; the message id is an int32)
is listed in ``docs/juturna-wire.md``.  For Fontus-to-Fontus traffic use the
``fontus.v1`` protocol, which loses nothing.

The schemas live in a private descriptor pool, so this module imports safely
in a process that has also imported Juturna's own generated modules.
"""

from ._codec import message_from_proto, message_to_proto
from ._envelope import (
    DEFAULT_TTL_S,
    MAX_MESSAGE_BYTES,
    SEND_AND_RECEIVE,
    ProtoEnvelope,
    ProtoMessage,
    envelope_from_bytes,
    envelope_message,
    envelope_to_bytes,
    make_reply_envelope,
    make_request_envelope,
)
from ._struct import read_struct

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
    "message_from_proto",
    "message_to_proto",
    "read_struct",
]
