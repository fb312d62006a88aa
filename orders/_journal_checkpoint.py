"""What a checkpoint holds: the orders a restart must rebuild, kept current as records are
written, so that writing a checkpoint reads nothing.

Why a checkpoint holds recently cancelled orders too: a broker may report a fill that raced a
cancel some time after it (a late fill: the order books an execution and stays cancelled).
After a restart the manager lists the broker's orders from the cancel of every order cancelled
with quantity left within `LATE_FILL_WINDOW` before the journal's last event, and books such a
fill only onto an order it rebuilt. So besides the working orders a checkpoint holds every
order cancelled with quantity left whose last event is within `LATE_FILL_WINDOW` of the
checkpoint's time: a late fill after the checkpoint then replays onto it. Filled and rejected
orders, and cancelled ones with nothing left or older than the window, are final.

The journal keeps the working orders it has seen (intents and events) with the number of their
events it has written, and likewise the orders cancelled with quantity left within the window
(dropped once older); after a restart it learns them from the orders recovery rebuilt, or,
failing that, reads them once at its first rotation.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any, Final

from orders._journal_format import CHECKPOINT, base_record, execution_fields, utc
from orders.lifecycle import Order
from orders.model import CANCELLED, TERMINAL_STATES, LifecycleEvent

__all__ = ["LATE_FILL_WINDOW", "CheckpointBook", "owed_late_fill"]

# How long after its cancel a broker may still report a fill that raced it (a late fill). A
# checkpoint holds every order cancelled with quantity left whose last event is this recent, so
# that a restart rebuilds it and books such a fill; the manager's restart sync lists the
# broker's orders over the same window.
LATE_FILL_WINDOW: Final = timedelta(hours=1)


def owed_late_fill(order: Order) -> bool:
    """Whether `order` is cancelled with quantity left, so a late fill may still reach it."""
    return order.state == CANCELLED and order.filled_quantity < order.quantity


class CheckpointBook:
    """The orders the next checkpoint holds, each with how many of its events are written."""

    def __init__(self) -> None:
        # The working orders by client order id. None until known (a journal opened on
        # existing records learns them from the orders recovery rebuilt, or its first rotation).
        self.working: dict[str, tuple[Order, int]] | None = None
        # The orders cancelled with quantity left whose last event is within LATE_FILL_WINDOW,
        # with the time of that event, oldest first. Known exactly when `working` is.
        self.cancelled: OrderedDict[str, tuple[Order, int, datetime]] = OrderedDict()

    @property
    def known(self) -> bool:
        return self.working is not None

    def start_empty(self) -> None:
        """Nothing is written yet, so no order is working or cancelled."""
        if self.working is None:
            self.working = {}
            self.cancelled = OrderedDict()

    def learn(self, orders: dict[str, Order]) -> None:
        """Take the working and cancelled orders to keep from orders rebuilt from the files."""
        self.working = {cid: (o, o.event_count) for cid, o in orders.items() if not o.is_terminal}
        owed = [
            (at, cid, o)
            for cid, o in orders.items()
            if owed_late_fill(o) and (at := o.last_event_at) is not None
        ]
        owed.sort(key=lambda entry: entry[0])
        self.cancelled = OrderedDict((cid, (o, o.event_count, at)) for at, cid, o in owed)

    def track(self, order: Order, record: dict[str, Any]) -> None:
        """Keep the books current after `record` (of `order`) was written or kept to write."""
        working = self.working
        if working is None:
            return
        cid = record["client_order_id"]
        if record["event"] == "intent":
            working[cid] = (order, 0)
        elif record["dest"] not in TERMINAL_STATES:
            known = working.get(cid)
            working[cid] = (order, order.event_count if known is None else known[1] + 1)
        else:
            self._finished(order, record, working.pop(cid, None))

    def _finished(
        self, order: Order, record: dict[str, Any], working: tuple[Order, int] | None
    ) -> None:
        """An order's record reached a terminal state: keep it only if a late fill is owed."""
        if record["dest"] != CANCELLED:
            return  # filled or rejected: final
        count = self._count_after(order, record, working)  # drops it from the cancelled too
        if count is None or order.filled_quantity >= order.quantity:
            return  # cancelled before the window, or nothing left to fill: final
        at: datetime = record["ts"]
        cancelled = self.cancelled
        cancelled[order.client_order_id] = (order, count, at)  # the newest last event goes last
        # Orders whose last event is more than the window before this one are no longer owed
        # a late fill: drop them now, so that a long segment does not keep every order it
        # cancelled alive (the checkpoint drops the ones this misses, out of time order).
        while at - next(iter(cancelled.values()))[2] > LATE_FILL_WINDOW:
            cancelled.popitem(last=False)

    def _count_after(
        self, order: Order, record: dict[str, Any], working: tuple[Order, int] | None
    ) -> int | None:
        """The written events of a cancelled order after `record`; None if no checkpoint
        holds it (cancelled longer ago than the window)."""
        if working is not None:
            return working[1] + 1  # the cancel
        before = self.cancelled.pop(order.client_order_id, None)
        if before is not None:
            return before[1] + 1  # a late fill or a correction
        if record["source"] == CANCELLED:
            return None
        return order.event_count  # an order this journal had not met

    def checkpoint(self, at: datetime, after: int) -> list[dict[str, Any]]:
        """The checkpoint records at time `at`, numbered after seq `after`: the working
        orders, then those cancelled with quantity left within the window (older ones are
        dropped here for good)."""
        assert self.working is not None  # learned before
        cancelled = self.cancelled
        for cid in [cid for cid, (_, _, last) in cancelled.items() if at - last > LATE_FILL_WINDOW]:
            del cancelled[cid]
        held = [*self.working.values(), *((order, count) for order, count, _ in cancelled.values())]
        return [
            checkpoint_record(order, count, at, after + i)
            for i, (order, count) in enumerate(held, start=1)
        ]


