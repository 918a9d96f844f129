"""Fontus messages to and from Juturna's ``ProtoMessage``, as Juturna 2.1.1 writes and reads it.

The payload travels in a ``google.protobuf.Any`` whose type URL names one of
``juturna.proto.payloads.{Audio,Image,Video,Bytes,Object}ProtoPayload`` or
``BatchProto``.  Arrays are raw C-order bytes with a numpy dtype name
(``"float32"``); audio carries its shape, images are rebuilt from
height/width/depth (depth 1 → ``(height, width)``, else ``(height, width,
depth)``).  Objects and ``meta`` go through ``google.protobuf.Struct`` (see
``_struct`` for what that loses).

Conversions made on decoding, so that what real Juturna nodes send is read:

* audio whose ``channels`` is unset (0 or Juturna's default -1) takes its
  channel count from the shape; one-dimensional audio with ``channels > 1``
  is interleaved samples and is reshaped to ``(samples, channels)``;
* image ``depth`` -1 (Juturna's default, which its reader resolves with a
  numpy ``-1`` reshape) is inferred from the byte length;
* a negative ``frames_per_second`` (Juturna's default -1) reads as 0.0, unknown.

And on encoding: the message ``id`` is an int32 on this wire, so an id outside
the int32 range travels as its low 31 bits (Juturna's server replaces request
ids by its own tracking ids anyway; correlation is by envelope).  Control and
config payloads, and plugin payloads, have no Juturna message and are refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ...core._values import EMPTY, FrozenDict
from ...core.errors import PayloadError, WireError
from ...core.message import Message
from ...core.payloads import (
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
from .._arrays import check_dtype, check_shape, normalise
from .._limits import DEFAULT_LIMITS, WireLimits
from .._wire.juturna import payloads_pb2 as pb
from ._struct import fill_struct, read_struct

__all__ = ["message_from_proto", "message_to_proto"]

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1


# -- encoding ----------------------------------------------------------------------
def message_to_proto(message: Message[Any]) -> Any:
    """The ``ProtoMessage`` Juturna reads for ``message``; raises ``WireError`` if it cannot travel."""
    target = pb.ProtoMessage()
    _fill_message(message, target, "message")
    return target


def _fill_message(message: Message[Any], target: Any, path: str) -> None:
    target.id = message.id if _INT32_MIN <= message.id <= _INT32_MAX else message.id & _INT32_MAX
    target.created_at = message.created_at
    target.creator = message.creator
    target.version = _int32(message.version, f"{path}.version")
    if message.meta:
        fill_struct(message.meta, target.meta, f"{path}.meta")
    if message.timers:
        try:
            target.timers.update(message.timers)
        except (TypeError, ValueError):
            raise WireError(
                f"{path}.timers: every timer must be str -> seconds (a number)"
            ) from None
    target.payload.Pack(_payload_proto(message.payload, f"{path}.payload"))


def _payload_proto(payload: Payload, path: str) -> Any:
    if isinstance(payload, AudioPayload):
        dtype, data, shape = _array_bytes(payload.audio, f"{path}.audio")
        return pb.AudioProtoPayload(
            audio_data=data,
            dtype=dtype,
            shape=shape,
            sampling_rate=_int32(payload.sampling_rate, f"{path}.sampling_rate"),
            channels=_int32(payload.channels, f"{path}.channels"),
            start=payload.start,
            end=payload.end,
            audio_format=payload.audio_format,
        )
    if isinstance(payload, ImagePayload):
        return _image_proto(payload, path)
    if isinstance(payload, VideoPayload):
        return pb.VideoProtoPayload(
            frames=[_image_proto(f, f"{path}.frames[{i}]") for i, f in enumerate(payload.frames)],
            frames_per_second=payload.frames_per_second,
            start=payload.start,
            end=payload.end,
            codec=payload.codec,
        )
    if isinstance(payload, BytesPayload):
        return pb.BytesProtoPayload(cnt=payload.cnt, size=len(payload.cnt))
    if isinstance(payload, ObjectPayload):
        target = pb.ObjectProtoPayload()
        fill_struct(payload.data, target.data, path)
        return target
    if isinstance(payload, Batch):
        batch = pb.BatchProto()
        for i, inner in enumerate(payload.messages):
            _fill_message(inner, batch.messages.add(), f"{path}[{i}]")
        return batch
    if isinstance(payload, ControlPayload | ConfigPayload):
        raise WireError(
            f"{path}: {type(payload).__name__} cannot travel on the Juturna wire, which has no "
            "control or config message; Juturna peers take configuration in the envelope"
        )
    raise WireError(
        f"{path}: {type(payload).__name__} cannot travel on the Juturna wire; it carries only "
        "audio, image, video, bytes, object and batch payloads"
    )


def _image_proto(payload: ImagePayload, path: str) -> Any:
    dtype, data, _ = _array_bytes(payload.image, f"{path}.image")
    return pb.ImageProtoPayload(
        image_data=data,
        dtype=dtype,
        width=_int32(payload.width, f"{path}.width"),
        height=_int32(payload.height, f"{path}.height"),
        depth=_int32(payload.depth, f"{path}.depth"),
        pixel_format=payload.pixel_format,
        timestamp=payload.timestamp,
    )


def _array_bytes(array: np.ndarray, path: str) -> tuple[str, bytes, tuple[int, ...]]:
    try:
        array = normalise(array)
    except WireError as exc:
        raise WireError(f"{path}: {exc}") from None
    # str(dtype) is the numpy name ("float32") that Juturna writes and np.dtype() reads back.
    return str(array.dtype), array.tobytes(), tuple(array.shape)


def _int32(value: int, path: str) -> int:
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise WireError(f"{path}: {value} is outside the int32 range the Juturna wire carries")
    return value


# -- decoding ----------------------------------------------------------------------
def message_from_proto(
    source: Any, *, ints: bool = False, limits: WireLimits = DEFAULT_LIMITS
) -> Message[Any]:
    """A frozen Fontus message from a ``ProtoMessage``; raises ``WireError`` naming the problem.

    Numbers in objects and ``meta`` arrive as floats; ``ints=True`` turns integral
    ones back into ints.  Arrays are read-only.
    """
    return _Reader(ints, limits).message(source, "message", 0)


class _Reader:
    __slots__ = ("ints", "limits")

    def __init__(self, ints: bool, limits: WireLimits) -> None:
        self.ints = ints
        self.limits = limits

    def message(self, source: Any, path: str, level: int) -> Message[Any]:
        if level > self.limits.max_depth:
            raise WireError(f"{path}: batches nested deeper than {self.limits.max_depth}")
        payload = self.payload(source.payload, f"{path}.payload", level)
        meta = (
            read_struct(source.meta, f"{path}.meta", ints=self.ints, limits=self.limits)
            if source.meta.fields
            else EMPTY
        )
        return Message.frozen_from_parts(
            payload,
            id=source.id,
            created_at=source.created_at,
            creator=source.creator,
            version=source.version,
            meta=meta,
            timers=FrozenDict.adopt(dict(source.timers)) if source.timers else EMPTY,
        )

    def payload(self, source: Any, path: str, level: int) -> Payload:
        type_url = source.type_url
        if not type_url:
            raise WireError(f"{path}: empty (no type_url); a Fontus message always has a payload")
        name = type_url.rpartition("/")[2]
        entry = _READERS.get(name)
        if entry is None:
            if name == "juturna.proto.payloads.CompressedProtoPayload":
                raise WireError(
                    f"{path}: CompressedProtoPayload is declared by Juturna's schema but no "
                    "Juturna release writes it, so its layout is not settled; send it uncompressed"
                )
            raise WireError(
                f"{path}: unknown type_url {type_url!r}; expected one of "
                + ", ".join(sorted(n.rpartition(".")[2] for n in _READERS))
            )
        cls, read = entry
        proto = cls()
        try:
            proto.ParseFromString(source.value)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise WireError(f"{path}: malformed {cls.DESCRIPTOR.name}: {exc}") from None
        try:
            return read(self, proto, path, level)
        except PayloadError as exc:
            raise WireError(f"{path}: {exc}") from None

    def audio(self, s: Any, path: str, level: int) -> AudioPayload:
        array = _array(s.audio_data, s.dtype, s.shape, self.limits, f"{path}.audio_data")
        channels = s.channels
        if channels <= 0:
            channels = int(array.shape[1]) if array.ndim == 2 else 1
        elif array.ndim == 1 and channels > 1:
            if array.size % channels:
                raise WireError(
                    f"{path}: {array.size} interleaved samples do not divide into {channels} channels"
                )
            array = array.reshape(-1, channels)
        return AudioPayload(array, s.sampling_rate, channels, s.audio_format, s.start, s.end)

    def image(self, s: Any, path: str, level: int = 0) -> ImagePayload:
        height, width, depth = s.height, s.width, s.depth
        if height < 0 or width < 0 or depth < -1:
            raise WireError(
                f"{path}: height={height}, width={width}, depth={depth}; "
                "height and width must be >= 0 and depth >= -1"
            )
        dtype = check_dtype(s.dtype, f"{path}.dtype")
        data = s.image_data
        if depth == -1:
            pixels = height * width
            if not pixels or len(data) % (pixels * dtype.itemsize):
                raise WireError(
                    f"{path}: depth -1 cannot be inferred: {len(data)} bytes of {dtype.name} "
                    f"for height={height}, width={width}"
                )
            depth = len(data) // (pixels * dtype.itemsize)
        shape = (height, width) if depth == 1 else (height, width, depth)
        array = _array(data, dtype.str, shape, self.limits, f"{path}.image_data")
        return ImagePayload(array, width, height, depth, s.pixel_format, s.timestamp)

    def video(self, s: Any, path: str, level: int) -> VideoPayload:
        frames = tuple(self.image(f, f"{path}.frames[{i}]") for i, f in enumerate(s.frames))
        fps = s.frames_per_second if s.frames_per_second >= 0 else 0.0
        return VideoPayload(frames, fps, s.codec, s.start, s.end)

    def bytes_(self, s: Any, path: str, level: int) -> BytesPayload:
        data = s.cnt
        if len(data) > self.limits.max_array_bytes:
            raise WireError(
                f"{path}.cnt: {len(data)} bytes, over the limit of {self.limits.max_array_bytes}"
            )
        if s.size and s.size != len(data):
            raise WireError(f"{path}.size says {s.size} bytes but cnt holds {len(data)}")
        return BytesPayload(data)

    def object_(self, s: Any, path: str, level: int) -> ObjectPayload:
        return ObjectPayload(read_struct(s.data, path, ints=self.ints, limits=self.limits, depth=1))

    def batch(self, s: Any, path: str, level: int) -> Batch:
        return Batch(
            tuple(self.message(m, f"{path}[{i}]", level + 1) for i, m in enumerate(s.messages))
        )


def _array(data: bytes, dtype_name: str, shape: Any, limits: WireLimits, path: str) -> np.ndarray:
    dtype = check_dtype(dtype_name, path)
    dims = check_shape(shape, dtype.itemsize, limits, path)
    expected = math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        raise WireError(
            f"{path}: {len(data)} bytes do not match dtype {dtype.name} x shape {dims} "
            f"= {expected} bytes"
        )
    # A view of the received bytes object: no copy, and read-only because bytes are.
    return np.frombuffer(data, dtype=dtype).reshape(dims)


_Read = Callable[[_Reader, Any, str, int], Payload]
_READERS: dict[str, tuple[Any, _Read]] = {
    "juturna.proto.payloads.AudioProtoPayload": (pb.AudioProtoPayload, _Reader.audio),
    "juturna.proto.payloads.ImageProtoPayload": (pb.ImageProtoPayload, _Reader.image),
    "juturna.proto.payloads.VideoProtoPayload": (pb.VideoProtoPayload, _Reader.video),
    "juturna.proto.payloads.BytesProtoPayload": (pb.BytesProtoPayload, _Reader.bytes_),
    "juturna.proto.payloads.ObjectProtoPayload": (pb.ObjectProtoPayload, _Reader.object_),
    "juturna.proto.payloads.BatchProto": (pb.BatchProto, _Reader.batch),
}
