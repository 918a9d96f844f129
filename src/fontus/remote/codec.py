"""The codec: the one module that translates Fontus messages to and from ``fontus.v1``.

::

    data = encode_message(message)      # bytes of a fontus.v1.Packet
    again = decode_message(data)        # equal to message; arrays are read-only views

Everything a message holds crosses exactly: payloads of every kind, ``meta``
and object values as a typed value tree (an int stays an int, bytes stay
bytes, arrays stay arrays), ``timers``, ids and versions.  Arrays are copied
once when encoding and not at all when decoding (see ``_blobs``).  Malformed
input raises :class:`~fontus.core.errors.WireError` naming the field and the
problem.

Plugins add payload types with :func:`register_payload`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..core._values import EMPTY, FrozenDict
from ..core.errors import PayloadError, WireError
from ..core.message import Message
from ..core.payloads import (
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
from ._arrays import NO_COMPRESSION, CompressionConfig, decode_array, encode_array
from ._blobs import BlobWriter, join_with_blobs, split_blobs
from ._limits import DEFAULT_LIMITS, INT64_MAX, INT64_MIN, WireLimits
from ._packed import pack_tree
from ._tree import read_tree, write_tree
from ._wire.v1 import payloads_pb2 as pb

__all__ = [
    "WireDecoder",
    "WireEncoder",
    "decode_message",
    "encode_message",
    "register_payload",
]

#: Byte strings at least this long travel as blobs (no copy into the protobuf head).
BLOB_BYTES_THRESHOLD = 4096
#: Attribute of a decoded ObjectPayload holding its array-free value tree (see WireDecoder.payload).
_WIRE = "_fontus_wire"

ToFields = Callable[[Any], Mapping[str, Any]]
FromFields = Callable[[Mapping[str, Any]], Payload]
_custom_by_kind: dict[str, tuple[type[Payload], ToFields, FromFields]] = {}
_custom_by_type: dict[type[Payload], tuple[str, ToFields]] = {}


def register_payload(
    cls: type[Payload],
    *,
    kind: str | None = None,
    to_fields: ToFields | None = None,
    from_fields: FromFields | None = None,
) -> None:
    """Let a plugin payload type cross the wire without editing the codec.

    By default a dataclass payload travels as its fields (each a value the
    value tree carries: None, bool, int, float, str, bytes, arrays, lists,
    mappings) and is rebuilt with ``cls(**fields)``.
    """
    kind = kind or cls.kind
    if kind in ("audio", "image", "video", "bytes", "object", "batch", "control", "config"):
        raise ValueError(f"payload kind {kind!r} is built in; choose another kind name")
    if to_fields is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(
                f"{cls.__name__}: pass to_fields/from_fields for a non-dataclass payload"
            )

        def to_fields(payload: Any) -> Mapping[str, Any]:
            return {f.name: getattr(payload, f.name) for f in dataclasses.fields(payload)}

    build: FromFields = from_fields or (lambda fields: cls(**fields))
    _custom_by_kind[kind] = (cls, to_fields, build)
    _custom_by_type[cls] = (kind, to_fields)


class WireEncoder:
    """Fills protobuf heads and collects blobs; one per packet or frame."""

    __slots__ = ("blobs", "compression", "pack_trees")

    def __init__(
        self, compression: CompressionConfig = NO_COMPRESSION, pack_trees: bool = False
    ) -> None:
        self.blobs = BlobWriter()
        self.compression = compression
        #: Write trees without arrays in their MessagePack form (only when the reader
        #: said it reads it: see ``value_formats`` in Open / Opened).
        self.pack_trees = pack_trees

    def finish(self, head: Any) -> bytes:
        """Serialize ``head`` and append the blobs collected while filling it."""
        return join_with_blobs(head.SerializeToString(), self.blobs)

    # -- values --------------------------------------------------------------
    def value(self, value: Any, target: Any, path: str) -> None:
        """Write any value into the empty ``fontus.v1.Value`` ``target``."""
        if self.pack_trees:
            packed = pack_tree(value)
            if packed is not None:
                target.msgpack = packed
                return
        write_tree(value, target, path, self.blobs, self.compression)

    def value_map(self, mapping: Mapping[str, Any], target: Any, path: str) -> None:
        """Write a mapping into the empty ``fontus.v1.Value`` ``target`` (a map field)."""
        if type(mapping) is not FrozenDict and not isinstance(mapping, Mapping):
            raise WireError(f"{path}: expected a mapping, got {type(mapping).__name__}")
        self.value(mapping, target, path)

    # -- payloads and messages ---------------------------------------------------
    def message(self, message: Message[Any], target: Any) -> None:
        if not INT64_MIN <= message.id <= INT64_MAX:
            raise WireError(f"message id {message.id} is outside the int64 range")
        if not INT64_MIN <= message.version <= INT64_MAX:
            raise WireError(f"message version {message.version} is outside the int64 range")
        try:
            target.id = message.id
            target.created_at = message.created_at
            target.creator = message.creator
            target.version = message.version
            # A frozen message's maps are FrozenDicts: their dicts are read in C.
            meta, timers = message.meta, message.timers
            if meta._data if type(meta) is FrozenDict else meta:
                self.value_map(meta, target.meta, "meta")
            if type(timers) is FrozenDict:
                timers = timers._data
            if timers:
                # Key by key: the protobuf map's update() is Mapping's, in Python (with
                # an isinstance through ABCMeta).
                into = target.timers
                for name, seconds in timers.items():
                    into[name] = seconds
        except WireError:
            raise
        except (TypeError, ValueError) as exc:  # protobuf refused a value, e.g. a lone surrogate
            raise WireError(f"message {message.id}: cannot encode: {exc}") from None
        self.payload(message.payload, target.payload)

    def payload(self, payload: Payload, target: Any) -> None:
        try:
            self._payload(payload, target)
        except WireError:
            raise
        except (TypeError, ValueError) as exc:  # protobuf refused a value, e.g. an int32 overflow
            raise WireError(f"payload {payload.kind}: cannot encode: {exc}") from None

    def _payload(self, payload: Payload, target: Any) -> None:
        if isinstance(payload, AudioPayload):
            t = target.audio
            encode_array(payload.audio, t.audio, self.blobs, self.compression)
            t.sampling_rate = payload.sampling_rate
            t.channels = payload.channels
            t.audio_format = payload.audio_format
            t.start = payload.start
            t.end = payload.end
        elif isinstance(payload, ImagePayload):
            self._image(payload, target.image)
        # (ObjectPayload is a Mapping: an isinstance against it goes through ABCMeta, in
        # Python; the other payload classes are plain)
        elif type(payload) is ObjectPayload or isinstance(payload, ObjectPayload):
            target.object.SetInParent()
            wire = payload.__dict__.get(_WIRE)
            # Decoded here and unchanged (immutable): copy its wire form, unless it is
            # MessagePack and this encoder's reader did not say it reads that.
            if wire is not None and (self.pack_trees or not wire.msgpack):
                target.object.data.CopyFrom(wire)
            else:
                self.value(payload.data, target.object.data, "payload")  # (a FrozenDict)
        elif isinstance(payload, BytesPayload):
            if len(payload.cnt) >= BLOB_BYTES_THRESHOLD:
                target.bytes.blob = self.blobs.add(payload.cnt)
            else:
                target.bytes.inline = payload.cnt
        elif isinstance(payload, VideoPayload):
            t = target.video
            t.SetInParent()  # a video with no frames and default fields is still a video
            for frame in payload.frames:
                self._image(frame, t.frames.add())
            t.frames_per_second = payload.frames_per_second
            t.codec = payload.codec
            t.start = payload.start
            t.end = payload.end
        elif isinstance(payload, Batch):
            t = target.batch
            t.SetInParent()
            for inner in payload.messages:
                self.message(inner, t.messages.add())
        elif isinstance(payload, ControlPayload):
            target.control.signal = payload.signal
            self.value_map(payload.data, target.control.data, "control.data")
        elif isinstance(payload, ConfigPayload):
            target.config.SetInParent()
            self.value_map(payload.changes, target.config.changes, "config.changes")
        else:
            custom = _custom_by_type.get(type(payload))
            if custom is None:
                raise WireError(
                    f"payload type {type(payload).__name__} is not registered for the wire; "
                    "call fontus.remote.register_payload on it"
                )
            kind, to_fields = custom
            target.custom.kind = kind
            self.value_map(to_fields(payload), target.custom.fields, f"payload[{kind}]")

    def _image(self, payload: ImagePayload, t: Any) -> None:
        encode_array(payload.image, t.image, self.blobs, self.compression)
        t.width = payload.width
        t.height = payload.height
        t.depth = payload.depth
        t.pixel_format = payload.pixel_format
        t.timestamp = payload.timestamp


def _frozen_bytes(data: Any) -> bool:
    """A contiguous byte view of a numpy array that cannot be written (PartAssembler's)."""
    if type(data) is not memoryview or data.format != "B" or not data.c_contiguous:
        return False
    owner = data.obj
    return isinstance(owner, np.ndarray) and not owner.flags.writeable


class WireDecoder:
    """Turns protobuf heads back into Fontus objects, reading arrays from the frame's blobs."""

    __slots__ = ("blobs", "limits")

    def __init__(self, blobs: list[memoryview], limits: WireLimits = DEFAULT_LIMITS) -> None:
        self.blobs = blobs
        self.limits = limits

    @classmethod
    def parse(
        cls, data: bytes | memoryview, head: Any, limits: WireLimits = DEFAULT_LIMITS
    ) -> WireDecoder:
        """Split blobs off ``data`` and parse the rest into the empty protobuf ``head``.

        Arrays read from the frame share its memory, so it must not change: ``bytes``
        and a view of a read-only byte array (a frame assembled from parts) are read
        in place, anything else is copied first.
        """
        if type(data) is not bytes and not _frozen_bytes(data):
            if not isinstance(data, bytes | bytearray | memoryview):
                raise WireError(f"expected bytes, got {type(data).__name__}")
            data = bytes(data)
        head_bytes, blobs = split_blobs(data, limits)
        try:
            head.ParseFromString(head_bytes)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise WireError(f"malformed {head.DESCRIPTOR.name}: {exc}") from None
        return cls(blobs, limits)

    # -- values --------------------------------------------------------------
    # ``depth`` counts the containers (batches, maps, lists) around what is decoded:
    # one budget for every kind of nesting (see WireLimits.max_depth).
    def value(self, source: Any, path: str, depth: int) -> Any:
        """The value a ``fontus.v1.Value`` holds."""
        return read_tree(source, path, depth, self.blobs, self.limits, want_map=False)

    def value_map(self, source: Any, path: str, depth: int = 0) -> FrozenDict:
        """The mapping a map field (a ``fontus.v1.Value``) holds; empty when it holds nothing."""
        return read_tree(source, path, depth, self.blobs, self.limits, want_map=True)

    # -- payloads and messages -----------------------------------------------
    def message(self, source: Any, depth: int = 0) -> Message[Any]:
        if depth > self.limits.max_depth:
            raise WireError(f"batch: messages nested deeper than {self.limits.max_depth}")
        payload = self.payload(source.payload, depth)
        return Message.frozen_from_parts(
            payload,
            id=source.id,
            created_at=source.created_at,
            creator=source.creator,
            version=source.version,
            meta=self.value_map(source.meta, "meta", depth) if source.HasField("meta") else EMPTY,
            timers=_timers(source.timers) if source.timers else EMPTY,
        )

    def payload(self, source: Any, depth: int = 0) -> Payload:
        which = source.WhichOneof("kind")
        try:
            if which == "audio":
                s = source.audio
                return AudioPayload(
                    decode_array(s.audio, self.blobs, self.limits, "audio.audio"),
                    s.sampling_rate,
                    s.channels,
                    s.audio_format,
                    s.start,
                    s.end,
                )
            if which == "image":
                return self._image(source.image, "image")
            if which == "object":
                data = source.object.data
                payload = ObjectPayload.adopt(self.value_map(data, "payload", depth))
                if not data.arrays:  # (a MessagePack tree never holds arrays)
                    # Remember the wire form: forwarded unchanged (identity, routers, a
                    # message with new meta) the payload is re-encoded by copying it.
                    payload.__dict__[_WIRE] = data
                return payload
            if which == "bytes":
                return BytesPayload(self._bytes(source.bytes))
            if which == "video":
                s = source.video
                frames = tuple(self._image(f, f"video.frames[{i}]") for i, f in enumerate(s.frames))
                return VideoPayload(frames, s.frames_per_second, s.codec, s.start, s.end)
            if which == "batch":
                return Batch(tuple(self.message(m, depth + 1) for m in source.batch.messages))
            if which == "control":
                s = source.control
                return ControlPayload(s.signal, self.value_map(s.data, "control.data", depth))
            if which == "config":
                return ConfigPayload(self.value_map(source.config.changes, "config.changes", depth))
            if which == "custom":
                kind = source.custom.kind
                custom = _custom_by_kind.get(kind)
                if custom is None:
                    raise WireError(
                        f"payload: unknown payload kind {kind!r}; the plugin that defines it must be "
                        "installed and call fontus.remote.register_payload"
                    )
                fields = self.value_map(source.custom.fields, f"payload[{kind}]", depth)
                try:
                    return custom[2](dict(fields))
                except (TypeError, ValueError):
                    raise  # reported below, like the built-in kinds
                except Exception as exc:  # noqa: BLE001 - plugin code must not leak other errors
                    raise WireError(f"payload[{kind}]: cannot rebuild it: {exc!r}") from None
        except PayloadError as exc:
            raise WireError(f"payload {which}: {exc}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, WireError):
                raise
            raise WireError(f"payload {which}: {exc}") from None
        raise WireError("payload: no payload kind set (or a kind this version does not know)")

    def _image(self, s: Any, where: str) -> ImagePayload:
        return ImagePayload(
            decode_array(s.image, self.blobs, self.limits, f"{where}.image"),
            s.width,
            s.height,
            s.depth,
            s.pixel_format,
            s.timestamp,
        )

    def _bytes(self, s: Any) -> bytes:
        which = s.WhichOneof("data")
        if which == "blob":
            if s.blob >= len(self.blobs):
                raise WireError(
                    f"bytes: refers to blob {s.blob} but the frame carries {len(self.blobs)}"
                )
            data = self.blobs[s.blob]
            if len(data) > self.limits.max_array_bytes:
                raise WireError(
                    f"bytes: {len(data)} bytes, over the limit of {self.limits.max_array_bytes}"
                )
            return bytes(data)
        return bytes(s.inline)


def _timers(source: Any) -> FrozenDict:
    """A protobuf map of timers as a FrozenDict (``dict(map)`` goes through Python's
    ``Mapping.keys``: twice as slow)."""
    return FrozenDict.adopt({name: source[name] for name in source})


def encode_message(
    message: Message[Any],
    compression: CompressionConfig = NO_COMPRESSION,
    *,
    pack_trees: bool = False,
) -> bytes:
    """Encode one message as the bytes of a ``fontus.v1.Packet``.

    ``pack_trees`` writes its value trees (object data, meta) in their MessagePack
    form where they allow it; ``decode_message`` reads both forms.
    """
    encoder = WireEncoder(compression, pack_trees)
    packet = pb.Packet()
    encoder.message(message, packet.message)
    return encoder.finish(packet)


def decode_message(data: bytes, limits: WireLimits = DEFAULT_LIMITS) -> Message[Any]:
    """Decode the bytes of a ``fontus.v1.Packet``; raises ``WireError`` on malformed data."""
    packet = pb.Packet()
    decoder = WireDecoder.parse(data, packet, limits)
    if not packet.HasField("message"):
        raise WireError("packet: no message in it")
    return decoder.message(packet.message)
