"""Node arguments, declared once as typed ``__init__`` parameters with defaults.

That one declaration drives validation of pipeline files, ``fontus nodes``,
runtime reconfiguration and what a remote client may configure.  Help text
comes from an ``Args:`` section in the class or ``__init__`` docstring.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

__all__ = ["Argument", "check_value", "declared_arguments", "type_name"]

_MISSING = inspect.Parameter.empty


@dataclass(frozen=True)
class Argument:
    """One declared argument of a node."""

    name: str
    annotation: Any
    default: Any
    required: bool
    help: str = ""

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)

    def describe_default(self) -> str:
        return "required" if self.required else repr(self.default)


def type_name(tp: Any) -> str:
    if tp is Any or tp is _MISSING:
        return "any"
    if tp is type(None):
        return "None"
    if isinstance(tp, type):
        return tp.__name__
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return str(tp)


_ARG_LINE = re.compile(r"^\s{0,8}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _docstring_help(*docs: str | None) -> dict[str, str]:
    helps: dict[str, str] = {}
    for doc in docs:
        if not doc:
            continue
        lines = inspect.cleandoc(doc).splitlines()
        inside = False
        current = ""
        for line in lines:
            if line.strip().lower() in ("args:", "arguments:", "parameters:"):
                inside = True
                continue
            if not inside:
                continue
            if not line.strip():
                current = ""
                continue
            if not line.startswith(" ") and line.rstrip().endswith(":"):
                inside = False
                continue
            match = _ARG_LINE.match(line)
            if match and (len(line) - len(line.lstrip())) <= 4:
                current = match.group(1)
                helps.setdefault(current, match.group(2).strip())
            elif current:
                helps[current] = (helps[current] + " " + line.strip()).strip()
    return helps


def declared_arguments(cls: type) -> tuple[Argument, ...]:
    """The arguments ``cls.__init__`` declares, in order, with resolved type hints."""
    init = cls.__init__  # type: ignore[misc]
    if init is object.__init__:
        return ()
    signature = inspect.signature(init)
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # noqa: BLE001 - unresolvable hints: arguments are then typed Any
        hints = {}
    helps = _docstring_help(cls.__doc__, init.__doc__)
    arguments = []
    for i, (name, param) in enumerate(signature.parameters.items()):
        if i == 0 or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        arguments.append(
            Argument(
                name=name,
                annotation=hints.get(name, Any),
                default=None if param.default is _MISSING else param.default,
                required=param.default is _MISSING,
                help=helps.get(name, ""),
            )
        )
    return tuple(arguments)


def check_value(value: Any, tp: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits type ``tp``; returns ``(ok, value converted where lossless)``.

    Lossless conversions: int to float, str to Path, list to tuple.
    """
    if tp is Any or tp is _MISSING or tp is object:
        return True, value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        # Compare types too: True == 1 and 1.0 == 1, but neither is Literal[1].
        return any(type(value) is type(a) and value == a for a in args), value
    if origin in (Union, types.UnionType):
        for option in args:
            ok, converted = check_value(value, option)
            if ok:
                return True, converted
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is float:
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int | float):
            return True, float(value)
        return False, value
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is str:
        return isinstance(value, str), value
    if tp is Path:
        if isinstance(value, str | Path):
            return True, Path(value)
        return False, value
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            return False, value
        item_tp = (
            args[0]
            if args and (origin is list or (len(args) == 2 and args[1] is Ellipsis))
            else Any
        )
        items = []
        for item in value:
            ok, converted = check_value(item, item_tp)
            if not ok:
                return False, value
            items.append(converted)
        return True, (tuple(items) if (origin is tuple or tp is tuple) else items)
    if origin in (dict, Mapping) or tp in (dict, Mapping) or origin is typing.Mapping:
        if not isinstance(value, Mapping):
            return False, value
        value_tp = args[1] if len(args) == 2 else Any
        out = {}
        for key, item in value.items():
            ok, converted = check_value(item, value_tp)
            if not ok:
                return False, value
            out[key] = converted
        return True, out
    if isinstance(tp, type):
        return isinstance(value, tp), value
    if isinstance(origin, type):  # other generics (set[str], ...): at least the container type
        return isinstance(value, origin), value
    return True, value
