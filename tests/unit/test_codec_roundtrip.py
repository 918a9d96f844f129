"""Property tests: ``decode_message(encode_message(m)) == m`` for every payload kind.

Arrays come back C-ordered and little-endian: a big-endian or non-contiguous
input decodes to equal values with the little-endian dtype, so the expectation
is the message with its arrays normalised that way (``wire_form``).  Decoded
arrays are read-only, lists come back as tuples, and every scalar keeps its
type (bool, int, float, str, bytes, None).
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fontus.core import (
    AudioPayload,
    Batch,
    BytesPayload,
    ConfigPayload,
    ControlPayload,
    ImagePayload,
    Message,
    ObjectPayload,
    Payload,
    VideoPayload,
)
from fontus.core.errors import WireError
from fontus.remote import CompressionConfig, decode_message, encode_message
from fontus.remote._wire.v1 import payloads_pb2 as pb
from fontus.remote.codec import WireDecoder, WireEncoder

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
INT32_MAX = (1 << 31) - 1
DTYPES = [
    np.dtype(name)
    for name in (
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "complex64",
        "complex128",
    )
]
LAYOUTS = (
    "c",
    "strided",
    "transposed",
    "big-endian",
    "strided big-endian",
    "transposed big-endian",
)
#: Every property runs this many examples: enough to cover the kinds, small enough for < 30 s.
EXAMPLES = 60
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a shared machine makes single examples slow now and then
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ZSTD = CompressionConfig("zstd", threshold_bytes=0)
LZ4 = CompressionConfig("lz4", threshold_bytes=0)


# -- expectations ------------------------------------------------------------------


def little_endian(array: np.ndarray) -> np.ndarray:
    """The array the wire carries: same values, C order, little-endian dtype."""
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    return np.array(array, dtype=dtype, order="C")  # (ascontiguousarray turns 0-d into 1-d)


def wire_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return little_endian(value)
    if isinstance(value, Mapping):
        return {key: wire_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return tuple(wire_value(item) for item in value)
    return value


def wire_payload(payload: Payload) -> Payload:
    if isinstance(payload, AudioPayload):
        return dataclasses.replace(payload, audio=little_endian(payload.audio))
    if isinstance(payload, ImagePayload):
        return dataclasses.replace(payload, image=little_endian(payload.image))
    if isinstance(payload, VideoPayload):
        frames = tuple(wire_payload(frame) for frame in payload.frames)
        return dataclasses.replace(payload, frames=frames)
    if isinstance(payload, ObjectPayload):
        return ObjectPayload(wire_value(payload.data))
    if isinstance(payload, ControlPayload):
        return ControlPayload(payload.signal, wire_value(payload.data))
    if isinstance(payload, ConfigPayload):
        return ConfigPayload(wire_value(payload.changes))
    if isinstance(payload, Batch):
        return Batch(tuple(wire_form(inner) for inner in payload.messages))
    return payload


def wire_form(message: Message[Any]) -> Message[Any]:
    """``message`` as it should come back: arrays normalised, everything else equal."""
    return Message(
        wire_payload(message.payload),
        id=message.id,
        created_at=message.created_at,
        creator=message.creator,
        version=message.version,
        meta=wire_value(message.meta),
        timers=dict(message.timers),
    ).freeze()


def assert_immutable(value: Any, path: str = "value") -> None:
    """No list, no writeable array, no mutable dict anywhere in a decoded value."""
    if isinstance(value, np.ndarray):
        assert not value.flags.writeable, f"{path}: decoded array is writeable"
        assert value.dtype.byteorder in "<|=", f"{path}: decoded dtype {value.dtype.str}"
    elif isinstance(value, Mapping):
        assert not isinstance(value, dict), f"{path}: decoded mapping is a dict"
        for key, item in value.items():
            assert_immutable(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        assert isinstance(value, tuple), f"{path}: decoded sequence is a {type(value).__name__}"
        for i, item in enumerate(value):
            assert_immutable(item, f"{path}[{i}]")
    else:
        assert value is None or isinstance(value, bool | int | float | str | bytes), path


def assert_decoded_shape(message: Message[Any]) -> None:
    assert message.frozen
    assert_immutable(message.meta, "meta")
    payload = message.payload
    if isinstance(payload, AudioPayload):
        assert_immutable(payload.audio, "audio")
    elif isinstance(payload, ImagePayload):
        assert_immutable(payload.image, "image")
    elif isinstance(payload, VideoPayload):
        for frame in payload.frames:
            assert_immutable(frame.image, "frame")
    elif isinstance(payload, ObjectPayload):
        assert_immutable(payload.data, "payload")
    elif isinstance(payload, ControlPayload):
        assert_immutable(payload.data, "control")
    elif isinstance(payload, ConfigPayload):
        assert_immutable(payload.changes, "config")
    elif isinstance(payload, Batch):
        for inner in payload.messages:
            assert_decoded_shape(inner)


def round_trip(
    message: Message[Any], compression: CompressionConfig | None = None, *, pack_trees: bool = False
) -> None:
    data = encode_message(message, compression or CompressionConfig(), pack_trees=pack_trees)
    decoded = decode_message(data)
    assert decoded == wire_form(message)
    assert_decoded_shape(decoded)


# -- strategies ------------------------------------------------------------------


@st.composite
def arrays(
    draw: st.DrawFn, shape: tuple[int, ...] | None = None, dtypes: list[np.dtype] = DTYPES
) -> np.ndarray:
    """An array of any fixed-size dtype, C-ordered, strided, transposed or big-endian."""
    dtype = draw(st.sampled_from(dtypes))
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    layout = draw(st.sampled_from(LAYOUTS if shape else ("c", "big-endian")))
    big_endian = "big-endian" in layout and dtype.itemsize > 1

    def base(base_shape: tuple[int, ...]) -> np.ndarray:
        array = draw(hnp.arrays(dtype, base_shape))
        return array.astype(dtype.newbyteorder(">")) if big_endian else array

    if "strided" in layout:
        array = base((shape[0] * 2, *shape[1:]))[::2]
    elif "transposed" in layout:
        array = base(shape[::-1]).T
    else:
        array = base(shape)
    assert array.shape == shape
    return array


ints = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(-1000, 1000),
    st.sampled_from([2**53 + 1, -(2**53) - 1, INT64_MAX, INT64_MIN, -1]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.floats(),
    st.text(max_size=12),
    st.binary(max_size=32),
    arrays(),
)
keys = st.text(max_size=8)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=10,
)
mappings = st.dictionaries(keys, values, max_size=5)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)
texts = st.text(max_size=10)


@st.composite
def spans(draw: st.DrawFn) -> tuple[float, float]:
    start = draw(finite)
    return start, start + draw(st.floats(0, 1e6))


@st.composite
def audio_payloads(draw: st.DrawFn) -> AudioPayload:
    samples = draw(st.integers(0, 8))
    channels = draw(st.integers(1, 3))
    shape = (samples,) if draw(st.booleans()) and channels == 1 else (samples, channels)
    start, end = draw(spans())
    return AudioPayload(
        draw(arrays(shape)),
        draw(st.integers(1, INT32_MAX)),
        channels,
        draw(texts),
        start,
        end,
    )


@st.composite
def image_payloads(draw: st.DrawFn) -> ImagePayload:
    depth = draw(st.sampled_from([1, 3, 4]))
    height, width = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    shape = (height, width) if depth == 1 and draw(st.booleans()) else (height, width, depth)
    return ImagePayload(draw(arrays(shape)), width, height, depth, draw(texts), draw(st.floats()))


@st.composite
def video_payloads(draw: st.DrawFn) -> VideoPayload:
    frames = draw(st.lists(image_payloads(), max_size=3))
    start, end = draw(spans())
    return VideoPayload(tuple(frames), draw(st.floats(0, 1000)), draw(texts), start, end)


def big_bytes(seed: int, size: int) -> bytes:
    # Drawn from a seed: hypothesis's own buffer is too small for blob-sized strings.
    return random.Random(seed).randbytes(size)


bytes_payloads = st.one_of(
    st.binary(max_size=64).map(BytesPayload),
    st.builds(big_bytes, st.integers(0, 2**32), st.integers(4096, 20000)).map(BytesPayload),
)
leaf_payloads = st.one_of(
    audio_payloads(),
    image_payloads(),
    video_payloads(),
    bytes_payloads,
    mappings.map(ObjectPayload),
    st.builds(ControlPayload, st.text(min_size=1, max_size=10), mappings),
    mappings.map(ConfigPayload),
)


def messages_of(payloads: st.SearchStrategy[Payload]) -> st.SearchStrategy[Message[Any]]:
    return st.builds(
        lambda payload, **kw: Message(payload, **kw).freeze(),
        payloads,
        id=st.integers(INT64_MIN, INT64_MAX),
        created_at=st.floats(),
        creator=texts,
        version=st.integers(INT64_MIN, INT64_MAX),
        meta=mappings,
        timers=st.dictionaries(keys, st.floats(), max_size=3),
    )


leaf_messages = messages_of(leaf_payloads)
messages = st.recursive(
    leaf_messages,
    lambda inner: messages_of(st.lists(inner, max_size=3).map(lambda ms: Batch(tuple(ms)))),
    max_leaves=6,
)


# -- properties --------------------------------------------------------------------


@PROPERTY
@given(messages)
def test_any_message_round_trips(message: Message[Any]) -> None:
    round_trip(message)


@PROPERTY
@given(messages)
def test_any_message_round_trips_with_msgpack_trees(message: Message[Any]) -> None:
    round_trip(message, pack_trees=True)


@PROPERTY
@given(messages_of(audio_payloads()))
def test_audio_mono_and_multichannel_round_trip(message: Message[Any]) -> None:
    round_trip(message)


@PROPERTY
@given(messages_of(st.one_of(image_payloads(), video_payloads())))
def test_images_of_depth_1_3_4_and_videos_round_trip(message: Message[Any]) -> None:
    round_trip(message)


@PROPERTY
@given(messages_of(bytes_payloads))
def test_small_and_blob_sized_bytes_round_trip(message: Message[Any]) -> None:
    round_trip(message)
    decoded = decode_message(encode_message(message))
    assert type(decoded.payload.cnt) is bytes


@PROPERTY
@given(mappings, mappings)
def test_object_values_keep_their_types(data: dict[str, Any], meta: dict[str, Any]) -> None:
    message = Message(ObjectPayload(data), meta=meta).freeze()
    round_trip(message)
    round_trip(message, pack_trees=True)


@PROPERTY
@given(arrays())
def test_arrays_of_every_dtype_and_layout_round_trip_as_little_endian_c_order(
    array: np.ndarray,
) -> None:
    decoded = decode_message(encode_message(Message(ObjectPayload({"a": array})).freeze()))
    out = decoded.payload["a"]
    expected = little_endian(array)
    assert out.dtype == expected.dtype and out.shape == array.shape
    assert out.tobytes() == expected.tobytes()  # bit-exact, NaN payloads and -0.0 included
    assert out.flags.c_contiguous and not out.flags.writeable
    assert np.array_equal(out, array, equal_nan=array.dtype.kind in "fc")


@PROPERTY
@given(messages, st.sampled_from([ZSTD, LZ4]))
def test_any_message_round_trips_compressed(
    message: Message[Any], compression: CompressionConfig
) -> None:
    round_trip(message, compression)


@PROPERTY
@given(
    st.sampled_from(DTYPES),
    st.integers(1, 3000),
    st.sampled_from(["zeros", "ramp", "noise"]),
    st.sampled_from([ZSTD, LZ4]),
)
def test_compressible_arrays_round_trip_compressed(
    dtype: np.dtype, size: int, fill: str, compression: CompressionConfig
) -> None:
    rng = np.random.default_rng(size)
    if fill == "zeros":
        values = np.zeros(size)
    elif fill == "ramp":
        values = np.arange(size) % 50
    else:
        values = rng.normal(size=size) * 100
    array = values.astype(dtype)
    message = Message(AudioPayload(array, 16000)).freeze()
    round_trip(message, compression)


# -- explicit cases ----------------------------------------------------------------


@pytest.mark.parametrize("compression", [ZSTD, LZ4], ids=["zstd", "lz4"])
def test_compression_is_used_when_it_saves_space(compression: CompressionConfig) -> None:
    audio = np.zeros(16000, np.float32)
    data = encode_message(Message(AudioPayload(audio, 16000)).freeze(), compression)
    packet = pb.Packet.FromString(data)
    array = packet.message.payload.audio.audio
    assert (
        array.compression
        == {"zstd": pb.COMPRESSION_ZSTD, "lz4": pb.COMPRESSION_LZ4}[compression.algorithm]
    )
    assert array.raw_size == audio.nbytes
    assert len(data) < audio.nbytes // 10
    assert decode_message(data).payload.audio.tobytes() == audio.tobytes()


def test_incompressible_arrays_travel_raw_even_when_compression_is_on() -> None:
    noise = np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8)
    packet = pb.Packet.FromString(
        encode_message(Message(ObjectPayload({"n": noise})).freeze(), LZ4)
    )
    data = packet.message.payload.object.data
    assert data.kinds == b"ma"
    array = data.arrays[0]
    assert array.compression == pb.COMPRESSION_NONE and array.WhichOneof("data") == "blob"


def test_a_packet_is_standard_protobuf_with_array_data_in_blobs() -> None:
    audio = np.arange(320, dtype=np.int16)
    message = Message(AudioPayload(audio, 16000), meta={"n": 1}).freeze()
    packet = pb.Packet.FromString(encode_message(message))
    head = packet.message.payload.audio.audio
    assert (head.dtype, list(head.shape), head.blob) == ("<i2", [320], 0)
    assert list(packet.blobs) == [audio.tobytes()]
    assert packet.SerializeToString() == encode_message(message)


def test_decoded_arrays_are_read_only_views_of_the_received_bytes() -> None:
    audio = np.arange(4096, dtype=np.float32)
    data = encode_message(Message(AudioPayload(audio, 16000)).freeze())
    decoded = decode_message(data).payload.audio
    assert not decoded.flags.writeable
    assert not decoded.flags.owndata  # a view, not a copy
    with pytest.raises(ValueError, match="read-only"):
        decoded[0] = 1.0
    writable = decoded.copy()  # the documented way to modify
    writable[0] = 1.0


@pytest.mark.parametrize("pack_trees", [False, True], ids=["columns", "msgpack"])
def test_scalar_types_survive_exactly(pack_trees: bool) -> None:
    data = {
        "bool": True,
        "int": 1,
        "float": 1.0,
        "big": 2**53 + 1,
        "min": INT64_MIN,
        "max": INT64_MAX,
        "neg": -5,
        "bytes": b"\x00\xff",
        "str": "é",
        "none": None,
        "list": [1, [2.0, [False]]],
        "tuple": (b"x",),
        "empty_map": {},
        "empty_list": [],
    }
    data_bytes = encode_message(Message(ObjectPayload(data)).freeze(), pack_trees=pack_trees)
    assert bool(pb.Packet.FromString(data_bytes).message.payload.object.data.msgpack) is pack_trees
    decoded = decode_message(data_bytes).payload
    assert decoded == ObjectPayload(data)
    for key in ("bool", "int", "float", "big", "bytes", "str"):
        assert type(decoded[key]) is type(data[key]), key
    assert decoded["big"] == 2**53 + 1  # above a double's exact range: travelled as an int
    assert decoded["list"] == (1, (2.0, (False,)))
    assert type(decoded["list"][1][1][0]) is bool
    assert decoded["tuple"] == (b"x",)


def test_empty_containers_and_empty_video_round_trip() -> None:
    for payload in (
        VideoPayload(()),
        ObjectPayload({}),
        ConfigPayload({}),
        ControlPayload("flush"),
        Batch(()),
        BytesPayload(b""),
    ):
        round_trip(Message(payload, meta={"empty": {}, "none": []}).freeze())


def test_a_decoded_object_forwarded_unchanged_re_encodes_to_the_same_bytes() -> None:
    original = Message(ObjectPayload({"a": 1, "b": [True, "x"], "c": {"d": 0.5}}), meta={"k": 1})
    data = encode_message(original.freeze())
    decoded = decode_message(data)
    # A node that forwards the payload in a new message (new creator, more meta).
    forwarded = decoded.evolve(creator="node", meta={"extra": "y"}).freeze()
    again = decode_message(encode_message(forwarded))
    assert again.payload == original.payload and again.meta == {"k": 1, "extra": "y"}
    assert encode_message(decoded) == data  # the copied wire form is the canonical encoding


def test_objects_with_arrays_are_re_encoded_from_their_values() -> None:
    # Array data lives in the frame's blobs, so its wire form cannot be copied alone.
    original = Message(ObjectPayload({"a": np.arange(3, dtype="<i4"), "s": "x"})).freeze()
    decoded = decode_message(encode_message(original))
    again = decode_message(encode_message(decoded.evolve(creator="n").freeze()))
    assert again.payload == original.payload and again.creator == "n"


# -- the MessagePack form of value trees ---------------------------------------------


def test_a_msgpack_tree_is_plain_messagepack_with_the_columns_empty() -> None:
    import msgpack

    data = {"a": 1, "b": [True, "x"], "c": None, "d": 0.5, "e": b"\x00", "f": {"g": -2}}
    message = Message(ObjectPayload(data), meta={"k": "v"}).freeze()
    packet = pb.Packet.FromString(encode_message(message, pack_trees=True)).message
    tree = packet.payload.object.data
    assert [f.name for f, _ in tree.ListFields()] == ["msgpack"]
    assert msgpack.unpackb(tree.msgpack) == data
    assert msgpack.unpackb(packet.meta.msgpack) == {"k": "v"}


class Colour(enum.IntEnum):
    RED = 1


class Label(str, enum.Enum):  # noqa: UP042 - str() of this kind is "Label.CAT", not "cat"
    CAT = "cat"


@pytest.mark.parametrize(
    "data",
    [
        {"a": np.arange(3, dtype="<i4")},
        {"nested": [{"a": np.zeros(2, np.float32)}]},
    ],
    ids=["array", "nested array"],
)
def test_trees_msgpack_cannot_carry_as_they_are_travel_as_columns(data: dict[str, Any]) -> None:
    message = Message(ObjectPayload(data)).freeze()
    tree = pb.Packet.FromString(encode_message(message, pack_trees=True)).message.payload.object
    assert not tree.data.msgpack and tree.data.kinds.startswith(b"m")
    round_trip(message, pack_trees=True)


def test_subclasses_handed_to_the_encoder_travel_as_columns_as_their_base_types() -> None:
    # Payloads freeze enums to their values; a mapping handed to the encoder directly
    # (a plugin's to_fields) may still hold them: the column writer judges those.
    tree = pb.Value()
    WireEncoder(pack_trees=True).value_map({"c": Colour.RED, "l": [Label.CAT]}, tree, "fields")
    assert not tree.msgpack and tree.kinds == b"mils"
    value = WireDecoder([]).value_map(tree, "fields")
    assert value == {"c": 1, "l": ("cat",)} and type(value["c"]) is int


def test_writer_errors_are_the_column_writers_with_msgpack_trees_on() -> None:
    for value, error in (
        ({"m": {3: "x"}}, r"^fields\.m: key 3 is not a string \(keys must be str\)$"),
        ({"n": [2**64]}, r"^fields\.n\[0\]: int 18446744073709551616 is outside the int64 range"),
        ({"s": {1, 2}}, r"^fields\.s: type set cannot travel$"),
    ):
        with pytest.raises(WireError, match=error):
            WireEncoder(pack_trees=True).value_map(value, pb.Value(), "fields")


def test_a_forwarded_msgpack_object_is_copied_only_to_a_reader_of_msgpack() -> None:
    original = Message(ObjectPayload({"a": 1, "b": [True, "x"]}), meta={"k": 1}).freeze()
    data = encode_message(original, pack_trees=True)
    decoded = decode_message(data)
    assert encode_message(decoded, pack_trees=True) == data  # copied as it came
    columns = pb.Packet.FromString(encode_message(decoded)).message.payload.object.data
    assert not columns.msgpack and columns.kinds == b"milts"
    assert decode_message(encode_message(decoded)).payload == original.payload
    # A column tree received is copied as columns, which every reader reads.
    plain = decode_message(encode_message(original))
    again = pb.Packet.FromString(encode_message(plain, pack_trees=True)).message.payload.object
    assert again.data.kinds == b"milts" and not again.data.msgpack
