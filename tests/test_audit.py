"""AuditJournal: the record schema, replay from the file alone, damage and reopening."""

from __future__ import annotations

import gc
import pickle
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

import orders
import orders.audit
from orders import (
    AuditJournal,
    BrokerOrder,
    Execution,
    FsyncPolicy,
    InvalidOrderError,
    JournalError,
    LifecycleEvent,
    Order,
    OrderHooks,
    OrderState,
    apply_snapshot,
    inferred_execution_id,
)
from orders._journal_format import (
    base_record,
    event_record,
    execution_fields,
    intent_record,
    render_line,
)
from orders.audit import JournalWriteError
from tests.factories import Ticker, journal_records, order_view

D = Decimal
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
EVENT_FIELDS = (
    "v",
    "seq",
    "ts",
    "event",
    "client_order_id",
    "broker_order_id",
    "symbol",
    "side",
    "strategy",
    "source",
    "dest",
    "quantity",
    "limit_price",
    "filled_quantity",
    "execution",
    "reason",
)


def journaled_order(
    journal: AuditJournal,
    cid: str = "c-1",
    *,
    quantity: str = "10",
    price: str = "100.25",
    symbol: str = "AAPL",
    side: str = "buy",
    clock: Ticker | None = None,
) -> Order:
    """A pending order whose events go to `journal`, its intent already written."""
    order = Order(
        symbol,
        side,
        quantity,
        price,
        strategy="momentum",
        client_order_id=cid,
        clock=clock or Ticker(),
        hooks=OrderHooks(on_event=(journal.record_event,)),
    )
    journal.record_intent(order)
    return order


