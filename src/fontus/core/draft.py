"""``Draft``: a mutable builder compiled into a validated, frozen payload.

::

    draft = Draft(ObjectPayload)
    draft["text"] = "hello"
    draft["score"] = 0.9
    self.transmit(draft.compile())

    draft = Draft.from_payload(audio_payload)
    draft.audio = draft.audio * 0.5
    self.transmit(draft.compile())
"""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, TypeVar

from .errors import PayloadError
from .payloads import ObjectPayload, Payload

__all__ = ["Draft"]

P = TypeVar("P", bound=Payload)


class Draft(Generic[P]):
    """Collects the fields of a payload of kind ``kind``; ``compile()`` validates and builds it.

    For :class:`ObjectPayload` a draft is also a dict: ``draft[key] = value``.
    """

    __slots__ = ("_fields", "_kind")

    def __init__(self, kind: type[P], **fields: Any) -> None:
        if not (isinstance(kind, type) and issubclass(kind, Payload)):
            raise PayloadError(f"Draft: kind must be a payload class, got {kind!r}")
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_fields", {})
        names = self._names()
        for key, value in fields.items():
            self._check(key, names)
            self._fields[key] = value
        if kind is ObjectPayload:
            self._fields.setdefault("data", {})

    @classmethod
    def from_payload(cls, payload: P) -> Draft[P]:
        """A draft holding ``payload``'s fields (arrays are copied, so they can be changed in place)."""
        draft: Draft[P] = cls(type(payload))
        for f in dataclasses.fields(payload):  # type: ignore[arg-type]
            value = getattr(payload, f.name)
            if hasattr(value, "copy") and hasattr(value, "dtype"):
                value = value.copy()
            draft._fields[f.name] = value
        if isinstance(payload, ObjectPayload):
            draft._fields["data"] = payload.to_dict()
        return draft

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self._kind))

    def _check(self, name: str, names: tuple[str, ...]) -> None:
        if name not in names:
            raise PayloadError(
                f"Draft({self._kind.__name__}): unknown field {name!r}; fields are {', '.join(names)}"
            )

    def __getattr__(self, name: str) -> Any:
        fields = object.__getattribute__(self, "_fields")
        if name in fields:
            return fields[name]
        raise AttributeError(
            f"Draft({object.__getattribute__(self, '_kind').__name__}): field {name!r} is not set"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        self._check(name, self._names())
        self._fields[name] = value

    # Object drafts behave like the dict they will become.
    def _data(self) -> dict[str, Any]:
        if self._kind is not ObjectPayload:
            raise PayloadError(
                f"Draft({self._kind.__name__}): item access is for ObjectPayload drafts; "
                "set fields as attributes instead"
            )
        data: dict[str, Any] = self._fields["data"]
        return data

    def __setitem__(self, key: str, value: Any) -> None:
        self._data()[key] = value

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __contains__(self, key: str) -> bool:
        return key in self._data()

    def update(self, values: dict[str, Any]) -> None:
        self._data().update(values)

    def compile(self) -> P:
        """Validate and build the payload; raises :class:`PayloadError` naming what is wrong."""
        try:
            return self._kind(**self._fields)
        except TypeError as exc:
            raise PayloadError(f"Draft({self._kind.__name__}): {exc}") from None

    def __repr__(self) -> str:
        return f"Draft({self._kind.__name__}, fields={sorted(self._fields)})"
