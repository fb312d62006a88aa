"""The orders a manager holds in memory, and how finished ones leave it.

A manager's memory, and the cost of every sync, must follow what is working, not what ever
traded: finished orders are kept for `retention_seconds` (a caller may still look at them, a
late fill may still land) and then forgotten. The journal still has them.

Not thread-safe by itself: the manager calls it under its own lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from orders.audit import LATE_FILL_WINDOW, owed_late_fill
from orders.lifecycle import Order
from orders.model import BrokerOrder

__all__ = ["OrderRegistry"]

# A dict keeps the room of what it once held, and walks it: copied once this many entries
# (beyond its size) were removed, it does not.
_COMPACT_AFTER: Final = 64


class OrderRegistry:
    """Every order in memory by client order id, the working ones apart, and an index of the
    broker's order ids; finished orders by finish time, oldest first, for eviction."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        # The working orders, so that a sync costs what is working, not what ever traded.
        self.working: dict[str, Order] = {}
        self._finished: deque[tuple[datetime, str]] = deque()
        self._by_broker_id: dict[str, str] = {}
        self._dropped = 0  # orders evicted since `orders` was last compacted
        self._working_dropped = 0  # orders finished since `working` was last compacted

    def add(self, order: Order) -> None:
        """Track a new (working) order."""
        self.orders[order.client_order_id] = order
        self.working[order.client_order_id] = order

    def track_broker_id(self, order: Order, broker_order_id: str) -> None:
        self._by_broker_id[broker_order_id] = order.client_order_id

    def order_for(self, snapshot: BrokerOrder) -> Order | None:
        """The tracked order a broker snapshot is about, by client id, else by broker id."""
        cid = snapshot.client_order_id
        if cid is None:
            cid = self._by_broker_id.get(snapshot.broker_order_id)
        return None if cid is None else self.orders.get(cid)

    def finish(self, client_order_id: str, at: datetime) -> None:
        """The order reached a terminal state at `at`: it leaves the working set, and memory
        once retained long enough (see `evict`)."""
        if self.working.pop(client_order_id, None) is None:
            return
        self._finished.append((at, client_order_id))
        self._working_dropped += 1
        if self._working_dropped > _COMPACT_AFTER + len(self.working):
            self.working = dict(self.working)
            self._working_dropped = 0

    def rejoin(self, rebuilt: Iterable[Order]) -> list[Order]:
        """Take in orders rebuilt from the journal; return the tracked ones.

        An order already tracked stays the same object (callers hold it) and is returned in
        place of its rebuilt copy. Finished ones are queued for eviction by finish time.
        """
        tracked: list[Order] = []
        finished: list[tuple[datetime, str]] = []
        for rebuilt_order in rebuilt:
            cid = rebuilt_order.client_order_id
            order = self.orders.setdefault(cid, rebuilt_order)
            tracked.append(order)
            if order.broker_order_id is not None:
                self.track_broker_id(order, order.broker_order_id)
            if not order.is_terminal:
                self.working[cid] = order
                continue
            finished_at = order.last_event_at
            if cid not in self.working and finished_at is not None:
                finished.append((finished_at, cid))
            self.working.pop(cid, None)
        self._finished.extend(sorted(finished))  # eviction reads them oldest first
        return tracked

    def evict(self, now: datetime, retention: timedelta) -> None:
        """Forget finished orders older than `retention`, except one that a fill which raced
        its cancel may still reach: it is kept until it cannot."""
        horizon = now - retention
        late_fill_horizon = now - LATE_FILL_WINDOW
        finished = self._finished
        while finished and finished[0][0] <= horizon:
            order = self.orders.get(finished[0][1])
            if order is not None and order.is_terminal:
                if _may_still_fill(order, late_fill_horizon):
                    break
                self._forget(order)
            finished.popleft()
        if self._dropped > _COMPACT_AFTER + len(self.orders):
            self.orders = dict(self.orders)
            self._by_broker_id = dict(self._by_broker_id)
            self._dropped = 0

    def _forget(self, order: Order) -> None:
        cid = order.client_order_id
        del self.orders[cid]
        broker_id = order.broker_order_id
        if broker_id is not None and self._by_broker_id.get(broker_id) == cid:
            del self._by_broker_id[broker_id]
        self._dropped += 1


def _may_still_fill(order: Order, late_fill_horizon: datetime) -> bool:
    """A cancelled order with quantity left, cancelled after `late_fill_horizon`."""
    if not owed_late_fill(order):
        return False
    last = order.last_event_at
    return last is not None and last > late_fill_horizon
