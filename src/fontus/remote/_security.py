"""TLS and bearer tokens: server credentials, the token check, and client credentials.

Server: :func:`server_credentials` turns ``--tls-cert``/``--tls-key`` (and
``--tls-client-ca``, mutual TLS) into gRPC credentials; :class:`TokenAuth`
refuses every call without a known bearer token, except health checks and
reflection (Kubernetes probes carry no token).  Client: a Warp's ``tls``
mapping becomes a :class:`TLSConfig` of file *paths* (a pipeline file never
holds key material), :func:`channel_credentials` reads the files and
:func:`token_metadata` reads the token from the environment when a session opens.

Secrets (tokens, private keys) are never logged, never in a repr or an error
message; errors name the flag, field, file or variable to fix.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import grpc

from ..core.errors import ConfigError

__all__ = [
    "TLSConfig",
    "TokenAuth",
    "channel_credentials",
    "security_summary",
    "server_credentials",
    "token_metadata",
]

log = logging.getLogger(__name__)

#: Calls that never need a token: probes (Kubernetes readiness, load balancers) and
#: reflection (tools such as grpcurl list services before they know what to send).
OPEN_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
MISSING_TOKEN = (
    "missing bearer token: this server requires metadata 'authorization: Bearer <token>' "
    "(a Warp sends it with token_env)"
)
WRONG_TOKEN = "bearer token not accepted: the token is wrong or has been rotated out"
#: A refused streaming call takes (never parses) the client's first message, waiting
#: at most this long, before ending: a status that overtakes the client's first write
#: reaches it as INTERNAL "Internal error from Core" instead (grpc/grpc#36066).
FIRST_REQUEST_WAIT_S = 1.0


# -- files -----------------------------------------------------------------------------
class _Encrypted(Exception):
    """Raised by ``_no_password``, OpenSSL's password callback: the key file is encrypted."""


def _no_password() -> str:
    raise _Encrypted


def _read_pem(what: str, path: str) -> bytes:
    try:
        with open(os.path.expanduser(path), "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}; check the path") from None
    if b"-----BEGIN" not in data:
        raise ConfigError(f"{what} {path}: not a PEM file (no '-----BEGIN' line)")
    return data


def _reason(exc: OSError) -> str:
    return str(getattr(exc, "reason", None) or exc.strerror or type(exc).__name__)


def _certificates(what: str, path: str) -> bytes:
    # Parsed by OpenSSL now: gRPC would take garbage and fail every handshake later.
    data = _read_pem(what, path)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=data.decode("ascii"))
    except (OSError, UnicodeDecodeError) as exc:  # ssl.SSLError is an OSError
        reason = _reason(exc) if isinstance(exc, OSError) else "not ASCII"
        raise ConfigError(f"{what} {path}: no valid PEM certificate ({reason})") from None
    return data


def _key_pair(cert_what: str, cert: str, key_what: str, key: str) -> tuple[bytes, bytes]:
    """(certificate chain, private key) PEM, checked to parse and to belong together."""
    cert_data = _certificates(cert_what, cert)
    key_data = _read_pem(key_what, key)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
            os.path.expanduser(cert), os.path.expanduser(key), password=_no_password
        )
    except _Encrypted:
        msg = "the key is encrypted; gRPC needs an unencrypted key file (readable only by its user)"
        raise ConfigError(f"{key_what} {key}: {msg}") from None
    except OSError as exc:
        if "MISMATCH" in _reason(exc).upper():
            raise ConfigError(
                f"{key_what} {key} does not belong to {cert_what} {cert}; give the matching pair"
            ) from None
        raise ConfigError(f"{key_what} {key}: no valid PEM private key ({_reason(exc)})") from None
    return cert_data, key_data


# -- server ----------------------------------------------------------------------------
def server_credentials(config: Any) -> grpc.ServerCredentials | None:
    """gRPC server credentials for a ``ServerConfig``, or None for plaintext.

    Raises ConfigError naming the flag and the file when one is missing,
    unreadable, not PEM, or when key and certificate do not match.
    """
    if not config.tls_cert:
        return None
    cert, key = _key_pair("--tls-cert", config.tls_cert, "--tls-key", config.tls_key)
    client_ca = (
        _certificates("--tls-client-ca", config.tls_client_ca) if config.tls_client_ca else None
    )
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def security_summary(config: Any) -> str:
    """How a server is protected, for its start-up log line (never the secrets)."""
    mode = "mutual TLS" if config.tls_client_ca else "TLS" if config.tls_cert else "plaintext"
    count = len(config.tokens)
    return mode + (f", {count} bearer token{'s' if count > 1 else ''}" if count else "")


Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


