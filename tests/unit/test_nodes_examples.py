"""The shipped examples run as they are, and every built-in mark is registered and documented."""

from __future__ import annotations

import importlib.metadata
import wave
from pathlib import Path

import pytest

from fontus.core import Pipeline, Registry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: example file → {output file: expected line count}
EXPECTED = {
    "audio.yaml": {"out/audio_segments.jsonl": 1},
    "image.yaml": {"out/image_frames.jsonl": 30},
    "objects.yaml": {"out/objects.jsonl": 20},
    "objects.json": {"out/objects_json.jsonl": 20},
}

BUILT_INS = {
    "counter": "source",
    "sine": "source",
    "test_pattern": "source",
    "wav_file": "source",
    "jsonl_file": "source",
    "identity": "proc",
    "repeat": "proc",
    "delay": "proc",
    "gain": "proc",
    "energy_vad": "proc",
    "running_sum": "proc",
    "fail_every": "proc",
    "grayscale": "proc",
    "jsonl": "sink",
    "null": "sink",
    "wav": "sink",
}


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_runs_to_done_and_writes_its_outputs(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outputs are relative to the working folder
    pipeline = Pipeline.from_file(EXAMPLES / example)
    result = pipeline.run(timeout=30.0)
    assert result.state == "done", result.error
    for output, lines in EXPECTED[example].items():
        assert (tmp_path / output).read_text().count("\n") == lines


def test_audio_example_records_the_scaled_tone_as_wav(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Pipeline.from_file(EXAMPLES / "audio.yaml").run(timeout=30.0)
    with wave.open(str(tmp_path / "out" / "audio.wav"), "rb") as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getnframes()) == (
            16000,
            1,
            32000,
        )


def test_every_example_is_covered_by_a_test():
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".json")) == sorted(
        EXPECTED
    )


def test_every_built_in_mark_is_an_entry_point_of_its_own_class():
    points = {ep.name for ep in importlib.metadata.entry_points(group="fontus.nodes")}
    assert set(BUILT_INS) <= points
    registry = Registry()
    for mark, kind in BUILT_INS.items():
        spec = registry.get(mark)
        assert spec.cls.__dict__["mark"] == mark
        assert spec.kind == kind


def test_every_built_in_has_a_summary_and_help_for_each_argument():
    registry = Registry()
    for mark in BUILT_INS:
        spec = registry.get(mark)
        assert spec.summary, mark
        for argument in spec.arguments:
            assert argument.help, f"{mark}.{argument.name} has no help text"
