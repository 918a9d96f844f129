"""The one place where gRPC errors become Fontus errors."""

from __future__ import annotations

import grpc

from ..core.errors import RemoteError, RemoteRefused, RemoteTimeout, RemoteUnavailable

__all__ = ["from_status"]

_REFUSED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.OUT_OF_RANGE,
}


def from_status(code: grpc.StatusCode | None, detail: str | None, where: str) -> RemoteError:
    """Translate a gRPC status into the Fontus error a user can act on; ``where`` names node and server."""
    text = (detail or "").strip() or (code.name if code else "unknown error")
    name = code.name if code is not None else "UNKNOWN"
    if code == grpc.StatusCode.UNAVAILABLE:
        hint = ""
        lowered = text.lower()
        if any(
            k in lowered
            for k in ("failed to connect", "connection refused", "dns resolution", "no answer")
        ):
            hint = "; is 'fontus serve' running there, and is the address right?"
        return RemoteUnavailable(f"{where}: server unavailable ({text}){hint}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return RemoteTimeout(f"{where}: deadline exceeded ({text})")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return RemoteRefused(
            f"{where}: UNAUTHENTICATED: {text}; check the token (token_env) or client certificate"
        )
    if code in _REFUSED:
        return RemoteRefused(f"{where}: {name}: {text}")
    if code == grpc.StatusCode.CANCELLED:
        return RemoteUnavailable(f"{where}: session cancelled ({text})")
    return RemoteError(f"{where}: {name}: {text}")
