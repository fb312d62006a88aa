"""The journal in segments: rotation with a checkpoint of the working and recently cancelled
orders, replay across segments, recovery from the newest complete checkpoint (late fills
included), and every way a crash or an operator can leave the files (a checkpoint cut short,
an empty new segment, a missing segment, a full disk, a moved file, a SIGKILL mid-rotation)."""

from __future__ import annotations

import errno
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from orders import (
    AuditJournal,
    ConfigError,
    Execution,
    Fault,
    InvalidOrderError,
    JournalError,
    Order,
    OrderHooks,
    OrderManagementConfig,
    OrderManager,
    OrderRequest,
    OrderState,
    PaperBroker,
    inferred_execution_id,
)
from orders._journal_segments import records
from orders.audit import LATE_FILL_WINDOW, JournalWriteError
from tests.factories import ManualUtcClock, Ticker, make_desk, order_view

D = Decimal
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
SMALL = 1_500  # bytes: a few orders' records per segment


class Desk:
    """A journal and the live orders written to it, on one clock."""

    def __init__(self, path: Path, segment_bytes: int = SMALL, **kwargs: Any) -> None:
        self.clock = Ticker()
        # The journal's own clock (intents, checkpoints), so the orders' times do not
        # depend on when a segment opens.
        self.journal_clock = Ticker()
        self.journal = AuditJournal(
            path, fsync="never", clock=self.journal_clock, segment_bytes=segment_bytes, **kwargs
        )
        self.hooks = OrderHooks(on_event=(self.journal.record_event,))
        self.orders: dict[str, Order] = {}

    def place(self, cid: str, quantity: int = 10, symbol: str = "AAPL") -> Order:
        order = Order(
            symbol,
            "buy",
            quantity,
            "100.25",
            strategy="momentum",
            client_order_id=cid,
            clock=self.clock,
            hooks=self.hooks,
            time_in_force="gtc",
        )
        self.journal.record_intent(order)
        self.orders[cid] = order
        return order

    def wait(self, delta: timedelta) -> None:
        """Let `delta` pass on both clocks."""
        self.clock.now += delta
        self.journal_clock.now += delta

    def adopt(self, orders: dict[str, Order]) -> None:
        """Route orders rebuilt from the files to this journal, as `recover()` does."""
        for cid, order in orders.items():
            order.attach_hooks(self.hooks, clock=self.clock)
            self.orders[cid] = order

    def filler(self, count: int, prefix: str = "done") -> None:
        """`count` orders placed and filled at once: history that is finished."""
        for n in range(count):
            order = self.place(f"{prefix}-{n}")
            order.submit(f"b-{prefix}-{n}")
            order.fill(f"x-{prefix}-{n}", 10, "100")


def segment_files(path: Path) -> list[Path]:
    """The segments beside `path`, oldest first (segment 1 is `path`)."""
    return [path, *sorted(path.parent.glob(f"{path.stem}.[0-9]*{path.suffix}"))]


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def assert_recovery_agrees(path: Path) -> dict[str, Order]:
    """Recovery's reading rebuilds every working order exactly as the whole-journal replay
    does, and nothing it rebuilds differs from that replay; returns recovery's orders."""
    everything = AuditJournal.replay(path)
    recovered = AuditJournal.replay(path, since_checkpoint=True)
    working = {cid for cid, order in everything.items() if not order.is_terminal}
    assert working <= set(recovered)
    for cid, order in recovered.items():
        assert order_view(order) == order_view(everything[cid]), cid
    return recovered


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "orders.jsonl"


def working_mix(desk: Desk) -> list[Order]:
    """One order in every working shape: pending, submitted, part-filled with a cancel
    requested, a cancel refused, and a corrected inferred fill."""
    pending = desk.place("pending", symbol="F")
    submitted = desk.place("submitted", symbol="MSFT")
    submitted.submit("b-submitted")
    asked = desk.place("asked", symbol="IBM")
    asked.submit("b-asked")
    asked.fill("x-asked", 3, "99.5", T0)
    asked.request_cancel()
    refused = desk.place("refused", symbol="GE")
    refused.submit(None)
    refused.request_cancel()
    refused.cancel_rejected("too late to cancel")
    corrected = desk.place("corrected", symbol="T")
    corrected.submit("b-corrected")
    corrected.fill(inferred_execution_id("corrected", D(0), D(4)), 4, "20.125")
    corrected.correct_fill(
        [Execution("x-c1", D(1), D("20.1"), T0), Execution("x-c2", D(3), D("20.13"))]
    )
    return [pending, submitted, asked, refused, corrected]


