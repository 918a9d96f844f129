"""interop_collect: a Juturna sink writing each message it receives as one JSON line.

Written for Fontus's interop tests.  Arrays are written whole (dtype, shape,
base64 of their C-order bytes) so the test can compare values, not only hashes.
"""

import base64
import json

import numpy as np
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message as ProtoBase
from juturna.components import Node
from juturna.payloads import AudioPayload, BytesPayload, ImagePayload, ObjectPayload


def _array(array: np.ndarray) -> dict:
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "b64": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode(),
    }


def _plain(value):
    if isinstance(value, ProtoBase):
        return MessageToDict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _payload(p) -> dict:
    if p is None:
        return {"kind": "none"}
    if isinstance(p, AudioPayload):
        return {
            "kind": "audio",
            "audio": _array(p.audio),
            "sampling_rate": p.sampling_rate,
            "channels": p.channels,
            "audio_format": p.audio_format,
            "start": p.start,
            "end": p.end,
        }
    if isinstance(p, ImagePayload):
        return {
            "kind": "image",
            "image": _array(p.image),
            "width": p.width,
            "height": p.height,
            "depth": p.depth,
            "pixel_format": p.pixel_format,
            "timestamp": p.timestamp,
        }
    if isinstance(p, BytesPayload):
        return {"kind": "bytes", "b64": base64.b64encode(p.cnt).decode()}
    if isinstance(p, ObjectPayload):
        return {"kind": "object", "data": _plain(dict(p))}
    return {"kind": type(p).__name__}


class InteropCollect(Node):
    def __init__(self, path: str, **kwargs):
        super().__init__(**kwargs)
        self._path = path
        self._file = None

    def warmup(self):
        # Open for the node's lifetime (closed in destroy), line-buffered for the test to poll.
        self._file = open(self._path, "w", buffering=1)  # noqa: SIM115

    def update(self, message):
        record = {
            "creator": message.creator,
            "version": message.version,
            "meta": _plain(dict(message.meta)),
            "payload": _payload(message.payload),
        }
        self._file.write(json.dumps(record) + "\n")

    def destroy(self):
        if self._file is not None:
            self._file.close()
            self._file = None
