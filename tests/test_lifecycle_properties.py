"""Hypothesis drives many orders with legal and illegal triggers and checks every step.

The expectations come from an independent reference written from the documented transition
table, not from `orders.lifecycle.LIFECYCLE`, so a wrong edge in the code cannot hide behind the
same typo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from orders import IllegalTransition, LifecycleEvent, Order, OrderHooks, OverfillError

WORKING = {"pending", "submitted", "partially_filled"}
TERMINAL = {"filled", "cancelled", "rejected"}
# Reference from the documented table: trigger -> states it is legal from. `fill`'s destination
# depends on the quantity; `request_cancel`, `cancel_rejected` and a late fill keep the state.
LEGAL_FROM = {
    "submit": {"pending"},
    "fill": {"submitted", "partially_filled", "cancelled"},
    "request_cancel": WORKING,
    "cancel_rejected": WORKING,
    "cancel": WORKING,
    "reject": {"pending", "submitted"},
}
TRIGGERS = sorted(LEGAL_FROM)
EXECUTION_IDS = [f"x{i}" for i in range(8)]  # a small pool, so repeats happen
AT = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


@dataclass
class Expected:
    """What the reference says one order should look like."""

    quantity: Decimal
    state: str = "pending"
    filled: Decimal = Decimal(0)
    executions: dict[str, Decimal] = field(default_factory=dict)
    cancel_requested: bool = False
    events: int = 0


def observable(order: Order) -> tuple[Any, ...]:
    return (
        order.state,
        order.filled_quantity,
        order.leaves_quantity,
        order.average_fill_price,
        order.executions,
        order.cancel_requested,
        order.history,
        order.reason,
        order.broker_order_id,
    )


class Recorder:
    """Records every hook call as (hook list, order id, trigger, dest)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    def hooks(self) -> OrderHooks:
        def make(name: str) -> Any:
            def observer(order: Order, event: LifecycleEvent) -> None:
                self.calls.append((name, order.client_order_id, event.trigger, str(event.dest)))

            return observer

        return OrderHooks(
            on_event=[make("event")],
            on_exposure_change=[make("exposure")],
            on_terminal=[make("terminal")],
        )


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)
quantities = st.integers(min_value=1, max_value=40).map(Decimal)


