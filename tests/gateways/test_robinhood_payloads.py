"""Robinhood payloads as they really come: causes of a cancel, executions without ids, orders
that are not stock orders, the rarer state words, and numbers no order can hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import responses

from orders.errors import BrokerError
from orders.gateways.robinhood import (
    DERIVED_EXECUTION_PREFIX,
    RobinhoodGateway,
    parse_robinhood_order,
)
from orders.lifecycle import Order
from orders.model import OrderState
from orders.snapshot import apply_snapshot
from tests.gateways.robinhood_fixtures import (
    ORDERS_URL,
    WALL_START,
    FakeRobinhood,
    execution_json,
    order_json,
)

SINCE = WALL_START - timedelta(hours=1)


pytestmark = pytest.mark.usefixtures("logged_in")  # the gateway fixtures: conftest.py


def tracked_order(quantity: int = 10, client_order_id: str = "client-0001") -> Order:
    """The order the manager holds for `order_json()`'s default ids."""
    clock = lambda: WALL_START  # noqa: E731 - a fixed clock
    return Order("AAPL", "buy", quantity, "190.13", client_order_id=client_order_id, clock=clock)


# -- the broker's cause of a cancel --------------------------------------------------------


class TestCancelReason:
    """Robinhood's `reject_reason` is null even on a cancel; the cause is elsewhere."""

    def test_a_gfd_order_expired_at_the_close_says_end_of_day(self) -> None:
        snapshot = parse_robinhood_order(
            order_json(state="cancelled", response_category="end_of_day")
        )

        assert snapshot.state is OrderState.CANCELLED
        assert snapshot.cancel_reason == "end_of_day"
        assert snapshot.reject_reason is None

    def test_an_ipo_access_cancel_names_its_own_cause_first(self) -> None:
        snapshot = parse_robinhood_order(
            order_json(
                state="cancelled",
                is_ipo_access_order=True,
                ipo_access_cancellation_reason="no_allocation",
                response_category="success",
            )
        )

        assert snapshot.cancel_reason == "ipo_access: no_allocation"

    def test_a_part_filled_order_cancelled_for_the_rest_keeps_the_cause(self) -> None:
        snapshot = parse_robinhood_order(
            order_json(
                state="partially_filled_rest_cancelled",
                quantity="10.00000000",
                cumulative_quantity="4.00000000",
                average_price="190.12000000",
                executions=[execution_json("ex-1", "4.00000000", "190.12", "2026-03-02T15:31:00Z")],
                response_category="venue_unsolicited_cancel",
            )
        )

        assert snapshot.cancel_reason == "venue_unsolicited_cancel"

    @pytest.mark.parametrize(
        ("state", "extra"),
        [
            ("confirmed", {"response_category": "success"}),
            ("filled", {"response_category": "success", "cumulative_quantity": "3"}),
            ("pending_cancelled", {"response_category": "success"}),
            ("rejected", {"response_category": "insufficient_buying_power"}),
        ],
    )
    def test_an_order_that_was_not_cancelled_has_no_cancel_reason(
        self, state: str, extra: dict[str, Any]
    ) -> None:
        assert parse_robinhood_order(order_json(state=state, **extra)).cancel_reason is None

    @pytest.mark.parametrize("category", [None, "", 42, {"code": "end_of_day"}])
    def test_a_cancel_without_a_readable_cause_is_still_a_cancel(self, category: object) -> None:
        snapshot = parse_robinhood_order(order_json(state="cancelled", response_category=category))

        assert snapshot.state is OrderState.CANCELLED
        assert snapshot.cancel_reason is None

    def test_the_listing_carries_the_cause(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        broker.add_order(order_id="ord-eod", state="cancelled", response_category="end_of_day")

        (snapshot,) = gateway.updated_since(SINCE)

        assert (snapshot.broker_order_id, snapshot.cancel_reason) == ("ord-eod", "end_of_day")


# -- executions without an id ----------------------------------------------------------------


def old_execution(quantity: str, price: str, timestamp: str) -> dict[str, str]:
    """An execution in Robinhood's 2016 field set: no id."""
    return {
        "price": price,
        "quantity": quantity,
        "settlement_date": "2016-05-20",
        "timestamp": timestamp,
    }


class TestExecutionsWithoutId:
    """A 2016-style execution gets an id that every snapshot of the order agrees on."""

    def test_a_2016_execution_is_readable_and_named_deterministically(self) -> None:
        doc = order_json(
            state="filled",
            cumulative_quantity="3.00000",
            average_price="190.12330000",
            executions=[
                old_execution("1.00000", "190.11000000", "2016-05-17T15:31:00.000000Z"),
                old_execution("2.00000", "190.13000000", "2016-05-17T15:31:00.500000Z"),
            ],
        )

        first = parse_robinhood_order(doc)
        again = parse_robinhood_order(json.loads(json.dumps(doc)))

        ids = [e.execution_id for e in first.executions]
        assert all(i.startswith(DERIVED_EXECUTION_PREFIX) for i in ids)
        assert len(set(ids)) == 2
        assert [e.execution_id for e in again.executions] == ids
        assert [e.quantity for e in first.executions] == [Decimal(1), Decimal(2)]
        assert first.executions[0].timestamp == datetime(2016, 5, 17, 15, 31, tzinfo=UTC)

    def test_the_id_does_not_depend_on_how_the_numbers_are_written(self) -> None:
        one = order_json(executions=[old_execution("1.00000000", "190.1100", "2016-05-17T15:31Z")])
        two = order_json(executions=[old_execution("1", "190.11", "2016-05-17T10:31-05:00")])

        assert (
            parse_robinhood_order(one).executions[0].execution_id
            == parse_robinhood_order(two).executions[0].execution_id
        )

    @pytest.mark.parametrize(
        "change",
        [
            {"order_id": "ord-0002"},
            {"executions": [old_execution("2", "190.11", "2016-05-17T15:31Z")]},
            {"executions": [old_execution("1", "190.12", "2016-05-17T15:31Z")]},
            {"executions": [old_execution("1", "190.11", "2016-05-17T15:32Z")]},
        ],
    )
    def test_another_order_or_execution_gets_another_id(self, change: dict[str, Any]) -> None:
        base: dict[str, Any] = {"executions": [old_execution("1", "190.11", "2016-05-17T15:31Z")]}
        other = base | change

        assert (
            parse_robinhood_order(order_json(**base)).executions[0].execution_id
            != parse_robinhood_order(order_json(**other)).executions[0].execution_id
        )

    def test_two_snapshots_of_the_same_fills_book_each_fill_once(self) -> None:
        first = old_execution("1.00000", "190.11", "2016-05-17T15:31:00Z")
        second = old_execution("2.00000", "190.13", "2016-05-17T15:32:00Z")
        order = tracked_order(quantity=3)
        early = order_json(
            state="partially_filled",
            cumulative_quantity="1.00000",
            average_price="190.11",
            executions=[first],
        )
        late = order_json(
            state="filled",
            cumulative_quantity="3.00000",
            average_price="190.12",
            executions=[first, second],
        )

        apply_snapshot(order, parse_robinhood_order(early))
        apply_snapshot(order, parse_robinhood_order(late))
        apply_snapshot(order, parse_robinhood_order(late))

        assert order.state is OrderState.FILLED
        assert [(e.quantity, e.price) for e in order.executions] == [
            (Decimal(1), Decimal("190.11")),
            (Decimal(2), Decimal("190.13")),
        ]


# -- orders that are not stock orders --------------------------------------------------------


def crypto_order() -> dict[str, Any]:
    """A crypto (nummus) order: a currency pair instead of an instrument."""
    return {
        "id": "crypto-0001",
        "ref_id": "c-crypto",
        "account_id": "acct-1",
        "currency_pair_id": "3d961844-d360-45fc-989b-f6fca761d511",
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "state": "filled",
        "price": "64000.00",
        "quantity": "0.00100000",
        "cumulative_quantity": "0.00100000",
        "average_price": "63990.00",
        "executions": [
            {
                "id": "cx-1",
                "effective_price": "63990.00",
                "quantity": "0.00100000",
                "timestamp": "2026-03-02T15:30:00Z",
            }
        ],
        "created_at": "2026-03-02T15:30:00Z",
        "updated_at": "2026-03-02T15:30:00.500000Z",
    }


def option_order() -> dict[str, Any]:
    """An option order: legs, each with its own side, and no side of its own."""
    return {
        "id": "option-0001",
        "ref_id": "c-option",
        "chain_id": "chain-1",
        "chain_symbol": "AAPL",
        "direction": "debit",
        "legs": [
            {
                "id": "leg-1",
                "option": "https://api.robinhood.com/options/instruments/opt-1/",
                "position_effect": "open",
                "ratio_quantity": 1,
                "side": "buy",
                "executions": [],
            }
        ],
        "type": "limit",
        "time_in_force": "gfd",
        "trigger": "immediate",
        "state": "confirmed",
        "price": "1.20000000",
        "premium": "120.00000000",
        "quantity": "1.00000",
        "processed_quantity": "0.00000",
        "pending_quantity": "1.00000",
        "created_at": "2026-03-02T15:30:00Z",
        "updated_at": "2026-03-02T15:30:00.500000Z",
    }


class TestNotStockOrders:
    """A merged history can hold crypto and option orders; they are named, never misread."""

    def test_a_crypto_order_is_refused_as_crypto(self) -> None:
        with pytest.raises(BrokerError, match="crypto order") as info:
            parse_robinhood_order(crypto_order())

        assert "crypto-0001" in str(info.value)

    def test_an_option_order_is_refused_as_an_option_order(self) -> None:
        with pytest.raises(BrokerError, match="option order") as info:
            parse_robinhood_order(option_order())

        assert "option-0001" in str(info.value)
        assert "side=None" not in str(info.value)

    def test_a_stock_order_with_an_empty_legs_field_is_still_a_stock_order(self) -> None:
        assert parse_robinhood_order(order_json(legs=None)).side == "buy"

    def test_the_listing_skips_and_reports_them_and_keeps_the_stock_orders(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        broker.add_order(order_id="ord-stock", state="confirmed")
        broker.orders["crypto-0001"] = crypto_order()
        broker.orders["option-0001"] = option_order()

        orders = gateway.updated_since(SINCE)

        assert [o.broker_order_id for o in orders] == ["ord-stock"]
        problems = gateway.drain_problems()
        assert len(problems) == 2
        assert "crypto-0001" in problems[0] and "crypto order" in problems[0]
        assert "option-0001" in problems[1] and "option order" in problems[1]


# -- the rarer state words ---------------------------------------------------------------------


class TestStateWords:
    """Words are mapped only where their meaning is certain; raw_state keeps the broker's."""

    @pytest.mark.parametrize("word", ["pending_cancelled", "pending_canceled"])
    def test_a_pending_cancel_is_still_working(self, word: str) -> None:
        bare = parse_robinhood_order(order_json(state=word))
        part = parse_robinhood_order(
            order_json(
                state=word,
                cumulative_quantity="1.00000",
                average_price="190.11",
                executions=[execution_json("ex-1", "1.00000", "190.11", "2026-03-02T15:31Z")],
            )
        )

        assert (bare.state, bare.raw_state) == (OrderState.SUBMITTED, word)
        assert (part.state, part.raw_state) == (OrderState.PARTIALLY_FILLED, word)

    def test_a_pending_cancel_does_not_end_the_order(self) -> None:
        order = tracked_order()
        order.request_cancel()

        apply_snapshot(order, parse_robinhood_order(order_json(state="pending_cancelled")))

        assert order.state is OrderState.SUBMITTED
        assert order.cancel_requested

    @pytest.mark.parametrize(
        "word", ["partially_filled_rest_cancelled", "partially_filled_rest_canceled"]
    )
    def test_part_filled_rest_cancelled_ends_cancelled_with_its_fills(self, word: str) -> None:
        order = tracked_order(quantity=10)
        doc = order_json(
            state=word,
            quantity="10.00000000",
            cumulative_quantity="4.00000000",
            average_price="190.12000000",
            executions=[execution_json("ex-1", "4.00000000", "190.12", "2026-03-02T15:31Z")],
        )

        snapshot = parse_robinhood_order(doc)
        apply_snapshot(order, snapshot)

        assert snapshot.raw_state == word
        assert order.state is OrderState.CANCELLED
        assert order.filled_quantity == Decimal(4)
        assert order.average_fill_price == Decimal("190.12")

    def test_new_is_a_working_order(self) -> None:
        order = tracked_order()

        apply_snapshot(order, parse_robinhood_order(order_json(state="new")))

        assert order.state is OrderState.SUBMITTED
        assert order.broker_order_id == "ord-0001"

    @pytest.mark.parametrize("word", ["voided", "triggered", "locate_failed", "inactive"])
    def test_an_uncertain_word_is_refused_by_name(self, word: str) -> None:
        with pytest.raises(BrokerError, match=f"state '{word}'"):
            parse_robinhood_order(order_json(state=word))


# -- numbers no order can hold ----------------------------------------------------------------


class TestExtremeNumbers:
    """A number far outside any real order is refused with its one payload, never raised as
    decimal.Overflow mid-sync."""

    @pytest.mark.parametrize(
        "change",
        [
            pytest.param({"average_price": "9e999999"}, id="average_price-9e999999"),
            pytest.param({"quantity": "1e999999999"}, id="quantity-1e999999999"),
            pytest.param({"cumulative_quantity": "1e999999999"}, id="cumulative-1e999999999"),
            pytest.param({"price": "1e-999999999"}, id="price-tiny"),
            pytest.param({"cumulative_quantity": "0E-999999999"}, id="zero-huge-exponent"),
            pytest.param(
                {"executions": [execution_json("ex-1", "1", "9e999999", "2026-03-02T15:31Z")]},
                id="execution-price",
            ),
        ],
    )
    def test_the_bad_order_is_skipped_and_reported_and_the_other_comes_through(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood, change: dict[str, Any]
    ) -> None:
        broker.add_order(order_id="ord-good", ref_id="c-good", state="confirmed")
        fields: dict[str, Any] = {
            "state": "filled",
            "cumulative_quantity": "3.00000000",
            "average_price": "190.13",
        }
        broker.add_order(order_id="ord-bad", ref_id="c-bad", **(fields | change))

        orders = gateway.updated_since(SINCE)

        assert [o.broker_order_id for o in orders] == ["ord-good"]
        (problem,) = gateway.drain_problems()
        assert "ord-bad" in problem and "out of range" in problem

    def test_a_json_integer_too_long_for_int_is_refused_with_its_order(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood, rsps: responses.RequestsMock
    ) -> None:
        good = order_json(order_id="ord-good", ref_id="c-good", state="confirmed")
        bad = order_json(order_id="ord-bad", ref_id="c-bad", quantity="QUANTITY")
        page = json.dumps({"previous": None, "next": None, "results": [good, bad]})
        rsps.replace(responses.GET, ORDERS_URL, body=page.replace('"QUANTITY"', "9" * 5000))

        orders = gateway.updated_since(SINCE)

        assert [o.broker_order_id for o in orders] == ["ord-good"]
        (problem,) = gateway.drain_problems()
        assert "ord-bad" in problem and "out of range" in problem
        assert len(problem) < 1000  # the number is not copied into the report

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("quantity", "123456789012345.12345678"),
            ("price", "0.000000000000000001"),
            ("cumulative_quantity", "0.000000000000000000"),
        ],
    )
    def test_the_edges_of_the_range_are_read_exactly(self, field: str, value: str) -> None:
        change: dict[str, Any] = {field: value}
        snapshot = parse_robinhood_order(order_json(**change))

        read = {
            "quantity": snapshot.quantity,
            "price": snapshot.limit_price,
            "cumulative_quantity": snapshot.cumulative_quantity,
        }[field]
        assert read == Decimal(value)

    def test_a_timestamp_that_leaves_the_calendar_in_utc_is_malformed(self) -> None:
        with pytest.raises(BrokerError, match="malformed"):
            parse_robinhood_order(order_json(updated_at="0001-01-01T00:00:00+05:00"))
