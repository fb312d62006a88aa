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

Why segments and checkpoints: a bot runs for months, and a restart that replays every order
ever placed gets slower every day. So once the active file reaches `segment_bytes`, the next
record opens a new segment (journal_segments.py names and finds them), which begins with a
checkpoint: one record per order not known to be final, holding everything replay needs to
rebuild it (spec, state, fills, flags and its whole history), then a `checkpoint_end` record
that marks it complete. `replay(path, since_checkpoint=True)` and `recover_orders()` start at
the newest complete checkpoint, so a restart costs those orders plus one segment;
`replay(path)` and `find` still read every segment. A checkpoint that a crash cut short has
no `checkpoint_end`, and readers fall back to the one before it: the previous segment is
always complete before its successor is created, so every crash point leaves a readable
journal.

Why a checkpoint holds recently cancelled orders too: a broker may report a fill that raced a
cancel some time after it (a late fill: the order books an execution and stays cancelled).
After a restart the manager lists the broker's orders from the cancel of every order cancelled
with quantity left within `LATE_FILL_WINDOW` before the journal's last event, and books such a
fill only onto an order it rebuilt. So besides the working orders a checkpoint holds every
order cancelled with quantity left whose last event is within `LATE_FILL_WINDOW` of the
checkpoint's time: a late fill after the checkpoint then replays onto it. Filled and rejected
orders, and cancelled ones with nothing left or older than the window, are final.

To write a checkpoint without reading anything, the journal keeps the working orders it has
seen (intents and events) with the number of their events it has written, and likewise the
orders cancelled with quantity left within the window (dropped once older); after a restart it
learns them from `recover_orders()`, or, failing that, reads them once at its first rotation.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson
import structlog

from orders.config import FsyncPolicy, OrderManagementConfig
from orders.errors import InvalidOrderError, JournalError, OrderError
from orders.journal_segments import (
    SCHEMA_VERSION,
    check_contiguous,
    create_segment,
    journal_segments,
    leading_records,
    records,
    segment_path,
    sync_directory,
)
from orders.lifecycle import LIFECYCLE, TRIGGERS, Order
from orders.log import get_logger
from orders.model import TERMINAL_STATES, Execution, LifecycleEvent, OrderState

__all__ = [
    "LATE_FILL_WINDOW",
    "SCHEMA_VERSION",
    "AuditJournal",
    "FsyncPolicy",
    "JournalWriteError",
    "owed_late_fill",
]

# How long after its cancel a broker may still report a fill that raced it (a late fill). A
# checkpoint holds every order cancelled with quantity left whose last event is this recent, so
# that a restart rebuilds it and books such a fill; the manager's restart sync lists the
# broker's orders over the same window.
LATE_FILL_WINDOW: Final = timedelta(hours=1)

_log = get_logger("orders.audit")

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
# The records of a checkpoint: one per working or recently cancelled order, then the one that
# marks it complete.
_CHECKPOINT: Final = "checkpoint"
_CHECKPOINT_END: Final = "checkpoint_end"
_CHECKPOINT_ORDERS: Final = frozenset({_CHECKPOINT})
# Event names a note may not take: replay gives each of them a meaning.
_RESERVED: Final = _TRIGGERS | {"intent", _CHECKPOINT, _CHECKPOINT_END}


# The documented defaults of `order_management.fsync` and `.journal_segment_bytes`, defined
# once there.
_DEFAULT_FSYNC: Final = OrderManagementConfig().fsync
_DEFAULT_PATH: Final = OrderManagementConfig().audit_log_path
_DEFAULT_SEGMENT_BYTES: Final = OrderManagementConfig().journal_segment_bytes


class JournalWriteError(JournalError, OSError):
    """The journal could not write (or force to disk) a record; the message says what became of it.

    Also an `OSError`, because that is what a failed write raised before this class existed
    and what callers that report journal failures (the manager's notes) already catch.
    """


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is UTC else at.astimezone(UTC)  # orjson writes RFC 3339


