"""`PaperBroker`: an in-memory broker that behaves like Robinhood, and misbehaves on request.

It is the default gateway, so the bot can run without an account, and it is the fake that the
service's tests drive: a real `OrderGateway` and `AccountSource`, not a mock, so whatever works
against it has gone through the same protocol as the live gateway.

Behaviour, chosen to match Robinhood where it matters to the service:

- Orders rest until `match()`: nothing fills at submission, so every test decides when fills
  happen. `match()` fills the marketable orders in submission order (time priority).
- Fill price: a buy fills at ``min(limit, quote)`` and a sell at ``max(limit, quote)``; a real
  exchange gives the resting order the better price, and a test of slippage needs the difference.
- Liquidity: by default unlimited (every marketable order fills in full). `liquidity=` or
  `set_liquidity()` caps the shares that one `match()` can fill per symbol, which is how partial
  fills happen.
- Buying power: a buy reserves ``limit * quantity`` when submitted (refused with Robinhood's
  "Not enough buying power." when it does not fit), the reservation shrinks as it fills at the
  fill price and is released on cancel or reject. A sell adds its proceeds as it fills. Selling
  shares not held is allowed by default (positions may go negative), so that a cash-only demo can
  sell; `allow_short=False` refuses it like a cash account ("Not enough shares to sell.").
- Time: the UTC wall clock by default, because the service asks `updated_since` with watermarks
  from its own clock; inject `clock=SimulatedClock()` for snapshots that are identical run to
  run. Broker time never runs backwards: a clock reading earlier than the last is raised to it.
- Determinism: ids, execution ids and random fault draws come from RNGs seeded by `seed`, so two
  brokers given the same seed, clock and calls produce identical snapshots.
- Faults are opt-in: one-shot faults armed with `inject()` for tests, and per-call probabilities
  (`fault_rates=`) for the demo. See `Fault` for what each one does.
- `save(path)` / `PaperBroker.load(path)` keep the whole broker in a JSON file (Decimals as
  strings), written atomically, so crash tests can kill the service and keep the broker.
  `PaperBroker.open(path)` is the broker of a paper bot: resumed from that file when it exists,
  saved to it after every change, so stopping and starting the bot loses nothing, as with a
  real broker. A plain `PaperBroker()` never touches a file.
- The end of the day (opt-in, `cancel_gfd_at_close=True`, as a configured paper bot has it):
  a `gfd` order still working at the first 16:00 America/New_York of a weekday after it was
  placed is cancelled at the next `match()` with `cancel_reason` "end_of_day", the word
  Robinhood uses; `gtc` orders stay. Holidays are not modelled.
- Prices: `set_quote` by hand, or a `quote_source` (see `orders.gateways.quotes`) that `match()`
  asks for the symbols of the working orders first.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from orders.errors import BrokerError, InvalidOrderError
from orders.gateways.base import Accepted, Rejected, SubmitOutcome, Unknown
from orders.gateways.quotes import CsvQuotes, QuoteSource, RobinhoodQuotes
from orders.log import get_logger
from orders.model import (
    BUY,
    CANCELLED,
    DEFAULT_RETENTION_SECONDS,
    FILLED,
    PARTIALLY_FILLED,
    REJECTED,
    SUBMITTED,
    TERMINAL_STATES,
    BrokerOrder,
    Execution,
    OrderState,
    TimeInForce,
    coerce_enum,
    ensure_aware,
    positive_decimal,
    to_decimal,
    trusted_broker_order,
    trusted_execution,
    uuid4_text,
    validate_symbol,
)

if TYPE_CHECKING:
    from orders.config import OrderManagementConfig
    from orders.lifecycle import Order

__all__ = ["END_OF_DAY", "Fault", "PaperBroker", "SimulatedClock", "session_close_after"]

_log = get_logger("orders.gateways.paper")

_ZERO: Final = Decimal(0)
# 2: orders keep their time in force and placement time, snapshots their cancel reason, and
# the file names the journal it belongs to.
_FORMAT_VERSION: Final = 2
# Robinhood's `response_category` for an order cancelled at the close.
END_OF_DAY: Final = "end_of_day"
_CLOSE: Final = time(16, 0)
_SATURDAY: Final = 5


class Fault(StrEnum):
    """A misbehaviour the paper broker can be told to show; each hits one kind of call.

    Submission (`submit_limit`); `symbol=` in `inject` matches the order's symbol:

    - ``REJECT``: `Rejected(reason)`; no order exists.
    - ``REJECT_AFTER_ACCEPT``: `Accepted`, then the next `match()` rejects the order (Robinhood
      rejects some orders asynchronously).
    - ``TIMEOUT_BEFORE_ACCEPT``: `Unknown`; the request never arrived, no order exists.
    - ``TIMEOUT_AFTER_ACCEPT``: `Unknown` with the same words, but the order exists
      (`find_by_client_id` finds it); also hits a resubmission of a known client order id.
    - ``THROTTLE``: `Unknown` ("Request was throttled. Expected available in N seconds.");
      no order.
    - ``SERVER_ERROR``: `Unknown` (an HTTP 503); no order.

    Cancellation (`cancel` of a working order):

    - ``LOST_CANCEL``: `cancel()` returns, the order keeps working.
    - ``CANCEL_LOSES_RACE``: the rest of the order fills before the cancel lands (at the quote's
      price when marketable, else the limit); the cancel then fails silently.
    - ``LATE_FILL_AFTER_CANCEL``: the cancel lands, and the next `match()` books an execution for
      the quantity that was left onto the cancelled order (cumulative quantity grows, state
      stays cancelled).

    Delivery (the lists `match()` and `updated_since()` return):

    - ``DUPLICATE_SNAPSHOTS``: every snapshot appears twice in a row.
    - ``STALE_SNAPSHOTS``: every snapshot that has an older version is followed by that older
      version (the previous one in the order's history), i.e. the older view arrives last.
    """

    REJECT = "reject"
    REJECT_AFTER_ACCEPT = "reject_after_accept"
    TIMEOUT_BEFORE_ACCEPT = "timeout_before_accept"
    TIMEOUT_AFTER_ACCEPT = "timeout_after_accept"
    THROTTLE = "throttle"
    SERVER_ERROR = "server_error"
    LOST_CANCEL = "lost_cancel"
    CANCEL_LOSES_RACE = "cancel_loses_race"
    LATE_FILL_AFTER_CANCEL = "late_fill_after_cancel"
    DUPLICATE_SNAPSHOTS = "duplicate_snapshots"
    STALE_SNAPSHOTS = "stale_snapshots"


# The faults each step of a call may draw, as tuples: the order of random draws must not depend
# on string hashing, or a seed would not reproduce a run.
_TRANSPORT: Final = (Fault.TIMEOUT_BEFORE_ACCEPT, Fault.THROTTLE, Fault.SERVER_ERROR)
_CANCEL: Final = (Fault.LOST_CANCEL, Fault.CANCEL_LOSES_RACE, Fault.LATE_FILL_AFTER_CANCEL)

# Both timeouts read the same: a client cannot tell them apart, which is the point.
_MESSAGES: Final = {
    Fault.REJECT: "Order rejected by the paper broker (injected fault).",
    Fault.REJECT_AFTER_ACCEPT: "Order rejected by the paper broker after acceptance "
    "(injected fault).",
    Fault.TIMEOUT_BEFORE_ACCEPT: "Read timed out waiting for the paper broker (injected fault); "
    "the order may exist: look it up by client order id.",
    Fault.TIMEOUT_AFTER_ACCEPT: "Read timed out waiting for the paper broker (injected fault); "
    "the order may exist: look it up by client order id.",
    Fault.THROTTLE: "HTTP 429: Request was throttled. Expected available in 7 seconds. "
    "(injected fault)",
    Fault.SERVER_ERROR: "HTTP 503 Service Unavailable from the paper broker (injected fault).",
}

_RAW_STATE: Final = {
    OrderState.SUBMITTED: "confirmed",
    OrderState.PARTIALLY_FILLED: "partially_filled",
    OrderState.FILLED: "filled",
    OrderState.CANCELLED: "cancelled",
    OrderState.REJECTED: "rejected",
}

Clock = Callable[[], datetime]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


# Views of an order kept: the current one, and the one before it for STALE_SNAPSHOTS.
_KEPT_VIEWS: Final = 2


def session_close_after(when: datetime) -> datetime:
    """The first close (16:00 America/New_York, Monday to Friday) after `when`, in UTC.

    An order placed after the close, or on a weekend, waits for the next session's close, as a
    Robinhood `gfd` order does. Exchange holidays are not known here.
    """
    # Imported on first use: a broker without end-of-day expiry never needs the tz database.
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    new_york = ZoneInfo("America/New_York")
    local = ensure_aware(when, "when").astimezone(new_york)
    day: date = local.date()
    if local.time() >= _CLOSE:
        day += timedelta(days=1)
    while day.weekday() >= _SATURDAY:
        day += timedelta(days=1)
    return datetime.combine(day, _CLOSE, tzinfo=new_york).astimezone(UTC)


class SimulatedClock:
    """A clock that starts at `start` and moves `step` forward on every reading.

    Snapshots carry times, so a broker is only reproducible with a reproducible clock; a
    `PaperBroker` saves a `SimulatedClock`'s position with its own state.
    """

    DEFAULT_START: Final = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)

    def __init__(
        self, start: datetime = DEFAULT_START, step: timedelta = timedelta(seconds=1)
    ) -> None:
        if step <= timedelta(0):
            raise InvalidOrderError("step", step, "must be a positive timedelta")
        self._next = ensure_aware(start, "start").astimezone(UTC)
        self._step = step
        self._lock = threading.Lock()

    @property
    def step(self) -> timedelta:
        return self._step

    def peek(self) -> datetime:
        """The time the next reading will return, without moving the clock."""
        with self._lock:
            return self._next

    def __call__(self) -> datetime:
        with self._lock:
            now = self._next
            self._next = now + self._step
            return now


class _Book:
    """One order at the broker: its latest views (oldest first), and the faults waiting on it.

    What never changes over an order's views (symbol, side, limit) is read once, and the
    exact notional of its executions is kept running: the matching engine reads them for
    every order on every call.
    """

    __slots__ = (
        "buys",
        "delivered",
        "expires_at",
        "gfd",
        "history",
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
        late_fill: Decimal = _ZERO,  # owed to a cancelled order by LATE_FILL_AFTER_CANCEL
        reject_later: str | None = None,  # the reason REJECT_AFTER_ACCEPT will give
        *,
        gfd: bool = False,
        placed_at: datetime | None = None,
    ) -> None:
        first = history[0]
        # The paper broker takes limit orders of known symbols only.
        assert first.limit_price is not None and first.symbol is not None
        self.history = history
        # Whether the current view has been handed to a caller (listed, fetched, found): a
        # finished order is forgotten only once whoever tracks it can have seen it finish.
        self.delivered = False
        self.late_fill = late_fill
        self.reject_later = reject_later
        self.gfd = gfd
        self.placed_at = placed_at
        self.expires_at: datetime | None = None  # the close that ends a gfd order, once asked
        self.symbol: str = first.symbol
        self.buys: bool = first.side is BUY
        self.limit: Decimal = first.limit_price
        current = history[-1]
        self.notional: Decimal = sum((e.quantity * e.price for e in current.executions), _ZERO)

    @property
    def current(self) -> BrokerOrder:
        return self.history[-1]

    @property
    def leaves(self) -> Decimal:
        snap = self.history[-1]
        if snap.state in TERMINAL_STATES:
            return _ZERO
        return snap.quantity - snap.cumulative_quantity

    def close(self) -> datetime | None:
        """When a gfd order ends (the first close after it was placed); None for gtc."""
        if not self.gfd or self.placed_at is None:
            return None
        if self.expires_at is None:
            self.expires_at = session_close_after(self.placed_at)
        return self.expires_at


@attrs.define
class _Armed:
    """A fault waiting for its calls; `remaining` 0 marks a random one-off draw."""

    fault: Fault
    remaining: int
    symbol: str | None = None
    message: str | None = None

    def covers(self, symbol: str | None) -> bool:
        return self.symbol is None or self.symbol == symbol

    @property
    def text(self) -> str:
        return self.message if self.message is not None else _MESSAGES.get(self.fault, "")


class PaperBroker:
    """A simulated broker: an `OrderGateway` and an `AccountSource` in memory.

    Thread-safe: one lock guards every call, since the service's polling thread and the bot
    call it at the same time.
    """

    def __init__(
        self,
        *,
        quotes: Mapping[str, Decimal | int | str] | None = None,
        buying_power: Decimal | int | str = Decimal("100000"),
        seed: int = 0,
        positions: Mapping[str, Decimal | int | str] | None = None,
        liquidity: Decimal | int | str | None = None,
        allow_short: bool = True,
        fault_rates: Mapping[Fault | str, float | Decimal] | None = None,
        clock: Clock | None = None,
        quote_source: QuoteSource | None = None,
        cancel_gfd_at_close: bool = False,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        """`quote_source` prices the market at every `match()`; `cancel_gfd_at_close` expires
        gfd orders at the close (both off by default, so a bare broker stays a cheap fake
        whose market moves only when a test says so). A finished order leaves the books
        `retention_seconds` after its last update, as it leaves a manager's memory: a
        simulation that runs for months holds its working orders, not its history."""
        if not 0 <= retention_seconds < float("inf"):
            raise InvalidOrderError(
                "retention_seconds", retention_seconds, "must be a finite number of seconds >= 0"
            )
        if type(seed) is not int:
            raise InvalidOrderError("seed", seed, "must be an int")
        if clock is not None and not callable(clock):
            raise InvalidOrderError("clock", clock, "must be a callable returning a UTC datetime")
        cash = to_decimal(buying_power, "buying_power")
        if cash < 0:
            raise InvalidOrderError("buying_power", buying_power, "must not be negative")
        self._lock = threading.Lock()
        self._seed = seed
        self._ids = random.Random(seed)  # noqa: S311 (simulation ids, not secrets)
        # Faults draw from their own stream so that turning them on does not change the ids.
        self._draws = random.Random(f"faults:{seed}")  # noqa: S311 (simulated faults)
        self._clock: Clock = _wall_clock if clock is None else clock
        self._last_time: datetime | None = None
        self._cash = cash
        self._positions: dict[str, Decimal] = {
            validate_symbol(s): to_decimal(q, f"positions[{s!r}]")
            for s, q in (positions or {}).items()
        }
        self._quotes: dict[str, Decimal] = {
            validate_symbol(s): positive_decimal(p, f"quotes[{s!r}]")
            for s, p in (quotes or {}).items()
        }
        self._symbol_liquidity: dict[str, Decimal | None] = {}
        self._liquidity: Decimal | None = None
        self._allow_short = True
        self._rates: dict[Fault, float] = {}
        self._settle_settings(liquidity, allow_short, fault_rates)
        if quote_source is not None and not isinstance(quote_source, QuoteSource):
            raise InvalidOrderError("quote_source", quote_source, "must have a prices() method")
        self._quote_source = quote_source
        self._cancel_gfd_at_close = bool(cancel_gfd_at_close)
        # Persistence, set by `open`: the file, the journal it belongs to, whether it was read.
        self._state_path: Path | None = None
        self._journal: str | None = None
        self._resumed = False
        self._problems: list[str] = []
        self._armed: list[_Armed] = []
        self._books: dict[str, _Book] = {}  # by broker order id, in submission order
        self._by_client: dict[str, _Book] = {}
        self._active: dict[str, _Book] = {}  # books match() must look at, in submission order
        self._by_update: dict[str, _Book] = {}  # every book, least recently updated first
        self._retention = timedelta(seconds=retention_seconds)
        self._dropped = 0  # books evicted since the dicts were last compacted

    def _settle_settings(
        self,
        liquidity: Decimal | int | str | None,
        allow_short: bool,
        fault_rates: Mapping[Fault | str, float | Decimal] | None,
    ) -> None:
        self._liquidity = None if liquidity is None else positive_decimal(liquidity, "liquidity")
        self._allow_short = bool(allow_short)
        rates: dict[Fault, float] = {}
        for kind, rate in (fault_rates or {}).items():
            fault = coerce_enum(Fault, kind, "fault_rates")
            if (
                isinstance(rate, bool)
                or not isinstance(rate, int | float | Decimal)
                or not 0 <= rate <= 1
            ):
                raise InvalidOrderError(f"fault_rates[{fault.value!r}]", rate, "must be 0 to 1")
            if rate > 0:
                rates[fault] = float(rate)  # a probability for the draws, not an amount
        self._rates = rates

    # -- settings a configuration also names ---------------------------------------------------

    @property
    def state_path(self) -> Path | None:
        """The file this broker saves itself to after every change (`open`), or None."""
        return self._state_path

    @property
    def resumed(self) -> bool:
        """Whether `open` found the broker's state file and carried on from it."""
        return self._resumed

    @property
    def quote_source(self) -> QuoteSource | None:
        return self._quote_source

    def config_disagreements(
        self, config: OrderManagementConfig
    ) -> Iterator[tuple[str, object, object]]:
        """The `paper` settings where this broker differs from `config`.

        Only settings the configuration moves away from their defaults count (as with a
        journal's path): a broker built by hand for a test, with its own liquidity, stays
        usable under a default configuration, but one that would silently ignore a
        configured CSV file, state file or fault rate is refused.
        """
        from orders.config import PaperConfig  # noqa: PLC0415 (config imports this module)

        paper, default = config.paper, PaperConfig()
        if paper.liquidity is not None and paper.liquidity != self._liquidity:
            yield "paper.liquidity", paper.liquidity, self._liquidity
        if paper.allow_short not in (default.allow_short, self._allow_short):
            yield "paper.allow_short", paper.allow_short, self._allow_short
        wanted = {Fault(name): float(rate) for name, rate in paper.fault_rates.items() if rate}
        if paper.fault_rates and wanted != self._rates:
            rates = {fault.value: rate for fault, rate in self._rates.items()}
            yield "paper.fault_rates", dict(paper.fault_rates), rates
        if paper.state_path != default.state_path:
            named = config.paper_state_path
            if self._state_path is None or not _same_file(named, self._state_path):
                yield "paper.state_path", named, self._state_path
        retention = config.retention_seconds
        if retention != DEFAULT_RETENTION_SECONDS and self._retention.total_seconds() != retention:
            yield "retention_seconds", retention, self._retention.total_seconds()
        source = self._quote_source
        quote_file = paper.quote_file
        if quote_file is not None and not (
            isinstance(source, CsvQuotes) and _same_file(source.path, quote_file)
        ):
            yield "paper.quotes", paper.quotes, source
        if paper.quotes == "robinhood" and not isinstance(source, RobinhoodQuotes):
            yield "paper.quotes", paper.quotes, source

    def drain_problems(self) -> list[str]:
        """What went wrong outside any call's answer since the last call (a state file that
        could not be written, prices that could not be read); the manager reports them."""
        if not self._problems:
            return []
        with self._lock:
            problems, self._problems = self._problems, []
            return problems

    # -- market and faults ---------------------------------------------------------------------

    def set_quote(self, symbol: str, price: Decimal | int | str | None) -> None:
        """Set the price `match()` compares limits with; None removes the quote."""
        symbol = validate_symbol(symbol)
        value = None if price is None else positive_decimal(price, "price")
        with self._lock:
            if value is None:
                self._quotes.pop(symbol, None)
            else:
                self._quotes[symbol] = value
            self._changed()

    def set_liquidity(self, symbol: str, shares: Decimal | int | str | None) -> None:
        """Cap the shares one `match()` fills for `symbol`; None lifts the cap for it."""
        symbol = validate_symbol(symbol)
        value = None if shares is None else positive_decimal(shares, "shares")
        with self._lock:
            self._symbol_liquidity[symbol] = value
            self._changed()

    def inject(
        self,
        fault: Fault | str,
        *,
        times: int = 1,
        symbol: str | None = None,
        message: str | None = None,
    ) -> None:
        """Arm `fault` for the next `times` calls it can hit (only orders of `symbol`, if given).

        Armed faults fire in the order they were injected; `message` replaces the default
        reject reason or error text.
        """
        kind = coerce_enum(Fault, fault, "fault")
        if type(times) is not int or times < 1:
            raise InvalidOrderError("times", times, "must be a positive int")
        target = None if symbol is None else validate_symbol(symbol)
        with self._lock:
            self._armed.append(_Armed(kind, times, target, message))
            self._changed()

    def clear_faults(self) -> None:
        """Disarm every injected fault that has not fired yet (random rates stay)."""
        with self._lock:
            self._armed.clear()
            self._changed()

    @property
    def armed_faults(self) -> tuple[tuple[Fault, int], ...]:
        """Each armed fault and how many more calls it will hit: lets a test check it fired."""
        with self._lock:
            return tuple((a.fault, a.remaining) for a in self._armed)

    # -- OrderGateway --------------------------------------------------------------------------

    def submit_limit(self, order: Order) -> SubmitOutcome:
        """Accept `order` as a resting limit order; a known client order id returns that order."""
        with self._lock:
            outcome = self._submit(order)
            self._changed()
            return outcome

    def _submit(self, order: Order) -> SubmitOutcome:
        cid = order.client_order_id
        symbol = order.symbol
        transport = self._take(_TRANSPORT, lambda a: a.covers(symbol))
        if transport is not None:
            return Unknown(transport.text)
        book = self._by_client.get(cid)
        if book is None:
            refusal = self._refusal(order)
            if refusal is not None:
                return Rejected(refusal)
            book = self._open(order)
            later = self._take((Fault.REJECT_AFTER_ACCEPT,), lambda a: a.covers(symbol))
            if later is not None:
                book.reject_later = later.text
            answer = book.history[0]  # the create response: `unconfirmed`
        else:
            answer = book.current  # Robinhood's "ref_id already exists", then a lookup
        lost = self._take((Fault.TIMEOUT_AFTER_ACCEPT,), lambda a: a.covers(symbol))
        if lost is not None:
            return Unknown(lost.text)
        return Accepted(answer)

    def cancel(self, broker_order_id: str) -> None:
        """Cancel at once, keeping fills; an unknown or finished order is left alone."""
        with self._lock:
            self._cancel(broker_order_id)
            self._changed()

    def _cancel(self, broker_order_id: str) -> None:
        book = self._books.get(broker_order_id)
        if book is None or book.current.state in TERMINAL_STATES:
            return  # Robinhood: "Order cannot be cancelled at this time."
        symbol = book.symbol
        fault = self._take(_CANCEL, lambda a: a.covers(symbol))
        if fault is not None and fault.fault is Fault.LOST_CANCEL:
            return
        now = self._now()
        if fault is not None and fault.fault is Fault.CANCEL_LOSES_RACE:
            self._fill(book, book.leaves, self._forced_price(book), now)
            return
        leaves = book.leaves
        self._record(book, CANCELLED, now)
        if fault is not None and fault.fault is Fault.LATE_FILL_AFTER_CANCEL:
            book.late_fill = leaves
        else:
            self._active.pop(broker_order_id, None)

    def fetch(self, broker_order_id: str) -> BrokerOrder | None:
        with self._lock:
            book = self._books.get(broker_order_id)
            if book is None:
                return None
            book.delivered = True
            return book.current

    def find_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        with self._lock:
            book = self._by_client.get(client_order_id)
            if book is None:
                return None
            book.delivered = True
            return book.current

    def updated_since(self, when: datetime) -> list[BrokerOrder]:
        """Every order updated at or after `when`, least recently updated first."""
        when = ensure_aware(when, "when")
        with self._lock:
            recent: list[_Book] = []
            # Broker time never runs backwards, so the scan can stop at the first older book.
            for book in reversed(self._by_update.values()):
                updated_at = book.current.updated_at
                if updated_at is None or updated_at < when:
                    break
                recent.append(book)
            recent.reverse()
            delivered = self._deliver(recent)
            for book in recent:
                book.delivered = True
            evicted = self._evict(self._now())
            if evicted or self._armed or self._rates:  # faults drew from the saved generator
                self._changed()
            return delivered

    # -- the matching engine -------------------------------------------------------------------

    def match(self) -> list[BrokerOrder]:
        """Fill every order the current quotes make marketable; return the changed snapshots.

        Orders are served in submission order, each up to the symbol's liquidity left in this
        call. Injected asynchronous rejects and late fills are carried out here too. With a
        quote source, its prices for the working orders' symbols are taken first (a source that
        fails is reported by `drain_problems` and the last prices stay); with
        `cancel_gfd_at_close`, gfd orders past their close are cancelled before anything fills.
        """
        repriced = False
        if self._quote_source is not None:
            repriced = self._reprice(self._quote_source)
        with self._lock:
            changed: list[_Book] = []
            left: dict[str, Decimal | None] = {}
            now: datetime | None = None
            if self._cancel_gfd_at_close and self._active:
                now = self._now()
                self._expire(now, changed)
            for broker_order_id, book in list(self._active.items()):
                snap = book.current
                symbol = book.symbol
                if book.reject_later is not None:
                    reason, book.reject_later = book.reject_later, None
                    if snap.state is SUBMITTED:
                        now = now or self._now()
                        self._record(book, REJECTED, now, reject_reason=reason)
                        self._active.pop(broker_order_id)
                        changed.append(book)
                        continue
                if snap.state is CANCELLED:
                    if book.late_fill > 0:
                        now = now or self._now()
                        late, book.late_fill = book.late_fill, _ZERO
                        self._fill(book, late, self._forced_price(book), now)
                        changed.append(book)
                    self._active.pop(broker_order_id)
                    continue
                price = self._price(book)
                if price is None:
                    continue
                if symbol not in left:
                    left[symbol] = self._symbol_liquidity.get(symbol, self._liquidity)
                room = left[symbol]
                quantity = book.leaves if room is None else min(book.leaves, room)
                if quantity <= 0:
                    continue
                if room is not None:
                    left[symbol] = room - quantity
                now = now or self._now()
                self._fill(book, quantity, price, now)
                changed.append(book)
            delivered = self._deliver(changed)
            if changed or repriced or self._armed or self._rates:
                self._changed()
            return delivered

    def _evict(self, now: datetime) -> bool:
        """Drop finished books last updated more than the retention ago, once their final view
        was delivered; True if any went.

        `_by_update` is ordered by last update, so the scan stops at the first recent book;
        the only books it passes over are old working ones, of which a bot has few.
        """
        horizon = now - self._retention
        gone = []
        for key, book in self._by_update.items():
            current = book.current
            updated_at = current.updated_at
            if updated_at is not None and updated_at > horizon:
                break
            if (
                book.delivered
                and current.state in TERMINAL_STATES
                and not book.late_fill
                and key not in self._active
            ):
                gone.append(key)
        for key in gone:
            book = self._by_update.pop(key)
            del self._books[key]
            cid = book.current.client_order_id
            if cid is not None and self._by_client.get(cid) is book:
                del self._by_client[cid]
        self._dropped += len(gone)
        if self._dropped > 64 + len(self._books):
            # A dict keeps the room of what it once held, and walks it: copied, it does not.
            self._books = dict(self._books)
            self._by_client = dict(self._by_client)
            self._by_update = dict(self._by_update)
            self._active = dict(self._active)
            self._dropped = 0
        return bool(gone)

    def _reprice(self, source: QuoteSource) -> bool:
        """Take the source's prices for the working orders' symbols; True when any moved.

        The source is asked without the lock held: a live source waits on the network.
        """
        with self._lock:
            symbols = sorted({book.symbol for book in self._active.values()})
            if not symbols:
                return False
            now = self._now()
        try:
            prices = dict(source.prices(symbols, now))
        except Exception as error:  # a market without prices this round is not a failed sync
            problem = f"paper quotes not updated ({type(error).__name__}: {error})"
            _log.warning("paper_quotes_failed", error=repr(error))
            with self._lock:
                self._problems.append(problem)
            return False
        moved = False
        with self._lock:
            for symbol, price in prices.items():
                if price is None:
                    moved = self._quotes.pop(symbol, None) is not None or moved
                elif self._quotes.get(symbol) != price:
                    self._quotes[symbol] = positive_decimal(price, f"quote of {symbol}")
                    moved = True
        return moved

    def _expire(self, now: datetime, changed: list[_Book]) -> None:
        """Cancel every gfd order whose close has passed, as Robinhood does at the end of day."""
        for broker_order_id, book in list(self._active.items()):
            close = book.close()
            if close is None or now < close or book.current.state in TERMINAL_STATES:
                continue
            self._record(book, CANCELLED, now, cancel_reason=END_OF_DAY)
            self._active.pop(broker_order_id)
            changed.append(book)

    # -- AccountSource -------------------------------------------------------------------------

    def fetch_buying_power(self) -> Decimal:
        """Cash less what working buys have reserved at their limit prices."""
        with self._lock:
            return self._buying_power()

    def fetch_positions(self) -> Mapping[str, Decimal]:
        """Shares held per symbol (negative when short); symbols at zero are left out."""
        with self._lock:
            return {s: q for s, q in self._positions.items() if q != 0}

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole broker to `path` as JSON, atomically (temp file, then os.replace)."""
        with self._lock:
            text = self._state_text()
        _write_atomically(Path(path), text)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        journal: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        quote_source: QuoteSource | None = None,
        liquidity: Decimal | int | str | None = None,
        allow_short: bool = True,
        fault_rates: Mapping[Fault | str, float | Decimal] | None = None,
        cancel_gfd_at_close: bool = False,
        buying_power: Decimal | int | str = Decimal("100000"),
        seed: int | None = None,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> PaperBroker:
        """The broker kept in the file at `path`: resumed from it when it exists, else a new
        account (`buying_power`, a random `seed`) saved there at once; saved after every change.

        The settings given (liquidity, short selling, fault rates, quotes, end of day) apply
        over the saved ones: they are configuration, the file is the account. `journal` is
        the audit journal of the bot this broker serves; a file that belongs to another
        journal is refused, because two bots saving one simulated broker would each erase the
        other's orders. A file that cannot be read raises `BrokerError` and is left as it is.
        """
        target = Path(path)
        owner = None if journal is None else _relative_to(Path(journal), target.parent)
        if target.exists():
            broker = cls.load(target, clock=clock)
            saved = broker._journal
            if owner is not None and saved is not None and saved != owner:
                raise BrokerError(
                    f"paper broker state {os.fspath(target)!r} belongs to the journal {saved!r} "
                    f"(relative to its directory), not to {owner!r}; give each bot its own "
                    "state file (order_management.paper.state_path)"
                )
            broker._settle_settings(liquidity, allow_short, fault_rates)
            broker._resumed = True
        else:
            broker = cls(
                buying_power=buying_power,
                seed=secrets.randbits(63) if seed is None else seed,
                liquidity=liquidity,
                allow_short=allow_short,
                fault_rates=fault_rates,
                clock=clock,
            )
            target.parent.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            broker._journal = owner
        if quote_source is not None and not isinstance(quote_source, QuoteSource):
            raise InvalidOrderError("quote_source", quote_source, "must have a prices() method")
        broker._quote_source = quote_source
        broker._cancel_gfd_at_close = bool(cancel_gfd_at_close)
        broker._retention = timedelta(seconds=retention_seconds)
        broker._state_path = target
        with broker._lock:
            # Written now, so that a state file that cannot be written fails the start, not
            # the first order.
            _write_atomically(target, broker._state_text())
        return broker

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, clock: Clock | None = None) -> PaperBroker:
        """A broker in the state `save` wrote.

        A `SimulatedClock` comes back at the position it had; any other clock is not saved, so
        pass it again (the default is the wall clock).
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls._from_state(data, clock)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise BrokerError(
                f"paper broker state {os.fspath(path)!r} cannot be loaded ({exc!r}): it is "
                "damaged, or was not written by PaperBroker.save of this version"
            ) from exc

    # -- internals (the caller holds the lock) -------------------------------------------------

    def _state_text(self) -> str:
        return json.dumps(self._state(), indent=1, sort_keys=True)

    def _changed(self) -> None:
        """Save the state file of an `open`ed broker; a failed write is reported, not raised.

        Raising would turn an accepted order into an error the manager must treat as unknown;
        the broker goes on in memory and the next change writes the file whole again.
        """
        target = self._state_path
        if target is None:
            return
        try:
            _write_atomically(target, self._state_text())
        except OSError as error:
            _log.error("paper_state_not_saved", path=os.fspath(target), error=repr(error))
            self._problems.append(
                f"paper broker state not saved to {os.fspath(target)} ({error.strerror or error}); "
                "the simulated broker goes on in memory and saves again at its next change"
            )

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is not UTC:
            now = ensure_aware(now, "clock()").astimezone(UTC)
        if self._last_time is not None and now < self._last_time:
            now = self._last_time
        self._last_time = now
        return now

    def _new_id(self) -> str:
        """A UUID4-shaped id from the seeded generator (formatted directly: it is hot)."""
        return uuid4_text(self._ids.getrandbits(128))

    def _take(self, kinds: tuple[Fault, ...], applies: Callable[[_Armed], bool]) -> _Armed | None:
        """The fault this call suffers, if any: an armed one first, else a random draw."""
        if not self._armed and not self._rates:
            return None
        for armed in self._armed:
            if armed.fault in kinds and applies(armed):
                armed.remaining -= 1
                if armed.remaining == 0:
                    self._armed.remove(armed)
                return armed
        for kind in kinds:
            rate = self._rates.get(kind)
            if rate is not None and self._draws.random() < rate:
                return _Armed(kind, 0)
        return None

    def _buying_power(self) -> Decimal:
        reserved = sum(
            (b.limit * b.leaves for b in self._active.values() if b.buys),
            _ZERO,
        )
        return self._cash - reserved

    def _refusal(self, order: Order) -> str | None:
        """Why the broker refuses a new order outright, or None."""
        fault = self._take((Fault.REJECT,), lambda a: a.covers(order.symbol))
        if fault is not None:
            return fault.text
        if order.side is BUY:
            needed = order.limit_price * order.quantity
            available = self._buying_power()
            if needed > available:
                return (
                    f"Not enough buying power. This order needs {needed} and "
                    f"{available} is available."
                )
        elif not self._allow_short:
            held = self._positions.get(order.symbol, _ZERO)
            selling = sum(
                (
                    b.leaves
                    for b in self._active.values()
                    if not b.buys and b.symbol == order.symbol
                ),
                _ZERO,
            )
            if order.quantity > held - selling:
                return (
                    f"Not enough shares to sell. This order sells {order.quantity} and "
                    f"{held - selling} {order.symbol} are held and not already for sale."
                )
        return None

    def _open(self, order: Order) -> _Book:
        """Create the order: Robinhood answers `unconfirmed`, then confirms it."""
        # The fields come from a validated Order, so the converters are skipped here too.
        created = trusted_broker_order(
            broker_order_id=self._new_id(),
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            limit_price=order.limit_price,
            state=SUBMITTED,
            raw_state="unconfirmed",
            cumulative_quantity=_ZERO,
            average_price=None,
            executions=(),
            reject_reason=None,
            updated_at=self._now(),
            cancel_reason=None,
        )
        book = _Book(
            [created],
            gfd=order.time_in_force is TimeInForce.GFD,
            placed_at=created.updated_at,
        )
        self._record(book, SUBMITTED, self._now())
        self._books[created.broker_order_id] = book
        self._by_client[order.client_order_id] = book
        self._active[created.broker_order_id] = book
        return book

    def _record(
        self,
        book: _Book,
        state: OrderState,
        now: datetime,
        *,
        reject_reason: str | None = None,
        execution: Execution | None = None,
        cancel_reason: str | None = None,
    ) -> None:
        """Append the next snapshot to the book's history; it becomes the current one."""
        snap = book.current
        if cancel_reason is None and state is CANCELLED:
            cancel_reason = snap.cancel_reason  # a late fill keeps the cancel's cause
        executions = snap.executions
        cumulative = snap.cumulative_quantity
        average = snap.average_price
        if execution is not None:
            executions = (*executions, execution)
            cumulative += execution.quantity
            book.notional += execution.quantity * execution.price
            average = book.notional / cumulative
        # Every field comes from the validated snapshot or from our own exact arithmetic, so
        # the converters are skipped: this runs for every fill of every simulated order.
        book.delivered = False  # a new view nobody has seen yet
        book.history.append(
            trusted_broker_order(
                broker_order_id=snap.broker_order_id,
                client_order_id=snap.client_order_id,
                symbol=snap.symbol,
                side=snap.side,
                quantity=snap.quantity,
                limit_price=snap.limit_price,
                state=state,
                raw_state=_RAW_STATE[state],
                cumulative_quantity=cumulative,
                average_price=average,
                executions=executions,
                reject_reason=reject_reason,
                updated_at=now,
                cancel_reason=cancel_reason,
            )
        )
        if len(book.history) > _KEPT_VIEWS:
            del book.history[0]  # only the current view and the one before are ever shown
        key = snap.broker_order_id
        self._by_update.pop(key, None)
        self._by_update[key] = book

    def _price(self, book: _Book) -> Decimal | None:
        """The price the quote fills this order at, or None when it is not marketable."""
        quote = self._quotes.get(book.symbol)
        if quote is None:
            return None
        if book.buys:
            return quote if quote <= book.limit else None
        return quote if quote >= book.limit else None

    def _forced_price(self, book: _Book) -> Decimal:
        """The price of a fill a fault forces: the quote's when marketable, else the limit."""
        price = self._price(book)
        return book.limit if price is None else price

    def _fill(self, book: _Book, quantity: Decimal, price: Decimal, now: datetime) -> None:
        """Book one execution and move cash and shares; a cancelled order stays cancelled."""
        snap = book.current
        if snap.state is CANCELLED:
            state = CANCELLED
        elif snap.cumulative_quantity + quantity == snap.quantity:
            state = FILLED
        else:
            state = PARTIALLY_FILLED
        execution = trusted_execution(self._new_id(), quantity, price, now)
        self._record(book, state, now, execution=execution)
        if state is FILLED:
            self._active.pop(snap.broker_order_id, None)
        signed = quantity if book.buys else -quantity
        symbol = book.symbol
        self._positions[symbol] = self._positions.get(symbol, _ZERO) + signed
        self._cash -= signed * price

    def _deliver(self, books: list[_Book]) -> list[BrokerOrder]:
        """The snapshots of `books` as the delivery faults (if any) garble them."""
        if not books:
            return []
        if not self._armed and not self._rates:  # no fault can apply: the common case
            return [book.current for book in books]
        stale = self._take(
            (Fault.STALE_SNAPSHOTS,),
            lambda a: any(a.covers(b.symbol) and len(b.history) > 1 for b in books),
        )
        twice = self._take(
            (Fault.DUPLICATE_SNAPSHOTS,), lambda a: any(a.covers(b.symbol) for b in books)
        )
        out: list[BrokerOrder] = []
        for book in books:
            views = [book.current]
            if stale is not None and stale.covers(book.symbol) and len(book.history) > 1:
                views.append(book.history[-2])
            for view in views:
                out.append(view)
                if twice is not None and twice.covers(book.symbol):
                    out.append(view)
        return out

    # -- the saved form ------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        clock = self._clock
        return {
            "format": _FORMAT_VERSION,
            "seed": self._seed,
            "ids_rng": _rng_state(self._ids),
            "faults_rng": _rng_state(self._draws),
            "clock": (
                {
                    "next": clock.peek().isoformat(),
                    "step_us": clock.step // timedelta(microseconds=1),
                }
                if isinstance(clock, SimulatedClock)
                else None
            ),
            "last_time": None if self._last_time is None else self._last_time.isoformat(),
            "cash": str(self._cash),
            "positions": {s: str(q) for s, q in self._positions.items()},
            "quotes": {s: str(p) for s, p in self._quotes.items()},
            "liquidity": _opt_str(self._liquidity),
            "symbol_liquidity": {s: _opt_str(q) for s, q in self._symbol_liquidity.items()},
            "allow_short": self._allow_short,
            "fault_rates": {f.value: r for f, r in self._rates.items()},
            "journal": self._journal,
            "armed": [
                {
                    "fault": a.fault.value,
                    "times": a.remaining,
                    "symbol": a.symbol,
                    "message": a.message,
                }
                for a in self._armed
            ],
            "orders": [
                {
                    "history": [_snapshot_to_json(s) for s in b.history],
                    "late_fill": str(b.late_fill),
                    "reject_later": b.reject_later,
                    "active": key in self._active,
                    "gfd": b.gfd,
                    "placed_at": None if b.placed_at is None else b.placed_at.isoformat(),
                }
                for key, b in self._books.items()
            ],
        }

    @classmethod
    def _from_state(cls, data: Mapping[str, Any], clock: Clock | None) -> PaperBroker:
        if data["format"] != _FORMAT_VERSION:
            raise ValueError(f"format {data['format']!r} is not {_FORMAT_VERSION}")
        saved_clock = data["clock"]
        if clock is None and saved_clock is not None:
            clock = SimulatedClock(
                datetime.fromisoformat(saved_clock["next"]),
                timedelta(microseconds=saved_clock["step_us"]),
            )
        broker = cls(
            quotes=data["quotes"],
            buying_power=data["cash"],
            seed=data["seed"],
            positions=data["positions"],
            liquidity=data["liquidity"],
            allow_short=data["allow_short"],
            fault_rates=data["fault_rates"],
            clock=clock,
        )
        journal = data["journal"]
        if journal is not None and not isinstance(journal, str):
            raise TypeError(f"journal {journal!r} is not a path")
        broker._journal = journal
        _set_rng_state(broker._ids, data["ids_rng"])
        _set_rng_state(broker._draws, data["faults_rng"])
        last = data["last_time"]
        broker._last_time = None if last is None else datetime.fromisoformat(last)
        for symbol, shares in data["symbol_liquidity"].items():
            broker.set_liquidity(symbol, shares)
        for armed in data["armed"]:
            broker.inject(
                armed["fault"],
                times=armed["times"],
                symbol=armed["symbol"],
                message=armed["message"],
            )
        for saved in data["orders"]:
            history = [_snapshot_from_json(s) for s in saved["history"]]
            gfd = saved["gfd"]
            if type(gfd) is not bool:
                raise TypeError(f"gfd {gfd!r} is not a boolean")
            book = _Book(
                history,
                to_decimal(saved["late_fill"], "late_fill"),
                saved["reject_later"],
                gfd=gfd,
                placed_at=_opt_time(saved["placed_at"]),
            )
            snap = book.current
            broker._books[snap.broker_order_id] = book
            if snap.client_order_id is not None:
                broker._by_client[snap.client_order_id] = book
            if saved["active"]:
                broker._active[snap.broker_order_id] = book
        by_time = sorted(broker._books.values(), key=_update_key)
        broker._by_update = {b.current.broker_order_id: b for b in by_time}
        return broker


def _write_atomically(target: Path, text: str) -> None:
    """Replace `target` with `text` whole: a crash leaves the old file or the new, never half."""
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _same_file(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def _relative_to(path: Path, directory: Path) -> str:
    """`path` as seen from `directory`: unchanged when both move together."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(directory))


def _update_key(book: _Book) -> datetime:
    return book.current.updated_at or datetime.min.replace(tzinfo=UTC)


def _opt_str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _opt_decimal(value: str | None, field: str) -> Decimal | None:
    return None if value is None else to_decimal(value, field)


def _opt_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _set_rng_state(rng: random.Random, saved: Iterable[Any]) -> None:
    version, internal, gauss = saved
    rng.setstate((version, tuple(internal), gauss))


def _snapshot_to_json(snap: BrokerOrder) -> dict[str, Any]:
    return {
        "broker_order_id": snap.broker_order_id,
        "client_order_id": snap.client_order_id,
        "symbol": snap.symbol,
        "side": snap.side.value,
        "quantity": str(snap.quantity),
        "limit_price": _opt_str(snap.limit_price),
        "state": snap.state.value,
        "raw_state": snap.raw_state,
        "cumulative_quantity": str(snap.cumulative_quantity),
        "average_price": _opt_str(snap.average_price),
        "executions": [
            {
                "execution_id": e.execution_id,
                "quantity": str(e.quantity),
                "price": str(e.price),
                "timestamp": None if e.timestamp is None else e.timestamp.isoformat(),
            }
            for e in snap.executions
        ],
        "reject_reason": snap.reject_reason,
        "cancel_reason": snap.cancel_reason,
        "updated_at": None if snap.updated_at is None else snap.updated_at.isoformat(),
    }


def _snapshot_from_json(data: Mapping[str, Any]) -> BrokerOrder:
    return BrokerOrder(
        broker_order_id=data["broker_order_id"],
        client_order_id=data["client_order_id"],
        symbol=data["symbol"],
        side=data["side"],
        quantity=to_decimal(data["quantity"], "quantity"),
        limit_price=_opt_decimal(data["limit_price"], "limit_price"),
        state=data["state"],
        raw_state=data["raw_state"],
        cumulative_quantity=to_decimal(data["cumulative_quantity"], "cumulative_quantity"),
        average_price=_opt_decimal(data["average_price"], "average_price"),
        executions=tuple(
            Execution(
                e["execution_id"],
                to_decimal(e["quantity"], "quantity"),
                to_decimal(e["price"], "price"),
                _opt_time(e["timestamp"]),
            )
            for e in data["executions"]
        ),
        reject_reason=data["reject_reason"],
        cancel_reason=data["cancel_reason"],
        updated_at=_opt_time(data["updated_at"]),
    )
