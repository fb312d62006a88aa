"""The audit journal: one JSON line per lifecycle event, enough to rebuild every order.

Why a journal and not a database: an order's truth is the sequence of its events, and an
append-only file of flushed lines survives a crash at any instant except the one line being
written, which replay tolerates. The intent is written (and by default fsynced) before
anything is sent to a broker, so a restart always knows which orders might exist.

Lines are rendered by structlog's JSONRenderer on the journal's own processor chain (no
process-global structlog configuration), with orjson as its serializer: replay must read
200,000 records a second, and orjson parses a record in a third of the standard library's
time. Money is written as decimal strings, never floats.
The schema is documented in docs/audit.md; `SCHEMA_VERSION` changes with it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Final

import orjson
import structlog

from orders.errors import InvalidOrderError, JournalError, OrderError
from orders.lifecycle import TRIGGERS, Order
from orders.model import TERMINAL_STATES, Execution, LifecycleEvent, OrderState

__all__ = ["SCHEMA_VERSION", "AuditJournal", "FsyncPolicy"]

SCHEMA_VERSION: Final = 1
_TERMINAL: Final = frozenset(str(s) for s in TERMINAL_STATES)
_TRIGGERS: Final = frozenset(TRIGGERS)


class FsyncPolicy(StrEnum):
    """When a record is forced to disk, beyond the flush every record gets."""

    ALWAYS = "always"
    INTENT_AND_TERMINAL = "intent_and_terminal"
    NEVER = "never"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditJournal:
    """Append-only JSON-lines audit trail; `replay` rebuilds every order from the file alone."""

    def __init__(
        self,
        path: str | os.PathLike[str] = "logs/orders.jsonl",
        *,
        fsync: FsyncPolicy | str = FsyncPolicy.INTENT_AND_TERMINAL,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = Path(path)
        self.fsync = FsyncPolicy(fsync)
        # Read on every record: which records this policy forces to disk.
        self._sync_all = self.fsync is FsyncPolicy.ALWAYS
        self._sync_milestones = self.fsync is not FsyncPolicy.NEVER
        self._clock = clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_tail(self.path)
        self._seq = self._last_sequence()
        self._file: IO[bytes] = self.path.open("ab")
        self._render = structlog.processors.JSONRenderer(
            serializer=orjson.dumps, default=str, option=orjson.OPT_APPEND_NEWLINE
        )

    # -- writing ----------------------------------------------------------------------------

    def record_intent(self, order: Order, *, at: datetime | None = None) -> None:
        """Write and flush (and by default fsync) the intent before anything is sent."""
        record = self._base(order, "intent", self._clock() if at is None else at)
        record.update(
            source=None,
            dest=str(OrderState.PENDING),
            time_in_force=str(order.time_in_force),
        )
        self._write(record, force=self._sync_milestones)

    def record_event(self, order: Order, event: LifecycleEvent) -> None:
        """The `on_event` hook: one record per lifecycle event, internal ones included."""
        record = self._base(order, event.trigger, event.at)
        execution = event.execution
        record["source"] = source = str(event.source)
        record["dest"] = dest = str(event.dest)
        record["execution"] = None if execution is None else _execution_fields(execution)
        record["reason"] = event.reason
        terminal = source != dest and dest in _TERMINAL
        self._write(record, force=self._sync_all or (terminal and self._sync_milestones))

    def record_note(
        self, order: Order, event: str, reason: str, *, at: datetime | None = None
    ) -> None:
        """A record that changes no order (an unknown outcome, an anomaly); replay skips it."""
        if event in _TRIGGERS or event == "intent":
            raise InvalidOrderError("event", event, "a note cannot use a lifecycle event name")
        record = self._base(order, event, self._clock() if at is None else at)
        record.update(source=str(order.state), dest=str(order.state), reason=reason)
        self._write(record, force=self._sync_all)

    def __call__(self, order: Order, event: LifecycleEvent) -> None:
        self.record_event(order, event)

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()

    def __enter__(self) -> AuditJournal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _base(self, order: Order, event: str, at: datetime) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "seq": 0,
            "ts": at if at.tzinfo is UTC else at.astimezone(UTC),  # orjson writes RFC 3339
            "event": event,
            "client_order_id": order.client_order_id,
            "broker_order_id": order.broker_order_id,
            "symbol": order.symbol,
            "side": str(order.side),
            "strategy": order.strategy,
            "quantity": str(order.quantity),
            "limit_price": str(order.limit_price),
            "filled_quantity": str(order.filled_quantity),
            "cancel_requested": order.cancel_requested,
        }

    def _write(self, record: dict[str, Any], *, force: bool) -> None:
        with self._lock:
            self._seq += 1
            record["seq"] = self._seq
            line = self._render(None, "", record)
            assert isinstance(line, bytes)  # orjson renders bytes, newline included
            self._file.write(line)
            self._file.flush()
            if force:
                os.fsync(self._file.fileno())

    def _last_sequence(self) -> int:
        """Continue numbering after the last readable record of an existing file."""
        last = 0
        for line_no, record in _records(self.path):
            seq = record.get("seq", 0)
            if type(seq) is not int:
                raise JournalError(f"{self.path}:{line_no}: seq {seq!r} is not a whole number")
            last = max(last, seq)
        return last

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def replay(path: str | os.PathLike[str]) -> dict[str, Order]:
        """Every order in the journal, keyed by client order id, rebuilt from the file alone.

        A torn last line (a crash mid-write) is ignored; any other unreadable or inconsistent
        line raises `JournalError` naming the file and line.
        """
        orders: dict[str, Order] = {}
        for line_no, record in _records(Path(path)):
            try:
                _apply_record(orders, record)
            except (OrderError, KeyError, TypeError, ValueError, ArithmeticError) as error:
                raise JournalError(
                    f"{path}:{line_no}: cannot replay this record ({error!r}); the journal is "
                    "inconsistent: inspect the line, and do not trade on this state"
                ) from None
        return orders


def _execution_fields(execution: Execution) -> dict[str, Any]:
    timestamp = execution.timestamp
    return {
        "id": execution.execution_id,
        "quantity": str(execution.quantity),
        "price": str(execution.price),
        "timestamp": timestamp
        if timestamp is None or timestamp.tzinfo is UTC
        else timestamp.astimezone(UTC),
    }


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line without its newline: the record a crash interrupted.

    Left in place, the next record would be appended to it and turn a tolerated torn tail into
    a damaged middle line that stops every later replay.
    """
    if not path.exists():
        return
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        keep = handle.read().rfind(b"\n") + 1
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.exists():
        return
    lines = path.read_bytes().split(b"\n")
    last = len(lines) - 1
    loads = orjson.loads
    for index, line in enumerate(lines):
        if not line:
            continue
        try:
            record = loads(line)
        except orjson.JSONDecodeError:
            if index == last:  # torn: the process died while writing it
                return
            raise JournalError(
                f"{path}:{index + 1}: unreadable record; the journal is damaged: inspect the "
                "line, and do not trade on this state"
            ) from None
        if type(record) is not dict or record.get("v") != SCHEMA_VERSION:
            raise JournalError(
                f"{path}:{index + 1}: not a schema-{SCHEMA_VERSION} audit record; "
                "was this file written by another version of orders?"
            )
        yield index + 1, record