class AuditJournal:
    """Append-only JSON-lines audit trail, in segments; `replay` rebuilds every order from the
    files alone, and `recover_orders` the ones a restart needs from the newest checkpoint."""

    def __init__(
        self,
        path: str | os.PathLike[str] = _DEFAULT_PATH,
        *,
        fsync: FsyncPolicy | str = _DEFAULT_FSYNC,
        clock: Callable[[], datetime] = _utc_now,
        segment_bytes: int = _DEFAULT_SEGMENT_BYTES,
    ) -> None:
        if isinstance(segment_bytes, bool) or not isinstance(segment_bytes, int):
            raise InvalidOrderError("segment_bytes", segment_bytes, "must be a whole number")
        if segment_bytes < 1:
            raise InvalidOrderError("segment_bytes", segment_bytes, "must be 1 byte or more")
        self.path = Path(path)
        self.fsync = FsyncPolicy(fsync)
        # Once the active segment holds this many bytes of records (its checkpoint aside), the
        # next record opens a new segment.
        self.segment_bytes = segment_bytes
        # Read on every record: which records this policy forces to disk.
        self._sync_all = self.fsync is FsyncPolicy.ALWAYS
        self._sync_milestones = self.fsync is not FsyncPolicy.NEVER
        self._clock = clock
        self._lock = threading.Lock()
        # Rendered records not yet fully written, oldest first; `_head_written` bytes of the
        # first one are already in the file (a short write on a filling disk).
        self._pending: deque[bytes] = deque()
        self._head_written = 0
        # The working orders by client order id, each with how many of its events this
        # journal has written: what the next checkpoint holds. None until known (a journal
        # opened on existing records learns them from recover_orders() or its first rotation).
        self._working: dict[str, tuple[Order, int]] | None = None
        # The orders cancelled with quantity left whose last event is within LATE_FILL_WINDOW
        # (a late fill may still come), each with its written events and the time of the last
        # one, oldest first: the rest of the next checkpoint. Known exactly when `_working` is.
        self._cancelled: OrderedDict[str, tuple[Order, int, datetime]] = OrderedDict()
        # Why no new segment can be opened (the files disagree with themselves); logged once.
        self._rotation_blocked: str | None = None
        # The active segment: its number, file, bytes written, and bytes of its checkpoint.
        self._segment = 1
        self._active = self.path
        self._size = 0
        self._checkpoint_bytes = 0
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
        if config.journal_segment_bytes != self.segment_bytes:
            yield "journal_segment_bytes", config.journal_segment_bytes, self.segment_bytes

    @property
    def segment(self) -> Path:
        """The segment file records are appended to now (`path` until the first rotation)."""
        return self._active

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
        self._write(record, force=self._sync_milestones, intent=True, order=order)

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
        self._write(
            record, force=self._sync_all or (terminal and self._sync_milestones), order=order
        )

    def record_note(
        self, order: Order, event: str, reason: str, *, at: datetime | None = None
    ) -> None:
        """A record that changes no order (an unknown outcome, an anomaly); replay skips it."""
        if event in _RESERVED:
            raise InvalidOrderError("event", event, "a note cannot use a lifecycle event name")
        record = self._base(order, event, self._clock() if at is None else at)
        record.update(source=str(order.state), dest=str(order.state), reason=reason)
        self._write(record, force=self._sync_all)

    def __call__(self, order: Order, event: LifecycleEvent) -> None:
        self.record_event(order, event)

    @property
    def clock(self) -> Callable[[], datetime]:
        """The clock of intents, notes and checkpoints (passed on when the journal is
        reopened, so a simulated clock stays in charge)."""
        return self._clock

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
        """Write to the file now at the active segment's path, after an operator put it back.

        For a journal that was moved or deleted while open (see `record_intent`): once the
        file holding this journal's records is at its path again, this makes intents possible
        without a restart. Records kept after a failed write go to that file. Refuses (with
        `JournalError`) when nothing is there: an empty journal would lack the intents of the
        orders in flight, and the next replay would refuse their events.
        """
        with self._lock:
            active = self._active
            try:
                at_path = os.stat(active)
            except FileNotFoundError:
                raise JournalError(
                    f"{active}: no journal file to reopen; put the journal back at this "
                    "path first (it holds the intents of the orders in flight)"
                ) from None
            if (at_path.st_dev, at_path.st_ino) == self._identity and not self._file.closed:
                return  # already writing to the file at the path
            newest = journal_segments(self.path)[-1][0]
            if newest != self._segment:
                raise JournalError(
                    f"{segment_path(self.path, newest)}: a newer segment than the one this "
                    f"journal writes ({active}) exists; another process writes this journal. "
                    "Stop it, then restart this one"
                )
            old = self._file
            self._file, self._identity, self._seq = self._open(self._seq, segment=self._segment)
            self._head_written = 0  # a record begun in the old file is written whole here
            self._rotation_blocked = None
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

    def _write(
        self,
        record: dict[str, Any],
        *,
        force: bool,
        intent: bool = False,
        order: Order | None = None,
    ) -> None:
        with self._lock:
            if self._file.closed:
                raise ValueError(f"the audit journal {self.path} is closed")  # as a file says
            if intent:
                self._check_identity()
            pending = self._pending
            if (
                self._size - self._checkpoint_bytes >= self.segment_bytes
                and not pending  # a record half-written by a filling disk ends where it began
                and self._rotation_blocked is None
                and self._rotate()
            ):
                force = force or self._sync_milestones  # the checkpoint: restarts begin there
            self._seq += 1
            record["seq"] = self._seq
            try:
                line = self._render_line(record)
            except (TypeError, ValueError):
                self._seq -= 1
                raise
            # Records that waited for the disk may include milestones never forced to disk.
            force = force or (bool(pending) and self._sync_milestones)
            pending.append(line)
            try:
                self._write_pending(intent=line if intent else None)
            except JournalWriteError:
                if order is not None and pending and pending[-1] is line:  # kept: it will be
                    self._track(order, record)
                raise
            if order is not None:
                self._track(order, record)
            if force:
                self._force()

    def _render_line(self, record: dict[str, Any]) -> bytes:
        try:
            line = self._render(None, "", record)
        except TypeError:  # text orjson refuses (a lone surrogate): the rare, slow path
            line = _render_escaped(record)
        assert isinstance(line, bytes)  # orjson renders bytes, newline included
        return line

    def _track(self, order: Order, record: dict[str, Any]) -> None:
        """Keep the working and recently cancelled orders (and how many of their events are
        written) current."""
        working = self._working
        if working is None:
            return
        cid = order.client_order_id
        if record["event"] == "intent":
            working[cid] = (order, 0)
            return
        dest = record["dest"]
        if dest not in _TERMINAL:
            known = working.get(cid)
            working[cid] = (order, order.event_count if known is None else known[1] + 1)
            return
        known = working.pop(cid, None)
        if dest != _CANCELLED:
            return  # filled or rejected: final
        cancelled = self._cancelled
        if known is None:
            before = cancelled.pop(cid, None)
            if before is None:
                if record["source"] == _CANCELLED:
                    return  # cancelled longer ago than the window: no checkpoint holds it
                count = order.event_count  # an order this journal had not met
            else:
                count = before[1] + 1  # a late fill or a correction
        else:
            count = known[1] + 1  # the cancel
        if order.filled_quantity >= order.quantity:
            return  # nothing left to fill: final
        at: datetime = record["ts"]
        cancelled[cid] = (order, count, at)  # the newest last event goes last
        # Orders whose last event is more than the window before this one are no longer owed
        # a late fill: drop them now, so that a long segment does not keep every order it
        # cancelled alive (the checkpoint drops the ones this misses, out of time order).
        while at - next(iter(cancelled.values()))[2] > LATE_FILL_WINDOW:
            cancelled.popitem(last=False)

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
                self._size += written
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
            f"{self._active}: cannot write to the audit journal ({error.strerror or error}); "
            f"{what}; {kept} record(s) wait in memory and are written, in order, before the "
            "next record or by flush()/close() once the disk accepts writes (free space on "
            f"{self.path.parent}); a crash now loses them"
        )

    def _force(self) -> None:
        try:
            os.fsync(self._file.fileno())
        except OSError as error:
            raise JournalWriteError(
                f"{self._active}: the record was written but could not be forced to disk "
                f"({error.strerror or error}); a power loss could lose it"
            ) from error

    def _check_identity(self) -> None:
        """Refuse an intent when the open file is no longer the file at its path.

        Someone moved, rotated or deleted the journal while it was open: the intent would go
        to the detached file, the next start (which reads the path) would not see it, and a
        duplicate live order could follow. One stat per intent; events are not checked.
        """
        active = self._active
        try:
            at_path = os.stat(active)
        except FileNotFoundError:
            at_path = None
        except OSError as error:
            raise JournalError(
                f"{active}: cannot check the journal file ({error.strerror or error}); "
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
            f"{active}: the journal file was moved or deleted while open ({where}); this "
            "journal writes to the detached file, which the next start would not read, so the "
            "intent was not written and its order must not be sent. Put the journal file back at "
            f"{active} (while this process runs, its open copy is /proc/{os.getpid()}/fd/"
            f"{fd} on Linux), then restart, which recovers from the file at the path, or call "
            "reopen()"
        )

    def _open(
        self, seq: int, *, segment: int | None = None
    ) -> tuple[io.FileIO, tuple[int, int], int]:
        """Open the newest segment (or segment number `segment`) for appending: its handle,
        identity and the next seq base.

        Unbuffered, so a record is either in the operating system or in `_pending`, never in
        a buffer that a failed flush could discard.
        """
        segments = journal_segments(self.path)
        if segment is None:
            segment = segments[-1][0] if segments else 1
        active = segment_path(self.path, segment)
        _cut_torn_tail(active)
        written, found = _last_sequence([p for n, p in segments if n <= segment][::-1] or [active])
        if not found and self._working is None:
            self._working = {}  # nothing written yet: no order is working or cancelled
            self._cancelled = OrderedDict()
        handle = active.open("ab", buffering=0)
        stat = os.fstat(handle.fileno())
        self._segment, self._active = segment, active
        self._size, self._checkpoint_bytes = stat.st_size, 0
        return handle, (stat.st_dev, stat.st_ino), max(seq, written)

    def _rotate(self) -> bool:
        """Open the next segment and write its checkpoint (called with the lock held and no
        record waiting); False, leaving the records in the active segment, when it cannot.

        Nothing is renamed: the active segment stays where it is, complete, and is forced to
        disk before its successor exists, so a crash at any point of this leaves either no new
        segment, or one whose checkpoint readers ignore until its `checkpoint_end` is there.
        """
        try:
            at_path = os.stat(self._active)
        except OSError:
            return False  # moved or deleted: stay on the detached file (see _check_identity)
        if (at_path.st_dev, at_path.st_ino) != self._identity:
            return False
        number = self._segment + 1
        target = segment_path(self.path, number)
        # Everything that can fail without touching a file comes first: the record that is
        # waiting must be written whatever happens here.
        try:
            if self._working is None:
                self._learn(_replay_since_checkpoint(self.path))
            lines = self._checkpoint_lines(number)
        except (OrderError, OSError, ValueError, TypeError, KeyError, ArithmeticError) as error:
            return self._block(f"its working orders cannot be read back or written ({error})")
        try:
            if self._sync_milestones:
                os.fsync(self._file.fileno())
            handle = create_segment(target)
        except FileExistsError:
            return self._block(f"{target} exists already; another process writes this journal")
        except OSError as error:  # a full disk: the records stay where they are, and wait
            _log.warning("journal_segment_not_opened", segment=str(target), error=str(error))
            return False
        stat = os.fstat(handle.fileno())
        old, self._file = self._file, handle
        self._identity = (stat.st_dev, stat.st_ino)
        self._segment, self._active = number, target
        self._size, self._checkpoint_bytes = 0, sum(len(line) for line in lines)
        old.close()
        if self._sync_milestones:
            with contextlib.suppress(OSError):  # the checkpoint's own fsync still happens
                sync_directory(target.parent)
        self._seq += len(lines)
        self._pending.extend(lines)
        return True

    def _learn(self, orders: dict[str, Order]) -> None:
        """Take the working and cancelled orders to keep from orders rebuilt from the files."""
        self._working = _working_of(orders)
        self._cancelled = _cancelled_of(orders)

    def _checkpoint_lines(self, number: int) -> list[bytes]:
        """The rendered checkpoint of segment `number`, numbered after the last record: the
        working orders, then those cancelled with quantity left within the window (the older
        ones are dropped here for good)."""
        at = _utc(self._clock())
        assert self._working is not None  # learned before
        cancelled = self._cancelled
        for cid in [cid for cid, (_, _, last) in cancelled.items() if at - last > LATE_FILL_WINDOW]:
            del cancelled[cid]
        held = itertools.chain(
            self._working.values(), ((order, count) for order, count, _ in cancelled.values())
        )
        lines = [
            self._render_line(_checkpoint_record(self._base, order, count, at, self._seq + i))
            for i, (order, count) in enumerate(held, start=1)
        ]
        end = {"v": SCHEMA_VERSION, "seq": self._seq + len(lines) + 1, "ts": at}
        end.update(event=_CHECKPOINT_END, segment=number, orders=len(lines))
        lines.append(self._render_line(end))
        return lines

    def _block(self, why: str) -> bool:
        self._rotation_blocked = why
        _log.error(
            "journal_segment_not_opened",
            journal=str(self.path),
            segment=str(self._active),
            reason=f"the journal stays in its active segment: {why}",
        )
        return False

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def replay(path: str | os.PathLike[str], *, since_checkpoint: bool = False) -> dict[str, Order]:
        """Every order in the journal at `path`, keyed by client order id, rebuilt from its
        segments alone.

        With `since_checkpoint`, only what a restart needs: the orders of the newest complete
        checkpoint (the working ones, and those cancelled with quantity left within
        `LATE_FILL_WINDOW` of it, which a late fill may still reach) plus every order with an
        intent after it; orders final before that checkpoint are not rebuilt, so it costs those
        orders plus about one segment. Without a complete checkpoint it reads every segment.

        A torn last line (a crash mid-write) is ignored; any other unreadable line, and any
        record that no real order could have written, raises `JournalError` naming the file
        and line, so that a restart never trades on a state that did not happen.
        """
        if since_checkpoint:
            return _replay_since_checkpoint(Path(path))
        return _replay(Path(path), None)

    def recover_orders(self) -> dict[str, Order]:
        """What a restart needs, read from this journal's newest checkpoint onward, as
        `replay(path, since_checkpoint=True)`: the working orders, the recently cancelled ones
        a late fill may reach, and every order placed after the checkpoint. The journal keeps
        the working and cancelled-with-quantity-left ones for its next checkpoint, which then
        costs no read.

        Call it on a freshly opened journal, before any order can change. Records kept after a
        failed write are written first; `JournalWriteError` while the disk refuses them (the
        orders would be rebuilt without them).
        """
        with self._lock:
            if self._pending and not self._file.closed:
                self._write_pending(intent=None)
            orders = _replay_since_checkpoint(self.path)
            self._learn(orders)
            self._rotation_blocked = None
        return orders

    def find(self, client_order_id: str) -> Order | None:
        """The order `client_order_id`, rebuilt from this journal's files alone; None if absent.

        For an order that has left a manager's memory: it reads every segment, so it answers
        a person's question, not a loop's.
        """
        with self._lock:
            if self._pending and not self._file.closed:
                # Records still waiting for the disk are not in the file: the answer lags them.
                with contextlib.suppress(OSError):
                    self._write_pending(intent=None)
        return _replay(self.path, client_order_id).get(client_order_id)


