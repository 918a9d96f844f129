"""Malformed input: each problem gives a WireError that names the field and the problem.

The malformed packets are built with the generated ``fontus.v1`` classes; blobs
are the packet's own ``blobs`` field (number 15), which protobuf serializes
after the message, exactly the layout the codec writes.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lz4.block
import msgpack
import numpy as np
import pytest
import zstandard

from fontus.core import (
    AudioPayload,
    Batch,
    BytesPayload,
    Message,
    ObjectPayload,
    Payload,
    WireError,
)
from fontus.remote import WireLimits, decode_message, encode_message
from fontus.remote._wire.v1 import payloads_pb2 as pb
from fontus.remote.codec import WireEncoder

RAMP = np.arange(1000, dtype="<f4")


def audio_packet(fill: Callable[[Any], None], blobs: list[bytes] | None = None) -> bytes:
    """A packet holding mono audio whose ``Array`` is filled by ``fill``."""
    packet = pb.Packet()
    audio = packet.message.payload.audio
    audio.sampling_rate = 16000
    audio.channels = 1
    fill(audio.audio)
    packet.blobs.extend(blobs or [])
    return packet.SerializeToString()


def array_fields(
    dtype: str = "<f4",
    shape: tuple[int, ...] = (4,),
    *,
    blob: int | None = 0,
    inline: bytes | None = None,
    compression: int = pb.COMPRESSION_NONE,
    raw_size: int = 0,
) -> Callable[[Any], None]:
    def fill(array: Any) -> None:
        array.dtype = dtype
        array.shape.extend(shape)
        if inline is not None:
            array.inline = inline
        elif blob is not None:
            array.blob = blob
        array.compression = compression
        array.raw_size = raw_size

    return fill


def raises(data: bytes, pattern: str, limits: WireLimits | None = None) -> None:
    with pytest.raises(WireError, match=pattern):
        decode_message(data) if limits is None else decode_message(data, limits)


# -- dtypes --------------------------------------------------------------------------


def test_unknown_dtype_is_named() -> None:
    data = audio_packet(array_fields("<q9"), [b"\0" * 16])
    raises(data, r"^audio\.audio: unknown dtype '<q9'$")


def test_object_dtype_never_travels() -> None:
    data = audio_packet(array_fields("|O"), [b"\0" * 32])
    raises(data, r"^audio\.audio: dtype '\|O' is an object dtype; objects never travel$")


@pytest.mark.parametrize("dtype", ["<i4,<f4", "[('a', '<i4')]", "(2,)<i4", "<c8,4"])
def test_structured_and_sub_array_dtypes_are_refused(dtype: str) -> None:
    data = audio_packet(array_fields(dtype), [b"\0" * 32])
    raises(
        data,
        rf"^audio\.audio: dtype {re.escape(repr(dtype))} is not a plain dtype string like "
        r"'<f4'; structured and sub-array dtypes never travel$",
    )


@pytest.mark.parametrize("dtype", ["<U4", "|S4", "|V8", "<M8", "<f16", "<c32", "a", "|a4"])
@pytest.mark.filterwarnings("error::DeprecationWarning")  # numpy's 'a' alias is not asked
def test_non_numeric_and_platform_dependent_dtypes_are_refused(dtype: str) -> None:
    data = audio_packet(array_fields(dtype, (1,)), [b"\0" * 32])
    raises(
        data,
        rf"^audio\.audio: dtype '{dtype}' is not allowed; use bool, int8-64, uint8-64, "
        "float16-64, complex64 or complex128$",
    )


def test_big_endian_dtype_string_is_refused() -> None:
    data = audio_packet(array_fields(">f4"), [RAMP[:4].astype(">f4").tobytes()])
    raises(data, r"^audio\.audio: dtype '>f4' is big-endian; the wire carries little-endian data$")


# -- shapes and sizes ----------------------------------------------------------------


def test_byte_length_must_equal_dtype_times_shape() -> None:
    data = audio_packet(array_fields("<f4", (3,)), [b"\0" * 8])
    raises(data, r"^audio\.audio: 8 bytes do not match dtype <f4 x shape \(3,\) = 12 bytes$")


def test_inline_byte_length_must_equal_dtype_times_shape() -> None:
    data = audio_packet(array_fields("<i2", (2,), inline=b"\0" * 5))
    raises(data, r"^audio\.audio: 5 bytes do not match dtype <i2 x shape \(2,\) = 4 bytes$")


def test_array_without_data_is_refused_unless_empty() -> None:
    data = audio_packet(array_fields("<f4", (2,), blob=None))
    raises(data, r"^audio\.audio: 0 bytes do not match dtype <f4 x shape \(2,\) = 8 bytes$")


def test_negative_dimension_is_refused() -> None:
    data = audio_packet(array_fields("<f4", (-1,)), [b""])
    raises(data, r"^audio\.audio: shape \(-1,\) has a negative dimension$")


def test_more_elements_than_the_limit_are_refused() -> None:
    data = audio_packet(array_fields("|u1", (11,)), [b"\0" * 11])
    raises(
        data,
        r"^audio\.audio: shape \(11,\) has 11 elements, over the limit of 10$",
        WireLimits(max_array_elements=10),
    )


def test_more_bytes_than_the_limit_are_refused() -> None:
    data = audio_packet(array_fields("<f4", (8,)), [b"\0" * 32])
    raises(
        data,
        r"^audio\.audio: shape \(8,\) needs 32 bytes, over the limit of 16$",
        WireLimits(max_array_bytes=16),
    )


def test_more_than_32_dimensions_are_refused() -> None:
    data = audio_packet(array_fields("<f4", (1,) * 33), [b"\0" * 4])
    raises(data, r"^audio\.audio: shape has 33 dimensions, over the limit of 32$")


def test_empty_shape_with_huge_other_dimensions_is_refused() -> None:
    data = audio_packet(array_fields("<f4", (0, 2**62), blob=None))
    raises(
        data,
        r"^audio\.audio: shape \(0, 4611686018427387904\) is empty but its other dimensions "
        r"exceed the limit of \d+ elements$",
    )


# -- compression ---------------------------------------------------------------------


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def lz4_block(data: bytes) -> bytes:
    return lz4.block.compress(data, store_size=False)


def test_decompressed_size_over_the_limit_is_refused_before_decompressing() -> None:
    fields = array_fields("<f4", (1000,), compression=pb.COMPRESSION_ZSTD, raw_size=4000)
    data = audio_packet(fields, [zstd(RAMP.tobytes())])
    raises(
        data,
        r"^audio\.audio: shape \(1000,\) needs 4000 bytes, over the limit of 1000$",
        WireLimits(max_array_bytes=1000),
    )


def test_raw_size_must_equal_dtype_times_shape() -> None:
    fields = array_fields("<f4", (1000,), compression=pb.COMPRESSION_ZSTD, raw_size=999)
    data = audio_packet(fields, [zstd(RAMP.tobytes())])
    raises(data, r"^audio\.audio: raw_size 999 does not equal dtype x shape = 4000 bytes$")


def test_zstd_frame_declaring_another_size_is_refused_before_allocating() -> None:
    fields = array_fields("<f4", (1000,), compression=pb.COMPRESSION_ZSTD, raw_size=4000)
    data = audio_packet(fields, [zstd(RAMP.tobytes() * 2)])
    raises(data, r"^audio\.audio: zstd frame declares 8000 bytes but raw_size says 4000$")


@pytest.mark.parametrize(
    ("code", "name", "packed"),
    [
        (pb.COMPRESSION_ZSTD, "zstd", zstd(RAMP.tobytes())[:-8]),
        (pb.COMPRESSION_ZSTD, "zstd", b"not a zstd frame"),
        (pb.COMPRESSION_LZ4, "lz4", b"\xff" * 40),
    ],
)
def test_corrupt_compressed_data_is_refused(code: int, name: str, packed: bytes) -> None:
    fields = array_fields("<f4", (1000,), compression=code, raw_size=4000)
    raises(audio_packet(fields, [packed]), rf"^audio\.audio: {name} data is corrupt: ")


def test_compressed_data_shorter_than_raw_size_is_refused() -> None:
    fields = array_fields("<f4", (1000,), compression=pb.COMPRESSION_LZ4, raw_size=4000)
    data = audio_packet(fields, [lz4_block(RAMP[:500].tobytes())])
    raises(data, r"^audio\.audio: lz4 data decompressed to 2000 bytes but raw_size says 4000$")


def test_unknown_compression_code_is_refused() -> None:
    fields = array_fields("<f4", (4,), compression=7, raw_size=16)
    raises(audio_packet(fields, [b"\0" * 16]), r"^audio\.audio: unknown compression code 7$")


# -- blobs ---------------------------------------------------------------------------


def test_array_blob_index_out_of_range_is_refused() -> None:
    data = audio_packet(array_fields("<f4", (4,), blob=3), [b"\0" * 16])
    raises(data, r"^audio\.audio: refers to blob 3 but the frame carries 1$")


def test_bytes_blob_index_out_of_range_is_refused() -> None:
    packet = pb.Packet()
    packet.message.payload.bytes.blob = 2
    raises(packet.SerializeToString(), r"^bytes: refers to blob 2 but the frame carries 0$")


def test_bytes_blob_over_the_size_limit_is_refused() -> None:
    packet = pb.Packet()
    packet.message.payload.bytes.blob = 0
    packet.blobs.append(b"x" * 5000)
    raises(
        packet.SerializeToString(),
        r"^bytes: 5000 bytes, over the limit of 4096$",
        WireLimits(max_array_bytes=4096),
    )


def test_truncated_blob_is_refused() -> None:
    data = encode_message(Message(AudioPayload(RAMP, 16000)).freeze())
    raises(data[:-10], r"^truncated data: blob 0 declares 4000 bytes but only 3990 remain$")


def test_too_many_blobs_are_refused() -> None:
    data = audio_packet(array_fields("<f4", (1,)), [b"\0" * 4] * 3)
    raises(data, r"^too many blobs: more than 2 in one frame$", WireLimits(max_blobs=2))


def test_top_level_varint_longer_than_ten_bytes_is_refused() -> None:
    raises(b"\x08" + b"\xff" * 11, r"^malformed data: a varint is longer than 10 bytes$")


def test_top_level_group_wire_type_is_refused() -> None:
    raises(b"\x0b", r"^malformed data: wire type 3 for top-level field 1$")


def test_top_level_field_running_past_the_end_is_refused() -> None:
    raises(b"\x0a\x10abc", r"^truncated data: top-level field 1 runs past the end$")


# -- payloads, values and nesting ------------------------------------------------------


def test_payload_with_no_kind_is_refused() -> None:
    packet = pb.Packet()
    packet.message.id = 1
    raises(packet.SerializeToString(), r"^payload: no payload kind set \(or a kind this version")


def test_unknown_custom_payload_kind_is_refused() -> None:
    packet = pb.Packet()
    packet.message.payload.custom.kind = "nope"
    raises(
        packet.SerializeToString(),
        r"^payload: unknown payload kind 'nope'; the plugin that defines it must be installed "
        "and call fontus.remote.register_payload$",
    )


def test_payload_that_fails_validation_names_the_kind_and_the_problem() -> None:
    packet = pb.Packet()
    image = packet.message.payload.image
    image.width, image.height, image.depth = 5, 2, 3
    image.image.dtype = "|u1"
    image.image.shape.extend([2, 2, 3])
    image.image.inline = b"\0" * 12
    raises(
        packet.SerializeToString(),
        r"^payload image: ImagePayload: image shape \(2, 2, 3\) does not agree with height=2, "
        r"width=5, depth=3",
    )


def tree_packet(kinds: bytes, **columns: list[Any]) -> bytes:
    """A packet whose object payload is the value tree ``kinds`` + ``columns``, as given."""
    packet = pb.Packet()
    data = packet.message.payload.object.data
    data.kinds = kinds
    for name, values in columns.items():
        getattr(data, name).extend(values)
    packet.message.payload.object.SetInParent()
    return packet.SerializeToString()


def test_an_empty_value_map_is_the_empty_mapping() -> None:
    assert decode_message(tree_packet(b"")).payload.to_dict() == {}


def test_value_with_no_kind_is_refused() -> None:
    packet = pb.Packet()
    packet.message.payload.bytes.inline = b""
    packet.message.meta.kinds = b"m"
    packet.message.meta.ints.append(1)
    packet.message.meta.keys.append("x")
    raises(packet.SerializeToString(), r"^meta: value tree is truncated: ")


def test_duplicate_map_key_is_refused() -> None:
    data = tree_packet(b"mii", keys=["x", "x"], ints=[2, 1, 2])
    raises(data, r"^payload: key 'x' appears twice$")


@pytest.mark.parametrize(
    ("kinds", "columns", "error"),
    [
        (b"ms", {"keys": ["a"], "ints": [1]}, r"^payload: value tree is truncated: "),
        (b"mi", {"ints": [1, 5]}, r"^payload: value tree is truncated: "),
        (
            b"mx",
            {"keys": ["a"], "ints": [1]},
            r"^payload\.a: unknown value kind 'x' in the value tree$",
        ),
        (
            b"mit",
            {"keys": ["a"], "ints": [1, 5]},
            r"^payload: value tree has 1 kinds after its root value ends$",
        ),
        (
            b"m",
            {"ints": [0], "strings": ["left over"]},
            r"^payload: value tree has 1 unread entries in 'strings'$",
        ),
        (b"m", {"ints": [-1]}, r"^payload: map length -1 is negative$"),
        (b"ml", {"keys": ["a"], "ints": [1, -2]}, r"^payload\.a: list length -2 is negative$"),
        (b"s", {"strings": ["x"]}, r"^payload: expected a map, the value tree holds a string$"),
        (b"ma", {"keys": ["a"], "ints": [1]}, r"^payload: value tree is truncated: "),
    ],
    ids=[
        "missing string",
        "missing key",
        "unknown kind",
        "trailing kinds",
        "unread column",
        "negative map length",
        "negative list length",
        "root not a map",
        "missing array",
    ],
)
def test_malformed_value_trees_are_refused(
    kinds: bytes, columns: dict[str, list[Any]], error: str
) -> None:
    raises(tree_packet(kinds, **columns), error)


def test_a_value_tree_is_plain_protobuf_columns() -> None:
    message = Message(ObjectPayload({"a": 1, "b": [True, "x"], "c": None, "d": 0.5})).freeze()
    data = pb.Packet.FromString(encode_message(message)).message.payload.object.data
    assert data.kinds == b"miltsnd"
    assert list(data.keys) == ["a", "b", "c", "d"]
    assert list(data.ints) == [4, 1, 2]
    assert list(data.strings) == ["x"] and list(data.doubles) == [0.5]


def test_a_map_key_that_is_not_a_string_is_refused() -> None:
    # Payloads refuse such keys when built; a mapping handed to the encoder directly
    # (a plugin's to_fields, say) is checked too.
    with pytest.raises(WireError, match=r"^fields\.m: key 3 is not a string \(keys must be str\)$"):
        WireEncoder().value_map({"m": {3: "x"}}, pb.Value(), "fields")


def test_invalid_utf8_string_is_refused() -> None:
    packet = pb.Packet()
    packet.message.creator = "ab"
    data = packet.SerializeToString().replace(b"ab", b"\xff\xfe")
    raises(data, r"^malformed Packet: ")


def test_values_nested_deeper_than_the_limit_are_refused() -> None:
    message = Message(ObjectPayload({"a": {"b": [[1]]}})).freeze()
    data = encode_message(message)
    assert decode_message(data, WireLimits(max_depth=4)) == message
    raises(data, r"^payload\.a\.b\[0\]: values nested deeper than 3$", WireLimits(max_depth=3))


def test_batches_nested_deeper_than_the_limit_are_refused() -> None:
    message = Message(BytesPayload(b"x"))
    for _ in range(4):
        message = Message(Batch((message,)))
    data = encode_message(message.freeze())
    assert decode_message(data, WireLimits(max_depth=4)) == message
    raises(data, r"^batch: messages nested deeper than 3$", WireLimits(max_depth=3))


def test_batches_and_values_share_one_nesting_budget() -> None:
    inner = Message(ObjectPayload({"a": [1]}))  # two levels: the data map and the list
    data = encode_message(Message(Batch((inner,))).freeze())  # plus one for the batch
    decode_message(data, WireLimits(max_depth=3))
    raises(data, r"^payload\.a: values nested deeper than 2$", WireLimits(max_depth=2))


def test_input_that_is_not_bytes_is_refused() -> None:
    with pytest.raises(WireError, match=r"^expected bytes, got str$"):
        decode_message("not bytes")  # type: ignore[arg-type]


def test_packet_without_a_message_is_refused() -> None:
    raises(b"", r"^packet: no message in it$")


# -- encoding ------------------------------------------------------------------------


def test_int_outside_int64_is_refused_on_encode() -> None:
    with pytest.raises(
        WireError, match=r"^payload\.x\[1\]: int 18446744073709551616 is outside the int64 range"
    ):
        encode_message(Message(ObjectPayload({"x": [1, 2**64]})).freeze())
    with pytest.raises(WireError, match=r"^meta\.n: int -9223372036854775809 is outside"):
        encode_message(Message(BytesPayload(b""), meta={"n": -(2**63) - 1}).freeze())


@pytest.mark.parametrize("field", ["id", "version"])
def test_message_id_and_version_outside_int64_are_refused_on_encode(field: str) -> None:
    message = Message(BytesPayload(b""), **{field: 2**63}).freeze()
    with pytest.raises(WireError, match=rf"^message {field} 9223372036854775808 is outside"):
        encode_message(message)


def test_payload_field_outside_its_wire_range_is_refused_on_encode() -> None:
    message = Message(AudioPayload(RAMP, 2**31)).freeze()
    with pytest.raises(WireError, match=r"^payload audio: cannot encode: Value out of range"):
        encode_message(message)


def test_text_that_is_not_unicode_is_refused_on_encode() -> None:
    message = Message(ObjectPayload({"k": "\udc80"})).freeze()
    with pytest.raises(WireError, match=r"^payload object: cannot encode: .*surrogates"):
        encode_message(message)


def test_long_double_arrays_are_refused_on_encode() -> None:
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("long double is a plain double on this platform")
    message = Message(ObjectPayload({"a": np.zeros(2, np.longdouble)})).freeze()
    with pytest.raises(WireError, match=r"^array dtype float128 cannot travel"):
        encode_message(message)


def test_value_of_a_type_that_cannot_travel_is_refused_on_encode() -> None:
    message = Message(BytesPayload(b""), meta={"s": {1, 2}})  # never frozen, so never checked
    with pytest.raises(WireError, match=r"^meta\.s: type set cannot travel$"):
        encode_message(message)


def test_unregistered_payload_type_is_refused_on_encode() -> None:
    @dataclass(frozen=True, eq=False)
    class Unregistered(Payload):
        kind = "test.unregistered"
        n: int = 0

    with pytest.raises(
        WireError,
        match=r"^payload type Unregistered is not registered for the wire; call "
        r"fontus\.remote\.register_payload on it$",
    ):
        encode_message(Message(Unregistered()).freeze())


def test_compressed_array_without_the_library_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fields = array_fields("<f4", (1000,), compression=pb.COMPRESSION_ZSTD, raw_size=4000)
    data = audio_packet(fields, [zstd(RAMP.tobytes())])
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard now fails
    raises(
        data,
        r"^audio\.audio: array is zstd-compressed but the library is not installed here; "
        r"pip install 'fontus\[compression\]'$",
    )


# -- value trees in their MessagePack form ---------------------------------------------


def packed_packet(raw: bytes, **columns: Any) -> bytes:
    """A packet whose object payload is the MessagePack tree ``raw`` (plus ``columns``)."""
    packet = pb.Packet()
    data = packet.message.payload.object.data
    data.msgpack = raw
    for name, values in columns.items():
        if name == "kinds":
            data.kinds = values
        else:
            getattr(data, name).extend(values)
    return packet.SerializeToString()


def deep(levels: int) -> bytes:
    return b"\x81\xa1a" * levels + b"\x01"  # {"a": {"a": ... 1}}


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"\x82\xa1a\x01\xa1a\x02", r"^payload: key 'a' appears twice in a map$"),
        (
            msgpack.packb({1: 2}),
            r"^payload: malformed MessagePack value tree: a map key is not a string",
        ),
        (msgpack.packb({b"k": 2}), r"^payload: key b'k' is not a string \(keys must be str\)$"),
        (
            msgpack.packb({"u": 2**64 - 1}),
            r"^payload\.u: int 18446744073709551615 is outside the int64",
        ),
        (msgpack.packb({"l": [1, 2**63]}), r"^payload\.l\[1\]: int 9223372036854775808 is outside"),
        (
            msgpack.packb({"a": 1}) + b"\x00",
            r"^payload: MessagePack value tree has bytes after its root",
        ),
        (
            b"\x81\xa1a\xc4\x05ab",
            r"^payload: malformed MessagePack value tree: Unpack failed: incomplete",
        ),
        (
            b"\x81\xa1a\xa2\xff\xfe",
            r"^payload: malformed MessagePack value tree: 'utf-8' codec can't",
        ),
        (b"\xc1", r"^payload: malformed MessagePack value tree: \w+"),
        (
            msgpack.packb({"e": msgpack.ExtType(5, b"x")}),
            r"^payload: MessagePack ext type 5 is not part",
        ),
        (
            msgpack.packb({"t": msgpack.Timestamp(1, 0)}),
            r"^payload\.t: a Timestamp cannot travel in a value",
        ),
        (
            msgpack.packb([1, 2]),
            r"^payload: expected a map, the MessagePack value tree holds a list$",
        ),
        (msgpack.packb("x"), r"^payload: expected a map, the MessagePack value tree holds a str$"),
        (deep(25), r"^payload(\.a){24}: values nested deeper than 24$"),
        (b"\x91" * 2000 + b"\x90", r"^payload: malformed MessagePack value tree: StackError"),
        (
            b"\xdf\xff\xff\xff\xff",
            r"^payload: malformed MessagePack value tree: 4294967295 exceeds",
        ),
    ],
    ids=[
        "duplicate key",
        "int key",
        "bytes key",
        "uint64",
        "int over int64 in a list",
        "trailing bytes",
        "truncated",
        "bad utf-8",
        "reserved byte",
        "ext type",
        "timestamp",
        "root is a list",
        "root is a string",
        "too deep",
        "deeper than msgpack's stack",
        "a map declaring 4 billion entries",
    ],
)
def test_malformed_msgpack_trees_are_refused(raw: bytes, error: str) -> None:
    raises(packed_packet(raw), error)


def test_msgpack_depth_shares_the_nesting_budget_with_columns() -> None:
    assert (
        decode_message(packed_packet(deep(3)), WireLimits(max_depth=4)).payload["a"]["a"]["a"] == 1
    )
    raises(
        packed_packet(deep(3)),
        r"^payload\.a\.a: values nested deeper than 2$",
        WireLimits(max_depth=2),
    )


def test_a_msgpack_list_of_leaves_counts_in_the_nesting_budget() -> None:
    # A list of numbers or strings is checked without a call of its own: the limit
    # still holds for it, with its path.
    raw = msgpack.packb({"a": {"b": [[1, "x"]]}})
    assert decode_message(packed_packet(raw), WireLimits(max_depth=4)).payload["a"]["b"] == (
        (1, "x"),
    )
    raises(
        packed_packet(raw),
        r"^payload\.a\.b\[0\]: values nested deeper than 3$",
        WireLimits(max_depth=3),
    )
    raises(
        packed_packet(msgpack.packb({"a": [1, 2**64 - 1]})),
        r"^payload\.a\[1\]: int 18446744073709551615 is outside the int64 range$",
    )


def test_a_tree_with_both_msgpack_and_columns_is_refused() -> None:
    raw = msgpack.packb({"a": 1})
    for columns in ({"kinds": b"m", "ints": [0]}, {"strings": ["x"]}):
        raises(
            packed_packet(raw, **columns),
            r"^payload: value tree has both a MessagePack form and columns$",
        )
