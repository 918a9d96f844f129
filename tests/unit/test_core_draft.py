"""Draft: a mutable builder compiled into a validated payload."""

from __future__ import annotations

import numpy as np
import pytest

from fontus.core import AudioPayload, BytesPayload, Draft, ObjectPayload, PayloadError


def test_attribute_fields_compile_into_the_payload() -> None:
    draft = Draft(AudioPayload, sampling_rate=16000)
    draft.audio = np.zeros(4, np.float32)
    draft.end = 0.25
    payload = draft.compile()
    assert payload == AudioPayload(np.zeros(4, np.float32), 16000, end=0.25)
    assert draft.sampling_rate == 16000


def test_object_draft_is_item_accessible_like_a_dict() -> None:
    draft = Draft(ObjectPayload)
    draft["text"] = "hello"
    draft.update({"score": 0.9})
    assert draft["text"] == "hello"
    assert "score" in draft and "missing" not in draft
    payload = draft.compile()
    assert payload == ObjectPayload({"text": "hello", "score": 0.9})
    draft["text"] = "changed"  # the compiled payload does not follow the draft
    assert payload["text"] == "hello"


def test_item_access_on_other_kinds_says_to_use_attributes() -> None:
    draft = Draft(BytesPayload)
    with pytest.raises(PayloadError, match="item access is for ObjectPayload drafts"):
        draft["cnt"] = b"x"


def test_unknown_field_names_the_fields() -> None:
    with pytest.raises(
        PayloadError, match="Draft\\(BytesPayload\\): unknown field 'content'; fields are cnt"
    ):
        Draft(BytesPayload, content=b"x")
    draft = Draft(AudioPayload)
    with pytest.raises(PayloadError, match="unknown field 'rate'; fields are audio, sampling_rate"):
        draft.rate = 16000


def test_reading_an_unset_field_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="field 'cnt' is not set"):
        _ = Draft(BytesPayload).cnt


def test_draft_kind_must_be_a_payload_class() -> None:
    with pytest.raises(PayloadError, match="kind must be a payload class, got 'audio'"):
        Draft("audio")  # type: ignore[arg-type]


def test_compile_reports_missing_fields() -> None:
    with pytest.raises(PayloadError, match=r"Draft\(AudioPayload\): .*missing.*'sampling_rate'"):
        Draft(AudioPayload, audio=np.zeros(2)).compile()


def test_compile_reports_validation_errors_of_the_payload() -> None:
    draft = Draft(AudioPayload, audio=np.zeros((4, 2)), sampling_rate=16000)
    with pytest.raises(PayloadError, match="channels=1"):
        draft.compile()


def test_from_payload_copies_arrays_so_they_can_change_in_place() -> None:
    original = AudioPayload(np.ones(4, np.float32), 16000, start=1.0, end=2.0)
    draft = Draft.from_payload(original)
    assert draft.audio.flags.writeable
    assert not np.shares_memory(draft.audio, original.audio)
    draft.audio *= 0.5
    changed = draft.compile()
    assert changed.audio.tolist() == [0.5] * 4
    assert original.audio.tolist() == [1.0] * 4
    assert (changed.start, changed.end, changed.sampling_rate) == (1.0, 2.0, 16000)


def test_from_object_payload_gives_a_mutable_copy_of_the_data() -> None:
    original = ObjectPayload({"items": [1, 2], "a": np.arange(2)})
    draft = Draft.from_payload(original)
    draft["items"].append(3)
    draft["a"][0] = 7
    draft["new"] = True
    compiled = draft.compile()
    assert compiled["items"] == (1, 2, 3)
    assert compiled["a"].tolist() == [7, 1]
    assert original == ObjectPayload({"items": [1, 2], "a": np.arange(2)})


def test_repr_lists_the_fields_set() -> None:
    assert repr(Draft(BytesPayload, cnt=b"")) == "Draft(BytesPayload, fields=['cnt'])"