def _working_of(orders: dict[str, Order]) -> dict[str, tuple[Order, int]]:
    return {cid: (o, o.event_count) for cid, o in orders.items() if not o.is_terminal}


def _cancelled_of(orders: dict[str, Order]) -> OrderedDict[str, tuple[Order, int, datetime]]:
    """The orders cancelled with quantity left, oldest last event first (the next checkpoint
    drops those older than the window)."""
    owed = [
        (at, cid, o)
        for cid, o in orders.items()
        if owed_late_fill(o) and (at := o.last_event_at) is not None
    ]
    owed.sort(key=lambda entry: entry[0])
    return OrderedDict((cid, (o, o.event_count, at)) for at, cid, o in owed)


def owed_late_fill(order: Order) -> bool:
    """Whether `order` is cancelled with quantity left, so a late fill may still reach it."""
    return order.state == _CANCELLED and order.filled_quantity < order.quantity


# -- the checkpoint ---------------------------------------------------------------------------


def _checkpoint_record(
    base: Callable[[Order, str, datetime], dict[str, Any]],
    order: Order,
    count: int,
    at: datetime,
    seq: int,
) -> dict[str, Any]:
    """One working or recently cancelled order as the journal has written it: its first
    `count` events.

    The live order may be one event ahead (the event whose record opened this segment and is
    written right after the checkpoint); that event is left to its own record.
    """
    if count != order.event_count:
        order = _first_events(order, count)
    record = base(order, _CHECKPOINT, at)
    record["seq"] = seq
    record.update(
        source=None,
        dest=str(order.state),
        time_in_force=str(order.time_in_force),
        reason=order.reason,
        history=[_history_entry(event) for event in order.history],
    )
    return record


