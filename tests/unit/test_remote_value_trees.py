"""Which value-tree forms a side offers (``FONTUS_VALUE_TREES``, ``remote/_packed.py``)."""

from __future__ import annotations

import random
import sys
import threading
from typing import Any

import numpy as np
import pytest

from fontus import ObjectPayload
from fontus.core import ConfigError
from fontus.core._values import FrozenDict
from fontus.remote._packed import ENV, pack_tree, tree_formats, unpack_tree

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


# -- maps known plain (decision 0018) ---------------------------------------------------
class _Key(str):
    """A str subclass as a key: the wire writes its text, the column way."""


_PLAIN_TREES = [
    {"i": 1, "s": "x", "f": 1.5, "n": None, "b": True, "raw": b"\x00"},
    {"lo": -(2**63), "hi": 2**63 - 1, "np": np.int64(7), "npf": np.float32(0.5)},
    {"list": [1, [2, "y"], ()], "nested": {"deeper": [{"j": 2}, {}]}, "empty": {}},
]
_NOT_KNOWN_PLAIN = [
    {"a": np.zeros(2)},
    {"big": 2**63},
    {"small": -(2**63) - 1},
    {"in_list": [1, 2**63]},
    {"deep": {"deeper": [np.zeros(1)]}},
    {_Key("k"): 1},
    {"user_map": FrozenDict({"b": 1})},  # made by hand: its values were never frozen here
]


@pytest.mark.parametrize("tree", _PLAIN_TREES)
def test_freezing_marks_a_map_plain_and_it_packs_as_a_walked_one(tree: dict) -> None:
    pytest.importorskip("msgpack")
    frozen = ObjectPayload(tree).data
    assert frozen._plain is True
    walked = FrozenDict.adopt(dict(frozen._data))  # the same map, not known plain
    assert walked._plain is False
    assert pack_tree(frozen) == pack_tree(walked) is not None


@pytest.mark.parametrize("tree", _NOT_KNOWN_PLAIN)
def test_a_map_with_anything_else_is_not_known_plain(tree: dict) -> None:
    assert ObjectPayload(tree).data._plain is False


def test_a_map_not_known_plain_is_walked_at_each_pack() -> None:
    pytest.importorskip("msgpack")
    inner = [1]
    data = ObjectPayload({"user_map": FrozenDict({"list": inner})}).data
    assert pack_tree(data) is not None  # plain when walked
    inner.append(np.zeros(1))  # the hand-made map holds a list someone still changes
    assert pack_tree(data) is None  # walked again: the column way judges it


def test_a_map_read_from_the_wire_is_known_plain() -> None:
    pytest.importorskip("msgpack")
    sent = FrozenDict.adopt({"a": FrozenDict.adopt({"b": (1, FrozenDict.adopt({"c": "x"}))})})
    read = unpack_tree(pack_tree(sent), "data", 0, 32, want_map=True)
    assert read == sent
    assert read._plain and read["a"]._plain and read["a"]["b"][1]._plain


def test_the_packer_trusts_a_map_known_plain_without_walking_it() -> None:
    pytest.importorskip("msgpack")
    # adopt(plain=True) is the caller's promise; a walk would refuse this int (over int64).
    assert pack_tree(FrozenDict.adopt({"big": 2**63}, plain=True)) is not None
    assert pack_tree(FrozenDict.adopt({"big": 2**63})) is None


_LEAF_CHOICES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**63) - 1,
    2**70,
    0.5,
    float("inf"),
    "",
    "text",
    b"",
    b"\x00\xff",
    np.int64(3),
    np.float32(1.5),
    np.zeros(2),
]


def _random_tree(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice(_LEAF_CHOICES)
    if roll < 0.75:
        return [_random_tree(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = [rng.choice(["a", "b", "c", "d", _Key("k")]) for _ in range(rng.randrange(4))]
    return {key: _random_tree(rng, depth + 1) for key in keys}


def test_a_map_is_known_plain_exactly_when_a_walk_finds_it_plain() -> None:
    # Seeded and bounded: random trees of leaves at and past the int64 bounds, arrays,
    # numpy scalars, str-subclass keys, lists and maps, frozen the way a payload is.
    pytest.importorskip("msgpack")
    rng = random.Random(20261129)
    known = 0
    for _ in range(2000):
        frozen = ObjectPayload({"root": _random_tree(rng, 0)}).data
        walked = FrozenDict.adopt(dict(frozen._data))  # the same map, not known plain
        assert frozen._plain == (pack_tree(walked) is not None)
        if frozen._plain:
            known += 1
            assert pack_tree(frozen) == pack_tree(walked)
    assert 200 < known < 1800  # both kinds of tree were drawn
