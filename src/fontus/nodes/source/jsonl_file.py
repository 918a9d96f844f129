"""``jsonl_file``: one object message per line of a JSON Lines file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from fontus.core.node import Source
from fontus.core.payloads import ObjectPayload

__all__ = ["JsonlFile"]


class JsonlFile(Source):
    """Emits one object message per line of a JSON Lines file; blank lines are skipped.

    Every line must hold a JSON object.  A line that does not fails with an
    error naming the file and the line number, and the source ends there.  A
    missing file fails the pipeline when it is built.

    Args:
        path: the .jsonl file; a relative path resolves against the working folder.
    """

    mark = "jsonl_file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"jsonl_file: no such file '{self.path}' (resolved to {self.path.absolute()}); "
                "check the path"
            )

    def generate(self) -> Iterator[ObjectPayload]:
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(
                        f"jsonl_file: {self.path} line {number}: invalid JSON "
                        f"(column {exc.colno}): {exc.msg}"
                    ) from None
                if not isinstance(value, dict):
                    raise ValueError(
                        f"jsonl_file: {self.path} line {number}: expected a JSON object, "
                        f"got {type(value).__name__}"
                    )
                yield ObjectPayload(value)