class OrderLifecycle(RuleBasedStateMachine):
    """Random triggers on random orders agree with the reference after every step."""

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.expected: dict[str, Expected] = {}
        self.live: list[Order] = []
        self.recorder = Recorder()
        self.hooks = self.recorder.hooks()
        self.fresh = 0

    @rule(target=orders, quantity=quantities)
    def new_order(self, quantity: Decimal) -> Order:
        order = Order("AAPL", "buy", quantity, "10.00", hooks=self.hooks, clock=lambda: AT)
        self.expected[order.client_order_id] = Expected(quantity=quantity)
        self.live.append(order)
        return order

    @rule(
        order=orders,
        trigger=st.sampled_from(TRIGGERS),
        execution_id=st.sampled_from(EXECUTION_IDS),
        quantity=quantities,
        price=prices,
        reason=st.sampled_from(["", "end of day", "insufficient buying power"]),
    )
    def fire(
        self,
        order: Order,
        trigger: str,
        execution_id: str,
        quantity: Decimal,
        price: Decimal,
        reason: str,
    ) -> None:
        exp = self.expected[order.client_order_id]
        before = observable(order)
        calls_before = len(self.recorder.calls)
        outcome = self.reference(exp, trigger, execution_id, quantity)

        args: tuple[Any, ...] = {
            "submit": ("B-" + order.client_order_id,),
            "fill": (execution_id, quantity, price),
            "request_cancel": (),
            "cancel_rejected": (reason,),
            "cancel": (reason,),
            "reject": (reason or "rejected",),
        }[trigger]
        if outcome in (IllegalTransition, OverfillError):
            with pytest.raises(outcome) as info:
                getattr(order, trigger)(*args)
            if outcome is IllegalTransition:
                error = info.value
                assert isinstance(error, IllegalTransition)
                assert (error.order_id, error.state, error.trigger) == (
                    order.client_order_id,
                    exp.state,
                    trigger,
                )
                assert order.client_order_id in str(error) and trigger in str(error)
            assert observable(order) == before
            assert len(self.recorder.calls) == calls_before
            return
        if outcome is False:
            assert getattr(order, trigger)(*args) is False
            assert observable(order) == before
            assert len(self.recorder.calls) == calls_before
            return

        source = exp.state
        assert getattr(order, trigger)(*args) is True
        self.commit(exp, trigger, execution_id, quantity)
        new_calls = self.recorder.calls[calls_before:]
        assert new_calls == self.expected_calls(order, trigger, source, exp.state)

    @rule(order=orders, price=prices)
    def fill_the_rest(self, order: Order, price: Decimal) -> None:
        """Push orders to `filled` often: a fresh execution for exactly the leaves quantity."""
        self.fresh += 1
        leaves = order.leaves_quantity or Decimal(1)
        self.fire(order, "fill", f"fresh{self.fresh}", leaves, price, "")

    @rule(order=orders)
    def submit_it(self, order: Order) -> None:
        """Most real orders get acknowledged; without this few runs get past pending."""
        self.fire(order, "submit", "x0", Decimal(1), Decimal(1), "")

    def reference(self, exp: Expected, trigger: str, execution_id: str, qty: Decimal) -> Any:
        """IllegalTransition, OverfillError, False (a no-op) or True."""
        if trigger == "fill" and execution_id in exp.executions:
            return False
        if exp.state not in LEGAL_FROM[trigger]:
            # A cancel rejection for an order that filled or was cancelled lost a race: no-op.
            late = trigger == "cancel_rejected" and exp.state in {"filled", "cancelled"}
            return False if late else IllegalTransition
        if trigger == "fill" and exp.filled + qty > exp.quantity:
            return OverfillError
        if trigger == "request_cancel" and exp.cancel_requested:
            return False
        if trigger == "cancel_rejected" and not exp.cancel_requested:
            return IllegalTransition
        return True

    def commit(self, exp: Expected, trigger: str, execution_id: str, qty: Decimal) -> None:
        exp.events += 1
        if trigger == "submit":
            exp.state = "submitted"
        elif trigger == "fill":
            exp.filled += qty
            exp.executions[execution_id] = qty
            if exp.state != "cancelled":
                exp.state = "filled" if exp.filled == exp.quantity else "partially_filled"
            if exp.state == "filled":
                exp.cancel_requested = False
        elif trigger == "request_cancel":
            exp.cancel_requested = True
        elif trigger == "cancel_rejected":
            exp.cancel_requested = False
        else:
            exp.state = "cancelled" if trigger == "cancel" else "rejected"
            exp.cancel_requested = False

    def expected_calls(
        self, order: Order, trigger: str, source: str, dest: str
    ) -> list[tuple[str, str, str, str]]:
        cid = order.client_order_id
        calls = [("event", cid, trigger, dest)]
        late_fill = trigger == "fill" and source == "cancelled"
        entered = trigger not in ("request_cancel", "cancel_rejected") and not late_fill
        exposure_states = {"submitted", "partially_filled", "filled", "cancelled", "rejected"}
        if late_fill or (entered and dest in exposure_states):
            calls.append(("exposure", cid, trigger, dest))
        if entered and dest in TERMINAL:
            calls.append(("terminal", cid, trigger, dest))
        return calls

    @invariant()
    def orders_agree_with_reference(self) -> None:
        for order in self.live:
            exp = self.expected[order.client_order_id]
            assert order.state == exp.state
            assert order.filled_quantity == exp.filled
            assert order.cancel_requested is exp.cancel_requested
            assert [e.execution_id for e in order.executions] == list(exp.executions)
            assert len(order.history) == exp.events

    @invariant()
    def quantity_invariants_hold(self) -> None:
        for order in self.live:
            assert order.is_terminal is (order.state in TERMINAL)
            if order.is_terminal:
                assert order.leaves_quantity == 0
            else:
                assert order.filled_quantity + order.leaves_quantity == order.quantity
                assert order.filled_quantity < order.quantity
            if order.state == "filled":
                assert order.filled_quantity == order.quantity
            if order.executions:
                notional = sum(e.quantity * e.price for e in order.executions)
                assert order.average_fill_price == notional / order.filled_quantity
            else:
                assert order.average_fill_price is None

    def teardown(self) -> None:
        """A journal replay re-applies each event with `restore_raw`: from the history alone
        it rebuilds every order as it lived (a fill takes a path of its own there)."""
        for order in self.live:
            copy = Order(
                "AAPL", "buy", order.quantity, "10.00", client_order_id=order.client_order_id
            )
            for event in order.history:
                copy.restore_raw(
                    event.trigger, str(event.dest), event.at, _detail(event), str(event.source)
                )
            assert observable(copy) == observable(order)


def _detail(event: LifecycleEvent) -> Any:
    """What `Order.restore_raw` takes for `event`."""
    if event.execution is not None:
        e = event.execution
        return (e.execution_id, e.quantity, e.price, e.timestamp)
    return event.broker_order_id if event.trigger == "submit" else event.reason


OrderLifecycle.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderLifecycle = OrderLifecycle.TestCase
