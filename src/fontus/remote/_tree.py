"""The flattened value tree (``fontus.v1.Value``): writing and reading.

A tree travels as one byte of ``kinds`` per value, in pre-order, plus one
column per kind (see payloads.proto).  Writing walks the tree once, appending
to plain lists that protobuf then copies in bulk; reading walks ``kinds`` once,
taking each value from its column.  The common scalars are handled inline in
the loops over map entries and list items: at a few dozen values per object a
function call per value would be most of the cost.

Malformed trees raise :class:`~fontus.core.errors.WireError` naming the path
of the value and the problem; every column must be read to its end.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..core._values import EMPTY, FrozenDict
from ..core.errors import WireError
from ._arrays import CompressionConfig, decode_array, encode_array
from ._blobs import BlobWriter
from ._limits import INT64_MAX, INT64_MIN, WireLimits
from ._packed import unpack_tree

__all__ = ["read_tree", "write_tree"]


NULL, TRUE, FALSE = ord("n"), ord("t"), ord("f")
INT, DOUBLE, STRING, BYTES = ord("i"), ord("d"), ord("s"), ord("b")
ARRAY, LIST, MAP = ord("a"), ord("l"), ord("m")
_END = object()
#: Kinds a flat map may hold (see _read_flat); bytes need their column, so they are not here.
_SCALARS = b"ntfids"
#: Column names, in the order read_tree keeps their iterators.
_COLUMNS = ("keys", "ints", "doubles", "strings", "octets", "arrays")


def write_tree(
    root: Any, target: Any, path: str, blobs: BlobWriter, compression: CompressionConfig
) -> None:
    """Fill the empty ``Value`` ``target`` with ``root``; arrays go to ``blobs``."""
    if (type(root) is FrozenDict or type(root) is dict) and _write_flat(root, target):
        return
    kinds = bytearray()
    keys: list[str] = []
    ints: list[int] = []
    doubles: list[float] = []
    strings: list[str] = []
    octets: list[bytes] = []
    kind = kinds.append
    add_key, add_int, add_double, add_string = (
        keys.append,
        ints.append,
        doubles.append,
        strings.append,
    )

    def other(value: Any, path: str) -> None:
        """Anything but the exact common scalars (containers, arrays, subclasses, errors)."""
        t = type(value)
        if t is dict or t is FrozenDict:
            mapping(value, path)
        elif t is list or t is tuple:
            sequence(value, path)
        elif value is None:
            kind(NULL)
        elif value is True or value is False:
            kind(TRUE if value else FALSE)
        elif isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise WireError(f"{path}: int {value} is outside the int64 range the wire carries")
            kind(INT)
            add_int(int(value))
        elif isinstance(value, float):
            kind(DOUBLE)
            add_double(float(value))
        elif isinstance(value, str):
            kind(STRING)
            add_string(str.__str__(value))  # a str enum member travels as its text
        elif isinstance(value, bytes):
            kind(BYTES)
            octets.append(bytes(value))
        elif isinstance(value, np.ndarray):
            kind(ARRAY)
            encode_array(value, target.arrays.add(), blobs, compression)
        elif isinstance(value, Mapping):
            mapping(value, path)
        elif isinstance(value, list | tuple):
            sequence(value, path)
        else:
            raise WireError(f"{path}: type {type(value).__name__} cannot travel")

    def mapping(value: Mapping[str, Any], path: str) -> None:
        kind(MAP)
        add_int(len(value))
        for key, item in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise WireError(f"{path}: key {key!r} is not a string (keys must be str)")
                key = str.__str__(key)  # a str enum member travels as its text
            add_key(key)
            t = type(item)
            if t is str:
                kind(STRING)
                add_string(item)
            elif t is float:
                kind(DOUBLE)
                add_double(item)
            elif t is int and INT64_MIN <= item <= INT64_MAX:
                kind(INT)
                add_int(item)
            elif t is bool:
                kind(TRUE if item else FALSE)
            else:
                other(item, f"{path}.{key}")

    # The scalar dispatch of ``mapping`` repeats here on purpose: a shared loop over
    # values (a map's keys written first, or a helper per item) measured 2-3 µs slower
    # per 20-key object each way, which is what flattening the tree was for.
    def sequence(value: list[Any] | tuple[Any, ...], path: str) -> None:
        kind(LIST)
        add_int(len(value))
        for i, item in enumerate(value):
            t = type(item)
            if t is str:
                kind(STRING)
                add_string(item)
            elif t is float:
                kind(DOUBLE)
                add_double(item)
            elif t is int and INT64_MIN <= item <= INT64_MAX:
                kind(INT)
                add_int(item)
            elif t is bool:
                kind(TRUE if item else FALSE)
            else:
                other(item, f"{path}[{i}]")

    other(root, path)
    target.kinds = bytes(kinds)
    if keys:
        target.keys.extend(keys)
    if ints:
        target.ints.extend(ints)
    if doubles:
        target.doubles.extend(doubles)
    if strings:
        target.strings.extend(strings)
    if octets:
        target.octets.extend(octets)


def _write_flat(mapping: Mapping[str, Any], target: Any) -> bool:
    """Write a map of exact scalars in one loop; False (nothing written) for anything else.

    Most objects and ``meta`` are flat: this skips building the general walker
    (closures, a dispatch per value), a fixed cost of a few microseconds.
    """
    kinds = bytearray(b"m")
    ints = [len(mapping)]
    doubles: list[float] = []
    strings: list[str] = []
    kind = kinds.append
    for item in mapping.values():
        t = type(item)
        if t is str:
            kind(STRING)
            strings.append(item)
        elif t is int and INT64_MIN <= item <= INT64_MAX:
            kind(INT)
            ints.append(item)
        elif t is float:
            kind(DOUBLE)
            doubles.append(item)
        elif t is bool:
            kind(TRUE if item else FALSE)
        elif item is None:
            kind(NULL)
        else:
            return False
    for key in mapping:
        if type(key) is not str:
            return False  # the general walker names the key
    target.kinds = bytes(kinds)
    target.keys.extend(mapping)
    target.ints.extend(ints)
    if doubles:
        target.doubles.extend(doubles)
    if strings:
        target.strings.extend(strings)
    return True


def _read_flat(source: Any, kinds: bytes, path: str) -> FrozenDict | None:
    """Read a map of scalars whose columns agree with its kinds; None for anything else.

    The counts are checked up front, so no column can run out while reading;
    a tree that fails them goes through the general reader, which names the problem.
    """
    keys = source.keys
    n = len(kinds) - 1
    ints = source.ints
    doubles = source.doubles
    strings = source.strings
    if (
        len(keys) != n
        or len(ints) != 1 + kinds.count(b"i")
        or ints[0] != n
        or len(doubles) != kinds.count(b"d")
        or len(strings) != kinds.count(b"s")
        or source.octets
        or source.arrays
    ):
        return None
    next_int = iter(ints).__next__
    next_int()  # the root's length, checked above
    next_double = iter(doubles).__next__
    next_string = iter(strings).__next__
    out: dict[str, Any] = {}
    for key, code in zip(keys, kinds[1:], strict=True):
        if key in out:
            raise WireError(f"{path}: key {key!r} appears twice")
        if code == STRING:
            out[key] = next_string()
        elif code == INT:
            out[key] = next_int()
        elif code == DOUBLE:
            out[key] = next_double()
        elif code == TRUE:
            out[key] = True
        elif code == FALSE:
            out[key] = False
        else:
            out[key] = None
    return FrozenDict.adopt(out)


def read_tree(
    source: Any,
    path: str,
    depth: int,
    blobs: list[memoryview],
    limits: WireLimits,
    *,
    want_map: bool,
) -> Any:
    """Rebuild the value ``source`` holds (a FrozenDict when ``want_map``).

    ``depth`` counts the containers already around ``source`` (see WireLimits.max_depth).
    """
    kinds = source.kinds
    packed = source.msgpack
    if packed:
        if kinds or len(source.ListFields()) != 1:
            raise WireError(f"{path}: value tree has both a MessagePack form and columns")
        return unpack_tree(packed, path, depth, limits.max_depth, want_map=want_map)
    if not kinds:
        if want_map:
            return EMPTY
        raise WireError(f"{path}: value has no kind set")
    if want_map and kinds[0] != MAP:
        raise WireError(f"{path}: expected a map, the value tree holds a {_name(kinds[0])}")
    if kinds[0] == MAP and kinds.translate(None, _SCALARS) == b"m":
        flat = _read_flat(source, kinds, path)
        if flat is not None:
            return flat
    columns: tuple[Iterator[Any], ...] = (
        iter(source.keys),
        iter(source.ints),
        iter(source.doubles),
        iter(source.strings),
        iter(source.octets),
        iter(source.arrays),
    )
    kind_iter = iter(kinds)
    next_kind = kind_iter.__next__
    next_key = columns[0].__next__
    next_int = columns[1].__next__
    next_double = columns[2].__next__
    next_string = columns[3].__next__
    next_octets = columns[4].__next__
    next_array = columns[5].__next__
    max_depth = limits.max_depth

    def other(code: int, path: str, depth: int) -> Any:
        """A value of any kind but the common scalars (containers, bytes, arrays, null)."""
        if code == MAP:
            depth += 1
            if depth > max_depth:
                raise WireError(f"{path}: values nested deeper than {max_depth}")
            count = next_int()
            if count < 0:
                raise WireError(f"{path}: map length {count} is negative")
            out: dict[str, Any] = {}
            for _ in range(count):
                key = next_key()
                if key in out:
                    raise WireError(f"{path}: key {key!r} appears twice")
                code = next_kind()
                if code == STRING:
                    out[key] = next_string()
                elif code == INT:
                    out[key] = next_int()
                elif code == DOUBLE:
                    out[key] = next_double()
                elif code == TRUE:
                    out[key] = True
                elif code == FALSE:
                    out[key] = False
                else:
                    out[key] = other(code, f"{path}.{key}", depth)
            return FrozenDict.adopt(out)
        if code == LIST:
            depth += 1
            if depth > max_depth:
                raise WireError(f"{path}: values nested deeper than {max_depth}")
            count = next_int()
            if count < 0:
                raise WireError(f"{path}: list length {count} is negative")
            items: list[Any] = []
            add = items.append
            for i in range(count):
                code = next_kind()
                if code == STRING:
                    add(next_string())
                elif code == INT:
                    add(next_int())
                elif code == DOUBLE:
                    add(next_double())
                elif code == TRUE:
                    add(True)
                elif code == FALSE:
                    add(False)
                else:
                    add(other(code, f"{path}[{i}]", depth))
            return tuple(items)
        if code == STRING:
            return next_string()
        if code == INT:
            return next_int()
        if code == DOUBLE:
            return next_double()
        if code == TRUE:
            return True
        if code == FALSE:
            return False
        if code == NULL:
            return None
        if code == BYTES:
            return next_octets()
        if code == ARRAY:
            return decode_array(next_array(), blobs, limits, path)
        raise WireError(f"{path}: unknown value kind {chr(code)!r} in the value tree")

    try:
        value = other(next_kind(), path, depth)
    except StopIteration:
        raise WireError(
            f"{path}: value tree is truncated: a length or column ends before the kinds say"
        ) from None
    if next(kind_iter, None) is not None:
        rest = 1 + sum(1 for _ in kind_iter)
        raise WireError(f"{path}: value tree has {rest} kinds after its root value ends")
    for name, column in zip(_COLUMNS, columns, strict=True):
        if next(column, _END) is not _END:
            extra = 1 + sum(1 for _ in column)
            raise WireError(f"{path}: value tree has {extra} unread entries in '{name}'")
    return value


def _name(code: int) -> str:
    names = {NULL: "null", TRUE: "bool", FALSE: "bool", INT: "int", DOUBLE: "double"}
    names.update({STRING: "string", BYTES: "bytes", ARRAY: "array", LIST: "list", MAP: "map"})
    return names.get(code, f"unknown kind {chr(code)!r}")
