"""Which value-tree forms a side offers (``FONTUS_VALUE_TREES``, ``remote/_packed.py``)."""

from __future__ import annotations

import pytest

from fontus.core import ConfigError
from fontus.remote._packed import ENV, tree_formats


@pytest.mark.parametrize(
    ("value", "offered"),
    [(None, ("msgpack",)), ("auto", ("msgpack",)), ("msgpack", ("msgpack",)), ("columns", ())],
)
def test_each_setting_offers_its_forms(
    monkeypatch: pytest.MonkeyPatch, value: str | None, offered: tuple[str, ...]
) -> None:
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    assert tree_formats() == offered


def test_the_value_is_read_case_and_space_insensitively(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, " Columns ")
    assert tree_formats() == ()


def test_an_unknown_value_is_refused_naming_the_variable_and_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV, "json")
    with pytest.raises(
        ConfigError, match=r"^FONTUS_VALUE_TREES='json' is not one of auto, msgpack, columns"
    ):
        tree_formats()
