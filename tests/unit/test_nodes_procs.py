"""Built-in processing nodes: identity, repeat, delay, gain, energy_vad, running_sum,
fail_every, grayscale."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fontus.core import (
    AudioPayload,
    ControlPayload,
    ImagePayload,
    Message,
    ObjectPayload,
)
from fontus.nodes import (
    Delay,
    EnergyVad,
    FailEvery,
    Gain,
    Grayscale,
    Identity,
    Repeat,
    RunningSum,
)

RATE = 16000
CHUNK = 160  # 10 ms


def counter_into(mark, configuration, count=3):
    """Nodes and links of counter → MARK → gather."""
    nodes = [
        {"name": "src", "mark": "counter", "configuration": {"count": count}},
        {"name": "proc", "mark": mark, "configuration": configuration},
        {"name": "out", "mark": "gather"},
    ]
    return nodes, [("src", "proc"), ("proc", "out")]


# -- identity --------------------------------------------------------------------------


def test_identity_passes_payload_meta_and_timers_on(drive):
    message = Message(ObjectPayload({"x": 1}), meta={"k": "v"}, timers={"t": 0.5})
    (out,) = drive(Identity(), [message])
    assert out.payload == message.payload
    assert dict(out.meta) == {"k": "v"}
    assert dict(out.timers) == {"t": 0.5}
    assert out.creator == "node"


# -- repeat ----------------------------------------------------------------------------


@pytest.mark.parametrize("times", [0, 1, 5])
def test_repeat_emits_times_copies_of_each_input_in_order(run_graph, times):
    result, pipeline = run_graph(*counter_into("repeat", {"times": times}))
    assert result.state == "done"
    values = [m.payload["n"] for m in pipeline.nodes["out"].messages]
    assert values == [n for n in range(3) for _ in range(times)]


def test_repeat_passes_control_messages_once(drive):
    out = drive(Repeat(times=3), [ControlPayload("reset"), ObjectPayload({"n": 1})])
    assert [m.payload.kind for m in out] == ["control", "object", "object", "object"]


# -- delay -----------------------------------------------------------------------------


def test_delay_holds_each_input_then_passes_it_on(drive):
    started = time.monotonic()
    out = drive(Delay(seconds=0.02), [ObjectPayload({"n": 0}), ObjectPayload({"n": 1})])
    assert time.monotonic() - started >= 0.04
    assert [m.payload["n"] for m in out] == [0, 1]


# -- gain ------------------------------------------------------------------------------


def test_gain_scales_float_audio_and_keeps_dtype_and_fields(drive):
    audio = np.array([0.5, -0.25, 0.75], dtype=np.float32)
    payload = AudioPayload(audio, RATE, audio_format="pcm_f32le", start=1.0, end=1.5)
    (out,) = drive(Gain(factor=2.0), [Message(payload, meta={"k": 1})])
    assert out.payload.audio.dtype == np.float32
    np.testing.assert_array_equal(out.payload.audio, np.array([1.0, -0.5, 1.5], np.float32))
    assert (out.payload.start, out.payload.end, out.payload.audio_format) == (1.0, 1.5, "pcm_f32le")
    assert dict(out.meta) == {"k": 1}


def test_gain_rounds_and_clips_integer_audio(drive):
    audio = np.array([[30000, -30000], [101, -3]], dtype=np.int16)
    (out,) = drive(Gain(factor=1.5), [AudioPayload(audio, RATE, channels=2)])
    assert out.payload.audio.dtype == np.int16
    assert out.payload.audio.tolist() == [[32767, -32768], [152, -4]]


def test_gain_passes_non_audio_messages_unchanged(drive):
    (out,) = drive(Gain(factor=3.0), [Message(ObjectPayload({"n": 2}), meta={"m": True})])
    assert out.payload == ObjectPayload({"n": 2})
    assert dict(out.meta) == {"m": True}


# -- energy_vad --------------------------------------------------------------------------


def tone(ms, amplitude=0.5):
    t = np.arange(ms * RATE // 1000) / RATE
    return (amplitude * np.sin(2 * np.pi * 400.0 * t)).astype(np.float32)


def silence(ms):
    return np.zeros(ms * RATE // 1000, dtype=np.float32)


def chunks(signal, with_times=True):
    out = []
    for first in range(0, len(signal), CHUNK):
        part = signal[first : first + CHUNK]
        if with_times:
            start, end = first / RATE, (first + len(part)) / RATE
            out.append(AudioPayload(part, RATE, start=start, end=end))
        else:
            out.append(AudioPayload(part, RATE))
    return out


SIGNAL = np.concatenate(
    [
        tone(200),  # 0.00-0.20 speech
        silence(300),
        tone(50),  # 0.50-0.55 too short
        silence(100),
        tone(100, amplitude=0.001),  # 0.65-0.75 below -40 dBFS
        tone(150),  # 0.75-0.90 still open at end of stream
    ]
)


def segments(messages):
    return [m.payload.to_dict() for m in messages]


def test_energy_vad_emits_segments_that_ended_and_flushes_the_open_one(drive):
    out = drive(EnergyVad(threshold_db=-40.0, min_speech_ms=100), chunks(SIGNAL))
    assert segments(out) == [
        {"start": 0.0, "end": 0.2, "duration": 0.2, "peak_db": -9.03},
        {"start": 0.75, "end": 0.9, "duration": 0.15, "peak_db": -9.03},
    ]


def test_energy_vad_reports_short_segments_when_min_speech_ms_allows(drive):
    out = drive(EnergyVad(min_speech_ms=50), chunks(SIGNAL))
    assert [(s["start"], s["end"]) for s in segments(out)] == [
        (0.0, 0.2),
        (0.5, 0.55),
        (0.75, 0.9),
    ]


def test_energy_vad_normalises_integer_audio(drive):
    ints = (SIGNAL * 32768).astype(np.int16)
    out = drive(EnergyVad(), [AudioPayload(c, RATE) for c in np.split(ints, len(ints) // CHUNK)])
    assert [(s["start"], s["end"], s["peak_db"]) for s in segments(out)] == [
        (0.0, 0.2, -9.03),
        (0.75, 0.9, -9.03),
    ]


def test_energy_vad_counts_time_from_samples_when_chunks_have_no_start_end(drive):
    out = drive(EnergyVad(), chunks(SIGNAL, with_times=False))
    assert [(s["start"], s["end"]) for s in segments(out)] == [(0.0, 0.2), (0.75, 0.9)]


def test_energy_vad_keeps_the_meta_of_the_last_speech_chunk(drive):
    inputs = [Message(p, meta={"i": i}) for i, p in enumerate(chunks(tone(200)))]
    (out,) = drive(EnergyVad(), inputs)
    assert dict(out.meta) == {"i": 19}


def test_energy_vad_through_a_pipeline_from_sine_gives_one_flushed_segment(run_graph):
    result, pipeline = run_graph(
        [
            {"name": "tone", "mark": "sine", "configuration": {"duration_s": 0.5}},
            {"name": "vad", "mark": "energy_vad"},
            {"name": "out", "mark": "gather"},
        ],
        [("tone", "vad"), ("vad", "out")],
    )
    assert result.state == "done"
    (segment,) = segments(pipeline.nodes["out"].messages)
    assert (segment["start"], segment["end"], segment["duration"]) == (0.0, 0.5, 0.5)


# -- running_sum --------------------------------------------------------------------------


def test_running_sum_adds_the_field_and_keeps_the_input_data(run_graph):
    result, pipeline = run_graph(*counter_into("running_sum", {"field": "n"}, count=5))
    assert result.state == "done"
    assert [m.payload.to_dict() for m in pipeline.nodes["out"].messages] == [
        {"n": 0, "total": 0},
        {"n": 1, "total": 1},
        {"n": 2, "total": 3},
        {"n": 3, "total": 6},
        {"n": 4, "total": 10},
    ]


def test_running_sum_reset_control_starts_again_from_zero(drive):
    inputs = [
        ObjectPayload({"v": 1.5}),
        ObjectPayload({"v": 2}),
        ControlPayload("reset"),
        ObjectPayload({"v": 4}),
    ]
    out = drive(RunningSum(field="v"), inputs)
    assert [m.payload.kind for m in out] == ["object", "object", "control", "object"]
    assert [m.payload["total"] for m in out if m.payload.kind == "object"] == [1.5, 3.5, 4]


def test_running_sum_rejects_a_missing_field_and_keeps_its_total(drive):
    node = RunningSum(field="v")
    drive(node, [ObjectPayload({"v": 2})])
    with pytest.raises(ValueError, match="field 'v' must be a number, got missing"):
        node.update(Message(ObjectPayload({"w": 1})).freeze())
    with pytest.raises(ValueError, match="got str"):
        node.update(Message(ObjectPayload({"v": "3"})).freeze())
    out = drive(node, [ObjectPayload({"v": 1})])
    assert out[0].payload["total"] == 3


# -- fail_every -------------------------------------------------------------------------


def test_fail_every_errors_are_counted_and_skipped(run_graph):
    result, pipeline = run_graph(*counter_into("fail_every", {"k": 3}, count=10))
    assert result.state == "done"
    assert result.stats["proc"].errors == 3
    assert result.stats["proc"].received == 10
    values = [m.payload["n"] for m in pipeline.nodes["out"].messages]
    assert values == [0, 1, 3, 4, 6, 7, 9]


def test_fail_every_raises_a_runtime_error_naming_the_count(drive):
    node = FailEvery(k=2)
    drive(node, [ObjectPayload({"n": 0})])
    with pytest.raises(RuntimeError, match="input 2"):
        node.update(Message(ObjectPayload({"n": 1})).freeze())


def test_fail_every_zero_never_fails(drive):
    assert len(drive(FailEvery(k=0), [ObjectPayload({"n": i}) for i in range(20)])) == 20


# -- grayscale ---------------------------------------------------------------------------


def test_grayscale_uses_bt601_luma_rounded(drive):
    pixels = np.array(
        [[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[255, 255, 255], [0, 0, 0], [10, 20, 30]]],
        dtype=np.uint8,
    )
    (out,) = drive(Grayscale(), [ImagePayload(pixels, width=3, height=2, timestamp=0.25)])
    gray = out.payload
    # 0.299*255=76.2, 0.587*255=149.7, 0.114*255=29.1, 0.299*10+0.587*20+0.114*30=18.15
    assert gray.image.tolist() == [[76, 150, 29], [255, 0, 18]]
    assert gray.image.dtype == np.uint8
    assert (gray.width, gray.height, gray.depth, gray.pixel_format) == (3, 2, 1, "gray8")
    assert gray.timestamp == 0.25


def test_grayscale_matches_the_float_formula_on_random_pixels(drive):
    image = np.random.default_rng(7).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    (out,) = drive(Grayscale(), [ImagePayload.from_array(image)])
    expected = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(out.payload.image.astype(np.float64) - expected).max() <= 0.5 + 1e-9


def test_grayscale_reads_bgr24_in_reverse_channel_order(drive):
    image = np.array([[[0, 0, 255]]], dtype=np.uint8)  # red, in BGR order
    (out,) = drive(Grayscale(), [ImagePayload(image, 1, 1, 3, "bgr24")])
    assert out.payload.image.tolist() == [[76]]


def test_grayscale_refuses_other_pixel_formats(drive):
    image = np.zeros((2, 2, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="'rgba'"):
        drive(Grayscale(), [ImagePayload(image, 2, 2, 4, "rgba")])
    with pytest.raises(TypeError, match="expected an image"):
        drive(Grayscale(), [ObjectPayload({"n": 1})])


def test_grayscale_passes_gray8_unchanged(drive):
    gray = ImagePayload(np.full((2, 3), 9, dtype=np.uint8), 3, 2, 1, "gray8")
    (out,) = drive(Grayscale(), [gray])
    assert out.payload == gray


def test_grayscale_after_test_pattern_in_a_pipeline(run_graph):
    result, pipeline = run_graph(
        [
            {
                "name": "cam",
                "mark": "test_pattern",
                "configuration": {"width": 32, "height": 16, "frames": 5},
            },
            {"name": "gray", "mark": "grayscale"},
            {"name": "out", "mark": "gather"},
        ],
        [("cam", "gray"), ("gray", "out")],
    )
    assert result.state == "done"
    frames = [m.payload for m in pipeline.nodes["out"].messages]
    assert len(frames) == 5
    assert all(f.image.shape == (16, 32) and f.pixel_format == "gray8" for f in frames)


# -- light (decision 0009) ------------------------------------------------------------

LIGHT_MARKS = {"identity", "gain", "energy_vad", "running_sum", "repeat", "fail_every"}


def test_exactly_the_quick_builtin_processors_are_declared_light() -> None:
    from fontus.core.node import Node
    from fontus.core.registry import default_registry

    registry = default_registry()
    light = {mark for mark in registry.marks() if getattr(registry.get(mark).cls, "light", False)}
    assert light == LIGHT_MARKS  # delay sleeps, grayscale converts whole frames, warp waits
    assert Node.light is False  # a node is light only when it says so


def test_a_graph_is_light_only_when_every_node_is() -> None:
    from itertools import pairwise

    from fontus.nodes.proc.delay import Delay
    from fontus.nodes.proc.gain import Gain
    from fontus.nodes.proc.identity import Identity
    from fontus.remote.server._hosted import HostedGraph, HostedNode
    from fontus.remote.server._worker import GraphWorker

    def worker(*nodes: HostedNode) -> GraphWorker:
        links = [(a.name, b.name) for a, b in pairwise(nodes)]
        return GraphWorker(HostedGraph(nodes, links), "g")

    assert worker(HostedNode("a", "identity", Identity()), HostedNode("b", "gain", Gain())).light
    assert not worker(
        HostedNode("a", "identity", Identity()), HostedNode("b", "delay", Delay())
    ).light
