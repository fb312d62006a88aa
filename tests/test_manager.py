"""OrderManager end to end on PaperBroker: hooks through their effects, every fault, replay."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from orders import (
    AccountData,
    AuditJournal,
    BrokerError,
    BrokerOrder,
    Fault,
    InvalidOrderError,
    LifecycleEvent,
    Order,
    OrderHooks,
    OrderManager,
    OrderRequest,
    OrderState,
    PaperBroker,
    SafetyViolation,
    UnknownOrderError,
    UnsupportedOrderTypeError,
)
from tests.factories import (
    Desk,
    ManualUtcClock,
    SpyGateway,
    assert_invariants,
    guard_of,
    make_desk,
)

D = Decimal
NEVER_PLACED_NOW = {"unknown_order_grace_seconds": 0}


def account_of(manager: OrderManager) -> AccountData:
    """The manager's account caches, as the `AccountData` the desk built them with (the
    manager types them as the `AccountCache` protocol)."""
    assert isinstance(manager.account, AccountData)
    return manager.account


def state_of(order: Order) -> OrderState:
    """The order's state, read afresh: a trigger between two reads changes it, which mypy's
    narrowing of `order.state` does not know."""
    return order.state


def buy(symbol: str = "AAPL", quantity: str = "10", ref: str = "100", **kw: Any) -> OrderRequest:
    return OrderRequest(symbol, "buy", quantity, ref, **kw)


def sell(symbol: str = "AAPL", quantity: str = "10", ref: str = "100", **kw: Any) -> OrderRequest:
    return OrderRequest(symbol, "sell", quantity, ref, **kw)


def events_by_order(desk: Desk) -> dict[str, list[dict[str, Any]]]:
    """Lifecycle-event records (no intents, no notes) per client order id."""
    triggers = {"submit", "fill", "request_cancel", "cancel_rejected", "cancel", "reject"}
    out: dict[str, list[dict[str, Any]]] = {}
    for record in desk.records():
        if record["event"] in triggers:
            out.setdefault(record["client_order_id"], []).append(record)
    return out


def assert_journal_matches(desk: Desk) -> None:
    """One intent per order, one record per lifecycle event, and replay equal to the live orders."""
    orders = desk.manager.orders()
    intents = Counter(r["client_order_id"] for r in desk.records() if r["event"] == "intent")
    assert intents == Counter(o.client_order_id for o in orders)
    recorded = events_by_order(desk)
    for order in orders:
        mine = recorded.get(order.client_order_id, [])
        assert [(r["event"], r["source"], r["dest"]) for r in mine] == [
            (e.trigger, str(e.source), str(e.dest)) for e in order.history
        ]
    seqs = [r["seq"] for r in desk.records()]
    assert seqs == sorted(set(seqs))
    rebuilt = AuditJournal.replay(desk.journal_path)
    assert set(rebuilt) == {o.client_order_id for o in orders}
    for order in orders:
        twin = rebuilt[order.client_order_id]
        assert (
            twin.state,
            twin.broker_order_id,
            twin.filled_quantity,
            twin.average_fill_price,
            twin.executions,
            twin.cancel_requested,
            twin.reason,
            twin.history,
        ) == (
            order.state,
            order.broker_order_id,
            order.filled_quantity,
            order.average_fill_price,
            order.executions,
            order.cancel_requested,
            order.reason,
            order.history,
        )


def assert_guards_match(desk: Desk) -> None:
    """The duplicate guards are held by exactly the working orders."""
    expected = {(o.symbol, o.side): o.client_order_id for o in desk.manager.open_orders()}
    assert guard_of(desk.manager).pending_orders() == expected


def assert_matches_broker(desk: Desk, order: Order) -> None:
    found = desk.broker.find_by_client_id(order.client_order_id)
    assert found is not None
    assert order.broker_order_id == found.broker_order_id
    assert order.filled_quantity == found.cumulative_quantity
    assert {e.execution_id for e in found.executions} <= {e.execution_id for e in order.executions}
    assert order.state is found.state


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return make_desk(tmp_path, config=NEVER_PLACED_NOW)


class TestHappyPath:
    """A buy travels from intent to fill; guard, account cache and journal follow it."""

    def test_submit_journals_the_intent_first_and_returns_the_live_order(self, desk: Desk) -> None:
        order = desk.manager.submit(buy())
        assert order.state is OrderState.SUBMITTED
        assert order.limit_price == D("100.05")  # 5 bps default offset
        assert desk.manager.get(order.client_order_id) is order
        assert desk.manager.open_orders() == [order]
        records = desk.records()
        assert [r["event"] for r in records] == ["intent", "submit"]
        assert records[0]["broker_order_id"] is None
        assert records[1]["broker_order_id"] == order.broker_order_id
        assert desk.spy.count("submit_limit") == 1
        desk.broker.set_quote("AAPL", "99")
        desk.broker.match()
        report = desk.manager.sync()
        assert state_of(order) is OrderState.FILLED  # the same object moved
        assert order.average_fill_price == D("99")
        assert report.changed_orders == (order.client_order_id,)
        assert report.errors == ()
        assert desk.manager.open_orders() == []
        assert_journal_matches(desk)

    def test_guard_is_released_exactly_when_the_order_ends(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, broker=PaperBroker(liquidity="4"))
        safety = guard_of(desk.manager)
        order = desk.manager.submit(buy())
        assert safety.holder("AAPL", "buy") == order.client_order_id
        desk.broker.set_quote("AAPL", "100")
        for expected in ("4", "8"):
            desk.broker.match()
            desk.manager.sync()
            assert order.filled_quantity == D(expected)
            assert order.state is OrderState.PARTIALLY_FILLED
            assert safety.has_pending("AAPL", "buy")
        desk.broker.match()
        desk.manager.sync()
        assert order.state is OrderState.FILLED
        assert not safety.has_pending("AAPL", "buy")
        assert_journal_matches(desk)

    def test_guard_is_released_on_cancel_and_on_reject(self, desk: Desk) -> None:
        order = desk.manager.submit(buy())
        desk.manager.cancel(order.client_order_id)
        assert order.cancel_requested
        assert guard_of(desk.manager).has_pending("AAPL", "buy")  # the cancel is only a request
        desk.manager.sync()
        assert order.state is OrderState.CANCELLED
        assert not guard_of(desk.manager).has_pending("AAPL", "buy")
        desk.broker.inject(Fault.REJECT)
        refused = desk.manager.submit(sell("MSFT"))
        assert refused.state is OrderState.REJECTED
        assert not guard_of(desk.manager).has_pending("MSFT", "sell")

    def test_a_fill_makes_the_next_account_read_refetch(self, desk: Desk) -> None:
        account = account_of(desk.manager)
        order = desk.manager.submit(sell())  # a sell reads no buying power
        before = account.buying_power()
        assert account.buying_power() == before
        fetched = desk.spy.count("fetch_buying_power")
        desk.manager.sync()  # nothing changed: the cache stays
        account.buying_power()
        assert desk.spy.count("fetch_buying_power") == fetched
        desk.broker.set_quote("AAPL", "101")
        desk.broker.match()
        desk.manager.sync()
        assert order.state is OrderState.FILLED
        after = account.buying_power()
        assert desk.spy.count("fetch_buying_power") == fetched + 1
        assert after == before + D("1010")  # 10 sold at the quote, 101
        assert account.positions() == {"AAPL": D("-10")}

    def test_a_partial_fill_makes_the_next_account_read_refetch(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, broker=PaperBroker(liquidity="3"))
        account = account_of(desk.manager)
        desk.manager.submit(sell())
        account.positions()
        desk.broker.set_quote("AAPL", "100")
        desk.broker.match()
        desk.manager.sync()
        assert account.positions() == {"AAPL": D("-3")}
        assert desk.spy.count("fetch_positions") == 2

    def test_a_cancel_makes_the_next_account_read_refetch(self, desk: Desk) -> None:
        account = account_of(desk.manager)
        order = desk.manager.submit(buy())  # reserves 10 x 100.05 at the broker
        account.invalidate()  # a submission is not an exposure change: start from a fresh read
        reserved = account.buying_power()
        assert reserved == D("100000") - D("1000.50")
        fetched = desk.spy.count("fetch_buying_power")
        desk.manager.cancel(order.client_order_id)
        desk.manager.sync()
        assert account.buying_power() == D("100000")
        assert desk.spy.count("fetch_buying_power") == fetched + 1

    def test_a_buy_beyond_buying_power_is_refused_before_sending(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, broker=PaperBroker(buying_power="500"))
        with pytest.raises(SafetyViolation, match="exceeds buying power 500"):
            desk.manager.submit(buy())
        assert desk.spy.count("submit_limit") == 0
        assert desk.records() == []

    def test_cancel_of_an_unknown_id_raises_and_of_a_finished_order_is_a_no_op(
        self, desk: Desk
    ) -> None:
        with pytest.raises(UnknownOrderError):
            desk.manager.cancel("nope")
        order = desk.manager.submit(sell())
        desk.broker.set_quote("AAPL", "100")
        desk.broker.match()
        desk.manager.sync()
        history = order.history
        assert desk.manager.cancel(order.client_order_id) is order
        assert order.history == history
        assert desk.spy.count("cancel") == 0


class TestIngestAndUntracked:
    """Pushed snapshots apply without polling; broker orders we never sent are only counted."""

    def test_ingest_applies_what_match_returns(self, desk: Desk) -> None:
        order = desk.manager.submit(buy())
        desk.broker.set_quote("AAPL", "100")
        report = desk.manager.ingest(desk.broker.match())
        assert order.state is OrderState.FILLED
        assert [e.trigger for _, e in report.events] == ["fill"]
        assert not guard_of(desk.manager).has_pending("AAPL", "buy")
        assert desk.spy.count("updated_since") == 0
        assert_journal_matches(desk)

    def test_a_report_without_a_client_id_finds_its_order_after_an_interrupted_submit(
        self, tmp_path: Path
    ) -> None:
        """A broker id the index lost (an observer interrupted as the order was acknowledged)
        is indexed again by the next report, so a later one that names the order by its
        broker id alone (Robinhood's null ref_id) still books its fill."""
        armed = [True]

        def interrupting(order: Order, event: LifecycleEvent) -> None:
            if armed[0] and event.trigger == "submit":
                armed[0] = False
                raise KeyboardInterrupt

        broker = PaperBroker()
        manager = OrderManager(
            broker,
            journal=AuditJournal(tmp_path / "orders.jsonl"),
            observers=OrderHooks(on_event=[interrupting]),
        )
        broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)  # the order rests; its outcome is unknown
        order = manager.submit(buy())
        found = broker.find_by_client_id(order.client_order_id)
        assert found is not None
        with pytest.raises(KeyboardInterrupt):
            manager.ingest([found])  # acknowledged, and interrupted before it was indexed
        manager.ingest([found])
        broker.set_quote("AAPL", "100")
        fills = [attrs.evolve(s, client_order_id=None) for s in broker.match()]
        report = manager.ingest(fills)
        assert (report.untracked, order.state) == (0, OrderState.FILLED)

    def test_orders_sent_by_someone_else_are_counted_not_adopted(self, tmp_path: Path) -> None:
        broker = PaperBroker()
        ours = make_desk(tmp_path / "ours", broker=broker)
        theirs = make_desk(tmp_path / "theirs", broker=broker)
        theirs.manager.submit(buy("MSFT"))
        report = ours.manager.sync()
        assert report.untracked == 1
        assert ours.manager.orders() == []
        assert ours.records() == []


