"""Fontus's Juturna codec against the real juturna==2.1.1, in both directions.

``juturna_side.py`` runs in the Python 3.12 venv and uses only Juturna's own
serialization: it encodes envelopes Fontus must read, and decodes envelopes
Fontus wrote, answering with a JSON summary (dtype, shape, sha256 of array
bytes, scalar fields) that is compared with the same summary made here.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fontus.remote.juturna as jt
from fontus.core import Message
from fontus.core.payloads import (
    AudioPayload,
    Batch,
    BytesPayload,
    ImagePayload,
    ObjectPayload,
    Payload,
    VideoPayload,
)

pytestmark = pytest.mark.interop

HELPER = str(Path(__file__).with_name("juturna_side.py"))
RunJuturna = Callable[..., str]


# -- summaries, the same shape juturna_side.py makes ------------------------------------
def array_summary(array: np.ndarray) -> dict[str, Any]:
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "sha256": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest(),
    }


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def image_summary(p: ImagePayload) -> dict[str, Any]:
    return {
        "kind": "image",
        **array_summary(p.image),
        "width": p.width,
        "height": p.height,
        "depth": p.depth,
        "pixel_format": p.pixel_format,
        "timestamp": p.timestamp,
    }


def payload_summary(p: Payload) -> dict[str, Any]:
    if isinstance(p, AudioPayload):
        return {
            "kind": "audio",
            **array_summary(p.audio),
            "sampling_rate": p.sampling_rate,
            "channels": p.channels,
            "audio_format": p.audio_format,
            "start": p.start,
            "end": p.end,
        }
    if isinstance(p, ImagePayload):
        return image_summary(p)
    if isinstance(p, VideoPayload):
        return {
            "kind": "video",
            "frames": [image_summary(f) for f in p.frames],
            "frames_per_second": p.frames_per_second,
            "codec": p.codec,
            "start": p.start,
            "end": p.end,
        }
    if isinstance(p, BytesPayload):
        return {"kind": "bytes", "sha256": hashlib.sha256(p.cnt).hexdigest(), "size": len(p.cnt)}
    if isinstance(p, ObjectPayload):
        return {"kind": "object", "data": plain(p.data)}
    if isinstance(p, Batch):
        return {"kind": "batch", "messages": [summary(m) for m in p.messages]}
    raise TypeError(type(p).__name__)


def summary(m: Message[Any]) -> dict[str, Any]:
    return {
        "id": m.id,
        "creator": m.creator,
        "version": m.version,
        "created_at": m.created_at,
        "timers": dict(m.timers),
        "meta": plain(m.meta),
        "payload": payload_summary(m.payload),
    }


def decode(envelope_b64: str) -> tuple[Any, Message[Any]]:
    envelope = jt.envelope_from_bytes(base64.b64decode(envelope_b64))
    message = jt.envelope_message(envelope)
    assert message is not None
    return envelope, message


# -- Juturna → Fontus -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def from_juturna(run_juturna: RunJuturna) -> dict[str, Any]:
    cases: dict[str, Any] = json.loads(run_juturna([HELPER, "encode"]))
    return cases


def expected(case: Mapping[str, Any], **payload_changes: Any) -> dict[str, Any]:
    """The Juturna-side summary of what was sent, with the changes the wire makes."""
    out = copy.deepcopy(dict(case["input"]))
    out["payload"].update(payload_changes)
    return out


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("image_rgb", {}),
        ("image_gray16", {}),
        ("video", {}),
        ("video_empty", {}),
        ("bytes", {}),
        # Juturna's encoder sends its "unset" -1 depth; Fontus infers it from the bytes.
        ("image_depth_unset", {"depth": 3}),
        # Juturna's default channels=-1: Fontus takes the count from the shape.
        ("audio_unset_channels", {"channels": 1}),
        # One-dimensional audio with channels=2 is interleaved: Fontus makes it (samples, 2).
        ("audio_interleaved", {"shape": [4, 2]}),
    ],
)
def test_fontus_reads_what_juturna_writes(
    from_juturna: dict[str, Any], case: str, changes: dict[str, Any]
) -> None:
    _, message = decode(from_juturna[case]["envelope"])
    assert summary(message) == expected(from_juturna[case], **changes)


def test_fontus_reads_juturna_audio_whose_format_juturna_does_not_send(
    from_juturna: dict[str, Any],
) -> None:
    case = from_juturna["audio_stereo"]
    _, message = decode(case["envelope"])
    assert case["input"]["payload"]["audio_format"] == "s16"
    want = expected(case, audio_format="")  # Juturna 2.1.1 never writes field 8
    # Juturna's meta sanitizer turns bytes into base64 text and arrays into lists.
    want["meta"] = {
        "n": 3.0,
        "lang": "it",
        "nested": {"xs": [1.0, 2.0]},
        "raw": "AAE=",
        "arr": [4.0, 5.0],
    }
    assert summary(message) == want
    assert type(message.meta["n"]) is float


def test_fontus_reads_juturna_objects_with_every_number_a_float(
    from_juturna: dict[str, Any],
) -> None:
    case = from_juturna["object"]
    _, message = decode(case["envelope"])
    want = expected(case)
    assert want["payload"].pop("types")["a"] == "int"
    assert summary(message) == want  # the values compare equal ...
    assert type(message.payload["a"]) is float  # ... but 1 arrived as 1.0
    again = jt.message_from_proto(jt.message_to_proto(message), ints=True)
    assert type(again.payload["a"]) is int and again.payload["d"][2] == {"e": True}


def test_fontus_reads_juturna_batches_message_by_message(from_juturna: dict[str, Any]) -> None:
    case = from_juturna["batch"]
    _, message = decode(case["envelope"])
    want = expected(case)
    for inner in want["payload"]["messages"]:
        inner["payload"].pop("types", None)
    assert summary(message) == want


def test_juturna_envelope_fields_reach_fontus(from_juturna: dict[str, Any]) -> None:
    envelope, _ = decode(from_juturna["bytes"]["envelope"])
    assert (envelope.sender, envelope.ttl, envelope.response_to, envelope.priority) == (
        "jt-sender",
        12,
        "",
        1,
    )
    assert jt.read_struct(envelope.configuration, ints=True) == {"threshold": 0.5, "n": 2}
    assert jt.read_struct(envelope.metadata) == {"processing_time": 0.25}


def test_juturna_reuses_one_envelope_id_per_process(from_juturna: dict[str, Any]) -> None:
    # A fact Fontus must live with: Juturna 2.1.1's default envelope id is computed once.
    ids = {decode(case["envelope"])[0].id for case in from_juturna.values()}
    assert len(ids) == 1 and len(ids.pop()) == 36


# -- Fontus → Juturna -----------------------------------------------------------------------
def ramp(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> np.ndarray:
    return ((np.arange(int(np.prod(shape))) * 5 + seed) % 127).astype(dtype).reshape(shape)


def fontus_messages() -> dict[str, Message[Any]]:
    def m(payload: Payload, i: int, **meta: Any) -> Message[Any]:
        return Message(
            payload,
            id=i,
            creator="fontus-node",
            version=i * 10,
            created_at=1800000000.25 + i,
            meta=meta,
            timers={"queued": 0.5, "done": 0.75},
        ).freeze()

    frames = tuple(
        ImagePayload.from_array(ramp((2, 4, 3), np.uint8, s), "rgb24", s / 30) for s in range(2)
    )
    return {
        "audio_stereo": m(
            AudioPayload(ramp((64, 2), np.float32) / 127, 48000, 2, "s16le", 2.0, 2.5),
            1,
            lang="it",
            n=2,
            tags=["a", "b"],
        ),
        "audio_mono": m(AudioPayload(ramp((100,), np.int16), 16000), 2),
        "image_rgb": m(ImagePayload(ramp((3, 5, 3), np.uint8), 5, 3, 3, "rgb24", 9.5), 3),
        "image_gray": m(ImagePayload(ramp((3, 5), np.uint8), 5, 3, 1, "gray8"), 4),
        "image_rgba_float": m(ImagePayload(ramp((2, 2, 4), np.float32), 2, 2, 4, "rgbaf32"), 5),
        "video": m(VideoPayload(frames, 30.0, "raw", 0.0, 0.066), 6),
        "video_empty": m(VideoPayload((), 24.0, "h264", 1.0, 2.0), 7),
        "bytes": m(BytesPayload(bytes(range(200))), 8),
        "object": m(
            ObjectPayload({"a": 1, "b": 2.5, "c": "x", "d": [1, {"e": True}], "f": None}), 9
        ),
        "batch": m(Batch((m(ObjectPayload({"k": "v"}), 11), m(BytesPayload(b"inner"), 12))), 10),
    }


@pytest.fixture(scope="module")
def to_juturna(run_juturna: RunJuturna) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the envelopes Fontus sent, what Juturna's deserializer made of them)."""
    envelopes = {
        name: jt.make_request_envelope(
            message, "fontus-client", ttl=9, configuration={"threshold": 0.5}, receiver="jt-node"
        )
        for name, message in fontus_messages().items()
    }
    envelopes["reply"] = jt.make_reply_envelope(
        envelopes["bytes"],
        fontus_messages()["image_rgb"],
        {"processing_time": 0.125},
        sender="fontus-server",
    )
    sent = {k: base64.b64encode(jt.envelope_to_bytes(e)).decode() for k, e in envelopes.items()}
    return envelopes, json.loads(run_juturna([HELPER, "decode"], json.dumps(sent)))


