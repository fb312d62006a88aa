"""What an order holds, and the read-only view of it that `Order` inherits.

Everything an order holds is one tuple of plain values (strings, Decimals, datetimes and
tuples of them) that each trigger replaces whole. The garbage collector untracks such a tuple,
so it walks one object per order, not six: with 100,000 live orders that is the difference
between a 55 ms and a 20 ms full collection. The values are turned into public value objects
(`LifecycleEvent`, `Execution`, the enums) only when read.

Why the executions and the history are flat (one tuple of plain values each, an entry every
`EXECUTION_WIDTH` or `EVENT_WIDTH` places, a fill's execution fields inline in its event): the
collector untracks a tuple only once everything in it is untracked, and it looks at a tuple
before the ones inside it, so each level of nesting costs one more collection. Nested four
deep (fields, history, event, execution), replayed orders reached the oldest generation still
tracked: 75,000 records left 21,740 tuples tracked, and 150,000 took three full collections.
Flat, two collections untrack an order's fields: 3,094 tuples, and one full collection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from operator import mul
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from orders.model import (
    TERMINAL_STATES,
    Execution,
    LifecycleEvent,
    OrderState,
    Side,
    TimeInForce,
    trusted_execution,
    trusted_lifecycle_event,
)

if TYPE_CHECKING:
    from orders._hooks import OrderHooks

__all__ = [
    "EVENT_WIDTH",
    "EXECUTION_WIDTH",
    "INFERRED_PREFIX",
    "ExecutionLedger",
    "Flat",
    "OrderFields",
    "OrderView",
    "RawEvent",
    "RawExecution",
    "event_from_raw",
    "execution_from_raw",
    "planning_fields",
    "record_fields",
]

ZERO: Final = Decimal(0)
# Fills inferred from a cumulative quantity have ids of their own (see snapshot.py).
INFERRED_PREFIX: Final = "inferred:"
STATES: Final = {s.value: s for s in OrderState}
SIDES: Final = {s.value: s for s in Side}
TIMES_IN_FORCE: Final = {t.value: t for t in TimeInForce}
_REASONED: Final = frozenset({"cancel", "reject", "cancel_rejected"})

# A raw execution: (execution_id, quantity, price, timestamp).
RawExecution = tuple[str, Decimal, Decimal, datetime | None]
# A raw event, as a trigger prepares it: (trigger, source, dest, at, detail); detail is the
# execution tuple of a fill, the tuple of them of a correct_fill, the reason of cancel / reject
# / cancel_rejected, the broker order id of a submit.
RawEvent = tuple[str, str, str, datetime, Any]
# Entries of one width laid end to end in one tuple (see the module docstring).
Flat = tuple[Any, ...]
# An order's executions hold each as its four raw fields, in the order of RawExecution.
EXECUTION_WIDTH: Final = 4
# An order's history holds each event as trigger, source, dest, at, then a fill's four
# execution fields, or any other event's detail and three Nones.
EVENT_WIDTH: Final = 8
# An order's fields, by position: client order id, symbol, side, quantity, limit price,
# strategy, time in force, state, broker order id, filled quantity, cancel requested, reason,
# executions (flat), history (flat).
OrderFields = tuple[
    str, str, str, Decimal, Decimal, str, str, str, str | None, Decimal, bool, str | None,
    Flat, Flat,
]  # fmt: skip


def execution_from_raw(raw: RawExecution) -> Execution:
    return trusted_execution(*raw)


def event_from_raw(raw: RawEvent) -> LifecycleEvent:
    """The public value of a prepared event (its fields were validated when it was made)."""
    trigger, source, dest, at, detail = raw
    if trigger == "fill":
        return _history_event(trigger, source, dest, at, *detail)
    return _history_event(trigger, source, dest, at, detail, None, None, None)


def _history_event(  # noqa: PLR0917 - one parameter per field of a history entry
    trigger: str,
    source: str,
    dest: str,
    at: datetime,
    detail: Any,
    quantity: Any,
    price: Any,
    timestamp: Any,
) -> LifecycleEvent:
    """The public value of a history entry (as `event_from_raw`); a fill's `detail` is its
    execution id, and its other execution fields follow it."""
    return trusted_lifecycle_event(
        trigger,
        STATES[source],
        STATES[dest],
        at,
        trusted_execution(detail, quantity, price, timestamp) if trigger == "fill" else None,
        detail if trigger in _REASONED else None,
        detail if trigger == "submit" else None,
        tuple(map(execution_from_raw, detail)) if trigger == "correct_fill" else (),
    )


def _history(history: Flat, start: int = 0) -> tuple[LifecycleEvent, ...]:
    """The public values of the flat `history` from event `start` on."""
    first = start * EVENT_WIDTH
    return tuple(
        map(_history_event, *(history[first + k :: EVENT_WIDTH] for k in range(EVENT_WIDTH)))
    )


def planning_fields(order: OrderView) -> tuple[str, str | None, OrderState, Decimal, Decimal]:
    """What bringing an order up to a broker's report compares first, in one read: client
    order id, broker order id, state, quantity, filled quantity.

    Every report an order gets goes through this; reading them as properties, each where it
    was needed, cost 22,000 instructions an order (callgrind), 2.5% of a paper session.
    """
    t = order._t  # this module defines the layout of the tuple
    return t[0], t[8], STATES[t[7]], t[3], t[9]


def record_fields(
    order: OrderView,
) -> tuple[str, str | None, str, str, str, Decimal, Decimal, Decimal, bool]:
    """The fields every journal record carries, in one read: client order id, broker order
    id, symbol, side, strategy, quantity, limit price, filled quantity, cancel requested.

    A record is written for every event, and ten property reads cost about 2% of a paper
    session (measured); the side is its plain string, as the journal writes it.
    """
    t = order._t  # this module defines the layout of the tuple
    return t[0], t[8], t[1], t[2], t[5], t[3], t[4], t[9], t[10]


class ExecutionLedger(NamedTuple):
    """What an order has booked, for a caller that must not book an execution twice."""

    execution_ids: frozenset[str]
    """Every booked execution id, the inferred ones included."""
    inferred_quantity: Decimal
    """The quantity booked by inference from cumulative quantities."""


class OrderView:
    """The read-only side of `Order`: every property reads the one tuple of fields."""

    __slots__ = ("_clock", "_hooks", "_t")

    _t: OrderFields
    # None stands for no hooks (`NO_HOOKS`), and a `_clock` of None for `utc_now`: a full
    # garbage collection visits what every order's slots point at, and None is the cheapest
    # thing to visit (a pass over 20,000 orders: 15.3M instructions before, 11.2M after).
    _hooks: OrderHooks | None

    @property
    def state(self) -> OrderState:
        return STATES[self._t[7]]

    @property
    def client_order_id(self) -> str:
        return self._t[0]

    @property
    def broker_order_id(self) -> str | None:
        return self._t[8]

    @property
    def symbol(self) -> str:
        return self._t[1]

    @property
    def side(self) -> Side:
        return SIDES[self._t[2]]

    @property
    def quantity(self) -> Decimal:
        return self._t[3]

    @property
    def limit_price(self) -> Decimal:
        return self._t[4]

    @property
    def strategy(self) -> str:
        return self._t[5]

    @property
    def time_in_force(self) -> TimeInForce:
        return TIMES_IN_FORCE[self._t[6]]

    @property
    def filled_quantity(self) -> Decimal:
        return self._t[9]

    @property
    def leaves_quantity(self) -> Decimal:
        """Quantity still working at the broker: 0 once the order is terminal."""
        if self._t[7] in TERMINAL_STATES:
            return ZERO
        return self._t[3] - self._t[9]

    @property
    def average_fill_price(self) -> Decimal | None:
        """Volume-weighted average price of the executions; None before the first."""
        if not self._t[12]:
            return None
        return self.filled_notional / self._t[9]

    @property
    def filled_notional(self) -> Decimal:
        """The exact sum of quantity times price over the executions."""
        ex = self._t[12]
        return sum(map(mul, ex[1::EXECUTION_WIDTH], ex[2::EXECUTION_WIDTH]), ZERO)

    @property
    def inferred_notional(self) -> Decimal:
        """Quantity times price over the fills inferred from cumulative increases."""
        ex = self._t[12]
        columns = zip(
            ex[::EXECUTION_WIDTH], ex[1::EXECUTION_WIDTH], ex[2::EXECUTION_WIDTH], strict=True
        )
        return sum((q * p for i, q, p in columns if i.startswith(INFERRED_PREFIX)), ZERO)

    @property
    def executions(self) -> tuple[Execution, ...]:
        ex = self._t[12]
        return tuple(
            map(trusted_execution, *(ex[k::EXECUTION_WIDTH] for k in range(EXECUTION_WIDTH)))
        )

    @property
    def cancel_requested(self) -> bool:
        return self._t[10]

    @property
    def is_terminal(self) -> bool:
        return self._t[7] in TERMINAL_STATES

    @property
    def history(self) -> tuple[LifecycleEvent, ...]:
        return _history(self._t[13])

    @property
    def first_event_at(self) -> datetime | None:
        """When the order's first event happened; None before any."""
        return self._t[13][3] if self._t[13] else None

    @property
    def last_event_at(self) -> datetime | None:
        """When the order's latest event happened; None before any."""
        return self._t[13][3 - EVENT_WIDTH] if self._t[13] else None

    @property
    def event_count(self) -> int:
        """How many events the history holds (cheaper than len(order.history))."""
        return len(self._t[13]) // EVENT_WIDTH

    def events_since(self, start: int) -> tuple[LifecycleEvent, ...]:
        """The history from position `start` on."""
        history = self._t[13]
        count = len(history) // EVENT_WIDTH
        return _history(history, start if start >= 0 else max(count + start, 0))

    @property
    def reason(self) -> str | None:
        """The last reject or cancel reason, or None."""
        return self._t[11]

    def has_execution(self, execution_id: str) -> bool:
        return execution_id in self._t[12][::EXECUTION_WIDTH]

    def lists_one_more(self, listed: Sequence[Execution]) -> bool:
        """Whether `listed` is this order's booked executions, in order, then exactly one not
        booked, with no fill inferred: a broker's report after one more fill, which a caller
        can book without building the ledger."""
        booked = self._t[12][::EXECUTION_WIDTH]
        count = len(booked)
        if len(listed) != count + 1:
            return False
        new_id = listed[count].execution_id
        for booked_id, execution in zip(booked, listed, strict=False):
            if (
                booked_id != execution.execution_id
                or booked_id == new_id
                or booked_id.startswith(INFERRED_PREFIX)
            ):
                return False
        return True

    def execution_ledger(self) -> ExecutionLedger:
        """The booked execution ids and the quantity booked by inference, in one pass: what
        a caller bringing the order up to a broker's report needs to book nothing twice."""
        ex = self._t[12]
        ids = ex[::EXECUTION_WIDTH]
        inferred = ZERO
        for execution_id, quantity in zip(ids, ex[1::EXECUTION_WIDTH], strict=True):
            if execution_id.startswith(INFERRED_PREFIX):
                inferred += quantity
        return ExecutionLedger(frozenset(ids), inferred)

    def __repr__(self) -> str:
        return (
            f"Order({self.client_order_id} {self._t[2]} {self._t[3]} {self._t[1]} "
            f"@ {self._t[4]}: {self._t[7]}, filled {self._t[9]})"
        )