def snap_of(
    order: Order,
    state: str,
    cumulative: str,
    *,
    average_price: str | None = None,
    executions: list[Execution] | None = None,
) -> BrokerOrder:
    """The broker's view of `order` (acknowledged as b-1)."""
    return BrokerOrder(
        broker_order_id="b-1",
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        limit_price=order.limit_price,
        state=state,
        cumulative_quantity=Decimal(cumulative),
        average_price=None if average_price is None else Decimal(average_price),
        executions=tuple(executions or ()),
        reject_reason=None,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "orders.jsonl"


class TestSchema:
    """Each record carries the documented fields, money as strings and times in UTC."""

    def test_event_records_carry_every_field(self, path: Path) -> None:
        journal = AuditJournal(path)
        order = journaled_order(journal)
        order.submit("b-1")
        order.fill("e-1", "4", "100.20", T0)
        order.request_cancel()
        order.cancel("user asked")
        journal.close()
        records = journal_records(path)
        assert [r["event"] for r in records] == [
            "intent",
            "submit",
            "fill",
            "request_cancel",
            "cancel",
        ]
        for record in records[1:]:
            assert set(EVENT_FIELDS) <= set(record), record
            assert record["v"] == 1
            assert record["client_order_id"] == "c-1"
            assert record["broker_order_id"] == "b-1"
            assert (record["symbol"], record["side"], record["strategy"]) == (
                "AAPL",
                "buy",
                "momentum",
            )
            assert (record["quantity"], record["limit_price"]) == ("10", "100.25")
        fill = records[2]
        assert (fill["source"], fill["dest"]) == ("submitted", "partially_filled")
        assert fill["filled_quantity"] == "4"
        assert fill["execution"] == {
            "id": "e-1",
            "quantity": "4",
            "price": "100.20",
            "timestamp": T0.isoformat(),
        }
        assert records[4]["reason"] == "user asked"
        assert (records[4]["source"], records[4]["dest"]) == ("partially_filled", "cancelled")

    def test_intent_record(self, path: Path) -> None:
        journal = AuditJournal(path, clock=lambda: T0)
        journaled_order(journal)
        (intent,) = journal_records(path)
        assert intent["event"] == "intent"
        assert (intent["source"], intent["dest"]) == (None, "pending")
        assert intent["broker_order_id"] is None
        assert intent["filled_quantity"] == "0"
        assert intent["time_in_force"] == "gfd"
        assert intent["ts"] == T0.isoformat()

    def test_intent_and_note_records_have_the_documented_shape(self, path: Path) -> None:
        """docs/audit.md: an intent has no execution or reason, a note no execution or tif."""
        journal = AuditJournal(path)
        order = journaled_order(journal)
        journal.record_note(order, "submit_unknown", "timeout")
        intent, note = journal_records(path)
        common = set(EVENT_FIELDS) - {"execution", "reason"} | {"cancel_requested"}
        assert set(intent) == common | {"time_in_force"}
        assert set(note) == common | {"reason"}
        assert (note["source"], note["dest"], note["reason"]) == ("pending", "pending", "timeout")

    def test_intents_and_events_hold_the_base_fields_then_their_own(self) -> None:
        """`intent_record` and `event_record` each equal, key for key and in order, the base
        record with its own fields added: replay and the docs read them in that order."""
        new_york = timezone(timedelta(hours=-5))
        built: list[tuple[dict[str, object], dict[str, object]]] = []

        def both(order: Order, event: LifecycleEvent) -> None:
            expected = base_record(order, event.trigger, event.at)
            execution = event.execution
            expected.update(
                source=str(event.source),
                dest=str(event.dest),
                execution=None if execution is None else execution_fields(execution),
                reason=event.reason,
            )
            if event.executions:
                expected["executions"] = [execution_fields(e) for e in event.executions]
            built.append((event_record(order, event), expected))

        order = Order(
            "AAPL",
            "sell",
            "10",
            "100.25",
            strategy="momentum",
            client_order_id="c-1",
            time_in_force="gtc",
            clock=Ticker(),
            hooks=OrderHooks(on_event=(both,)),
        )
        at = datetime(2026, 3, 2, 9, 30, tzinfo=new_york)
        expected = base_record(order, "intent", at)
        expected.update(source=None, dest="pending", time_in_force="gtc")
        built.append((intent_record(order, at), expected))
        order.submit("b-1", at=at)
        order.fill("e-1", "4", "100.20", at)
        order.fill(inferred_execution_id("c-1", D(4), D(6)), "2", "100.25")
        order.correct_fill([Execution("e-2", D(2), D("100.22"), T0)])
        order.request_cancel()
        order.cancel_rejected("too late")
        order.request_cancel()
        order.cancel("user asked")
        assert len(built) == 9
        for record, expected in built:
            assert list(record.items()) == list(expected.items())
            assert render_line(record) == render_line(expected)

    def test_every_line_is_its_record_as_render_line_renders_it(self, path: Path) -> None:
        """The journal renders intents and events in line (they are every record), checkpoints
        with `render_line`: both must give the same bytes for the same record."""
        journal = AuditJournal(path, segment_bytes=1)  # every record opens a segment
        order = journaled_order(journal)
        order.submit("b-1")
        order.fill("e-1", "4", "100.20", T0)
        journal.record_note(order, "anomaly", "a note")
        order.request_cancel()
        order.cancel("user asked")
        journal.close()
        lines = [
            line
            for segment in sorted(path.parent.glob("orders*.jsonl"))
            for line in segment.read_bytes().splitlines(keepends=True)
        ]
        events = {orjson.loads(line)["event"] for line in lines}
        assert {"intent", "fill", "anomaly", "checkpoint", "checkpoint_end"} <= events
        for line in lines:
            assert render_line(orjson.loads(line)) == line

    def test_a_value_orjson_does_not_know_is_written_as_its_text(self) -> None:
        """`render_line` tries orjson without `default` first: a value only `default` can
        write (here a Decimal, and a lone surrogate beside one) gives the bytes it always gave."""
        record = {"v": 1, "event": "anomaly", "reason": Decimal("1.50"), "ts": T0}
        assert render_line(record) == b'{"v":1,"event":"anomaly","reason":"1.50","ts":"%s"}\n' % (
            T0.isoformat().encode()
        )
        record["strategy"] = "bad \udc80"
        assert render_line(record).endswith(
            b'"reason":"1.50","ts":"%s","strategy":"bad \\udc80"}\n' % (T0.isoformat().encode())
        )

    def test_execution_timestamp_is_written_in_utc(self, path: Path) -> None:
        journal = AuditJournal(path)
        order = journaled_order(journal)
        order.submit("b-1")
        order.fill("e-1", "10", "100", datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
        stamp = journal_records(path)[-1]["execution"]["timestamp"]
        assert stamp == "2026-03-02T09:30:00+00:00"

    def test_non_utc_execution_timestamp_is_written_in_utc(self, path: Path) -> None:
        journal = AuditJournal(path)
        order = journaled_order(journal)
        order.submit("b-1")
        new_york = timezone(timedelta(hours=-5))
        order.fill("e-1", "10", "100", datetime(2026, 3, 2, 9, 30, tzinfo=new_york))
        stamp = journal_records(path)[-1]["execution"]["timestamp"]
        assert stamp == "2026-03-02T14:30:00+00:00"

    def test_money_is_written_as_exact_strings(self, path: Path) -> None:
        journal = AuditJournal(path)
        order = journaled_order(journal, quantity="0.123456789", price="0.0001")
        order.submit("b-1")
        order.fill("e-1", "0.000000001", "0.00009999")
        raw = path.read_text(encoding="utf-8")
        assert "0.123456789" in raw
        assert "0.00009999" in raw
        for record in journal_records(path):
            for key in ("quantity", "limit_price", "filled_quantity"):
                assert isinstance(record[key], str), (key, record)
        fill = journal_records(path)[-1]
        assert fill["execution"]["quantity"] == "1E-9"
        assert D(fill["execution"]["quantity"]) == D("0.000000001")

    def test_timestamps_are_utc_even_from_a_non_utc_clock(self, path: Path) -> None:
        plus_two = timezone(timedelta(hours=2))
        journal = AuditJournal(path, clock=lambda: datetime(2026, 3, 2, 16, 30, tzinfo=plus_two))
        order = journaled_order(
            journal, clock=Ticker(datetime(2026, 3, 2, 16, 30, tzinfo=plus_two))
        )
        order.submit("b-1")
        for record in journal_records(path):
            stamp = datetime.fromisoformat(record["ts"])
            assert stamp.utcoffset() == timedelta(0), record["ts"]
        assert journal_records(path)[0]["ts"] == "2026-03-02T14:30:00+00:00"

    def test_sequence_numbers_increase_across_orders(self, path: Path) -> None:
        journal = AuditJournal(path)
        first = journaled_order(journal, "c-1")
        second = journaled_order(journal, "c-2", symbol="MSFT")
        first.submit("b-1")
        second.submit("b-2")
        journal.record_note(first, "anomaly", "odd")
        assert [r["seq"] for r in journal_records(path)] == [1, 2, 3, 4, 5]

    def test_a_note_cannot_pose_as_a_lifecycle_event(self, path: Path) -> None:
        journal = AuditJournal(path)
        order = journaled_order(journal)
        for name in ("fill", "cancel", "intent"):
            with pytest.raises(InvalidOrderError):
                journal.record_note(order, name, "x")
        assert len(journal_records(path)) == 1

    def test_fsync_policy_accepts_its_string_values(self, path: Path) -> None:
        for policy in ("always", "intent_and_terminal", "never"):
            journal = AuditJournal(path, fsync=policy)
            assert journal.fsync is FsyncPolicy(policy)
            journaled_order(journal, f"c-{policy}").submit(f"b-{policy}")
            journal.close()
        assert len(journal_records(path)) == 6

    @pytest.mark.parametrize(
        ("policy", "forced"),
        [
            # intent, submit, partial fill, completing fill, a late fill on a cancelled order
            ("always", ["intent", "submit", "fill", "fill", "intent", "submit", "cancel", "fill"]),
            ("intent_and_terminal", ["intent", "fill", "intent", "cancel"]),
            ("never", []),
        ],
    )
    def test_fsync_forces_the_records_the_policy_names(
        self, path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, forced: list[str]
    ) -> None:
        journal = AuditJournal(path, fsync=policy)
        synced: list[str] = []

        def fake_fsync(fd: int) -> None:
            synced.append(journal_records(path)[-1]["event"])

        monkeypatch.setattr("orders.audit.os.fsync", fake_fsync)
        filled = journaled_order(journal, "c-filled")
        filled.submit("b-1")
        filled.fill("x-1", 4, "100")
        filled.fill("x-2", 6, "100")
        late = journaled_order(journal, "c-late", symbol="MSFT")
        late.submit("b-2")
        late.cancel("user")
        late.fill("x-3", 1, "100")  # a late fill: terminal already, no new milestone
        assert synced == forced


class TestReplay:
    """replay() rebuilds every order from the file alone, exactly as it lived."""

    def test_replay_rebuilds_state_fills_broker_id_cancel_flag_and_vwap(self, path: Path) -> None:
        journal = AuditJournal(path)
        filled = journaled_order(journal, "filled", symbol="AAPL")
        filled.submit("b-1")
        filled.fill("e-1", "4", "100.10", T0)
        filled.fill("e-2", "6", "100.20")
        working = journaled_order(journal, "working", symbol="MSFT")
        working.submit("b-2")
        working.fill("e-3", "3", "99")
        working.request_cancel()
        late = journaled_order(journal, "late", symbol="IBM")
        late.submit("b-3")
        late.request_cancel()
        late.cancel("asked")
        late.fill("e-4", "2", "50")
        refused = journaled_order(journal, "refused", symbol="GE")
        refused.reject("Not enough buying power.")
        pending = journaled_order(journal, "pending", symbol="F")
        rejected_cancel = journaled_order(journal, "kept", symbol="T")
        rejected_cancel.submit("b-5")
        rejected_cancel.request_cancel()
        rejected_cancel.cancel_rejected("too late")
        journal.close()

        rebuilt = AuditJournal.replay(path)
        live = [filled, working, late, refused, pending, rejected_cancel]
        assert list(rebuilt) == [o.client_order_id for o in live]
        for order in live:
            assert order_view(rebuilt[order.client_order_id]) == order_view(order)
        assert rebuilt["filled"].average_fill_price == D("100.16")
        assert rebuilt["filled"].state is OrderState.FILLED
        assert rebuilt["working"].cancel_requested is True
        assert rebuilt["late"].filled_quantity == D("2")
        assert rebuilt["late"].state is OrderState.CANCELLED
        assert rebuilt["kept"].cancel_requested is False

    def test_a_replayed_order_leaves_nothing_for_the_collector_to_walk(self, path: Path) -> None:
        """An order holds plain values one level deep (see orders._order_view): two passes of
        the collector untrack all of it, so a replay of many orders leaves the collector one
        object per order (the order itself) and not the tuples of each, level by level."""
        with AuditJournal(path) as journal:
            order = journaled_order(journal)
            order.submit("b-1")
            order.fill("e-1", "4", "100.10", T0)
            order.fill("e-2", "6", "100.20")
        rebuilt = AuditJournal.replay(path)["c-1"]
        gc.collect()
        gc.collect()
        fields = [held for held in gc.get_referents(rebuilt) if type(held) is tuple]
        assert fields
        assert not any(map(gc.is_tracked, fields))

    def test_a_corrected_fill_replays_with_the_brokers_prices(self, path: Path) -> None:
        with AuditJournal(path) as journal:
            order = journaled_order(journal, quantity="2", price="0.05")
            order.submit("b-1")
            apply_snapshot(order, snap_of(order, "filled", "2", average_price="0.04"))
            listed = [
                Execution("e-1", Decimal(1), Decimal("0.0414")),
                Execution("e-2", Decimal(1), Decimal("0.0414")),
            ]
            apply_snapshot(order, snap_of(order, "filled", "2", executions=listed))
        assert order.average_fill_price == Decimal("0.0414")
        replayed = AuditJournal.replay(path)["c-1"]
        assert order_view(replayed) == order_view(order)
        assert [e.trigger for e in replayed.history] == ["submit", "fill", "correct_fill"]

    def test_a_correction_that_changes_the_quantity_is_refused(self, path: Path) -> None:
        with AuditJournal(path) as journal:
            order = journaled_order(journal, quantity="2", price="0.05")
            order.submit("b-1")
            apply_snapshot(order, snap_of(order, "filled", "2", average_price="0.04"))
            order.correct_fill([Execution("e-1", Decimal(2), Decimal("0.0414"))])
        lines = path.read_bytes().splitlines()
        record = orjson.loads(lines[-1])
        record["executions"][0]["quantity"] = "1"
        path.write_bytes(b"\n".join([*lines[:-1], orjson.dumps(record)]) + b"\n")
        with pytest.raises(JournalError, match=f"{path.name}:{len(lines)}:.*in place of 2"):
            AuditJournal.replay(path)

    def test_replayed_orders_have_no_hooks(self, path: Path) -> None:
        journal = AuditJournal(path)
        journaled_order(journal).submit("b-1")
        journal.close()
        before = path.read_bytes()
        rebuilt = AuditJournal.replay(path)["c-1"]
        rebuilt.fill("e-1", "10", "100")  # firing on a replayed order writes nothing
        assert path.read_bytes() == before

    def test_notes_are_skipped(self, path: Path) -> None:
        journal = AuditJournal(path)
        order = journaled_order(journal)
        journal.record_note(order, "submit_unknown", "Read timed out")
        order.submit("b-1")
        journal.record_note(order, "anomaly", "broker snapshot skipped")
        journal.close()
        rebuilt = AuditJournal.replay(path)["c-1"]
        assert rebuilt.state is OrderState.SUBMITTED
        assert [e.trigger for e in rebuilt.history] == ["submit"]

    def test_missing_file_replays_to_nothing(self, path: Path) -> None:
        assert AuditJournal.replay(path) == {}

    def test_torn_last_line_is_tolerated(self, path: Path) -> None:
        journal = AuditJournal(path)
        order = journaled_order(journal)
        order.submit("b-1")
        journal.close()
        with path.open("ab") as handle:
            handle.write(b'{"v":1,"seq":3,"ts":"2026-03-02T14:3')
        rebuilt = AuditJournal.replay(path)
        assert rebuilt["c-1"].state is OrderState.SUBMITTED

    def test_damaged_middle_line_names_file_and_line(self, path: Path) -> None:
        journal = AuditJournal(path)
        order = journaled_order(journal)
        order.submit("b-1")
        order.fill("e-1", "10", "100")
        journal.close()
        lines = path.read_bytes().split(b"\n")
        lines[1] = lines[1][:20]
        path.write_bytes(b"\n".join(lines))
        with pytest.raises(JournalError, match=rf"{path}:2\b"):
            AuditJournal.replay(path)

    def test_inconsistent_record_names_file_and_line(self, path: Path) -> None:
        journal = AuditJournal(path)
        order = journaled_order(journal)
        order.submit("b-1")
        order.fill("e-1", "10", "100")
        journal.close()
        lines = path.read_text(encoding="utf-8").splitlines()
        del lines[1]  # the submit: the fill now starts from a state the order is not in
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with pytest.raises(JournalError, match=rf"{path}:2\b"):
            AuditJournal.replay(path)

    def test_a_record_of_another_schema_is_refused(self, path: Path) -> None:
        path.parent.mkdir(parents=True)
        path.write_text('{"v": 2, "event": "intent"}\n', encoding="utf-8")
        with pytest.raises(JournalError, match=rf"{path}:1\b"):
            AuditJournal.replay(path)


class TestPublicNames:
    """The journal's public names stay where callers import them from."""

    def test_every_name_of_orders_audit_is_importable_from_it_and_from_orders(self) -> None:
        assert set(orders.audit.__all__) >= {
            "AuditJournal",
            "JournalWriteError",
            "LATE_FILL_WINDOW",
            "SCHEMA_VERSION",
            "FsyncPolicy",
            "owed_late_fill",
        }
        for name in orders.audit.__all__:
            assert getattr(orders.audit, name) is not None, name
        from_audit = [name for name, home in orders._LAZY.items() if home == "orders.audit"]
        assert from_audit
        for name in from_audit:
            assert getattr(orders, name) is getattr(orders.audit, name), name

    def test_a_journal_write_error_names_its_public_home_and_pickles(self) -> None:
        """A traceback names the class where a caller can import it, and a failure reported
        across processes arrives as the same class."""
        error = JournalWriteError("the disk is full")
        assert f"{type(error).__module__}.{type(error).__qualname__}" == (
            "orders.audit.JournalWriteError"
        )
        again = pickle.loads(pickle.dumps(error))  # noqa: S301 (bytes pickled just here)
        assert type(again) is JournalWriteError
        assert str(again) == "the disk is full"


class TestReopen:
    """A journal opened on an existing file appends, continuing its sequence numbers."""

    def test_reopened_journal_continues_the_sequence(self, path: Path) -> None:
        journal = AuditJournal(path)
        order = journaled_order(journal)
        order.submit("b-1")
        journal.close()
        again = AuditJournal(path)
        order.attach_hooks(OrderHooks(on_event=(again.record_event,)))
        order.fill("e-1", "10", "100")
        again.close()
        records = journal_records(path)
        assert [r["seq"] for r in records] == [1, 2, 3]
        assert AuditJournal.replay(path)["c-1"].state is OrderState.FILLED

    def test_reopening_after_a_torn_line_keeps_the_journal_readable(self, path: Path) -> None:
        journal = AuditJournal(path)
        order = journaled_order(journal)
        order.submit("b-1")
        journal.close()
        with path.open("ab") as handle:
            handle.write(b'{"v":1,"seq":3,"ts":"2026-')  # the crash
        again = AuditJournal(path)
        order.attach_hooks(OrderHooks(on_event=(again.record_event,)))
        order.fill("e-1", "10", "100")
        again.close()
        assert AuditJournal.replay(path)["c-1"].state is OrderState.FILLED
