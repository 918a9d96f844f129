"""Payloads: constructor validation with clear messages, read-only arrays, equality."""

from __future__ import annotations

import dataclasses
import enum

import numpy as np
import pytest

from fontus.core import (
    AudioPayload,
    Batch,
    BytesPayload,
    ConfigPayload,
    ControlPayload,
    ImagePayload,
    Message,
    ObjectPayload,
    PayloadError,
    VideoPayload,
)

# -- audio ---------------------------------------------------------------------


def test_audio_mono_and_multichannel_shapes() -> None:
    mono = AudioPayload(np.zeros(160, np.float32), 16000, start=0.0, end=0.01)
    assert (mono.samples, mono.channels, mono.duration) == (160, 1, 0.01)
    stereo = AudioPayload(np.zeros((80, 2), np.int16), 8000, channels=2)
    assert stereo.samples == 80


def test_audio_mono_array_with_several_channels_says_which_shape() -> None:
    with pytest.raises(PayloadError, match=r"shape \(4,\) \(mono\) but channels=2; pass shape"):
        AudioPayload(np.zeros(4), 16000, channels=2)


def test_audio_second_axis_must_equal_channels() -> None:
    with pytest.raises(PayloadError, match="second axis must equal channels"):
        AudioPayload(np.zeros((4, 3)), 16000, channels=2)


def test_audio_refuses_three_dimensions() -> None:
    with pytest.raises(PayloadError, match="1 or 2 dimensions, got shape"):
        AudioPayload(np.zeros((2, 2, 2)), 16000)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"sampling_rate": 0}, "sampling_rate must be an int >= 1, got 0"),
        ({"sampling_rate": "16000"}, "sampling_rate must be an int >= 1, got '16000'"),
        ({"sampling_rate": 16000.5}, "sampling_rate must be an int"),
        ({"sampling_rate": True}, "sampling_rate must be an int"),
        ({"channels": 0}, "channels must be an int >= 1, got 0"),
        ({"start": "a"}, "start must be a number, got 'a'"),
        ({"start": 2.0, "end": 1.0}, r"end \(1.0\) is before start \(2.0\)"),
    ],
)
def test_audio_field_errors_name_the_field(kwargs: dict[str, object], pattern: str) -> None:
    args: dict[str, object] = {"audio": np.zeros(4), "sampling_rate": 16000, **kwargs}
    with pytest.raises(PayloadError, match="AudioPayload: " + pattern):
        AudioPayload(**args)  # type: ignore[arg-type]


def test_audio_must_be_an_array_of_numbers() -> None:
    with pytest.raises(PayloadError, match="audio must be a numpy array, got list"):
        AudioPayload([0.0, 1.0], 16000)  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match="dtype object are not allowed"):
        AudioPayload(np.array([object()]), 16000)


def test_numpy_scalars_are_normalised_so_equality_survives_a_round_trip() -> None:
    a = AudioPayload(np.zeros(4), np.int64(16000), start=np.float32(0), end=1)  # type: ignore[arg-type]
    b = AudioPayload(np.zeros(4), 16000, start=0.0, end=1.0)
    assert type(a.sampling_rate) is int and type(a.start) is float and type(a.end) is float
    assert a == b


def test_payload_arrays_are_read_only_views_without_copy() -> None:
    samples = np.arange(8, dtype=np.float32)
    audio = AudioPayload(samples, 16000)
    assert np.shares_memory(audio.audio, samples)
    assert not audio.audio.flags.writeable
    with pytest.raises(ValueError):
        audio.audio[0] = 1.0
    assert samples.flags.writeable  # the caller's own array is left alone


