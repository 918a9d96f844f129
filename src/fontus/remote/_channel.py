"""Client channels: targets, options and credentials in one place."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

import grpc

__all__ = [
    "KEEPALIVE_TIMEOUT_MS",
    "KEEPALIVE_TIME_MS",
    "channel_options",
    "make_channel",
    "normalise_target",
    "replica_targets",
]

#: Ping an idle connection every 2 s and give up 2 s after an unanswered ping:
#: a dead or frozen peer is detected within about 4-5 s.
KEEPALIVE_TIME_MS = 2000
KEEPALIVE_TIMEOUT_MS = 2000
MAX_MESSAGE_BYTES = 100 * 1024 * 1024


def normalise_target(target: str | Sequence[str]) -> str:
    """One gRPC target string: ``host:port``, ``dns:///name:port``, or ``ipv4:a:p,b:p`` for a list."""
    if isinstance(target, str):
        targets = (
            [t.strip() for t in target.split(",") if t.strip()]
            if "," in target
            else [target.strip()]
        )
    else:
        targets = [str(t).strip() for t in target]
    if not targets or not all(targets):
        raise ValueError("target is empty; give host:port, a list of them, or dns:///name:port")
    if len(targets) == 1:
        return targets[0]
    if any("://" in t or t.startswith(("dns:", "ipv4:", "ipv6:")) for t in targets):
        raise ValueError(f"a list of targets must be plain host:port entries, got {targets}")
    if any(t.startswith("[") for t in targets):
        return "ipv6:" + ",".join(targets)
    return "ipv4:" + ",".join(_resolve_localhost(t) for t in targets)


def replica_targets(target: str) -> list[str]:
    """One target per replica of an ``ipv4:``/``ipv6:`` list (``normalise_target``'s output);
    ``[]`` for a single address or a ``dns:`` name, whose replicas are not known up front."""
    scheme, _, addresses = target.partition(":")
    if scheme not in ("ipv4", "ipv6") or "," not in addresses:
        return []
    return [f"{scheme}:{address}" for address in addresses.split(",")]


def _resolve_localhost(t: str) -> str:
    """``host:port`` with the host as an IPv4 address (gRPC's ipv4: list takes addresses only).

    Names are resolved once, when the node is built; use ``dns:///name:port`` for
    replicas whose addresses change (a Kubernetes headless Service).
    """
    host, _, port = t.rpartition(":")
    if host == "localhost":
        return f"127.0.0.1:{port}"
    try:
        ipaddress.IPv4Address(host)
        return t
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"cannot resolve replica host {host!r} ({exc}); list IP addresses or use dns:///{host}:{port}"
        ) from None
    return f"{infos[0][4][0]}:{port}"


def channel_options(
    keepalive_ms: int = KEEPALIVE_TIME_MS, balanced: bool = False
) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", keepalive_ms),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # gRPC otherwise spaces pings minutes apart, which defeats the keepalive bound.
        ("grpc.http2.min_time_between_pings_ms", KEEPALIVE_TIME_MS // 2),
        ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
        # Reconnect quickly after a replica restarts (gRPC's default backoff grows to 120 s).
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
        ("grpc.min_reconnect_backoff_ms", 200),
    ]
    if balanced:
        options.append(
            (
                "grpc.service_config",
                '{"loadBalancingConfig": [{"round_robin": {}}],'
                ' "healthCheckConfig": {"serviceName": "fontus.v1.Remote"}}',
            )
        )
    return options


def make_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    *,
    extra_options: Sequence[tuple[str, Any]] = (),
    own_connections: bool = False,
    **kwargs: Any,
) -> grpc.aio.Channel:
    """A channel to ``target``: TLS when ``credentials`` are given (with their
    ``extra_options``, e.g. a server name override, from ``channel_credentials``).

    Channels with the same options share their connections (gRPC's global subchannel
    pool); ``own_connections`` makes new ones, for leaving a frozen server behind: its
    shared connection stays READY, and keeps being picked, long after a session saw it
    fall silent."""
    balanced = target.startswith(("ipv4:", "ipv6:", "dns:"))
    options = [*channel_options(balanced=balanced, **kwargs), *extra_options]
    if own_connections:
        options.append(("grpc.use_local_subchannel_pool", 1))
    if credentials is not None:
        return grpc.aio.secure_channel(target, credentials, options=options)
    return grpc.aio.insecure_channel(target, options=options)