class TokenAuth(grpc.aio.ServerInterceptor):
    """Refuses calls without ``authorization: Bearer <token>`` naming one of ``tokens``.

    Several tokens may be valid at once so that clients can move to a new one
    before the old one is removed. Refused calls end with UNAUTHENTICATED
    before the service sees (or deserializes) anything.
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        self._tokens = tuple(t.strip().encode() for t in tokens)
        if not self._tokens or not all(self._tokens):
            raise ConfigError("TokenAuth needs at least one non-empty token")

    def __repr__(self) -> str:
        return f"TokenAuth({len(self._tokens)} tokens)"

    def check(self, metadata: Sequence[tuple[str, Any]] | None) -> str:
        """'' when ``metadata`` carries a known token, else why not (without the token)."""
        presented: bytes | None = None
        for key, value in metadata or ():
            if key.lower() == "authorization":
                text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                scheme, _, token = text.strip().partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    presented = token.strip().encode()
                break
        if presented is None:
            return MISSING_TOKEN
        # Compare with every token, so timing tells neither whether nor which one matched.
        matched = [hmac.compare_digest(presented, known) for known in self._tokens]
        return "" if any(matched) else WRONG_TOKEN

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(OPEN_METHOD_PREFIXES):
            return handler
        problem = self.check(handler_call_details.invocation_metadata)
        if not problem:
            return handler
        log.warning("refused a call to %s: %s", method, problem.split(":")[0])
        return _refusal(handler, problem)


def _refusal(handler: grpc.RpcMethodHandler, detail: str) -> grpc.RpcMethodHandler:
    """A handler of ``handler``'s kind that ends the call with UNAUTHENTICATED at once.

    The kind must match: gRPC drives a streaming call differently from a unary
    one. Requests stay bytes (no deserializer): nothing from an unauthenticated
    peer is parsed.
    """

    async def deny(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, detail)

    async def deny_stream(requests: Any, context: grpc.aio.ServicerContext) -> None:
        try:  # see FIRST_REQUEST_WAIT_S
            await asyncio.wait_for(requests.__anext__(), FIRST_REQUEST_WAIT_S)
        except (TimeoutError, StopAsyncIteration, grpc.RpcError):
            pass
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, detail)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny_stream)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny_stream)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny)
    return grpc.unary_unary_rpc_method_handler(deny)


# -- client ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TLSConfig:
    """A client's TLS: file paths of the CA, the client certificate and key, and a server name.

    ``ca`` empty: the system's root certificates. ``cert`` and ``key`` (mutual
    TLS) go together. ``server_name`` overrides the name checked against the
    server's certificate (when the target is an IP or a Kubernetes service name).
    """

    ca: str = ""
    cert: str = ""
    key: str = ""
    server_name: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str):
                raise ConfigError(f"tls.{f.name}: expected a string, got {type(value).__name__}")
            if f.name != "server_name" and "-----BEGIN" in value:
                raise ConfigError(
                    f"tls.{f.name}: holds PEM text; give the path of a file instead "
                    "(certificates and keys never go in the pipeline file)"
                )
        if bool(self.cert) != bool(self.key):
            raise ConfigError("tls.cert and tls.key go together (mutual TLS); give both or neither")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "tls") -> TLSConfig:
        """From a Warp's ``tls`` mapping: {ca, cert, key, server_name}, all optional."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{where}: expected a mapping with ca, cert, key, server_name; got {type(data).__name__}"
            )
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                raise ConfigError(f"{where}: unknown key {key!r}; allowed: {', '.join(known)}")
        return cls(**{k: ("" if v is None else v) for k, v in data.items()})


def channel_credentials(tls: TLSConfig) -> tuple[grpc.ChannelCredentials, list[tuple[str, Any]]]:
    """Credentials and extra channel options for ``tls``; reads (and checks) its files now."""
    root = _certificates("tls.ca", tls.ca) if tls.ca else None
    cert = key = None
    if tls.cert:
        cert, key = _key_pair("tls.cert", tls.cert, "tls.key", tls.key)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=cert
    )
    name = tls.server_name
    return credentials, [("grpc.ssl_target_name_override", name)] if name else []


class _Metadata(tuple[tuple[str, str], ...]):
    """Call metadata whose repr hides the values (they hold the token)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(tuple((k, "<redacted>") for k, _ in self))


def token_metadata(token_env: str) -> tuple[tuple[str, str], ...]:
    """``authorization: Bearer <token>`` metadata, the token read from ``token_env`` now
    (empty ``token_env``: no metadata)."""
    if not token_env:
        return ()
    value = os.environ.get(token_env, "").strip()
    if not value:
        raise ConfigError(
            f"token_env {token_env}: the environment variable is not set or empty; "
            "export the bearer token in it"
        )
    if not value.isascii() or not value.isprintable() or " " in value:
        raise ConfigError(
            f"token_env {token_env}: the token holds spaces or characters not allowed in "
            "gRPC metadata (printable ASCII only)"
        )
    return _Metadata((("authorization", f"Bearer {value}"),))