def test_payloads_are_frozen_dataclasses() -> None:
    audio = AudioPayload(np.zeros(4), 16000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        audio.sampling_rate = 8000  # type: ignore[misc]


def test_replace_validates_again() -> None:
    audio = AudioPayload(np.zeros(4), 16000)
    assert audio.replace(sampling_rate=8000) == AudioPayload(np.zeros(4), 8000)
    with pytest.raises(PayloadError, match="channels=2"):
        audio.replace(channels=2)


# -- image / video -------------------------------------------------------------


def test_image_shape_must_agree_with_width_height_depth() -> None:
    ImagePayload(np.zeros((2, 3, 3), np.uint8), width=3, height=2)
    ImagePayload(np.zeros((2, 3), np.uint8), width=3, height=2, depth=1)
    ImagePayload(np.zeros((2, 3, 1), np.uint8), width=3, height=2, depth=1)
    with pytest.raises(
        PayloadError,
        match=r"image shape \(2, 3, 3\) does not agree with height=3, width=2, depth=3; "
        r"expected \(3, 2, 3\)",
    ):
        ImagePayload(np.zeros((2, 3, 3), np.uint8), width=2, height=3)
    with pytest.raises(PayloadError, match=r"expected \(2, 3, 3\)"):
        ImagePayload(np.zeros((2, 3), np.uint8), width=3, height=2)  # depth 3 needs 3 axes


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"width": -1}, "width must be an int >= 0, got -1"),
        ({"height": 2.0}, "height must be an int >= 0, got 2.0"),
        ({"depth": "3"}, "depth must be an int >= 0, got '3'"),
        ({"timestamp": None}, "timestamp must be a number, got None"),
    ],
)
def test_image_field_errors_name_the_field(kwargs: dict[str, object], pattern: str) -> None:
    args: dict[str, object] = {"image": np.zeros((2, 3, 3)), "width": 3, "height": 2, **kwargs}
    with pytest.raises(PayloadError, match="ImagePayload: " + pattern):
        ImagePayload(**args)  # type: ignore[arg-type]


def test_image_from_array_takes_geometry_from_the_shape() -> None:
    rgb = ImagePayload.from_array(np.zeros((4, 5, 3), np.uint8), timestamp=1.5)
    assert (rgb.width, rgb.height, rgb.depth, rgb.pixel_format) == (5, 4, 3, "rgb24")
    assert rgb.timestamp == 1.5
    gray = ImagePayload.from_array(np.zeros((4, 5), np.uint8))
    assert (gray.depth, gray.pixel_format) == (1, "gray8")
    assert ImagePayload.from_array(np.zeros((1, 1, 4), np.uint8)).pixel_format == "rgba"
    assert ImagePayload.from_array(np.zeros((1, 1, 3)), "bgr24").pixel_format == "bgr24"


def test_image_from_array_refuses_other_shapes_and_types() -> None:
    with pytest.raises(PayloadError, match="2 or 3 dimensions"):
        ImagePayload.from_array(np.zeros(4))
    with pytest.raises(PayloadError, match="image must be a numpy array, got list"):
        ImagePayload.from_array([[0]])  # type: ignore[arg-type]


def test_video_frames_are_images_and_become_a_tuple() -> None:
    frame = ImagePayload.from_array(np.zeros((2, 2, 3), np.uint8))
    video = VideoPayload([frame, frame], frames_per_second=25, start=0, end=0.08)  # type: ignore[arg-type]
    assert video.frames == (frame, frame)
    assert video.frames_per_second == 25.0
    with pytest.raises(PayloadError, match=r"frames\[1\] must be an ImagePayload, got ndarray"):
        VideoPayload((frame, np.zeros((2, 2, 3))))  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match="frames must be a list or tuple of ImagePayload"):
        VideoPayload(None)  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match=r"frames_per_second must be >= 0\.0, got -1"):
        VideoPayload((), frames_per_second=-1)
    with pytest.raises(PayloadError, match="VideoPayload: end"):
        VideoPayload((), start=1.0, end=0.5)


# -- bytes ---------------------------------------------------------------------


def test_bytes_payload_accepts_bytes_like_and_refuses_str() -> None:
    assert BytesPayload(bytearray(b"ab")).cnt == b"ab"
    assert type(BytesPayload(memoryview(b"ab")).cnt) is bytes
    assert BytesPayload(b"abc").size == 3
    with pytest.raises(PayloadError, match="cnt must be bytes, got str"):
        BytesPayload("abc")  # type: ignore[arg-type]


