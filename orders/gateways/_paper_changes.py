"""The change file of a broker kept in a state file: one line per change, appended.

Why not rewrite the state file after every change: that costs what the broker holds. A paper
bot holding 1,000 orders (an hour of retention at one order every 4 seconds) spent half a
second an order rewriting it, measured. A change line holds what the change touched: the
broker's account, prices, generators and clock (whose size does not grow with the orders)
and the orders that moved. The state file is rewritten whole only when the change file has
outgrown it (four times the state file, or 4 MiB) and at every start, so a start reads at most
that much more than the state.

The state file names the last change it includes (`changes`); its change file holds the lines
after it, numbered on. A crash while a line is appended leaves a torn last line: that change
was never answered, and is not read. A crash after the state file was rewritten and before
the change file was emptied leaves lines the state file includes: they are skipped by number.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import orjson

from orders._files import sync_directory
from orders.gateways._paper_state import record_key, render

__all__ = ["CHANGES_KEY", "ChangeFile", "apply_changes", "changes_path", "read_changes"]

# The key of the state file that names the last change it includes; a state file without it
# (written by `save`) has no change file.
CHANGES_KEY: Final = "changes"
# The change file is folded into the state file once it is larger than this many times the
# state file, and at least this many bytes: rewriting is then rare, and reading both at a
# start stays within a few times the state.
_FOLD_RATIO: Final = 4
_FOLD_MIN_BYTES: Final = 4 << 20
# Readable by its owner only, as the state file (the simulated account) is.
_PRIVATE: Final = 0o600


def changes_path(state: Path) -> Path:
    """The change file beside the state file `state` (`paper-broker.json` ->
    `paper-broker.changes.jsonl`)."""
    return state.with_name(f"{state.stem}.changes.jsonl")


class ChangeFile:
    """The change file of one broker: appends numbered lines, forced to disk unless `fsync`
    is off (as a journal with fsync "never": a power cut may lose the last ones).

    Opened for each line and closed again: a broker has no close, and a line costs a few
    microseconds more that way against the hundreds its fsync costs.
    """

    def __init__(self, path: Path, last: int, *, fsync: bool) -> None:
        """The change file at `path`, whose next line follows change `last`. Nothing is
        appended before the state file is rewritten and this file emptied (`restart`)."""
        self.path = path
        self.last = last
        self.fsync = fsync
        self._size = 0
        self._fold_at = 0
        self._broken = True

    def append(self, change: Mapping[str, Any]) -> None:
        """Write the next change line; raises OSError. After a failure nothing more is
        appended (the line may be torn) until the state file is rewritten (`restart`)."""
        line = render({"seq": self.last + 1, **change}) + b"\n"
        # The number is used up even if the write fails: the state file rewritten next names
        # it as included, so a line that reached the file after all is skipped, not re-applied.
        self.last += 1
        self._broken = True  # until the line is whole, and forced if it must be
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _PRIVATE)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self._broken = False
        self._size += len(line)

    def create(self) -> None:
        """Make sure the file exists (kept as it is if it does) before a state file names
        it: killed in between, a first start must find the two files, not one."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, _PRIVATE)
        os.close(fd)
        sync_directory(self.path.parent)

    @property
    def needs_fold(self) -> bool:
        """Whether the state file must be rewritten with every change and this file emptied
        (`restart`): it has outgrown the state file, or a line could not be written."""
        return self._broken or self._size >= self._fold_at

    def restart(self, state_bytes: int) -> None:
        """Empty the file once the state file (now `state_bytes` long) includes every line."""
        self._broken = True
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE)
        try:
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self._broken = False
        self._size = 0
        self._fold_at = max(_FOLD_MIN_BYTES, _FOLD_RATIO * state_bytes)


def read_changes(path: Path, after: int) -> list[dict[str, Any]]:
    """The changes after number `after`, in order.

    Raises FileNotFoundError when there is no change file (the state file alone would lack
    every change since it was written) and ValueError for a damaged one: a line that is not
    a change, or a gap in the numbers.
    """
    lines = path.read_bytes().split(b"\n")
    lines.pop()  # b"" after the last newline, or a line torn by a crash: never answered
    changes: list[dict[str, Any]] = []
    expected = after + 1
    for number, line in enumerate(lines, 1):
        change = orjson.loads(line)
        if not isinstance(change, dict) or type(change.get("seq")) is not int:
            raise ValueError(f"line {number} of {path} is not a change")
        if change["seq"] <= after:
            continue  # included in the state file already (it was rewritten, then a crash)
        if change["seq"] != expected:
            raise ValueError(f"line {number} of {path} is change {change['seq']}, not {expected}")
        changes.append(change)
        expected += 1
    return changes


def apply_changes(state: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    """`state`, as the state file holds it, with `changes` made (for `parse`)."""
    orders = {record_key(record): record for record in state["orders"]}
    for change in changes:
        state.update(change["head"])
        for record in change["orders"]:
            orders[record_key(record)] = record
        for key in change["gone"]:
            orders.pop(key, None)
    state["orders"] = list(orders.values())
    return state
