"""The journal's record format: which fields a line holds, and how a record becomes bytes.

Why one module: the writer, the checkpoint and replay must agree on every field, and
docs/audit.md documents them (tests/test_docs_audit.py checks the page against what is
written here). `SCHEMA_VERSION` changes with the format.

Why orjson: replay must read 200,000 records a second, and orjson parses a record in a third
of the standard library's time; lines are rendered with it too (called directly: a wrapper
such as structlog's JSONRenderer adds a call per record and changes no byte). Money is written
as decimal strings, never floats.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from orders._journal_segments import SCHEMA_VERSION
from orders._order_view import record_fields
from orders.lifecycle import TRIGGERS, Order
from orders.model import Execution, LifecycleEvent, OrderState

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_END",
    "RESERVED",
    "base_record",
    "checkpoint_end_record",
    "event_record",
    "execution_fields",
    "intent_record",
    "note_record",
    "render_line",
    "utc",
]

# The records of a checkpoint: one per working or recently cancelled order, then the one that
# marks it complete.
CHECKPOINT: Final = "checkpoint"
CHECKPOINT_END: Final = "checkpoint_end"
# Event names a note may not take: replay gives each of them a meaning.
RESERVED: Final = frozenset(TRIGGERS) | {"intent", CHECKPOINT, CHECKPOINT_END}
# The dest of every intent, as written.
_PENDING: Final = str(OrderState.PENDING)


def utc(at: datetime) -> datetime:
    """`at` in UTC, which orjson writes as RFC 3339 with its offset."""
    return at if at.tzinfo is UTC else at.astimezone(UTC)


def base_record(order: Order, event: str, at: datetime) -> dict[str, Any]:
    """The fields every order record has; `seq` is set when the record is written."""
    cid, broker_id, symbol, side, strategy, quantity, limit, filled, cancel = record_fields(order)
    return {
        "v": SCHEMA_VERSION,
        "seq": 0,
        "ts": utc(at),
        "event": event,
        "client_order_id": cid,
        "broker_order_id": broker_id,
        "symbol": symbol,
        "side": side,
        "strategy": strategy,
        "quantity": str(quantity),
        "limit_price": str(limit),
        "filled_quantity": str(filled),
        "cancel_requested": cancel,
    }


def intent_record(order: Order, at: datetime) -> dict[str, Any]:
    """The record that exists before anything is sent: enough to rebuild the pending order."""
    record = base_record(order, "intent", at)
    # A StrEnum, as the states below: orjson writes its text, and str() copied it first.
    record.update(source=None, dest=_PENDING, time_in_force=order.time_in_force)
    return record


def event_record(order: Order, event: LifecycleEvent) -> dict[str, Any]:
    """One lifecycle event, with what replay needs to fire it again."""
    record = base_record(order, event.trigger, event.at)
    execution = event.execution
    # StrEnums: orjson writes their text, and str() made a copy of it first.
    record["source"] = event.source
    record["dest"] = event.dest
    record["execution"] = None if execution is None else execution_fields(execution)
    record["reason"] = event.reason
    if event.executions:  # a correct_fill: the broker's executions, in place of inferred
        record["executions"] = [execution_fields(e) for e in event.executions]
    return record


def note_record(order: Order, event: str, reason: str, at: datetime) -> dict[str, Any]:
    """A record that changes no order: the order's state is both source and dest."""
    record = base_record(order, event, at)
    state = str(order.state)
    record.update(source=state, dest=state, reason=reason)
    return record


def checkpoint_end_record(seq: int, at: datetime, segment: int, orders: int) -> dict[str, Any]:
    """The record that marks a checkpoint complete; readers check `orders` and `segment`."""
    return {
        "v": SCHEMA_VERSION,
        "seq": seq,
        "ts": at,
        "event": CHECKPOINT_END,
        "segment": segment,
        "orders": orders,
    }


def execution_fields(execution: Execution) -> dict[str, Any]:
    timestamp = execution.timestamp
    return {
        "id": execution.execution_id,
        "quantity": str(execution.quantity),
        "price": str(execution.price),
        "timestamp": None if timestamp is None else utc(timestamp),
    }


def render_line(record: dict[str, Any]) -> bytes:
    """The record as one JSON line, newline included; raises TypeError or ValueError for a
    value JSON cannot hold (and then nothing was written).

    Rendered without orjson's `default` first: a record holds only values orjson knows
    unless a caller passed something odd, and passing `default` costs 430 instructions a
    record (callgrind). orjson calls `default` only for a value it would otherwise refuse,
    so the line is the same either way.
    """
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # a value orjson does not know, or text it refuses: the rare path
        return _render_rare(record)


def _render_rare(record: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # text orjson refuses (a lone surrogate): the slow path
        return _render_escaped(record)


def _json_default(value: object) -> str:
    """What orjson writes for the values it knows (RFC 3339 times), `str` for the rest."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _render_escaped(record: dict[str, Any]) -> bytes:
    """The record as an ASCII line with JSON escapes, for text orjson cannot encode.

    Broker text may hold a lone surrogate (an id or reason decoded with `surrogateescape`);
    it is not UTF-8, so orjson refuses it. JSON's `\\udXXX` escape writes it exactly, the
    same keys in the same order, and the reader gets the same string back, so the order's
    ids still match the broker's.
    """
    text = json.dumps(
        record, ensure_ascii=True, separators=(",", ":"), default=_json_default, allow_nan=False
    )
    return text.encode("ascii") + b"\n"
