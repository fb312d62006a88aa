"""The simulated broker's order books: each order's latest views, and the indexes the broker
looks orders up by (id, client id, working, least recently updated), with the eviction that
keeps a months-long simulation holding its working orders and not its whole history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from orders.gateways._paper_clock import session_close_after
from orders.model import (
    CANCELLED,
    TERMINAL_STATES,
    BrokerOrder,
    Execution,
    OrderState,
    Side,
    trusted_broker_order,
)

if TYPE_CHECKING:
    from orders.lifecycle import Order

__all__ = ["CANCELLED", "ZERO", "Book", "Books", "view"]

ZERO: Final = Decimal(0)

# Views of an order kept: the current one, and the one before it for STALE_SNAPSHOTS.
_KEPT_VIEWS: Final = 2
# Books evicted, beyond the books held, before the indexes are copied to give back their room.
_COMPACT_SLACK: Final = 64

# Compared with on every fill, read once (as the states in orders.model, for the same reason).
_BUY: Final = Side.BUY

_RAW_STATE: Final = {
    OrderState.SUBMITTED: "confirmed",
    OrderState.PARTIALLY_FILLED: "partially_filled",
    OrderState.FILLED: "filled",
    OrderState.CANCELLED: "cancelled",
    OrderState.REJECTED: "rejected",
}


def view(
    order: BrokerOrder | Order,
    broker_order_id: str,
    state: OrderState,
    raw_state: str,
    updated_at: datetime,
    *,
    cumulative: Decimal = ZERO,
    average: Decimal | None = None,
    executions: tuple[Execution, ...] = (),
    reject_reason: str | None = None,
    cancel_reason: str | None = None,
) -> BrokerOrder:
    """A view of `order` at the broker: what never changes (ids, symbol, side, quantity,
    limit) read from the order or its previous view, the rest given.

    Every field comes from a validated order or snapshot or from the broker's own exact
    arithmetic, so the converters are skipped: this runs for every fill of every order.
    """
    return trusted_broker_order(
        broker_order_id=broker_order_id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        limit_price=order.limit_price,
        state=state,
        raw_state=raw_state,
        cumulative_quantity=cumulative,
        average_price=average,
        executions=executions,
        reject_reason=reject_reason,
        updated_at=updated_at,
        cancel_reason=cancel_reason,
    )


class Book:
    """One order at the broker: its latest views (oldest first), and the faults waiting on it.

    What never changes over an order's views (symbol, side, limit) is read once, and the
    current view and the exact notional of its executions are kept as attributes: the
    matching engine reads them for every order on every call.
    """

    __slots__ = (
        "buys",
        "current",
        "delivered",
        "expires_at",
        "gfd",
        "history",
        "key",
        "late_fill",
        "limit",
        "notional",
        "placed_at",
        "reject_later",
        "symbol",
    )

    def __init__(
        self,
        history: list[BrokerOrder],
        late_fill: Decimal = ZERO,  # owed to a cancelled order by LATE_FILL_AFTER_CANCEL
        reject_later: str | None = None,  # the reason REJECT_AFTER_ACCEPT will give
        *,
        gfd: bool = False,
        placed_at: datetime | None = None,
    ) -> None:
        first = history[0]
        # The paper broker takes limit orders of known symbols only.
        assert first.limit_price is not None and first.symbol is not None
        self.history = history
        self.key: str = first.broker_order_id  # the same in every view
        # Whether the current view has been handed to a caller (listed, fetched, found): a
        # finished order is forgotten only once whoever tracks it can have seen it finish.
        self.delivered = False
        self.late_fill = late_fill
        self.reject_later = reject_later
        self.gfd = gfd
        self.placed_at = placed_at
        self.expires_at: datetime | None = None  # the close that ends a gfd order, once asked
        self.symbol: str = first.symbol
        self.buys: bool = first.side is _BUY
        self.limit: Decimal = first.limit_price
        current = history[-1]
        self.current: BrokerOrder = current  # always `history[-1]`: `advance` moves both
        self.notional: Decimal = sum((e.quantity * e.price for e in current.executions), ZERO)

    @property
    def leaves(self) -> Decimal:
        snap = self.current
        if snap.state in TERMINAL_STATES:
            return ZERO
        return snap.quantity - snap.cumulative_quantity

    def close(self) -> datetime | None:
        """When a gfd order ends (the first close after it was placed); None for gtc."""
        if not self.gfd or self.placed_at is None:
            return None
        if self.expires_at is None:
            self.expires_at = session_close_after(self.placed_at)
        return self.expires_at

    def advance(
        self,
        state: OrderState,
        now: datetime,
        *,
        reject_reason: str | None = None,
        execution: Execution | None = None,
        cancel_reason: str | None = None,
    ) -> None:
        """Append the next view; it becomes the current one, not yet delivered."""
        snap = self.current
        if cancel_reason is None and state is CANCELLED:
            cancel_reason = snap.cancel_reason  # a late fill keeps the cancel's cause
        executions = snap.executions
        cumulative = snap.cumulative_quantity
        average = snap.average_price
        if execution is not None:
            executions = (*executions, execution)
            cumulative += execution.quantity
            self.notional += execution.quantity * execution.price
            average = self.notional / cumulative
        self.delivered = False
        self.current = view(
            snap,
            snap.broker_order_id,
            state,
            _RAW_STATE[state],
            now,
            cumulative=cumulative,
            average=average,
            executions=executions,
            reject_reason=reject_reason,
            cancel_reason=cancel_reason,
        )
        self.history.append(self.current)
        if len(self.history) > _KEPT_VIEWS:
            del self.history[0]  # only the current view and the one before are ever shown

    def evictable(self) -> bool:
        """Finished, its final view delivered, and nothing (a late fill) still owed."""
        return self.delivered and self.current.state in TERMINAL_STATES and not self.late_fill


def _updated_at(book: Book) -> datetime:
    return book.current.updated_at or datetime.min.replace(tzinfo=UTC)


class Books:
    """Every order the broker holds, indexed four ways; each index keeps its insertion order."""

    __slots__ = (
        "active",
        "by_client",
        "by_id",
        "by_update",
        "changed",
        "dropped",
        "gone",
        "retention",
        "tracking",
    )

    def __init__(self, retention: timedelta) -> None:
        self.by_id: dict[str, Book] = {}  # in submission order
        self.by_client: dict[str, Book] = {}
        self.active: dict[str, Book] = {}  # the books match() must look at, in submission order
        self.by_update: dict[str, Book] = {}  # least recently updated first
        self.retention = retention
        self.dropped = 0  # books evicted since the indexes were last compacted
        # What changed since `take_changes`, noted only once `track_changes` was called (a
        # broker kept in a state file): the keys of the books changed, and of those evicted.
        self.tracking = False
        self.changed: dict[str, None] = {}
        self.gone: list[str] = []

    def add(self, book: Book, *, active: bool = True) -> None:
        key = book.key
        self.by_id[key] = book
        cid = book.current.client_order_id
        if cid is not None:
            self.by_client[cid] = book
        if active:
            self.active[key] = book
        self.by_update[key] = book
        self.touch(book)

    def touch(self, book: Book) -> None:
        """`book` changed: a new view (`moved` says so), a late fill owed or a reject to come
        set or cleared. Every change to a book is followed by this, `moved` or `deactivate`,
        or a restarted broker would not have it."""
        if self.tracking:
            self.changed[book.key] = None

    def deactivate(self, book: Book) -> None:
        """`match()` need not look at `book` any more."""
        self.active.pop(book.key, None)
        self.touch(book)

    def track_changes(self) -> None:
        """From now on, note what changes, for `take_changes`."""
        self.tracking = True
        self.take_changes()

    def take_changes(self) -> tuple[list[tuple[Book, bool]], list[str]]:
        """The books changed since the last call, each with whether it is active, and the
        keys of those evicted since; then start again."""
        active = self.active
        by_id = self.by_id
        books = [(by_id[key], key in active) for key in self.changed if key in by_id]
        gone = self.gone
        self.changed, self.gone = {}, []
        return books, gone

    def reorder(self) -> None:
        """Put `by_update` in update order again, after books were added out of it (a load)."""
        by_time = sorted(self.by_id.values(), key=_updated_at)
        self.by_update = {b.key: b for b in by_time}

    def moved(self, book: Book) -> None:
        """`book` has a new view: it becomes the most recently updated."""
        key = book.key
        by_update = self.by_update
        by_update.pop(key, None)
        by_update[key] = book
        if self.tracking:
            self.changed[key] = None  # `touch`, inlined: this runs for every fill

    def recent(self, when: datetime) -> list[Book]:
        """Every book updated at or after `when`, least recently updated first."""
        recent: list[Book] = []
        # Broker time never runs backwards, so the scan can stop at the first older book.
        for book in reversed(self.by_update.values()):
            updated_at = book.current.updated_at
            if updated_at is None or updated_at < when:
                break
            recent.append(book)
        recent.reverse()
        return recent

    def evict(self, now: datetime) -> None:
        """Drop finished books last updated more than the retention ago, once their final view
        was delivered.

        `by_update` is ordered by last update, so the scan stops at the first recent book;
        the only books it passes over are old working ones, of which a bot has few.
        """
        gone = self._expired(now - self.retention)
        for key in gone:
            book = self.by_update.pop(key)
            del self.by_id[key]
            cid = book.current.client_order_id
            if cid is not None and self.by_client.get(cid) is book:
                del self.by_client[cid]
        self.dropped += len(gone)
        if self.tracking:
            self.gone += gone
        if self.dropped > _COMPACT_SLACK + len(self.by_id):
            self._compact()

    def _expired(self, horizon: datetime) -> list[str]:
        gone = []
        active = self.active
        for key, book in self.by_update.items():
            updated_at = book.current.updated_at
            if updated_at is not None and updated_at > horizon:
                break
            if book.evictable() and key not in active:
                gone.append(key)
        return gone

    def _compact(self) -> None:
        # A dict keeps the room of what it once held, and walks it: copied, it does not.
        self.by_id = dict(self.by_id)
        self.by_client = dict(self.by_client)
        self.by_update = dict(self.by_update)
        self.active = dict(self.active)
        self.dropped = 0
