"""AuditJournal under faults: impossible records, unencodable broker text, a full disk, and a
journal file moved away while open. Each class is one way a restart could trade on a state
that never happened (or miss an order that exists), and what the journal does instead."""

from __future__ import annotations

import errno
import json
import os
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from orders import (
    AuditJournal,
    JournalError,
    LifecycleEvent,
    Order,
    OrderHooks,
    OrderRequest,
    OrderState,
    PaperBroker,
)
from orders.audit import JournalWriteError
from orders.cli import main as cli_main
from tests.factories import Ticker, journal_records, make_desk

D = Decimal
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


class HookErrors:
    """An `on_error` handler that keeps what each failing observer raised."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []

    def __call__(
        self, observer: object, order: Order, event: LifecycleEvent, error: Exception
    ) -> None:
        self.errors.append(error)


def journaled_order(
    journal: AuditJournal,
    cid: str = "c-1",
    *,
    quantity: str = "10",
    symbol: str = "AAPL",
    on_error: HookErrors | None = None,
) -> Order:
    """A pending order whose events go to `journal`, its intent already written."""
    hooks = OrderHooks(on_event=(journal.record_event,))
    if on_error is not None:
        hooks = OrderHooks(on_event=(journal.record_event,), on_error=on_error)
    order = Order(
        symbol, "buy", quantity, "100.25", client_order_id=cid, clock=Ticker(), hooks=hooks
    )
    journal.record_intent(order)
    return order


def rewrite(path: Path, line_no: int, change: dict[str, Any]) -> None:
    """Edit one record of a journal (keys ``execution.x`` reach into the execution)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[line_no - 1])
    for key, value in change.items():
        if key.startswith("execution."):
            record["execution"][key.removeprefix("execution.")] = value
        else:
            record[key] = value
    lines[line_no - 1] = json.dumps(record, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def history(order: Order) -> list[tuple[str, str, str]]:
    return [(e.trigger, str(e.source), str(e.dest)) for e in order.history]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "orders.jsonl"


# -- 1. impossible records ---------------------------------------------------------------------


class TestImpossibleRecords:
    """Replay refuses, naming file and line, any record no real order could have written."""

    @staticmethod
    def filled_in_one(path: Path) -> None:
        """Line 1 intent (10 shares), line 2 submit, line 3 one fill of all 10."""
        with AuditJournal(path) as journal:
            order = journaled_order(journal)
            order.submit("b-1")
            order.fill("e-1", "10", "100", T0)

    @pytest.mark.parametrize("source", [None, "", "filled", "pending"])
    def test_a_fill_must_start_from_the_orders_state(self, path: Path, source: Any) -> None:
        self.filled_in_one(path)
        rewrite(path, 3, {"source": source})
        with pytest.raises(JournalError, match=rf"{path}:3: .*starts from {source}, but"):
            AuditJournal.replay(path)

    def test_an_amount_is_checked_in_each_field_it_comes_in(self, path: Path) -> None:
        """Replay remembers the amounts it found sound by their text (see _replay_apply): an
        infinite quantity passes its own check (the overfill refuses it), but is no price."""
        with AuditJournal(path) as journal:
            order = journaled_order(journal)
            order.submit("b-1")
            order.fill("e-1", "4", "100", T0)
        AuditJournal.replay(path)
        rewrite(path, 3, {"execution.quantity": "Infinity"})
        with pytest.raises(JournalError, match=rf"{path}:3: .*exceed the order quantity"):
            AuditJournal.replay(path)
        rewrite(path, 3, {"execution.quantity": "4", "execution.price": "Infinity"})
        for _ in range(2):
            with pytest.raises(JournalError, match=rf"{path}:3: .*at price Infinity"):
                AuditJournal.replay(path)

    def test_a_filled_order_short_of_its_quantity_is_refused(self, path: Path) -> None:
        self.filled_in_one(path)
        rewrite(path, 3, {"execution.quantity": "9"})  # says filled, with 9 of 10
        with pytest.raises(JournalError, match=rf"{path}:3: .*filled.* 9 of 10"):
            AuditJournal.replay(path)

    def test_a_fill_that_completes_the_order_cannot_leave_it_partially_filled(
        self, path: Path
    ) -> None:
        self.filled_in_one(path)
        rewrite(path, 3, {"dest": "partially_filled"})
        with pytest.raises(JournalError, match=rf"{path}:3: .*can only reach filled"):
            AuditJournal.replay(path)

    def test_a_cancel_cannot_end_filled(self, path: Path) -> None:
        with AuditJournal(path) as journal:
            order = journaled_order(journal)
            order.submit("b-1")
            order.cancel("user asked")
        rewrite(path, 3, {"dest": "filled"})
        with pytest.raises(JournalError, match=rf"{path}:3: .*can only reach cancelled"):
            AuditJournal.replay(path)

    def test_a_submit_cannot_skip_to_filled(self, path: Path) -> None:
        with AuditJournal(path) as journal:
            journaled_order(journal).submit("b-1")
        rewrite(path, 2, {"dest": "filled"})
        with pytest.raises(JournalError, match=rf"{path}:2: .*can only reach submitted"):
            AuditJournal.replay(path)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("execution.quantity", "0"),
            ("execution.quantity", "-1"),
            ("execution.quantity", "NaN"),
            ("execution.price", "0"),
            ("execution.price", "-100"),
            ("execution.price", "Infinity"),
            ("execution.price", "NaN"),
        ],
    )
    def test_fill_amounts_must_be_positive(self, path: Path, field: str, value: str) -> None:
        with AuditJournal(path) as journal:
            order = journaled_order(journal)
            order.submit("b-1")
            order.fill("e-1", "4", "100", T0)
        rewrite(path, 3, {field: value})
        with pytest.raises(JournalError, match=rf"{path}:3: "):
            AuditJournal.replay(path)

    @pytest.mark.parametrize(
        ("line_no", "field"),
        [(1, "ts"), (2, "ts"), (3, "ts"), (3, "execution.timestamp")],
    )
    def test_a_time_without_offset_is_refused(self, path: Path, line_no: int, field: str) -> None:
        with AuditJournal(path) as journal:
            order = journaled_order(journal)
            order.submit("b-1")
            order.fill("e-1", "4", "100", T0)
        rewrite(path, line_no, {field: "2026-03-02T14:30:05"})
        with pytest.raises(JournalError, match=rf"{path}:{line_no}: .*no UTC offset"):
            AuditJournal.replay(path)

    def test_recover_reports_a_naive_time_as_a_journal_error(self, tmp_path: Path) -> None:
        """Before, this was a bare TypeError from deep inside recovery."""
        desk = make_desk(tmp_path)
        order = desk.manager.submit(OrderRequest("AAPL", "buy", "10", "100"))
        desk.manager.journal.close()
        lines = desk.journal_path.read_text(encoding="utf-8").splitlines()
        assert order.broker_order_id is not None
        rewrite(desk.journal_path, len(lines), {"ts": "2026-03-02T14:30:05"})
        again = make_desk(tmp_path, broker=desk.broker)
        with pytest.raises(JournalError, match=rf":{len(lines)}: .*no UTC offset"):
            again.manager.recover()

    def test_orders_stats_says_which_line_instead_of_a_traceback(
        self, path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with AuditJournal(path) as journal:
            order = journaled_order(journal)
            order.submit("b-1")
            order.fill("e-1", "10", "100", T0)
        rewrite(path, 3, {"ts": "2026-03-02T14:30:05"})
        assert cli_main(["stats", str(path)]) == 1
        assert f"{path}:3: " in capsys.readouterr().err

    def test_a_torn_last_line_is_still_tolerated(self, path: Path) -> None:
        self.filled_in_one(path)
        with path.open("ab") as handle:
            handle.write(b'{"v":1,"seq":4,"ts":"2026-03-02T14:3')
        assert AuditJournal.replay(path)["c-1"].state is OrderState.FILLED

    def test_a_sound_journal_still_replays_every_kind_of_move(self, path: Path) -> None:
        with AuditJournal(path) as journal:
            late = journaled_order(journal, "late")
            late.submit("b-1")
            late.fill("e-1", "4", "100", T0)
            late.request_cancel()
            late.cancel_rejected("too late")
            late.request_cancel()
            late.cancel("asked")
            late.fill("e-2", "6", "100")  # a late fill: stays cancelled, even when complete
            refused = journaled_order(journal, "refused", symbol="MSFT")
            refused.reject("no buying power")
        rebuilt = AuditJournal.replay(path)
        assert history(rebuilt["late"]) == history(late)
        assert rebuilt["late"].filled_quantity == D("10")
        assert rebuilt["late"].state is OrderState.CANCELLED
        assert rebuilt["refused"].state is OrderState.REJECTED


# -- 2. text orjson cannot encode -----------------------------------------------------------


class TestUnencodableBrokerText:
    """Broker text with a lone surrogate is journaled exactly, and the journal replays."""

    def test_lone_surrogates_in_ids_and_reason_round_trip(self, path: Path) -> None:
        errors = HookErrors()
        journal = AuditJournal(path)
        order = journaled_order(journal, on_error=errors)
        order.submit("b-\ud800")
        order.fill("e-\udcff", "4", "100", T0)
        order.request_cancel()
        order.cancel("broker said \udc80")
        journal.close()
        assert errors.errors == []
        assert len(journal_records(path)) == 5

        again = AuditJournal(path)  # the next start opens the same file ...
        again.record_note(order, "anomaly", "after the restart")
        again.close()
        assert [r["seq"] for r in journal_records(path)] == [1, 2, 3, 4, 5, 6]
        rebuilt = AuditJournal.replay(path)["c-1"]  # ... and replays it
        assert rebuilt.broker_order_id == "b-\ud800"  # exactly, so it still matches the broker
        assert rebuilt.executions == order.executions
        assert rebuilt.reason == "broker said \udc80"
        assert rebuilt.state is OrderState.CANCELLED
        assert rebuilt.history == order.history

    def test_other_text_keeps_its_utf8_form(self, path: Path) -> None:
        with AuditJournal(path) as journal:
            journaled_order(journal).submit("b-é")
        assert "b-é" in path.read_text(encoding="utf-8")

    def test_an_escaped_line_that_is_damaged_is_still_refused(self, path: Path) -> None:
        with AuditJournal(path) as journal:
            order = journaled_order(journal)
            order.submit("b-\ud800")
            order.fill("e-1", "10", "100")
        lines = path.read_bytes().split(b"\n")
        lines[1] = lines[1][:-3]
        path.write_bytes(b"\n".join(lines))
        with pytest.raises(JournalError, match=rf"{path}:2: unreadable"):
            AuditJournal.replay(path)


# -- 3. a full disk --------------------------------------------------------------------------


class FullDisk:
    """Stands in for the journal's open file: while `room` is not None, takes only that many
    more bytes (a short write), then refuses with ENOSPC, as a filling disk does."""

    def __init__(self, journal: AuditJournal, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = journal._writer.file
        self.room: int | None = None
        self.refused = 0
        monkeypatch.setattr(journal._writer, "file", self)

    def fill_up(self, room: int = 0) -> None:
        self.room = room

    def free(self) -> None:
        self.room = None

    def write(self, data: bytes | memoryview) -> int:
        if self.room is None:
            return self.real.write(data)
        if self.room == 0:
            self.refused += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        taken = bytes(data[: self.room])
        self.room -= len(taken)
        return self.real.write(taken)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class TestFullDisk:
    """No record is dropped or reordered; failures are loud; intents are never deferred."""

    def test_fills_refused_by_a_full_disk_replay_once_it_has_room(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        errors = HookErrors()
        journal = AuditJournal(path)
        disk = FullDisk(journal, monkeypatch)
        order = journaled_order(journal, quantity="30", on_error=errors)
        order.submit("b-1")
        for n in range(1, 31):
            if n == 5:
                disk.fill_up(room=100)  # the 5th record lands half-written, then ENOSPC
            if n == 27:
                disk.free()
            order.fill(f"e-{n}", "1", "100")
            if 5 <= n < 27:
                assert journal.unwritten > 0
        assert disk.refused > 0
        assert journal.unwritten == 0
        assert errors.errors, "a write the disk refused must reach the hook error handler"
        assert all(isinstance(error, JournalError) for error in errors.errors)
        assert "wait in memory" in str(errors.errors[0])
        journal.close()

        records = journal_records(path)
        assert [r["seq"] for r in records] == list(range(1, 33))
        rebuilt = AuditJournal.replay(path)["c-1"]
        assert rebuilt.state is OrderState.FILLED
        assert rebuilt.filled_quantity == D("30")
        assert rebuilt.executions == order.executions

    def test_flush_catches_up_without_a_new_record(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        journal = AuditJournal(path)
        disk = FullDisk(journal, monkeypatch)
        order = journaled_order(journal, on_error=HookErrors())
        disk.fill_up()
        order.submit("b-1")
        order.fill("e-1", "4", "100")
        assert journal.unwritten == 2
        with pytest.raises(JournalWriteError):
            journal.flush()
        assert journal.unwritten == 2
        disk.free()
        journal.flush()
        assert journal.unwritten == 0
        assert [r["event"] for r in journal_records(path)] == ["intent", "submit", "fill"]

    def test_close_does_not_drop_kept_records(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        journal = AuditJournal(path)
        disk = FullDisk(journal, monkeypatch)
        order = journaled_order(journal, on_error=HookErrors())
        disk.fill_up()
        order.submit("b-1")
        with pytest.raises(JournalWriteError):
            journal.close()
        disk.free()
        journal.close()
        assert AuditJournal.replay(path)["c-1"].state is OrderState.SUBMITTED

    def test_an_intent_the_disk_refuses_raises_and_never_appears(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        journal = AuditJournal(path)
        disk = FullDisk(journal, monkeypatch)
        first = journaled_order(journal, "c-1", on_error=HookErrors())
        disk.fill_up()
        first.submit("b-1")  # kept
        with pytest.raises(JournalWriteError, match="must not be sent"):
            journaled_order(journal, "c-2", symbol="MSFT")
        assert journal.unwritten == 1  # the refused intent is not kept for later
        disk.free()
        journal.record_note(first, "anomaly", "the disk is back")
        journal.close()
        records = journal_records(path)
        assert [(r["event"], r["client_order_id"]) for r in records] == [
            ("intent", "c-1"),
            ("submit", "c-1"),
            ("anomaly", "c-1"),
        ]
        assert [r["seq"] for r in records] == [1, 2, 3]

    def test_an_intent_refused_with_nothing_waiting_is_dropped_and_gives_its_seq_back(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The usual case: the disk fills between two orders, with no record waiting."""
        journal = AuditJournal(path)
        disk = FullDisk(journal, monkeypatch)
        disk.fill_up()
        with pytest.raises(JournalWriteError, match="must not be sent"):
            journaled_order(journal, "c-1")
        assert journal.unwritten == 0  # never kept: the order it describes is never sent
        disk.free()
        journaled_order(journal, "c-2", symbol="MSFT")
        journal.close()
        records = journal_records(path)
        assert [(r["event"], r["client_order_id"], r["seq"]) for r in records] == [
            ("intent", "c-2", 1)
        ]

    def test_records_the_disk_takes_in_pieces_are_completed_at_once(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A short write that is not a failure (the disk took part, then takes the rest): the
        record is finished before the call returns, and nothing is left waiting."""
        journal = AuditJournal(path)
        real = journal._writer.file
        pieces: list[int] = []

        class ShortWrites:
            def write(self, data: bytes | memoryview) -> int:
                pieces.append(len(data))
                return real.write(bytes(data[:64]))

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        monkeypatch.setattr(journal._writer, "file", ShortWrites())
        order = journaled_order(journal)
        order.submit("b-1")
        assert journal.unwritten == 0
        order.fill("e-1", "10", "100")
        assert journal.unwritten == 0
        journal.close()
        assert len(pieces) > 3 * 3  # every record took several writes
        assert [r["seq"] for r in journal_records(path)] == [1, 2, 3]
        assert AuditJournal.replay(path)["c-1"].state is OrderState.FILLED

    def test_a_partly_written_intent_is_completed_but_still_refused(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Half a line is already in the file: dropping the rest would damage the journal."""
        journal = AuditJournal(path)
        disk = FullDisk(journal, monkeypatch)
        disk.fill_up(room=40)
        with pytest.raises(JournalWriteError, match=r"partly written.*must not be sent"):
            journaled_order(journal)
        assert journal.unwritten == 1
        disk.free()
        journal.flush()
        journal.close()
        (intent,) = journal_records(path)
        assert (intent["event"], intent["seq"]) == ("intent", 1)
        assert AuditJournal.replay(path)["c-1"].state is OrderState.PENDING

    def test_a_refused_write_is_a_journal_error_and_an_os_error(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """JournalError for the hook reporting; OSError for callers that caught it before."""
        journal = AuditJournal(path)
        order = journaled_order(journal)
        FullDisk(journal, monkeypatch).fill_up()
        with pytest.raises(JournalWriteError) as caught:
            journal.record_note(order, "anomaly", "x")
        assert isinstance(caught.value, JournalError)
        assert isinstance(caught.value, OSError)

    def test_an_intent_that_cannot_be_forced_to_disk_raises(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        journal = AuditJournal(path)

        def no_space(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr("orders.audit.os.fsync", no_space)
        with pytest.raises(JournalWriteError, match="could not be forced to disk"):
            journaled_order(journal)

    def test_the_manager_reports_it_refuses_new_orders_and_recovers_every_share(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        desk = make_desk(tmp_path, broker=PaperBroker(liquidity="1"))
        desk.broker.set_quote("AAPL", "100")
        disk = FullDisk(desk.manager.journal, monkeypatch)
        order = desk.manager.submit(OrderRequest("AAPL", "buy", "30", "100"))
        errors: list[str] = []
        for n in range(1, 31):
            if n == 5:
                disk.fill_up()
            if n == 27:
                disk.free()
            desk.broker.match()
            errors.extend(desk.manager.sync().errors)
            if n == 10:  # nothing is sent while the journal cannot take the intent
                sent = desk.spy.count("submit_limit")
                with pytest.raises(JournalWriteError):
                    desk.manager.submit(OrderRequest("MSFT", "buy", "1", "100"))
                assert desk.spy.count("submit_limit") == sent
        assert order.filled_quantity == D("30")

        desk.manager.journal.close()
        again = make_desk(tmp_path, broker=desk.broker)  # the next start
        again.manager.recover()
        back = again.manager.get(order.client_order_id)
        assert back is not None
        assert back.state is OrderState.FILLED
        assert back.filled_quantity == D("30")
        assert back.executions == order.executions
        # Each refused write was reported through the manager's hook-failure reporting.
        assert any("JournalWriteError" in error for error in errors)


# -- 4. the journal file moved away while open ----------------------------------------------


class TestMovedJournal:
    """An intent is written only to the file at the configured path, or refused."""

    def test_an_intent_after_the_file_was_renamed_is_refused(self, path: Path) -> None:
        journal = AuditJournal(path)
        journaled_order(journal, "c-1")
        moved = path.with_name("orders.jsonl.1")
        path.rename(moved)
        with pytest.raises(JournalError, match="moved or") as caught:
            journaled_order(journal, "c-2", symbol="MSFT")
        assert not isinstance(caught.value, OSError)  # not a write failure: nothing to retry
        assert "restart" in str(caught.value)
        assert "reopen()" in str(caught.value)
        journal.close()
        assert [r["client_order_id"] for r in journal_records(moved)] == ["c-1"]
        assert not path.exists()

    def test_an_intent_after_the_file_was_deleted_is_refused(self, path: Path) -> None:
        journal = AuditJournal(path)
        journaled_order(journal, "c-1")
        path.unlink()
        with pytest.raises(JournalError, match=r"moved or deleted while open \(nothing is at"):
            journaled_order(journal, "c-2", symbol="MSFT")
        assert journal.unwritten == 0
        journal.close()

    def test_an_intent_after_rotation_is_refused(self, path: Path) -> None:
        """logrotate's default: rename the file away and create an empty one at the path."""
        journal = AuditJournal(path)
        journaled_order(journal, "c-1")
        path.rename(path.with_name("orders.jsonl.1"))
        path.touch()
        with pytest.raises(JournalError, match="another file is at the path"):
            journaled_order(journal, "c-2", symbol="MSFT")
        journal.close()
        assert path.read_bytes() == b""

    def test_moving_it_back_makes_intents_possible_again(self, path: Path) -> None:
        journal = AuditJournal(path)
        journaled_order(journal, "c-1")
        moved = path.with_name("orders.jsonl.1")
        path.rename(moved)
        with pytest.raises(JournalError):
            journaled_order(journal, "c-2", symbol="MSFT")
        moved.rename(path)
        journaled_order(journal, "c-2", symbol="MSFT")
        journal.close()
        assert list(AuditJournal.replay(path)) == ["c-1", "c-2"]

    def test_reopen_writes_to_the_journal_restored_at_the_path(self, path: Path) -> None:
        journal = AuditJournal(path)
        first = journaled_order(journal, "c-1")
        first.submit("b-1")
        moved = path.with_name("orders.jsonl.1")
        path.rename(moved)
        shutil.copyfile(moved, path)  # restored as a copy: another file at the path
        with pytest.raises(JournalError):
            journaled_order(journal, "c-2", symbol="MSFT")
        journal.reopen()
        journaled_order(journal, "c-2", symbol="MSFT")
        first.fill("e-1", "10", "100")
        journal.close()
        assert [r["seq"] for r in journal_records(path)] == [1, 2, 3, 4]
        rebuilt = AuditJournal.replay(path)
        assert rebuilt["c-1"].state is OrderState.FILLED
        assert rebuilt["c-2"].state is OrderState.PENDING

    def test_reopen_refuses_when_nothing_is_at_the_path(self, path: Path) -> None:
        journal = AuditJournal(path)
        journaled_order(journal)
        path.unlink()
        with pytest.raises(JournalError, match="no journal file to reopen"):
            journal.reopen()
        assert not path.exists()
        journal.close()

    def test_one_stat_per_intent_and_none_per_event(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        journal = AuditJournal(path)
        stats: list[object] = []
        real_stat = os.stat

        def counting_stat(target: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            stats.append(target)
            return real_stat(target, *args, **kwargs)

        monkeypatch.setattr("orders.audit.os.stat", counting_stat)
        order = journaled_order(journal)
        assert len(stats) == 1
        order.submit("b-1")
        order.fill("e-1", "4", "100")
        journal.record_note(order, "anomaly", "x")
        assert len(stats) == 1
        journal.close()

    def test_the_manager_sends_nothing_when_the_journal_was_moved(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path)
        desk.manager.submit(OrderRequest("AAPL", "buy", "1", "100"))
        desk.journal_path.rename(tmp_path / "elsewhere.jsonl")
        with pytest.raises(JournalError, match="moved or"):
            desk.manager.submit(OrderRequest("MSFT", "buy", "1", "100"))
        assert desk.spy.count("submit_limit") == 1
