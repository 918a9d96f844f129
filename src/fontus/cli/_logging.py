"""Logging set-up for the ``fontus`` command (the library never configures logging)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

__all__ = ["LOG_FORMATS", "configure_logging"]

LOG_FORMATS = ("text", "json")

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _CurrentStderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time of the record.

    While the live table is shown, rich swaps ``sys.stderr`` for a proxy that
    prints above the table; a handler holding the original stream would tear
    the display.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and exception when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(verbose: bool, log_format: str = "text") -> None:
    """Send ``fontus`` loggers to stderr: DEBUG with ``verbose``, WARNING otherwise."""
    handler = _CurrentStderrHandler()
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    logger = logging.getLogger("fontus")
    for old in list(logger.handlers):
        if isinstance(old, _CurrentStderrHandler):
            logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False
