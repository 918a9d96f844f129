"""Bounded fuzzing of ``decode_message``: hostile bytes give a Message or a WireError, nothing else.

Seeded and bounded in count and time.  Inputs are random bytes and valid
encodings mutated by bit flips, truncations, insertions, deletions and
corrupted length fields.  Memory stays bounded: the limits refuse any size
before allocating it.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from fontus.core import (
    AudioPayload,
    Batch,
    BytesPayload,
    ConfigPayload,
    ControlPayload,
    ImagePayload,
    Message,
    ObjectPayload,
    VideoPayload,
    WireError,
)
from fontus.remote import CompressionConfig, WireLimits, decode_message, encode_message

SEED = 20240603
CASES = 10_000
#: Stop early rather than run long on a loaded machine; the count below must still be reached.
TIME_BUDGET_S = 8.0
MIN_CASES = 1000
#: Peak resident memory may grow by at most this much over the whole run.
MAX_RSS_GROWTH_MB = 64
#: Small limits so that a mutated size is refused cheaply, as a server would configure them.
LIMITS = WireLimits(max_array_bytes=1 << 20, max_array_elements=1 << 18)


def seed_messages() -> list[bytes]:
    ramp = np.arange(2048, dtype=np.float32) / 2048
    image = (np.arange(8 * 6 * 3) % 251).astype(np.uint8).reshape(8, 6, 3)
    obj = {
        "n": 2**60,
        "f": -1.5,
        "s": "text",
        "b": b"\x01\x02",
        "list": [1, [2.0, None], {"deep": True}],
        "a": np.arange(12, dtype=">i4").reshape(3, 4),
        "empty": np.zeros((0, 3), np.uint16),
    }
    messages = [
        Message(ObjectPayload(obj), meta={"k": [1, "x"]}, timers={"t": 1.0}),
        Message(AudioPayload(ramp, 16000, end=0.128), meta={"a": np.zeros(3, np.complex64)}),
        Message(AudioPayload(np.zeros((64, 2), np.int16), 8000, channels=2)),
        Message(ImagePayload.from_array(image)),
        Message(VideoPayload((ImagePayload.from_array(image),) * 2, 25.0)),
        Message(BytesPayload(bytes(range(256)) * 20)),
        Message(BytesPayload(b"small")),
        Message(ControlPayload("flush", {"why": "end"})),
        Message(ConfigPayload({"gain": 0.5})),
        Message(
            Batch(
                (
                    Message(ObjectPayload({"x": 1})),
                    Message(Batch((Message(BytesPayload(b"y" * 5000)),))),
                )
            )
        ),
    ]
    encodings = [encode_message(m.freeze()) for m in messages]
    # Value trees in their MessagePack form (trees without arrays, when the reader reads it).
    plain = {k: v for k, v in obj.items() if not isinstance(v, np.ndarray)}
    packed = [Message(ObjectPayload(plain), meta={"k": [1, "x"]}), messages[7], messages[9]]
    encodings.extend(encode_message(m.freeze(), pack_trees=True) for m in packed)
    for algorithm in ("zstd", "lz4"):
        compression = CompressionConfig(algorithm, threshold_bytes=0)
        encodings.append(encode_message(messages[1], compression))
        encodings.append(encode_message(messages[3], compression))
    return encodings


def read_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(data) and shift < 70:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def length_fields(data: bytes, base: int = 0, depth: int = 0) -> Iterator[tuple[int, int]]:
    """``(offset, size)`` of every length varint, found by walking the protobuf structure."""
    pos, end = 0, len(data)
    while pos < end:
        tag = read_varint(data, pos)
        if tag is None or tag[0] >> 3 == 0:
            return
        wire_type, pos = tag[0] & 7, tag[1]
        if wire_type == 0:
            skip = read_varint(data, pos)
            if skip is None:
                return
            pos = skip[1]
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            length = read_varint(data, pos)
            if length is None or length[1] + length[0] > end:
                return
            yield base + pos, length[1] - pos
            inner = data[length[1] : length[1] + length[0]]
            if depth < 12:
                yield from length_fields(inner, base + length[1], depth + 1)
            pos = length[1] + length[0]
        else:
            return


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def flip_bits(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def insert(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.randint(1, 16)) + data[i:]


def delete(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 16) :]


def corrupt_length(rng: random.Random, data: bytes) -> bytes:
    fields = list(length_fields(data))
    if not fields:
        return flip_bits(rng, data)
    offset, size = rng.choice(fields)
    old = read_varint(data, offset)
    assert old is not None
    choices = [0, 1, old[0] - 1, old[0] + 1, old[0] * 2, 2**31, 2**32 + 5, 2**63, 2**64 - 1]
    new = max(0, rng.choice(choices))
    return data[:offset] + varint(new) + data[offset + size :]


def replace_byte(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    return (
        data[:i] + bytes([rng.choice([0x00, 0x7A, 0x80, 0xFF, rng.randrange(256)])]) + data[i + 1 :]
    )


MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [
    flip_bits,
    truncate,
    insert,
    delete,
    corrupt_length,
    corrupt_length,
    replace_byte,
]


def cases(rng: random.Random, seeds: list[bytes]) -> Iterator[bytes]:
    for i in range(CASES):
        if i % 8 == 0:
            yield rng.randbytes(rng.randint(0, 256))
        else:
            data = rng.choice(seeds)
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                if data:
                    data = rng.choice(MUTATIONS)(rng, data)
            yield data


def decode_outcome(data: bytes) -> str:
    try:
        message: Any = decode_message(data, LIMITS)
    except WireError:
        return "error"
    except Exception as exc:  # the point of the test: report what escaped
        raise AssertionError(
            f"decode_message raised {type(exc).__name__}: {exc}\ninput ({len(data)} bytes): "
            f"{data[:400].hex()}"
        ) from exc
    assert isinstance(message, Message) and message.frozen
    return "message"


def test_mutated_and_random_bytes_decode_to_a_message_or_a_wire_error() -> None:
    rng = random.Random(SEED)
    seeds = seed_messages()
    for data in seeds:
        assert decode_outcome(data) == "message"
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    outcomes = {"message": 0, "error": 0}
    for data in cases(rng, seeds):
        outcomes[decode_outcome(data)] += 1
        if time.monotonic() - started > TIME_BUDGET_S:
            break
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    total = sum(outcomes.values())
    assert total >= MIN_CASES, f"only {total} cases in {TIME_BUDGET_S} s"
    assert outcomes["error"] > total // 4, outcomes  # the mutations do reach the checks
    assert growth_mb < MAX_RSS_GROWTH_MB, f"peak memory grew by {growth_mb:.0f} MB"


def test_corrupted_length_fields_are_found_in_every_seed() -> None:
    # The length walker must see nested fields, or corrupt_length degenerates to bit flips.
    for data in seed_messages():
        assert len(list(length_fields(data))) >= 3