class TestSubmitFaults:
    """Each PaperBroker submission fault ends as the contract says, never as a second order."""

    def test_reject(self, desk: Desk) -> None:
        desk.broker.inject(Fault.REJECT, message="Symbol not tradable.")
        order = desk.manager.submit(buy())
        assert order.state is OrderState.REJECTED
        assert order.reason == "Symbol not tradable."
        assert not guard_of(desk.manager).has_pending("AAPL", "buy")
        assert desk.broker_orders() == []
        assert [r["event"] for r in desk.records()] == ["intent", "reject"]
        assert_journal_matches(desk)

    @pytest.mark.parametrize(
        "fault", [Fault.TIMEOUT_BEFORE_ACCEPT, Fault.THROTTLE, Fault.SERVER_ERROR]
    )
    def test_lost_submission_stays_pending_until_never_placed(
        self, desk: Desk, fault: Fault
    ) -> None:
        desk.broker.inject(fault)
        order = desk.manager.submit(buy())
        # A network failure never rejects: the order may exist, so it waits, guard held.
        assert order.state is OrderState.PENDING
        assert guard_of(desk.manager).holder("AAPL", "buy") == order.client_order_id
        with pytest.raises(SafetyViolation):
            desk.manager.submit(buy())
        notes = [r for r in desk.records() if r["event"] == "submit_unknown"]
        assert len(notes) == 1
        for _ in range(2):  # unknown_order_lookups defaults to 3
            report = desk.manager.sync()
            assert order.state is OrderState.PENDING
            assert report.never_placed == ()
        report = desk.manager.sync()
        assert report.never_placed == (order.client_order_id,)
        assert state_of(order) is OrderState.REJECTED
        assert order.reason is not None
        assert "never placed" in order.reason
        assert not guard_of(desk.manager).has_pending("AAPL", "buy")
        assert desk.spy.count("submit_limit") == 1  # never resent
        assert desk.spy.count("find_by_client_id") == 3
        assert desk.broker_orders() == []
        assert_journal_matches(desk)
        desk.manager.submit(buy())  # the guard is free again

    def test_never_placed_waits_for_the_grace_period(self, tmp_path: Path) -> None:
        clock = ManualUtcClock()
        desk = make_desk(tmp_path, config={"unknown_order_grace_seconds": 60}, clock=clock)
        desk.broker.inject(Fault.TIMEOUT_BEFORE_ACCEPT)
        order = desk.manager.submit(buy())
        for _ in range(5):
            clock.advance(10)
            desk.manager.sync()
        assert order.state is OrderState.PENDING  # 5 lookups, but only 50 s
        clock.advance(10)
        report = desk.manager.sync()
        assert report.never_placed == (order.client_order_id,)
        assert state_of(order) is OrderState.REJECTED

    def test_lookups_that_fail_are_no_evidence_of_absence(self, desk: Desk) -> None:
        class DownLookups(SpyGateway):
            def find_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
                super().find_by_client_id(client_order_id)
                raise ConnectionError("connection reset")

        desk.manager.gateway = DownLookups(desk.broker)
        desk.broker.inject(Fault.TIMEOUT_BEFORE_ACCEPT)
        order = desk.manager.submit(buy())
        for _ in range(5):
            report = desk.manager.sync()
            assert any("lookup by client id failed" in e for e in report.errors)
        assert order.state is OrderState.PENDING
        assert guard_of(desk.manager).has_pending("AAPL", "buy")

    def test_a_raising_gateway_is_an_unknown_outcome_not_a_reject(self, desk: Desk) -> None:
        class Exploding(SpyGateway):
            def submit_limit(self, order: Order) -> Any:
                super().submit_limit(order)
                raise TimeoutError("read timed out")

        desk.manager.gateway = Exploding(desk.broker)
        order = desk.manager.submit(buy())
        assert order.state is OrderState.PENDING
        assert guard_of(desk.manager).has_pending("AAPL", "buy")

    def test_timeout_after_accept_is_found_by_client_id_never_resent(self, desk: Desk) -> None:
        desk.broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)
        order = desk.manager.submit(buy())
        assert order.state is OrderState.PENDING
        assert order.broker_order_id is None
        report = desk.manager.sync()
        assert report.resolved == (order.client_order_id,)
        assert state_of(order) is OrderState.SUBMITTED
        (at_broker,) = desk.broker_orders()
        assert order.broker_order_id == at_broker.broker_order_id
        desk.broker.set_quote("AAPL", "100")
        desk.broker.match()
        for _ in range(3):
            desk.manager.sync()
        assert order.state is OrderState.FILLED
        assert desk.spy.count("submit_limit") == 1
        assert len(desk.broker_orders()) == 1
        assert_journal_matches(desk)

    def test_timeout_after_accept_seen_only_by_lookup(self, desk: Desk) -> None:
        """Resolution through find_by_client_id, when the listing does not show the order."""

        class NoListing(SpyGateway):
            def updated_since(self, when: Any) -> list[BrokerOrder]:
                super().updated_since(when)
                return []

        desk.manager.gateway = NoListing(desk.broker)
        desk.broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)
        order = desk.manager.submit(buy())
        report = desk.manager.sync()
        assert report.resolved == (order.client_order_id,)
        assert order.state is OrderState.SUBMITTED
        assert len(desk.broker_orders()) == 1

    def test_cancel_while_the_outcome_is_unknown_is_sent_once_the_order_is_found(
        self, desk: Desk
    ) -> None:
        desk.broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)
        order = desk.manager.submit(buy())
        desk.manager.cancel(order.client_order_id)
        assert desk.spy.count("cancel") == 0  # no broker id to cancel yet
        desk.manager.sync()
        assert desk.spy.count("cancel") == 1
        desk.manager.sync()
        assert order.state is OrderState.CANCELLED
        assert not guard_of(desk.manager).has_pending("AAPL", "buy")
        assert_journal_matches(desk)


