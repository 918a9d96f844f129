"""The MessagePack form of a value tree (``fontus.v1.Value.msgpack``).

The column form (``_tree.py``) is walked value by value in Python on both
sides, about 15 µs each way for a 20-key object.  MessagePack is packed and
parsed whole by msgpack's C code; what stays in Python is one pass that checks
what C does not (exact types, string keys, the int64 range on writing; string
keys, depth and the int64 range on reading) and a call per map to build its
FrozenDict.  See decision 0010.

A tree travels this way only when the peer said it reads it (``value_formats``
in Open / Opened) and only when it holds nothing but exact ``dict``/
``FrozenDict``, ``list``/``tuple``, ``str``, ``int`` (int64), ``float``,
``bool``, ``None`` and ``bytes``: arrays, subclasses and anything the column
writer must judge (and name in its error) go the column way.
"""

from __future__ import annotations

import threading
from typing import Any

from ..core._values import FrozenDict
from ..core.errors import ConfigError, WireError
from ._env import env_choice
from ._limits import INT64_MAX, INT64_MIN

try:
    import msgpack
except ImportError:  # pragma: no cover - the remote extra brings it
    msgpack = None

__all__ = ["ENV", "pack_tree", "tree_formats", "unpack_tree"]

#: ``auto`` (default: MessagePack when msgpack is installed), ``msgpack`` (required) or
#: ``columns`` (never offered nor written; what arrives in MessagePack is still read).
ENV = "FONTUS_VALUE_TREES"
_CHOICES = ("auto", "msgpack", "columns")


def tree_formats() -> tuple[str, ...]:
    """The value-tree forms to offer besides the columns (``value_formats`` in Open / Opened)."""
    choice = env_choice(ENV, _CHOICES, "use MessagePack trees when msgpack is installed")
    if choice == "columns":
        return ()
    if msgpack is None:  # pragma: no cover - the remote extra brings it
        if choice == "msgpack":
            raise ConfigError(
                f"{ENV}=msgpack but msgpack is not installed: pip install 'fontus[remote]', "
                f"or set {ENV}=columns"
            )
        return ()
    return ("msgpack",)


#: Types that need no look inside: packed and read as they are.
_LEAVES = frozenset((str, float, bool, type(None), bytes))


#: A Packer per thread (``msgpack.packb`` builds one per call): one must not be shared,
#: as ``_frozen`` runs Python in the middle of a ``pack`` and another thread may run then.
_packers = threading.local()


def pack_tree(root: Any) -> bytes | None:
    """``root`` (a map or list) as MessagePack, or None when it must go the column way."""
    if msgpack is None or not _plain(root):
        return None
    try:
        packer = _packers.packer
    except AttributeError:
        packer = _packers.packer = msgpack.Packer(default=_frozen, use_bin_type=True)
    # (a failed pack empties its buffer: the next starts clean)
    return packer.pack(root._data if type(root) is FrozenDict else root)


def _frozen(value: Any) -> Any:
    if type(value) is FrozenDict:
        return value._data
    raise TypeError(f"{type(value).__name__} cannot be packed")  # _plain let it through: a bug


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only the exact types MessagePack carries as the column form would."""
    t = type(value)
    if t is FrozenDict:
        if value._plain:  # known from when it was frozen or read (decision 0018)
            return True
        value = value._data  # its dict: iterated in C, not through FrozenDict's methods
        t = dict
    if t is dict:
        for key in value:
            if type(key) is not str:
                return False
        items = value.values()
    elif t is list or t is tuple:
        items = value
    else:
        return False
    for item in items:
        t = type(item)
        if t in _LEAVES or (t is int and INT64_MIN <= item <= INT64_MAX):
            continue
        if (t is tuple or t is list) and _all_leaves(item):
            continue  # the common list of numbers or strings (anything else: checked below)
        if t is int or not _plain(item):
            return False
    return True


def _all_leaves(items: Any) -> bool:
    """Whether every item of the list ``items`` is a leaf: no container, ints in int64."""
    for item in items:
        t = type(item)
        if not (t in _LEAVES or (t is int and INT64_MIN <= item <= INT64_MAX)):
            return False
    return True


class _Duplicate(Exception):
    def __init__(self, key: Any) -> None:
        super().__init__(key)
        self.key = key


def _map(pairs: list[tuple[Any, Any]]) -> FrozenDict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[Any] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return FrozenDict.adopt(out)


def _no_ext(code: int, data: bytes) -> Any:
    raise WireError(f"MessagePack ext type {code} is not part of a value tree")


def unpack_tree(data: bytes, path: str, depth: int, max_depth: int, *, want_map: bool) -> Any:
    """The value the MessagePack ``data`` holds, checked as the column reader checks its trees.

    ``depth`` counts the containers already around it (see WireLimits.max_depth).
    """
    if msgpack is None:  # pragma: no cover - the remote extra brings it
        raise WireError(
            f"{path}: the value tree travels as MessagePack and msgpack is not installed "
            "here; pip install 'fontus[remote]'"
        )
    try:
        value = msgpack.unpackb(
            data, use_list=False, raw=False, object_pairs_hook=_map, ext_hook=_no_ext
        )
    except WireError as exc:
        raise WireError(f"{path}: {exc}") from None
    except _Duplicate as exc:
        raise WireError(f"{path}: key {exc.key!r} appears twice in a map") from None
    except msgpack.ExtraData:
        raise WireError(f"{path}: MessagePack value tree has bytes after its root value") from None
    except (ValueError, TypeError) as exc:  # msgpack's FormatError, StackError, bad UTF-8 ...
        detail = str(exc) or type(exc).__name__
        if "not allowed for map key" in detail:
            detail = f"a map key is not a string (keys must be str): {detail}"
        raise WireError(f"{path}: malformed MessagePack value tree: {detail}") from None
    t = type(value)
    if want_map and t is not FrozenDict:
        raise WireError(f"{path}: expected a map, the MessagePack value tree holds a {_name(t)}")
    if t is FrozenDict or t is tuple:
        _check(value, path, depth, max_depth)
    elif t is int and not INT64_MIN <= value <= INT64_MAX:
        raise WireError(f"{path}: int {value} is outside the int64 range the wire carries")
    elif t not in _LEAVES and t is not int:
        raise WireError(f"{path}: a {_name(t)} cannot travel in a value tree")
    return value


def _check(value: Any, path: str, depth: int, max_depth: int) -> None:
    """Refuse what msgpack lets through: deep nesting, non-string keys, ints over int64, ext values."""
    depth += 1
    if depth > max_depth:
        raise WireError(f"{path}: values nested deeper than {max_depth}")
    is_map = type(value) is FrozenDict
    for label, item in value._data.items() if is_map else enumerate(value):
        if is_map and type(label) is not str:
            raise WireError(f"{path}: key {label!r} is not a string (keys must be str)")
        t = type(item)
        if t in _LEAVES or (t is int and INT64_MIN <= item <= INT64_MAX):
            continue
        if t is tuple and depth < max_depth and _all_leaves(item):
            continue  # the common list of leaves, without its path string and a recursion
        where = f"{path}.{label}" if is_map else f"{path}[{label}]"
        if t is FrozenDict or t is tuple:
            _check(item, where, depth, max_depth)
        elif t is int:
            raise WireError(f"{where}: int {item} is outside the int64 range")
        else:
            raise WireError(f"{where}: a {_name(t)} cannot travel in a value tree")
    if is_map:
        value._plain = True  # checked: an encoder sending it on need not walk it again


def _name(t: type) -> str:
    return {FrozenDict: "map", tuple: "list", type(None): "null"}.get(t, t.__name__)
