"""Reading a journal back into orders: every segment in order, or from the newest complete
checkpoint on.

Why checkpoints: a restart that replays every order ever placed gets slower every day, so
each segment after the first begins with a checkpoint of the orders a restart needs (see
_journal_checkpoint.py), then a `checkpoint_end` record that marks it complete. Reading since
the newest complete checkpoint costs those orders plus one segment; a full replay and `find`
still read every segment. A checkpoint that a crash cut short has no `checkpoint_end`, and
readers fall back to the one before it: the previous segment is always complete before its
successor is created, so every crash point leaves a readable journal.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from orders._journal_format import CHECKPOINT, CHECKPOINT_END
from orders._journal_segments import check_contiguous, journal_segments, leading_records, records
from orders._replay_apply import apply_checkpoint, apply_record
from orders.errors import JournalError, OrderError
from orders.lifecycle import TRIGGERS, Order
from orders.model import TERMINAL_STATES

__all__ = ["BAD_RECORD", "last_sequence", "replay_orders", "replay_since_checkpoint"]

Orders = dict[str, Order]
Lines = Iterator[tuple[int, dict[str, Any]]]
Apply = Callable[[Orders, dict[str, Any]], None]

# What a record that no real order could have written raises while it is applied.
BAD_RECORD: Final = (OrderError, KeyError, TypeError, ValueError, ArithmeticError)
_TRIGGERS: Final = frozenset(TRIGGERS)
_CHECKPOINT_ORDERS: Final = frozenset({CHECKPOINT})


def replay_orders(path: Path, only: str | None = None) -> Orders:
    """Replay every segment, or only the records of client order `only`."""
    segments = journal_segments(path)
    check_contiguous(path, segments)
    apply = apply_record if only is None else _only(only)
    orders: Orders = {}
    last = len(segments) - 1
    seq = 0
    for index, (_, segment) in enumerate(segments):
        seq = _replay_file(orders, segment, records(segment, torn_ok=index == last), apply, seq)
    return orders


def _only(cid: str) -> Apply:
    def apply(orders: Orders, record: dict[str, Any]) -> None:
        if record.get("client_order_id") == cid:
            apply_record(orders, record)

    return apply


def replay_since_checkpoint(path: Path) -> Orders:
    """The orders of the newest complete checkpoint, then every record after it."""
    segments = journal_segments(path)
    start = _newest_checkpoint(segments)
    if start is None:  # no checkpoint yet, or only ones a crash cut short
        return replay_orders(path)
    run = segments[start:]
    check_contiguous(path, run, first=run[0][0])
    orders: Orders = {}
    last = len(run) - 1
    seq = 0
    for index, (_, segment) in enumerate(run):
        lines = records(segment, torn_ok=index == last)
        if index == 0:
            seq = _read_checkpoint(orders, segment, lines)
        seq = _replay_file(orders, segment, lines, _apply_since, seq)
    return orders


def _newest_checkpoint(segments: list[tuple[int, Path]]) -> int | None:
    """The index of the newest segment that begins with a complete checkpoint."""
    for index in range(len(segments) - 1, -1, -1):
        number, segment = segments[index]
        if number > 1 and _checkpoint_is_complete(segment, number):
            return index
    return None


def _checkpoint_is_complete(segment: Path, number: int) -> bool:
    """Whether segment `number` begins with a whole checkpoint (read up to its end only).

    A crash while the checkpoint was written leaves it without its `checkpoint_end`: not
    complete, so readers use an older one. A `checkpoint_end` that disagrees with what
    precedes it is damage, not a crash.
    """
    count = 0
    for line_no, record in leading_records(segment, _CHECKPOINT_ORDERS):
        event = record.get("event")
        if event == CHECKPOINT:
            count += 1
            continue
        if event != CHECKPOINT_END:
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


def _read_checkpoint(orders: Orders, segment: Path, lines: Lines) -> int:
    """Rebuild the orders of a complete checkpoint (checked before); the seq of its end."""
    for line_no, record in lines:
        if record["event"] == CHECKPOINT_END:
            end_seq = record.get("seq")
            return end_seq if type(end_seq) is int else 0
        try:
            apply_checkpoint(orders, record)
        except BAD_RECORD as error:
            raise _replay_error(segment, line_no, error) from None
    return 0


def _apply_since(orders: Orders, record: dict[str, Any]) -> None:
    """Apply a record read after a checkpoint, skipping one of an order final before it."""
    if not _finished_before(orders, record):
        apply_record(orders, record)


def _finished_before(orders: Orders, record: dict[str, Any]) -> bool:
    """An event of an order the checkpoint left out because it was final (a late fill on an
    order cancelled longer than LATE_FILL_WINDOW before, a correction): True. An unknown order
    that was working: impossible."""
    event = record["event"]
    cid = record.get("client_order_id")
    if event not in _TRIGGERS or cid in orders:
        return False
    if record["source"] in TERMINAL_STATES:
        return True
    raise JournalError(
        f"event {event!r} for client order {cid}, which is neither in the checkpoint this "
        "reading starts from nor has an intent after it: the checkpoint lacks a working order"
    )


def _replay_file(orders: Orders, segment: Path, lines: Lines, apply: Apply, after: int) -> int:
    """Apply the records of one segment; the seq of its last record (`after` if none).

    `after` is the last seq of the segment before: the first record here must follow it,
    or the segments are out of order.
    """
    head = next(lines, None)
    if head is None:
        return after
    line_no, record = head
    _check_follows(segment, line_no, record.get("seq"), after)
    for line_no, record in itertools.chain((head,), lines):
        try:
            apply(orders, record)
        except BAD_RECORD as error:
            raise _replay_error(segment, line_no, error) from None
    last = record.get("seq")
    return last if type(last) is int else after


def _check_follows(segment: Path, line_no: int, seq: object, after: int) -> None:
    if after and (type(seq) is not int or seq <= after):
        raise JournalError(
            f"{segment}:{line_no}: seq {seq!r} does not follow {after}, the last seq before "
            "this segment: the segments are out of order or from another journal; inspect "
            "them, and do not trade on this state"
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


def last_sequence(newest_first: Iterable[Path]) -> tuple[int, bool]:
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