class TestCancelFaults:
    """Lost cancels, cancels that lose the race and fills after a cancel are all booked truly."""

    def test_lost_cancel_leaves_the_order_working(self, desk: Desk) -> None:
        order = desk.manager.submit(buy())
        desk.broker.inject(Fault.LOST_CANCEL)
        desk.manager.cancel(order.client_order_id)
        desk.manager.sync()
        assert order.state is OrderState.SUBMITTED
        assert order.cancel_requested
        assert guard_of(desk.manager).has_pending("AAPL", "buy")
        # Still working at the broker, so it can still fill, and the fill is booked.
        desk.broker.set_quote("AAPL", "100")
        desk.broker.match()
        desk.manager.sync()
        assert state_of(order) is OrderState.FILLED
        assert not order.cancel_requested
        assert not guard_of(desk.manager).has_pending("AAPL", "buy")
        assert_journal_matches(desk)

    def test_lost_cancel_can_be_sent_again(self, desk: Desk) -> None:
        order = desk.manager.submit(buy())
        desk.broker.inject(Fault.LOST_CANCEL)
        desk.manager.cancel(order.client_order_id)
        desk.manager.cancel(order.client_order_id)
        desk.manager.sync()
        assert order.state is OrderState.CANCELLED
        assert [e.trigger for e in order.history].count("request_cancel") == 1
        assert_journal_matches(desk)

    def test_unconfirmed_cancel_is_sent_again_after_thirty_seconds(self, tmp_path: Path) -> None:
        clock = ManualUtcClock()
        desk = make_desk(tmp_path, clock=clock)
        order = desk.manager.submit(buy())
        desk.broker.inject(Fault.LOST_CANCEL)
        desk.manager.cancel(order.client_order_id)
        clock.advance(29)
        assert desk.manager.sync().cancels_resent == ()
        assert desk.spy.count("cancel") == 1
        clock.advance(1)
        report = desk.manager.sync()
        assert report.cancels_resent == (order.client_order_id,)
        assert desk.spy.count("cancel") == 2
        desk.manager.sync()
        assert order.state is OrderState.CANCELLED
        assert not guard_of(desk.manager).has_pending("AAPL", "buy")
        assert desk.spy.count("cancel") == 2  # nothing more once it is done

    def test_cancel_loses_the_race(self, desk: Desk) -> None:
        account = account_of(desk.manager)
        order = desk.manager.submit(sell())
        account.positions()
        desk.broker.inject(Fault.CANCEL_LOSES_RACE)
        desk.manager.cancel(order.client_order_id)
        desk.manager.sync()
        assert order.state is OrderState.FILLED
        assert order.filled_quantity == D("10")
        assert not order.cancel_requested
        assert not guard_of(desk.manager).has_pending("AAPL", "sell")
        assert account.positions() == {"AAPL": D("-10")}
        assert desk.spy.count("fetch_positions") == 2
        assert_matches_broker(desk, order)
        assert_journal_matches(desk)

    def test_late_fill_after_cancel_is_booked_on_the_cancelled_order(self, desk: Desk) -> None:
        account = account_of(desk.manager)
        order = desk.manager.submit(sell())
        desk.broker.inject(Fault.LATE_FILL_AFTER_CANCEL)
        desk.manager.cancel(order.client_order_id)
        desk.manager.sync()
        assert order.state is OrderState.CANCELLED
        assert not guard_of(desk.manager).has_pending("AAPL", "sell")
        assert account.positions() == {}
        desk.broker.match()
        report = desk.manager.sync()
        assert [e.trigger for _, e in report.events] == ["fill"]
        assert order.state is OrderState.CANCELLED
        assert order.filled_quantity == D("10")
        assert account.positions() == {"AAPL": D("-10")}  # refetched after the late fill
        assert desk.spy.count("fetch_positions") == 2
        assert_matches_broker(desk, order)
        assert_journal_matches(desk)


