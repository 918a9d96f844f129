"""The Juturna side of the interop tests: runs in the Python 3.12 venv with juturna[warp]==2.1.1.

Uses only Juturna's own serialization (``juturna.remotizer.utils``) and schema
classes, never Fontus::

    python juturna_side.py encode   # stdout: JSON {case: {"envelope": base64, "input": summary}}
    python juturna_side.py decode   # stdin: JSON {case: base64 envelope}; stdout: {case: summary}

A summary describes a message with plain JSON values: arrays as dtype, shape
and the sha256 of their C-order bytes; everything else as it is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from typing import Any

import numpy as np
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message as ProtoBase
from juturna.components import Message
from juturna.payloads import (
    AudioPayload,
    Batch,
    BytesPayload,
    ImagePayload,
    ObjectPayload,
    VideoPayload,
)
from juturna.remotizer.c_protos.payloads_pb2 import (
    AudioProtoPayload,
    BatchProto,
    ProtoEnvelope,
    ProtoMessage,
    VideoProtoPayload,
)
from juturna.remotizer.utils import (
    _deserialize_image_payload,
    create_envelope,
    deserialize_envelope,
    deserialize_message,
    message_to_proto,
)


def array_summary(array: np.ndarray) -> dict[str, Any]:
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "sha256": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest(),
    }


def plain(value: Any) -> Any:
    """JSON form of a value; Struct and ListValue objects (Juturna's meta holds them) too."""
    if isinstance(value, ProtoBase):
        return MessageToDict(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, np.ndarray):
        return {"array": array_summary(value)}
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


def payload_summary(p: Any) -> dict[str, Any]:
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
            "frames": [image_summary(f) for f in p.video],
            "frames_per_second": p.frames_per_second,
            "codec": p.codec,
            "start": p.start,
            "end": p.end,
        }
    if isinstance(p, BytesPayload):
        return {"kind": "bytes", "sha256": hashlib.sha256(p.cnt).hexdigest(), "size": len(p.cnt)}
    if isinstance(p, ObjectPayload):
        data = dict(p)
        return {
            "kind": "object",
            "data": plain(data),
            "types": {k: type(v).__name__ for k, v in data.items()},
        }
    if isinstance(p, Batch):
        return {"kind": "batch", "messages": [message_summary(m) for m in p.messages]}
    raise TypeError(f"no summary for {type(p).__name__}")


def message_summary(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "creator": m.creator,
        "version": m.version,
        "created_at": m.created_at,
        "timers": dict(m.timers),
        "meta": plain(dict(m.meta)),
        "payload": payload_summary(m.payload),
    }


def juturna_message(payload: Any, msg_id: int, **meta: Any) -> Message:
    message = Message(creator="jt-node", version=msg_id + 1, payload=payload)
    message.id = msg_id
    message.created_at = 1700000000.5 + msg_id
    message.meta.update(meta)
    message.timers.update({"t0": 1.25, "t1": 2.5})
    return message


def frames(h: int, w: int, d: int, dtype: Any = np.uint8, seed: int = 0) -> np.ndarray:
    shape = (h, w) if d == 1 else (h, w, d)
    return ((np.arange(h * w * d) * 7 + seed) % 251).astype(dtype).reshape(shape)


def unchecked_video(**fields: Any) -> VideoPayload:
    """A VideoPayload with frames, built around its constructor.

    Juturna 2.1.1's VideoPayload constructor sums ``frame.nbytes`` over its
    ImagePayload frames, which have no such attribute, so a video with frames
    cannot be constructed normally; its wire encoder reads only the fields.
    """
    video = object.__new__(VideoPayload)
    for name, value in fields.items():
        object.__setattr__(video, name, value)
    return video


