"""The audit journal: one JSON line per lifecycle event, enough to rebuild every order.

Why a journal and not a database: an order's truth is the sequence of its events, and an
append-only file of written lines survives a crash at any instant except the one line being
written, which replay tolerates. The intent is written (and by default fsynced) before
anything is sent to a broker, so a restart always knows which orders might exist.

Why segments: a bot runs for months, and a restart that replays every order ever placed gets
slower every day. So once the active file reaches `segment_bytes`, the next record opens a new
segment, which begins with a checkpoint of the orders a restart needs; `recover_orders()`
starts there. Nothing is renamed: the active segment is forced to disk before its successor
exists, so a crash at any point of a rotation leaves either no new segment, or one whose
checkpoint readers ignore until its `checkpoint_end` is there.

This module holds the journal's policy (what to force to disk, when to rotate) and its public
face; the jobs live beside it: the record format in _journal_format.py, the open file and its
full-disk queue in _journal_writer.py, what a checkpoint holds in _journal_checkpoint.py,
segment files in _journal_segments.py, and reading back in _replay.py and _replay_apply.py.
The schema is documented in docs/audit.md; `SCHEMA_VERSION` changes with it.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from orders._files import sync_directory
from orders._journal_checkpoint import LATE_FILL_WINDOW, CheckpointBook, owed_late_fill
from orders._journal_format import (
    RESERVED,
    checkpoint_end_record,
    event_record,
    intent_record,
    note_record,
    render_line,
    utc,
)
from orders._journal_segments import (
    SCHEMA_VERSION,
    create_segment,
    journal_segments,
    segment_path,
)
from orders._journal_writer import JournalWriteError, SegmentFile, cut_torn_tail
from orders._replay import BAD_RECORD, last_sequence, replay_orders, replay_since_checkpoint
from orders.config import FsyncPolicy, OrderManagementConfig
from orders.errors import InvalidOrderError, JournalError
from orders.lifecycle import Order
from orders.log import get_logger
from orders.model import TERMINAL_STATES, LifecycleEvent

__all__ = [
    "LATE_FILL_WINDOW",
    "SCHEMA_VERSION",
    "AuditJournal",
    "FsyncPolicy",
    "JournalWriteError",
    "owed_late_fill",
]

_log = get_logger("orders.audit")

# The documented defaults of `order_management.fsync` and `.journal_segment_bytes`, defined
# once there.
_DEFAULT_FSYNC: Final = OrderManagementConfig().fsync
_DEFAULT_PATH: Final = OrderManagementConfig().audit_log_path
_DEFAULT_SEGMENT_BYTES: Final = OrderManagementConfig().journal_segment_bytes
# What building a checkpoint raises when the orders it holds cannot be read back or written.
_CHECKPOINT_FAILURES: Final = (*BAD_RECORD, OSError)


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
        self._book = CheckpointBook()
        # Why no new segment can be opened (the files disagree with themselves); logged once.
        self._rotation_blocked: str | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        number, active, self._seq = self._prepare(None)
        self._writer = SegmentFile(number, active)

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
        return self._writer.active

    def record_intent(self, order: Order, *, at: datetime | None = None) -> None:
        """Write and flush (and by default fsync) the intent before anything is sent.

        Raises (so the caller sends nothing) when the intent is not in the file at `path`:
        the file there is no longer the one this journal writes (`JournalError`), or the write
        failed (`JournalWriteError`); a failed intent is not kept for later, because the order
        it describes is never sent.
        """
        record = intent_record(order, self._clock() if at is None else at)
        self._write(record, self._sync_milestones, True, order)

    def record_event(self, order: Order, event: LifecycleEvent) -> None:
        """The `on_event` hook: one record per lifecycle event, internal ones included.

        A record the disk refuses is kept and written first once it accepts writes again; the
        `JournalWriteError` raised meanwhile is what the order's hook error handler reports.
        """
        dest = event.dest
        force = self._sync_all or (
            self._sync_milestones and event.source != dest and dest in TERMINAL_STATES
        )
        self._write(event_record(order, event), force, False, order)

    def record_note(
        self, order: Order, event: str, reason: str, *, at: datetime | None = None
    ) -> None:
        """A record that changes no order (an unknown outcome, an anomaly); replay skips it."""
        if event in RESERVED:
            raise InvalidOrderError("event", event, "a note cannot use a lifecycle event name")
        record = note_record(order, event, reason, self._clock() if at is None else at)
        self._write(record, self._sync_all)

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
        return len(self._writer.pending)

    def flush(self) -> None:
        """Write the records kept after a failed write, oldest first (and fsync them unless the
        policy is `never`), so the journal catches up without waiting for the next record.

        Raises `JournalWriteError` while the disk still refuses them; they stay kept.
        """
        with self._lock:
            writer = self._writer
            if writer.pending and not writer.closed:
                writer.write_pending(intent=None)
                if self._sync_milestones:
                    writer.force()

    def reopen(self) -> None:
        """Write to the file now at the active segment's path, after an operator put it back.

        For a journal that was moved or deleted while open (see `record_intent`): once the
        file holding this journal's records is at its path again, this makes intents possible
        without a restart. Records kept after a failed write go to that file. Refuses (with
        `JournalError`) when nothing is there: an empty journal would lack the intents of the
        orders in flight, and the next replay would refuse their events.
        """
        with self._lock:
            writer = self._writer
            at_path = writer.identity_at_path()
            if at_path is None:
                raise JournalError(
                    f"{writer.active}: no journal file to reopen; put the journal back at this "
                    "path first (it holds the intents of the orders in flight)"
                )
            if at_path == writer.identity and not writer.closed:
                return  # already writing to the file at the path
            newest = journal_segments(self.path)[-1][0]
            if newest != writer.number:
                raise JournalError(
                    f"{segment_path(self.path, newest)}: a newer segment than the one this "
                    f"journal writes ({writer.active}) exists; another process writes this "
                    "journal. Stop it, then restart this one"
                )
            _, _, written = self._prepare(writer.number)
            writer.reopen()
            self._seq = max(self._seq, written)
            self._rotation_blocked = None
            writer.catch_up()

    def close(self) -> None:
        """Write what is kept, fsync and close; raises, leaving the file open, if records
        cannot be written, so that none is lost without a word."""
        with self._lock:
            self._writer.close()

    def __enter__(self) -> AuditJournal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _write(
        self,
        record: dict[str, Any],
        force: bool,
        intent: bool = False,
        order: Order | None = None,
    ) -> None:
        """Number, render and write `record`, under the lock.

        Every record takes this path, so the rotation test, the numbering and the rendering
        are written out here rather than called (a call costs about 450 instructions, 1% of a
        record), and the lock is taken with `acquire` and `release`: a `with` block looks
        both up and parses their arguments, about 1,000 instructions a record more (measured).
        """
        lock = self._lock
        lock.acquire()
        try:
            writer = self._writer
            if writer.file.closed:
                raise ValueError(f"the audit journal {self.path} is closed")  # as a file says
            if intent:
                writer.check_identity()
            if writer.size - writer.checkpoint_bytes >= self.segment_bytes:  # full
                self._rotate_unless_held()
            # The next seq, taken only if the record renders (see `render_line`).
            seq = self._seq + 1
            record["seq"] = seq
            line = render_line(record)
            self._seq = seq
            # Records that waited for the disk (or a checkpoint just begun) may include
            # milestones never forced to disk.
            if writer.pending:
                force = force or self._sync_milestones
            try:
                writer.append(line, intent)
            except JournalWriteError:
                self._after_failure(line, record, order)
                raise
            if order is not None:
                self._book.track(order, record)
            if force:
                writer.force()
        finally:
            lock.release()

    def _after_failure(self, line: bytes, record: dict[str, Any], order: Order | None) -> None:
        """A refused record is kept (it will be written), except an intent no byte of which
        reached the file: it was dropped, and gives its seq back."""
        pending = self._writer.pending
        if not pending or pending[-1] is not line:
            self._seq -= 1
        elif order is not None:
            self._book.track(order, record)

    def _prepare(self, number: int | None) -> tuple[int, Path, int]:
        """The segment to append to (segment `number`, or the newest), ready: its number, its
        file and the last seq written up to it."""
        segments = journal_segments(self.path)
        if number is None:
            number = segments[-1][0] if segments else 1
        active = segment_path(self.path, number)
        cut_torn_tail(active)
        written, found = last_sequence([p for n, p in segments if n <= number][::-1] or [active])
        if not found:
            self._book.start_empty()
        return number, active, written

    # -- rotation ---------------------------------------------------------------------------

    def _rotate_unless_held(self) -> None:
        """Open the next segment and queue its checkpoint (the active one is full), unless
        something holds the journal in the active one.

        Not while a record waits: one half-written by a filling disk ends where it began.
        """
        writer = self._writer
        if (
            not writer.pending
            and self._rotation_blocked is None
            and writer.at_path()  # moved or deleted: stay on the detached file
        ):
            self._rotate()

    def _rotate(self) -> None:
        """Open the next segment with its checkpoint queued; when it cannot, the records stay
        in the active segment."""
        writer = self._writer
        number = writer.number + 1
        target = segment_path(self.path, number)
        # Everything that can fail without touching a file comes first: the record that is
        # waiting must be written whatever happens here.
        lines = self._checkpoint_lines(number)
        if lines is None:
            return
        handle = self._create(target)
        if handle is None:
            return
        writer.switch(number, target, handle, sum(len(line) for line in lines))
        if self._sync_milestones:
            with contextlib.suppress(OSError):  # the checkpoint's own fsync still happens
                sync_directory(target.parent)
        self._seq += len(lines)
        writer.pending.extend(lines)

    def _checkpoint_lines(self, number: int) -> list[bytes] | None:
        """The rendered checkpoint of segment `number`, numbered after the last record; None
        (and rotation blocked) when its orders cannot be read back or written."""
        try:
            if not self._book.known:
                self._book.learn(replay_since_checkpoint(self.path))
            at = utc(self._clock())
            held = self._book.checkpoint(at, self._seq)
            end = checkpoint_end_record(self._seq + len(held) + 1, at, number, len(held))
            return [render_line(record) for record in (*held, end)]
        except _CHECKPOINT_FAILURES as error:
            self._block(f"its working orders cannot be read back or written ({error})")
            return None

    def _create(self, target: Path) -> io.FileIO | None:
        """The new segment file, after the active one is forced to disk; None if not now."""
        try:
            if self._sync_milestones:
                os.fsync(self._writer.file.fileno())
            return create_segment(target)
        except FileExistsError:
            self._block(f"{target} exists already; another process writes this journal")
        except OSError as error:  # a full disk: the records stay where they are, and wait
            _log.warning("journal_segment_not_opened", segment=str(target), error=str(error))
        return None

    def _block(self, why: str) -> None:
        self._rotation_blocked = why
        _log.error(
            "journal_segment_not_opened",
            journal=str(self.path),
            segment=str(self._writer.active),
            reason=f"the journal stays in its active segment: {why}",
        )

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
            return replay_since_checkpoint(Path(path))
        return replay_orders(Path(path))

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
            self._writer.catch_up()
            orders = replay_since_checkpoint(self.path)
            self._book.learn(orders)
            self._rotation_blocked = None
        return orders

    def find(self, client_order_id: str) -> Order | None:
        """The order `client_order_id`, rebuilt from this journal's files alone; None if absent.

        For an order that has left a manager's memory: it reads every segment, so it answers
        a person's question, not a loop's.
        """
        with self._lock, contextlib.suppress(OSError):
            # Records still waiting for the disk are not in the file: the answer lags them.
            self._writer.catch_up()
        return replay_orders(self.path, client_order_id).get(client_order_id)