class TestDeliveryFaults:
    """Duplicated and stale snapshots change nothing twice and never move an order back."""

    def test_duplicate_snapshots_book_each_event_once(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, broker=PaperBroker(liquidity="4"))
        order = desk.manager.submit(buy())
        desk.broker.set_quote("AAPL", "100")
        for _ in range(3):
            desk.broker.match()
            desk.broker.inject(Fault.DUPLICATE_SNAPSHOTS)
            report = desk.manager.sync()
            assert report.errors == ()
        assert order.state is OrderState.FILLED
        assert [e.trigger for e in order.history] == ["submit", "fill", "fill", "fill"]
        assert_matches_broker(desk, order)
        assert_journal_matches(desk)

    def test_stale_snapshots_never_move_an_order_back(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, broker=PaperBroker(liquidity="6"))
        order = desk.manager.submit(buy())
        other = desk.manager.submit(sell("MSFT"))
        desk.manager.cancel(other.client_order_id)
        desk.broker.set_quote("AAPL", "100")
        desk.broker.match()
        desk.broker.inject(Fault.STALE_SNAPSHOTS)
        desk.manager.sync()
        assert order.filled_quantity == D("6")
        assert other.state is OrderState.CANCELLED
        desk.broker.match()
        desk.broker.inject(Fault.STALE_SNAPSHOTS, times=3)
        for _ in range(3):
            desk.manager.sync()
            assert order.state is OrderState.FILLED
            assert order.filled_quantity == D("10")
            assert other.state is OrderState.CANCELLED
        assert_matches_broker(desk, order)
        assert_journal_matches(desk)


