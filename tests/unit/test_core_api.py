"""The public API is a visible decision, and the core stays free of gRPC."""

from __future__ import annotations

import subprocess
import sys

import fontus
import fontus.core
from fontus.core import (
    ConfigError,
    FontusError,
    FrozenMessageError,
    GraphError,
    NodeError,
    PayloadError,
    PipelineInvalid,
    PluginLoadError,
    RemoteError,
    RemoteRefused,
    RemoteTimeout,
    RemoteUnavailable,
    WireError,
)

CORE_API = [
    "Argument",
    "AudioPayload",
    "Batch",
    "BytesPayload",
    "ConfigError",
    "ConfigPayload",
    "ControlPayload",
    "Draft",
    "FontusError",
    "FrozenMessageError",
    "GraphError",
    "ImagePayload",
    "InboxConfig",
    "LinkConfig",
    "Message",
    "Node",
    "NodeConfig",
    "NodeError",
    "NodeHost",
    "NodeSpec",
    "NodeStatsSnapshot",
    "ObjectPayload",
    "Payload",
    "PayloadError",
    "Pipeline",
    "PipelineConfig",
    "PipelineInvalid",
    "PipelineResult",
    "PluginLoadError",
    "Registry",
    "RemoteError",
    "RemoteRefused",
    "RemoteTimeout",
    "RemoteUnavailable",
    "Sink",
    "Source",
    "SyncConfig",
    "VideoPayload",
    "WireError",
    "clear_resources",
    "default_registry",
    "load_pipeline",
    "parse_pipeline",
    "release_resource",
    "shared_resource",
    "validate_pipeline",
]


def test_core_all_is_the_pinned_sorted_list() -> None:
    assert sorted(fontus.core.__all__) == CORE_API
    assert list(fontus.core.__all__) == CORE_API


def test_package_all_is_the_core_api_plus_version() -> None:
    assert sorted(fontus.__all__) == sorted([*CORE_API, "__version__"])


def test_every_exported_name_exists() -> None:
    for name in fontus.core.__all__:
        assert getattr(fontus.core, name) is getattr(fontus, name)


def test_importing_the_core_does_not_import_grpc_or_protobuf() -> None:
    code = (
        "import sys, fontus.core, fontus; "
        "bad = sorted(m for m in sys.modules "
        "if m == 'grpc' or m.startswith(('grpc.', 'google.protobuf'))); "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""


def test_exception_tree_is_rooted_at_fontus_error() -> None:
    assert issubclass(PipelineInvalid, ConfigError)
    assert issubclass(PluginLoadError, NodeError)
    for cls in (RemoteUnavailable, RemoteTimeout, RemoteRefused, WireError):
        assert issubclass(cls, RemoteError)
    for cls in (ConfigError, PayloadError, FrozenMessageError, GraphError, NodeError, RemoteError):
        assert issubclass(cls, FontusError)
    assert issubclass(PayloadError, ValueError)
    assert issubclass(WireError, ValueError)
    assert issubclass(FrozenMessageError, AttributeError)


def test_node_error_names_the_node() -> None:
    err = NodeError("vad", "update() raised ValueError: x")
    assert err.node == "vad"
    assert str(err) == "node 'vad': update() raised ValueError: x"


def test_pipeline_invalid_lists_every_problem() -> None:
    err = PipelineInvalid(["a is wrong", "b is wrong"], "demo.yaml")
    assert err.problems == ("a is wrong", "b is wrong")
    assert str(err) == "demo.yaml: 2 problems:\n  - a is wrong\n  - b is wrong"
    assert str(PipelineInvalid(["x"])) == "pipeline: 1 problem:\n  - x"