def _first_events(order: Order, count: int) -> Order:
    """A copy of `order` as it was after its first `count` events."""
    copy = Order(
        order.symbol,
        order.side,
        order.quantity,
        order.limit_price,
        strategy=order.strategy,
        client_order_id=order.client_order_id,
        time_in_force=order.time_in_force,
    )
    for event in order.history[:count]:
        copy.restore_raw(event.trigger, str(event.dest), event.at, _raw_detail(event))
    return copy


def _raw_detail(event: LifecycleEvent) -> Any:
    """What `Order.restore_raw` takes for `event` (see its docstring)."""
    if event.trigger == "fill":
        e = event.execution
        assert e is not None  # a fill always books one
        return (e.execution_id, e.quantity, e.price, e.timestamp)
    if event.trigger == "correct_fill":
        return tuple((e.execution_id, e.quantity, e.price, e.timestamp) for e in event.executions)
    if event.trigger == "submit":
        return event.broker_order_id
    return event.reason


def _history_entry(event: LifecycleEvent) -> dict[str, Any]:
    """One history event in the fields its own record has (so replay checks it the same way)."""
    trigger = event.trigger
    entry: dict[str, Any] = {
        "event": trigger,
        "ts": _utc(event.at),
        "source": str(event.source),
        "dest": str(event.dest),
    }
    if trigger == "fill":
        assert event.execution is not None
        entry["execution"] = _execution_fields(event.execution)
    elif trigger == "correct_fill":
        entry["executions"] = [_execution_fields(e) for e in event.executions]
    elif trigger == "submit":
        entry["broker_order_id"] = event.broker_order_id
    else:
        entry["reason"] = event.reason
    return entry