# -- object --------------------------------------------------------------------


def test_object_payload_freezes_nested_values() -> None:
    source = {"list": [1, [2, 3]], "map": {"k": "v"}, "none": None, "raw": bytearray(b"x")}
    obj = ObjectPayload(source)
    assert obj["list"] == (1, (2, 3))
    assert isinstance(obj["list"], tuple)
    with pytest.raises(TypeError):
        obj["map"]["k"] = "changed"
    assert obj["raw"] == b"x"
    source["map"]["k"] = "changed"  # changing the input later does not reach the payload
    assert obj["map"]["k"] == "v"
    assert ObjectPayload(obj.to_dict()) == obj
    assert len(obj) == 4 and "none" in obj and obj.get("missing") is None


def test_object_payload_numpy_scalars_and_subclasses_become_plain_values() -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    obj = ObjectPayload(
        {
            "i": np.int32(3),
            "f": np.float64(0.5),
            "b": np.bool_(True),
            "s": np.str_("x"),
            "e": Level.HIGH,
        }
    )
    assert [type(obj[k]) for k in "ifbse"] == [int, float, bool, str, int]
    assert obj == ObjectPayload({"i": 3, "f": 0.5, "b": True, "s": "x", "e": 3})


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"a": {"b": {1, 2}}}, r"ObjectPayload\.a\.b: type set is not supported"),
        ({"a": [0, np.array([object()])]}, r"ObjectPayload\.a\[1\]: numpy arrays of dtype object"),
        (
            {"a": [0, {"b": ([1], {2})}]},
            r"ObjectPayload\.a\[1\]\.b\[1\]: type set is not supported",
        ),
        ({"a": {1: "x"}}, r"ObjectPayload\.a: mapping keys must be str, got int 1"),
        ({"a": np.complex64(1)}, r"ObjectPayload\.a: numpy scalar of type complex64"),
    ],
)
def test_object_payload_refuses_what_cannot_travel_naming_the_path(
    data: dict[str, object], pattern: str
) -> None:
    with pytest.raises(PayloadError, match=pattern):
        ObjectPayload(data)


def test_object_payload_data_must_be_a_mapping() -> None:
    with pytest.raises(PayloadError, match="data must be a mapping with str keys, got list"):
        ObjectPayload([1, 2])  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match="keys must be str, got int"):
        ObjectPayload({1: "a"})  # type: ignore[dict-item]


def test_object_payload_arrays_are_read_only_views_without_copy() -> None:
    array = np.arange(6).reshape(2, 3)
    obj = ObjectPayload({"a": array, "nested": {"b": array}})
    assert np.shares_memory(obj["a"], array)
    assert not obj["a"].flags.writeable
    assert not obj["nested"]["b"].flags.writeable
    with pytest.raises(ValueError):
        obj["a"][0, 0] = 5


def test_object_payload_to_dict_is_a_mutable_deep_copy() -> None:
    array = np.arange(3)
    obj = ObjectPayload({"list": [1, {"x": 2}], "a": array})
    copy = obj.to_dict()
    assert copy == {"list": [1, {"x": 2}], "a": copy["a"]}
    copy["list"].append(3)
    copy["list"][1]["x"] = 9
    copy["a"][0] = 42
    assert obj["list"] == (1, {"x": 2})
    assert obj["a"][0] == 0
    assert not np.shares_memory(copy["a"], array)


def test_object_payload_is_a_read_only_mapping() -> None:
    obj = ObjectPayload({"a": 1})
    with pytest.raises(TypeError):
        obj["a"] = 2  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.data = {}  # type: ignore[misc]
    assert ObjectPayload() == ObjectPayload({})


# -- equality ------------------------------------------------------------------


def test_arrays_compare_by_dtype_shape_and_content() -> None:
    base = ObjectPayload({"a": np.array([1, 2], np.int32)})
    assert base == ObjectPayload({"a": np.array([1, 2], np.int32)})
    assert base != ObjectPayload({"a": np.array([1, 2], np.int64)})
    assert base != ObjectPayload({"a": np.array([[1, 2]], np.int32)})
    assert base != ObjectPayload({"a": np.array([1, 3], np.int32)})
    assert base != ObjectPayload({"a": [1, 2]})
    nan = np.array([np.nan, 1.0])
    assert ObjectPayload({"a": nan}) == ObjectPayload({"a": nan.copy()})


