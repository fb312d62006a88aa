"""The audit journal: one JSON line per lifecycle event, enough to rebuild every order.

Why a journal and not a database: an order's truth is the sequence of its events, and an
append-only file of written lines survives a crash at any instant except the one line being
written, which replay tolerates. The intent is written (and by default fsynced) before
anything is sent to a broker, so a restart always knows which orders might exist.

Lines are rendered by structlog's JSONRenderer on the journal's own processor chain (no
process-global structlog configuration), with orjson as its serializer: replay must read
200,000 records a second, and orjson parses a record in a third of the standard library's
time. Money is written as decimal strings, never floats.
The schema is documented in docs/audit.md; `SCHEMA_VERSION` changes with it.

Why the writing side keeps its own queue: a record that the disk refused (ENOSPC, EIO) is
part of an order's truth, and dropping it makes replay rebuild a different order (26 of 30
shares filled). So every record goes through `_pending`, oldest first, and leaves it only
once the operating system has taken all of its bytes; the file is unbuffered, so there is no
hidden buffer that could lose a record behind the queue's back.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson
import structlog

from orders.config import FsyncPolicy, OrderManagementConfig
from orders.errors import InvalidOrderError, JournalError, OrderError
from orders.lifecycle import LIFECYCLE, TRIGGERS, Order
from orders.model import TERMINAL_STATES, Execution, LifecycleEvent, OrderState

__all__ = ["SCHEMA_VERSION", "AuditJournal", "FsyncPolicy", "JournalWriteError"]

SCHEMA_VERSION: Final = 1
_TERMINAL: Final = frozenset(str(s) for s in TERMINAL_STATES)
_TRIGGERS: Final = frozenset(TRIGGERS)
_CANCELLED: Final = str(OrderState.CANCELLED)
_FILLED: Final = str(OrderState.FILLED)
_PARTIALLY_FILLED: Final = str(OrderState.PARTIALLY_FILLED)
_ZERO: Final = Decimal(0)
_INF: Final = Decimal("Infinity")
_fromisoformat: Final = datetime.fromisoformat
# Where each (source, trigger) lands, for every trigger but `fill` (whose destination depends
# on the quantity): replay refuses a record whose `dest` says otherwise.
_DEST: Final = {(str(m.source), m.trigger): str(m.dest) for m in LIFECYCLE if m.trigger != "fill"}


# The documented default of `order_management.fsync`, defined once there.
_DEFAULT_FSYNC: Final = OrderManagementConfig().fsync
_DEFAULT_PATH: Final = OrderManagementConfig().audit_log_path


class JournalWriteError(JournalError, OSError):
    """The journal could not write (or force to disk) a record; the message says what became of it.

    Also an `OSError`, because that is what a failed write raised before this class existed
    and what callers that report journal failures (the manager's notes) already catch.
    """


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditJournal:
    """Append-only JSON-lines audit trail; `replay` rebuilds every order from the file alone."""

    def __init__(
        self,
        path: str | os.PathLike[str] = _DEFAULT_PATH,
        *,
        fsync: FsyncPolicy | str = _DEFAULT_FSYNC,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = Path(path)
        self.fsync = FsyncPolicy(fsync)
        # Read on every record: which records this policy forces to disk.
        self._sync_all = self.fsync is FsyncPolicy.ALWAYS
        self._sync_milestones = self.fsync is not FsyncPolicy.NEVER
        self._clock = clock
        self._lock = threading.Lock()
        # Rendered records not yet fully written, oldest first; `_head_written` bytes of the
        # first one are already in the file (a short write on a filling disk).
        self._pending: deque[bytes] = deque()
        self._head_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file, self._identity, self._seq = self._open(0)
        self._render = structlog.processors.JSONRenderer(
            serializer=orjson.dumps, default=str, option=orjson.OPT_APPEND_NEWLINE
        )

    # -- writing ----------------------------------------------------------------------------

    def config_disagreements(
        self, config: OrderManagementConfig
    ) -> Iterator[tuple[str, object, object]]:
        """The settings where this journal differs from `config`.

        The path counts only when the configuration names one other than the default: a
        journal passed in with a default configuration may sit anywhere.
        """
        if config.fsync is not self.fsync:
            yield "fsync", config.fsync, self.fsync
        named = config.audit_log_path
        if named != _DEFAULT_PATH and os.path.abspath(named) != os.path.abspath(self.path):
            yield "audit_log_path", named, self.path

    def record_intent(self, order: Order, *, at: datetime | None = None) -> None:
        """Write and flush (and by default fsync) the intent before anything is sent.

        Raises (so the caller sends nothing) when the intent is not in the file at `path`:
        the file there is no longer the one this journal writes (`JournalError`), or the write
        failed (`JournalWriteError`); a failed intent is not kept for later, because the order
        it describes is never sent.
        """
        record = self._base(order, "intent", self._clock() if at is None else at)
        record.update(
            source=None,
            dest=str(OrderState.PENDING),
            time_in_force=str(order.time_in_force),
        )
        self._write(record, force=self._sync_milestones, intent=True)

    def record_event(self, order: Order, event: LifecycleEvent) -> None:
        """The `on_event` hook: one record per lifecycle event, internal ones included.

        A record the disk refuses is kept and written first once it accepts writes again; the
        `JournalWriteError` raised meanwhile is what the order's hook error handler reports.
        """
        record = self._base(order, event.trigger, event.at)
        execution = event.execution
        record["source"] = source = str(event.source)
        record["dest"] = dest = str(event.dest)
        record["execution"] = None if execution is None else _execution_fields(execution)
        record["reason"] = event.reason
        if event.executions:  # a correct_fill: the broker's executions, in place of inferred
            record["executions"] = [_execution_fields(e) for e in event.executions]
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

    @property
    def unwritten(self) -> int:
        """Records kept in memory because the disk refused them; 0 when the journal is healthy.

        While it is not 0, a crash loses those records, and an intent is refused unless they
        can be written first; a caller should report it and call `flush()` until it is 0.
        """
        return len(self._pending)

    def flush(self) -> None:
        """Write the records kept after a failed write, oldest first (and fsync them unless the
        policy is `never`), so the journal catches up without waiting for the next record.

        Raises `JournalWriteError` while the disk still refuses them; they stay kept.
        """
        with self._lock:
            if self._pending and not self._file.closed:
                self._write_pending(intent=None)
                if self._sync_milestones:
                    self._force()

    def reopen(self) -> None:
        """Write to the file now at `path`, after an operator put the journal back there.

        For a journal that was moved or deleted while open (see `record_intent`): once the
        file holding this journal's records is at `path` again, this makes intents possible
        without a restart. Records kept after a failed write go to that file. Refuses (with
        `JournalError`) when nothing is at `path`: an empty journal would lack the intents of
        the orders in flight, and the next replay would refuse their events.
        """
        with self._lock:
            try:
                at_path = os.stat(self.path)
            except FileNotFoundError:
                raise JournalError(
                    f"{self.path}: no journal file to reopen; put the journal back at this "
                    "path first (it holds the intents of the orders in flight)"
                ) from None
            if (at_path.st_dev, at_path.st_ino) == self._identity and not self._file.closed:
                return  # already writing to the file at the path
            old = self._file
            self._file, self._identity, self._seq = self._open(self._seq)
            self._head_written = 0  # a record begun in the old file is written whole here
            old.close()
            if self._pending:
                self._write_pending(intent=None)

    def close(self) -> None:
        """Write what is kept, fsync and close; raises, leaving the file open, if records
        cannot be written, so that none is lost without a word."""
        with self._lock:
            if not self._file.closed:
                if self._pending:
                    self._write_pending(intent=None)
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

    def _write(self, record: dict[str, Any], *, force: bool, intent: bool = False) -> None:
        with self._lock:
            if self._file.closed:
                raise ValueError(f"the audit journal {self.path} is closed")  # as a file says
            if intent:
                self._check_identity()
            self._seq += 1
            record["seq"] = self._seq
            try:
                line = self._render(None, "", record)
            except TypeError:  # text orjson refuses (a lone surrogate): the rare, slow path
                try:
                    line = _render_escaped(record)
                except (TypeError, ValueError):
                    self._seq -= 1
                    raise
            assert isinstance(line, bytes)  # orjson renders bytes, newline included
            pending = self._pending
            # Records that waited for the disk may include milestones never forced to disk.
            force = force or (bool(pending) and self._sync_milestones)
            pending.append(line)
            self._write_pending(intent=line if intent else None)
            if force:
                self._force()

    def _write_pending(self, *, intent: bytes | None) -> None:
        """Write the kept records, oldest first, each whole; on failure keep the rest, in order.

        `intent`, the last record, is dropped rather than kept if not one byte of it reached
        the file: it must not appear later for an order that was never sent.
        """
        pending = self._pending
        write = self._file.write
        try:
            while pending:
                line = pending[0]
                done = self._head_written
                written = write(line if not done else memoryview(line)[done:]) or 0
                if done + written == len(line):
                    pending.popleft()
                    self._head_written = 0
                else:  # a short write: the disk took part of it; the rest goes next
                    self._head_written = done + written
        except OSError as error:
            if intent is None:
                what = "the record is kept"
            elif pending[0] is intent and self._head_written:
                what = (
                    "the intent was partly written, so it is kept and completed later (the "
                    "next start resolves it as never placed); its order must not be sent"
                )
            else:
                pending.pop()
                self._seq -= 1
                what = "the intent was not written and its order must not be sent"
            raise JournalWriteError(self._write_failure(error, what)) from error

    def _write_failure(self, error: OSError, what: str) -> str:
        kept = len(self._pending)
        return (
            f"{self.path}: cannot write to the audit journal ({error.strerror or error}); {what}; "
            f"{kept} record(s) wait in memory and are written, in order, before the next "
            "record or by flush()/close() once the disk accepts writes (free space on "
            f"{self.path.parent}); a crash now loses them"
        )

    def _force(self) -> None:
        try:
            os.fsync(self._file.fileno())
        except OSError as error:
            raise JournalWriteError(
                f"{self.path}: the record was written but could not be forced to disk "
                f"({error.strerror or error}); a power loss could lose it"
            ) from error

    def _check_identity(self) -> None:
        """Refuse an intent when the open file is no longer the file at `path`.

        Someone moved, rotated or deleted the journal while it was open: the intent would go
        to the detached file, the next start (which reads `path`) would not see it, and a
        duplicate live order could follow. One stat per intent; events are not checked.
        """
        try:
            at_path = os.stat(self.path)
        except FileNotFoundError:
            at_path = None
        except OSError as error:
            raise JournalError(
                f"{self.path}: cannot check the journal file ({error.strerror or error}); "
                "the intent was not written and its order must not be sent"
            ) from error
        if at_path is not None and (at_path.st_dev, at_path.st_ino) == self._identity:
            return
        where = (
            "nothing is at the path"
            if at_path is None
            else "another file is at the path: rotated, or copied back"
        )
        fd = self._file.fileno()
        raise JournalError(
            f"{self.path}: the journal file was moved or deleted while open ({where}); this "
            "journal writes to the detached file, which the next start would not read, so the "
            "intent was not written and its order must not be sent. Put the journal file back at "
            f"{self.path} (while this process runs, its open copy is /proc/{os.getpid()}/fd/"
            f"{fd} on Linux), then restart, which recovers from the file at the path, or call "
            "reopen()"
        )

    def _open(self, seq: int) -> tuple[io.FileIO, tuple[int, int], int]:
        """Open the file at `path` for appending: its handle, identity and the next seq base.

        Unbuffered, so a record is either in the operating system or in `_pending`, never in
        a buffer that a failed flush could discard.
        """
        _cut_torn_tail(self.path)
        last = max(seq, _last_sequence(self.path))
        handle = self.path.open("ab", buffering=0)
        stat = os.fstat(handle.fileno())
        return handle, (stat.st_dev, stat.st_ino), last

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def replay(path: str | os.PathLike[str]) -> dict[str, Order]:
        """Every order in the journal, keyed by client order id, rebuilt from the file alone.

        A torn last line (a crash mid-write) is ignored; any other unreadable line, and any
        record that no real order could have written, raises `JournalError` naming the file
        and line, so that a restart never trades on a state that did not happen.
        """
        return _replay(Path(path), None)

    def find(self, client_order_id: str) -> Order | None:
        """The order `client_order_id`, rebuilt from this journal's file alone; None if absent.

        For an order that has left a manager's memory: it reads the whole file, so it answers
        a person's question, not a loop's.
        """
        with self._lock:
            if self._pending and not self._file.closed:
                # Records still waiting for the disk are not in the file: the answer lags them.
                with contextlib.suppress(OSError):
                    self._write_pending(intent=None)
        return _replay(self.path, client_order_id).get(client_order_id)


def _replay(path: Path, only: str | None) -> dict[str, Order]:
    """Replay the file, or only the records of client order `only`."""
    orders: dict[str, Order] = {}
    apply = _apply_record
    for line_no, record in _records(path):
        if only is not None and record.get("client_order_id") != only:
            continue
        try:
            apply(orders, record)
        except (OrderError, KeyError, TypeError, ValueError, ArithmeticError) as error:
            problem = str(error) if isinstance(error, OrderError) else _plain_error(error)
            raise JournalError(
                f"{path}:{line_no}: cannot replay this record ({problem}); the journal is "
                "inconsistent: inspect the line, and do not trade on this state"
            ) from None
    return orders


def _plain_error(error: Exception) -> str:
    """A Python error in words a person reads (no reprs): a missing field names the field."""
    if isinstance(error, KeyError):
        return f"the field {error.args[0]!r} is missing"
    if isinstance(error, ArithmeticError):
        return "a number in it is not a decimal number"
    return f"{type(error).__name__}: {error}"


def _last_sequence(path: Path) -> int:
    """Continue numbering after the last readable record of an existing file."""
    last = 0
    for line_no, record in _records(path):
        seq = record.get("seq", 0)
        if type(seq) is not int:
            raise JournalError(f"{path}:{line_no}: seq {seq!r} is not a whole number")
        last = max(last, seq)
    return last


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


def _json_default(value: object) -> str:
    """What orjson writes for the values it knows (RFC 3339 times), `str` for the rest."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _render_escaped(record: dict[str, Any]) -> bytes:
    """The record as an ASCII line with JSON escapes, for text orjson cannot encode.

    Broker text may hold a lone surrogate (an id or reason decoded with `surrogateescape`);
    it is not UTF-8, so orjson refuses it. JSON's `\\udXXX` escape writes it exactly, the
    same keys in the same order, and `_records` reads it back to the same string, so the
    order's ids still match the broker's.
    """
    text = json.dumps(
        record, ensure_ascii=True, separators=(",", ":"), default=_json_default, allow_nan=False
    )
    return text.encode("ascii") + b"\n"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _escaped_record(line: bytes) -> Any:
    """A line written by `_render_escaped` that orjson refuses (it rejects lone surrogates),
    parsed by the standard library; `None` for anything else, which stays damage."""
    if not line.isascii() or b"\\u" not in line:
        return None
    try:
        return json.loads(line, parse_constant=_refuse_constant)
    except ValueError:
        return None


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
            record = _escaped_record(line)
            if record is None:
                if index == last:  # torn: the process died while writing it
                    return
                raise JournalError(
                    f"{path}:{index + 1}: unreadable record; the journal is damaged: inspect "
                    "the line, and do not trade on this state"
                ) from None
        if type(record) is not dict or record.get("v") != SCHEMA_VERSION:
            raise JournalError(
                f"{path}:{index + 1}: not a schema-{SCHEMA_VERSION} audit record; "
                "was this file written by another version of orders?"
            )
        yield index + 1, record


def _aware_time(value: Any, field: str) -> datetime:
    """A journal time, which the writer always gives a UTC offset.

    A time without one cannot be compared with the clock's, so accepting it would only move
    the failure to a bare TypeError in recovery or `orders stats`.
    """
    stamp = _fromisoformat(value)
    if stamp.tzinfo is None:
        raise JournalError(f"{field} {value!r} has no UTC offset")
    return stamp


def _apply_record(orders: dict[str, Order], record: dict[str, Any]) -> None:
    """Re-apply one record, refusing any that no real order could have written.

    One flat function because it runs once per record of every replay (200,000 a second):
    each check is a comparison on the common path, and the messages are built elsewhere.
    """
    event = record["event"]
    cid = record["client_order_id"]
    if event == "intent":
        _apply_intent(orders, cid, record)
        return
    if event not in _TRIGGERS:
        return  # a note: it changed no order
    order = orders.get(cid)
    if order is None:
        raise JournalError(f"event {event!r} for client order {cid} before its intent")
    source = record["source"]
    if source != order.state:
        raise JournalError(
            f"event {event!r} of client order {cid} starts from {source}, "
            f"but the order is {order.state}"
        )
    dest = record["dest"]
    at = _fromisoformat(record["ts"])
    if at.tzinfo is None:
        _aware_time(record["ts"], "ts")  # raises, naming the field
    detail: Any
    if event == "fill":
        raw = record["execution"]
        quantity = Decimal(raw["quantity"])
        price = Decimal(raw["price"])
        filled = order.filled_quantity + quantity
        # Where this fill can go: a late fill stays cancelled, and a fill reaching the quantity
        # completes the order (beyond it, restore_raw refuses the overfill).
        expected = (
            _CANCELLED
            if source == _CANCELLED
            else _FILLED
            if filled >= order.quantity
            else _PARTIALLY_FILLED
        )
        # A NaN amount raises InvalidOperation here, which replay reports like any bad number.
        if dest != expected or not (quantity > _ZERO and _ZERO < price < _INF):
            raise JournalError(_fill_problem(order, record, filled, expected))
        stamp = raw["timestamp"]
        if stamp is not None:
            stamp = _fromisoformat(stamp)
            if stamp.tzinfo is None:
                _aware_time(raw["timestamp"], "execution timestamp")  # raises
        detail = (raw["id"], quantity, price, stamp)
    elif event == "correct_fill":
        detail = _correction(order, record)
    elif _DEST.get((source, event), dest) != dest:  # an illegal move: restore_raw names it
        raise JournalError(
            f"event {event!r} of client order {cid} goes from {source} to {dest}, but "
            f"from {source} it can only reach {_DEST[source, event]}"
        )
    else:
        detail = record["broker_order_id"] if event == "submit" else record["reason"]
    order.restore_raw(event, dest, at, detail)


def _correction(order: Order, record: dict[str, Any]) -> tuple[Any, ...]:
    """The executions of a correct_fill record, which must replace exactly what was inferred."""
    executions = []
    total = _ZERO
    for raw in record["executions"]:
        quantity, price = Decimal(raw["quantity"]), Decimal(raw["price"])
        if not (quantity > _ZERO and _ZERO < price < _INF):
            raise JournalError(
                f"a correction of client order {order.client_order_id} books "
                f"{raw['quantity']} at {raw['price']}; both must be above 0"
            )
        stamp = raw["timestamp"]
        if stamp is not None:
            stamp = _aware_time(stamp, "execution timestamp")
        executions.append((raw["id"], quantity, price, stamp))
        total += quantity
    if total != order.inferred_quantity or record["dest"] != record["source"]:
        raise JournalError(
            f"a correction of client order {order.client_order_id} books {total} shares in "
            f"place of {order.inferred_quantity} inferred, from {record['source']} to "
            f"{record['dest']}; a correction keeps the quantity and the state"
        )
    return tuple(executions)


def _apply_intent(orders: dict[str, Order], cid: str, record: dict[str, Any]) -> None:
    if cid in orders:
        raise JournalError(f"a second intent for client order {cid}")
    _aware_time(record["ts"], "ts")
    orders[cid] = Order(
        record["symbol"],
        record["side"],
        Decimal(record["quantity"]),
        Decimal(record["limit_price"]),
        strategy=record["strategy"],
        client_order_id=cid,
        time_in_force=record.get("time_in_force", "gfd"),
    )


def _fill_problem(order: Order, record: dict[str, Any], filled: Decimal, expected: str) -> str:
    """What is impossible about a fill record (the slow path of `_apply_record`)."""
    cid = order.client_order_id
    raw = record["execution"]
    dest = record["dest"]
    total = order.quantity
    if not Decimal(raw["quantity"]) > _ZERO:
        return f"a fill of client order {cid} is for {raw['quantity']} shares; a fill is for more"
    price = Decimal(raw["price"])
    if not _ZERO < price < _INF:
        return f"a fill of client order {cid} is at price {raw['price']}; a price is above 0"
    if dest == _FILLED:
        return (
            f"a fill of client order {cid} says the order is filled, but its fills add up to "
            f"{filled} of {total}: a fill record is missing or damaged"
        )
    return (
        f"a fill of client order {cid} goes to {dest}, but with {filled} of {total} filled it "
        f"can only reach {expected}"
    )
