"""What a server answers besides sessions: Describe and Stats (``fontus.remote.admin``),
standard gRPC health, and server reflection."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from fontus.core import Pipeline, RemoteUnavailable
from fontus.nodes import PROCESSOR_MARKS
from fontus.remote.admin import describe, server_stats
from fontus.testing import LoopbackServer

pytestmark = pytest.mark.timeout(60)

#: A unary call to a local server answers in milliseconds; this only bounds a broken one.
CALL_TIMEOUT_S = 10.0
#: What the catalogue server allows (conftest's PROCESSORS), in its --allow order.
PROCESSORS = PROCESSOR_MARKS
SERVICE = "fontus.v1.Remote"


@pytest.fixture
def channel(catalogue_server: LoopbackServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(catalogue_server.target) as chan:
        yield chan


# -- Describe and Stats ------------------------------------------------------------------


def test_describe_lists_the_catalogue_marks_with_their_arguments(
    catalogue_server: LoopbackServer,
) -> None:
    d = describe(catalogue_server.target, CALL_TIMEOUT_S)
    assert d.hosting == "catalogue" and d.session_mode == "isolated"
    assert d.server_version
    assert tuple(m.mark for m in d.marks) == PROCESSORS
    assert all(m.kind == "proc" and m.summary for m in d.marks)
    marks = {m.mark: m for m in d.marks}
    (factor,) = marks["gain"].arguments
    assert (factor.name, factor.type, factor.default, factor.required) == (
        "factor",
        "float",
        1.0,
        False,
    )
    assert factor.help
    assert [a.name for a in marks["energy_vad"].arguments] == ["threshold_db", "min_speech_ms"]
    assert marks["identity"].arguments == ()
    assert d.max_window >= 1 and d.max_sessions >= 1 and d.max_message_bytes > 0
    assert d.value_formats == ("msgpack",)


def test_describe_of_a_one_node_server_names_its_node(node_server: LoopbackServer) -> None:
    d = describe(node_server.target, CALL_TIMEOUT_S)
    assert d.hosting == "node"
    assert [m.mark for m in d.marks] == ["gain"]


def test_stats_count_the_requests_of_a_session(
    catalogue_server: LoopbackServer, build_pipeline: Callable[..., Pipeline]
) -> None:
    before = server_stats(catalogue_server.target, CALL_TIMEOUT_S)
    pipeline = build_pipeline(
        [
            {"name": "src", "mark": "counter", "configuration": {"count": 7}},
            {
                "name": "fe",
                "mark": "fail_every",
                "configuration": {"k": 3},
                "remote": catalogue_server.target,
            },
            {"name": "out", "mark": "collect"},
        ],
        [("src", "fe"), ("fe", "out")],
    )
    result = pipeline.run(timeout=30.0)
    assert result.state == "done", result.error
    extra = result.stats["fe"].extra
    assert extra is not None
    stats = server_stats(catalogue_server.target, CALL_TIMEOUT_S)
    assert stats.uptime_s > 0
    assert stats.sessions_total == before.sessions_total + 1
    assert stats.requests_total == before.requests_total + 7
    assert stats.failures_total == before.failures_total + 2
    (row,) = [n for n in stats.nodes if n["session"] == extra["session"]]
    assert (row["node"], row["mark"], row["active"]) == ("fe", "fail_every", False)
    assert (row["requests"], row["outputs"], row["failures"]) == (7, 5, 2)
    assert row["client"].startswith("fe@")
    assert row["bytes_in"] > 0 and row["bytes_out"] > 0


def test_admin_calls_to_a_port_where_nothing_listens_fail_fast_saying_so() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: refused, and nobody can take it
        target = f"127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(RemoteUnavailable) as caught:
            describe(target, CALL_TIMEOUT_S)
    assert target in str(caught.value)
    assert "Connection refused" in str(caught.value)


# -- health ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "service",
    ["", SERVICE, *(f"{SERVICE}/{mark}" for mark in PROCESSORS)],
    ids=["overall", "service", *PROCESSORS],
)
def test_health_check_says_serving(channel: grpc.Channel, service: str) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT_S)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_of_a_mark_not_hosted_is_not_found(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Check(
            health_pb2.HealthCheckRequest(service=f"{SERVICE}/counter"), timeout=CALL_TIMEOUT_S
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


# -- reflection --------------------------------------------------------------------------


def reflect(channel: grpc.Channel, **request: str) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    (reply,) = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=CALL_TIMEOUT_S
    )
    return reply


def test_reflection_lists_the_remote_health_and_reflection_services(
    channel: grpc.Channel,
) -> None:
    reply = reflect(channel, list_services="")
    names = {s.name for s in reply.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


def test_reflection_describes_the_remote_service_methods(channel: grpc.Channel) -> None:
    reply = reflect(channel, file_containing_symbol=SERVICE)
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(data)
        for data in reply.file_descriptor_response.file_descriptor_proto
    ]
    services = {f"{f.package}.{s.name}": s for f in files for s in f.service}
    methods = {m.name: m for m in services[SERVICE].method}
    assert set(methods) == {"Session", "Describe", "Stats"}
    assert methods["Session"].client_streaming and methods["Session"].server_streaming
