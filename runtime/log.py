"""Structured logs: one line per event on stderr, ``key=value`` or JSON.

journald keeps one line per entry, so an event is a name plus fields, never a paragraph.
``get_logger("bgpd").info("peer.established", peer="127.0.0.2", hold_time=90)`` prints
``ts=... level=info logger=bgpd event=peer.established peer=127.0.0.2 hold_time=90``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Literal, TextIO

_FIELDS = "tabby_fields"
_EVENT = "tabby_event"

LogFormat = Literal["kv", "json"]


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n\t'):
        return json.dumps(text)
    return text


class StructFormatter(logging.Formatter):
    """Render an event and its fields on one line."""

    def __init__(self, fmt: LogFormat = "kv") -> None:
        super().__init__()
        self.mode = fmt

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, _EVENT, None) or record.getMessage()
        fields: Mapping[str, object] = getattr(record, _FIELDS, {})
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        ts = f"{ts}.{int(record.msecs):03d}Z"
        base: dict[str, object] = {
            "ts": ts,
            "level": record.levelname.lower(),
            "logger": record.name.removeprefix("tabby."),
            "event": event,
        }
        base.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # Keep the one-line rule: the traceback is folded into a field.
            base["exc"] = self.formatException(record.exc_info).replace("\n", " | ")
        if self.mode == "json":
            return json.dumps(base, default=str)
        return " ".join(f"{k}={_quote(v)}" for k, v in base.items())


class StructLogger:
    """A thin wrapper that turns keyword arguments into structured fields."""

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, event: str, exc_info: bool, fields: dict[str, object]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(
                level, event, exc_info=exc_info, extra={_EVENT: event, _FIELDS: fields}
            )

    def debug(self, event: str, **fields: object) -> None:
        self._log(logging.DEBUG, event, False, fields)

    def info(self, event: str, **fields: object) -> None:
        self._log(logging.INFO, event, False, fields)

    def warning(self, event: str, **fields: object) -> None:
        self._log(logging.WARNING, event, False, fields)

    def error(self, event: str, **fields: object) -> None:
        self._log(logging.ERROR, event, False, fields)

    def exception(self, event: str, **fields: object) -> None:
        self._log(logging.ERROR, event, True, fields)

    def is_debug(self) -> bool:
        return self._logger.isEnabledFor(logging.DEBUG)


def get_logger(name: str) -> StructLogger:
    return StructLogger(logging.getLogger(f"tabby.{name}"))


def setup_logging(level: str = "info", fmt: LogFormat = "kv", stream: TextIO | None = None) -> None:
    """Route every tabby logger to stderr with the structured formatter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(StructFormatter(fmt))
    root = logging.getLogger("tabby")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
