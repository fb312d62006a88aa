"""How `orders` logs: standard `logging` under `orders.*` names, rendered by structlog.

A library that prints is a library a bot cannot adopt: its lines land in the wrong place and
its warnings miss the bot's own log file. So every logger here is a stdlib logger named
`orders.<module>`, wrapped by structlog only for its `event, key=value` calling style, with a
processor chain of its own (structlog's process-global configuration is never touched). The
`orders` logger has a `NullHandler` (installed by the package itself), as the logging
documentation asks of libraries: with no logging configured by the host, nothing reaches
stdout or stderr (not even the stdlib's last-resort handler for warnings).

A record's message reads `event key=value ...` for any plain formatter; the fields also ride
on the record as `record.orders_fields`, so `StructuredFormatter` (what `orders run` uses) can
render them as a console line or as JSON.

The per-event lines of `transitions` are filtered where its machine is built (lifecycle.py).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, Final

import structlog

__all__ = ["StructuredFormatter", "get_logger"]

ROOT_LOGGER: Final = "orders"
_FIELDS: Final = "orders_fields"


def _to_stdlib(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[str], dict[str, Any]]:
    """The last processor: the arguments of the stdlib logging call."""
    exc_info = event_dict.pop("exc_info", None)
    event = str(event_dict.pop("event", ""))
    fields = dict(event_dict)
    message = " ".join([event, *(f"{key}={value}" for key, value in fields.items())])
    kwargs: dict[str, Any] = {"extra": {_FIELDS: {"event": event, **fields}}}
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (message,), kwargs


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog-style logger over the stdlib logger `name` (which starts with `orders`)."""
    logger: structlog.stdlib.BoundLogger = structlog.wrap_logger(
        logging.getLogger(name),
        processors=[structlog.stdlib.filter_by_level, _to_stdlib],
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
    )
    return logger


class StructuredFormatter(logging.Formatter):
    """Renders records as console lines or JSON objects, with `orders`' fields as keys.

    Records from other libraries (no fields attached) are rendered the same way, with their
    message as the event.
    """

    def __init__(self, fmt: str = "console") -> None:
        super().__init__()
        if fmt not in ("console", "json"):
            raise ValueError(f"log format must be 'console' or 'json', not {fmt!r}")
        self.fmt = fmt
        self._render: Any = (
            structlog.processors.JSONRenderer(sort_keys=False, default=str)
            if fmt == "json"
            else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0, sort_keys=False)
        )

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, _FIELDS, None)
        event_dict: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if isinstance(fields, dict):
            event_dict.update(fields)
        else:
            event_dict["event"] = record.getMessage()
        if record.exc_info:
            event_dict["exception"] = self.formatException(record.exc_info)
        rendered: str = self._render(None, record.levelname.lower(), event_dict)
        return rendered
