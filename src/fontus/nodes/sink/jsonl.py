"""``jsonl``: a sink that writes one JSON record per message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from fontus.core.message import Message
from fontus.core.node import Sink

from .._records import message_record

__all__ = ["JsonlSink"]


class JsonlSink(Sink):
    """Writes one JSON line per message: {"creator", "version", "kind", "payload", "meta"}.

    Object payloads are written in full; arrays anywhere are written as
    {"dtype", "shape", "sha256"} and bytes as {"bytes", "sha256"}, beside the
    payload's other fields; a batch is a list of such records.  Nothing
    depends on the clock or on message ids, so equal input gives an equal file.
    Parent folders are created; each line is flushed as it is written.

    Args:
        path: the output file (overwritten); a relative path resolves against the working folder.
    """

    mark = "jsonl"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    def warmup(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8", buffering=1)

    def update(self, message: Message[Any]) -> None:
        if self._file is None:
            raise RuntimeError(f"jsonl: '{self.path}' is not open; warmup() did not run")
        self._file.write(json.dumps(message_record(message)) + "\n")

    def destroy(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
