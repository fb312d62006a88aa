"""PaperBroker: the simulated broker every paper run and service test stands on."""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders.account import AccountSource
from orders.errors import BrokerError, InvalidOrderError
from orders.gateways import _paper_changes
from orders.gateways.base import Accepted, OrderGateway, Rejected, Unknown
from orders.gateways.paper import Fault, PaperBroker, SimulatedClock, session_close_after
from orders.lifecycle import Order
from orders.model import BrokerOrder, OrderState
from tests.factories import ManualUtcClock

D = Decimal


def make_order(
    side: str = "buy",
    quantity: str = "10",
    limit: str = "100",
    *,
    symbol: str = "AAPL",
    client_order_id: str | None = None,
) -> Order:
    return Order(symbol, side, quantity, limit, client_order_id=client_order_id)


def make_broker(**kwargs: Any) -> PaperBroker:
    kwargs.setdefault("clock", SimulatedClock())
    return PaperBroker(**kwargs)


def accept(broker: PaperBroker, order: Order) -> BrokerOrder:
    outcome = broker.submit_limit(order)
    assert isinstance(outcome, Accepted), outcome
    return outcome.snapshot


def current(broker: PaperBroker, snap: BrokerOrder) -> BrokerOrder:
    found = broker.fetch(snap.broker_order_id)
    assert found is not None
    return found


class TestProtocols:
    """PaperBroker is usable wherever a gateway or an account source is expected."""

    def test_is_a_gateway_and_an_account_source(self) -> None:
        broker = PaperBroker()
        assert isinstance(broker, OrderGateway)
        assert isinstance(broker, AccountSource)


