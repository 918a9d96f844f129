"""interop_feed: a Juturna source emitting the messages listed in a JSON file, then idling.

Written for Fontus's interop tests.  Each case is ``{"case": name, "kind":
"audio" | "image" | "bytes" | "object", ...fields}``; ``array`` names an array
of the ``.npz`` file (bytes cases use a uint8 array).  Every message carries
``meta["case"]`` so the collecting sink can tell them apart.

After the last case the source waits for the pipeline to stop it: ending
itself with a STOP control message races with its own last update in Juturna
2.1.1 (the control thread stops the update loop, which can drop the message
still queued).
"""

import json
import threading

import numpy as np
from juturna.components import Message, Node
from juturna.payloads import (
    AudioPayload,
    BytesPayload,
    ControlPayload,
    ControlSignal,
    ImagePayload,
    ObjectPayload,
)


class InteropFeed(Node):
    def __init__(self, cases: str, arrays: str, **kwargs):
        super().__init__(**kwargs)
        with open(cases) as f:
            self._cases = json.load(f)
        self._arrays = dict(np.load(arrays)) if arrays else {}
        self._next = 0
        self._halt = threading.Event()

    def warmup(self):
        self.set_source(self._emit, by=0, mode="post")

    def _payload(self, case: dict):
        kind = case["kind"]
        if kind == "audio":
            return AudioPayload(
                audio=self._arrays[case["array"]],
                sampling_rate=case["sampling_rate"],
                audio_format=case.get("audio_format", ""),
                channels=case["channels"],
                start=case["start"],
                end=case["end"],
            )
        if kind == "image":
            return ImagePayload(
                image=self._arrays[case["array"]],
                width=case["width"],
                height=case["height"],
                depth=case["depth"],
                pixel_format=case["pixel_format"],
                timestamp=case["timestamp"],
            )
        if kind == "bytes":
            return BytesPayload(cnt=self._arrays[case["array"]].tobytes())
        if kind == "object":
            return ObjectPayload.from_dict(case["data"])
        raise ValueError(f"interop_feed: unknown kind {kind!r}")

    def stop(self):
        self._halt.set()
        super().stop()

    def _emit(self):
        if self._next >= len(self._cases):
            self._halt.wait()
            return Message(creator=self.name, payload=ControlPayload(ControlSignal.STOP))
        case = self._cases[self._next]
        message = Message(creator=self.name, version=self._next, payload=self._payload(case))
        message.meta["case"] = case["case"]
        self._next += 1
        return message

    def update(self, message):
        self.transmit(message)
