"""Small builders shared by the tests: orders on a fixed clock, broker snapshots, hook recorders.

One helper per thing a test needs to build, each with a docstring, plus `assert_invariants`
(API.md's quantity invariants), which several suites check after every step. Money and share
counts stay `Decimal` (or exact `str`/`int`); no floats.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from orders import BrokerOrder, Execution, LifecycleEvent, Order, OrderHooks, OrderState

__all__ = [
    "BROKER_ID",
    "CLIENT_ID",
    "NOW",
    "SYMBOL",
    "HookRecorder",
    "assert_invariants",
    "execution",
    "fixed_clock",
    "make_order",
    "order_snapshot",
    "snap",
]

NOW = datetime(2026, 1, 2, tzinfo=UTC)
CLIENT_ID = "client-1"
BROKER_ID = "broker-1"
SYMBOL = "AAPL"


def fixed_clock() -> datetime:
    """The clock every factory-made order reads: 2026-01-02 00:00 UTC."""
    return NOW


@dataclass
class HookRecorder:
    """Records what each `OrderHooks` list heard, as `(trigger, source, dest)` triples."""

    events: list[LifecycleEvent] = field(default_factory=list)
    exposure: list[LifecycleEvent] = field(default_factory=list)
    terminal: list[LifecycleEvent] = field(default_factory=list)

    def hooks(self) -> OrderHooks:
        """An `OrderHooks` whose three observer lists append to this recorder."""
        return OrderHooks(
            on_event=(self._heard_event,),
            on_exposure_change=(self._heard_exposure,),
            on_terminal=(self._heard_terminal,),
        )

    def _heard_event(self, _order: Order, event: LifecycleEvent, /) -> None:
        self.events.append(event)

    def _heard_exposure(self, _order: Order, event: LifecycleEvent, /) -> None:
        self.exposure.append(event)

    def _heard_terminal(self, _order: Order, event: LifecycleEvent, /) -> None:
        self.terminal.append(event)

    @staticmethod
    def _moves(events: Iterable[LifecycleEvent]) -> list[tuple[str, str, str]]:
        return [(e.trigger, str(e.source), str(e.dest)) for e in events]

    @property
    def event_moves(self) -> list[tuple[str, str, str]]:
        return self._moves(self.events)

    @property
    def exposure_moves(self) -> list[tuple[str, str, str]]:
        return self._moves(self.exposure)

    @property
    def terminal_moves(self) -> list[tuple[str, str, str]]:
        return self._moves(self.terminal)

    def counts(self) -> tuple[int, int, int]:
        """How many events each list heard: (on_event, on_exposure_change, on_terminal)."""
        return len(self.events), len(self.exposure), len(self.terminal)


def make_order(
    quantity: Decimal | int | str = 100,
    limit_price: Decimal | int | str = "10.50",
    *,
    client_order_id: str = CLIENT_ID,
    symbol: str = SYMBOL,
    side: str = "buy",
    recorder: HookRecorder | None = None,
) -> Order:
    """A pending buy order on the fixed clock, optionally wired to a `HookRecorder`."""
    return Order(
        symbol,
        side,
        quantity,
        limit_price,
        client_order_id=client_order_id,
        clock=fixed_clock,
        hooks=None if recorder is None else recorder.hooks(),
    )


def execution(
    execution_id: str, quantity: Decimal | int | str, price: Decimal | int | str
) -> Execution:
    """One broker execution without a timestamp."""
    return Execution(execution_id, Decimal(quantity), Decimal(price))


def snap(
    state: OrderState | str,
    cumulative_quantity: Decimal | int | str = 0,
    *,
    average_price: Decimal | str | None = None,
    executions: Iterable[Execution] = (),
    quantity: Decimal | int | str = 100,
    broker_order_id: str = BROKER_ID,
    client_order_id: str | None = CLIENT_ID,
    raw_state: str | None = None,
    reject_reason: str | None = None,
    limit_price: Decimal | str | None = "10.50",
) -> BrokerOrder:
    """A broker snapshot of the factory's default order (override any field by keyword)."""
    fields: dict[str, object] = {}
    if raw_state is not None:
        fields["raw_state"] = raw_state
    return BrokerOrder(
        broker_order_id=broker_order_id,
        client_order_id=client_order_id,
        symbol=SYMBOL,
        side="buy",
        quantity=Decimal(quantity),
        limit_price=None if limit_price is None else Decimal(limit_price),
        state=state,
        cumulative_quantity=Decimal(cumulative_quantity),
        average_price=None if average_price is None else Decimal(average_price),
        executions=tuple(executions),
        reject_reason=reject_reason,
        **fields,  # type: ignore[arg-type]
    )


def order_snapshot(order: Order) -> tuple[object, ...]:
    """Everything a user can read off an order, to compare before and after a no-op."""
    return (
        order.state,
        order.broker_order_id,
        order.filled_quantity,
        order.leaves_quantity,
        order.average_fill_price,
        order.executions,
        order.cancel_requested,
        order.reason,
        order.history,
    )


def assert_invariants(order: Order) -> None:
    """API.md's invariants: working, terminal and filled orders keep their quantities straight."""
    if order.is_terminal:
        assert order.leaves_quantity == 0
    else:
        assert order.filled_quantity + order.leaves_quantity == order.quantity
        assert order.filled_quantity < order.quantity
    if order.state is OrderState.FILLED:
        assert order.filled_quantity == order.quantity
    booked = sum((e.quantity for e in order.executions), Decimal(0))
    assert booked == order.filled_quantity
