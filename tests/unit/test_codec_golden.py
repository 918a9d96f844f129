"""Golden bytes: fixed messages encode to exactly the bytes kept in ``golden/*.bin``.

Other implementations and older Fontus versions depend on these bytes, so a
change must be deliberate.  To regenerate after a deliberate schema change::

    FONTUS_UPDATE_GOLDEN=1 pytest tests/unit/test_codec_golden.py

and say what changed in docs/wire.md.  Each golden message has at most one
timer: protobuf does not promise an order for map entries.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fontus.core import (
    AudioPayload,
    Batch,
    BytesPayload,
    ImagePayload,
    Message,
    ObjectPayload,
)
from fontus.remote import decode_message, encode_message

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("FONTUS_UPDATE_GOLDEN") == "1"
#: Fixed identity so that the bytes do not depend on the clock or the id counter.
FIXED = {"created_at": 1_700_000_000.25, "creator": "golden", "version": 3}


def object_message() -> Message[Any]:
    data = {
        "int": 2**53 + 1,
        "negative": -7,
        "float": 0.5,
        "bool": True,
        "none": None,
        "text": "héllo",
        "bytes": b"\x00\xff",
        "list": [1, "two", 3.0],
        "map": {"nested": [False]},
        "array": np.arange(6, dtype="<i2").reshape(2, 3),
    }
    return Message(
        ObjectPayload(data), id=1, meta={"seq": 12}, timers={"source": 0.125}, **FIXED
    ).freeze()


def audio_message() -> Message[Any]:
    # 20 ms of 16 kHz int16 audio: a fixed ramp.
    ramp = (np.arange(320, dtype=np.int16) * 100 - 16000).astype("<i2")
    return Message(
        AudioPayload(ramp, 16000, 1, "s16le", 1.0, 1.02), id=2, meta={"channel": "mic"}, **FIXED
    ).freeze()


def image_message() -> Message[Any]:
    pixels = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)  # height 4, width 3, rgb
    return Message(ImagePayload(pixels, 3, 4, 3, "rgb24", 2.5), id=3, **FIXED).freeze()


def batch_message() -> Message[Any]:
    first = Message(ObjectPayload({"n": 1}), id=10, **FIXED)
    second = Message(BytesPayload(b"second"), id=11, timers={"t": 1.0}, **FIXED)
    return Message(Batch((first, second)), id=4, **FIXED).freeze()


def bytes_message() -> Message[Any]:
    return Message(BytesPayload(b"fontus\x00\x01"), id=5, **FIXED).freeze()


def blob_bytes_message() -> Message[Any]:
    # Long enough (>= 4096 bytes) to travel as a blob after the head.
    return Message(BytesPayload(bytes(range(256)) * 20), id=6, **FIXED).freeze()


CASES: dict[str, Callable[[], Message[Any]]] = {
    "object": object_message,
    "audio_20ms_int16": audio_message,
    "image_rgb24": image_message,
    "batch": batch_message,
    "bytes": bytes_message,
    "bytes_blob": blob_bytes_message,
}


def first_difference(a: bytes, b: bytes) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


@pytest.mark.parametrize("name", list(CASES))
def test_encoding_matches_the_golden_bytes(name: str) -> None:
    path = GOLDEN / f"{name}.bin"
    data = encode_message(CASES[name]())
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(data)
        pytest.skip(f"rewrote {path.name}")
    assert path.exists(), f"{path} is missing; create it with FONTUS_UPDATE_GOLDEN=1"
    golden = path.read_bytes()
    assert data == golden, (
        f"the fontus.v1 encoding of {name!r} changed ({len(data)} bytes now, {len(golden)} in "
        f"{path.name}, first difference at byte {first_difference(data, golden)}). Other "
        "implementations read these bytes: a wire change must be deliberate. If it is, "
        "regenerate with FONTUS_UPDATE_GOLDEN=1 and describe the change in docs/wire.md."
    )


@pytest.mark.parametrize("name", list(CASES))
def test_golden_bytes_decode_to_the_message(name: str) -> None:
    path = GOLDEN / f"{name}.bin"
    if not path.exists():
        pytest.skip(f"{path.name} not written yet")
    assert decode_message(path.read_bytes()) == CASES[name]()


def test_the_audio_golden_carries_the_samples_as_one_blob_at_the_end() -> None:
    data = encode_message(audio_message())
    samples = audio_message().payload.audio.tobytes()
    # blob field 15, wire type 2: tag 0x7a, then the varint length 640 (0x80 0x05)
    assert data.endswith(b"\x7a\x80\x05" + samples)
