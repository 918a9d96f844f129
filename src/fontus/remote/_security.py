"""TLS and token credentials for servers and clients (filled in by the security work)."""

from __future__ import annotations

from typing import Any

__all__ = ["server_credentials"]


def server_credentials(config: Any) -> Any:
    """grpc server credentials for ``config``, or None for plaintext (loopback only)."""
    if not config.tls_cert:
        return None
    import grpc

    from ..core.errors import ConfigError

    def read(path: str, what: str) -> bytes:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise ConfigError(f"{what} {path}: {exc.strerror}; check the path") from None

    key = read(config.tls_key, "--tls-key")
    cert = read(config.tls_cert, "--tls-cert")
    client_ca = read(config.tls_client_ca, "--tls-client-ca") if config.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