class TestBreakers:
    """Consecutive rejects or failures trip a breaker that refuses new orders and says why."""

    def test_consecutive_rejects_trip_the_breaker(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, config={"circuit_breakers": {"max_consecutive_rejects": 2}})
        desk.broker.inject(Fault.REJECT, times=2, message="Market closed.")
        desk.manager.submit(buy("AAPL"))
        desk.manager.submit(buy("MSFT"))
        records = len(desk.records())
        with pytest.raises(SafetyViolation) as caught:
            desk.manager.submit(buy("IBM"))
        (reason,) = caught.value.reasons
        assert "circuit breaker tripped" in reason
        assert "2 consecutive rejects" in reason
        assert "Market closed." in reason
        assert desk.spy.count("submit_limit") == 2
        assert len(desk.records()) == records
        assert not guard_of(desk.manager).has_pending("IBM", "buy")

    def test_consecutive_failures_trip_the_breaker(self, desk: Desk) -> None:
        desk.broker.inject(Fault.SERVER_ERROR, times=3)  # max_consecutive_failures: 3
        for symbol in ("AAPL", "MSFT", "IBM"):
            assert desk.manager.submit(buy(symbol)).state is OrderState.PENDING
        with pytest.raises(SafetyViolation, match="3 consecutive broker failures") as caught:
            desk.manager.submit(buy("GE"))
        assert "HTTP 503" in caught.value.reasons[0]
        assert desk.spy.count("submit_limit") == 3

    def test_an_accepted_order_resets_the_count(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, config={"circuit_breakers": {"max_consecutive_rejects": 2}})
        desk.broker.inject(Fault.REJECT)
        desk.manager.submit(buy("AAPL"))
        desk.manager.submit(buy("MSFT"))
        desk.broker.inject(Fault.REJECT)
        desk.manager.submit(buy("IBM"))
        assert guard_of(desk.manager).tripped() is None
        desk.manager.submit(buy("GE"))
        assert desk.spy.count("submit_limit") == 4

    def test_halt_refuses_everything_until_resume(self, desk: Desk) -> None:
        guard_of(desk.manager).halt("manual stop")
        with pytest.raises(SafetyViolation, match="manual stop"):
            desk.manager.submit(buy())
        guard_of(desk.manager).resume()
        assert desk.manager.submit(buy()).state is OrderState.SUBMITTED


class TestDuplicateGuard:
    """A second working order for a (symbol, side) is refused until the first ends."""

    def test_duplicate_is_refused_while_the_first_works(self, desk: Desk) -> None:
        first = desk.manager.submit(buy())
        records = len(desk.records())
        with pytest.raises(SafetyViolation) as caught:
            desk.manager.submit(buy(quantity="1", ref="90"))
        assert first.client_order_id in caught.value.reasons[0]
        assert desk.spy.count("submit_limit") == 1
        assert len(desk.records()) == records
        assert desk.manager.orders() == [first]
        # The other side of the same symbol is a different key.
        assert desk.manager.submit(sell()).state is OrderState.SUBMITTED

    @pytest.mark.parametrize("ending", ["fill", "cancel", "reject"])
    def test_duplicate_is_allowed_once_the_first_ends(self, desk: Desk, ending: str) -> None:
        if ending == "reject":
            desk.broker.inject(Fault.REJECT)
        first = desk.manager.submit(buy())
        if ending == "fill":
            desk.broker.set_quote("AAPL", "100")
            desk.broker.match()
        elif ending == "cancel":
            desk.manager.cancel(first.client_order_id)
        desk.manager.sync()
        assert first.is_terminal
        second = desk.manager.submit(buy())
        assert second.state is OrderState.SUBMITTED
        assert guard_of(desk.manager).holder("AAPL", "buy") == second.client_order_id


class TestUnsupportedOrderTypes:
    """Market and stop orders are refused before anything is journaled, guarded or sent."""

    @pytest.mark.parametrize("order_type", ["market", "stop", "stop_limit"])
    def test_refused_before_any_io(self, desk: Desk, order_type: str) -> None:
        request = buy(order_type=order_type)
        with pytest.raises(UnsupportedOrderTypeError, match="limit") as caught:
            desk.manager.submit(request)
        assert caught.value.order_type == order_type
        assert desk.spy.calls == []
        assert desk.records() == []
        assert guard_of(desk.manager).pending_orders() == {}
        assert desk.manager.orders() == []


class FlakyJournal(AuditJournal):
    """A journal whose lifecycle-event writes fail while `failing` is set, like a full disk."""

    failing = False

    def record_event(self, order: Order, event: LifecycleEvent) -> None:
        if self.failing:
            raise OSError(28, "No space left on device")
        super().record_event(order, event)


