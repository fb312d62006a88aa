"""Restart cost of a journal in segments: what a restart reads grows with the working orders,
not with every order the bot ever placed (the "restart cost" figure).

Run: `uv run python bench/bench_scale.py`. One line per figure, medians of `--repeats` runs,
absolute times beside each ratio:

* restart cost: the recovery read (`AuditJournal.replay(path, since_checkpoint=True)`, what
  `journal.recover_orders()` and so `OrderManager.recover()` read) of a journal of 200,000
  finished-order records in several segments plus 10 working orders, against the same read of
  a journal of the 10 working orders alone. The big journal ends just after a rotation, as a
  restart after a long run finds it at best;
* worst case: the same read when the newest segment is nearly full, i.e. a restart reads the
  working orders plus one segment; it depends on `--segment-mib`, not on the history;
* journal replay: `AuditJournal.replay(path)` of every segment of the big journal, and of
  the same records in one file, in records/s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from orders import AuditJournal, Order, OrderHooks

RESTART_TARGET = 3
REPLAY_TARGET = 200_000
WORKING = 10
RECORDS_PER_FINISHED = 6  # intent, submit, four fills
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD")
PRICE = Decimal("10.50")
PART = Decimal(25)


class Writer:
    """A journal and the orders written to it, the way the manager writes them."""

    def __init__(self, path: Path, segment_bytes: int) -> None:
        self.journal = AuditJournal(path, fsync="never", segment_bytes=segment_bytes)
        self.hooks = OrderHooks(on_event=(self.journal.record_event,))
        self.working: list[Order] = []
        self.finished = 0

    def place_working(self) -> None:
        """10 working orders: acknowledged and one quarter filled."""
        for n in range(WORKING):
            order = Order(SYMBOLS[n % len(SYMBOLS)], "buy", 100, PRICE, hooks=self.hooks)
            self.journal.record_intent(order)
            order.submit(f"W{n}")
            order.fill(f"W{n}-0", PART, PRICE)
            self.working.append(order)

    def touch_working(self) -> None:
        """One more fill on each working order (the records after the checkpoint)."""
        for n, order in enumerate(self.working):
            order.fill(f"W{n}-1", PART, PRICE)

    def finish_one(self) -> None:
        n = self.finished
        order = Order(SYMBOLS[n % len(SYMBOLS)], "buy", 100, PRICE, hooks=self.hooks)
        self.journal.record_intent(order)
        order.submit(f"B{n}")
        for k in range(4):
            order.fill(f"X{n}-{k}", PART, PRICE)
        self.finished += 1


def segment_files(path: Path) -> list[Path]:
    """The segments of the journal at `path`, oldest first (their numbers are zero-padded)."""
    return [path, *sorted(path.parent.glob(f"{path.stem}.[0-9]*{path.suffix}"))]


def count_records(path: Path) -> tuple[int, int]:
    """(records, segments) of the journal at `path`."""
    files = segment_files(path)
    lines = sum(1 for f in files for line in f.read_bytes().split(b"\n") if line)
    return lines, len(files)


def median_seconds(read: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(workdir: Path, finished_records: int, segment_bytes: int) -> tuple[Path, Path, Path]:
    """The three journals: working orders alone, big ending after a rotation, big ending with
    a nearly full segment."""
    small = workdir / "small" / "orders.jsonl"
    writer = Writer(small, segment_bytes)
    writer.place_working()
    writer.touch_working()
    writer.journal.close()

    big = workdir / "big" / "orders.jsonl"
    writer = Writer(big, segment_bytes)
    writer.place_working()
    while writer.finished * RECORDS_PER_FINISHED < finished_records:
        writer.finish_one()
    segment = writer.journal.segment
    while writer.journal.segment == segment:  # until the next segment opens
        writer.finish_one()
    writer.touch_working()
    best = workdir / "best" / "orders.jsonl"
    shutil.copytree(big.parent, best.parent)
    margin = 64 * 1024  # stop short of the next rotation
    while writer.journal.segment.stat().st_size < segment_bytes - margin:
        writer.finish_one()
    writer.journal.close()
    return small, best, big


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--finished-records", type=int, default=200_000)
    parser.add_argument("--segment-mib", type=float, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    segment_bytes = int(args.segment_mib * 1024 * 1024)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        small, best, worst = build(workdir, args.finished_records, segment_bytes)

        def recovery_read(path: Path) -> Callable[[], object]:
            return lambda: AuditJournal.replay(path, since_checkpoint=True)

        recovered = AuditJournal.replay(best, since_checkpoint=True)
        assert sum(not o.is_terminal for o in recovered.values()) == WORKING
        alone = median_seconds(recovery_read(small), args.repeats)
        after = median_seconds(recovery_read(best), args.repeats)
        ratio = after / alone
        records, segments = count_records(best)
        print(
            f"restart cost      {ratio:8.2f}x  recovery read, journal of {records:,} records "
            f"in {segments} segments, {WORKING} working ({after * 1e3:.2f} ms) vs {WORKING} "
            f"working alone ({alone * 1e3:.2f} ms)  target <= {RESTART_TARGET}x  "
            f"{'ok' if ratio <= RESTART_TARGET else 'MISSED'}"
        )
        full = median_seconds(recovery_read(worst), args.repeats)
        size = segment_files(worst)[-1].stat().st_size
        print(
            f"restart, worst    {full / alone:8.1f}x  newest segment nearly full "
            f"({size / 2**20:.1f} MiB of {args.segment_mib:g} MiB): {full * 1e3:.0f} ms; "
            "a restart reads the working orders plus at most one segment"
        )

        everything = median_seconds(lambda: AuditJournal.replay(best), args.repeats)
        print(
            f"journal replay    {records / everything:8,.0f} records/s over every segment "
            f"({records:,} records, {segments} segments)  target >= {REPLAY_TARGET:,}  "
            f"{'ok' if records / everything >= REPLAY_TARGET else 'MISSED'}"
        )
        single = workdir / "single" / "orders.jsonl"
        single.parent.mkdir()
        with single.open("wb") as out:  # the same records in one file (checkpoints skipped)
            for segment in segment_files(best):
                out.write(segment.read_bytes())
        one_file = median_seconds(lambda: AuditJournal.replay(single), args.repeats)
        single_records, _ = count_records(single)
        print(
            f"journal replay    {single_records / one_file:8,.0f} records/s in one file "
            f"({single_records:,} records)  target >= {REPLAY_TARGET:,}  "
            f"{'ok' if single_records / one_file >= REPLAY_TARGET else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