def cases() -> dict[str, Message]:
    t = np.arange(480, dtype=np.float32) / 48000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.cos(2 * np.pi * 220 * t)], axis=1)
    return {
        "audio_stereo": juturna_message(
            AudioPayload(
                audio=stereo.astype(np.float32),
                sampling_rate=48000,
                audio_format="s16",
                channels=2,
                start=1.0,
                end=1.01,
            ),
            1,
            n=3,
            lang="it",
            nested={"xs": [1, 2]},
            raw=b"\x00\x01",
            arr=np.array([4, 5]),
        ),
        "audio_unset_channels": juturna_message(
            AudioPayload(audio=np.arange(160, dtype=np.int16), sampling_rate=16000), 2
        ),
        "audio_interleaved": juturna_message(
            AudioPayload(audio=np.arange(8, dtype=np.int16), sampling_rate=16000, channels=2), 3
        ),
        "image_rgb": juturna_message(ImagePayload(frames(4, 6, 3), 6, 4, 3, "rgb24", 3.5), 4),
        "image_depth_unset": juturna_message(
            ImagePayload(image=frames(4, 6, 3), width=6, height=4, pixel_format="rgb24"), 5
        ),
        "image_gray16": juturna_message(
            ImagePayload(frames(4, 6, 1, np.uint16), 6, 4, 1, "gray16le", 0.0), 6
        ),
        "video": juturna_message(
            unchecked_video(
                video=[
                    ImagePayload(frames(2, 3, 3, seed=i), 3, 2, 3, "rgb24", i / 25)
                    for i in range(3)
                ],
                frames_per_second=25.0,
                codec="raw",
                start=0.0,
                end=0.12,
            ),
            7,
        ),
        "video_empty": juturna_message(
            VideoPayload(video=[], frames_per_second=30.0, codec="h264", start=1.0, end=2.0), 13
        ),
        "bytes": juturna_message(BytesPayload(cnt=bytes(range(256))), 8),
        "object": juturna_message(
            ObjectPayload(a=1, b=2.5, c="x", d=[1, 2, {"e": True}], f=None), 9
        ),
        "batch": juturna_message(
            Batch(
                messages=(
                    juturna_message(ObjectPayload(k="v"), 11),
                    juturna_message(BytesPayload(cnt=b"inner"), 12),
                )
            ),
            10,
        ),
    }


def encode() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, message in cases().items():
        envelope = create_envelope(
            message=message_to_proto(message),
            configuration={"threshold": 0.5, "n": 2},
            metadata={"processing_time": 0.25},
            creator="jt-sender",
            timeout=12,
        )
        out[name] = {
            "envelope": base64.b64encode(envelope.SerializeToString()).decode(),
            "input": message_summary(message),
        }
    return out


def decode(envelopes: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, data in envelopes.items():
        envelope = ProtoEnvelope.FromString(base64.b64decode(data))
        try:
            fields = deserialize_envelope(envelope)
        except Exception as exc:  # noqa: BLE001 - reported to the test, which expects some
            out[name] = {"juturna_error": f"{type(exc).__name__}: {exc}"}
            if envelope.message.payload.Is(VideoProtoPayload.DESCRIPTOR):
                out[name]["video_frames"] = raw_video_frames(envelope.message)
            elif envelope.message.payload.Is(BatchProto.DESCRIPTOR):
                out[name]["batch_messages"] = raw_batch_messages(envelope.message)
            continue
        summary = message_summary(fields["message"])
        if envelope.message.payload.Is(AudioProtoPayload.DESCRIPTOR):
            raw = AudioProtoPayload()
            envelope.message.payload.Unpack(raw)
            summary["wire_audio_format"] = raw.audio_format
        summary["type_url"] = envelope.message.payload.type_url
        summary["envelope"] = {
            "id": fields["id"],
            "sender": fields["sender"],
            "receiver": envelope.receiver,
            "response_to": fields["response_to"],
            "ttl": fields["ttl"],
            "priority": envelope.priority,
            "request_type": fields["request_type"],
            "created_at": envelope.created_at,
            "configuration": MessageToDict(envelope.configuration),
            "metadata": MessageToDict(envelope.metadata),
        }
        out[name] = summary
    return out


def raw_video_frames(message: ProtoMessage) -> list[dict[str, Any]]:
    """Frames of a video Juturna cannot deserialize whole, read with its per-frame reader."""
    video = VideoProtoPayload()
    message.payload.Unpack(video)
    return [image_summary(_deserialize_image_payload(f)) for f in video.frames]


def raw_batch_messages(message: ProtoMessage) -> list[dict[str, Any]]:
    """Items of a batch Juturna cannot deserialize whole, read with its message reader."""
    batch = BatchProto()
    message.payload.Unpack(batch)
    return [message_summary(deserialize_message(m)) for m in batch.messages]


def main() -> None:
    command = sys.argv[1]
    if command == "encode":
        result = encode()
    elif command == "decode":
        result = decode(json.load(sys.stdin))
    else:
        raise SystemExit(f"unknown command {command!r}; use encode or decode")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