def _apply_record(orders: dict[str, Order], record: dict[str, Any]) -> None:
    event = record["event"]
    cid = record["client_order_id"]
    if event == "intent":
        if cid in orders:
            raise JournalError(f"a second intent for client order {cid}")
        orders[cid] = Order(
            record["symbol"],
            record["side"],
            Decimal(record["quantity"]),
            Decimal(record["limit_price"]),
            strategy=record["strategy"],
            client_order_id=cid,
            time_in_force=record.get("time_in_force", "gfd"),
        )
        return
    if event not in _TRIGGERS:
        return  # a note: it changed no order
    order = orders.get(cid)
    if order is None:
        raise JournalError(f"event {event!r} for client order {cid} before its intent")
    if record["source"] != order.state:
        raise JournalError(
            f"event {event!r} of client order {cid} starts from {record['source']}, "
            f"but the order is {order.state}"
        )
    detail: Any
    if event == "fill":
        raw = record["execution"]
        stamp = raw["timestamp"]
        detail = (
            raw["id"],
            Decimal(raw["quantity"]),
            Decimal(raw["price"]),
            None if stamp is None else datetime.fromisoformat(stamp),
        )
    elif event == "submit":
        detail = record["broker_order_id"]
    else:
        detail = record["reason"]
    order.restore_raw(event, record["dest"], datetime.fromisoformat(record["ts"]), detail)
