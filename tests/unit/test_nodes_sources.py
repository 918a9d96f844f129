"""Built-in sources: counter, sine, test_pattern, wav_file, jsonl_file."""

from __future__ import annotations

import itertools
import json
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from fontus.core import ImagePayload, ObjectPayload, PipelineInvalid
from fontus.nodes import Counter, JsonlFile, Sine, TestPattern, WavFile


def payloads(messages):
    return [m.payload for m in messages]


# -- counter -------------------------------------------------------------------


def test_counter_emits_count_numbered_objects_in_order(drive):
    out = payloads(drive(Counter(count=4)))
    assert out == [ObjectPayload({"n": i}) for i in range(4)]
    assert Counter(count=4).total() == 4


def test_counter_with_count_zero_emits_nothing_and_pipeline_is_done(run_graph):
    result, pipeline = run_graph(
        [
            {"name": "src", "mark": "counter", "configuration": {"count": 0}},
            {"name": "out", "mark": "gather"},
        ],
        [("src", "out")],
    )
    assert result.state == "done"
    assert pipeline.nodes["out"].messages == []


def test_counter_paces_at_rate_on_a_monotonic_schedule(drive):
    started = time.monotonic()
    out = drive(Counter(count=6, rate=100.0))
    elapsed = time.monotonic() - started
    assert len(out) == 6
    # The first message is due at once, the sixth 5/100 s later; never earlier.
    assert elapsed >= 0.045


def test_counter_stops_promptly_when_the_pipeline_is_stopped(run_graph):
    started = time.monotonic()
    result, pipeline = run_graph(
        [
            {"name": "src", "mark": "counter", "configuration": {"count": 1000, "rate": 20.0}},
            {"name": "out", "mark": "gather"},
        ],
        [("src", "out")],
        timeout=0.2,
    )
    assert result.state == "timeout"
    assert time.monotonic() - started < 2.0
    assert 1 <= len(pipeline.nodes["out"].messages) < 1000


def test_counter_refuses_a_negative_count_when_the_pipeline_is_built(run_graph):
    with pytest.raises(PipelineInvalid, match="count must be >= 0"):
        run_graph([{"name": "src", "mark": "counter", "configuration": {"count": -1}}])


# -- sine ---------------------------------------------------------------------------


def test_sine_is_deterministic_across_runs(drive):
    first = payloads(drive(Sine(duration_s=0.1)))
    second = payloads(drive(Sine(duration_s=0.1)))
    assert first == second


def test_sine_chunks_are_phase_continuous(drive):
    chunked = payloads(drive(Sine(frequency=123.0, chunk_ms=7, duration_s=0.2)))
    whole = payloads(drive(Sine(frequency=123.0, chunk_ms=200, duration_s=0.2)))
    assert len(whole) == 1
    joined = np.concatenate([p.audio for p in chunked])
    np.testing.assert_array_equal(joined, whole[0].audio)
    expected = 0.5 * np.sin(2 * np.pi * 123.0 * np.arange(3200) / 16000)
    np.testing.assert_allclose(joined, expected, atol=1e-6)


def test_sine_chunks_carry_start_end_format_and_count(drive):
    node = Sine(sampling_rate=8000, chunk_ms=20, duration_s=0.05)
    out = payloads(drive(node))
    assert node.total() == len(out) == 3
    assert [p.samples for p in out] == [160, 160, 80]
    assert [(p.start, p.end) for p in out] == [(0.0, 0.02), (0.02, 0.04), (0.04, 0.05)]
    assert all(p.audio.dtype == np.float32 and p.audio_format == "pcm_f32le" for p in out)
    assert all(p.sampling_rate == 8000 and p.channels == 1 for p in out)


def test_sine_realtime_paces_chunks_at_the_speed_of_audio(drive):
    started = time.monotonic()
    out = drive(Sine(chunk_ms=10, duration_s=0.06, realtime=True))
    assert len(out) == 6
    assert time.monotonic() - started >= 0.045


def test_sine_int16_is_scaled_to_the_integer_range(drive):
    out = payloads(drive(Sine(frequency=1000.0, dtype="int16", duration_s=0.01)))
    audio = np.concatenate([p.audio for p in out])
    assert audio.dtype == np.int16
    assert out[0].audio_format == "pcm_s16le"
    assert int(np.abs(audio).max()) == round(0.5 * 32767)


def test_sine_with_several_channels_repeats_the_signal_on_each(drive):
    (chunk,) = payloads(drive(Sine(channels=2, chunk_ms=10, duration_s=0.01)))
    assert chunk.audio.shape == (160, 2)
    np.testing.assert_array_equal(chunk.audio[:, 0], chunk.audio[:, 1])


def test_sine_refuses_an_unknown_dtype_when_the_pipeline_is_built(run_graph):
    with pytest.raises(PipelineInvalid, match="dtype"):
        run_graph([{"name": "tone", "mark": "sine", "configuration": {"dtype": "int8"}}])


# -- test_pattern --------------------------------------------------------------------


def test_test_pattern_frames_are_rgb24_of_the_requested_size(drive):
    node = TestPattern(width=64, height=48, frames=3, fps=25.0)
    out = payloads(drive(node))
    assert node.total() == len(out) == 3
    for i, frame in enumerate(out):
        assert isinstance(frame, ImagePayload)
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
        assert (frame.width, frame.height, frame.depth) == (64, 48, 3)
        assert frame.pixel_format == "rgb24"
        assert frame.timestamp == i / 25.0


