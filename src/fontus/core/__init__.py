"""The in-process core: messages, payloads, nodes, pipelines.  Never imports grpc."""

from .arguments import Argument
from .config import (
    InboxConfig,
    LinkConfig,
    NodeConfig,
    PipelineConfig,
    SyncConfig,
    load_pipeline,
    parse_pipeline,
)
from .draft import Draft
from .errors import (
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
from .message import Message
from .node import Node, NodeHost, Sink, Source
from .payloads import (
    AudioPayload,
    Batch,
    BytesPayload,
    ConfigPayload,
    ControlPayload,
    ImagePayload,
    ObjectPayload,
    Payload,
    VideoPayload,
)
from .pipeline import Pipeline, PipelineResult
from .registry import NodeSpec, Registry, default_registry
from .resources import clear_resources, release_resource, shared_resource
from .stats import NodeStatsSnapshot
from .validate import validate_pipeline

__all__ = [
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