class TestHookFailures:
    """A hook that raises does not stop the others and shows up in SyncReport.errors."""

    def test_failed_journal_write_in_sync_still_releases_guard_and_cache(
        self, tmp_path: Path
    ) -> None:
        journal = FlakyJournal(tmp_path / "orders.jsonl")
        desk = make_desk(tmp_path, journal=journal)
        account = account_of(desk.manager)
        order = desk.manager.submit(sell())
        account.positions()
        desk.broker.set_quote("AAPL", "100")
        desk.broker.match()
        journal.failing = True
        report = desk.manager.sync()
        assert order.state is OrderState.FILLED
        assert not guard_of(desk.manager).has_pending("AAPL", "sell")  # on_terminal still ran
        assert account.positions() == {"AAPL": D("-10")}  # on_exposure_change still ran
        assert len(report.errors) == 1
        assert "record_event" in report.errors[0]
        assert order.client_order_id in report.errors[0]
        assert "No space left on device" in report.errors[0]
        journal.failing = False
        assert desk.manager.sync().errors == ()

    def test_failure_during_submit_is_reported_by_the_next_sync(self, tmp_path: Path) -> None:
        journal = FlakyJournal(tmp_path / "orders.jsonl")
        desk = make_desk(tmp_path, journal=journal)
        journal.failing = True
        order = desk.manager.submit(buy())
        journal.failing = False
        assert order.state is OrderState.SUBMITTED
        report = desk.manager.sync()
        assert len(report.errors) == 1
        assert "submit" in report.errors[0]
        assert order.client_order_id in report.errors[0]
        assert desk.manager.drain_hook_failures() == []


class TestJournalAndRecoverEdges:
    """The intent must be on disk before anything is sent; recover() keeps live orders live."""

    def test_failed_intent_write_sends_nothing_and_takes_no_guard(self, tmp_path: Path) -> None:
        class NoIntent(AuditJournal):
            def record_intent(self, order: Order, *, at: datetime | None = None) -> None:
                raise OSError(28, "No space left on device")

        desk = make_desk(tmp_path, journal=NoIntent(tmp_path / "orders.jsonl"))
        with pytest.raises(OSError, match="No space left"):
            desk.manager.submit(buy())
        assert desk.spy.count("submit_limit") == 0
        assert guard_of(desk.manager).pending_orders() == {}
        assert desk.manager.orders() == []

    def test_order_returned_by_submit_stays_live_across_recover(self, desk: Desk) -> None:
        order = desk.manager.submit(buy())
        desk.manager.recover()
        desk.broker.set_quote("AAPL", "100")
        desk.broker.match()
        desk.manager.sync()
        assert desk.manager.get(order.client_order_id) is order
        assert order.state is OrderState.FILLED


class Tampering(SpyGateway):
    """A spy whose listing passes through `rewrite`, to feed the manager impossible reports."""

    def __init__(self, broker: PaperBroker) -> None:
        super().__init__(broker)
        self.rewrite: dict[str, Any] = {}

    def updated_since(self, when: Any) -> list[BrokerOrder]:
        out = []
        for snap in super().updated_since(when):
            change = self.rewrite.get(snap.client_order_id or "")
            out.append(snap if change is None else change(snap))
        return out


class TestSyncSkipsBadSnapshots:
    """A snapshot that cannot be applied is skipped and reported; the other orders still move."""

    @pytest.fixture
    def tampered(self, tmp_path: Path) -> tuple[Desk, Tampering]:
        desk = make_desk(tmp_path)
        gateway = Tampering(desk.broker)
        desk.manager.gateway = gateway
        desk.spy = gateway
        return desk, gateway

    def test_overfill_is_skipped_and_the_others_update(
        self, tampered: tuple[Desk, Tampering]
    ) -> None:
        desk, gateway = tampered
        bad = desk.manager.submit(buy("AAPL"))
        good = desk.manager.submit(buy("MSFT"))
        gateway.rewrite[bad.client_order_id] = lambda s: attrs.evolve(
            s, cumulative_quantity=D("11"), state="filled", average_price=D("100")
        )
        desk.broker.set_quote("AAPL", "100")
        desk.broker.set_quote("MSFT", "100")
        desk.broker.match()
        report = desk.manager.sync()
        assert good.state is OrderState.FILLED
        assert bad.state is OrderState.SUBMITTED
        assert bad.filled_quantity == 0
        assert guard_of(desk.manager).has_pending("AAPL", "buy")
        assert len(report.errors) == 1
        assert bad.client_order_id in report.errors[0]
        assert "overfill" in report.errors[0]
        anomalies = [r for r in desk.records() if r["event"] == "anomaly"]
        assert [r["client_order_id"] for r in anomalies] == [bad.client_order_id]
        del gateway.rewrite[bad.client_order_id]
        desk.manager.sync()
        assert state_of(bad) is OrderState.FILLED
        assert_journal_matches(desk)

    def test_snapshot_claiming_another_orders_client_id_is_skipped(
        self, tampered: tuple[Desk, Tampering]
    ) -> None:
        desk, gateway = tampered
        first = desk.manager.submit(buy("AAPL"))
        second = desk.manager.submit(buy("MSFT"))
        third = desk.manager.submit(buy("IBM"))
        gateway.rewrite[first.client_order_id] = lambda s: attrs.evolve(
            s, client_order_id=second.client_order_id
        )
        for symbol in ("AAPL", "MSFT", "IBM"):
            desk.broker.set_quote(symbol, "100")
        desk.broker.match()
        report = desk.manager.sync()
        assert second.state is OrderState.FILLED  # its own snapshot still applied
        assert third.state is OrderState.FILLED
        assert first.state is OrderState.SUBMITTED  # its snapshot was the forged one
        assert second.broker_order_id != first.broker_order_id
        assert len(report.errors) == 1
        assert first.broker_order_id is not None
        assert first.broker_order_id in report.errors[0]
        assert_journal_matches(desk)

    def test_listing_failure_is_reported_and_the_sync_goes_on(self, desk: Desk) -> None:
        class NoListing(SpyGateway):
            def updated_since(self, when: Any) -> list[BrokerOrder]:
                raise ConnectionError("connection refused")

        desk.manager.gateway = NoListing(desk.broker)
        desk.broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)
        order = desk.manager.submit(buy())
        report = desk.manager.sync()
        assert any("updated_since failed" in e for e in report.errors)
        assert report.resolved == (order.client_order_id,)  # the lookup still ran
        line = str(report)
        assert line.startswith("1 event on 1 order (1 submit); 1 resolved; errors: ")
        assert "connection refused" in line and "\n" not in line