def test_ints_floats_and_bools_are_distinct() -> None:
    assert ObjectPayload({"v": 1}) != ObjectPayload({"v": 1.0})
    assert ObjectPayload({"v": 1}) != ObjectPayload({"v": True})
    assert ObjectPayload({"v": 0.0}) != ObjectPayload({"v": False})
    assert ObjectPayload({"v": 1}) == ObjectPayload({"v": 1})
    assert ObjectPayload({"v": float("nan")}) == ObjectPayload({"v": float("nan")})
    assert ObjectPayload({"v": b"1"}) != ObjectPayload({"v": "1"})


def test_lists_and_tuples_compare_alike_and_mappings_by_keys() -> None:
    assert ObjectPayload({"v": [1, 2]}) == ObjectPayload({"v": (1, 2)})
    assert ObjectPayload({"v": {"a": 1}}) != ObjectPayload({"v": {"b": 1}})


def test_payloads_of_different_kinds_are_not_equal_and_not_hashable() -> None:
    audio = AudioPayload(np.zeros(2), 16000)
    assert audio != BytesPayload(b"")
    assert audio == AudioPayload(np.zeros(2), 16000)
    assert audio != AudioPayload(np.zeros(2, np.float32), 16000)
    assert audio != AudioPayload(np.zeros(2), 16000, audio_format="f64")
    with pytest.raises(TypeError):
        hash(audio)
    with pytest.raises(TypeError):
        hash(ObjectPayload())


# -- batch / control / config ----------------------------------------------------


def test_batch_freezes_its_messages_and_refuses_others() -> None:
    first = Message(BytesPayload(b"a"))
    batch = Batch([first, Message(BytesPayload(b"b"))])  # type: ignore[arg-type]
    assert len(batch) == 2
    assert isinstance(batch.messages, tuple)
    assert first.frozen
    with pytest.raises(PayloadError, match=r"messages\[0\] must be a Message, got BytesPayload"):
        Batch((BytesPayload(b"a"),))  # type: ignore[arg-type]


def test_batch_equality_compares_its_messages() -> None:
    a = Message(BytesPayload(b"a"), id=1, created_at=0.0)
    b = Message(BytesPayload(b"a"), id=1, created_at=0.0)
    assert Batch((a,)) == Batch((b,))
    assert Batch((a,)) != Batch(())


def test_control_payload_needs_a_signal_and_freezes_its_data() -> None:
    control = ControlPayload("flush", {"reason": ["eos"]})
    assert control.data == {"reason": ("eos",)}
    with pytest.raises(TypeError):
        control.data["x"] = 1  # type: ignore[index]
    for bad in ("", None, 3):
        with pytest.raises(PayloadError, match="signal must be a non-empty str"):
            ControlPayload(bad)  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match=r"ControlPayload\.data\.s: type set"):
        ControlPayload("x", {"s": set()})


def test_config_payload_holds_frozen_changes() -> None:
    config = ConfigPayload({"gain": 2.0, "names": ["a"]})
    assert config.changes == {"gain": 2.0, "names": ("a",)}
    assert ConfigPayload().changes == {}
    with pytest.raises(PayloadError, match="changes must be a mapping"):
        ConfigPayload([("gain", 2.0)])  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match=r"ConfigPayload\.changes: mapping keys must be str"):
        ConfigPayload({1: 2})  # type: ignore[dict-item]


def test_every_kind_has_its_wire_name() -> None:
    kinds = [
        p.kind
        for p in (
            AudioPayload,
            ImagePayload,
            VideoPayload,
            BytesPayload,
            ObjectPayload,
            Batch,
            ControlPayload,
            ConfigPayload,
        )
    ]
    assert kinds == ["audio", "image", "video", "bytes", "object", "batch", "control", "config"]