def test_test_pattern_is_deterministic_and_changes_from_frame_to_frame(drive):
    first = payloads(drive(TestPattern(width=128, height=72, frames=4)))
    second = payloads(drive(TestPattern(width=128, height=72, frames=4)))
    assert first == second
    images = [f.image for f in first]
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(images))


# -- wav_file -----------------------------------------------------------------------


def test_wav_round_trip_through_wav_sink_and_wav_file_keeps_int16_samples(
    run_graph, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    written, writer = run_graph(
        [
            {
                "name": "tone",
                "mark": "sine",
                "configuration": {"dtype": "int16", "channels": 2, "duration_s": 0.25},
            },
            {"name": "keep", "mark": "gather"},
            {"name": "wav", "mark": "wav", "configuration": {"path": "sub/tone.wav"}},
        ],
        [("tone", "keep"), ("tone", "wav")],
    )
    assert written.state == "done"
    read, reader = run_graph(
        [
            {"name": "file", "mark": "wav_file", "configuration": {"path": "sub/tone.wav"}},
            {"name": "out", "mark": "gather"},
        ],
        [("file", "out")],
    )
    assert read.state == "done"
    original = [m.payload for m in writer.nodes["keep"].messages]
    loaded = [m.payload for m in reader.nodes["out"].messages]
    assert len(loaded) == len(original) == 13
    np.testing.assert_array_equal(
        np.concatenate([p.audio for p in loaded]), np.concatenate([p.audio for p in original])
    )
    assert all(p.channels == 2 and p.sampling_rate == 16000 for p in loaded)
    assert all(p.audio_format == "pcm_s16le" for p in loaded)
    assert [(p.start, p.end) for p in loaded] == [(p.start, p.end) for p in original]


def _write_wav(path: Path, width: int, frames: bytes, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(8000)
        writer.writeframes(frames)


def test_wav_file_reads_8_bit_as_int16_and_24_bit_as_int32(drive, tmp_path):
    _write_wav(tmp_path / "u8.wav", 1, bytes([0, 128, 255]))
    (chunk,) = payloads(drive(WavFile(tmp_path / "u8.wav")))
    assert chunk.audio.dtype == np.int16
    assert chunk.audio.tolist() == [-32768, 0, 127 * 256]

    _write_wav(tmp_path / "s24.wav", 3, bytes([0, 0, 0x80, 0xFF, 0xFF, 0x7F]))
    (chunk,) = payloads(drive(WavFile(tmp_path / "s24.wav")))
    assert chunk.audio.dtype == np.int32 and chunk.audio_format == "pcm_s32le"
    assert chunk.audio.tolist() == [-(2**31), 0x7FFFFF00]


def test_wav_file_splits_into_chunks_of_chunk_ms(drive, tmp_path):
    _write_wav(tmp_path / "a.wav", 2, np.arange(250, dtype="<i2").tobytes())
    node = WavFile(tmp_path / "a.wav", chunk_ms=10)
    out = payloads(drive(node))
    assert node.total() == len(out) == 4
    assert [p.samples for p in out] == [80, 80, 80, 10]
    assert out[-1].end == 250 / 8000


def test_wav_file_missing_fails_the_build_naming_the_path(run_graph, tmp_path):
    missing = tmp_path / "nope.wav"
    with pytest.raises(PipelineInvalid, match=r"nope\.wav"):
        run_graph([{"name": "file", "mark": "wav_file", "configuration": {"path": str(missing)}}])


def test_wav_file_that_is_not_a_wav_fails_the_build(tmp_path):
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(ValueError, match="not a PCM WAV file"):
        WavFile(tmp_path / "text.wav")


# -- jsonl_file ----------------------------------------------------------------------


def test_jsonl_file_emits_one_object_per_line_skipping_blank_lines(drive, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n\n{"b": [1, 2], "c": {"d": null}}\n')
    out = payloads(drive(JsonlFile(path)))
    assert out == [ObjectPayload({"a": 1}), ObjectPayload({"b": [1, 2], "c": {"d": None}})]


def test_jsonl_file_bad_line_raises_naming_file_and_line(drive, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": \n')
    with pytest.raises(ValueError, match=r"bad\.jsonl line 3: invalid JSON"):
        drive(JsonlFile(path))


def test_jsonl_file_line_that_is_not_an_object_is_an_error(drive, tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="line 1: expected a JSON object, got list"):
        drive(JsonlFile(path))


def test_jsonl_file_bad_line_fails_a_pipeline_with_on_error_stop(run_graph, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"a": 1}) + "\nnot json\n")
    result, pipeline = run_graph(
        [
            {
                "name": "file",
                "mark": "jsonl_file",
                "configuration": {"path": str(path)},
                "on_error": "stop",
            },
            {"name": "out", "mark": "gather"},
        ],
        [("file", "out")],
    )
    assert result.state == "failed"
    assert "bad.jsonl line 2" in str(result.error)
    assert len(pipeline.nodes["out"].messages) == 1


def test_jsonl_file_missing_fails_the_build_naming_the_path(run_graph, tmp_path):
    with pytest.raises(PipelineInvalid, match=r"absent\.jsonl"):
        run_graph(
            [
                {
                    "name": "file",
                    "mark": "jsonl_file",
                    "configuration": {"path": str(tmp_path / "absent.jsonl")},
                }
            ]
        )
