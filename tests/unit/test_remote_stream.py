"""A client stream: how it names the way it ended (``RemoteStream._ended_error``), and
how many requests it puts in one frame (``coalesce_limit``)."""

from __future__ import annotations

import grpc

from fontus.core.errors import RemoteError, RemoteUnavailable
from fontus.remote._limits import DEFAULT_LIMITS
from fontus.remote._stream import RemoteStream, coalesce_limit
from fontus.remote._wire.v1 import session_pb2 as spb

WHERE = "node 'g' (gain on 127.0.0.1:1)"


def stream() -> RemoteStream:
    # Nothing here opens the stream: the channel and the sink are never used.
    return RemoteStream(channel=None, sink=None, where=WHERE, limits=DEFAULT_LIMITS)  # type: ignore[arg-type]


def test_an_internal_error_after_a_draining_frame_is_reported_as_the_drain() -> None:
    # gRPC's client can report INTERNAL "Internal error from Core" instead of the
    # server's UNAVAILABLE when the status arrives while requests are being written.
    s = stream()
    s.draining = spb.Draining(grace_s=10.0, reason="server is shutting down")
    error = s._ended_error(grpc.StatusCode.INTERNAL, "Internal error from Core")
    assert isinstance(error, RemoteUnavailable)
    assert str(error).startswith(f"{WHERE}: server unavailable (server is shutting down; draining")


def test_an_internal_error_without_a_draining_frame_stays_internal() -> None:
    error = stream()._ended_error(grpc.StatusCode.INTERNAL, "Internal error from Core")
    assert type(error) is RemoteError
    assert str(error) == f"{WHERE}: INTERNAL: Internal error from Core"


def test_other_statuses_after_draining_keep_their_meaning() -> None:
    s = stream()
    s.draining = spb.Draining(grace_s=1.0, reason="")
    error = s._ended_error(grpc.StatusCode.UNAVAILABLE, "server is draining; reconnect")
    assert str(error) == f"{WHERE}: server unavailable (server is draining; reconnect)"


def test_a_frame_holds_half_of_the_window_between_8_and_32_requests() -> None:
    got = {w: coalesce_limit(w) for w in (1, 4, 16, 32, 64, 128, 1024)}
    assert got == {1: 8, 4: 8, 16: 8, 32: 16, 64: 32, 128: 32, 1024: 32}
