"""Built-in sinks (jsonl, null, wav) and the message → JSON record function."""

from __future__ import annotations

import hashlib
import json
import wave

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
from fontus.nodes import JsonlSink, WavSink, message_record


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- records ---------------------------------------------------------------------------


def test_record_of_an_object_message_holds_the_data_in_full_and_no_ids_or_times():
    message = Message(
        ObjectPayload({"i": 1, "f": 1.0, "s": "x", "l": [1, None, True], "d": {"e": 2}}),
        creator="src",
        version=7,
        meta={"lang": "en"},
        timers={"src": 12.5},
    )
    assert message_record(message) == {
        "creator": "src",
        "version": 7,
        "kind": "object",
        "payload": {"i": 1, "f": 1.0, "s": "x", "l": [1, None, True], "d": {"e": 2}},
        "meta": {"lang": "en"},
    }


def test_record_summarises_arrays_by_dtype_shape_and_sha256_of_c_order_bytes():
    audio = np.asfortranarray(np.arange(12, dtype=np.int16).reshape(6, 2))
    message = Message(
        AudioPayload(
            audio, 8000, channels=2, audio_format="pcm_s16le", start=0.5, end=0.5 + 6 / 8000
        )
    )
    record = message_record(message)
    assert record["kind"] == "audio"
    assert record["payload"] == {
        "audio": {
            "dtype": "int16",
            "shape": [6, 2],
            "sha256": sha(np.arange(12, dtype=np.int16).tobytes()),
        },
        "sampling_rate": 8000,
        "channels": 2,
        "audio_format": "pcm_s16le",
        "start": 0.5,
        "end": 0.5 + 6 / 8000,
    }


def test_record_summarises_arrays_and_bytes_inside_objects_and_meta():
    vector = np.array([1.0, 2.0], dtype=np.float32)
    message = Message(
        ObjectPayload({"embedding": vector, "raw": b"abc", "nested": [{"v": vector}]}),
        meta={"mask": np.zeros((2, 2), dtype=bool), "blob": b""},
    )
    record = message_record(message)
    summary = {"dtype": "float32", "shape": [2], "sha256": sha(vector.tobytes())}
    assert record["payload"] == {
        "embedding": summary,
        "raw": {"bytes": 3, "sha256": sha(b"abc")},
        "nested": [{"v": summary}],
    }
    assert record["meta"] == {
        "mask": {"dtype": "bool", "shape": [2, 2], "sha256": sha(bytes(4))},
        "blob": {"bytes": 0, "sha256": sha(b"")},
    }


def test_record_of_bytes_and_image_payloads():
    assert message_record(Message(BytesPayload(b"hello")))["payload"] == {
        "cnt": {"bytes": 5, "sha256": sha(b"hello")}
    }
    image = np.full((2, 3), 7, dtype=np.uint8)
    record = message_record(Message(ImagePayload(image, 3, 2, 1, "gray8", 1.5)))
    assert record["kind"] == "image"
    assert record["payload"] == {
        "image": {"dtype": "uint8", "shape": [2, 3], "sha256": sha(image.tobytes())},
        "width": 3,
        "height": 2,
        "depth": 1,
        "pixel_format": "gray8",
        "timestamp": 1.5,
    }


def test_record_of_a_batch_is_the_list_of_its_message_records():
    inner = [
        Message(ObjectPayload({"n": 1}), creator="a", version=0),
        Message(BytesPayload(b"x"), creator="b", version=3, meta={"m": 1}),
    ]
    record = message_record(Message(Batch(tuple(inner)), creator="zip"))
    assert record["kind"] == "batch"
    assert record["payload"] == [message_record(m) for m in inner]
    assert record["payload"][1]["meta"] == {"m": 1}


# -- jsonl -------------------------------------------------------------------------------


def counter_to_jsonl(path, count=5):
    nodes = [
        {"name": "src", "mark": "counter", "configuration": {"count": count}},
        {"name": "file", "mark": "jsonl", "configuration": {"path": str(path)}},
    ]
    return nodes, [("src", "file")]


def test_jsonl_sink_writes_one_record_per_line_creating_parent_folders(run_graph, tmp_path):
    path = tmp_path / "deep" / "er" / "out.jsonl"
    result, _ = run_graph(*counter_to_jsonl(path, count=3))
    assert result.state == "done"
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"creator": "src", "version": i, "kind": "object", "payload": {"n": i}, "meta": {}}
        for i in range(3)
    ]


def test_jsonl_sink_output_is_identical_across_runs(run_graph, tmp_path):
    for name in ("a.jsonl", "b.jsonl"):
        nodes = [
            {"name": "tone", "mark": "sine", "configuration": {"duration_s": 0.1}},
            {"name": "file", "mark": "jsonl", "configuration": {"path": str(tmp_path / name)}},
        ]
        result, _ = run_graph(nodes, [("tone", "file")])
        assert result.state == "done"
    first = (tmp_path / "a.jsonl").read_bytes()
    assert first == (tmp_path / "b.jsonl").read_bytes()
    assert first.count(b"\n") == 5


def test_jsonl_sink_flushes_each_line_as_it_is_written(drive, tmp_path):
    path = tmp_path / "live.jsonl"
    sink = JsonlSink(path)
    sink.warmup()
    try:
        sink.update(Message(ObjectPayload({"n": 1})).freeze())
        assert path.read_text().count("\n") == 1
    finally:
        sink.destroy()


# -- null --------------------------------------------------------------------------------


def test_null_sink_discards_everything_and_the_pipeline_finishes(run_graph):
    result, _ = run_graph(
        [
            {"name": "src", "mark": "counter", "configuration": {"count": 50}},
            {"name": "void", "mark": "null"},
        ],
        [("src", "void")],
    )
    assert result.state == "done"
    assert result.stats["void"].received == 50


# -- wav ---------------------------------------------------------------------------------


def read_wav(path):
    with wave.open(str(path), "rb") as reader:
        params = reader.getparams()
        frames = reader.readframes(reader.getnframes())
    return params, frames


def test_wav_sink_writes_float_audio_as_clipped_16_bit_pcm(drive, tmp_path):
    path = tmp_path / "sub" / "f.wav"
    first = AudioPayload(np.array([1.5, -1.0], dtype=np.float32), 8000)
    second = AudioPayload(np.array([0.5, 0.0], dtype=np.float32), 8000)
    drive(WavSink(path), [first, second])
    params, frames = read_wav(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    assert np.frombuffer(frames, "<i2").tolist() == [32767, -32767, 16384, 0]


def test_wav_sink_keeps_int32_samples_and_interleaves_channels(drive, tmp_path):
    path = tmp_path / "i.wav"
    audio = np.array([[1, -1], [2**30, -(2**31)]], dtype=np.int32)
    drive(WavSink(path), [AudioPayload(audio, 48000, channels=2)])
    params, frames = read_wav(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 4, 48000)
    assert np.frombuffer(frames, "<i4").tolist() == [1, -1, 2**30, -(2**31)]


def test_wav_sink_refuses_a_chunk_in_another_format(drive, tmp_path):
    first = AudioPayload(np.zeros(4, dtype=np.int16), 16000)
    other = AudioPayload(np.zeros(4, dtype=np.int16), 8000)
    with pytest.raises(ValueError, match="cannot append 8000 Hz"):
        drive(WavSink(tmp_path / "x.wav"), [first, other])


def test_wav_sink_refuses_non_audio_messages(drive, tmp_path):
    with pytest.raises(TypeError, match="expected an audio message, got object"):
        drive(WavSink(tmp_path / "x.wav"), [ObjectPayload({"n": 1})])
