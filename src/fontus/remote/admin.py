"""Asking a server what it hosts (Describe) and how it is doing (Stats), from any thread."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from ._channel import channel_options, normalise_target
from ._errors import from_status
from ._wire.v1 import session_pb2 as spb
from .codec import WireDecoder

__all__ = [
    "ArgumentInfo",
    "MarkInfo",
    "ServerDescription",
    "ServerStats",
    "describe",
    "server_stats",
]

#: A Describe or Stats call is tiny; 10 s only covers connecting to a slow network.
ADMIN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ArgumentInfo:
    name: str
    type: str
    default: Any
    required: bool
    help: str


@dataclass(frozen=True)
class MarkInfo:
    mark: str
    kind: str
    summary: str
    arguments: tuple[ArgumentInfo, ...]


@dataclass(frozen=True)
class ServerDescription:
    target: str
    server_version: str
    session_mode: str
    hosting: str
    marks: tuple[MarkInfo, ...]
    max_window: int
    max_message_bytes: int
    encodings: tuple[str, ...]
    max_sessions: int
    active_sessions: int
    #: Value-tree forms the server reads besides the columns ("msgpack").
    value_formats: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerStats:
    target: str
    uptime_s: float
    active_sessions: int
    sessions_total: int
    requests_total: int
    failures_total: int
    nodes: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def _call(
    target: str,
    method: str,
    request: Any,
    reply_type: Any,
    timeout: float,
    credentials: Any,
    metadata: Sequence[tuple[str, str]],
    extra_options: Sequence[tuple[str, Any]],
) -> Any:
    address = normalise_target(target)
    options = [*channel_options(), *extra_options]
    channel = (
        grpc.secure_channel(address, credentials, options=options)
        if credentials is not None
        else grpc.insecure_channel(address, options=options)
    )
    try:
        rpc = channel.unary_unary(
            f"/fontus.v1.Remote/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=reply_type.FromString,
        )
        return rpc(request, timeout=timeout, metadata=metadata or None, wait_for_ready=False)
    except grpc.RpcError as exc:
        raise from_status(exc.code(), exc.details(), f"server {target}") from None
    finally:
        channel.close()


def describe(
    target: str,
    timeout: float = ADMIN_TIMEOUT_S,
    credentials: grpc.ChannelCredentials | None = None,
    metadata: Sequence[tuple[str, str]] = (),
    extra_options: Sequence[tuple[str, Any]] = (),
) -> ServerDescription:
    """What ``target`` hosts: marks with their arguments, session mode, limits.

    ``credentials`` and ``extra_options`` (TLS) come from ``channel_credentials``,
    ``metadata`` (a bearer token) from ``token_metadata``.
    """
    reply = _call(
        target,
        "Describe",
        spb.DescribeRequest(),
        spb.Description,
        timeout,
        credentials,
        metadata,
        extra_options,
    )
    decoder = WireDecoder([])
    marks = tuple(
        MarkInfo(
            m.mark,
            m.kind,
            m.summary,
            tuple(
                ArgumentInfo(
                    a.name,
                    a.type,
                    decoder.value(a.default, a.name, 0) if a.HasField("default") else None,
                    a.required,
                    a.help,
                )
                for a in m.arguments
            ),
        )
        for m in reply.marks
    )
    return ServerDescription(
        target,
        reply.server_version,
        reply.session_mode,
        reply.hosting,
        marks,
        reply.max_window,
        reply.max_message_bytes,
        tuple(reply.encodings),
        reply.max_sessions,
        reply.active_sessions,
        tuple(reply.value_formats),
    )


def server_stats(
    target: str,
    timeout: float = ADMIN_TIMEOUT_S,
    credentials: grpc.ChannelCredentials | None = None,
    metadata: Sequence[tuple[str, str]] = (),
    extra_options: Sequence[tuple[str, Any]] = (),
) -> ServerStats:
    """Counters and latency quantiles of ``target``, per session and node (security as ``describe``)."""
    reply = _call(
        target,
        "Stats",
        spb.StatsRequest(),
        spb.StatsReply,
        timeout,
        credentials,
        metadata,
        extra_options,
    )
    nodes = tuple(
        {
            "session": n.session_id,
            "client": n.client,
            "node": n.node,
            "mark": n.mark,
            "requests": n.requests,
            "outputs": n.outputs,
            "failures": n.failures,
            "p50_ms": n.p50_ms,
            "p99_ms": n.p99_ms,
            "bytes_in": n.bytes_in,
            "bytes_out": n.bytes_out,
            "tails": n.tails,
            "tail_refs": n.tail_refs,
            "in_flight": n.queue_depth,
            "active": n.active,
        }
        for n in reply.nodes
    )
    return ServerStats(
        target,
        reply.uptime_s,
        reply.active_sessions,
        reply.sessions_total,
        reply.requests_total,
        reply.failures_total,
        nodes,
    )
