"""Plugin payload types cross the wire once registered with ``register_payload``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from fontus.core import Batch, Message, ObjectPayload, Payload, WireError
from fontus.remote import codec as codec_module
from fontus.remote import decode_message, encode_message, register_payload
from fontus.remote._wire.v1 import payloads_pb2 as pb


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Registrations made by a test disappear after it."""
    monkeypatch.setattr(codec_module, "_custom_by_kind", dict(codec_module._custom_by_kind))
    monkeypatch.setattr(codec_module, "_custom_by_type", dict(codec_module._custom_by_type))
    yield


@dataclass(frozen=True, eq=False)
class Detection(Payload):
    """A plugin payload: boxes found in a frame."""

    kind = "test.detection"

    label: str
    score: float
    boxes: np.ndarray
    count: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    raw: bytes = b""


class Complex(Payload):
    """A non-dataclass payload that needs its own to_fields/from_fields."""

    kind = "test.complex"

    def __init__(self, value: complex) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Complex) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]


def detection() -> Detection:
    boxes = np.array([[0, 0, 10, 20], [5, 5, 7, 7]], dtype=np.float32)
    return Detection("cat", 0.875, boxes, 2, {"model": "v1", "ids": [3, 4]}, b"\x00\x01")


def test_registered_dataclass_payload_round_trips() -> None:
    register_payload(Detection)
    message = Message(detection(), meta={"frame": 7}).freeze()
    decoded = decode_message(encode_message(message))
    assert isinstance(decoded.payload, Detection)
    assert decoded == message
    assert type(decoded.payload.count) is int and type(decoded.payload.raw) is bytes
    assert not decoded.payload.boxes.flags.writeable


def test_registered_payload_travels_as_a_custom_payload_with_its_kind() -> None:
    register_payload(Detection)
    packet = pb.Packet.FromString(encode_message(Message(detection()).freeze()))
    custom = packet.message.payload.custom
    assert custom.kind == "test.detection"
    # Keys in walk order: the dataclass fields, with "extra"'s own keys after it.
    assert list(custom.fields.keys) == [
        "label",
        "score",
        "boxes",
        "count",
        "extra",
        "model",
        "ids",
        "raw",
    ]
    assert custom.fields.kinds == b"msdaimsliib"


def test_registered_payload_round_trips_inside_a_batch() -> None:
    register_payload(Detection)
    batch = Message(Batch((Message(detection()), Message(ObjectPayload({"n": 1}))))).freeze()
    assert decode_message(encode_message(batch)) == batch


def test_kind_may_be_given_at_registration() -> None:
    register_payload(Detection, kind="acme.boxes")
    packet = pb.Packet.FromString(encode_message(Message(detection()).freeze()))
    assert packet.message.payload.custom.kind == "acme.boxes"
    assert isinstance(decode_message(packet.SerializeToString()).payload, Detection)


def test_custom_to_fields_and_from_fields_are_used() -> None:
    register_payload(
        Complex,
        to_fields=lambda p: {"re": p.value.real, "im": p.value.imag},
        from_fields=lambda f: Complex(complex(f["re"], f["im"])),
    )
    message = Message(Complex(1.5 - 2j)).freeze()
    decoded = decode_message(encode_message(message))
    assert isinstance(decoded.payload, Complex) and decoded.payload.value == 1.5 - 2j


def test_non_dataclass_payload_needs_to_fields() -> None:
    with pytest.raises(TypeError, match="Complex: pass to_fields/from_fields"):
        register_payload(Complex)


@pytest.mark.parametrize(
    "kind", ["audio", "image", "video", "bytes", "object", "batch", "control", "config"]
)
def test_registering_a_built_in_kind_name_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match=f"payload kind '{kind}' is built in; choose another"):
        register_payload(Detection, kind=kind)


def test_fields_that_do_not_fit_the_payload_give_a_wire_error() -> None:
    register_payload(Detection)
    packet = pb.Packet()
    packet.message.payload.custom.kind = "test.detection"
    fields = packet.message.payload.custom.fields
    fields.kinds, fields.ints[:], fields.keys[:], fields.strings[:] = b"ms", [1], ["label"], ["x"]
    with pytest.raises(WireError, match=r"^payload custom: .*missing 2 required positional"):
        decode_message(packet.SerializeToString())


def test_a_failing_from_fields_gives_a_wire_error() -> None:
    register_payload(
        Complex,
        to_fields=lambda p: {"re": p.value.real},
        from_fields=lambda f: Complex(complex(f["re"], f["im"])),  # "im" never arrives
    )
    data = encode_message(Message(Complex(1 + 0j)).freeze())
    with pytest.raises(WireError, match=r"^payload\[test\.complex\]: cannot rebuild it: KeyError"):
        decode_message(data)