class TestRotation:
    """Past `segment_bytes` the next record opens a numbered segment that starts with a
    checkpoint; sequence numbers run on; `path` stays the first segment."""

    def test_segments_are_numbered_beside_the_path_and_begin_with_a_checkpoint(
        self, path: Path
    ) -> None:
        desk = Desk(path)
        working = working_mix(desk)
        desk.filler(12)
        desk.journal.close()
        files = segment_files(path)
        assert [f.name for f in files[:3]] == [
            "orders.jsonl",
            "orders.000002.jsonl",
            "orders.000003.jsonl",
        ]
        assert len(files) >= 4
        seqs = [r["seq"] for f in files for r in lines_of(f)]
        assert seqs == list(range(1, len(seqs) + 1))
        for number, segment in enumerate(files[1:], start=2):
            records = lines_of(segment)
            end = next(i for i, r in enumerate(records) if r["event"] == "checkpoint_end")
            assert all(r["event"] == "checkpoint" for r in records[:end])
            assert records[end]["orders"] == end
            assert records[end]["segment"] == number
        # A checkpoint after the working orders were placed lists each of them, then at most
        # the one order in flight when the segment opened.
        newest = lines_of(files[-1])
        listed = [r["client_order_id"] for r in newest if r["event"] == "checkpoint"]
        assert listed[: len(working)] == [o.client_order_id for o in working]
        assert len(listed) <= len(working) + 1

    def test_a_checkpoint_record_holds_the_order_as_it_is(self, path: Path) -> None:
        desk = Desk(path, segment_bytes=1)  # every record opens a segment
        desk.place("c-1")
        order = desk.orders["c-1"]
        order.submit("b-1")
        order.fill("x-1", 4, "100.10", T0)
        order.request_cancel()  # opens the segment whose checkpoint has the fill
        desk.journal.close()
        records = lines_of(desk.journal.segment)
        checkpoint = records[0]
        assert checkpoint["event"] == "checkpoint"
        assert checkpoint["dest"] == "partially_filled"
        assert checkpoint["filled_quantity"] == "4"
        assert checkpoint["broker_order_id"] == "b-1"
        assert checkpoint["cancel_requested"] is False  # the request is the record after it
        assert checkpoint["time_in_force"] == "gtc"
        assert [e["event"] for e in checkpoint["history"]] == ["submit", "fill"]
        assert checkpoint["history"][1]["execution"] == {
            "id": "x-1",
            "quantity": "4",
            "price": "100.10",
            "timestamp": T0.isoformat(),
        }
        assert [r["event"] for r in records[1:]] == ["checkpoint_end", "request_cancel"]

    def test_final_orders_leave_the_checkpoint(self, path: Path) -> None:
        """A filled or rejected order is never in a checkpoint, nor a cancelled one whose late
        fills left nothing to fill; a working order stays."""
        desk = Desk(path)
        keep = desk.place("keep")
        keep.submit("b-keep")
        filled = desk.place("filled", symbol="MSFT")
        filled.submit("b-filled")
        filled.fill("x-filled", 10, "100")
        rejected = desk.place("rejected", symbol="IBM")
        rejected.reject("never placed")
        topped = desk.place("topped", symbol="GE")
        topped.submit("b-topped")
        topped.fill("x-topped-1", 4, "100")
        topped.cancel("asked")
        topped.fill("x-topped-2", 6, "100")  # a late fill of all that was left
        desk.filler(8)
        desk.journal.close()
        newest = lines_of(segment_files(path)[-1])
        listed = [r["client_order_id"] for r in newest if r["event"] == "checkpoint"]
        assert listed[0] == "keep"
        assert not {"filled", "rejected", "topped"} & set(listed)
        assert "topped" not in desk.journal._book.cancelled

    def test_the_default_size_is_the_configurations(self, path: Path) -> None:
        journal = AuditJournal(path)
        assert journal.segment_bytes == OrderManagementConfig().journal_segment_bytes
        assert journal.segment_bytes == 64 * 1024 * 1024
        journal.close()

    @pytest.mark.parametrize("bad", [0, -1, True, "64"])
    def test_a_size_that_is_not_a_positive_whole_number_is_refused(
        self, path: Path, bad: Any
    ) -> None:
        with pytest.raises(InvalidOrderError, match="segment_bytes"):
            AuditJournal(path, segment_bytes=bad)

    def test_a_manager_refuses_a_journal_whose_size_disagrees_with_its_config(
        self, path: Path
    ) -> None:
        config = OrderManagementConfig.from_dict({"journal_segment_bytes": 1_000_000})
        journal = AuditJournal(path)
        assert list(journal.config_disagreements(config)) == [
            ("journal_segment_bytes", 1_000_000, 64 * 1024 * 1024)
        ]
        with pytest.raises(ConfigError, match=r"order_management\.journal_segment_bytes"):
            OrderManager(PaperBroker(), config=config, journal=journal)
        agreeing = AuditJournal(path, segment_bytes=1_000_000)
        OrderManager(PaperBroker(), config=config, journal=agreeing)
        journal.close()
        agreeing.close()

    def test_a_note_cannot_pose_as_a_checkpoint(self, path: Path) -> None:
        desk = Desk(path)
        order = desk.place("c-1")
        for name in ("checkpoint", "checkpoint_end"):
            with pytest.raises(InvalidOrderError):
                desk.journal.record_note(order, name, "x")
        desk.journal.close()