def checkpoint_record(order: Order, count: int, at: datetime, seq: int) -> dict[str, Any]:
    """One working or recently cancelled order as the journal has written it: its first
    `count` events.

    The live order may be one event ahead (the event whose record opened this segment and is
    written right after the checkpoint); that event is left to its own record.
    """
    if count != order.event_count:
        order = _first_events(order, count)
    record = base_record(order, CHECKPOINT, at)
    record["seq"] = seq
    record.update(
        source=None,
        dest=str(order.state),
        time_in_force=str(order.time_in_force),
        reason=order.reason,
        history=[_history_entry(event) for event in order.history],
    )
    return record


def _first_events(order: Order, count: int) -> Order:
    """A copy of `order` as it was after its first `count` events."""
    copy = Order(
        order.symbol,
        order.side,
        order.quantity,
        order.limit_price,
        strategy=order.strategy,
        client_order_id=order.client_order_id,
        time_in_force=order.time_in_force,
    )
    for event in order.history[:count]:
        copy.restore_raw(event.trigger, str(event.dest), event.at, _raw_detail(event))
    return copy


def _raw_detail(event: LifecycleEvent) -> Any:
    """What `Order.restore_raw` takes for `event` (see its docstring)."""
    if event.trigger == "fill":
        e = event.execution
        assert e is not None  # a fill always books one
        return (e.execution_id, e.quantity, e.price, e.timestamp)
    if event.trigger == "correct_fill":
        return tuple((e.execution_id, e.quantity, e.price, e.timestamp) for e in event.executions)
    if event.trigger == "submit":
        return event.broker_order_id
    return event.reason


def _history_entry(event: LifecycleEvent) -> dict[str, Any]:
    """One history event in the fields its own record has (so replay checks it the same way)."""
    trigger = event.trigger
    entry: dict[str, Any] = {
        "event": trigger,
        "ts": utc(event.at),
        "source": str(event.source),
        "dest": str(event.dest),
    }
    if trigger == "fill":
        assert event.execution is not None
        entry["execution"] = execution_fields(event.execution)
    elif trigger == "correct_fill":
        entry["executions"] = [execution_fields(e) for e in event.executions]
    elif trigger == "submit":
        entry["broker_order_id"] = event.broker_order_id
    else:
        entry["reason"] = event.reason
    return entry
