"""Payload kinds: the data a message carries.

Every payload is a frozen dataclass whose constructor validates its fields and
says what is wrong.  Arrays are stored as read-only views (no copy) so that a
payload can be shared between nodes and threads safely; call ``.copy()`` on an
array before changing it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ._values import FrozenDict, freeze_value, readonly_array, thaw_value, values_equal
from .errors import PayloadError

if TYPE_CHECKING:
    from .message import Message

__all__ = [
    "AudioPayload",
    "Batch",
    "BytesPayload",
    "ConfigPayload",
    "ControlPayload",
    "ImagePayload",
    "ObjectPayload",
    "Payload",
    "VideoPayload",
    "payload_kind",
]


class Payload:
    """Base of every payload kind; ``kind`` is the short name used on the wire and in files."""

    kind: ClassVar[str] = "payload"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            values_equal(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )

    __hash__ = None  # type: ignore[assignment]

    def replace(self, **changes: Any) -> Payload:
        """Return a new payload of the same kind with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def payload_kind(payload: Payload) -> str:
    return payload.kind


def _array(name: str, value: Any, kind: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise PayloadError(f"{kind}: {name} must be a numpy array, got {type(value).__name__}")
    try:
        return readonly_array(value, f"{kind}.{name}")
    except TypeError as exc:
        raise PayloadError(str(exc)) from None


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _int(obj: object, kind: str, name: str, minimum: int) -> int:
    # numpy ints are accepted and stored as int, so that equality survives a round trip.
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise PayloadError(f"{kind}: {name} must be an int >= {minimum}, got {value!r}")
    _set(obj, name, int(value))
    return int(value)


def _float(obj: object, kind: str, name: str, minimum: float | None = None) -> float:
    # ints and numpy floats are stored as float, so that equality survives a round trip.
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise PayloadError(f"{kind}: {name} must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise PayloadError(f"{kind}: {name} must be >= {minimum}, got {value!r}")
    _set(obj, name, float(value))
    return float(value)


def _span(obj: object, kind: str) -> None:
    start = _float(obj, kind, "start")
    end = _float(obj, kind, "end")
    if end < start:
        raise PayloadError(f"{kind}: end ({end}) is before start ({start})")


@dataclass(frozen=True, eq=False)
class AudioPayload(Payload):
    """A chunk of audio.

    ``audio`` has shape ``(samples,)`` for mono or ``(samples, channels)``;
    ``start`` and ``end`` are seconds on the stream's clock.
    """

    kind: ClassVar[str] = "audio"

    audio: np.ndarray
    sampling_rate: int
    channels: int = 1
    audio_format: str = ""
    start: float = 0.0
    end: float = 0.0

    def __post_init__(self) -> None:
        audio = _array("audio", self.audio, "AudioPayload")
        _set(self, "audio", audio)
        _int(self, "AudioPayload", "sampling_rate", 1)
        _int(self, "AudioPayload", "channels", 1)
        if audio.ndim == 1:
            if self.channels != 1:
                raise PayloadError(
                    f"AudioPayload: audio has shape {audio.shape} (mono) but channels="
                    f"{self.channels}; pass shape (samples, {self.channels})"
                )
        elif audio.ndim == 2:
            if audio.shape[1] != self.channels:
                raise PayloadError(
                    f"AudioPayload: audio has shape {audio.shape} but channels={self.channels}; "
                    "the second axis must equal channels"
                )
        else:
            raise PayloadError(
                f"AudioPayload: audio must have 1 or 2 dimensions, got shape {audio.shape}"
            )
        _span(self, "AudioPayload")

    @property
    def samples(self) -> int:
        return int(self.audio.shape[0])

    @property
    def duration(self) -> float:
        return self.samples / self.sampling_rate


@dataclass(frozen=True, eq=False)
class ImagePayload(Payload):
    """One image: ``image`` has shape ``(height, width)`` when depth is 1, else ``(height, width, depth)``."""

    kind: ClassVar[str] = "image"

    image: np.ndarray
    width: int
    height: int
    depth: int = 3
    pixel_format: str = "rgb24"
    timestamp: float = 0.0

    def __post_init__(self) -> None:
        image = _array("image", self.image, "ImagePayload")
        _set(self, "image", image)
        for name in ("width", "height", "depth"):
            _int(self, "ImagePayload", name, 0)
        _float(self, "ImagePayload", "timestamp")
        expected: tuple[int, ...] = (self.height, self.width, self.depth)
        if image.ndim == 2 and self.depth == 1:
            expected = (self.height, self.width)
        if image.shape != expected:
            raise PayloadError(
                f"ImagePayload: image shape {image.shape} does not agree with "
                f"height={self.height}, width={self.width}, depth={self.depth}; expected {expected}"
            )

    @classmethod
    def from_array(
        cls, image: np.ndarray, pixel_format: str = "", timestamp: float = 0.0
    ) -> ImagePayload:
        """Build from an array, taking width, height and depth from its shape."""
        if not isinstance(image, np.ndarray):
            raise PayloadError(
                f"ImagePayload: image must be a numpy array, got {type(image).__name__}"
            )
        if image.ndim == 2:
            height, width = image.shape
            depth = 1
        elif image.ndim == 3:
            height, width, depth = image.shape
        else:
            raise PayloadError(
                f"ImagePayload: image must have 2 or 3 dimensions, got {image.shape}"
            )
        fmt = pixel_format or {1: "gray8", 3: "rgb24", 4: "rgba"}.get(depth, "")
        return cls(image, width, height, depth, fmt, timestamp)


@dataclass(frozen=True, eq=False)
class VideoPayload(Payload):
    """A group of frames; ``start`` and ``end`` are seconds on the stream's clock."""

    kind: ClassVar[str] = "video"

    frames: tuple[ImagePayload, ...]
    frames_per_second: float = 0.0
    codec: str = ""
    start: float = 0.0
    end: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.frames, list | tuple):
            raise PayloadError(
                f"VideoPayload: frames must be a list or tuple of ImagePayload, "
                f"got {type(self.frames).__name__}"
            )
        frames = tuple(self.frames)
        for i, frame in enumerate(frames):
            if not isinstance(frame, ImagePayload):
                raise PayloadError(
                    f"VideoPayload: frames[{i}] must be an ImagePayload, got {type(frame).__name__}"
                )
        _set(self, "frames", frames)
        _float(self, "VideoPayload", "frames_per_second", 0.0)
        _span(self, "VideoPayload")


@dataclass(frozen=True, eq=False)
class BytesPayload(Payload):
    """Opaque bytes."""

    kind: ClassVar[str] = "bytes"

    cnt: bytes

    def __post_init__(self) -> None:
        if isinstance(self.cnt, bytearray | memoryview):
            _set(self, "cnt", bytes(self.cnt))
        elif not isinstance(self.cnt, bytes):
            raise PayloadError(f"BytesPayload: cnt must be bytes, got {type(self.cnt).__name__}")

    @property
    def size(self) -> int:
        return len(self.cnt)


@dataclass(frozen=True, eq=False)
class ObjectPayload(Payload, Mapping[str, Any]):
    """A read-only mapping of JSON-like values; numpy arrays and bytes are allowed too.

    Nested mappings are frozen, lists become tuples and arrays read-only views.
    ``to_dict()`` gives a mutable deep copy.
    """

    kind: ClassVar[str] = "object"

    data: Mapping[str, Any] = field(default_factory=FrozenDict)

    def __post_init__(self) -> None:
        if not isinstance(self.data, Mapping):
            raise PayloadError(
                f"ObjectPayload: data must be a mapping with str keys, got {type(self.data).__name__}"
            )
        try:
            _set(self, "data", freeze_value(self.data, "ObjectPayload"))
        except TypeError as exc:
            raise PayloadError(str(exc)) from None

    @classmethod
    def adopt(cls, data: FrozenDict) -> ObjectPayload:
        """Wrap ``data``, already frozen (a decoder's FrozenDict), without checking it again."""
        payload = object.__new__(cls)
        payload.__dict__["data"] = data
        return payload

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def to_dict(self) -> dict[str, Any]:
        return dict(thaw_value(self.data))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectPayload):
            return NotImplemented
        return values_equal(self.data, other.data)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class Batch(Payload):
    """Several messages delivered together, e.g. by the ``zip`` and ``window`` synchronisers."""

    kind: ClassVar[str] = "batch"

    messages: tuple[Message, ...]

    def __post_init__(self) -> None:
        from .message import Message  # payloads and messages refer to each other

        messages = tuple(self.messages)
        for i, msg in enumerate(messages):
            if not isinstance(msg, Message):
                raise PayloadError(
                    f"Batch: messages[{i}] must be a Message, got {type(msg).__name__}"
                )
            msg.freeze()
        _set(self, "messages", messages)

    def __len__(self) -> int:
        return len(self.messages)


@dataclass(frozen=True, eq=False)
class ControlPayload(Payload):
    """A control signal ordered with data (for example ``"flush"``, ``"reset"``)."""

    kind: ClassVar[str] = "control"

    signal: str
    data: Mapping[str, Any] = field(default_factory=FrozenDict)

    def __post_init__(self) -> None:
        if not isinstance(self.signal, str) or not self.signal:
            raise PayloadError(
                f"ControlPayload: signal must be a non-empty str, got {self.signal!r}"
            )
        try:
            _set(self, "data", freeze_value(self.data, "ControlPayload.data"))
        except TypeError as exc:
            raise PayloadError(str(exc)) from None


@dataclass(frozen=True, eq=False)
class ConfigPayload(Payload):
    """Runtime configuration changes for one node: ``{argument: new value}``."""

    kind: ClassVar[str] = "config"

    changes: Mapping[str, Any] = field(default_factory=FrozenDict)

    def __post_init__(self) -> None:
        if not isinstance(self.changes, Mapping):
            raise PayloadError("ConfigPayload: changes must be a mapping of argument name to value")
        try:
            _set(self, "changes", freeze_value(self.changes, "ConfigPayload.changes"))
        except TypeError as exc:
            raise PayloadError(str(exc)) from None
