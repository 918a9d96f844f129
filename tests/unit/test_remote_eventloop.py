"""Which event loop the remote side runs on (``FONTUS_EVENT_LOOP``, ``remote/_eventloop.py``)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import warnings

import pytest

from fontus.core.errors import ConfigError
from fontus.remote._eventloop import ENV, event_loop_name, new_event_loop, run

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _answer() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


def test_auto_takes_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    expected = "uvloop" if HAS_UVLOOP else "asyncio"
    assert event_loop_name() == expected
    assert run(_answer()) == expected


def test_asyncio_forces_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "asyncio")
    assert event_loop_name() == "asyncio"
    loop = new_event_loop()
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
    assert run(_answer()) == "asyncio"


def test_the_value_is_read_case_and_space_insensitively(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "  AsyncIO ")
    assert event_loop_name() == "asyncio"


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed here")
def test_uvloop_asked_for_and_installed_runs_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "uvloop")
    assert run(_answer()) == "uvloop"


def test_uvloop_asked_for_but_missing_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "uvloop")
    # An import that fails the way a missing package does (None in sys.modules).
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(ConfigError) as info:
        event_loop_name()
    assert "uvloop is not installed" in str(info.value)
    assert f"{ENV}=asyncio" in str(info.value)


def test_auto_falls_back_to_asyncio_when_uvloop_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert event_loop_name() == "asyncio"
    assert run(_answer()) == "asyncio"


def test_an_unknown_value_is_refused_naming_the_variable_and_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV, "tokio")
    coro = _answer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited"
        with pytest.raises(ConfigError) as info:
            run(coro)
    message = str(info.value)
    assert f"{ENV}='tokio'" in message
    assert "auto, uvloop, asyncio" in message
    assert coro.cr_frame is None  # closed, not left pending