def _apply_checkpoint(orders: dict[str, Order], record: dict[str, Any]) -> None:
    """Rebuild one checkpointed order: its intent, then its history, each checked as replay
    checks a record; then its stated state, fills and flags must be what that gives."""
    cid = record["client_order_id"]
    _apply_intent(orders, cid, record)
    for entry in record["history"]:
        if type(entry) is not dict or entry.get("event") not in _TRIGGERS:
            raise JournalError(
                f"the checkpoint of client order {cid} holds a history entry that is not a "
                f"lifecycle event: {entry!r}"
            )
        entry["client_order_id"] = cid
        _apply_record(orders, entry)
    order = orders[cid]
    if order.is_terminal and not owed_late_fill(order):
        raise JournalError(
            f"the checkpoint lists client order {cid}, which its history makes {order.state} "
            f"with {order.filled_quantity} of {order.quantity} filled; a checkpoint holds "
            "working orders and orders cancelled with quantity left only"
        )
    stated = (
        ("dest", record["dest"], str(order.state)),
        ("filled_quantity", Decimal(record["filled_quantity"]), order.filled_quantity),
        ("broker_order_id", record["broker_order_id"], order.broker_order_id),
        ("cancel_requested", record["cancel_requested"], order.cancel_requested),
        ("reason", record["reason"], order.reason),
    )
    for field, said, rebuilt in stated:
        if said != rebuilt:
            raise JournalError(
                f"the checkpoint of client order {cid} says {field} is {said!r}, but its "
                f"history gives {rebuilt!r}"
            )