class TestSyncReportAsText:
    """`print(manager.sync())` is one line a person reads, not a wall of reprs."""

    def test_it_counts_the_events_by_trigger(self, desk: Desk) -> None:
        desk.manager.submit(buy("AAPL"))
        desk.manager.submit(buy("MSFT"))
        desk.broker.set_quote("AAPL", "99")
        desk.broker.set_quote("MSFT", "99")
        desk.broker.match()
        assert str(desk.manager.sync()) == "2 events on 2 orders (2 fill); no errors"

    def test_an_idle_sync_says_so(self, desk: Desk) -> None:
        assert str(desk.manager.sync()) == "0 events on 0 orders; no errors"


class TestReplayEqualsLive:
    """After a session with every fault, the journal replays to exactly the live orders."""

    def test_mixed_session(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, broker=PaperBroker(liquidity="3"), config=NEVER_PLACED_NOW)
        m, b = desk.manager, desk.broker
        for symbol in ("AAPL", "MSFT", "IBM", "GE", "F", "T", "KO", "PEP"):
            b.set_quote(symbol, "100")
        plain = m.submit(buy("AAPL"))
        b.inject(Fault.REJECT)
        m.submit(buy("MSFT"))
        b.inject(Fault.TIMEOUT_BEFORE_ACCEPT)
        m.submit(buy("IBM"))
        b.inject(Fault.TIMEOUT_AFTER_ACCEPT)
        found = m.submit(sell("GE"))
        raced = m.submit(sell("F", ref="200"))
        late = m.submit(sell("T", ref="200"))
        lost = m.submit(sell("KO", ref="200"))
        b.inject(Fault.CANCEL_LOSES_RACE)
        m.cancel(raced.client_order_id)
        b.inject(Fault.LATE_FILL_AFTER_CANCEL)
        m.cancel(late.client_order_id)
        b.inject(Fault.LOST_CANCEL)
        m.cancel(lost.client_order_id)
        m.sync()  # the cancels land before the late fill is matched
        b.inject(Fault.DUPLICATE_SNAPSHOTS, times=2)
        b.inject(Fault.STALE_SNAPSHOTS, times=2)
        for _ in range(5):
            b.match()
            m.sync()
        assert plain.state is OrderState.FILLED
        assert found.state is OrderState.FILLED
        assert raced.state is OrderState.FILLED
        assert late.state is OrderState.CANCELLED
        assert late.filled_quantity == D("10")
        assert lost.cancel_requested
        assert lost.state is OrderState.SUBMITTED
        for order in (plain, found, raced, late, lost):
            assert_matches_broker(desk, order)
        for order in m.orders():
            assert_invariants(order)
        assert_guards_match(desk)
        assert_journal_matches(desk)


