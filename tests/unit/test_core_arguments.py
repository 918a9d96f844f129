"""Node arguments: declared once as typed __init__ parameters, checked and converted."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from fontus.core import Argument, Message, Node
from fontus.core.arguments import check_value, declared_arguments, type_name


class Vad(Node):
    """Detects speech.

    Args:
        threshold: energy above which a frame is speech,
            in dB relative to full scale.
        model (str): which model to load.

    Returns:
        nothing: this section is not about arguments.
    """

    def __init__(
        self,
        threshold: float,
        model: str = "small",
        bands: list[int] | None = None,
        mode: Literal["fast", "exact"] = "fast",
        *extra: Any,
        **more: Any,
    ) -> None:
        """Build it.

        Args:
            bands: frequency bands to watch.
        """
        self.threshold = threshold

    def update(self, message: Message[Any]) -> None:
        pass


def test_declared_arguments_keep_order_types_defaults_and_requirement() -> None:
    args = declared_arguments(Vad)
    assert [a.name for a in args] == ["threshold", "model", "bands", "mode"]
    threshold, model, bands, mode = args
    assert (threshold.annotation, threshold.required, threshold.default) == (float, True, None)
    assert (model.annotation, model.required, model.default) == (str, False, "small")
    assert bands.annotation == list[int] | None and bands.default is None and not bands.required
    assert mode.annotation == Literal["fast", "exact"]


def test_help_comes_from_the_args_section_of_class_or_init_docstring() -> None:
    helps = {a.name: a.help for a in declared_arguments(Vad)}
    assert helps == {
        "threshold": "energy above which a frame is speech, in dB relative to full scale.",
        "model": "which model to load.",
        "bands": "frequency bands to watch.",
        "mode": "",
    }


def test_type_names_are_readable() -> None:
    names = {a.name: a.type_name for a in declared_arguments(Vad)}
    assert names == {
        "threshold": "float",
        "model": "str",
        "bands": "list[int] | None",
        "mode": "'fast' | 'exact'",
    }
    assert type_name(dict[str, float]) == "dict[str, float]"
    assert type_name(Any) == "any"


def test_describe_default() -> None:
    threshold, model, *_ = declared_arguments(Vad)
    assert threshold.describe_default() == "required"
    assert model.describe_default() == "'small'"


def test_a_node_without_init_declares_nothing() -> None:
    class Bare(Node):
        pass

    assert declared_arguments(Bare) == ()


def test_unannotated_arguments_accept_anything() -> None:
    class Loose(Node):
        def __init__(self, anything=1):  # type: ignore[no-untyped-def]
            pass

    (arg,) = declared_arguments(Loose)
    assert arg == Argument("anything", Any, 1, False, "")
    assert check_value(object, arg.annotation) == (True, object)


@pytest.mark.parametrize(
    ("value", "tp", "expected"),
    [
        (3, float, (True, 3.0)),
        (2.5, float, (True, 2.5)),
        (True, float, (False, True)),
        (3, int, (True, 3)),
        (3.0, int, (False, 3.0)),
        (True, int, (False, True)),
        (True, bool, (True, True)),
        (1, bool, (False, 1)),
        ("a", str, (True, "a")),
        (1, str, (False, 1)),
        ("/tmp/x", Path, (True, Path("/tmp/x"))),
        (None, int | None, (True, None)),
        (4, int | None, (True, 4)),
        ("4", int | None, (False, "4")),
        ("fast", Literal["fast", "exact"], (True, "fast")),
        ("slow", Literal["fast", "exact"], (False, "slow")),
        (True, Literal[1], (False, True)),
        (1.0, Literal[1], (False, 1.0)),
        ([1, 2], list[int], (True, [1, 2])),
        ([1, "2"], list[int], (False, [1, "2"])),
        ([1, 2], list[float], (True, [1.0, 2.0])),
        ((1, 2), list[int], (True, [1, 2])),
        ([1, 2], tuple[int, ...], (True, (1, 2))),
        ("12", list[str], (False, "12")),
        ({"a": 1}, dict[str, float], (True, {"a": 1.0})),
        ({"a": "x"}, dict[str, float], (False, {"a": "x"})),
        ([1], dict[str, int], (False, [1])),
        ([1], set[int], (False, [1])),
        (object, Any, (True, object)),
    ],
)
def test_check_value_accepts_and_converts_losslessly(value: Any, tp: Any, expected: Any) -> None:
    assert check_value(value, tp) == expected


def test_union_uses_the_first_option_that_fits() -> None:
    assert check_value(3, int | float) == (True, 3)
    assert check_value(3, float | int) == (True, 3.0)