def _checkpoint_is_complete(segment: Path, number: int) -> bool:
    """Whether segment `number` begins with a whole checkpoint (read up to its end only).

    A crash while the checkpoint was written leaves it without its `checkpoint_end`: not
    complete, so readers use an older one. A `checkpoint_end` that disagrees with what
    precedes it is damage, not a crash.
    """
    count = 0
    for line_no, record in leading_records(segment, _CHECKPOINT_ORDERS):
        event = record.get("event")
        if event == _CHECKPOINT:
            count += 1
            continue
        if event != _CHECKPOINT_END:
            return False
        if record.get("orders") != count or record.get("segment") != number:
            raise JournalError(
                f"{segment}:{line_no}: the checkpoint_end says {record.get('orders')!r} "
                f"orders in segment {record.get('segment')!r}, but {count} precede it in "
                f"segment {number}; the segment was renamed or damaged: inspect it, and do not "
                "trade on this state"
            )
        return True
    return False


# -- replay -----------------------------------------------------------------------------------


def _replay(path: Path, only: str | None) -> dict[str, Order]:
    """Replay every segment, or only the records of client order `only`."""
    segments = journal_segments(path)
    check_contiguous(path, segments)
    orders: dict[str, Order] = {}
    last = len(segments) - 1
    seq = 0
    for index, (_, segment) in enumerate(segments):
        seq = _replay_file(orders, segment, records(segment, torn_ok=index == last), only, seq)
    return orders


