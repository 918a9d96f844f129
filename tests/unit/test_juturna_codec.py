"""The Juturna codec in-process: round trips, what the Juturna wire loses, envelopes, bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fontus.remote.juturna as jt
from fontus.core import Message
from fontus.core._values import values_equal
from fontus.core.errors import WireError
from fontus.core.payloads import (
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
from fontus.remote import WireLimits
from fontus.remote._wire.juturna import payloads_pb2 as pb


def trip(message: Message[Any], **options: Any) -> Message[Any]:
    """Fontus → request envelope bytes → Fontus, the way a Juturna peer would see it."""
    data = jt.envelope_to_bytes(jt.make_request_envelope(message, "test"))
    decoded = jt.envelope_message(jt.envelope_from_bytes(data), **options)
    assert decoded is not None
    return decoded


def msg(payload: Payload, **fields: Any) -> Message[Any]:
    fields.setdefault("creator", "src")
    return Message(payload, **fields).freeze()


def proto_message(payload_proto: Any) -> Any:
    message = pb.ProtoMessage()
    message.payload.Pack(payload_proto)
    return message


def image(h: int, w: int, d: int, dtype: Any = np.uint8) -> np.ndarray:
    shape = (h, w) if d == 1 else (h, w, d)
    return (np.arange(h * w * d) % 251).astype(dtype).reshape(shape)


# -- round trips ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        AudioPayload(np.linspace(-1, 1, 160, dtype=np.float32), 16000, 1, "flt", 0.5, 0.51),
        AudioPayload(np.arange(20, dtype=np.int16).reshape(10, 2), 48000, 2, "s16", 1.0, 2.0),
        AudioPayload(np.zeros(0, dtype=np.float64), 8000),
        ImagePayload(image(4, 5, 3), 5, 4, 3, "rgb24", 12.5),
        ImagePayload(image(4, 5, 1), 5, 4, 1, "gray8"),
        ImagePayload(image(3, 2, 4, np.float32), 2, 3, 4, "rgbaf32"),
        VideoPayload(
            (ImagePayload.from_array(image(2, 3, 3)), ImagePayload.from_array(image(2, 3, 3))),
            25.0,
            "raw",
            0.0,
            0.08,
        ),
        BytesPayload(b"\x00\x01juturna\xff"),
        BytesPayload(b""),
        ObjectPayload({"text": "ciao", "score": 0.25, "ok": True, "none": None, "list": ("a",)}),
    ],
    ids=lambda p: type(p).__name__,
)
def test_every_payload_kind_the_juturna_wire_carries_round_trips(payload: Payload) -> None:
    original = msg(payload, version=3, timers={"decode": 0.002}, meta={"lang": "it"})
    assert trip(original) == original


def test_message_fields_cross_exactly() -> None:
    original = msg(BytesPayload(b"x"), id=77, version=-4, created_at=1700000000.25)
    decoded = trip(original)
    assert (decoded.id, decoded.version, decoded.created_at, decoded.creator) == (
        77,
        -4,
        1700000000.25,
        "src",
    )
    assert decoded.frozen


def test_audio_format_travels_in_field_8() -> None:
    original = msg(AudioPayload(np.zeros(4, np.int16), 16000, audio_format="s16le"))
    proto = jt.message_to_proto(original)
    audio = pb.AudioProtoPayload()
    proto.payload.Unpack(audio)
    assert audio.audio_format == "s16le"
    assert trip(original).payload.audio_format == "s16le"


def test_arrays_travel_under_numpy_dtype_names_and_shape_as_juturna_writes_them() -> None:
    stereo = np.arange(12, dtype=np.float32).reshape(6, 2)
    proto = jt.message_to_proto(msg(AudioPayload(stereo, 44100, 2)))
    audio = pb.AudioProtoPayload()
    proto.payload.Unpack(audio)
    assert (audio.dtype, list(audio.shape), audio.audio_data) == (
        "float32",
        [6, 2],
        stereo.tobytes(),
    )
    assert proto.payload.type_url == "type.googleapis.com/juturna.proto.payloads.AudioProtoPayload"


def test_big_endian_and_strided_arrays_are_sent_little_endian_c_order() -> None:
    data = np.arange(20, dtype=">i4").reshape(10, 2)[::2]
    decoded = trip(msg(AudioPayload(data, 8000, 2)))
    assert decoded.payload.audio.dtype == np.dtype("<i4")
    assert np.array_equal(decoded.payload.audio, data)


def test_decoded_arrays_are_read_only() -> None:
    decoded = trip(msg(ImagePayload(image(2, 2, 3), 2, 2, 3)))
    assert not decoded.payload.image.flags.writeable


def test_single_channel_image_in_three_dimensions_comes_back_two_dimensional() -> None:
    # Juturna rebuilds depth 1 as (height, width): the trailing axis of 1 is not carried.
    decoded = trip(msg(ImagePayload(image(3, 4, 1).reshape(3, 4, 1), 4, 3, 1, "gray8")))
    assert decoded.payload.image.shape == (3, 4)


def test_batch_round_trips_with_nested_messages() -> None:
    inner = (
        msg(AudioPayload(np.ones(3, np.float32), 8000), id=1),
        msg(ObjectPayload({"word": "hi"}), id=2, meta={"who": "asr"}),
        msg(Batch((msg(BytesPayload(b"deep"), id=3),)), id=4),
    )
    original = msg(Batch(inner), id=5)
    assert trip(original) == original


# -- what Struct loses ---------------------------------------------------------------------
def test_struct_numbers_come_back_as_floats() -> None:
    decoded = trip(msg(ObjectPayload({"n": 3, "xs": [1, 2]}), meta={"count": 7}))
    assert decoded.payload["n"] == 3.0 and type(decoded.payload["n"]) is float
    assert decoded.payload["xs"] == (1.0, 2.0)
    assert type(decoded.meta["count"]) is float


def test_ints_option_turns_integral_floats_back_into_ints() -> None:
    original = msg(ObjectPayload({"n": 3, "half": 0.5, "deep": {"xs": [1, 2]}}), meta={"c": 7})
    decoded = trip(original, ints=True)
    assert decoded == original
    # The wire cannot tell 3.0 from 3: with ints=True both come back as int.
    assert trip(msg(ObjectPayload({"x": 3.0})), ints=True).payload["x"] == 3


def test_ints_beyond_double_precision_are_refused_not_rounded() -> None:
    with pytest.raises(WireError, match=r"message\.payload\.big: int 9007199254740993"):
        jt.message_to_proto(msg(ObjectPayload({"big": 2**53 + 1})))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_refused(value: float) -> None:
    with pytest.raises(WireError, match=r"message\.meta\.x"):
        jt.message_to_proto(msg(BytesPayload(b""), meta={"x": value}))


@pytest.mark.parametrize(
    ("value", "what"),
    [(b"\x00", "bytes cannot travel"), (np.zeros(2), "numpy arrays cannot travel")],
)
def test_bytes_and_arrays_inside_objects_are_refused_naming_the_field(
    value: Any, what: str
) -> None:
    with pytest.raises(WireError, match=rf"message\.payload\.outer\.inner\[1\]: {what}"):
        jt.message_to_proto(msg(ObjectPayload({"outer": {"inner": [1, value]}})))
    with pytest.raises(WireError, match=rf"message\.meta\.blob: {what}"):
        jt.message_to_proto(msg(BytesPayload(b""), meta={"blob": value}))


def test_numpy_scalars_in_unfrozen_meta_travel_as_numbers() -> None:
    message = Message(BytesPayload(b""), meta={"n": np.int64(4), "f": np.float32(0.5)})
    decoded = jt.message_from_proto(jt.message_to_proto(message), ints=True)
    assert dict(decoded.meta) == {"n": 4, "f": 0.5}


# -- what else cannot travel -----------------------------------------------------------------
@pytest.mark.parametrize("payload", [ControlPayload("flush"), ConfigPayload({"gain": 2})])
def test_control_and_config_payloads_are_refused(payload: Payload) -> None:
    with pytest.raises(WireError, match=rf"{type(payload).__name__} cannot travel"):
        jt.message_to_proto(msg(payload))


def test_ids_outside_int32_travel_as_their_low_31_bits() -> None:
    assert trip(msg(BytesPayload(b""), id=2**31 + 5)).id == 5
    assert trip(msg(BytesPayload(b""), id=-(2**31))).id == -(2**31)


def test_version_outside_int32_is_refused() -> None:
    with pytest.raises(WireError, match=r"message\.version: 4294967296 is outside the int32"):
        jt.message_to_proto(msg(BytesPayload(b""), version=2**32))


# -- envelopes ------------------------------------------------------------------------------
def test_request_envelopes_get_fresh_unique_ids() -> None:
    message = msg(BytesPayload(b"x"))
    ids = {jt.make_request_envelope(message, "me").id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 36 and i.count("-") == 4 for i in ids)  # str(uuid4()), as Juturna


def test_request_envelope_fields() -> None:
    envelope = jt.make_request_envelope(
        msg(BytesPayload(b"x")),
        "client",
        ttl=2.5,
        configuration={"threshold": 0.5, "lang": "en"},
        receiver="asr",
        metadata={"trace": "t1"},
    )
    again = jt.envelope_from_bytes(jt.envelope_to_bytes(envelope))
    assert (again.sender, again.receiver, again.ttl, again.response_to) == ("client", "asr", 3, "")
    assert again.request_type == "BytesPayload"
    assert again.created_at > 0
    assert jt.read_struct(again.configuration) == {"threshold": 0.5, "lang": "en"}
    assert jt.read_struct(again.metadata) == {"trace": "t1"}


def test_reply_envelope_answers_the_request() -> None:
    request = jt.make_request_envelope(msg(BytesPayload(b"x")), "client", ttl=7)
    reply = jt.make_reply_envelope(
        request, msg(ObjectPayload({"ok": True})), {"processing_time": 0.01}, sender="srv"
    )
    assert reply.response_to == request.id and reply.id != request.id
    assert (reply.sender, reply.receiver, reply.ttl) == ("srv", "client", 7)
    assert jt.read_struct(reply.metadata) == {"processing_time": 0.01}
    decoded = jt.envelope_message(jt.envelope_from_bytes(jt.envelope_to_bytes(reply)))
    assert decoded is not None and decoded.payload == ObjectPayload({"ok": True})


def test_reply_without_a_message_carries_none() -> None:
    request = jt.make_request_envelope(msg(BytesPayload(b"x")), "client")
    reply = jt.envelope_from_bytes(jt.envelope_to_bytes(jt.make_reply_envelope(request, None)))
    assert jt.envelope_message(reply) is None
    assert reply.response_to == request.id


@pytest.mark.parametrize(("sender", "ttl"), [("", 1), ("me", -1), ("me", float("nan"))])
def test_request_envelope_refuses_missing_sender_and_bad_ttl(sender: str, ttl: float) -> None:
    with pytest.raises(WireError, match=r"envelope\.(sender|ttl)"):
        jt.make_request_envelope(msg(BytesPayload(b"x")), sender, ttl=ttl)


def test_configuration_that_cannot_travel_is_refused() -> None:
    with pytest.raises(WireError, match=r"envelope\.configuration\.weights"):
        jt.make_request_envelope(
            msg(BytesPayload(b"x")), "me", configuration={"weights": np.ones(3)}
        )


def test_send_and_receive_path() -> None:
    assert jt.SEND_AND_RECEIVE == "/juturna.proto.messaging.MessagingService/SendAndReceive"


def test_public_names_are_pinned() -> None:
    assert sorted(jt.__all__) == [
        "DEFAULT_TTL_S",
        "MAX_MESSAGE_BYTES",
        "ProtoEnvelope",
        "ProtoMessage",
        "SEND_AND_RECEIVE",
        "envelope_from_bytes",
        "envelope_message",
        "envelope_to_bytes",
        "make_reply_envelope",
        "make_request_envelope",
        "message_from_proto",
        "message_to_proto",
        "read_struct",
    ]


# -- what real Juturna nodes send ----------------------------------------------------------
def test_unset_audio_channels_are_taken_from_the_shape() -> None:
    stereo = np.zeros((4, 2), np.float32)
    proto = proto_message(
        pb.AudioProtoPayload(
            audio_data=stereo.tobytes(),
            dtype="float32",
            shape=[4, 2],
            sampling_rate=8000,
            channels=-1,
        )
    )
    assert jt.message_from_proto(proto).payload.channels == 2


def test_one_dimensional_audio_with_channels_is_read_as_interleaved() -> None:
    samples = np.arange(8, dtype=np.int16)
    proto = proto_message(
        pb.AudioProtoPayload(
            audio_data=samples.tobytes(), dtype="int16", shape=[8], sampling_rate=8000, channels=2
        )
    )
    audio = jt.message_from_proto(proto).payload.audio
    assert audio.shape == (4, 2) and audio[1].tolist() == [2, 3]


def test_image_depth_minus_one_is_inferred_from_the_byte_length() -> None:
    pixels = image(2, 3, 3)
    proto = proto_message(
        pb.ImageProtoPayload(
            image_data=pixels.tobytes(), dtype="uint8", width=3, height=2, depth=-1
        )
    )
    payload = jt.message_from_proto(proto).payload
    assert payload.depth == 3 and np.array_equal(payload.image, pixels)


def test_unset_frames_per_second_reads_as_zero() -> None:
    frame = pb.ImageProtoPayload(image_data=b"\x00" * 4, dtype="uint8", width=2, height=2, depth=1)
    proto = proto_message(pb.VideoProtoPayload(frames=[frame], frames_per_second=-1.0))
    assert jt.message_from_proto(proto).payload.frames_per_second == 0.0


# -- malformed input ------------------------------------------------------------------------
def audio_proto(**fields: Any) -> Any:
    values: dict[str, Any] = {
        "audio_data": b"\x00" * 8,
        "dtype": "float32",
        "shape": [2],
        "sampling_rate": 16000,
        "channels": 1,
    }
    values.update(fields)
    return proto_message(pb.AudioProtoPayload(**values))


@pytest.mark.parametrize(
    ("proto", "match"),
    [
        (audio_proto(shape=[3]), r"audio_data: 8 bytes do not match dtype float32 x shape \(3,\)"),
        (audio_proto(dtype="O"), r"audio_data: dtype 'O' is an object dtype"),
        (audio_proto(dtype="nonsense"), r"unknown dtype 'nonsense'"),
        (audio_proto(shape=[-2]), r"negative dimension"),
        (audio_proto(shape=[1 << 28]), r"over the limit"),
        (audio_proto(sampling_rate=0), r"sampling_rate must be an int >= 1"),
        (audio_proto(shape=[1, 1, 2]), r"1 or 2 dimensions"),
        (audio_proto(channels=3, shape=[2]), r"2 interleaved samples do not divide into 3"),
        (
            proto_message(
                pb.ImageProtoPayload(
                    image_data=b"\x00" * 5, dtype="uint8", width=2, height=2, depth=1
                )
            ),
            r"image_data: 5 bytes do not match",
        ),
        (
            proto_message(pb.ImageProtoPayload(dtype="uint8", width=-2, height=2, depth=1)),
            r"width=-2",
        ),
        (
            proto_message(
                pb.ImageProtoPayload(
                    image_data=b"\x00" * 5, dtype="uint8", width=2, height=2, depth=-1
                )
            ),
            r"depth -1 cannot be inferred",
        ),
        (
            proto_message(pb.BytesProtoPayload(cnt=b"abc", size=4)),
            r"size says 4 bytes but cnt holds 3",
        ),
        (
            proto_message(pb.CompressedProtoPayload(compression="zstd")),
            r"CompressedProtoPayload .* no Juturna release writes it",
        ),
        (pb.ProtoMessage(), r"message\.payload: empty"),
    ],
)
def test_malformed_messages_are_refused_with_wire_error(proto: Any, match: str) -> None:
    with pytest.raises(WireError, match=match):
        jt.message_from_proto(proto)


def test_unknown_type_url_is_refused_naming_it() -> None:
    proto = pb.ProtoMessage()
    proto.payload.type_url = "type.googleapis.com/juturna.proto.payloads.HologramPayload"
    with pytest.raises(WireError, match=r"unknown type_url '.*HologramPayload'; expected one of"):
        jt.message_from_proto(proto)


def test_payload_bytes_that_do_not_parse_are_refused() -> None:
    proto = pb.ProtoMessage()
    proto.payload.type_url = "type.googleapis.com/juturna.proto.payloads.AudioProtoPayload"
    proto.payload.value = b"\xff\xff\xff"
    with pytest.raises(WireError, match=r"malformed AudioProtoPayload"):
        jt.message_from_proto(proto)


@pytest.mark.parametrize("data", [b"\xff\xff\xff\xff", b"\x0a\x05ab"])
def test_envelope_bytes_that_do_not_parse_are_refused(data: bytes) -> None:
    with pytest.raises(WireError, match=r"envelope: malformed ProtoEnvelope"):
        jt.envelope_from_bytes(data)


def test_oversized_envelope_is_refused_before_parsing() -> None:
    with pytest.raises(WireError, match=r"over the limit of 10"):
        jt.envelope_from_bytes(b"\x00" * 11, max_bytes=10)


def test_oversized_bytes_payload_is_refused_under_limits() -> None:
    proto = proto_message(pb.BytesProtoPayload(cnt=b"x" * 100))
    with pytest.raises(WireError, match=r"cnt: 100 bytes, over the limit of 10"):
        jt.message_from_proto(proto, limits=WireLimits(max_array_bytes=10))


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(5):
        deep = {"d": deep}
    proto = jt.message_to_proto(msg(ObjectPayload(deep)))
    with pytest.raises(WireError, match=r"nested deeper than 3"):
        jt.message_from_proto(proto, limits=WireLimits(max_depth=3))
    batch: Payload = BytesPayload(b"")
    for _ in range(5):
        batch = Batch((msg(batch),))
    proto = jt.message_to_proto(msg(batch))
    with pytest.raises(WireError, match=r"batches nested deeper than 3"):
        jt.message_from_proto(proto, limits=WireLimits(max_depth=3))


def test_unset_struct_values_read_as_none() -> None:
    proto = pb.ProtoMessage()
    proto.payload.Pack(pb.BytesProtoPayload())
    proto.meta.fields["x"].SetInParent()  # a Value with no kind: JSON reads it as null
    assert values_equal(dict(jt.message_from_proto(proto).meta), {"x": None})
