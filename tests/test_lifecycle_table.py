"""`Order` goes exactly where the lifecycle table says, for every move the table holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orders import IllegalTransition, Order, OrderHooks, OrderState
from orders._machine import MACHINE_CONFIG, _LifecycleMachine
from orders.lifecycle import (
    FILL_COMPLETES,
    FILL_LEAVES_OPEN,
    INFERRED_PREFIX,
    LIFECYCLE,
    TRIGGERS,
    Move,
)
from orders.model import Execution, LifecycleEvent

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
QUANTITY = Decimal(10)
PRICE = Decimal("10.50")


def _order(hooks: OrderHooks | None = None) -> Order:
    return Order(
        "AAPL", "buy", QUANTITY, PRICE, client_order_id="c-1", clock=lambda: T0, hooks=hooks
    )


def _submitted(order: Order) -> Order:
    order.submit("B-1")
    return order


# How to bring a fresh order into each state. The fills are inferred ones (their ids carry the
# inferred prefix), so that a `correct_fill` has something to correct from any state.
REACH: dict[OrderState, Callable[[Order], object]] = {
    OrderState.PENDING: lambda order: None,
    OrderState.SUBMITTED: _submitted,
    OrderState.PARTIALLY_FILLED: lambda order: _submitted(order).fill(
        f"{INFERRED_PREFIX}c-1:0:4", 4, PRICE
    ),
    OrderState.FILLED: lambda order: _submitted(order).fill(
        f"{INFERRED_PREFIX}c-1:0:10", QUANTITY, PRICE
    ),
    OrderState.CANCELLED: lambda order: (
        _submitted(order).fill(f"{INFERRED_PREFIX}c-1:0:4", 4, PRICE),
        order.cancel("asked"),
    ),
    OrderState.REJECTED: lambda order: order.reject("no"),
}


def _fire(order: Order, move: Move) -> bool:
    """Fire the move's trigger with arguments that satisfy its guard."""
    trigger = move.trigger
    if trigger == "fill":
        leaves = order.quantity - order.filled_quantity
        quantity = leaves if move.guard == FILL_COMPLETES else Decimal(1)
        assert move.guard in (FILL_COMPLETES, FILL_LEAVES_OPEN, None)
        return order.fill("x-new", quantity, PRICE)
    if trigger == "correct_fill":
        quantity = order.execution_ledger().inferred_quantity or Decimal(1)
        return order.correct_fill([Execution("x-listed", quantity, PRICE)])
    if trigger == "cancel_rejected":  # its guard: a cancel was requested
        order.request_cancel()
    if trigger == "request_cancel":
        return order.request_cancel()
    method: Callable[[str], bool] = getattr(order, trigger)
    return method("B-1") if trigger == "submit" else method("why")


def _label(move: Move) -> str:
    return f"{move.source}-{move.trigger}-{move.guard or 'any'}"


@pytest.mark.parametrize("move", LIFECYCLE, ids=_label)
class TestEveryMoveGoesWhereTheTableSays:
    """Each row of LIFECYCLE, driven on a real order, ends in the row's destination."""

    def test_the_state_and_the_recorded_event_name_the_tables_destination(self, move: Move) -> None:
        order = _order()
        REACH[move.source](order)
        assert order.state is move.source
        assert _fire(order, move) is True
        assert order.state is move.dest
        last = order.history[-1]
        assert (last.trigger, last.source, last.dest) == (move.trigger, move.source, move.dest)

    def test_observers_hear_the_tables_destination(self, move: Move) -> None:
        heard: list[LifecycleEvent] = []
        order = _order(OrderHooks(on_event=(lambda o, e: heard.append(e),)))
        REACH[move.source](order)
        heard.clear()
        _fire(order, move)
        assert heard[-1].dest is move.dest
        assert heard[-1] == order.history[-1]

    def test_a_journal_replay_may_claim_only_the_tables_destination(self, move: Move) -> None:
        order = _order()
        REACH[move.source](order)
        others = [s for s in OrderState if s not in _destinations(move.source, move.trigger)]
        for wrong in others:
            with pytest.raises(IllegalTransition):
                order.restore_raw(move.trigger, str(wrong), T0, "why")
            assert order.state is move.source


def _destinations(source: OrderState, trigger: str) -> set[OrderState]:
    return {m.dest for m in LIFECYCLE if (m.source, m.trigger) == (source, trigger)}


class TestMovesOutsideTheTable:
    """A trigger the table does not allow from a state is refused and changes nothing."""

    @pytest.mark.parametrize("state", list(OrderState), ids=str)
    def test_every_missing_pair_is_illegal(self, state: OrderState) -> None:
        allowed = {m.trigger for m in LIFECYCLE if m.source is state}
        # cancel_rejected on a filled or cancelled order is a documented no-op, not an error.
        quiet = {"cancel_rejected"} if state in (OrderState.FILLED, OrderState.CANCELLED) else set()
        for trigger in set(TRIGGERS) - allowed - quiet:
            order = _order()
            REACH[state](order)
            before = order.history
            with pytest.raises(IllegalTransition):
                _fire(order, Move(state, trigger, state))
            assert order.history == before and order.state is state


class _Recorded:
    """A model for the lifecycle's machine classes that records its callbacks."""

    def __init__(self) -> None:
        self._state = "pending"
        self.calls: list[str] = []
        self.machine: _LifecycleMachine | None = None

    def _commit(self, trigger: str) -> None:
        self.calls.append(f"commit {trigger}")

    def _notify(self, trigger: str) -> None:
        self.calls.append(f"notify {self._state}")
        if self._state == "submitted" and self.machine is not None:
            self.machine.events["cancel"].trigger(self, "cancel")  # nested: waits its turn
        self.calls.append(f"notified {self._state}")

    def _fill_completes(self, trigger: str) -> bool:
        return False

    def _cancel_was_requested(self, trigger: str) -> bool:
        return False


def test_a_queued_machine_of_the_lifecycle_classes_runs_nested_events_after_the_current() -> None:
    """The lean event runs at once only without a queue; with one, `transitions`' rule
    holds: an event fired from a callback starts once the current one has finished."""
    model = _Recorded()
    model.machine = _LifecycleMachine(model=None, queued=True, **MACHINE_CONFIG)
    assert model.machine.events["submit"].trigger(model, "submit")
    assert model._state == "cancelled"
    assert model.calls == [
        "commit submit",
        "notify submitted",
        "notified submitted",
        "commit cancel",
        "notify cancelled",
        "notified cancelled",
    ]
