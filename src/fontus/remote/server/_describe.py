"""Describing hosted marks on the wire (Describe replies and Opened frames)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...core.registry import NodeSpec
from .._wire.v1 import session_pb2 as spb
from ..codec import WireEncoder

__all__ = ["describe_specs", "fill_node_info"]


def fill_node_info(target: Any, spec: NodeSpec, name: str = "") -> None:
    target.name = name or spec.mark
    target.mark = spec.mark
    target.kind = spec.kind
    target.summary = spec.summary
    encoder = WireEncoder()
    for arg in spec.arguments:
        info = target.arguments.add(
            name=arg.name, type=arg.type_name, required=arg.required, help=arg.help
        )
        if not arg.required:
            try:
                encoder.value(_plain(arg.default), info.default, arg.name)
            except Exception:  # noqa: BLE001 - a default the wire cannot carry is shown as its repr
                info.default.Clear()
                encoder.value(repr(arg.default), info.default, arg.name)


def _plain(value: Any) -> Any:
    if isinstance(value, int | float | str | bool | bytes | list | tuple | dict) or value is None:
        return value
    return str(value)


def describe_specs(specs: Iterable[NodeSpec]) -> Any:
    reply = spb.Description()
    for spec in specs:
        fill_node_info(reply.marks.add(), spec)
    return reply