@pytest.mark.parametrize(
    "case", ["audio_mono", "image_rgb", "image_gray", "image_rgba_float", "video_empty", "bytes"]
)
def test_juturna_reads_what_fontus_writes(
    to_juturna: tuple[dict[str, Any], dict[str, Any]], case: str
) -> None:
    envelopes, read = to_juturna
    got = read[case]
    assert "juturna_error" not in got, got.get("juturna_error")
    mine = summary(fontus_messages()[case])
    assert {k: got[k] for k in mine} == mine
    kind = type(fontus_messages()[case].payload).__name__.replace("Payload", "")
    assert got["type_url"] == f"type.googleapis.com/juturna.proto.payloads.{kind}ProtoPayload"
    assert got["envelope"] == {
        "id": envelopes[case].id,
        "sender": "fontus-client",
        "receiver": "jt-node",
        "response_to": "",
        "ttl": 9,
        "priority": 0,
        "request_type": type(fontus_messages()[case].payload).__name__,
        "created_at": envelopes[case].created_at,
        "configuration": {"threshold": 0.5},
        "metadata": {},
    }


def test_juturna_reads_fontus_audio_and_ignores_its_format_field(
    to_juturna: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    got = to_juturna[1]["audio_stereo"]
    mine = summary(fontus_messages()["audio_stereo"])
    mine["payload"]["audio_format"] = ""  # Juturna's reader does not copy field 8 ...
    assert {k: got[k] for k in mine} == mine
    assert got["wire_audio_format"] == "s16le"  # ... though its schema sees it on the wire


def test_juturna_reads_fontus_objects_as_floats(
    to_juturna: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    got = to_juturna[1]["object"]
    assert got["payload"]["data"] == {
        "a": 1.0,
        "b": 2.5,
        "c": "x",
        "d": [1.0, {"e": True}],
        "f": None,
    }
    assert got["payload"]["types"]["a"] == "float"


def test_juturna_cannot_deserialize_a_video_with_frames_but_its_frames_are_right(
    to_juturna: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    got = to_juturna[1]["video"]
    # Juturna 2.1.1's VideoPayload constructor fails on ImagePayload frames (no .nbytes).
    assert "nbytes" in got["juturna_error"]
    assert got["video_frames"] == summary(fontus_messages()["video"])["payload"]["frames"]


def test_juturna_cannot_deserialize_a_batch_but_its_messages_are_right(
    to_juturna: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    got = to_juturna[1]["batch"]
    # Juturna 2.1.1 builds its Batch from the undecoded ProtoMessages, then fails on them.
    assert "size_bytes" in got["juturna_error"]
    for inner in got["batch_messages"]:
        inner["payload"].pop("types", None)
    assert got["batch_messages"] == summary(fontus_messages()["batch"])["payload"]["messages"]


def test_juturna_sees_a_fontus_reply_answer_its_request(
    to_juturna: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    envelopes, read = to_juturna
    got = read["reply"]["envelope"]
    assert got["response_to"] == envelopes["bytes"].id != got["id"]
    assert (got["sender"], got["receiver"], got["ttl"]) == ("fontus-server", "fontus-client", 9)
    assert got["metadata"] == {"processing_time": 0.125}
    assert read["reply"]["payload"] == summary(fontus_messages()["image_rgb"])["payload"]
