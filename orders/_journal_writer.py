"""The journal's open file: appending whole records, forcing them to disk, and noticing when
the file at the path is no longer the one being written.

Why the writing side keeps its own queue: a record that the disk refused (ENOSPC, EIO) is
part of an order's truth, and dropping it makes replay rebuild a different order (26 of 30
shares filled). So a record the disk did not take whole waits in `pending`, oldest first,
and leaves it only once the operating system has taken all of its bytes; a new record is
written only after every one that waits. The file is unbuffered, so there is no hidden
buffer that could lose a record behind the queue's back.

Why the moved-file check: someone may move, rotate or delete the journal while it is open. An
intent written to the detached file would be invisible to the next start (which reads the
path), and a duplicate live order could follow; so an intent is refused then.
"""

from __future__ import annotations

import io
import os
from collections import deque
from pathlib import Path

from orders.errors import JournalError

__all__ = ["JournalWriteError", "SegmentFile", "cut_torn_tail"]


class JournalWriteError(JournalError, OSError):
    """The journal could not write (or force to disk) a record; the message says what became of it.

    Also an `OSError`, because that is what a failed write raised before this class existed
    and what callers that report journal failures (the manager's notes) already catch.
    """

    __module__ = "orders.audit"  # its public home, where callers import it from


def _identity_at(path: str | Path) -> tuple[int, int] | None:
    """The (device, inode) of the file at `path`; None when nothing is there."""
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return None
    return at_path.st_dev, at_path.st_ino


class SegmentFile:
    """The active segment, open for appending, and the records waiting to reach it."""

    def __init__(self, number: int, active: Path) -> None:
        # Rendered records not yet fully written, oldest first; `head_written` bytes of the
        # first one are already in the file (a short write on a filling disk).
        self.pending: deque[bytes] = deque()
        self.head_written = 0
        self.file = active.open("ab", buffering=0)
        self.number, self.active = number, active
        # The active path as text, for the stat of every intent: a `Path` is converted on
        # each call.
        self._where = str(active)
        # The file this journal writes, to tell it from another one put at its path.
        self.identity = (0, 0)
        # Bytes in the file, and how many of them its checkpoint holds.
        self.size = self.checkpoint_bytes = 0
        self._took(self.file)

    @property
    def closed(self) -> bool:
        return self.file.closed

    def switch(self, number: int, active: Path, handle: io.FileIO, checkpoint_bytes: int) -> None:
        """Write to `handle` (segment `number` at `active`) from now on; closes the old file.

        A record begun in the old file is written whole in the new one.
        """
        old = self.file
        self.file, self.number, self.active = handle, number, active
        self._where = str(active)
        self.head_written = 0
        self._took(handle)
        self.checkpoint_bytes = checkpoint_bytes
        old.close()

    def reopen(self) -> None:
        """Append to the file now at the active segment's path."""
        self.switch(self.number, self.active, self.active.open("ab", buffering=0), 0)

    def _took(self, handle: io.FileIO) -> None:
        stat = os.fstat(handle.fileno())
        self.identity = (stat.st_dev, stat.st_ino)
        self.size = stat.st_size

    def identity_at_path(self) -> tuple[int, int] | None:
        return _identity_at(self.active)

    def at_path(self) -> bool:
        """Whether the file at the active path is the one being written (False if unsure)."""
        try:
            return _identity_at(self.active) == self.identity
        except OSError:
            return False

    def append(self, line: bytes, intent: bool) -> None:
        """Write `line` after the records waiting, as `write_pending` does; `intent` says
        whether it is one.

        When none waits (every record, on a healthy disk), it is written at once and queued
        only if the disk refuses it or takes part of it: queueing every record, to write it
        from the queue, cost 2,000 instructions a record more (measured).
        """
        pending = self.pending
        if pending:
            pending.append(line)
            self.write_pending(intent=line if intent else None)
            return
        try:
            written = self.file.write(line) or 0
        except OSError as error:
            pending.append(line)
            raise JournalWriteError(
                self._failure(error, self._keep_or_drop(line if intent else None))
            ) from error
        self.size += written
        if written != len(line):  # a short write: the rest is written as a kept record's
            pending.append(line)
            self.head_written = written
            self.write_pending(intent=line if intent else None)

    def catch_up(self) -> None:
        """Write the records kept after a failed write, if the file is open."""
        if self.pending and not self.file.closed:
            self.write_pending(intent=None)

    def write_pending(self, *, intent: bytes | None) -> None:
        """Write the kept records, oldest first, each whole; on failure keep the rest, in order.

        `intent`, the last record, is dropped rather than kept if not one byte of it reached
        the file: it must not appear later for an order that was never sent.
        """
        pending = self.pending
        write = self.file.write
        try:
            while pending:
                line = pending[0]
                done = self.head_written
                written = write(line if not done else memoryview(line)[done:]) or 0
                self.size += written
                if done + written == len(line):
                    pending.popleft()
                    self.head_written = 0
                else:  # a short write: the disk took part of it; the rest goes next
                    self.head_written = done + written
        except OSError as error:
            raise JournalWriteError(self._failure(error, self._keep_or_drop(intent))) from error

    def _keep_or_drop(self, intent: bytes | None) -> str:
        """Drop the intent that did not reach the file at all; say what became of the record."""
        if intent is None:
            return "the record is kept"
        if self.pending[0] is intent and self.head_written:
            return (
                "the intent was partly written, so it is kept and completed later (the "
                "next start resolves it as never placed); its order must not be sent"
            )
        self.pending.pop()
        return "the intent was not written and its order must not be sent"

    def _failure(self, error: OSError, what: str) -> str:
        kept = len(self.pending)
        return (
            f"{self.active}: cannot write to the audit journal ({error.strerror or error}); "
            f"{what}; {kept} record(s) wait in memory and are written, in order, before the "
            "next record or by flush()/close() once the disk accepts writes (free space on "
            f"{self.active.parent}); a crash now loses them"
        )

    def force(self) -> None:
        try:
            os.fsync(self.file.fileno())
        except OSError as error:
            raise JournalWriteError(
                f"{self.active}: the record was written but could not be forced to disk "
                f"({error.strerror or error}); a power loss could lose it"
            ) from error

    def close(self) -> None:
        """Write what is kept, fsync and close; raises, leaving the file open, if records
        cannot be written."""
        if not self.file.closed:
            self.catch_up()
            os.fsync(self.file.fileno())
            self.file.close()

    def check_identity(self) -> None:
        """Refuse an intent when the open file is no longer the file at its path.

        One stat per intent; events are not checked.
        """
        active = self.active
        try:
            at_path = _identity_at(self._where)
        except OSError as error:
            raise JournalError(
                f"{active}: cannot check the journal file ({error.strerror or error}); "
                "the intent was not written and its order must not be sent"
            ) from error
        if at_path == self.identity:
            return
        where = (
            "nothing is at the path"
            if at_path is None
            else "another file is at the path: rotated, or copied back"
        )
        raise JournalError(
            f"{active}: the journal file was moved or deleted while open ({where}); this "
            "journal writes to the detached file, which the next start would not read, so the "
            "intent was not written and its order must not be sent. Put the journal file back at "
            f"{active} (while this process runs, its open copy is /proc/{os.getpid()}/fd/"
            f"{self.file.fileno()} on Linux), then restart, which recovers from the file at the "
            "path, or call reopen()"
        )


def cut_torn_tail(path: Path) -> None:
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
