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

from orders import BrokerOrder, Execution, LifecycleEvent, Order, OrderState, Side
from orders._sync_report import events_report
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
