"""The simulated broker's order books: each order's latest views, and the indexes the broker
looks orders up by (id, client id, working, least recently updated), with the eviction that
keeps a months-long simulation holding its working orders and not its whole history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from orders.gateways._paper_clock import session_close_after
from orders.model import (
    CANCELLED,
    FILLED,
    PARTIALLY_FILLED,
    SUBMITTED,
    TERMINAL_STATES,
    BrokerOrder,
    Execution,
    OrderState,
    Side,
    trusted_broker_order,
)

__all__ = ["CANCELLED", "ZERO", "Book", "Books", "opened"]

ZERO: Final = Decimal(0)

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


def opened(  # noqa: PLR0917 - called once an order, where keywords cost time
    broker_order_id: str,
    client_order_id: str,
    symbol: str,
    side: Side,
    quantity: Decimal,
    limit: Decimal,
    created_at: datetime,
    confirmed_at: datetime,
    gfd: bool,
) -> Book:
    """The book of a new order: Robinhood's create response (`unconfirmed`), then the
    confirmation, which differs from it in its raw state and time only.

    Every field comes from a validated order or from the broker itself, so the converters are
    skipped: this runs for every order.
    """
    created = trusted_broker_order(
        broker_order_id,
        client_order_id,
        symbol,
        side,
        quantity,
        limit,
        SUBMITTED,
        "unconfirmed",  # raw_state
        ZERO,  # cumulative_quantity
        None,  # average_price
        (),  # executions
        None,  # reject_reason
        created_at,  # updated_at
        None,  # cancel_reason
    )
    book = Book(created, None, ZERO, None, gfd, created_at)
    book._advance(created, SUBMITTED, ZERO, None, (), None, confirmed_at, None)
    return book


class Book:
    """One order at the broker: its two latest views, and the faults waiting on it.

    Only the current view and the one before it (which STALE_SNAPSHOTS shows) are ever shown,
    so only they are kept, each in an attribute rather than in a list: one object less for
    the garbage collector to walk for every order held, and a new view costs two stores.
    What never changes over an order's views (symbol, side, limit) is read once, and the
    exact notional of its executions is kept running: the matching engine reads them for
    every order on every call.
    """

    __slots__ = (
        "buys",
        "current",
        "delivered",
        "expires_at",
        "gfd",
        "key",
        "late_fill",
        "limit",
        "notional",
        "placed_at",
        "previous",
        "reject_later",
        "symbol",
    )

    def __init__(  # noqa: PLR0917 - made for every order, where keywords cost time
        self,
        current: BrokerOrder,
        previous: BrokerOrder | None,  # the view before it, if any (STALE_SNAPSHOTS shows it)
        late_fill: Decimal,  # owed to a cancelled order by LATE_FILL_AFTER_CANCEL
        reject_later: str | None,  # the reason REJECT_AFTER_ACCEPT will give
        gfd: bool,
        placed_at: datetime | None,
        /,  # positional: a keyword costs time, and a new book is made for every order
    ) -> None:
        # The two views, not a list of them: a new book has one view, and no list to make.
        # The paper broker takes limit orders of known symbols only.
        assert current.limit_price is not None and current.symbol is not None
        self.key: str = current.broker_order_id  # the same in every view
        # Whether the current view has been handed to a caller (listed, fetched, found): a
        # finished order is forgotten only once whoever tracks it can have seen it finish.
        self.delivered = False
        self.late_fill = late_fill
        self.reject_later = reject_later
        self.gfd = gfd
        self.placed_at = placed_at
        self.expires_at: datetime | None = None  # the close that ends a gfd order, once asked
        self.symbol: str = current.symbol
        self.buys: bool = current.side is _BUY
        self.limit: Decimal = current.limit_price
        self.current: BrokerOrder = current
        self.previous: BrokerOrder | None = previous
        notional = ZERO  # a loop, not sum(): a new order has no execution to make a generator for
        for execution in current.executions:
            notional += execution.quantity * execution.price
        self.notional: Decimal = notional

    @property
    def history(self) -> list[BrokerOrder]:
        """The views kept, oldest first (as the state file lists them)."""
        previous = self.previous
        return [self.current] if previous is None else [previous, self.current]

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
        cancel_reason: str | None = None,
    ) -> None:
        """Append the next view, without an execution (a cancel, a reject); it becomes the
        current one, not yet delivered."""
        snap = self.current
        if cancel_reason is None and state is CANCELLED:
            cancel_reason = snap.cancel_reason  # a late fill keeps the cancel's cause
        self._advance(
            snap,
            state,
            snap.cumulative_quantity,
            snap.average_price,
            snap.executions,
            reject_reason,
            now,
            cancel_reason,
        )

    def execute(self, execution: Execution, value: Decimal) -> bool:
        """Append the view of one more execution, at its time; True when it fills the order.

        `value` is the execution's quantity times its price: the caller settles the cash of
        the same product, so it is computed once (a Decimal product costs 550 instructions).
        A cancelled order stays cancelled, and keeps the cancel's cause (a late fill).
        """
        snap = self.current
        state = snap.state
        cumulative = snap.cumulative_quantity + execution.quantity
        done = False
        cancel_reason = None
        if state is CANCELLED:
            cancel_reason = snap.cancel_reason
        else:
            done = cumulative == snap.quantity
            state = FILLED if done else PARTIALLY_FILLED
        notional = self.notional + value
        self.notional = notional
        self._advance(
            snap,
            state,
            cumulative,
            notional / cumulative,
            snap.executions + (execution,),  # noqa: RUF005 - (*a, b) builds a list: +300 instructions
            None,
            execution.timestamp,
            cancel_reason,
        )
        return done

    def _advance(  # noqa: PLR0917 - the fields a new view changes, by position
        self,
        snap: BrokerOrder,
        state: OrderState,
        cumulative: Decimal,
        average: Decimal | None,
        executions: tuple[Execution, ...],
        reject_reason: str | None,
        updated_at: datetime | None,
        cancel_reason: str | None,
    ) -> None:
        """Make the view after `snap` the current one, not yet delivered: what never changes
        over an order's views (ids, symbol, side, quantity, limit) copied from `snap`."""
        self.current = trusted_broker_order(
            snap.broker_order_id,
            snap.client_order_id,
            snap.symbol,
            snap.side,
            snap.quantity,
            snap.limit_price,
            state,
            _RAW_STATE[state],
            cumulative,
            average,
            executions,
            reject_reason,
            updated_at,
            cancel_reason,
        )
        self.previous = snap
        self.delivered = False

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
        if self.tracking:
            self.changed[key] = None  # `touch`, inlined: this runs for every order

    def touch(self, book: Book) -> None:
        """`book` changed: a new view (`moved` says so), a late fill owed or a reject to come
        set or cleared. Every change to a book is followed by this, `moved` or `deactivate`,
        or a restarted broker would not have it."""
        if self.tracking:
            self.changed[book.key] = None

    def deactivate(self, book: Book) -> None:
        """`match()` need not look at `book` any more."""
        key = book.key
        self.active.pop(key, None)
        if self.tracking:
            self.changed[key] = None  # `touch`, inlined: this runs for every order

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
