"""`Order.apply_planned_steps`: a planned change is applied whole, or not at all."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from orders import (
    IllegalTransition,
    InvalidOrderError,
    LifecycleEvent,
    Order,
    OrderHooks,
    OrderState,
    OverfillError,
)
from orders.lifecycle import (
    PlannedCancel,
    PlannedCorrection,
    PlannedFill,
    PlannedReject,
    PlannedSubmit,
)
from orders.model import Execution

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 14, 31, tzinfo=UTC)
PRICE = Decimal("10.50")


def _order(heard: list[LifecycleEvent] | None = None) -> Order:
    hooks = None if heard is None else OrderHooks(on_event=(lambda o, e: heard.append(e),))
    return Order("AAPL", "buy", 10, PRICE, client_order_id="c-1", clock=lambda: T0, hooks=hooks)


def _snapshot(order: Order) -> tuple[Any, ...]:
    return (order.state, order.filled_quantity, order.executions, order.history, order.reason)


class TestApplied:
    """A valid plan fires each step in order and returns the events the observers heard."""

    def test_submit_fills_and_cancel_in_one_plan(self) -> None:
        heard: list[LifecycleEvent] = []
        order = _order(heard)

        events = order.apply_planned_steps(
            [
                PlannedSubmit("B-1"),
                PlannedFill("x-1", Decimal(4), PRICE, None),
                PlannedCancel("end_of_day"),
            ],
            at=T1,
        )

        assert [(e.trigger, e.dest) for e in events] == [
            ("submit", OrderState.SUBMITTED),
            ("fill", OrderState.PARTIALLY_FILLED),
            ("cancel", OrderState.CANCELLED),
        ]
        assert events == tuple(heard) == order.history
        assert all(e.at == T1 for e in events)
        assert (order.broker_order_id, order.filled_quantity, order.reason) == (
            "B-1",
            Decimal(4),
            "end_of_day",
        )

    def test_a_fill_already_booked_is_skipped_like_a_repeated_fill(self) -> None:
        order = _order()
        order.submit("B-1")
        order.fill("x-1", 4, PRICE)

        events = order.apply_planned_steps(
            [PlannedFill("x-1", Decimal(4), PRICE, None), PlannedFill("x-2", Decimal(6), PRICE, T0)]
        )

        assert [e.execution.execution_id for e in events if e.execution] == ["x-2"]
        assert order.state is OrderState.FILLED

    def test_a_correction_replaces_the_inferred_fill(self) -> None:
        order = _order()
        order.submit("B-1")
        order.fill("inferred:c-1:0:4", 4, PRICE)
        listed = (Execution("x-1", 1, "10.40"), Execution("x-2", 3, "10.60"))

        (event,) = order.apply_planned_steps([PlannedCorrection(listed)])

        assert event.executions == listed
        assert order.executions == listed
        assert order.execution_ledger().inferred_quantity == 0

    def test_a_reject(self) -> None:
        order = _order()

        (event,) = order.apply_planned_steps([PlannedReject("no buying power")])

        assert (event.dest, order.reason) == (OrderState.REJECTED, "no buying power")


class TestAllOrNothing:
    """A plan that fails at any step raises, changes nothing, and no observer hears of it."""

    @pytest.mark.parametrize(
        ("plan", "error"),
        [
            # The last step is illegal once the steps before it have run.
            ([PlannedSubmit("B-1"), PlannedSubmit("B-1")], IllegalTransition),
            (
                [PlannedSubmit("B-1"), PlannedFill("x-1", Decimal(10), PRICE, None),
                 PlannedCancel("late")],
                IllegalTransition,
            ),
            # Each fill fits; together they overfill.
            (
                [PlannedSubmit("B-1"), PlannedFill("x-1", Decimal(6), PRICE, None),
                 PlannedFill("x-2", Decimal(6), PRICE, None)],
                OverfillError,
            ),
        ],
    )  # fmt: skip
    def test_a_failing_last_step_leaves_the_order_untouched(
        self, plan: list[Any], error: type[Exception]
    ) -> None:
        heard: list[LifecycleEvent] = []
        order = _order(heard)
        before = _snapshot(order)

        with pytest.raises(error):
            order.apply_planned_steps(plan)

        assert _snapshot(order) == before
        assert heard == []

    def test_something_that_is_not_a_planned_step_is_refused(self) -> None:
        order = _order()

        with pytest.raises(InvalidOrderError, match="planned steps"):
            order.apply_planned_steps([("submit", ("B-1",))])  # type: ignore[list-item]

        assert order.history == ()


class TestExecutionLedger:
    """The ledger names every booked execution and the quantity booked by inference."""

    def test_listed_and_inferred_fills(self) -> None:
        order = _order()
        order.submit("B-1")
        order.fill("x-1", 2, PRICE)
        order.fill("inferred:c-1:2:5", 3, PRICE)

        ledger = order.execution_ledger()

        assert ledger.execution_ids == {"x-1", "inferred:c-1:2:5"}
        assert ledger.inferred_quantity == 3
