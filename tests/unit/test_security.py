"""TLS settings, token checks and certificate validation, without sockets."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import grpc
import pytest

from fontus.core import ConfigError
from fontus.remote._security import (
    MISSING_TOKEN,
    WRONG_TOKEN,
    TLSConfig,
    TokenAuth,
    channel_credentials,
    security_summary,
    server_credentials,
    token_metadata,
)
from fontus.remote.server import ServerConfig

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    server, stranger = ca.issue_cert("localhost"), other.issue_cert("localhost")
    out = {
        "ca": folder / "ca.pem",
        "cert": folder / "server.pem",
        "key": folder / "server.key",
        "other_key": folder / "other.key",
    }
    ca.cert_pem.write_to_path(str(out["ca"]))
    server.cert_chain_pems[0].write_to_path(str(out["cert"]))
    server.private_key_pem.write_to_path(str(out["key"]))
    stranger.private_key_pem.write_to_path(str(out["other_key"]))
    return {k: str(v) for k, v in out.items()}


# -- TLSConfig -------------------------------------------------------------------------------
def test_tls_mapping_takes_paths_and_a_server_name() -> None:
    tls = TLSConfig.from_mapping(
        {"ca": "ca.pem", "cert": "c.pem", "key": "c.key", "server_name": "x"}
    )
    assert tls == TLSConfig("ca.pem", "c.pem", "c.key", "x")


def test_tls_mapping_refuses_an_unknown_key_and_lists_the_allowed_ones() -> None:
    with pytest.raises(
        ConfigError, match="unknown key 'ca_file'; allowed: ca, cert, key, server_name"
    ):
        TLSConfig.from_mapping({"ca_file": "ca.pem"})


def test_tls_mapping_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        TLSConfig.from_mapping("ca.pem")  # type: ignore[arg-type]


@pytest.mark.parametrize("given", [{"cert": "c.pem"}, {"key": "c.key"}])
def test_client_certificate_and_key_go_together(given: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"tls\.cert and tls\.key go together"):
        TLSConfig.from_mapping(given)


def test_tls_refuses_pem_text_in_place_of_a_path() -> None:
    with pytest.raises(ConfigError, match=r"tls\.key: holds PEM text; give the path of a file"):
        TLSConfig(cert="c.pem", key="-----BEGIN PRIVATE KEY-----\nMIIE...")


def test_tls_values_must_be_strings() -> None:
    with pytest.raises(ConfigError, match=r"tls\.ca: expected a string, got int"):
        TLSConfig.from_mapping({"ca": 5})


def test_channel_credentials_name_the_field_and_file_that_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=re.escape(f"tls.ca {missing}: No such file")):
        channel_credentials(TLSConfig(ca=str(missing)))


def test_channel_credentials_refuse_a_key_of_another_certificate(files: dict[str, str]) -> None:
    tls = TLSConfig(ca=files["ca"], cert=files["cert"], key=files["other_key"])
    with pytest.raises(ConfigError, match=r"tls\.key .* does not belong to tls\.cert"):
        channel_credentials(tls)


def test_server_name_becomes_a_target_name_override(files: dict[str, str]) -> None:
    creds, options = channel_credentials(TLSConfig(ca=files["ca"], server_name="api.internal"))
    assert isinstance(creds, grpc.ChannelCredentials)
    assert options == [("grpc.ssl_target_name_override", "api.internal")]
    assert channel_credentials(TLSConfig(ca=files["ca"]))[1] == []


# -- server credentials ----------------------------------------------------------------------
def test_server_credentials_are_none_without_a_certificate() -> None:
    assert server_credentials(ServerConfig()) is None


def test_server_credentials_with_a_client_ca(files: dict[str, str]) -> None:
    config = ServerConfig(tls_cert=files["cert"], tls_key=files["key"], tls_client_ca=files["ca"])
    assert isinstance(server_credentials(config), grpc.ServerCredentials)


def test_an_encrypted_server_key_is_refused_by_name(files: dict[str, str], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(files["key"]).read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    config = ServerConfig(tls_cert=files["cert"], tls_key=str(encrypted))
    with pytest.raises(
        ConfigError, match=re.escape(f"--tls-key {encrypted}: the key is encrypted")
    ):
        server_credentials(config)


def test_server_config_repr_never_shows_tokens() -> None:
    config = ServerConfig(tokens=("s3cret-token",))
    assert "s3cret-token" not in repr(config)
    assert security_summary(config) == "plaintext, 1 bearer token"


def test_security_summary_says_mutual_tls(files: dict[str, str]) -> None:
    config = ServerConfig(
        tls_cert=files["cert"], tls_key=files["key"], tls_client_ca=files["ca"], tokens=("a", "b")
    )
    assert security_summary(config) == "mutual TLS, 2 bearer tokens"


# -- tokens ----------------------------------------------------------------------------------
def test_token_metadata_reads_the_variable_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FONTUS_T", "first")
    assert token_metadata("FONTUS_T") == (("authorization", "Bearer first"),)
    monkeypatch.setenv("FONTUS_T", "second")
    assert token_metadata("FONTUS_T") == (("authorization", "Bearer second"),)
    assert token_metadata("") == ()


def test_token_metadata_repr_hides_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FONTUS_T", "hunter2-token")
    metadata = token_metadata("FONTUS_T")
    assert "hunter2-token" not in repr(metadata) and "<redacted>" in repr(metadata)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_token_metadata_names_an_unset_or_empty_variable(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("FONTUS_T", raising=False)
    else:
        monkeypatch.setenv("FONTUS_T", value)
    with pytest.raises(
        ConfigError, match="token_env FONTUS_T: the environment variable is not set"
    ):
        token_metadata("FONTUS_T")


def test_token_metadata_refuses_a_token_that_cannot_be_a_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FONTUS_T", "two words")
    with pytest.raises(ConfigError, match="FONTUS_T") as caught:
        token_metadata("FONTUS_T")
    assert "two words" not in str(caught.value)


def test_token_auth_accepts_every_configured_token() -> None:
    auth = TokenAuth(["old", "new"])
    assert auth.check([("authorization", "Bearer old")]) == ""
    assert auth.check([("authorization", "bearer new")]) == ""
    assert "old" not in repr(auth) and repr(auth) == "TokenAuth(2 tokens)"


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ([], MISSING_TOKEN),
        ([("authorization", "Basic b2xk")], MISSING_TOKEN),
        ([("authorization", "Bearer ")], MISSING_TOKEN),
        ([("authorization", "Bearer olde")], WRONG_TOKEN),
        ([("x-token", "old")], MISSING_TOKEN),
    ],
)
def test_token_auth_says_whether_a_token_is_missing_or_wrong(
    metadata: list[tuple[str, str]], problem: str
) -> None:
    assert TokenAuth(["old"]).check(metadata) == problem


def test_token_auth_needs_a_token() -> None:
    with pytest.raises(ConfigError):
        TokenAuth([])


class _Details:
    def __init__(self, method: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.method = method
        self.invocation_metadata = metadata


def _intercept(method: str, handler: Any, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    async def continuation(details: Any) -> Any:
        return handler

    auth = TokenAuth(["tok"])
    return asyncio.run(auth.intercept_service(continuation, _Details(method, metadata)))  # type: ignore[arg-type]


async def _behaviour(request: Any, context: Any) -> Any:
    return request


@pytest.mark.parametrize(
    "make",
    [
        grpc.unary_unary_rpc_method_handler,
        grpc.unary_stream_rpc_method_handler,
        grpc.stream_unary_rpc_method_handler,
        grpc.stream_stream_rpc_method_handler,
    ],
)
def test_a_refusal_keeps_the_kind_of_the_method_and_parses_nothing(make: Any) -> None:
    handler = make(_behaviour, request_deserializer=bytes.upper)
    refusal = _intercept("/fontus.v1.Remote/Session", handler)
    assert refusal is not handler
    assert (refusal.request_streaming, refusal.response_streaming) == (
        handler.request_streaming,
        handler.response_streaming,
    )
    assert refusal.request_deserializer is None


def test_the_right_token_gets_the_real_handler() -> None:
    handler = grpc.unary_unary_rpc_method_handler(_behaviour)
    assert (
        _intercept("/fontus.v1.Remote/Describe", handler, (("authorization", "Bearer tok"),))
        is handler
    )


@pytest.mark.parametrize(
    "method",
    [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ],
)
def test_health_and_reflection_need_no_token(method: str) -> None:
    handler = grpc.unary_unary_rpc_method_handler(_behaviour)
    assert _intercept(method, handler) is handler
