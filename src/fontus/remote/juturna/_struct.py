"""JSON-like values in and out of ``google.protobuf.Struct``, the Juturna wire's only value tree.

Juturna carries object payloads, ``meta``, and the envelope's ``configuration``
and ``metadata`` as ``Struct``.  A Struct holds null, bool, double, string,
lists and nested structs, nothing else, so this is where the Juturna wire
loses information:

* every number becomes a double.  Decoding gives a ``float`` (``3`` is read
  back as ``3.0``) unless the caller passes ``ints=True``, which turns every
  integral float back into an ``int`` (so a value that was ``3.0`` comes back
  as ``3`` too: the wire cannot tell them apart).  Ints that a double cannot
  hold exactly (beyond 2**53) are refused rather than rounded;
* lists and tuples both become lists, read back as tuples (as Fontus freezes them);
* bytes, numpy arrays and any other type have no Struct form and are refused
  with a :class:`~fontus.core.errors.WireError` naming the field.  Send bytes
  as a ``BytesPayload``, arrays as audio/image payloads, or convert them
  explicitly (``array.tolist()``, base64 text) before they reach the wire;
* NaN and infinities are refused: Juturna reads object payloads through
  protobuf's JSON conversion, which rejects them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...core._values import FrozenDict
from ...core.errors import WireError
from .._limits import DEFAULT_LIMITS, WireLimits

__all__ = ["MAX_EXACT_INT", "fill_struct", "read_struct"]

#: Largest int a double holds exactly; larger ones would arrive silently rounded.
MAX_EXACT_INT = 1 << 53


def fill_struct(mapping: Mapping[str, Any], target: Any, path: str) -> None:
    """Fill the empty ``Struct`` ``target`` from ``mapping``; ``path`` names it in errors."""
    if not isinstance(mapping, Mapping):
        raise WireError(f"{path}: expected a mapping, got {type(mapping).__name__}")
    target.SetInParent()
    fields = target.fields
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise WireError(f"{path}: key {key!r} is not a str; Struct keys are strings")
        _fill_value(value, fields[key], f"{path}.{key}")


def _fill_value(value: Any, target: Any, path: str) -> None:
    if isinstance(value, np.generic) and not isinstance(value, np.ndarray):
        value = _plain_scalar(value, path)
    if value is None:
        target.null_value = 0
    elif value is True or value is False:
        target.bool_value = value
    elif isinstance(value, int):
        if not -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
            raise WireError(
                f"{path}: int {value} does not fit a double exactly (|n| <= 2**53) and the "
                "Juturna wire carries every number as a double; send it as a str"
            )
        target.number_value = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise WireError(
                f"{path}: {value} cannot travel on the Juturna wire (its JSON conversion refuses "
                "NaN and infinities); send None or a str instead"
            )
        target.number_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, Mapping):
        fill_struct(value, target.struct_value, path)
    elif isinstance(value, list | tuple):
        items = target.list_value
        items.SetInParent()
        for i, item in enumerate(value):
            _fill_value(item, items.values.add(), f"{path}[{i}]")
    elif isinstance(value, bytes | bytearray | memoryview):
        raise WireError(
            f"{path}: bytes cannot travel on the Juturna wire (google.protobuf.Struct has no "
            "bytes); send them as a BytesPayload or encode them as base64 text first"
        )
    elif isinstance(value, np.ndarray):
        raise WireError(
            f"{path}: numpy arrays cannot travel inside objects or meta on the Juturna wire; "
            "send them as an audio or image payload, or convert with .tolist() first"
        )
    else:
        raise WireError(
            f"{path}: type {type(value).__name__} cannot travel on the Juturna wire; use None, "
            "bool, int, float, str, a list or a mapping with str keys"
        )


def _plain_scalar(value: np.generic, path: str) -> Any:
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.str_):
        return str(value)
    if isinstance(value, np.bytes_):
        return bytes(value)
    raise WireError(f"{path}: numpy scalar of type {type(value).__name__} cannot travel")


def read_struct(
    source: Any,
    path: str = "struct",
    *,
    ints: bool = False,
    limits: WireLimits = DEFAULT_LIMITS,
    depth: int = 0,
) -> FrozenDict:
    """A frozen mapping of the ``Struct`` ``source``; raises ``WireError`` if nested too deep.

    Numbers are floats; ``ints=True`` turns integral ones (within +-2**53) into ints.
    ``path`` names the struct in error messages.
    """
    if depth > limits.max_depth:
        raise WireError(f"{path}: values nested deeper than {limits.max_depth}")
    return FrozenDict(
        {
            key: _read_value(value, f"{path}.{key}", ints, limits, depth + 1)
            for key, value in source.fields.items()
        }
    )


def _read_value(source: Any, path: str, ints: bool, limits: WireLimits, depth: int) -> Any:
    if depth > limits.max_depth:
        raise WireError(f"{path}: values nested deeper than {limits.max_depth}")
    which = source.WhichOneof("kind")
    if which == "number_value":
        number = source.number_value
        if ints and number.is_integer() and -MAX_EXACT_INT <= number <= MAX_EXACT_INT:
            return int(number)
        return number
    if which == "string_value":
        return source.string_value
    if which == "bool_value":
        return source.bool_value
    if which == "struct_value":
        return read_struct(source.struct_value, path, ints=ints, limits=limits, depth=depth)
    if which == "list_value":
        return tuple(
            _read_value(item, f"{path}[{i}]", ints, limits, depth + 1)
            for i, item in enumerate(source.list_value.values)
        )
    # null_value, or no kind set: protobuf's JSON mapping reads an unset Value as null too.
    return None
