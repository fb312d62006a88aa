"""parse_robinhood_order: Robinhood's order JSON to a BrokerOrder, exactly, or a BrokerError."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from orders.errors import BrokerError
from orders.gateways.robinhood import ROBINHOOD_STATES, parse_robinhood_order
from orders.model import Execution, OrderState, Side
from tests.gateways.robinhood_fixtures import execution_json, order_json


class TestStateWords:
    """Every state word Robinhood is known to send maps to one state; any other is refused."""

    @pytest.mark.parametrize(
        ("word", "state"),
        [
            ("queued", OrderState.SUBMITTED),
            ("new", OrderState.SUBMITTED),
            ("unconfirmed", OrderState.SUBMITTED),
            ("confirmed", OrderState.SUBMITTED),
            ("partially_filled", OrderState.PARTIALLY_FILLED),
            ("pending_cancelled", OrderState.SUBMITTED),
            ("pending_canceled", OrderState.SUBMITTED),
            ("filled", OrderState.FILLED),
            ("cancelled", OrderState.CANCELLED),
            ("canceled", OrderState.CANCELLED),
            ("partially_filled_rest_cancelled", OrderState.CANCELLED),
            ("partially_filled_rest_canceled", OrderState.CANCELLED),
            ("rejected", OrderState.REJECTED),
            ("failed", OrderState.REJECTED),
        ],
    )
    def test_known_word(self, word: str, state: OrderState) -> None:
        snapshot = parse_robinhood_order(order_json(state=word))

        assert (snapshot.state, snapshot.raw_state) == (state, word)

    def test_the_table_is_exactly_the_documented_words(self) -> None:
        assert set(ROBINHOOD_STATES) == {
            "queued",
            "new",
            "unconfirmed",
            "confirmed",
            "partially_filled",
            "pending_cancelled",
            "pending_canceled",
            "filled",
            "cancelled",
            "canceled",
            "partially_filled_rest_cancelled",
            "partially_filled_rest_canceled",
            "rejected",
            "failed",
        }

    @pytest.mark.parametrize(
        "word",
        [
            "expired",
            "voided",
            "triggered",
            "locating",
            "locate_failed",
            "locate_completed",
            "inactive",
            "FILLED",
            "",
            None,
            3,
        ],
    )
    def test_unknown_word_is_never_guessed(self, word: object) -> None:
        with pytest.raises(BrokerError, match="not guessed") as info:
            parse_robinhood_order(order_json(state="filled") | {"state": word})

        assert "ord-0001" in str(info.value)


class TestFields:
    """Numbers stay exact decimals, nulls stay None, extra fields are ignored."""

    def test_core_fields(self) -> None:
        snapshot = parse_robinhood_order(
            order_json(
                order_id="ord-9",
                ref_id="client-9",
                side="sell",
                quantity="10.00000000",
                price="0.04350000",
                updated_at="2026-03-02T15:30:01.250000Z",
                some_field_from_2030={"nested": [1, 2]},
            ),
            symbol="AAPL",
        )

        assert snapshot.broker_order_id == "ord-9"
        assert snapshot.client_order_id == "client-9"
        assert snapshot.symbol == "AAPL"
        assert snapshot.side is Side.SELL
        assert snapshot.quantity == Decimal("10")
        assert str(snapshot.limit_price) == "0.04350000"
        assert snapshot.cumulative_quantity == 0
        assert snapshot.average_price is None
        assert snapshot.executions == ()
        assert snapshot.reject_reason is None
        assert snapshot.updated_at == datetime(2026, 3, 2, 15, 30, 1, 250000, tzinfo=UTC)

    def test_null_price_and_missing_ref_id(self) -> None:
        snapshot = parse_robinhood_order(order_json(price=None, ref_id=None))

        assert snapshot.limit_price is None
        assert snapshot.client_order_id is None

    def test_partial_fill_then_cancel_keeps_its_executions(self) -> None:
        doc = order_json(
            state="cancelled",
            quantity="10.00000000",
            cumulative_quantity="4.00000000",
            average_price="190.12500000",
            executions=[
                execution_json("ex-1", "1.00000000", "190.11000000", "2026-03-02T15:31:00Z"),
                execution_json("ex-2", "3.00000000", "190.13", "2026-03-02T15:32:00.500000+00:00"),
            ],
            response_category="end_of_day",
        )

        snapshot = parse_robinhood_order(doc)

        assert snapshot.state is OrderState.CANCELLED
        assert snapshot.cumulative_quantity == Decimal(4)
        assert snapshot.average_price == Decimal("190.125")
        assert snapshot.executions == (
            Execution(
                "ex-1", Decimal(1), Decimal("190.11"), datetime(2026, 3, 2, 15, 31, tzinfo=UTC)
            ),
            Execution(
                "ex-2",
                Decimal(3),
                Decimal("190.13"),
                datetime(2026, 3, 2, 15, 32, 0, 500000, tzinfo=UTC),
            ),
        )

    def test_rejection_reason_is_kept(self) -> None:
        snapshot = parse_robinhood_order(
            order_json(state="rejected", reject_reason="Not enough buying power.")
        )

        assert snapshot.state is OrderState.REJECTED
        assert snapshot.reject_reason == "Not enough buying power."

    def test_json_numbers_parsed_as_decimal_are_accepted(self) -> None:
        snapshot = parse_robinhood_order(
            order_json() | {"quantity": Decimal("3"), "price": Decimal("190.13")}
        )

        assert snapshot.limit_price == Decimal("190.13")

    def test_zero_average_price_before_a_fill_means_none(self) -> None:
        assert parse_robinhood_order(order_json(average_price="0.00")).average_price is None

    def test_symbol_argument_wins_over_a_symbol_field(self) -> None:
        doc = order_json() | {"symbol": "MSFT"}

        assert parse_robinhood_order(doc).symbol == "MSFT"
        assert parse_robinhood_order(doc, symbol="AAPL").symbol == "AAPL"


class TestMalformed:
    """A payload that cannot describe an order raises BrokerError, never a guess."""

    @pytest.mark.parametrize(
        ("change", "why"),
        [
            ({"id": None}, "broker_order_id"),
            ({"id": ""}, "broker_order_id"),
            ({"side": "short"}, "side"),
            ({"quantity": "abc"}, "quantity"),
            ({"quantity": 1.5}, "quantity"),
            ({"quantity": "0"}, "quantity"),
            ({"quantity": None}, "quantity"),
            ({"price": "NaN"}, "price"),
            ({"cumulative_quantity": "-1"}, "cumulative_quantity"),
            ({"executions": "none"}, "executions"),
            ({"executions": [{"id": "e", "quantity": "1", "price": None}]}, "execution price"),
            ({"executions": [{"id": 7, "quantity": "1", "price": "1"}]}, "execution_id"),
            ({"updated_at": "2026-03-02T15:30:00"}, "timezone-aware"),
            ({"updated_at": "yesterday"}, "Invalid isoformat"),
            ({"ref_id": 12}, "ref_id"),
        ],
    )
    def test_bad_field(self, change: dict[str, Any], why: str) -> None:
        with pytest.raises(BrokerError, match="malformed") as info:
            parse_robinhood_order(order_json() | change)

        assert why in str(info.value)

    @pytest.mark.parametrize("payload", [None, [], "order", 42])
    def test_not_an_object(self, payload: Any) -> None:
        with pytest.raises(BrokerError, match="JSON object"):
            parse_robinhood_order(payload)

    def test_missing_state(self) -> None:
        doc = order_json()
        del doc["state"]

        with pytest.raises(BrokerError, match="state None"):
            parse_robinhood_order(doc)
