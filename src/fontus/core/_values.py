"""JSON-like values that may also hold numpy arrays and bytes, made immutable.

Object payloads, ``meta`` and config changes all hold such values.  They are
frozen on construction so that one message can be shared by many nodes (and
threads) without copies: mappings become :class:`FrozenDict`, lists become
tuples, arrays become read-only views.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any

import numpy as np

__all__ = [
    "EMPTY",
    "INT64_MAX",
    "INT64_MIN",
    "FrozenDict",
    "freeze_value",
    "readonly_array",
    "thaw_value",
    "values_equal",
]


class FrozenDict(Mapping[str, Any]):
    """A read-only, hashable-free mapping with ``str`` keys."""

    __slots__ = ("_data", "_plain")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data) if data else {}
        #: True when this map is known to hold, at any depth, only exact ``str`` keys,
        #: None, bool, int in the int64 range, float, str, bytes, tuples and maps of
        #: the same (what MessagePack carries as it is); False when that is not known.
        #: Set by :func:`freeze_value`, which looks at every value anyway, and by the
        #: wire's tree reader after its checks, so that an encoder need not walk the map
        #: again (decision 0018).  A map made by this constructor is never known plain:
        #: its values were not frozen here, and a list among them may still change.
        self._plain = False

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    # The Mapping mixins would go through __iter__ and __getitem__ key by key, in
    # Python; the dict's own methods do the same in C (the codec walks every map).
    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def keys(self) -> KeysView[str]:
        return self._data.keys()

    def values(self) -> ValuesView[Any]:
        return self._data.values()

    def items(self) -> ItemsView[str, Any]:
        return self._data.items()

    @classmethod
    def adopt(cls, data: dict[str, Any], plain: bool = False) -> FrozenDict:
        """Wrap ``data`` without copying it; the caller hands it over and never changes it
        (``plain``: the caller knows it is plain, see ``_plain``)."""
        frozen = object.__new__(cls)
        frozen._data = data
        frozen._plain = plain
        return frozen

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return values_equal(self, other)

    __hash__ = None  # type: ignore[assignment]


def readonly_array(array: np.ndarray, path: str = "array") -> np.ndarray:
    """Return a read-only view of ``array`` (no copy), refusing object dtypes."""
    if array.dtype.hasobject:
        raise TypeError(
            f"{path}: numpy arrays of dtype object are not allowed; use a numeric dtype"
        )
    if not array.flags.writeable:
        return array
    view = array.view()
    view.flags.writeable = False
    return view


_PLAIN = frozenset((bool, int, float, str, bytes))
#: The int range the wire carries (int64): ids, versions and value-tree ints.
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
#: The empty mapping: one shared instance (it cannot change).
EMPTY = FrozenDict.adopt({}, plain=True)


def _plain_frozen(value: Any) -> bool:
    """Whether the frozen ``value`` (no list or tuple) is known plain (see FrozenDict._plain)."""
    t = type(value)
    if t is FrozenDict:
        return value._plain
    if value is None or t in _PLAIN:
        return t is not int or INT64_MIN <= value <= INT64_MAX
    return False


def freeze_value(value: Any, path: str = "value") -> Any:
    """Turn a JSON-like value into its immutable form, or raise ``TypeError`` naming ``path``."""
    if value is None or type(value) in _PLAIN or type(value) is FrozenDict:
        return value
    if type(value) is dict:
        return _freeze_mapping(value, path)
    if isinstance(value, np.ndarray):
        return readonly_array(value, path)
    if isinstance(value, np.generic):
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):  # np.float64 is also a float: test before float
            return float(value)
        if isinstance(value, np.str_):
            return str.__str__(value)
        if isinstance(value, np.bytes_):
            return bytes(value)
        raise TypeError(f"{path}: numpy scalar of type {type(value).__name__} is not supported")
    # Subclasses (IntEnum, str enums, ...) become the plain type: equality compares types,
    # and the value must read the same after a trip over the wire.
    if isinstance(value, int):  # bool cannot be subclassed
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return _freeze_mapping(value, path)
    if isinstance(value, list | tuple):
        return _freeze_sequence(value, path)[0]
    raise TypeError(
        f"{path}: type {type(value).__name__} is not supported; use None, bool, int, float, "
        "str, bytes, a numpy array, a list or a mapping with str keys"
    )


def _freeze_mapping(value: Mapping[Any, Any], path: str) -> FrozenDict:
    if not value:
        return EMPTY
    frozen = {}
    plain = True
    for key, item in value.items():
        if type(key) is not str:
            if not isinstance(key, str):
                raise TypeError(
                    f"{path}: mapping keys must be str, got {type(key).__name__} {key!r}"
                )
            plain = False  # a str subclass: the wire writes its text (the column way)
        t = type(item)
        if item is None or t in _PLAIN:
            frozen[key] = item
            if t is int and not INT64_MIN <= item <= INT64_MAX:
                plain = False
        else:
            frozen[key], item_plain = _freeze_nested(item, f"{path}.{key}")
            plain = plain and item_plain
    return FrozenDict.adopt(frozen, plain)


def _freeze_sequence(value: list[Any] | tuple[Any, ...], path: str) -> tuple[tuple[Any, ...], bool]:
    """``value`` frozen into a tuple, and whether it is known plain (see FrozenDict._plain)."""
    frozen = []
    plain = True
    for i, item in enumerate(value):
        t = type(item)
        if item is None or t in _PLAIN:  # (inline, as in _freeze_mapping: most values)
            frozen.append(item)
            if t is int and not INT64_MIN <= item <= INT64_MAX:
                plain = False
        else:
            item, item_plain = _freeze_nested(item, f"{path}[{i}]")
            frozen.append(item)
            plain = plain and item_plain
    return tuple(frozen), plain


def _freeze_nested(item: Any, path: str) -> tuple[Any, bool]:
    """A value that is not a plain leaf, frozen, and whether it is known plain."""
    if type(item) is list or type(item) is tuple:
        return _freeze_sequence(item, path)
    item = freeze_value(item, path)
    return item, _plain_frozen(item)


def thaw_value(value: Any) -> Any:
    """Return a mutable deep copy: mappings become dicts, tuples become lists, arrays are copied."""
    if isinstance(value, Mapping):
        return {key: thaw_value(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [thaw_value(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def values_equal(a: Any, b: Any) -> bool:
    """Deep equality that compares arrays by dtype, shape and content, and ints apart from floats."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return (
            a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if a.keys() != b.keys():
            return False
        return all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is not type(b) and not _same_number_kind(a, b):
        return False
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # NaN equals NaN for round-trip purposes
    return bool(a == b)


def _same_number_kind(a: Any, b: Any) -> bool:
    # bool is an int subclass; keep True != 1 so a round trip that changes the type is caught.
    return False if isinstance(a, bool) or isinstance(b, bool) else type(a) is type(b)
