"""The journal's files: how its segments are named, found, created and read line by line.

Why segments: a bot runs for months, and a single journal file would make every restart read
every order it ever placed. So the journal is written in segments (audit.py decides when a
new one opens, _journal_checkpoint.py what its checkpoint holds), and a restart reads only
the newest ones.

Why this naming: the first segment is the configured path itself (`logs/orders.jsonl`) and
segment N (N >= 2) sits beside it as `orders.00000N.jsonl`. Nothing is ever renamed: a closed
segment keeps its name for ever, a journal written before segments existed is simply a
journal of one segment, and the tools that read `path` still find its beginning there. The
names are found from `path` alone (a listing of its directory) and sort by their number,
never by their text, so segment 1,000,000 (`orders.1000000.jsonl`) still comes last.

Why reading lives here too: every reader (replay, recovery, `find`, reopening) must apply the
same rules to a line, so they share `records`: a torn last line is tolerated only at the very
end of the journal, any other damage is a `JournalError` naming the file and line.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, NoReturn

import orjson

from orders.errors import JournalError

__all__ = [
    "SCHEMA_VERSION",
    "check_contiguous",
    "create_segment",
    "journal_segments",
    "records",
    "segment_path",
]

SCHEMA_VERSION: Final = 1
# Segment numbers are written with at least this many digits, so a listing sorts by name too.
_DIGITS: Final = 6


def _parts(path: Path) -> tuple[str, str]:
    """The name of `path` without and with its suffix: ("orders", ".jsonl")."""
    suffix = path.suffix
    return (path.name[: -len(suffix)] if suffix else path.name), suffix


def segment_path(path: Path, number: int) -> Path:
    """Where segment `number` of the journal at `path` lives; segment 1 is `path` itself."""
    if number == 1:
        return path
    stem, suffix = _parts(path)
    return path.with_name(f"{stem}.{number:0{_DIGITS}d}{suffix}")


def journal_segments(path: Path) -> list[tuple[int, Path]]:
    """Every segment of the journal at `path` that exists, as (number, file), oldest first.

    Segment 1 is listed only when `path` exists; a gap is not an error here (the readers
    that need a run of segments check it with `check_contiguous`).
    """
    stem, suffix = _parts(path)
    pattern = re.compile(rf"{re.escape(stem)}\.(\d{{{_DIGITS},}}){re.escape(suffix)}")
    found: list[tuple[int, Path]] = []
    with (
        contextlib.suppress(FileNotFoundError, NotADirectoryError),
        os.scandir(path.parent) as entries,
    ):
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match is not None and int(match.group(1)) >= 2:
                found.append((int(match.group(1)), path.parent / entry.name))
    found.sort()
    if path.exists():
        found.insert(0, (1, path))
    return found


def check_contiguous(path: Path, segments: list[tuple[int, Path]], first: int = 1) -> None:
    """Refuse a run of segments with a hole: a missing segment means missing records.

    `first` is the number the run must start at (1 for the whole journal).
    """
    expected = first
    for number, _ in segments:
        if number != expected:
            missing = segment_path(path, expected)
            raise JournalError(
                f"{missing}: segment {expected} of the journal {path} is missing (segment "
                f"{number} exists); orders never deletes or renames a segment: put it back "
                "before replaying, and do not trade on this state"
            )
        expected += 1


def create_segment(path: Path) -> io.FileIO:
    """Create a new segment file for appending; never opens (or clobbers) an existing one.

    Unbuffered, like every journal file (see _journal_writer.py).
    """
    return io.FileIO(path, "xb")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _escaped_record(line: bytes) -> Any:
    """A line written with JSON escapes for text orjson refuses (a lone surrogate), parsed by
    the standard library; `None` for anything else, which stays damage."""
    if not line.isascii() or b"\\u" not in line:
        return None
    try:
        return json.loads(line, parse_constant=_refuse_constant)
    except ValueError:
        return None


def records(path: Path, *, torn_ok: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of every record of one segment file; nothing if it is absent.

    A last line that is not valid JSON is the record a crash interrupted: skipped when
    `torn_ok` (the journal's last segment), damage otherwise (a closed segment was complete
    before the next one was opened). Only the last line can lack its newline.

    The lines are cut by iterating over a BytesIO, which finds each newline with memchr:
    `bytes.split` looks at every byte in a loop of its own, 4.6% of a replay's instructions.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    loads = orjson.loads
    for line_no, line in enumerate(io.BytesIO(data), start=1):
        if line == b"\n":
            continue
        try:
            record = loads(line)
        except orjson.JSONDecodeError:
            record = _escaped_record(line)
        if type(record) is not dict or record.get("v") != SCHEMA_VERSION:
            if record is None and torn_ok and not line.endswith(b"\n"):  # torn: died writing it
                return
            _refuse(path, line_no, record)
        yield line_no, record


def _refuse(path: Path, line_no: int, record: object) -> NoReturn:
    """The error for a line that is not a record of this schema (`record` None: not JSON)."""
    if record is None:
        raise JournalError(
            f"{path}:{line_no}: unreadable record; the journal is damaged: inspect the line, "
            "and do not trade on this state"
        )
    raise JournalError(
        f"{path}:{line_no}: not a schema-{SCHEMA_VERSION} audit record; was this file "
        "written by another version of orders?"
    )


def leading_records(path: Path, events: frozenset[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The records at the start of a segment whose `event` is in `events`, then the first
    record that is not (if any), read line by line: a checkpoint costs what it holds, not
    what the rest of its segment holds.

    A torn last line ends the run silently (a checkpoint cut short by a crash); other damage
    raises as in `records`.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        line_no = 0
        for raw in handle:
            line_no += 1
            line = raw.rstrip(b"\n")
            if not line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                record = _escaped_record(line)
            if type(record) is not dict or record.get("v") != SCHEMA_VERSION:
                if record is None and not raw.endswith(b"\n"):  # torn: a cut checkpoint
                    return
                _refuse(path, line_no, record)
            yield line_no, record
            if record.get("event") not in events:
                return
