"""Which value-tree forms a side offers (``FONTUS_VALUE_TREES``, ``remote/_packed.py``)."""

from __future__ import annotations

import sys
import threading

import pytest

from fontus.core import ConfigError
from fontus.core._values import FrozenDict
from fontus.remote._packed import ENV, pack_tree, tree_formats

#: Bound of every wait in the threaded test.
WAIT_S = 30.0
PACKS_PER_THREAD = 3000


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


def test_threads_packing_at_once_each_get_their_own_tree() -> None:
    # Each thread packs with its own Packer: nested FrozenDicts go through a Python
    # callback in the middle of a pack, where another thread may run and pack too.
    msgpack = pytest.importorskip("msgpack")
    trees = [
        FrozenDict.adopt(
            {
                "thread": n,
                "inner": FrozenDict.adopt({"n": n, "deeper": FrozenDict.adopt({"s": "x" * n})}),
            }
        )
        for n in range(4)
    ]
    errors: list[str] = []
    start = threading.Barrier(len(trees))

    def pack_many(tree: FrozenDict) -> None:
        start.wait(WAIT_S)
        expected = {
            "thread": tree["thread"],
            "inner": {"n": tree["thread"], "deeper": {"s": "x" * tree["thread"]}},
        }
        for _ in range(PACKS_PER_THREAD):
            got = msgpack.unpackb(pack_tree(tree))
            if got != expected:
                errors.append(f"thread {tree['thread']} packed {got!r}")
                return

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        threads = [threading.Thread(target=pack_many, args=(t,), daemon=True) for t in trees]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S)
    finally:
        sys.setswitchinterval(interval)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