def _replay_since_checkpoint(path: Path) -> dict[str, Order]:
    """The orders of the newest complete checkpoint, then every record after it."""
    segments = journal_segments(path)
    start = None
    for index in range(len(segments) - 1, -1, -1):
        number, segment = segments[index]
        if number > 1 and _checkpoint_is_complete(segment, number):
            start = index
            break
    if start is None:  # no checkpoint yet, or only ones a crash cut short
        return _replay(path, None)
    run = segments[start:]
    check_contiguous(path, run, first=run[0][0])
    orders: dict[str, Order] = {}
    last = len(run) - 1
    segment = run[0][1]
    lines = records(segment, torn_ok=last == 0)
    seq = 0
    for line_no, record in lines:  # the checkpoint, complete (checked above)
        if record["event"] == _CHECKPOINT_END:
            end_seq = record.get("seq")
            seq = end_seq if type(end_seq) is int else 0
            break
        try:
            _apply_checkpoint(orders, record)
        except (OrderError, KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise _replay_error(segment, line_no, error) from None
    seq = _replay_file(orders, segment, lines, None, seq, since=True)
    for index, (_, segment) in enumerate(run[1:], start=1):
        lines = records(segment, torn_ok=index == last)
        seq = _replay_file(orders, segment, lines, None, seq, since=True)
    return orders


def _replay_file(
    orders: dict[str, Order],
    segment: Path,
    lines: Iterator[tuple[int, dict[str, Any]]],
    only: str | None,
    after: int,
    *,
    since: bool = False,
) -> int:
    """Apply the records of one segment; the seq of its last record (`after` if none).

    `after` is the last seq of the segment before: the first record here must follow it,
    or the segments are out of order. With `since`, an event of an order the reading has not
    met (it finished before the checkpoint) is skipped if that order was already finished.
    """
    head = next(lines, None)
    if head is None:
        return after
    line_no, record = head
    seq = record.get("seq")
    if after and (type(seq) is not int or seq <= after):
        raise JournalError(
            f"{segment}:{line_no}: seq {seq!r} does not follow {after}, the last seq before "
            "this segment: the segments are out of order or from another journal; inspect "
            "them, and do not trade on this state"
        )
    apply = _apply_record
    for line_no, record in itertools.chain((head,), lines):
        if only is not None and record.get("client_order_id") != only:
            continue
        try:
            if since and _finished_before(orders, record):
                continue
            apply(orders, record)
        except (OrderError, KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise _replay_error(segment, line_no, error) from None
    last = record.get("seq")
    return last if type(last) is int else after


def _finished_before(orders: dict[str, Order], record: dict[str, Any]) -> bool:
    """An event of an order the checkpoint left out because it was final (a late fill on an
    order cancelled longer than LATE_FILL_WINDOW before, a correction): True. An unknown order
    that was working: impossible."""
    event = record["event"]
    cid = record.get("client_order_id")
    if event not in _TRIGGERS or cid in orders:
        return False
    if record["source"] in _TERMINAL:
        return True
    raise JournalError(
        f"event {event!r} for client order {cid}, which is neither in the checkpoint this "
        "reading starts from nor has an intent after it: the checkpoint lacks a working order"
    )


def _replay_error(segment: Path, line_no: int, error: Exception) -> JournalError:
    problem = str(error) if isinstance(error, OrderError) else _plain_error(error)
    return JournalError(
        f"{segment}:{line_no}: cannot replay this record ({problem}); the journal is "
        "inconsistent: inspect the line, and do not trade on this state"
    )


def _plain_error(error: Exception) -> str:
    """A Python error in words a person reads (no reprs): a missing field names the field."""
    if isinstance(error, KeyError):
        return f"the field {error.args[0]!r} is missing"
    if isinstance(error, ArithmeticError):
        return "a number in it is not a decimal number"
    return f"{type(error).__name__}: {error}"


def _last_sequence(newest_first: Iterable[Path]) -> tuple[int, bool]:
    """Continue numbering after the last readable record: that of the newest segment that
    holds one (a segment a crash left empty holds none). Also whether any record exists."""
    for index, segment in enumerate(newest_first):
        last, found = 0, False
        for line_no, record in records(segment, torn_ok=index == 0):
            seq = record.get("seq", 0)
            if type(seq) is not int:
                raise JournalError(f"{segment}:{line_no}: seq {seq!r} is not a whole number")
            last, found = max(last, seq), True
        if found:
            return last, True
    return 0, False


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
    same keys in the same order, and `records` reads it back to the same string, so the
    order's ids still match the broker's.
    """
    text = json.dumps(
        record, ensure_ascii=True, separators=(",", ":"), default=_json_default, allow_nan=False
    )
    return text.encode("ascii") + b"\n"


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
    if event == "intent":
        _apply_intent(orders, record["client_order_id"], record)
        return
    if event not in _TRIGGERS:
        return  # a note, or a checkpoint: it changed no order
    cid = record["client_order_id"]
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