class TestConcurrency:
    """A polling thread syncing while the bot submits and cancels leaves every order consistent."""

    def test_sync_thread_against_submits_and_cancels(self, tmp_path: Path) -> None:
        desk = make_desk(
            tmp_path,
            broker=PaperBroker(liquidity="2", seed=7),
            config={"circuit_breakers": {"max_orders_per_minute": 10_000}},
        )
        m, b = desk.manager, desk.broker
        symbols = ("AAPL", "MSFT", "IBM", "GE")
        for symbol in symbols:
            b.set_quote(symbol, "100")
        stop = threading.Event()
        failures: list[BaseException] = []
        reports = []

        def poll() -> None:
            try:
                while not stop.is_set():
                    reports.append(m.sync())
            except BaseException as error:  # pragma: no cover - reported below
                failures.append(error)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            for i in range(120):
                symbol, side = symbols[i % 4], ("buy", "sell")[i // 4 % 2]
                try:
                    order = m.submit(OrderRequest(symbol, side, "5", "100"))
                except SafetyViolation:
                    continue
                if i % 3 == 0:
                    m.cancel(order.client_order_id)
                if i % 2 == 0:
                    b.match()
        finally:
            stop.set()
            poller.join(timeout=30)
        assert not poller.is_alive()
        assert failures == []
        assert len(reports) > 1  # the poller really ran alongside the bot
        assert all(r.errors == () for r in reports)
        for _ in range(10):
            for order in m.open_orders():
                m.cancel(order.client_order_id)
            b.match()
            m.sync()
        assert m.open_orders() == []
        for order in m.orders():
            assert_invariants(order)
            assert_matches_broker(desk, order)
        assert_guards_match(desk)
        assert desk.spy.count("submit_limit") == len(m.orders()) == len(desk.broker_orders())
        assert_journal_matches(desk)


class TestReviewFindings:
    """Failure paths a review found: each keeps an order tracked and the reports honest."""

    def test_a_journal_that_cannot_take_the_unknown_note_does_not_lose_the_order(
        self, tmp_path: Path
    ) -> None:
        class NoNotes(AuditJournal):
            def record_note(
                self, order: Order, event: str, reason: str, *, at: datetime | None = None
            ) -> None:
                raise OSError(28, "No space left on device")

        desk = make_desk(
            tmp_path,
            journal=NoNotes(tmp_path / "orders.jsonl"),
            config={"unknown_order_grace_seconds": 0, "unknown_order_lookups": 1},
        )
        desk.broker.inject(Fault.TIMEOUT_BEFORE_ACCEPT)
        order = desk.manager.submit(buy())  # no OSError escapes: the order is tracked
        assert order.state is OrderState.PENDING
        assert guard_of(desk.manager).has_pending("AAPL", "buy")

        report = desk.manager.sync()

        assert report.never_placed == (order.client_order_id,)
        assert not guard_of(desk.manager).has_pending("AAPL", "buy")
        assert any("No space left on device" in error for error in report.errors)

    def test_a_stale_working_view_of_a_broker_rejected_order_is_no_alarm(self, desk: Desk) -> None:
        desk.broker.inject(Fault.REJECT_AFTER_ACCEPT)
        order = desk.manager.submit(buy())
        desk.manager.ingest(desk.broker.match())
        assert order.state is OrderState.REJECTED
        desk.broker.inject(Fault.STALE_SNAPSHOTS)
        desk.broker.set_quote("AAPL", "100")

        report = desk.manager.sync()  # lists `rejected`, then the older `confirmed` view

        assert report.errors == ()
        assert desk.spy.count("cancel") == 0

    def test_a_repeated_client_order_id_is_refused_before_anything_is_sent(
        self, tmp_path: Path
    ) -> None:
        spy = SpyGateway(PaperBroker())
        manager = OrderManager(
            spy,
            journal=AuditJournal(tmp_path / "orders.jsonl"),
            client_order_ids=lambda: "same-id",  # a broken id factory
        )
        manager.submit(buy("AAPL"))
        with pytest.raises(InvalidOrderError, match="must be unique"):
            manager.submit(buy("MSFT"))
        assert spy.count("submit_limit") == 1
        assert len(AuditJournal.replay(tmp_path / "orders.jsonl")) == 1


class _CancelsFail(SpyGateway):
    """A gateway whose cancel requests never get through (a 5xx on every retry)."""

    def cancel(self, broker_order_id: str) -> None:
        self.calls.append(("cancel", broker_order_id))
        raise BrokerError("Robinhood answered 503 on every attempt; try again later")


class TestUndeliveredCancel:
    """A cancel that cannot be delivered is visible in every sync until it is."""

    def test_each_sync_names_the_order_whose_cancel_failed(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        broker = PaperBroker(quotes={"AAPL": "101"})
        gateway = _CancelsFail(broker)
        manager = OrderManager(gateway, journal=AuditJournal(tmp_path / "j.jsonl"))
        order = manager.submit(buy())
        manager.cancel(order.client_order_id)
        caplog.set_level("INFO", logger="orders")
        for _ in range(2):
            report = manager.sync()
            assert [e for e in report.errors if order.client_order_id in e] == [
                f"order {order.client_order_id}: the cancel could not be delivered (BrokerError:"
                " Robinhood answered 503 on every attempt; try again later); it is sent again at"
                " the next sync, and the order may still fill meanwhile"
            ]
            assert report.cancels_resent == ()
        assert gateway.count("cancel") == 3
        assert "cancel_resent" not in caplog.text  # only said once a cancel got through
        assert order.cancel_requested and order.state is OrderState.SUBMITTED


class TestRetention:
    """Finished orders leave memory after `retention_seconds`; the journal still answers."""

    def test_a_finished_order_is_evicted_and_still_answered_from_the_journal(
        self, tmp_path: Path
    ) -> None:
        clock = ManualUtcClock()
        broker = PaperBroker(quotes={"AAPL": "99", "MSFT": "101"}, clock=clock)
        desk = make_desk(tmp_path, broker=broker, config={"retention_seconds": 600}, clock=clock)
        done = desk.manager.submit(buy("AAPL"))
        working = desk.manager.submit(buy("MSFT"))
        broker.match()
        desk.manager.sync()
        assert done.state is OrderState.FILLED
        clock.advance(599)
        desk.manager.sync()
        assert desk.manager.get(done.client_order_id, journal=False) is done
        clock.advance(2)
        desk.manager.sync()

        assert desk.manager.get(done.client_order_id, journal=False) is None
        assert desk.manager.orders() == [working]
        assert desk.manager.open_orders() == [working]
        rebuilt = desk.manager.get(done.client_order_id)
        assert rebuilt is not None and rebuilt is not done
        assert (rebuilt.state, rebuilt.filled_quantity) == (OrderState.FILLED, D(10))
        assert desk.manager.get("never-seen") is None
        # A working order stays however old it is.
        clock.advance(10_000)
        desk.manager.sync()
        assert desk.manager.get(working.client_order_id, journal=False) is working

    def test_a_cancelled_order_stays_for_a_late_fill_however_short_the_retention(
        self, tmp_path: Path
    ) -> None:
        clock = ManualUtcClock()
        broker = PaperBroker(quotes={"AAPL": "101"}, clock=clock)
        desk = make_desk(tmp_path, broker=broker, config={"retention_seconds": 60}, clock=clock)
        order = desk.manager.submit(buy("AAPL"))
        broker.inject(Fault.LATE_FILL_AFTER_CANCEL)
        desk.manager.cancel(order.client_order_id)
        desk.manager.sync()
        assert order.state is OrderState.CANCELLED
        clock.advance(180)
        desk.manager.sync()  # past the retention, within the window of a late fill
        broker.match()  # the fill that raced the cancel lands
        report = desk.manager.sync()
        assert [e.trigger for _, e in report.events] == ["fill"]
        assert order.filled_quantity == 10
        rebuilt = desk.manager.get(order.client_order_id)  # nothing owed now: evicted, journaled
        assert rebuilt is not None and rebuilt.filled_quantity == 10
