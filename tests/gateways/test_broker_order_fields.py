"""BrokerOrder's fields, and the fast constructor that must set every one of them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest

from orders.errors import InvalidOrderError
from orders.gateways.base import Accepted
from orders.gateways.paper import PaperBroker
from orders.lifecycle import Order
from orders.model import BrokerOrder, Execution, OrderState, Side

AT = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


def every_field_set() -> BrokerOrder:
    """A snapshot with no field left at its default, so a field the fast path forgets shows."""
    return BrokerOrder(
        broker_order_id="ord-1",
        client_order_id="client-1",
        symbol="AAPL",
        side=Side.SELL,
        quantity=Decimal(10),
        limit_price=Decimal("190.13"),
        state=OrderState.CANCELLED,
        raw_state="partially_filled_rest_cancelled",
        cumulative_quantity=Decimal(4),
        average_price=Decimal("190.12"),
        executions=(Execution("ex-1", Decimal(4), Decimal("190.12"), AT),),
        reject_reason="no",
        updated_at=AT,
        cancel_reason="end_of_day",
    )


class TestCancelReasonField:
    def test_it_defaults_to_none_so_existing_constructions_keep_working(self) -> None:
        snapshot = BrokerOrder("ord-1", "client-1", "AAPL", "buy", 3, "190.13", "submitted")

        assert snapshot.cancel_reason is None

    def test_it_is_keyword_only(self) -> None:
        field = attrs.fields(BrokerOrder).cancel_reason

        assert field.kw_only
        assert field.default is None

    def test_a_non_string_is_refused(self) -> None:
        with pytest.raises(InvalidOrderError, match="cancel_reason"):
            attrs.evolve(every_field_set(), cancel_reason=7)


def test_paper_snapshots_carry_the_field() -> None:
    broker = PaperBroker(quotes={"AAPL": Decimal("190.00")})
    order = Order("AAPL", "buy", 3, "190.13", client_order_id="client-1")

    outcome = broker.submit_limit(order)
    (filled,) = broker.match()

    assert isinstance(outcome, Accepted)
    assert outcome.snapshot.cancel_reason is None
    assert (filled.state, filled.cancel_reason) == (OrderState.FILLED, None)
