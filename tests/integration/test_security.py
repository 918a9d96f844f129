"""TLS, mutual TLS and bearer tokens against real ``fontus serve`` processes on 127.0.0.1.

Certificates are made here with trustme: a CA, a server certificate for
127.0.0.1 and localhost, a client certificate from the same CA, and an
unrelated CA with a client certificate of its own. Sessions are opened the way
a Warp opens them (``make_channel`` + ``RemoteStream``); pipelines go through a
real Warp once it takes ``tls`` and ``token_env``.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fontus.core import Message, NodeError, ObjectPayload
from fontus.core.errors import RemoteError, RemoteRefused, RemoteUnavailable
from fontus.remote import admin
from fontus.remote._channel import make_channel
from fontus.remote._frames import control_frame, encode_request
from fontus.remote._limits import DEFAULT_LIMITS
from fontus.remote._loop import client_loop
from fontus.remote._security import TLSConfig, channel_credentials, token_metadata
from fontus.remote._stream import RemoteStream
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.remote.warp import Warp
from fontus.testing import LoopbackServer, run_pipeline

trustme = pytest.importorskip("trustme")

#: Every test here takes a few seconds at most; this bounds a hang.
pytestmark = pytest.mark.timeout(90)
#: A session that cannot be opened (handshake refused) fails within this; a
#: working one opens in well under a second on loopback.
OPEN_TIMEOUT_S = 3.0
#: Bound of one whole session round trip, or of one admin call.
CALL_TIMEOUT_S = 15.0
#: Bound of one ``fontus`` command run in a subprocess.
COMMAND_TIMEOUT_S = 30.0
#: Environment variables the client reads its token from (set per test with monkeypatch).
CLIENT_TOKEN_ENV = "FONTUS_TEST_CLIENT_TOKEN"
SERVER_TOKENS_ENV = "FONTUS_TEST_SERVER_TOKENS"


# -- certificates and servers ---------------------------------------------------------------
@dataclass(frozen=True)
class Pki:
    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    other_ca: str
    stranger_cert: str
    stranger_key: str


def _write_pair(cert: Any, folder: Path, name: str) -> tuple[str, str]:
    chain, key = folder / f"{name}.pem", folder / f"{name}.key"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    return str(chain), str(key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA(organization_name="Fontus test CA")
    other = trustme.CA(organization_name="Unrelated CA")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    other.cert_pem.write_to_path(str(folder / "other-ca.pem"))
    server = _write_pair(ca.issue_cert("127.0.0.1", "localhost"), folder, "server")
    client = _write_pair(ca.issue_cert("client.fontus.test"), folder, "client")
    stranger = _write_pair(other.issue_cert("client.fontus.test"), folder, "stranger")
    return Pki(
        str(folder / "ca.pem"),
        *server,
        *client,
        str(folder / "other-ca.pem"),
        *stranger,
    )


@dataclass(frozen=True)
class Tokens:
    old: str
    new: str
    file: str


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    old, new = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    path.write_text(
        f"# rotation: both are valid until clients have moved to the new one\n{old}\n{new}\n"
    )
    return Tokens(old, new, str(path))


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[LoopbackServer]:
    args = ["--allow", "identity", "--tls-cert", pki.server_cert, "--tls-key", pki.server_key]
    with LoopbackServer(args) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(pki: Pki) -> Iterator[LoopbackServer]:
    args = [
        "--allow",
        "identity",
        "--tls-cert",
        pki.server_cert,
        "--tls-key",
        pki.server_key,
        "--tls-client-ca",
        pki.ca,
    ]
    with LoopbackServer(args) as server:
        yield server


@pytest.fixture(scope="module")
def token_server(tokens: Tokens) -> Iterator[LoopbackServer]:
    # -v: debug logging, so that the "never logged" check covers the chattiest output.
    with LoopbackServer(["--allow", "identity", "--token-file", tokens.file, "-v"]) as server:
        yield server


@pytest.fixture(scope="module")
def full_server(pki: Pki, tokens: Tokens) -> Iterator[LoopbackServer]:
    """Mutual TLS and tokens from an environment variable (comma-separated, two of them)."""
    args = [
        "--allow",
        "identity",
        "--tls-cert",
        pki.server_cert,
        "--tls-key",
        pki.server_key,
        "--tls-client-ca",
        pki.ca,
        "--token-env",
        SERVER_TOKENS_ENV,
    ]
    env = {SERVER_TOKENS_ENV: f"{tokens.old},{tokens.new}"}
    with LoopbackServer(args, env=env) as server:
        yield server


# -- clients -------------------------------------------------------------------------------
class _Collect:
    """A ResultSink keeping what one session returns (called on the client loop)."""

    def __init__(self) -> None:
        self.outputs: list[Message[Any]] = []
        self.done: list[int] = []
        self.failed: list[str] = []
        self.error: RemoteError | None = None
        self.ended = threading.Event()

    def on_output(self, seq: int, exit_name: str, decode: Any) -> None:
        self.outputs.append(decode())

    def on_done(self, seq: int, queue_s: float, compute_s: float, outputs: int) -> None:
        self.done.append(seq)

    def on_failed(self, seq: int, code: int, detail: str) -> None:
        self.failed.append(detail)

    def on_draining(self, grace_s: float) -> None:
        pass

    def request_blob(self, seq: int) -> Any:
        return None

    def on_end(self, error: RemoteError | None) -> None:
        self.error = error
        self.ended.set()


def _open_frame() -> bytes:
    frame = spb.ClientFrame()
    frame.open.node.name = "echo"
    frame.open.node.mark = "identity"
    frame.open.client = "test-security"
    frame.open.window = 4
    frame.open.protocol_version = 1
    return control_frame(frame)


def session_round_trip(
    target: str, tls: TLSConfig | None = None, token_env: str = "", count: int = 3
) -> list[Any]:
    """Open a Session as a Warp does, send ``count`` messages, return the payloads that came back.

    Raises the mapped RemoteError when the session cannot be opened.
    """
    sink = _Collect()

    async def run() -> None:
        creds, options = channel_credentials(tls) if tls else (None, [])
        channel = make_channel(target, creds, extra_options=options)
        try:
            stream = RemoteStream(
                channel, sink, "node 'echo'", DEFAULT_LIMITS, metadata=token_metadata(token_env)
            )
            await stream.open(_open_frame(), OPEN_TIMEOUT_S)
            for seq in range(1, count + 1):
                message = Message(ObjectPayload({"seq": seq})).freeze()
                stream.send(encode_request(seq, message, timeout_ms=10_000))
            stream.send(None)
            await asyncio.to_thread(sink.ended.wait, CALL_TIMEOUT_S)
        finally:
            await channel.close()

    client_loop().submit(run()).result(timeout=CALL_TIMEOUT_S + OPEN_TIMEOUT_S)
    assert sink.ended.is_set(), "the session did not end"
    assert sink.error is None, sink.error
    assert sink.done == list(range(1, count + 1)) and not sink.failed
    return [dict(m.payload) for m in sink.outputs]


def describe(target: str, tls: TLSConfig | None = None, token_env: str = "") -> Any:
    creds, options = channel_credentials(tls) if tls else (None, [])
    return admin.describe(
        target,
        CALL_TIMEOUT_S,
        credentials=creds,
        metadata=token_metadata(token_env),
        extra_options=options,
    )


def warp_pipeline(target: str, count: int, **security: Any) -> list[Any]:
    """``feed → warp(identity) → collect`` through a real Warp; the payloads that arrive."""
    if not {"tls", "token_env"} <= set(inspect.signature(Warp.__init__).parameters):
        pytest.skip(
            "Warp does not take 'tls' and 'token_env' yet (warp.py change pending); "
            "this test runs as soon as it does"
        )
    node = {
        "name": "remote",
        "mark": "warp",
        "configuration": {
            "target": target,
            "node": {"mark": "identity"},
            "open_timeout": OPEN_TIMEOUT_S,
            **security,
        },
    }
    inputs = [ObjectPayload({"seq": i}) for i in range(count)]
    out = run_pipeline([node], [], inputs=inputs, feeds=["remote"], collects=["remote"], timeout=30)
    assert out.result.state == "done", out.result
    return [dict(m.payload) for m in out.messages]


def fontus(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fontus", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )


# -- TLS ----------------------------------------------------------------------------------
def test_describe_over_tls_trusts_the_server_through_the_given_ca(
    tls_server: LoopbackServer, pki: Pki
) -> None:
    d = describe(tls_server.target, TLSConfig(ca=pki.ca))
    assert [m.mark for m in d.marks] == ["identity"]


def test_a_session_over_tls_returns_every_message(tls_server: LoopbackServer, pki: Pki) -> None:
    assert session_round_trip(tls_server.target, TLSConfig(ca=pki.ca)) == [
        {"seq": 1},
        {"seq": 2},
        {"seq": 3},
    ]


def test_a_pipeline_through_a_warp_over_tls_returns_every_message(
    tls_server: LoopbackServer, pki: Pki
) -> None:
    got = warp_pipeline(tls_server.target, 20, tls={"ca": pki.ca})
    assert got == [{"seq": i} for i in range(20)]


def test_server_name_sets_the_name_checked_against_the_certificate(
    tls_server: LoopbackServer, pki: Pki
) -> None:
    assert describe(tls_server.target, TLSConfig(ca=pki.ca, server_name="localhost"))
    with pytest.raises(RemoteUnavailable):
        describe(tls_server.target, TLSConfig(ca=pki.ca, server_name="elsewhere.fontus.test"))


def test_a_plaintext_client_cannot_talk_to_a_tls_server(tls_server: LoopbackServer) -> None:
    with pytest.raises(RemoteUnavailable, match="server unavailable"):
        describe(tls_server.target)
    with pytest.raises(RemoteUnavailable, match="server unavailable"):
        session_round_trip(tls_server.target)


def test_a_client_trusting_another_ca_refuses_the_server(
    tls_server: LoopbackServer, pki: Pki
) -> None:
    with pytest.raises(RemoteUnavailable):
        describe(tls_server.target, TLSConfig(ca=pki.other_ca))


# -- mutual TLS -----------------------------------------------------------------------------
def test_mutual_tls_accepts_a_client_certificate_from_the_client_ca(
    mtls_server: LoopbackServer, pki: Pki
) -> None:
    tls = TLSConfig(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    assert describe(mtls_server.target, tls).hosting
    assert session_round_trip(mtls_server.target, tls, count=2) == [{"seq": 1}, {"seq": 2}]


def test_mutual_tls_refuses_a_client_without_a_certificate(
    mtls_server: LoopbackServer, pki: Pki
) -> None:
    with pytest.raises(RemoteUnavailable):
        describe(mtls_server.target, TLSConfig(ca=pki.ca))
    with pytest.raises(RemoteUnavailable):
        session_round_trip(mtls_server.target, TLSConfig(ca=pki.ca))


def test_mutual_tls_refuses_a_client_certificate_from_another_ca(
    mtls_server: LoopbackServer, pki: Pki
) -> None:
    tls = TLSConfig(ca=pki.ca, cert=pki.stranger_cert, key=pki.stranger_key)
    with pytest.raises(RemoteUnavailable):
        describe(mtls_server.target, tls)
    with pytest.raises(RemoteUnavailable):
        session_round_trip(mtls_server.target, tls)


# -- tokens -----------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["old", "new"])
def test_every_token_of_the_token_file_is_accepted_for_rotation(
    token_server: LoopbackServer, tokens: Tokens, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CLIENT_TOKEN_ENV, getattr(tokens, which))
    assert describe(token_server.target, token_env=CLIENT_TOKEN_ENV).marks
    assert session_round_trip(token_server.target, token_env=CLIENT_TOKEN_ENV, count=1) == [
        {"seq": 1}
    ]


def test_a_call_without_a_token_is_refused_unauthenticated(token_server: LoopbackServer) -> None:
    for call in (describe, session_round_trip):
        with pytest.raises(RemoteRefused) as caught:
            call(token_server.target)
        text = str(caught.value)
        assert "UNAUTHENTICATED" in text and "missing bearer token" in text, text
        assert "check the token" in text


def test_a_wrong_token_is_refused_without_echoing_it(
    token_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(16)
    monkeypatch.setenv(CLIENT_TOKEN_ENV, wrong)
    for call in (describe, session_round_trip):
        with pytest.raises(RemoteRefused) as caught:
            call(token_server.target, token_env=CLIENT_TOKEN_ENV)
        text = str(caught.value)
        assert "UNAUTHENTICATED" in text and "not accepted" in text, text
        assert wrong not in text


def test_health_checks_need_no_token(token_server: LoopbackServer) -> None:
    with grpc.insecure_channel(token_server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "fontus.v1.Remote"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_the_server_never_prints_a_token(
    token_server: LoopbackServer, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(16)
    for token in (tokens.old, wrong):
        monkeypatch.setenv(CLIENT_TOKEN_ENV, token)
        try:
            session_round_trip(token_server.target, token_env=CLIENT_TOKEN_ENV, count=1)
        except RemoteRefused:
            pass
    log = token_server.log()
    assert "refused a call to /fontus.v1.Remote/Session" in log  # the refusal itself is logged
    for secret in (tokens.old, tokens.new, wrong):
        assert secret not in log


# -- everything at once ---------------------------------------------------------------------
def test_mutual_tls_and_a_token_from_the_environment_work_together(
    full_server: LoopbackServer, pki: Pki, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CLIENT_TOKEN_ENV, tokens.new)
    tls = TLSConfig(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    assert session_round_trip(full_server.target, tls, CLIENT_TOKEN_ENV, count=2) == [
        {"seq": 1},
        {"seq": 2},
    ]
    monkeypatch.setenv(CLIENT_TOKEN_ENV, "not-" + tokens.new)
    with pytest.raises(RemoteRefused, match="UNAUTHENTICATED"):
        session_round_trip(full_server.target, tls, CLIENT_TOKEN_ENV)


def test_a_pipeline_through_a_warp_with_mutual_tls_and_a_token(
    full_server: LoopbackServer, pki: Pki, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CLIENT_TOKEN_ENV, tokens.old)
    tls = {"ca": pki.ca, "cert": pki.client_cert, "key": pki.client_key}
    got = warp_pipeline(full_server.target, 50, tls=tls, token_env=CLIENT_TOKEN_ENV)
    assert got == [{"seq": i} for i in range(50)]


def test_a_pipeline_with_a_wrong_token_fails_at_start_with_unauthenticated(
    full_server: LoopbackServer, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CLIENT_TOKEN_ENV, "not-a-token")
    tls = {"ca": pki.ca, "cert": pki.client_cert, "key": pki.client_key}
    with pytest.raises(NodeError, match="UNAUTHENTICATED"):
        warp_pipeline(full_server.target, 5, tls=tls, token_env=CLIENT_TOKEN_ENV)


def test_fontus_remote_describe_takes_tls_and_token_options(
    full_server: LoopbackServer, pki: Pki, tokens: Tokens
) -> None:
    security = [
        "--tls-ca",
        pki.ca,
        "--tls-cert",
        pki.client_cert,
        "--tls-key",
        pki.client_key,
        "--token-env",
        CLIENT_TOKEN_ENV,
    ]
    ok = fontus(
        "remote", "describe", full_server.target, *security, env={CLIENT_TOKEN_ENV: tokens.new}
    )
    assert ok.returncode == 0, ok.stderr
    assert "identity" in ok.stdout
    refused = fontus(
        "remote",
        "stats",
        full_server.target,
        *security,
        env={CLIENT_TOKEN_ENV: "nope-" + tokens.new},
    )
    assert refused.returncode == 1
    assert "UNAUTHENTICATED" in refused.stderr and tokens.new not in refused.stderr


# -- refusing to start ------------------------------------------------------------------------
def test_serve_refuses_a_non_loopback_address_without_tls_or_insecure() -> None:
    # The refusal comes from validating the configuration, before anything is bound.
    result = fontus("serve", "--allow", "identity", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--insecure" in result.stderr and "without TLS" in result.stderr


@pytest.mark.parametrize(
    ("flag", "problem", "expected"),
    [
        ("--tls-cert", "missing", "No such file"),
        ("--tls-cert", "not pem", "not a PEM file"),
        ("--tls-key", "other key", "does not belong to --tls-cert"),
        ("--tls-client-ca", "garbage pem", "no valid PEM certificate"),
    ],
)
def test_serve_names_the_flag_and_file_of_a_bad_certificate(
    pki: Pki, tmp_path: Path, flag: str, problem: str, expected: str
) -> None:
    files = {"--tls-cert": pki.server_cert, "--tls-key": pki.server_key, "--tls-client-ca": pki.ca}
    bad = tmp_path / "bad.pem"
    if problem == "not pem":
        bad.write_text("hello\n")
    elif problem == "other key":
        bad = Path(pki.stranger_key)
    elif problem == "garbage pem":
        bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    files[flag] = str(bad)
    args = [arg for pair in files.items() for arg in pair]
    result = fontus("serve", "--allow", "identity", "--port", "0", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{flag} {bad}" in result.stderr and expected in result.stderr, result.stderr
