"""Small builders shared by the tests: orders on a fixed clock, broker snapshots, hook recorders.

One helper per thing a test needs to build, each with a docstring, plus `assert_invariants`
(the documented quantity invariants), which several suites check after every step. Money and share
counts stay `Decimal` (or exact `str`/`int`); no floats.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from orders import (
    AuditJournal,
    BrokerOrder,
    Execution,
    LifecycleEvent,
    Order,
    OrderHooks,
    OrderManagementConfig,
    OrderManager,
    OrderState,
    PaperBroker,
    SafetyChecks,
    SubmitOutcome,
)

__all__ = [
    "BROKER_ID",
    "CLIENT_ID",
    "NOW",
    "SYMBOL",
    "HookRecorder",
    "assert_invariants",
    "execution",
    "fixed_clock",
    "guard_of",
    "make_order",
    "order_snapshot",
    "snap",
]

NOW = datetime(2026, 1, 2, tzinfo=UTC)
CLIENT_ID = "client-1"
BROKER_ID = "broker-1"
SYMBOL = "AAPL"


def guard_of(manager: OrderManager) -> SafetyChecks:
    """The manager's duplicate guard, as the `SafetyChecks` the tests built it with.

    `OrderManager.safety` is typed as the `SafetyPolicy` protocol (a bot may plug in its own);
    the tests read `SafetyChecks`' own queries, so they say which one they expect.
    """
    assert isinstance(manager.safety, SafetyChecks)
    return manager.safety


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
    cancel_reason: str | None = None,
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
        cancel_reason=cancel_reason,
        **fields,  # type: ignore[arg-type]
    )


def order_snapshot(order: Order) -> tuple[object, ...]:
    """Everything a user can read off an order, to compare before and after a no-op."""
    return order_view(order)


def assert_invariants(order: Order) -> None:
    """The documented invariants: working, terminal and filled orders keep quantities straight."""
    if order.is_terminal:
        assert order.leaves_quantity == 0
    else:
        assert order.filled_quantity + order.leaves_quantity == order.quantity
        assert order.filled_quantity < order.quantity
    if order.state is OrderState.FILLED:
        assert order.filled_quantity == order.quantity
    booked = sum((e.quantity for e in order.executions), Decimal(0))
    assert booked == order.filled_quantity


# -- service-level helpers (OrderManager on PaperBroker) ---------------------------------------
__all__ += [
    "Desk",
    "ManualUtcClock",
    "MonotonicClock",
    "SpyGateway",
    "broker_orders",
    "journal_records",
    "make_desk",
]


class SpyGateway:
    """An `OrderGateway` and `AccountSource` around a `PaperBroker` that records every call.

    `calls` holds `(method, argument)` pairs in call order; `count(name)` says how often one
    method ran, so a test can prove that nothing (or nothing more) reached the broker.
    """

    def __init__(self, broker: PaperBroker) -> None:
        self.broker = broker
        self.calls: list[tuple[str, object]] = []

    def count(self, name: str) -> int:
        """How many times the gateway method `name` was called."""
        return sum(1 for called, _ in self.calls if called == name)

    def submit_limit(self, order: Order) -> SubmitOutcome:
        self.calls.append(("submit_limit", order.client_order_id))
        return self.broker.submit_limit(order)

    def cancel(self, broker_order_id: str) -> None:
        self.calls.append(("cancel", broker_order_id))
        self.broker.cancel(broker_order_id)

    def fetch(self, broker_order_id: str) -> BrokerOrder | None:
        self.calls.append(("fetch", broker_order_id))
        return self.broker.fetch(broker_order_id)

    def find_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        self.calls.append(("find_by_client_id", client_order_id))
        return self.broker.find_by_client_id(client_order_id)

    def updated_since(self, when: datetime) -> list[BrokerOrder]:
        self.calls.append(("updated_since", when))
        return self.broker.updated_since(when)

    def fetch_buying_power(self) -> Decimal:
        self.calls.append(("fetch_buying_power", None))
        return self.broker.fetch_buying_power()

    def fetch_positions(self) -> Mapping[str, Decimal]:
        self.calls.append(("fetch_positions", None))
        return self.broker.fetch_positions()


@dataclass
class Desk:
    """A paper trading desk: broker, spy gateway, manager and journal path, wired together."""

    broker: PaperBroker
    spy: SpyGateway
    manager: OrderManager
    journal_path: Path

    def broker_orders(self) -> list[BrokerOrder]:
        """Every order the broker holds, once each, in its current state (whatever its age)."""
        return broker_orders(self.broker)

    def records(self) -> list[dict[str, Any]]:
        """The journal's records, parsed."""
        return journal_records(self.journal_path)


def make_desk(
    tmp_path: Path,
    *,
    broker: PaperBroker | None = None,
    config: Mapping[str, Any] | None = None,
    journal: AuditJournal | None = None,
    clock: Callable[[], datetime] | None = None,
    safety: SafetyChecks | None = None,
) -> Desk:
    """An `OrderManager` over a spied `PaperBroker` (wall clock), journaling to `tmp_path`."""
    broker = PaperBroker() if broker is None else broker
    spy = SpyGateway(broker)
    path = tmp_path / "orders.jsonl" if journal is None else journal.path
    kwargs: dict[str, Any] = {}
    if clock is not None:
        kwargs["clock"] = clock
    manager = OrderManager(
        spy,
        config=OrderManagementConfig.from_dict(dict(config or {})),
        journal=AuditJournal(path) if journal is None else journal,
        safety=safety,
        **kwargs,
    )
    return Desk(broker, spy, manager, path)


def broker_orders(broker: PaperBroker) -> list[BrokerOrder]:
    """Every order `broker` holds, once each and current (delivery faults garble listings)."""
    ids = dict.fromkeys(
        s.broker_order_id for s in broker.updated_since(datetime(1970, 1, 1, tzinfo=UTC))
    )
    found = [broker.fetch(broker_order_id) for broker_order_id in ids]
    return [snapshot for snapshot in found if snapshot is not None]


def journal_records(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a journal file, parsed (an absent file has none)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class MonotonicClock:
    """A hand-driven `time.monotonic` stand-in: `advance(seconds)` moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ManualUtcClock:
    """A hand-driven UTC clock (starting at the wall clock); `advance(seconds)` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = datetime.now(UTC) if start is None else start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Ticker:
    """A UTC clock moving one second per reading, so every event has its own time."""

    def __init__(self, start: datetime = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def order_view(order: Order) -> tuple[object, ...]:
    """Everything a user can read off an order (to compare a replayed order with the live one)."""
    return (
        order.client_order_id,
        order.state,
        order.broker_order_id,
        order.symbol,
        order.side,
        order.quantity,
        order.limit_price,
        order.strategy,
        order.time_in_force,
        order.filled_quantity,
        order.leaves_quantity,
        order.average_fill_price,
        order.executions,
        order.cancel_requested,
        order.reason,
        order.history,
    )