class TestReading:
    """replay() reads every segment; recovery reads from the newest complete checkpoint."""

    def test_replay_across_segments_equals_the_single_file_replay(self, tmp_path: Path) -> None:
        replays = []
        for size in (SMALL, 64 * 1024 * 1024):
            path = tmp_path / str(size) / "orders.jsonl"
            desk = Desk(path, segment_bytes=size)
            working_mix(desk)
            desk.filler(10)
            late = desk.place("late", symbol="NVDA")
            late.submit("b-late")
            late.cancel("asked")
            desk.filler(5, prefix="more")
            late.fill("x-late", 2, "100")  # a late fill, segments after its cancel
            desk.journal.close()
            replays.append((len(segment_files(path)), AuditJournal.replay(path), desk.orders))
        (segmented, split, live), (single, whole, _) = replays
        assert segmented > 3
        assert single == 1
        assert list(split) == list(whole) == list(live)
        assert [order_view(o) for o in split.values()] == [order_view(o) for o in whole.values()]
        assert [order_view(o) for o in split.values()] == [order_view(o) for o in live.values()]

    def test_recovery_rebuilds_working_orders_whole_and_skips_finished_ones(
        self, path: Path
    ) -> None:
        desk = Desk(path)
        working = working_mix(desk)
        desk.filler(10)
        after = desk.place("after", symbol="NVDA")  # placed after the newest checkpoint ...
        after.submit("b-after")
        after.fill("x-after", 10, "100")  # ... and finished there
        desk.journal.close()
        recovered = AuditJournal.replay(path, since_checkpoint=True)
        for order in working:
            assert order_view(recovered[order.client_order_id]) == order_view(order)
        assert order_view(recovered["after"]) == order_view(after)
        assert not any(cid.startswith("done-") for cid in recovered)  # finished long before
        assert recovered["asked"].cancel_requested is True
        assert recovered["asked"].filled_quantity == D(3)
        assert recovered["refused"].history[-1].reason == "too late to cancel"
        assert recovered["corrected"].average_fill_price == D("20.1225")
        assert recovered["pending"].state is OrderState.PENDING
        assert_recovery_agrees(path)

    def test_recovery_reads_one_segment_not_the_history(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        desk = Desk(path)
        working_mix(desk)
        desk.filler(30)
        desk.journal.close()
        files = segment_files(path)
        read: list[Path] = []
        real = records

        def counting(segment: Path, **kwargs: Any) -> Any:
            read.append(segment)
            return real(segment, **kwargs)

        monkeypatch.setattr("orders._replay.records", counting)
        AuditJournal.replay(path, since_checkpoint=True)
        assert read == [files[-1]]
        read.clear()
        AuditJournal.replay(path)
        assert read == files

    def test_a_late_fill_on_an_order_final_before_the_checkpoint(self, path: Path) -> None:
        """Cancelled more than LATE_FILL_WINDOW before the checkpoint, the order is not in it:
        recovery skips a fill that comes later still, the full replay has it."""
        desk = Desk(path)
        late = desk.place("late")
        late.submit("b-late")
        late.cancel("asked")
        desk.wait(LATE_FILL_WINDOW + timedelta(minutes=1))
        desk.filler(10)
        late.fill("x-late", 2, "100")
        desk.journal.close()
        assert "late" not in AuditJournal.replay(path, since_checkpoint=True)
        assert AuditJournal.replay(path)["late"].filled_quantity == D(2)

    def test_find_reaches_an_order_in_the_first_segment(self, path: Path) -> None:
        desk = Desk(path)
        desk.filler(12)
        assert len(segment_files(path)) > 3
        found = desk.journal.find("done-0")
        assert found is not None
        assert order_view(found) == order_view(desk.orders["done-0"])
        desk.journal.close()

    def test_a_journal_without_segments_recovers_as_before(self, path: Path) -> None:
        desk = Desk(path, segment_bytes=64 * 1024 * 1024)
        working_mix(desk)
        desk.filler(3)
        desk.journal.close()
        assert segment_files(path) == [path]
        recovered = AuditJournal.replay(path, since_checkpoint=True)
        assert [order_view(o) for o in recovered.values()] == [
            order_view(o) for o in AuditJournal.replay(path).values()
        ]


class TestRestart:
    """A journal opened on existing segments continues them, and its next checkpoint still
    holds orders that were only on disk."""

    def test_recover_orders_gives_the_next_checkpoint_every_working_order(self, path: Path) -> None:
        desk = Desk(path)
        working_mix(desk)
        desk.filler(6)
        desk.journal.close()
        again = Desk(path)
        again.adopt(again.journal.recover_orders())
        # Only one working order moves; the others must still reach the next checkpoints.
        again.orders["submitted"].fill("x-s", 2, "100")
        again.filler(10, prefix="later")
        again.journal.close()
        recovered = assert_recovery_agrees(path)
        assert {"pending", "submitted", "asked", "refused", "corrected"} <= set(recovered)
        assert recovered["submitted"].filled_quantity == D(2)

    def test_without_recover_orders_the_first_rotation_reads_them(self, path: Path) -> None:
        desk = Desk(path)
        working_mix(desk)
        desk.filler(6)
        desk.journal.close()
        again = Desk(path)  # a tool that writes without recovering first
        again.filler(10, prefix="later")
        again.journal.close()
        recovered = assert_recovery_agrees(path)
        assert {"pending", "submitted", "asked", "refused", "corrected"} <= set(recovered)

    def test_reopening_continues_the_newest_segment_and_the_sequence(self, path: Path) -> None:
        desk = Desk(path)
        desk.filler(8)
        desk.journal.close()
        files = segment_files(path)
        last_seq = lines_of(files[-1])[-1]["seq"]
        again = Desk(path, segment_bytes=64 * 1024 * 1024)
        assert again.journal.segment == files[-1]
        again.place("next")
        again.journal.close()
        assert segment_files(path) == files
        assert lines_of(files[-1])[-1]["seq"] == last_seq + 1


def checkpointed(path: Path) -> list[str]:
    """The client order ids the newest segment's checkpoint holds, in its order."""
    newest = lines_of(segment_files(path)[-1])
    return [r["client_order_id"] for r in newest if r["event"] == "checkpoint"]


class TestLateFills:
    """An order cancelled with quantity left stays in every checkpoint for LATE_FILL_WINDOW
    after its last event, so a fill that raced its cancel and is reported after a rotation
    replays onto it; older cancels, and filled orders, are final."""

    def test_an_order_cancelled_shortly_before_a_rotation_takes_its_late_fill(
        self, path: Path
    ) -> None:
        desk = Desk(path)
        late = desk.place("late")
        late.submit("b-late")
        late.fill("x-late-1", 3, "100.25", T0)
        late.cancel("asked")
        working = desk.place("working", symbol="MSFT")
        working.submit("b-working")
        desk.wait(timedelta(minutes=50))
        desk.filler(10)  # several rotations, the newest 50 minutes after the cancel
        late.fill("x-late-2", 2, "100.25")  # the fill that raced the cancel, reported late
        desk.journal.close()
        files = segment_files(path)
        assert len(files) > 3
        newest = lines_of(files[-1])
        (held,) = [
            r for r in newest if r.get("client_order_id") == "late" and r["event"] == "checkpoint"
        ]
        assert (held["dest"], held["filled_quantity"]) == ("cancelled", "3")
        listed = checkpointed(path)
        assert listed[0] == "working"
        assert listed[-1] == "late"  # after the working orders
        assert newest[-1]["event"] == "fill"  # the late fill: after the checkpoint
        again = AuditJournal(path, fsync="never", segment_bytes=SMALL)
        recovered = again.recover_orders()
        again.close()
        rebuilt = recovered["late"]
        assert (rebuilt.state, rebuilt.filled_quantity) == (OrderState.CANCELLED, D(5))
        assert [e.trigger for e in rebuilt.history] == ["submit", "fill", "cancel", "fill"]
        assert order_view(rebuilt) == order_view(late)
        assert_recovery_agrees(path)

    def test_a_late_fill_that_opens_a_segment_is_the_record_after_the_checkpoint(
        self, path: Path
    ) -> None:
        desk = Desk(path, segment_bytes=1)  # every record opens a segment
        late = desk.place("late")
        late.submit("b-late")
        late.fill("x-late-1", 3, "100.25")
        late.cancel("asked")
        late.fill("x-late-2", 2, "100.25")  # opens a segment holding the order as cancelled
        desk.journal.close()
        newest = lines_of(desk.journal.segment)
        assert [r["event"] for r in newest] == ["checkpoint", "checkpoint_end", "fill"]
        assert (newest[0]["dest"], newest[0]["filled_quantity"]) == ("cancelled", "3")
        assert [e["event"] for e in newest[0]["history"]] == ["submit", "fill", "cancel"]
        assert order_view(assert_recovery_agrees(path)["late"]) == order_view(late)

    @pytest.mark.parametrize("learn", ["recover_orders", "first rotation"])
    def test_a_restart_keeps_a_recent_cancel_in_the_next_checkpoint(
        self, path: Path, learn: str
    ) -> None:
        """Cancelled before a restart, the order reaches the restarted journal's checkpoints,
        whether it learns them from recover_orders() or from the files at its first rotation."""
        desk = Desk(path, segment_bytes=64 * 1024 * 1024)
        late = desk.place("late")
        late.submit("b-late")
        late.cancel("asked")
        desk.journal.close()
        again = Desk(path)  # small segments
        if learn == "recover_orders":
            recovered = again.journal.recover_orders()
            assert recovered["late"].state is OrderState.CANCELLED
            again.adopt(recovered)
        else:
            late.attach_hooks(again.hooks, clock=again.clock)
            again.orders["late"] = late
        again.wait(timedelta(minutes=30))
        again.filler(8)
        assert len(segment_files(path)) > 2
        assert "late" in checkpointed(path)
        again.orders["late"].fill("x-late", 4, "100.25")
        again.journal.close()
        recovered = assert_recovery_agrees(path)
        assert recovered["late"].filled_quantity == D(4)
        assert recovered["late"].state is OrderState.CANCELLED

    def test_an_order_cancelled_more_than_the_window_before_a_rotation_is_not_in_it(
        self, path: Path
    ) -> None:
        desk = Desk(path, segment_bytes=64 * 1024 * 1024)
        old = desk.place("old")
        old.submit("b-old")
        old.cancel("asked")
        desk.wait(LATE_FILL_WINDOW - timedelta(minutes=5))
        recent = desk.place("recent", symbol="MSFT")
        recent.submit("b-recent")
        recent.cancel("asked")  # 55 minutes after the first: both are still kept
        assert list(desk.journal._book.cancelled) == ["old", "recent"]
        desk.wait(timedelta(minutes=10))
        desk.journal.segment_bytes = SMALL  # the next record opens a segment
        desk.filler(1)
        listed = checkpointed(path)
        assert "recent" in listed
        assert "old" not in listed  # cancelled 65 minutes before the checkpoint
        assert list(desk.journal._book.cancelled) == ["recent"]
        desk.journal.close()
        recovered = assert_recovery_agrees(path)
        assert "recent" in recovered
        assert "old" not in recovered

    def test_a_late_fill_keeps_the_order_for_another_window(self, path: Path) -> None:
        """The window runs from the order's last event, as the manager's restart sync
        measures it: a late fill restarts it."""
        desk = Desk(path, segment_bytes=64 * 1024 * 1024)
        late = desk.place("late")
        late.submit("b-late")
        late.cancel("asked")
        desk.wait(timedelta(minutes=50))
        late.fill("x-late-1", 1, "100.25")
        desk.wait(timedelta(minutes=50))
        desk.journal.segment_bytes = SMALL
        desk.filler(1)
        assert "late" in checkpointed(path)  # 100 minutes after its cancel
        late.fill("x-late-2", 1, "100.25")
        desk.journal.close()
        assert assert_recovery_agrees(path)["late"].filled_quantity == D(2)

    def test_older_cancels_are_dropped_without_waiting_for_a_rotation(self, path: Path) -> None:
        """The journal keeps only the last window's cancelled orders, so a long segment does
        not keep every order it ever cancelled alive."""
        desk = Desk(path, segment_bytes=64 * 1024 * 1024)
        for n in range(3):
            order = desk.place(f"old-{n}")
            order.submit(f"b-old-{n}")
            order.cancel("asked")
        desk.wait(LATE_FILL_WINDOW + timedelta(seconds=1))
        order = desk.place("new")
        order.submit("b-new")
        order.cancel("asked")
        assert list(desk.journal._book.cancelled) == ["new"]
        desk.journal.close()
        assert segment_files(path) == [path]

    def test_a_filled_order_is_never_in_a_checkpoint(self, path: Path) -> None:
        desk = Desk(path, segment_bytes=1)  # every record opens a segment
        order = desk.place("filled")
        order.submit("b-filled")
        order.fill("x-1", 4, "100.25")
        order.fill("x-2", 6, "100.25")  # opens a segment holding it, then fills it
        assert "filled" in checkpointed(path)
        desk.place("next", symbol="MSFT")  # opens one without it
        desk.journal.close()
        assert "filled" not in checkpointed(path)
        assert not desk.journal._book.cancelled


class TestCrashDuringRotation:
    """A crash at any point of a rotation leaves a journal that recovers every order."""

    @staticmethod
    def journal_with_rotations(path: Path) -> Desk:
        desk = Desk(path)
        working_mix(desk)
        desk.filler(10)
        desk.journal.close()
        return desk

    @staticmethod
    def cut_newest_checkpoint(path: Path, keep_lines: int, torn: bytes = b"") -> Path:
        """Leave the newest segment as a crash would: its first `keep_lines` lines, then a
        torn line."""
        newest = segment_files(path)[-1]
        lines = newest.read_bytes().splitlines(keepends=True)
        newest.write_bytes(b"".join(lines[:keep_lines]) + torn)
        return newest

    def continue_and_check(self, path: Path) -> None:
        """The next start recovers and trades on in the same segment, then rotates again;
        every order is still right at each step."""
        recovered = assert_recovery_agrees(path)
        same_segment = Desk(path, segment_bytes=64 * 1024 * 1024)
        same_segment.adopt(same_segment.journal.recover_orders())
        same_segment.orders["asked"].cancel("asked")
        same_segment.place("new")
        same_segment.journal.close()
        assert_recovery_agrees(path)
        desk = Desk(path)
        desk.adopt(desk.journal.recover_orders())
        desk.orders["submitted"].fill("x-after-crash", 1, "100")
        desk.filler(8, prefix="after")
        desk.journal.close()
        again = assert_recovery_agrees(path)
        working = {cid for cid, order in recovered.items() if not order.is_terminal}
        assert working - {"asked"} <= set(again)
        assert again["submitted"].filled_quantity == D(1)
        assert again["new"].state is OrderState.PENDING

    def test_a_checkpoint_without_its_end_is_ignored(self, path: Path) -> None:
        self.journal_with_rotations(path)
        newest = segment_files(path)[-1]
        count = next(r["orders"] for r in lines_of(newest) if r["event"] == "checkpoint_end")
        self.cut_newest_checkpoint(path, keep_lines=count)  # every order, no end
        self.continue_and_check(path)

    def test_a_checkpoint_cut_mid_line_is_ignored(self, path: Path) -> None:
        self.journal_with_rotations(path)
        self.cut_newest_checkpoint(path, keep_lines=2, torn=b'{"v":1,"seq":99,"ts":"2026-')
        self.continue_and_check(path)

    def test_a_new_segment_left_empty_is_ignored(self, path: Path) -> None:
        self.journal_with_rotations(path)
        self.cut_newest_checkpoint(path, keep_lines=0)
        self.continue_and_check(path)

    def test_every_crash_point_of_a_rotation_recovers(self, path: Path) -> None:
        """The newest segment cut after each of its lines in turn."""
        self.journal_with_rotations(path)
        newest = segment_files(path)[-1]
        whole = newest.read_bytes()
        expected = AuditJournal.replay(path)
        lines = whole.splitlines(keepends=True)
        for keep in range(len(lines) + 1):
            newest.write_bytes(b"".join(lines[:keep]))
            recovered = assert_recovery_agrees(path)
            for cid, order in expected.items():
                if not order.is_terminal and cid in recovered:
                    assert recovered[cid].event_count <= order.event_count
        newest.write_bytes(whole)

    def test_a_sigkill_mid_rotation_leaves_a_journal_that_recovers(self, tmp_path: Path) -> None:
        """Children that rotate all the time, killed at seeded moments, batch after batch
        until a kill has landed inside a checkpoint (most batches need one)."""
        torn = 0
        for batch in range(CRASH_BATCHES):
            for path in kill_children(tmp_path, seeds=range(batch * 4, batch * 4 + 4)):
                newest = lines_of_tolerant(segment_files(path)[-1])
                torn += not any(r.get("event") == "checkpoint_end" for r in newest)
                self.recover_trade_and_check(path)
            if torn:
                break
        assert torn, f"in {CRASH_BATCHES} batches no kill landed inside a checkpoint"

    @staticmethod
    def recover_trade_and_check(path: Path) -> None:
        """Recovery agrees with the whole replay; the next start trades on and rotates from
        what the crash left, and still agrees."""
        assert_recovery_agrees(path)
        journal = AuditJournal(path, fsync="never", segment_bytes=1)
        recovered = journal.recover_orders()
        hooks = OrderHooks(on_event=(journal.record_event,))
        for order in recovered.values():
            order.attach_hooks(hooks)
        movable = [o for o in recovered.values() if not o.is_terminal and o.state != "pending"]
        for order in movable[:3]:
            order.cancel("after the crash")
        journal.close()
        assert_recovery_agrees(path)
        everything = AuditJournal.replay(path)
        for order in movable[:3]:
            assert everything[order.client_order_id].state is OrderState.CANCELLED


CRASH_BATCHES = 8


def kill_children(tmp_path: Path, seeds: range) -> list[Path]:
    """Run one `segment_crash_child` per seed (three of four rotating at every record), kill
    each with SIGKILL a seeded moment after it is ready; their journals."""
    children = []
    for seed in seeds:
        path = tmp_path / f"seed-{seed}" / "orders.jsonl"
        size = 4_000 if seed % 4 == 3 else 1  # 1: every record opens a segment
        command = [sys.executable, "-m", "tests.segment_crash_child", str(path), str(seed)]
        child = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [*command, str(size)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        children.append((seed, path, child))
    try:
        kills = []
        for seed, _, child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line == "ready\n", (seed, child.stderr.read() if child.stderr else "")
            kills.append((time.monotonic() + random.Random(seed).uniform(0.05, 0.3), child))
        for deadline, child in sorted(kills, key=lambda kill: kill[0]):
            time.sleep(max(0.0, deadline - time.monotonic()))
            child.send_signal(signal.SIGKILL)
    finally:
        for _, _, child in children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=10)
            for stream in (child.stdout, child.stderr):
                if stream is not None:
                    stream.close()
    for seed, path, child in children:
        assert child.returncode == -signal.SIGKILL, seed
        assert len(segment_files(path)) > 1, seed
    return [path for _, path, _ in children]


def lines_of_tolerant(path: Path) -> list[dict[str, Any]]:
    """The records of a file a kill may have torn at the end."""
    found = []
    for line in path.read_bytes().splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            break
    return found


class TestDamage:
    """What no crash can produce is refused, naming the file and line."""

    @staticmethod
    def rewrite(path: Path, line_no: int, change: dict[str, Any]) -> None:
        lines = path.read_text(encoding="utf-8").splitlines()
        record = json.loads(lines[line_no - 1])
        record.update(change)
        lines[line_no - 1] = json.dumps(record, separators=(",", ":"))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @staticmethod
    def swap_second_and_third(path: Path) -> Path:
        """Swap the contents of segments 2 and 3 (by renaming); the third segment's path."""
        files = segment_files(path)
        second, third = files[1], files[2]
        swap = second.with_name("swap")
        second.rename(swap)
        third.rename(second)
        swap.rename(third)
        return third

    @staticmethod
    def rotated(path: Path) -> Path:
        desk = Desk(path)
        working_mix(desk)
        desk.filler(10)
        desk.orders["submitted"].fill("x-s", 1, "100")
        desk.journal.close()
        return segment_files(path)[-1]

    def test_a_checkpoint_that_disagrees_with_its_history_is_refused(self, path: Path) -> None:
        newest = self.rotated(path)
        line = 1 + [r.get("client_order_id") for r in lines_of(newest)].index("asked")
        self.rewrite(newest, line, {"filled_quantity": "5"})
        with pytest.raises(JournalError, match=rf"{newest}:{line}: .*filled_quantity"):
            AuditJournal.replay(path, since_checkpoint=True)

    def test_an_impossible_history_in_a_checkpoint_is_refused(self, path: Path) -> None:
        newest = self.rotated(path)
        line = 1 + [r.get("client_order_id") for r in lines_of(newest)].index("asked")
        record = lines_of(newest)[line - 1]
        record["history"][1]["execution"]["quantity"] = "30"  # more than the order's 10
        self.rewrite(newest, line, {"history": record["history"]})
        with pytest.raises(JournalError, match=rf"{newest}:{line}: "):
            AuditJournal.replay(path, since_checkpoint=True)

    def test_a_checkpoint_missing_a_working_order_is_refused(self, path: Path) -> None:
        newest = self.rotated(path)
        lines = newest.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        drop = [r.get("client_order_id") for r in records].index("submitted")
        end = next(i for i, r in enumerate(records) if r["event"] == "checkpoint_end")
        records[end]["orders"] -= 1
        lines[end] = json.dumps(records[end], separators=(",", ":"))
        del lines[drop]
        newest.write_text("\n".join(lines) + "\n", encoding="utf-8")
        fill = next(i for i, r in enumerate(records) if r["event"] == "fill") + 1 - 1
        with pytest.raises(JournalError, match=rf"{newest}:{fill}: .*submitted.*checkpoint"):
            AuditJournal.replay(path, since_checkpoint=True)

    @pytest.mark.parametrize("cancelled", [False, True], ids=["filled", "cancelled-nothing-left"])
    def test_a_checkpoint_listing_a_final_order_is_refused(
        self, path: Path, cancelled: bool
    ) -> None:
        newest = self.rotated(path)
        line = 1 + [r.get("client_order_id") for r in lines_of(newest)].index("asked")
        record = lines_of(newest)[line - 1]
        history = record["history"]
        state = "partially_filled"
        if cancelled:
            history.append({**history[-1], "event": "cancel", "dest": "cancelled"})
            state = "cancelled"
        execution = {"id": "x-rest", "quantity": "7", "price": "99.5", "timestamp": None}
        history.append(
            {
                "event": "fill",
                "ts": history[-1]["ts"],
                "source": state,
                "dest": "cancelled" if cancelled else "filled",
                "execution": execution,
            }
        )
        self.rewrite(newest, line, {"history": history})
        with pytest.raises(JournalError, match=rf"{newest}:{line}: .*10 of 10 filled"):
            AuditJournal.replay(path, since_checkpoint=True)

    def test_a_checkpoint_end_that_miscounts_is_refused(self, path: Path) -> None:
        newest = self.rotated(path)
        end = 1 + [r["event"] for r in lines_of(newest)].index("checkpoint_end")
        self.rewrite(newest, end, {"orders": 1})
        with pytest.raises(JournalError, match=rf"{newest}:{end}: the checkpoint_end says"):
            AuditJournal.replay(path, since_checkpoint=True)

    def test_a_missing_segment_stops_replay_but_not_recovery(self, path: Path) -> None:
        self.rotated(path)
        files = segment_files(path)
        files[1].unlink()  # an operator archived it
        with pytest.raises(JournalError, match=rf"{files[1]}: segment 2 .* is missing"):
            AuditJournal.replay(path)
        recovered = AuditJournal.replay(path, since_checkpoint=True)
        assert recovered["submitted"].filled_quantity == D(1)

    def test_segments_out_of_order_are_refused(self, path: Path) -> None:
        self.rotated(path)
        self.swap_second_and_third(path)
        with pytest.raises(JournalError, match=r"out of order|before its intent"):
            AuditJournal.replay(path)

    def test_find_refuses_segments_out_of_order_too(self, path: Path) -> None:
        """Looking up one order still checks that each segment follows the one before, even
        segments that hold none of its records."""
        self.rotated(path)
        third = self.swap_second_and_third(path)
        with (
            AuditJournal(path, fsync="never") as journal,
            pytest.raises(JournalError, match=rf"{third}:1: seq .* out of order"),
        ):
            journal.find("pending")

    def test_an_event_of_a_working_order_the_checkpoint_lacks_is_refused(self, path: Path) -> None:
        """Recovery cannot rebuild an order from its later events alone: a checkpoint without
        one of the working orders is damage, named at the event; a full replay still has it."""
        newest = self.rotated(path)
        rows = lines_of(newest)
        del rows[[r.get("client_order_id") for r in rows].index("submitted")]
        end = next(r for r in rows if r["event"] == "checkpoint_end")
        end["orders"] -= 1
        newest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        fill = 1 + [(r["event"], r.get("client_order_id")) for r in rows].index(
            ("fill", "submitted")
        )
        with pytest.raises(JournalError, match=rf"{newest}:{fill}: .*lacks a working order"):
            AuditJournal.replay(path, since_checkpoint=True)
        assert AuditJournal.replay(path)["submitted"].filled_quantity == D(1)

    def test_a_segment_whose_sequence_goes_back_is_refused(self, path: Path) -> None:
        newest = self.rotated(path)
        self.rewrite(newest, 1, {"seq": 3})  # a segment copied from elsewhere
        with pytest.raises(JournalError, match=rf"{newest}:1: seq 3 does not follow"):
            AuditJournal.replay(path)


class TestUnusualContent:
    """Text orjson cannot encode, and a journal whose own records cannot be read back."""

    def test_a_lone_surrogate_in_a_checkpointed_order_round_trips(self, path: Path) -> None:
        desk = Desk(path, segment_bytes=1)
        order = desk.place("c-1")
        odd = "b-\udcff"  # a broker id decoded with surrogateescape
        order.submit(odd)
        order.fill("x-\udc80", 2, "100")
        order.request_cancel()  # its record opens a segment whose checkpoint holds both
        desk.journal.close()
        recovered = AuditJournal.replay(path, since_checkpoint=True)["c-1"]
        assert order_view(recovered) == order_view(order)
        assert recovered.broker_order_id == odd

    def test_a_journal_that_cannot_be_read_back_stays_in_its_segment_and_says_why(
        self, path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        desk = Desk(path, segment_bytes=64 * 1024 * 1024)
        order = desk.place("c-1", quantity=100)
        order.submit("b-1")
        desk.journal.close()
        TestDamage.rewrite(path, 2, {"source": "partially_filled"})  # no order was there
        again = Desk(path)  # small segments: its first rotation must read the files
        order.attach_hooks(again.hooks)
        with caplog.at_level("ERROR", logger="orders.audit"):
            for n in range(20):
                order.fill(f"x-{n}", 1, "100")
        again.journal.close()
        assert segment_files(path) == [path]
        assert len(lines_of(path)) == 22  # every record written, none lost
        assert "journal_segment_not_opened" in caplog.text
        assert f"{path}:2" in caplog.text
        with pytest.raises(JournalError, match=rf"{path}:2: "):
            AuditJournal.replay(path, since_checkpoint=True)


class TestFilesAreOnlyAppended:
    """No segment is renamed, rewritten or deleted, whatever the journal does."""

    def test_rotation_and_restarts_only_add_files_and_append(self, path: Path) -> None:
        desk = Desk(path)
        working_mix(desk)
        desk.filler(6)
        before = {f.name: (f.stat().st_ino, f.read_bytes()) for f in path.parent.iterdir()}
        desk.filler(6, prefix="more")
        desk.journal.close()
        again = Desk(path)
        again.adopt(again.journal.recover_orders())
        again.filler(6, prefix="after")
        again.journal.close()
        AuditJournal.replay(path)
        after = {f.name: (f.stat().st_ino, f.read_bytes()) for f in path.parent.iterdir()}
        assert set(before) < set(after)
        for name, (inode, content) in before.items():
            assert after[name][0] == inode, name
            assert after[name][1].startswith(content), name


class TestMovedAndFullDisk:
    """The moved-file check and the full-disk queue work on the active segment."""

    def test_an_intent_after_the_active_segment_was_moved_is_refused(self, path: Path) -> None:
        desk = Desk(path)
        desk.filler(6)
        active = desk.journal.segment
        assert active != path
        moved = active.with_name("elsewhere.jsonl")
        active.rename(moved)
        with pytest.raises(JournalError, match=rf"{active}: the journal file was moved"):
            desk.place("refused")
        moved.rename(active)
        desk.place("accepted")
        desk.journal.close()
        assert "accepted" in AuditJournal.replay(path)
        assert "refused" not in AuditJournal.replay(path)

    def test_reopen_continues_the_active_segment_put_back_as_a_copy(self, path: Path) -> None:
        desk = Desk(path)
        desk.filler(6)
        order = desk.place("c-1")
        active = desk.journal.segment
        moved = active.with_name("elsewhere.jsonl")
        active.rename(moved)
        shutil.copyfile(moved, active)  # another file at the path: intents are refused
        with pytest.raises(JournalError, match="another file is at the path"):
            desk.place("refused")
        desk.journal.reopen()
        order.submit("b-1")
        desk.place("accepted")
        desk.journal.close()
        rebuilt = AuditJournal.replay(path)
        assert rebuilt["c-1"].broker_order_id == "b-1"
        assert "accepted" in rebuilt
        assert AuditJournal.replay(path, since_checkpoint=True)["c-1"].state == "submitted"

    def test_reopen_refuses_when_a_newer_segment_appeared(self, path: Path) -> None:
        desk = Desk(path)
        desk.filler(6)
        active = desk.journal.segment
        number = int(active.name.split(".")[1])
        active.unlink()
        active.touch()
        newer = active.with_name(f"orders.{number + 1:06d}.jsonl")
        newer.touch()  # as if another process had rotated this journal
        with pytest.raises(JournalError, match="another process writes this journal"):
            desk.journal.reopen()
        desk.journal.close()

    @pytest.mark.parametrize("how", ["deleted", "replaced"])
    def test_no_rotation_while_the_active_segment_is_detached(self, path: Path, how: str) -> None:
        """Events go on to the detached file, as before segments; a new segment would let
        intents through while the records before it are missing from the directory."""
        desk = Desk(path)
        orders = [desk.place(f"w-{n}", quantity=100) for n in range(4)]
        for order in orders:
            order.submit(f"b-{order.client_order_id}")
        desk.filler(6)
        active = desk.journal.segment
        files = segment_files(path)
        active.unlink()
        if how == "replaced":  # logrotate's way: a new empty file at the path
            active.touch()
        for n in range(40):  # several segments' worth of events
            orders[n % 4].fill(f"x-{n}", 1, "100")
        assert segment_files(path) == files if how == "replaced" else files[:-1]
        assert desk.journal.segment == active
        desk.journal.close()

    def test_a_record_half_written_by_a_filling_disk_is_finished_in_its_own_segment(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A segment never ends in half a line: the next segment opens only once every
        record waiting for the disk is whole in the one it began in."""
        desk = Desk(path, segment_bytes=64 * 1024 * 1024)
        order = desk.place("busy", quantity=100)
        order.submit("b-busy")
        disk = PartialDisk(desk.journal, monkeypatch, room=40)
        order.fill("x-1", 1, "100")  # 40 bytes of it reach the file
        assert desk.journal.unwritten == 1
        desk.journal.segment_bytes = 1  # the active segment is now past its size
        disk.room = None
        order.fill("x-2", 1, "100")  # completes x-1, then itself, in the first segment
        order.fill("x-3", 1, "100")  # opens segment 2
        desk.journal.close()
        first, second = segment_files(path)
        assert [r["event"] for r in lines_of(first)][-2:] == ["fill", "fill"]
        assert [r["event"] for r in lines_of(second)] == ["checkpoint", "checkpoint_end", "fill"]
        assert AuditJournal.replay(path)["busy"].filled_quantity == D(3)
        assert_recovery_agrees(path)

    def test_a_full_disk_at_rotation_loses_and_reorders_nothing(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The disk fills just as a segment opens: its checkpoint and every record after it
        wait, in order, and are written once the disk has room."""
        disk = FillingDisk()
        monkeypatch.setattr("orders.audit.create_segment", disk.create)
        errors: list[Exception] = []
        desk = Desk(path)
        desk.hooks = OrderHooks(
            on_event=(desk.journal.record_event,),
            on_error=lambda _observer, _order, _event, error: errors.append(error),
        )
        working = working_mix(desk)
        busy = desk.place("busy", quantity=1000)
        busy.submit("b-busy")
        desk.filler(3)
        disk.full_from_next_segment = True
        first = desk.journal.segment
        n = 0
        while desk.journal.segment == first:
            n += 1
            busy.fill(f"x-{n}", 1, "100")
        for _ in range(5):
            n += 1
            busy.fill(f"x-{n}", 1, "100")
        assert desk.journal.unwritten > 5  # the checkpoint, then the fills
        assert errors, "a refused event reaches the hook error handler"
        assert all(isinstance(e, JournalWriteError) for e in errors)
        with pytest.raises(JournalWriteError):
            desk.place("never-sent")  # no intent while records wait
        disk.full = False
        desk.journal.flush()
        assert desk.journal.unwritten == 0
        desk.filler(3, prefix="after")
        desk.journal.close()
        files = segment_files(path)
        seqs = [r["seq"] for f in files for r in lines_of(f)]
        assert seqs == list(range(1, len(seqs) + 1))
        recovered = assert_recovery_agrees(path)
        for order in [*working, busy]:
            assert order_view(recovered[order.client_order_id]) == order_view(order)
        assert busy.filled_quantity == D(n)
        assert "never-sent" not in AuditJournal.replay(path)


class PartialDisk:
    """The active file of `journal` takes `room` more bytes, then refuses (None: no limit)."""

    def __init__(self, journal: AuditJournal, monkeypatch: pytest.MonkeyPatch, room: int) -> None:
        self.real = journal._writer.file
        self.room: int | None = room
        monkeypatch.setattr(journal._writer, "file", self)

    def write(self, data: bytes | memoryview) -> int:
        if self.room is None:
            written: int = self.real.write(data)
            return written
        if self.room == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        taken = bytes(data[: self.room])
        self.room -= len(taken)
        written = self.real.write(taken)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class FillingDisk:
    """Creates segments; once `full_from_next_segment` is set, the next one created fills
    the disk: writes fail with ENOSPC until `full` is cleared."""

    def __init__(self) -> None:
        self.full = False
        self.full_from_next_segment = False

    def create(self, target: Path) -> Any:
        if self.full_from_next_segment:
            self.full, self.full_from_next_segment = True, False
        return _RefusingFile(io.FileIO(target, "xb"), self)


class _RefusingFile:
    def __init__(self, real: Any, disk: FillingDisk) -> None:
        self.real = real
        self.disk = disk

    def write(self, data: bytes | memoryview) -> int:
        if self.disk.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written: int = self.real.write(data)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class TestManagerOverSegments:
    """A manager whose journal rotates recovers every working order after a restart."""

    def test_recover_brings_back_working_orders_from_a_segmented_journal(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "orders.jsonl"
        config = OrderManagementConfig.from_dict({"journal_segment_bytes": 2_000, "fsync": "never"})
        broker = PaperBroker(liquidity="2")
        for symbol in ("AAPL", "MSFT", "IBM"):
            broker.set_quote(symbol, "100")
        journal = AuditJournal(path, fsync="never", segment_bytes=2_000)
        manager = OrderManager(broker, config=config, journal=journal)
        resting = manager.submit(OrderRequest("IBM", "buy", "5", "90"))  # below the quote
        for _ in range(8):
            order = manager.submit(OrderRequest("AAPL", "buy", "4", "100"))
            while not order.is_terminal:
                broker.match()
                manager.sync()
        partial = manager.submit(OrderRequest("MSFT", "buy", "6", "100"))
        broker.match()
        manager.sync()
        manager.journal.close()
        assert len(segment_files(path)) > 2
        recovered = AuditJournal.replay(path, since_checkpoint=True)
        assert order_view(recovered[resting.client_order_id]) == order_view(resting)
        assert order_view(recovered[partial.client_order_id]) == order_view(partial)
        assert partial.filled_quantity == D(2)

    def test_a_late_fill_on_an_order_cancelled_before_a_rotation_is_booked_after_a_restart(
        self, tmp_path: Path
    ) -> None:
        """The fill that raced a cancel lands while the bot is down, after the journal moved to
        a new segment: the restart rebuilds the cancelled order from the checkpoint and books
        it there, instead of reporting an order it does not know."""
        path = tmp_path / "orders.jsonl"
        clock = ManualUtcClock()
        broker = PaperBroker(quotes={"AAPL": "101", "MSFT": "101"}, clock=clock)
        config = {
            "journal_segment_bytes": 2_000,
            "fsync": "never",
            "unknown_order_grace_seconds": 0,
        }

        def journal() -> AuditJournal:
            return AuditJournal(path, fsync="never", clock=clock, segment_bytes=2_000)

        desk = make_desk(tmp_path, broker=broker, config=config, clock=clock, journal=journal())
        order = desk.manager.submit(OrderRequest("AAPL", "buy", "10", "100"))
        broker.inject(Fault.LATE_FILL_AFTER_CANCEL)
        desk.manager.cancel(order.client_order_id)
        desk.manager.sync()
        assert (order.state, order.filled_quantity) == (OrderState.CANCELLED, D(0))
        cancelled_in = desk.manager.journal.segment
        while desk.manager.journal.segment == cancelled_in:  # trade on until a segment opens
            clock.advance(60)
            other = desk.manager.submit(OrderRequest("MSFT", "buy", "1", "100"))
            desk.manager.cancel(other.client_order_id)
            desk.manager.sync()
        desk.manager.journal.close()
        assert order.client_order_id in checkpointed(path)

        clock.advance(30)
        broker.match()  # the fill that raced the cancel lands while the bot is down
        clock.advance(600)
        restarted = make_desk(
            tmp_path, broker=broker, config=config, clock=clock, journal=journal()
        )
        report = restarted.manager.recover()
        assert report.errors == ()
        assert [(cid, e.trigger) for cid, e in report.events] == [(order.client_order_id, "fill")]
        again = restarted.manager.get(order.client_order_id)
        assert again is not None
        assert (again.state, again.filled_quantity) == (OrderState.CANCELLED, D(10))
        restarted.manager.journal.close()
        assert AuditJournal.replay(path)[order.client_order_id].filled_quantity == D(10)
        assert assert_recovery_agrees(path)[order.client_order_id].filled_quantity == D(10)
