"""Fontus and Juturna in one process: either import order works, and both codecs still work.

Protobuf refuses a second definition of ``juturna.proto.payloads.*`` in its
default descriptor pool; Fontus keeps its copy of the schema in a private pool.
Each order runs in a fresh Python 3.12 process of the Juturna venv.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytestmark = pytest.mark.interop

IMPORT_JUTURNA = """
import juturna
from juturna.remotizer.c_protos import messaging_service_pb2_grpc, payloads_pb2 as jpb
from juturna.remotizer import utils as ju
"""

IMPORT_FONTUS = """
import fontus
import fontus.remote as fr
import fontus.remote.juturna as fj
"""

EXERCISE = """
import numpy as np
from google.protobuf import descriptor_pool
from juturna.components import Message as JMessage
from juturna.payloads import AudioPayload as JAudio
from fontus.core import Message, AudioPayload, ObjectPayload

# The two schemas live in different pools.
assert jpb.ProtoMessage.DESCRIPTOR.file.pool is descriptor_pool.Default()
assert fj.ProtoMessage.DESCRIPTOR.file.pool is not descriptor_pool.Default()

samples = np.arange(32, dtype=np.float32).reshape(16, 2)

# Fontus writes, Juturna reads.
mine = Message(AudioPayload(samples, 16000, 2), creator="f", meta={"k": "v"}).freeze()
wire = fj.envelope_to_bytes(fj.make_request_envelope(mine, "fontus"))
theirs = ju.deserialize_envelope(jpb.ProtoEnvelope.FromString(wire))["message"]
assert np.array_equal(theirs.payload.audio, samples), theirs.payload.audio

# Juturna writes, Fontus reads.
jmsg = JMessage(creator="j", version=1, payload=JAudio(audio=samples, sampling_rate=8000, channels=2))
envelope = ju.create_envelope(ju.message_to_proto(jmsg), {}, {}, "juturna")
back = fj.envelope_message(fj.envelope_from_bytes(envelope.SerializeToString()))
assert np.array_equal(back.payload.audio, samples) and back.payload.sampling_rate == 8000

# Fontus's own codec is untouched by Juturna's modules.
native = Message(ObjectPayload({"n": 1, "b": b"x"})).freeze()
assert fr.decode_message(fr.encode_message(native)) == native
print("ok")
"""


@pytest.mark.parametrize(
    "order",
    [(IMPORT_JUTURNA, IMPORT_FONTUS), (IMPORT_FONTUS, IMPORT_JUTURNA)],
    ids=["juturna-then-fontus", "fontus-then-juturna"],
)
def test_fontus_and_juturna_import_in_either_order_and_both_codecs_work(
    run_juturna: Callable[..., str], order: tuple[str, str]
) -> None:
    assert run_juturna(["-c", order[0] + order[1] + EXERCISE]).strip() == "ok"
