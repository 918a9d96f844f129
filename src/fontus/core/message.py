"""``Message``: a payload with its identity, provenance, metadata and timers.

A message is mutable while its creator builds it and frozen the moment it is
transmitted, so downstream nodes (possibly several, on other threads) share it
without copies.  To change a received message, derive a new one with
:meth:`Message.evolve`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from ._values import EMPTY, FrozenDict, freeze_value, values_equal
from .errors import FrozenMessageError, PayloadError
from .payloads import Payload

__all__ = ["Message", "next_message_id"]

P = TypeVar("P", bound=Payload)

_ids = itertools.count(1)


def next_message_id() -> int:
    """A process-wide increasing message id (thread-safe: ``itertools.count`` is atomic in CPython)."""
    return next(_ids)


_FIELDS = ("id", "created_at", "creator", "version", "payload", "meta", "timers")


class Message(Generic[P]):
    """One unit of data flowing through a pipeline.

    ``meta`` holds JSON-like values (arrays and bytes allowed); ``timers`` maps
    names to seconds (floats).  Both become read-only when the message is frozen.
    """

    __slots__ = ("_frozen", *_FIELDS)

    _frozen: bool
    id: int
    created_at: float
    creator: str
    version: int
    payload: P
    meta: Mapping[str, Any]
    timers: Mapping[str, float]

    def __init__(
        self,
        payload: P,
        *,
        creator: str = "",
        version: int = 0,
        meta: Mapping[str, Any] | None = None,
        timers: Mapping[str, float] | None = None,
        id: int | None = None,  # noqa: A002 - the wire field is called id
        created_at: float | None = None,
    ) -> None:
        if not isinstance(payload, Payload):
            raise PayloadError(
                f"Message: payload must be a Payload (AudioPayload, ObjectPayload, ...), "
                f"got {type(payload).__name__}"
            )
        set_ = object.__setattr__
        set_(self, "_frozen", False)
        set_(self, "payload", payload)
        set_(self, "creator", creator)
        set_(self, "version", int(version))
        set_(self, "meta", dict(meta) if meta else {})
        set_(self, "timers", dict(timers) if timers else {})
        set_(self, "id", next_message_id() if id is None else int(id))
        set_(self, "created_at", time.time() if created_at is None else float(created_at))

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise FrozenMessageError(
                f"message {self.id} from '{self.creator}' was transmitted and is frozen; "
                f"cannot set {name!r} — use message.evolve(...) to derive a new message"
            )
        object.__setattr__(self, name, value)

    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self) -> Message[P]:
        """Make this message immutable (idempotent); returns ``self``."""
        if not self._frozen:
            try:
                meta = freeze_value(self.meta, "meta") if self.meta else EMPTY
            except TypeError as exc:
                raise PayloadError(f"message {self.id} from '{self.creator}': {exc}") from None
            timers = {}
            for key, value in self.timers.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise PayloadError(
                        f"message {self.id} from '{self.creator}': timers[{key!r}] must be "
                        f"seconds (a number), got {value!r}"
                    )
                timers[str(key)] = float(value)
            object.__setattr__(self, "meta", meta)
            object.__setattr__(self, "timers", FrozenDict.adopt(timers))
            object.__setattr__(self, "_frozen", True)
        return self

    def evolve(self, payload: Payload | None = None, **changes: Any) -> Message[Any]:
        """A new, unfrozen message with this one's payload, meta and timers, and ``changes``.

        ``meta`` and ``timers`` given in ``changes`` are merged over the existing ones.
        """
        meta = dict(self.meta)
        meta.update(changes.pop("meta", {}) or {})
        timers = dict(self.timers)
        timers.update(changes.pop("timers", {}) or {})
        kwargs: dict[str, Any] = {
            "creator": self.creator,
            "version": self.version,
            "meta": meta,
            "timers": timers,
            "created_at": self.created_at,
        }
        kwargs.update(changes)
        return Message(self.payload if payload is None else payload, **kwargs)

    def passed_on(self, timers: Mapping[str, float] | None = None) -> Message[P]:
        """What ``freeze(evolve(timers=timers))`` gives for a frozen message, without the work.

        A new message (new id; same payload, meta and ``created_at``; ``timers``
        merged over this one's) that shares this one's frozen meta and timers
        instead of copying and re-checking them: a node passing its input on
        (``transmit(message)``), on every hop.  ``timers`` must be floats.
        Creator and version are left for the caller to set (``transmit`` does).
        """
        if not self._frozen:
            raise FrozenMessageError(
                f"message {self.id}: passed_on() needs a frozen message (one already "
                "transmitted, or freeze() it first); to change an unfrozen one, set its fields"
            )
        meta = self.meta
        assert type(meta) is FrozenDict  # so once frozen
        return Message.frozen_from_parts(
            self.payload,
            id=next_message_id(),
            created_at=self.created_at,
            creator=self.creator,
            version=self.version,
            meta=meta,
            timers=self._merged_timers(timers),
        )

    def _fontus_renew(self, timers: Mapping[str, float] | None = None) -> Message[P]:
        """``passed_on(timers)`` for a frozen message nobody else holds (one just decoded):
        the same message takes a new id and the merged timers, instead of a copy."""
        if not self._frozen:
            self.freeze()
        object.__setattr__(self, "id", next_message_id())
        if timers:
            object.__setattr__(self, "timers", self._merged_timers(timers))
        return self

    def _merged_timers(self, timers: Mapping[str, float] | None) -> FrozenDict:
        """This frozen message's timers with ``timers`` merged over them (shared when none)."""
        merged = self.timers
        assert type(merged) is FrozenDict  # so once frozen
        return FrozenDict.adopt({**merged._data, **timers}) if timers else merged

    @classmethod
    def frozen_from_parts(
        cls,
        payload: Payload,
        *,
        id: int,  # noqa: A002 - the wire field is called id
        created_at: float,
        creator: str,
        version: int,
        meta: FrozenDict,
        timers: FrozenDict,
    ) -> Message[Any]:
        """A frozen message from parts that are already immutable (decoders use this).

        Skips re-validation of ``meta`` and ``timers``: the caller built them frozen.
        """
        message: Message[Any] = cls.__new__(cls)
        set_ = object.__setattr__
        set_(message, "payload", payload)
        set_(message, "id", id)
        set_(message, "created_at", created_at)
        set_(message, "creator", creator)
        set_(message, "version", version)
        set_(message, "meta", meta)
        set_(message, "timers", timers)
        set_(message, "_frozen", True)
        return message

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return all(values_equal(getattr(self, f), getattr(other, f)) for f in _FIELDS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Message(id={self.id}, creator={self.creator!r}, version={self.version}, "
            f"payload={type(self.payload).__name__}, meta_keys={sorted(self.meta)})"
        )