class TestSubmission:
    """A submitted order rests at the broker, unfilled, until match()."""

    def test_accepted_snapshot_describes_the_order_unfilled(self) -> None:
        broker = make_broker()
        order = make_order(client_order_id="cid-1")
        snap = accept(broker, order)
        assert (snap.client_order_id, snap.symbol, snap.side) == ("cid-1", "AAPL", "buy")
        assert (snap.quantity, snap.limit_price) == (D(10), D(100))
        assert snap.state is OrderState.SUBMITTED
        assert snap.raw_state == "unconfirmed"
        assert snap.cumulative_quantity == 0
        assert snap.average_price is None
        assert snap.executions == ()

    def test_broker_confirms_the_order_after_creating_it(self) -> None:
        broker = make_broker()
        snap = accept(broker, make_order())
        later = current(broker, snap)
        assert later.raw_state == "confirmed"
        assert later.state is OrderState.SUBMITTED
        assert later.updated_at is not None and snap.updated_at is not None
        assert later.updated_at > snap.updated_at

    def test_a_marketable_order_does_not_fill_at_submission(self) -> None:
        broker = make_broker(quotes={"AAPL": "90"})
        snap = accept(broker, make_order())
        assert current(broker, snap).cumulative_quantity == 0
        assert broker.fetch_positions() == {}

    def test_resubmitting_a_client_id_returns_the_existing_order(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"})
        first = accept(broker, make_order(client_order_id="same"))
        broker.match()
        second = accept(broker, make_order(client_order_id="same"))
        assert second.broker_order_id == first.broker_order_id
        assert second.state is OrderState.FILLED
        assert broker.fetch_positions() == {"AAPL": D(10)}
        assert len(broker.updated_since(datetime.min.replace(tzinfo=UTC))) == 1

    def test_resubmission_reserves_buying_power_once(self) -> None:
        broker = make_broker(buying_power="1500")
        accept(broker, make_order(client_order_id="same"))
        accept(broker, make_order(client_order_id="same"))
        assert broker.fetch_buying_power() == D(500)

    def test_unknown_ids_are_not_found(self) -> None:
        broker = make_broker()
        accept(broker, make_order())
        assert broker.fetch("no-such-order") is None
        assert broker.find_by_client_id("no-such-client-id") is None


class TestMatching:
    """match() fills marketable orders in full, at the better of limit and quote."""

    @pytest.mark.parametrize(
        ("side", "quote", "fills"),
        [
            ("buy", "100", True),
            ("buy", "100.01", False),
            ("buy", "99.99", True),
            ("sell", "100", True),
            ("sell", "99.99", False),
            ("sell", "100.01", True),
        ],
    )
    def test_marketability_at_the_boundary(self, side: str, quote: str, fills: bool) -> None:
        broker = make_broker(quotes={"AAPL": quote})
        snap = accept(broker, make_order(side, limit="100"))
        changed = broker.match()
        expected = D(10) if fills else D(0)
        assert current(broker, snap).cumulative_quantity == expected
        assert len(changed) == (1 if fills else 0)

    @pytest.mark.parametrize(("side", "quote"), [("buy", "99.50"), ("sell", "100.50")])
    def test_fill_price_is_the_quote_when_it_is_better(self, side: str, quote: str) -> None:
        broker = make_broker(quotes={"AAPL": quote})
        accept(broker, make_order(side, limit="100"))
        [snap] = broker.match()
        assert [e.price for e in snap.executions] == [D(quote)]
        assert snap.average_price == D(quote)

    def test_a_full_fill_is_reported_as_filled(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"})
        accept(broker, make_order())
        [snap] = broker.match()
        assert snap.state is OrderState.FILLED
        assert snap.raw_state == "filled"
        assert snap.cumulative_quantity == D(10)
        [execution] = snap.executions
        assert execution.quantity == D(10)
        assert execution.timestamp == snap.updated_at

    def test_match_returns_only_what_changed(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"})
        accept(broker, make_order())
        resting = accept(broker, make_order(limit="90"))
        assert [s.limit_price for s in broker.match()] == [D(100)]
        assert broker.match() == []
        assert current(broker, resting).state is OrderState.SUBMITTED

    def test_without_a_quote_nothing_fills(self) -> None:
        broker = make_broker(quotes={"MSFT": "1"})
        accept(broker, make_order())
        assert broker.match() == []

    def test_a_removed_quote_stops_filling(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"})
        broker.set_quote("AAPL", None)
        accept(broker, make_order())
        assert broker.match() == []

    def test_set_quote_refuses_a_float(self) -> None:
        broker = make_broker()
        with pytest.raises(InvalidOrderError, match="float"):
            broker.set_quote("AAPL", 100.5)  # type: ignore[arg-type]


class TestLiquidity:
    """A liquidity cap makes match() fill in parts, with exact quantities and VWAP."""

    def test_partial_fills_accumulate_to_a_full_fill(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"}, liquidity="4")
        accept(broker, make_order(limit="100"))
        [first] = broker.match()
        broker.set_quote("AAPL", "99")
        [second] = broker.match()
        broker.set_quote("AAPL", "98")
        [third] = broker.match()
        assert [s.cumulative_quantity for s in (first, second, third)] == [D(4), D(8), D(10)]
        assert [s.raw_state for s in (first, second, third)] == [
            "partially_filled",
            "partially_filled",
            "filled",
        ]
        assert second.average_price == D("99.5")
        assert third.average_price == (4 * D(100) + 4 * D(99) + 2 * D(98)) / 10
        assert [e.quantity for e in third.executions] == [D(4), D(4), D(2)]
        assert len({e.execution_id for e in third.executions}) == 3

    def test_average_price_is_the_exact_quotient(self) -> None:
        broker = make_broker(quotes={"AAPL": "1"}, liquidity="1")
        accept(broker, make_order(quantity="3", limit="2"))
        broker.match()
        broker.match()
        broker.set_quote("AAPL", "2")
        [snap] = broker.match()
        assert snap.average_price == D(4) / D(3)

    def test_liquidity_is_shared_by_a_symbol_in_submission_order(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"}, liquidity="6")
        early = accept(broker, make_order(quantity="4"))
        late = accept(broker, make_order(quantity="4"))
        first = broker.match()
        assert [(s.broker_order_id, s.cumulative_quantity) for s in first] == [
            (early.broker_order_id, D(4)),
            (late.broker_order_id, D(2)),
        ]
        assert [s.cumulative_quantity for s in broker.match()] == [D(4)]

    def test_per_symbol_liquidity_overrides_and_can_be_lifted(self) -> None:
        broker = make_broker(quotes={"AAPL": "100", "MSFT": "100"}, liquidity="5")
        broker.set_liquidity("MSFT", "1")
        accept(broker, make_order(symbol="AAPL"))
        accept(broker, make_order(symbol="MSFT"))
        assert {s.symbol: s.cumulative_quantity for s in broker.match()} == {
            "AAPL": D(5),
            "MSFT": D(1),
        }
        broker.set_liquidity("MSFT", None)
        assert {s.symbol: s.cumulative_quantity for s in broker.match()} == {
            "AAPL": D(10),
            "MSFT": D(10),
        }


class TestCancel:
    """A cancel lands at once, keeps the fills already made, and never raises."""

    def test_cancel_lands_at_once_and_stops_fills(self) -> None:
        broker = make_broker()
        snap = accept(broker, make_order())
        broker.cancel(snap.broker_order_id)
        cancelled = current(broker, snap)
        assert (cancelled.state, cancelled.raw_state) == (OrderState.CANCELLED, "cancelled")
        broker.set_quote("AAPL", "90")
        assert broker.match() == []
        assert current(broker, snap).cumulative_quantity == 0

    def test_cancel_keeps_partial_fills(self) -> None:
        broker = make_broker(quotes={"AAPL": "99"}, liquidity="3")
        snap = accept(broker, make_order())
        [partial] = broker.match()
        broker.cancel(snap.broker_order_id)
        cancelled = current(broker, snap)
        assert cancelled.state is OrderState.CANCELLED
        assert cancelled.cumulative_quantity == D(3)
        assert cancelled.average_price == D(99)
        assert cancelled.executions == partial.executions

    def test_cancelling_a_finished_order_changes_nothing(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"})
        snap = accept(broker, make_order())
        broker.match()
        filled = current(broker, snap)
        broker.cancel(snap.broker_order_id)
        assert current(broker, snap) == filled

    def test_cancelling_an_unknown_order_changes_nothing(self) -> None:
        broker = make_broker()
        snap = accept(broker, make_order())
        before = current(broker, snap)
        broker.cancel("no-such-order")
        assert current(broker, snap) == before


class TestAccount:
    """Buying power and positions follow submissions, fills and cancels."""

    def test_a_buy_reserves_its_limit_value_and_fills_at_the_quote(self) -> None:
        broker = make_broker(buying_power="10000")
        accept(broker, make_order(quantity="10", limit="100"))
        assert broker.fetch_buying_power() == D(9000)
        broker.set_quote("AAPL", "95.5")
        broker.match()
        assert broker.fetch_buying_power() == D(10000) - D("955")
        assert broker.fetch_positions() == {"AAPL": D(10)}

    def test_cancel_releases_what_is_left_of_the_reservation(self) -> None:
        broker = make_broker(buying_power="10000", quotes={"AAPL": "100"}, liquidity="4")
        snap = accept(broker, make_order())
        broker.match()
        broker.cancel(snap.broker_order_id)
        assert broker.fetch_buying_power() == D(9600)
        assert broker.fetch_positions() == {"AAPL": D(4)}

    def test_a_sell_adds_its_proceeds(self) -> None:
        broker = make_broker(buying_power="0", positions={"AAPL": "10"}, quotes={"AAPL": "101"})
        accept(broker, make_order("sell", quantity="4", limit="100"))
        assert broker.fetch_buying_power() == 0
        broker.match()
        assert broker.fetch_buying_power() == D(404)
        assert broker.fetch_positions() == {"AAPL": D(6)}

    def test_a_closed_position_disappears(self) -> None:
        broker = make_broker(positions={"AAPL": "10"}, quotes={"AAPL": "100"})
        accept(broker, make_order("sell", quantity="10"))
        broker.match()
        assert broker.fetch_positions() == {}

    def test_not_enough_buying_power_is_rejected_and_creates_nothing(self) -> None:
        broker = make_broker(buying_power="999.99")
        outcome = broker.submit_limit(make_order(client_order_id="poor"))
        assert isinstance(outcome, Rejected)
        assert outcome.reason.startswith("Not enough buying power.")
        assert broker.find_by_client_id("poor") is None
        assert broker.fetch_buying_power() == D("999.99")

    def test_exactly_enough_buying_power_is_accepted(self) -> None:
        broker = make_broker(buying_power="1000")
        accept(broker, make_order())
        assert broker.fetch_buying_power() == 0

    def test_selling_unheld_shares_goes_short_by_default(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"})
        accept(broker, make_order("sell", quantity="2"))
        broker.match()
        assert broker.fetch_positions() == {"AAPL": D(-2)}

    def test_without_shorting_a_sell_must_fit_the_shares_not_already_for_sale(self) -> None:
        broker = make_broker(positions={"AAPL": "10"}, allow_short=False)
        accept(broker, make_order("sell", quantity="6"))
        outcome = broker.submit_limit(make_order("sell", quantity="5"))
        assert isinstance(outcome, Rejected)
        assert outcome.reason.startswith("Not enough shares to sell.")
        accept(broker, make_order("sell", quantity="4"))

    def test_buying_power_must_not_start_negative(self) -> None:
        with pytest.raises(InvalidOrderError, match="buying_power"):
            PaperBroker(buying_power="-1")


class TestSubmitFaults:
    """Injected submission faults produce the outcomes the service must survive."""

    @pytest.mark.parametrize(
        "fault", [Fault.TIMEOUT_BEFORE_ACCEPT, Fault.THROTTLE, Fault.SERVER_ERROR]
    )
    def test_transport_failures_are_unknown_and_create_nothing(self, fault: Fault) -> None:
        broker = make_broker(buying_power="1000")
        broker.inject(fault)
        outcome = broker.submit_limit(make_order(client_order_id="c1"))
        assert isinstance(outcome, Unknown)
        assert broker.find_by_client_id("c1") is None
        assert broker.fetch_buying_power() == D(1000)
        accept(broker, make_order(client_order_id="c1"))  # the fault was one-shot

    def test_throttling_says_when_to_come_back(self) -> None:
        broker = make_broker()
        broker.inject("throttle")
        outcome = broker.submit_limit(make_order())
        assert isinstance(outcome, Unknown)
        assert "Expected available in" in outcome.error

    def test_timeout_after_acceptance_leaves_the_order_at_the_broker(self) -> None:
        broker = make_broker()
        broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)
        outcome = broker.submit_limit(make_order(client_order_id="c1"))
        assert isinstance(outcome, Unknown)
        found = broker.find_by_client_id("c1")
        assert found is not None and found.state is OrderState.SUBMITTED
        retry = accept(broker, make_order(client_order_id="c1"))
        assert retry.broker_order_id == found.broker_order_id

    def test_both_timeouts_look_the_same_to_the_caller(self) -> None:
        broker = make_broker()
        broker.inject(Fault.TIMEOUT_BEFORE_ACCEPT)
        broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)
        before = broker.submit_limit(make_order())
        after = broker.submit_limit(make_order())
        assert before == after

    def test_reject_refuses_with_a_reason_and_creates_nothing(self) -> None:
        broker = make_broker()
        broker.inject(Fault.REJECT, message="Market is closed.")
        outcome = broker.submit_limit(make_order(client_order_id="c1"))
        assert outcome == Rejected("Market is closed.")
        assert broker.find_by_client_id("c1") is None

    def test_reject_after_accept_rejects_on_the_next_match(self) -> None:
        broker = make_broker(buying_power="1000", quotes={"AAPL": "100"})
        broker.inject(Fault.REJECT_AFTER_ACCEPT)
        snap = accept(broker, make_order())
        [rejected] = broker.match()
        assert (rejected.broker_order_id, rejected.state) == (snap.broker_order_id, "rejected")
        assert rejected.raw_state == "rejected"
        assert rejected.reject_reason
        assert rejected.cumulative_quantity == 0
        assert broker.fetch_buying_power() == D(1000)

    def test_times_counts_the_calls_hit(self) -> None:
        broker = make_broker()
        broker.inject(Fault.SERVER_ERROR, times=2)
        outcomes = [broker.submit_limit(make_order()) for _ in range(3)]
        assert [type(o) for o in outcomes] == [Unknown, Unknown, Accepted]

    def test_a_fault_for_one_symbol_spares_the_others(self) -> None:
        broker = make_broker()
        broker.inject(Fault.REJECT, symbol="MSFT")
        accept(broker, make_order(symbol="AAPL"))
        assert broker.armed_faults == ((Fault.REJECT, 1),)
        assert isinstance(broker.submit_limit(make_order(symbol="MSFT")), Rejected)
        assert not broker.armed_faults

    def test_clear_faults_disarms_them(self) -> None:
        broker = make_broker()
        broker.inject(Fault.REJECT, times=5)
        broker.clear_faults()
        accept(broker, make_order())

    def test_bad_injections_are_refused(self) -> None:
        broker = make_broker()
        with pytest.raises(InvalidOrderError, match="fault"):
            broker.inject("explode")
        with pytest.raises(InvalidOrderError, match="times"):
            broker.inject(Fault.REJECT, times=0)
        with pytest.raises(InvalidOrderError, match="fault_rates"):
            PaperBroker(fault_rates={Fault.REJECT: 1.5})


class TestCancelFaults:
    """Injected cancel faults reproduce the races a real cancel can lose."""

    def test_a_lost_cancel_leaves_the_order_working(self) -> None:
        broker = make_broker()
        snap = accept(broker, make_order())
        broker.inject(Fault.LOST_CANCEL)
        broker.cancel(snap.broker_order_id)
        assert current(broker, snap).state is OrderState.SUBMITTED
        broker.set_quote("AAPL", "100")
        assert [s.state for s in broker.match()] == [OrderState.FILLED]

    def test_a_cancel_that_loses_the_race_finds_the_order_filled(self) -> None:
        broker = make_broker(buying_power="1000", quotes={"AAPL": "100"}, liquidity="3")
        snap = accept(broker, make_order(limit="100"))
        broker.match()
        broker.inject(Fault.CANCEL_LOSES_RACE)
        broker.cancel(snap.broker_order_id)
        filled = current(broker, snap)
        assert filled.state is OrderState.FILLED
        assert filled.cumulative_quantity == D(10)
        assert [e.quantity for e in filled.executions] == [D(3), D(7)]
        assert broker.fetch_positions() == {"AAPL": D(10)}
        assert broker.fetch_buying_power() == 0

    def test_a_late_fill_lands_on_the_cancelled_order(self) -> None:
        broker = make_broker(buying_power="1000", quotes={"AAPL": "100"}, liquidity="4")
        snap = accept(broker, make_order(limit="100"))
        broker.match()
        broker.inject(Fault.LATE_FILL_AFTER_CANCEL)
        broker.cancel(snap.broker_order_id)
        cancelled = current(broker, snap)
        assert (cancelled.state, cancelled.cumulative_quantity) == (OrderState.CANCELLED, D(4))
        assert broker.fetch_buying_power() == D(600)
        [late] = broker.match()
        assert (late.state, late.raw_state) == (OrderState.CANCELLED, "cancelled")
        assert late.cumulative_quantity == D(10)
        assert len(late.executions) == 2
        assert broker.fetch_positions() == {"AAPL": D(10)}
        assert broker.fetch_buying_power() == 0
        assert broker.match() == []

    def test_cancel_faults_wait_for_a_cancel_that_can_land(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"})
        snap = accept(broker, make_order())
        broker.match()
        broker.inject(Fault.LOST_CANCEL)
        broker.cancel(snap.broker_order_id)  # already filled: nothing to lose
        assert broker.armed_faults == ((Fault.LOST_CANCEL, 1),)


class TestDeliveryFaults:
    """Injected delivery faults repeat snapshots or deliver an older one after a newer one."""

    def test_duplicates_repeat_every_snapshot_once(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"})
        accept(broker, make_order(client_order_id="a"))
        accept(broker, make_order(client_order_id="b"))
        broker.inject(Fault.DUPLICATE_SNAPSHOTS)
        assert [s.client_order_id for s in broker.match()] == ["a", "a", "b", "b"]
        assert len(broker.updated_since(datetime.min.replace(tzinfo=UTC))) == 2

    def test_stale_snapshots_follow_the_newer_ones(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"}, liquidity="4")
        snap = accept(broker, make_order())
        broker.match()
        broker.inject(Fault.STALE_SNAPSHOTS)
        delivered = broker.updated_since(datetime.min.replace(tzinfo=UTC))
        assert [s.cumulative_quantity for s in delivered] == [D(4), D(0)]
        assert delivered[1].raw_state == "confirmed"
        assert current(broker, snap).cumulative_quantity == D(4)

    def test_stale_delivery_applies_to_match_too(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"}, liquidity="4")
        accept(broker, make_order())
        broker.match()
        broker.inject(Fault.STALE_SNAPSHOTS)
        assert [s.cumulative_quantity for s in broker.match()] == [D(8), D(4)]

    def test_an_order_fed_garbled_deliveries_ends_up_right(self) -> None:
        snapshot = pytest.importorskip("orders.snapshot")
        broker = make_broker(quotes={"AAPL": "100"}, liquidity="4")
        order = make_order()
        outcome = broker.submit_limit(order)
        assert isinstance(outcome, Accepted)
        snapshot.apply_snapshot(order, outcome.snapshot)
        broker.inject(Fault.DUPLICATE_SNAPSHOTS, times=3)
        broker.inject(Fault.STALE_SNAPSHOTS, times=3)
        for _ in range(3):
            for delivered in broker.match():
                snapshot.apply_snapshot(order, delivered)
        assert order.state is OrderState.FILLED
        assert order.filled_quantity == D(10)
        assert len(order.executions) == 3


class TestUpdatedSince:
    """updated_since returns every order changed at or after a time, oldest change first."""

    def test_returns_orders_changed_at_or_after_the_time(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"})
        first = accept(broker, make_order(client_order_id="a", limit="90"))
        second = accept(broker, make_order(client_order_id="b", limit="90"))
        since = current(broker, second).updated_at
        assert since is not None
        assert [s.client_order_id for s in broker.updated_since(since)] == ["b"]
        broker.cancel(first.broker_order_id)
        assert [s.client_order_id for s in broker.updated_since(since)] == ["b", "a"]
        assert broker.updated_since(since + timedelta(days=1)) == []

    def test_broker_time_never_runs_backwards(self) -> None:
        times = iter(
            [datetime(2024, 1, 2, 15, tzinfo=UTC)] * 2 + [datetime(2024, 1, 1, tzinfo=UTC)] * 9
        )
        broker = PaperBroker(clock=lambda: next(times))
        snap = accept(broker, make_order())
        broker.cancel(snap.broker_order_id)
        since = datetime(2024, 1, 2, 15, tzinfo=UTC)
        assert [s.state for s in broker.updated_since(since)] == [OrderState.CANCELLED]

    def test_default_clock_is_the_wall_clock(self) -> None:
        before = datetime.now(UTC)
        broker = PaperBroker()
        accept(broker, make_order())
        assert len(broker.updated_since(before)) == 1

    def test_a_naive_time_is_refused(self) -> None:
        broker = make_broker()
        with pytest.raises(InvalidOrderError, match="timezone-aware"):
            broker.updated_since(datetime(2024, 1, 1))  # noqa: DTZ001 (the naive time under test)


def run_scenario(broker: PaperBroker, prefix: str = "c") -> list[object]:
    """A fixed mix of calls, returning everything the broker answered."""
    answers: list[object] = []
    for index in range(12):
        symbol = ("AAPL", "MSFT")[index % 2]
        side = ("buy", "sell")[index % 3 == 0]
        order = make_order(side, quantity="5", symbol=symbol, client_order_id=f"{prefix}{index}")
        outcome = broker.submit_limit(order)
        answers.append(outcome)
        broker.set_quote(symbol, D(99) + index % 3)
        answers.append(broker.match())
        if index % 4 == 1 and isinstance(outcome, Accepted):
            broker.cancel(outcome.snapshot.broker_order_id)
    answers.append(broker.updated_since(datetime.min.replace(tzinfo=UTC)))
    answers.append((broker.fetch_buying_power(), broker.fetch_positions()))
    return answers


def faulty_broker(seed: int) -> PaperBroker:
    rates: dict[Fault | str, float] = {fault: 0.15 for fault in Fault}
    return make_broker(seed=seed, liquidity="3", fault_rates=rates)


class TestDeterminism:
    """Two brokers with the same seed and calls give identical answers; ids never repeat."""

    def test_same_seed_same_answers(self) -> None:
        assert run_scenario(faulty_broker(7)) == run_scenario(faulty_broker(7))

    def test_another_seed_gives_other_ids(self) -> None:
        first = accept(make_broker(seed=1), make_order(client_order_id="c"))
        second = accept(make_broker(seed=2), make_order(client_order_id="c"))
        assert first.broker_order_id != second.broker_order_id

    def test_a_seed_prints_the_ids_and_times_it_always_printed(self) -> None:
        """A seeded simulation is reproduced by a later release too: the same ids and times."""
        broker = make_broker(seed=42, quotes={"AAPL": "100"}, liquidity="4")
        created = accept(broker, make_order(client_order_id="c-1"))
        for _ in range(3):
            broker.match()
        filled = current(broker, created)

        def at(second: int) -> datetime:
            return datetime(2024, 1, 2, 14, 30, second, tzinfo=UTC)

        assert created.broker_order_id == "bdd640fb-0667-4ad1-9c80-317fa3b1799d"
        assert created.updated_at == at(0)
        assert [(e.execution_id, e.quantity, e.timestamp) for e in filled.executions] == [
            ("23b8c1e9-3924-46de-beb1-3b9046685257", D(4), at(2)),
            ("bd9c66b3-ad3c-4d6d-9a3d-1fa7bc8960a9", D(4), at(3)),
            ("972a8469-1641-4f82-8b9d-2434e465e150", D(2), at(4)),
        ]
        assert (filled.broker_order_id, filled.state) == (created.broker_order_id, "filled")

    def test_ids_are_the_uuid4s_of_the_seeds_draws(self) -> None:
        """Every order id and execution id, in the order they are made, is what `uuid` prints
        for the next 128 bits of `random.Random(seed)`: whatever bits a draw gives."""
        broker = make_broker(seed=5, quotes={"AAPL": "100"}, liquidity="4")
        made: list[str] = []
        for _ in range(40):
            made.append(accept(broker, make_order()).broker_order_id)
            for _ in range(3):
                made += [snap.executions[-1].execution_id for snap in broker.match()]

        draws = random.Random(5)  # the broker's own generator, seeded alike
        assert made == [str(uuid.UUID(int=draws.getrandbits(128), version=4)) for _ in made]

    def test_random_faults_fire_under_their_rates(self) -> None:
        answers = run_scenario(faulty_broker(7))
        assert any(isinstance(a, Unknown | Rejected) for a in answers)

    def test_order_and_execution_ids_are_unique(self) -> None:
        broker = make_broker(quotes={"AAPL": "100"}, liquidity="5")
        for _ in range(5):
            accept(broker, make_order(quantity="3"))
        for _ in range(3):
            broker.match()
        snaps = broker.updated_since(datetime.min.replace(tzinfo=UTC))
        execution_ids = [e.execution_id for s in snaps for e in s.executions]
        assert len({s.broker_order_id for s in snaps}) == 5
        assert len(execution_ids) == len(set(execution_ids)) == 7
        assert sum(e.quantity for s in snaps for e in s.executions) == 15


class TestPersistence:
    """save and load keep the whole broker, so it outlives the process that ran it."""

    def test_round_trip_keeps_orders_money_and_faults_and_continues_identically(
        self, tmp_path: Path
    ) -> None:
        original = faulty_broker(3)
        run_scenario(original)
        original.inject(Fault.LATE_FILL_AFTER_CANCEL, symbol="AAPL", times=2)
        path = tmp_path / "broker.json"
        original.save(path)
        loaded = PaperBroker.load(path)
        everything = datetime.min.replace(tzinfo=UTC)
        assert loaded.updated_since(everything) == original.updated_since(everything)
        assert loaded.fetch_buying_power() == original.fetch_buying_power()
        assert loaded.fetch_positions() == original.fetch_positions()
        assert loaded.armed_faults == original.armed_faults
        assert run_scenario(loaded, "d") == run_scenario(original, "d")

    def test_pending_late_fill_survives_a_restart(self, tmp_path: Path) -> None:
        broker = make_broker(quotes={"AAPL": "100"}, liquidity="4")
        snap = accept(broker, make_order())
        broker.match()
        broker.inject(Fault.LATE_FILL_AFTER_CANCEL)
        broker.cancel(snap.broker_order_id)
        broker.save(tmp_path / "b.json")
        [late] = PaperBroker.load(tmp_path / "b.json").match()
        assert (late.state, late.cumulative_quantity) == (OrderState.CANCELLED, D(10))

    def test_file_is_json_with_exact_decimal_strings_and_no_temp_left(self, tmp_path: Path) -> None:
        broker = make_broker(buying_power="1000.10", quotes={"AAPL": "0.1"})
        accept(broker, make_order(quantity="3", limit="0.1"))
        broker.match()
        broker.save(tmp_path / "b.json")
        broker.save(tmp_path / "b.json")  # overwriting is fine
        data = json.loads((tmp_path / "b.json").read_text())
        assert data["cash"] == "999.80"
        [saved] = data["orders"]
        assert saved["history"][-1]["average_price"] == "0.1"
        assert [p.name for p in tmp_path.iterdir()] == ["b.json"]

    def test_wall_clock_broker_loads_with_the_clock_given(self, tmp_path: Path) -> None:
        broker = PaperBroker()
        accept(broker, make_order())
        broker.save(tmp_path / "b.json")
        clock = SimulatedClock(datetime(2030, 1, 1, tzinfo=UTC))
        loaded = PaperBroker.load(tmp_path / "b.json", clock=clock)
        snap = accept(loaded, make_order())
        assert snap.updated_at == datetime(2030, 1, 1, tzinfo=UTC)

    def test_an_unreadable_file_is_a_broker_error(self, tmp_path: Path) -> None:
        path = tmp_path / "b.json"
        path.write_text('{"format": 1, "seed"')
        with pytest.raises(BrokerError, match=r"b\.json"):
            PaperBroker.load(path)
        with pytest.raises(BrokerError):
            PaperBroker.load(tmp_path / "missing.json")


class TestRetention:
    """Finished orders leave the books after `retention_seconds`; working ones never do."""

    def test_a_filled_order_is_forgotten_after_the_retention(self) -> None:
        clock = ManualUtcClock(datetime(2026, 3, 2, 15, tzinfo=UTC))
        broker = PaperBroker(quotes={"AAPL": "99"}, clock=clock, retention_seconds=60)
        filled = accept(broker, make_order(client_order_id="done"))
        resting = accept(broker, make_order(limit="90", symbol="MSFT", client_order_id="rest"))
        broker.set_quote("MSFT", "100")
        (fill,) = broker.match()
        assert fill.state is OrderState.FILLED
        clock.advance(120)
        broker.match()
        recent = broker.updated_since(clock() - timedelta(seconds=10))
        assert recent == []  # the fill was never listed: kept until someone can have seen it
        assert current(broker, filled).state is OrderState.FILLED  # fetched: now delivered
        broker.updated_since(clock())
        assert broker.fetch(filled.broker_order_id) is None
        assert broker.find_by_client_id("done") is None
        assert current(broker, resting).state is OrderState.SUBMITTED  # working: kept
        assert broker.fetch_positions() == {"AAPL": D(10)}  # the account is not forgotten

    def test_a_cancelled_order_owed_a_late_fill_stays_until_it_is_booked(self) -> None:
        clock = SimulatedClock()
        broker = PaperBroker(quotes={"AAPL": "101"}, clock=clock, retention_seconds=0)
        snap = accept(broker, make_order())
        broker.inject(Fault.LATE_FILL_AFTER_CANCEL)
        broker.cancel(snap.broker_order_id)
        broker.updated_since(datetime(2000, 1, 1, tzinfo=UTC))
        assert current(broker, snap).state is OrderState.CANCELLED
        (late,) = broker.match()
        assert late.cumulative_quantity == 10


class TestThreads:
    """Concurrent callers never lose an order or a reservation."""

    def test_concurrent_submissions_all_land(self) -> None:
        broker = PaperBroker(buying_power="100000")

        def submit(worker: int) -> None:
            for index in range(25):
                accept(broker, make_order(quantity="1", client_order_id=f"{worker}-{index}"))
                broker.match()

        threads = [threading.Thread(target=submit, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        snaps = broker.updated_since(datetime.min.replace(tzinfo=UTC))
        assert len({s.broker_order_id for s in snaps}) == 100
        assert broker.fetch_buying_power() == D(100000) - 100 * D(100)


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("quote"), st.integers(90, 110)),
        st.tuples(st.just("liquidity"), st.integers(1, 7)),
        st.tuples(st.just("match"), st.just(0)),
        st.tuples(st.just("cancel"), st.integers(0, 2)),
    ),
    max_size=25,
)


class TestProperties:
    """Across random quotes, liquidity, matches and cancels the books stay consistent."""

    @settings(max_examples=60, deadline=None)
    @given(steps=_steps)
    def test_fills_only_grow_and_money_is_conserved(self, steps: list[tuple[str, int]]) -> None:
        broker = make_broker(buying_power="10000", liquidity="3")
        snaps = [
            accept(broker, make_order(side, quantity="7", limit=limit))
            for side, limit in (("buy", "100"), ("sell", "100"), ("buy", "95"))
        ]
        seen = {s.broker_order_id: D(0) for s in snaps}
        for action, value in steps:
            if action == "quote":
                broker.set_quote("AAPL", value)
            elif action == "liquidity":
                broker.set_liquidity("AAPL", value)
            elif action == "cancel":
                broker.cancel(snaps[value].broker_order_id)
            for snap in broker.match() if action == "match" else []:
                assert snap.cumulative_quantity >= seen[snap.broker_order_id]
                seen[snap.broker_order_id] = snap.cumulative_quantity
        reserved = D(0)
        spent = D(0)
        for snap in snaps:
            now = current(broker, snap)
            assert 0 <= now.cumulative_quantity <= now.quantity
            assert now.cumulative_quantity == sum(e.quantity for e in now.executions)
            notional = sum(e.quantity * e.price for e in now.executions)
            if now.executions:
                assert now.average_price == notional / now.cumulative_quantity
                assert now.limit_price is not None
                assert all(
                    e.price <= now.limit_price if now.side == "buy" else e.price >= now.limit_price
                    for e in now.executions
                )
            sign = 1 if now.side == "buy" else -1
            spent += sign * notional
            if now.side == "buy" and not now.state.is_terminal:
                reserved += now.limit_price * (now.quantity - now.cumulative_quantity)  # type: ignore[operator]
        assert broker.fetch_buying_power() + reserved + spent == D(10000)


class ManualClock:
    """A clock that moves only when a test says so."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# Monday 5 January 2026, 15:59 in New York (EST, UTC-5): a minute before the close.
BEFORE_CLOSE = datetime(2026, 1, 5, 20, 59, tzinfo=UTC)


def gtc_order(**kwargs: Any) -> Order:
    return Order("AAPL", "buy", "10", "100", time_in_force="gtc", **kwargs)


class TestEndOfDay:
    """With `cancel_gfd_at_close`, the close cancels gfd orders with Robinhood's cause."""

    def test_the_close_cancels_gfd_with_end_of_day_and_keeps_gtc(self) -> None:
        clock = ManualClock(BEFORE_CLOSE)
        broker = PaperBroker(clock=clock, cancel_gfd_at_close=True)
        day = accept(broker, make_order())
        good = accept(broker, gtc_order())
        assert broker.match() == []  # 15:59: nothing to do yet

        clock.now = BEFORE_CLOSE + timedelta(minutes=1)  # 16:00
        changed = broker.match()

        assert [s.broker_order_id for s in changed] == [day.broker_order_id]
        expired = current(broker, day)
        assert (expired.state, expired.raw_state, expired.cancel_reason) == (
            OrderState.CANCELLED,
            "cancelled",
            "end_of_day",
        )
        assert current(broker, good).state is OrderState.SUBMITTED
        assert broker.fetch_buying_power() == D(100000) - D(1000)  # only the gtc reserves

    def test_an_order_placed_after_the_close_lives_until_the_next_close(self) -> None:
        friday_evening = datetime(2026, 1, 9, 22, 0, tzinfo=UTC)  # Friday 17:00 New York
        clock = ManualClock(friday_evening)
        broker = PaperBroker(clock=clock, cancel_gfd_at_close=True)
        snap = accept(broker, make_order())

        clock.now = datetime(2026, 1, 12, 20, 59, tzinfo=UTC)  # Monday 15:59
        broker.match()
        assert current(broker, snap).state is OrderState.SUBMITTED
        clock.now = datetime(2026, 1, 12, 21, 0, tzinfo=UTC)  # Monday 16:00
        broker.match()
        assert current(broker, snap).cancel_reason == "end_of_day"

    def test_the_close_wins_over_a_price_that_arrives_after_it(self) -> None:
        clock = ManualClock(BEFORE_CLOSE)
        broker = PaperBroker(clock=clock, cancel_gfd_at_close=True)
        snap = accept(broker, make_order())
        clock.now = BEFORE_CLOSE + timedelta(hours=1)
        broker.set_quote("AAPL", "99")

        broker.match()

        assert current(broker, snap).cumulative_quantity == 0
        assert current(broker, snap).state is OrderState.CANCELLED

    def test_off_by_default(self) -> None:
        clock = ManualClock(BEFORE_CLOSE)
        broker = PaperBroker(clock=clock)
        snap = accept(broker, make_order())
        clock.now = BEFORE_CLOSE + timedelta(days=3)
        assert broker.match() == []
        assert current(broker, snap).state is OrderState.SUBMITTED

    def test_a_user_cancel_has_no_cause(self) -> None:
        broker = make_broker(cancel_gfd_at_close=True)
        snap = accept(broker, make_order())
        broker.cancel(snap.broker_order_id)
        assert current(broker, snap).cancel_reason is None

    @pytest.mark.parametrize(
        ("placed", "close"),
        [
            # Monday 10:00 New York (EST): that day's close, 21:00 UTC.
            (datetime(2026, 1, 5, 15, 0, tzinfo=UTC), datetime(2026, 1, 5, 21, 0, tzinfo=UTC)),
            # Exactly at the close: the next day's.
            (datetime(2026, 1, 5, 21, 0, tzinfo=UTC), datetime(2026, 1, 6, 21, 0, tzinfo=UTC)),
            # Saturday: Monday's.
            (datetime(2026, 1, 10, 15, 0, tzinfo=UTC), datetime(2026, 1, 12, 21, 0, tzinfo=UTC)),
            # Summer time (EDT, UTC-4): 20:00 UTC.
            (datetime(2026, 7, 1, 14, 0, tzinfo=UTC), datetime(2026, 7, 1, 20, 0, tzinfo=UTC)),
        ],
    )
    def test_session_close_after(self, placed: datetime, close: datetime) -> None:
        assert session_close_after(placed) == close


class ListQuotes:
    """A quote source that answers from a dict, and can be told to fail."""

    def __init__(self, prices: dict[str, Decimal | None]) -> None:
        self.prices_by_symbol = prices
        self.asked: list[tuple[str, ...]] = []
        self.error: Exception | None = None

    def prices(self, symbols: Any, now: datetime) -> dict[str, Decimal | None]:
        self.asked.append(tuple(symbols))
        if self.error is not None:
            raise self.error
        return {s: self.prices_by_symbol[s] for s in symbols if s in self.prices_by_symbol}


class TestQuoteSource:
    """`match()` prices the working orders' symbols from the quote source first."""

    def test_a_source_price_fills_and_only_working_symbols_are_asked(self) -> None:
        source = ListQuotes({"AAPL": D("99.50"), "MSFT": D(1)})
        broker = make_broker(quote_source=source)
        snap = accept(broker, make_order())

        broker.match()

        assert source.asked == [("AAPL",)]
        assert current(broker, snap).average_price == D("99.50")

    def test_a_failing_source_is_reported_and_the_last_prices_stay(self) -> None:
        source = ListQuotes({})
        source.error = BrokerError("quotes unreachable")
        broker = make_broker(quotes={"AAPL": "99"}, quote_source=source)
        snap = accept(broker, make_order())

        broker.match()

        assert current(broker, snap).state is OrderState.FILLED
        (problem,) = broker.drain_problems()
        assert "quotes unreachable" in problem
        assert broker.drain_problems() == []

    def test_none_removes_a_price(self) -> None:
        broker = make_broker(quotes={"AAPL": "99"}, quote_source=ListQuotes({"AAPL": None}))
        snap = accept(broker, make_order())
        broker.match()
        assert current(broker, snap).state is OrderState.SUBMITTED


class TestStateFile:
    """`open` resumes a broker from its file and saves it after every change."""

    def test_a_new_file_is_written_at_once_and_after_every_change(self, tmp_path: Path) -> None:
        path = tmp_path / "state" / "broker.json"
        broker = PaperBroker.open(path, seed=1, clock=SimulatedClock())
        assert not broker.resumed
        assert json.loads(path.read_text())["orders"] == []

        snap = accept(broker, make_order())
        assert PaperBroker.load(path).fetch(snap.broker_order_id) == current(broker, snap)
        broker.set_quote("AAPL", "99")
        broker.match()
        assert PaperBroker.load(path).fetch(snap.broker_order_id) == current(broker, snap)

    def test_reopening_resumes_orders_cash_and_ids(self, tmp_path: Path) -> None:
        path = tmp_path / "broker.json"
        first = PaperBroker.open(path, clock=SimulatedClock())
        snap = accept(first, make_order())

        again = PaperBroker.open(path, clock=SimulatedClock(), liquidity="3")

        assert again.resumed
        assert again.fetch(snap.broker_order_id) == current(first, snap)
        assert again.fetch_buying_power() == first.fetch_buying_power()
        assert accept(again, make_order("sell")).broker_order_id == (
            accept(first, make_order("sell")).broker_order_id
        )
        again.set_quote("AAPL", "100")
        again.match()
        assert current(again, snap).cumulative_quantity == 3  # the new setting applies

    def test_the_end_of_day_cause_is_kept_in_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "broker.json"
        clock = ManualClock(BEFORE_CLOSE)
        broker = PaperBroker.open(path, clock=clock, cancel_gfd_at_close=True)
        snap = accept(broker, make_order())
        clock.now += timedelta(hours=1)
        broker.match()

        reloaded = PaperBroker.open(path, clock=clock, cancel_gfd_at_close=True)

        found = reloaded.fetch(snap.broker_order_id)
        assert found is not None and found.cancel_reason == "end_of_day"
        assert '"cancel_reason": "end_of_day"' in path.read_text()

    def test_a_gfd_order_expires_after_a_restart(self, tmp_path: Path) -> None:
        path = tmp_path / "broker.json"
        clock = ManualClock(BEFORE_CLOSE)
        snap = accept(PaperBroker.open(path, clock=clock, cancel_gfd_at_close=True), make_order())
        clock.now += timedelta(days=1)

        PaperBroker.open(path, clock=clock, cancel_gfd_at_close=True).match()

        found = PaperBroker.load(path).fetch(snap.broker_order_id)
        assert found is not None and found.cancel_reason == "end_of_day"

    @pytest.mark.parametrize(
        "damage",
        [b"", b"{", b"[]", b'{"format": 2}', b"\xff\xfe not json"],
        ids=["empty", "torn", "array", "fields missing", "not utf-8"],
    )
    def test_a_damaged_file_is_refused_and_left_untouched(
        self, tmp_path: Path, damage: bytes
    ) -> None:
        path = tmp_path / "broker.json"
        path.write_bytes(damage)

        with pytest.raises(BrokerError, match="damaged"):
            PaperBroker.open(path)

        assert path.read_bytes() == damage
        assert [p.name for p in tmp_path.iterdir()] == ["broker.json"]

    def test_the_file_of_another_journal_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "broker.json"
        PaperBroker.open(path, journal=tmp_path / "a.jsonl")
        before = path.read_bytes()

        with pytest.raises(BrokerError, match=r"belongs to the journal 'a.jsonl'"):
            PaperBroker.open(path, journal=tmp_path / "b.jsonl")

        assert path.read_bytes() == before
        PaperBroker.open(path, journal=tmp_path / "a.jsonl")  # its own journal is fine

    def test_a_write_that_fails_is_reported_not_raised(self, tmp_path: Path) -> None:
        directory = tmp_path / "state"
        broker = PaperBroker.open(directory / "broker.json")
        for saved in directory.iterdir():  # the state file and its change file
            saved.unlink()
        directory.rmdir()  # the next save has nowhere to go

        snap = accept(broker, make_order())

        assert snap.state is OrderState.SUBMITTED
        (problem,) = broker.drain_problems()
        assert "not saved" in problem and "broker.json" in problem

    def test_a_plain_broker_writes_no_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        broker = make_broker(quotes={"AAPL": "99"})
        accept(broker, make_order())
        broker.match()
        assert list(tmp_path.iterdir()) == []

    def test_fault_rates_may_be_decimals(self) -> None:
        broker = make_broker(fault_rates={"reject": D(1)})
        assert isinstance(broker.submit_limit(make_order()), Rejected)


def _changes(path: Path) -> Path:
    return path.with_name(f"{path.stem}.changes.jsonl")


def _same_broker(a: PaperBroker, b: PaperBroker, snaps: list[BrokerOrder]) -> None:
    assert a.fetch_buying_power() == b.fetch_buying_power()
    assert a.fetch_positions() == b.fetch_positions()
    assert [a.fetch(s.broker_order_id) for s in snaps] == [
        b.fetch(s.broker_order_id) for s in snaps
    ]


class TestChangeFile:
    """A change costs what it touched, not what the broker holds: it appends a line to the
    change file beside the state file, which is rewritten only now and then."""

    def test_a_change_appends_one_line_of_the_order_it_touched(self, tmp_path: Path) -> None:
        path = tmp_path / "paper-broker.json"
        broker = PaperBroker.open(path, clock=SimulatedClock())
        held = [accept(broker, make_order(symbol="AAPL")) for _ in range(30)]
        state = path.read_bytes()
        before = _changes(path).read_bytes()

        snap = accept(broker, make_order("sell", symbol="MSFT"))

        line = _changes(path).read_bytes().removeprefix(before)
        assert path.read_bytes() == state
        assert line.count(b"\n") == 1 and line.endswith(b"\n")
        assert snap.broker_order_id.encode() in line
        assert not any(h.broker_order_id.encode() in line for h in held)
        _same_broker(PaperBroker.load(path), broker, [*held, snap])

    def test_the_state_file_is_rewritten_once_the_change_file_outgrows_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_paper_changes, "_FOLD_MIN_BYTES", 1)  # a line outgrows it
        monkeypatch.setattr(_paper_changes, "_FOLD_RATIO", 0)
        path = tmp_path / "paper-broker.json"
        broker = PaperBroker.open(path, clock=SimulatedClock())
        first = accept(broker, make_order())
        assert json.loads(path.read_text())["orders"] == []

        second = accept(broker, make_order("sell"))

        assert _changes(path).read_bytes() == b""
        assert [
            o["history"][-1]["broker_order_id"] for o in json.loads(path.read_text())["orders"]
        ] == [first.broker_order_id, second.broker_order_id]
        third = accept(broker, make_order("sell", symbol="MSFT"))
        assert _changes(path).read_bytes().count(b"\n") == 1
        _same_broker(PaperBroker.load(path), broker, [first, second, third])

    def test_a_line_torn_by_a_crash_is_a_change_never_made(self, tmp_path: Path) -> None:
        path = tmp_path / "paper-broker.json"
        broker = PaperBroker.open(path, clock=SimulatedClock())
        kept = current(broker, accept(broker, make_order()))
        whole = _changes(path).stat().st_size
        torn = accept(broker, make_order("sell"))
        with _changes(path).open("r+b") as file:
            file.truncate(whole + 100)  # the process died while the line was written

        again = PaperBroker.open(path)

        assert again.fetch(kept.broker_order_id) == kept
        assert again.fetch(torn.broker_order_id) is None
        later = accept(again, make_order("sell"))
        assert PaperBroker.load(path).fetch(later.broker_order_id) == current(again, later)

    def test_lines_the_rewritten_state_file_holds_are_skipped(self, tmp_path: Path) -> None:
        path = tmp_path / "paper-broker.json"
        broker = PaperBroker.open(path, clock=SimulatedClock())
        snaps = [accept(broker, make_order()), accept(broker, make_order("sell"))]
        lines = _changes(path).read_bytes()
        again = PaperBroker.open(path)  # rewrites the state file, then empties the change file
        _changes(path).write_bytes(lines)  # as if it died before emptying it

        snaps.append(accept(again, make_order("sell", symbol="MSFT")))

        _same_broker(PaperBroker.load(path), again, snaps)

    def test_a_missing_change_file_is_refused_not_ignored(self, tmp_path: Path) -> None:
        path = tmp_path / "paper-broker.json"
        accept(PaperBroker.open(path, clock=SimulatedClock()), make_order())
        _changes(path).unlink()
        state = path.read_bytes()

        with pytest.raises(BrokerError, match=r"change file .* is missing"):
            PaperBroker.open(path)
        assert path.read_bytes() == state

    def test_a_change_missing_in_the_middle_is_damage(self, tmp_path: Path) -> None:
        path = tmp_path / "paper-broker.json"
        broker = PaperBroker.open(path, clock=SimulatedClock())
        for side in ("buy", "sell", "buy"):
            accept(broker, make_order(side, symbol="AAPL" if side == "buy" else "MSFT"))
        first, _, third = _changes(path).read_bytes().splitlines(keepends=True)
        _changes(path).write_bytes(first + third)

        with pytest.raises(BrokerError, match="damaged"):
            PaperBroker.load(path)

    def test_after_a_line_that_could_not_be_written_the_state_file_is_rewritten(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "paper-broker.json"
        broker = PaperBroker.open(path, clock=SimulatedClock())
        snaps = [accept(broker, make_order())]
        _changes(path).unlink()
        _changes(path).mkdir()  # the next line has nowhere to go

        snaps.append(accept(broker, make_order("sell")))

        (problem,) = broker.drain_problems()
        assert "not saved" in problem
        _changes(path).rmdir()
        snaps.append(accept(broker, make_order("sell", symbol="MSFT")))
        assert broker.drain_problems() == []
        assert len(json.loads(path.read_text())["orders"]) == 3  # rewritten whole
        _same_broker(PaperBroker.load(path), broker, snaps)

    def test_an_account_a_late_fill_overdrew_is_resumed(self, tmp_path: Path) -> None:
        """A late fill after a cancel spends cash the cancel freed for other buys: the account
        can go below zero, and the broker must still start again from its file."""
        path = tmp_path / "paper-broker.json"
        broker = PaperBroker.open(path, clock=SimulatedClock(), buying_power="5000")
        big = accept(broker, make_order("buy", "45", "95"))
        broker.inject(Fault.LATE_FILL_AFTER_CANCEL)
        broker.cancel(big.broker_order_id)  # frees 45 x 95 of the 5,000, still owes the fill
        snaps = [big, accept(broker, make_order("buy", "8", "95"))]
        broker.set_quote("AAPL", "95")
        broker.match()
        assert broker.fetch_buying_power() == 5000 - 53 * 95  # -35

        _same_broker(PaperBroker.open(path), broker, snaps)

    def test_a_first_start_killed_before_the_change_file_was_emptied_starts_again(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "paper-broker.json"

        def killed(self: object, state_bytes: int) -> None:
            raise OSError("killed")  # after the state file was written, before the emptying

        with monkeypatch.context() as patch:
            patch.setattr(_paper_changes.ChangeFile, "restart", killed)
            with pytest.raises(OSError, match="killed"):
                PaperBroker.open(path, clock=SimulatedClock())
        assert path.exists()

        broker = PaperBroker.open(path)  # the change file is there, empty: nothing was lost

        assert broker.resumed
        accept(broker, make_order())

    def test_idle_polls_write_nothing_and_a_simulated_clock_is_kept(self, tmp_path: Path) -> None:
        wall = tmp_path / "wall.json"
        broker = PaperBroker.open(wall, clock=ManualUtcClock(), fault_rates={"reject": 0.5})
        size = _changes(wall).stat().st_size
        for _ in range(5):
            broker.match()
            broker.updated_since(datetime(2020, 1, 1, tzinfo=UTC))
        assert _changes(wall).stat().st_size == size

        simulated = tmp_path / "simulated.json"
        kept = PaperBroker.open(simulated, clock=SimulatedClock(), seed=0, cancel_gfd_at_close=True)
        twin = PaperBroker(clock=SimulatedClock(), seed=0, cancel_gfd_at_close=True)
        resting = make_order()  # no quote: it rests, and each round reads the clock for the close
        for broker in (kept, twin):
            accept(broker, resting)
            for _ in range(5):
                broker.match()
        again = PaperBroker.open(simulated, cancel_gfd_at_close=True)
        order = make_order("sell")
        assert accept(again, order) == accept(twin, order)  # the same id, at the same time

    def test_saving_to_its_own_state_file_keeps_every_change(self, tmp_path: Path) -> None:
        path = tmp_path / "paper-broker.json"
        broker = PaperBroker.open(path, clock=SimulatedClock())
        snaps = [accept(broker, make_order())]

        broker.save(path)
        snaps.append(accept(broker, make_order("sell")))

        _same_broker(PaperBroker.load(path), broker, snaps)
        assert PaperBroker.load(path).fetch(snaps[1].broker_order_id) is not None

    @pytest.mark.parametrize("fsync", [True, False])
    def test_changes_are_forced_to_disk_unless_fsync_is_off(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
    ) -> None:
        broker = PaperBroker.open(
            tmp_path / "paper-broker.json", fsync=fsync, clock=SimulatedClock()
        )
        broker.set_quote("AAPL", "99")
        forced: list[int] = []
        monkeypatch.setattr(os, "fsync", forced.append)

        accept(broker, make_order())
        broker.match()

        assert len(forced) == (2 if fsync else 0)


def test_idle_polls_do_not_change_a_seeded_run() -> None:
    """A seeded paper session with delivery faults replays the same, however often the bot
    polled while nothing was working."""
    rates: dict[Fault | str, float] = {Fault.STALE_SNAPSHOTS: 0.5, Fault.DUPLICATE_SNAPSHOTS: 0.5}

    def session(idle_polls: int) -> list[tuple[str, Decimal]]:
        broker = PaperBroker(
            seed=7, clock=SimulatedClock(), fault_rates=rates, quotes={"AAPL": "10"}
        )
        for _ in range(idle_polls):
            broker.match()
        broker.submit_limit(Order("AAPL", "buy", 5, "10.50", client_order_id="c1"))
        seen = []
        for _ in range(4):
            seen += [(str(s.state), s.cumulative_quantity) for s in broker.match()]
        return seen

    assert session(idle_polls=5) == session(idle_polls=0)
