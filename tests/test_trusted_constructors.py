"""Every constructor that skips attrs' converters names each field of its class, in order.

Such a constructor sets the fields one by one, so a field added to the class and forgotten
here would be missing from the objects it builds, and fail only where that field is first
read. These tests tie each one's parameters to `attrs.fields` of the class it serves.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders import (
    BrokerOrder,
    Execution,
    InvalidOrderError,
    LifecycleEvent,
    Order,
    OrderHooks,
    OrderRequest,
    OrderState,
    Side,
    TimeInForce,
)
from orders._sync_report import events_report
from orders.lifecycle import order_from_request
from orders.manager import SyncReport
from orders.model import trusted_broker_order, trusted_execution, trusted_lifecycle_event

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
EXECUTION = Execution("x-1", Decimal(4), Decimal("10.50"), T0)


def _every_field_set() -> dict[type, Any]:
    """One value of each class with every field given a value that is not its default."""
    return {
        Execution: EXECUTION,
        LifecycleEvent: LifecycleEvent(
            "fill",
            OrderState.SUBMITTED,
            OrderState.PARTIALLY_FILLED,
            T0,
            execution=EXECUTION,
            reason="why",
            broker_order_id="B-1",
            executions=(EXECUTION,),
        ),
        BrokerOrder: BrokerOrder(
            "B-1",
            "c-1",
            "AAPL",
            Side.BUY,
            Decimal(10),
            Decimal("10.50"),
            OrderState.CANCELLED,
            raw_state="cancelled",
            cumulative_quantity=Decimal(4),
            average_price=Decimal("10.50"),
            executions=(EXECUTION,),
            reject_reason="no",
            updated_at=T0,
            cancel_reason="end_of_day",
        ),
    }


TRUSTED: list[tuple[type, Callable[..., Any], bool]] = [
    # (class, its trusted constructor, whether it takes its fields by keyword)
    (Execution, trusted_execution, False),
    (LifecycleEvent, trusted_lifecycle_event, False),
    (BrokerOrder, trusted_broker_order, False),
]


@pytest.mark.parametrize(
    ("cls", "build", "by_keyword"), TRUSTED, ids=lambda v: getattr(v, "__name__", "")
)
class TestTrustedConstructors:
    """Each trusted constructor has one parameter per field and builds an equal object."""

    def test_its_parameters_are_exactly_the_fields_in_order(
        self, cls: type, build: Callable[..., Any], by_keyword: bool
    ) -> None:
        parameters = inspect.signature(build).parameters

        assert list(parameters) == [f.name for f in attrs.fields(cls)]
        assert all(p.default is inspect.Parameter.empty for p in parameters.values())

    def test_it_builds_what_the_validating_constructor_builds(
        self, cls: type, build: Callable[..., Any], by_keyword: bool
    ) -> None:
        expected = _every_field_set()[cls]
        values = {f.name: getattr(expected, f.name) for f in attrs.fields(cls)}

        built = build(**values) if by_keyword else build(*values.values())

        assert built == expected
        assert repr(built) == repr(expected)


class TestHistoryEvents:
    """An order's history, built by the trusted event constructor, equals validated events."""

    def test_every_kind_of_entry_reads_back_as_the_validating_constructor_builds_it(
        self,
    ) -> None:
        order = Order("AAPL", "buy", 10, "10.50", client_order_id="c-1", clock=lambda: T0)
        order.submit("B-1")
        order.fill("inferred:c-1:0:4", 4, "10.50")
        order.correct_fill([EXECUTION])
        order.request_cancel()
        order.cancel_rejected("too late")
        order.cancel("asked")
        s, p, c = OrderState.SUBMITTED, OrderState.PARTIALLY_FILLED, OrderState.CANCELLED
        inferred = Execution("inferred:c-1:0:4", 4, "10.50")

        assert order.history == (
            LifecycleEvent("submit", OrderState.PENDING, s, T0, broker_order_id="B-1"),
            LifecycleEvent("fill", s, p, T0, execution=inferred),
            LifecycleEvent("correct_fill", p, p, T0, executions=(EXECUTION,)),
            LifecycleEvent("request_cancel", p, p, T0),
            LifecycleEvent("cancel_rejected", p, p, T0, reason="too late"),
            LifecycleEvent("cancel", p, c, T0, reason="asked"),
        )


class TestEventsReport:
    """The report a manager's `ingest` builds without the frozen class's constructor."""

    def test_it_is_the_report_the_class_builds(self) -> None:
        event = _every_field_set()[LifecycleEvent]
        events = (("c-1", event),)

        built = events_report(events)

        assert built == SyncReport(events=events)
        assert repr(built) == repr(SyncReport(events=events))
        assert str(built) == str(SyncReport(events=events))


class TestOrderFromRequest:
    """The manager's orders, built from a checked request without checking it again."""

    @given(
        symbol=st.sampled_from(["AAPL", "BRK.B", "T"]),
        side=st.sampled_from(list(Side)),
        quantity=st.decimals(min_value=Decimal("0.0001"), max_value=10**6, places=4),
        price=st.decimals(min_value=Decimal("0.0001"), max_value=10**5, places=4),
        strategy=st.sampled_from(["default", "momentum", "mean-revert_2"]),
        time_in_force=st.sampled_from(list(TimeInForce)),
        client_order_id=st.sampled_from([None, "c-1", "bot.7"]),
    )
    def test_it_builds_the_order_the_constructor_builds(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        strategy: str,
        time_in_force: TimeInForce,
        client_order_id: str | None,
    ) -> None:
        request = OrderRequest(
            symbol, side.value, str(quantity), price, strategy=strategy, time_in_force=time_in_force
        )
        hooks, clock = OrderHooks(), lambda: T0

        built = order_from_request(request, price, client_order_id, clock, hooks)
        expected = Order(
            symbol,
            side,
            quantity,
            price,
            strategy=strategy,
            client_order_id=built.client_order_id,  # a fresh one when None was given
            time_in_force=time_in_force,
            clock=clock,
            hooks=hooks,
        )

        assert built._t == expected._t
        # Plain strings, not enum members, which compare equal but are not plain values.
        assert list(map(type, built._t)) == list(map(type, expected._t))
        assert (built._hooks, built._clock) == (expected._hooks, expected._clock)
        assert client_order_id is None or built.client_order_id == client_order_id

    @pytest.mark.parametrize("bad", ["", "tab\there", "lone \ud800"])
    def test_a_client_order_id_from_a_callers_generator_is_still_checked(self, bad: str) -> None:
        request = OrderRequest("AAPL", "buy", 1, "10")

        with pytest.raises(InvalidOrderError, match="client_order_id"):
            order_from_request(request, Decimal(10), bad, None, None)
