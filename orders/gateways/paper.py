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
import struct
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from orders._files import write_atomically
from orders._order_view import SIDES, record_fields
from orders.errors import BrokerError, InvalidOrderError
from orders.gateways._paper_book import CANCELLED, ZERO, Book, Books, opened
from orders.gateways._paper_changes import (
    CHANGES_KEY,
    ChangeFile,
    apply_changes,
    changes_path,
    read_changes,
)
from orders.gateways._paper_clock import (
    END_OF_DAY,
    BrokerTime,
    Clock,
    Moment,
    SimulatedClock,
    session_close_after,
)
from orders.gateways._paper_faults import (
    CANCEL_FAULTS,
    LATER_REJECT_FAULTS,
    LOST_ANSWER_FAULTS,
    REFUSAL_FAULTS,
    TRANSPORT_FAULTS,
    ArmedFault,
    Fault,
    FaultPlan,
    fault_rates,
)
from orders.gateways._paper_market import Account, Amount, Market
from orders.gateways._paper_settings import BrokerSettings, disagreements
from orders.gateways._paper_state import (
    book_record,
    dump,
    head,
    parse,
    relative_to,
    render,
    same_file,
)
from orders.gateways.base import Accepted, Rejected, SubmitOutcome, Unknown
from orders.gateways.quotes import QuoteSource
from orders.log import get_logger
from orders.model import (
    DEFAULT_RETENTION_SECONDS,
    TERMINAL_STATES,
    BrokerOrder,
    OrderState,
    TimeInForce,
    coerce_enum,
    ensure_aware,
    positive_decimal,
    trusted_execution,
    validate_symbol,
)

if TYPE_CHECKING:
    from orders.config import OrderManagementConfig
    from orders.lifecycle import Order

__all__ = ["END_OF_DAY", "Fault", "PaperBroker", "SimulatedClock", "session_close_after"]

_log = get_logger("orders.gateways.paper")

FaultRates = Mapping[Fault | str, float | Decimal]

# Read on every submission, once (on Python 3.11 a member read off its enum class goes through
# `EnumType.__getattr__`'s slow path).
_GFD: Final = TimeInForce.GFD

# A book's current view, without a Python frame: a list comprehension makes one per call.
_current_view: Final = attrgetter("current")


class PaperBroker:
    """A simulated broker: an `OrderGateway` and an `AccountSource` in memory.

    Thread-safe: one lock guards every call, since the service's polling thread and the bot
    call it at the same time.
    """

    def __init__(
        self,
        *,
        quotes: Mapping[str, Amount] | None = None,
        buying_power: Amount = Decimal("100000"),
        seed: int = 0,
        positions: Mapping[str, Amount] | None = None,
        liquidity: Amount | None = None,
        allow_short: bool = True,
        fault_rates: FaultRates | None = None,
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
        retention = _retention(retention_seconds)
        if type(seed) is not int:
            raise InvalidOrderError("seed", seed, "must be an int")
        self._lock = threading.Lock()
        self._seed = seed
        self._ids = random.Random(seed)  # noqa: S311 (simulation ids, not secrets)
        self._time = BrokerTime(clock)
        self._moment = Moment(self._time)  # the time of one `match()`
        self._account = Account(buying_power, positions)
        self._market = Market(quotes)
        self._faults = FaultPlan(seed)
        self._settle_settings(liquidity, allow_short, fault_rates)
        self._quote_source = _checked_source(quote_source)
        self._cancel_gfd_at_close = bool(cancel_gfd_at_close)
        # Persistence, set by `open`: the file, the journal it belongs to, whether it was read,
        # and the change file that follows it.
        self._state_path: Path | None = None
        self._change_file: ChangeFile | None = None
        self._head_saved: dict[str, Any] = {}  # as the change file has it after its last line
        self._journal: str | None = None
        self._resumed = False
        self._problems: list[str] = []
        self._books = Books(retention)

    def _settle_settings(
        self, liquidity: Amount | None, allow_short: bool, rates: FaultRates | None
    ) -> None:
        self._market.liquidity = (
            None if liquidity is None else positive_decimal(liquidity, "liquidity")
        )
        self._account.allow_short = bool(allow_short)
        self._faults.rates = fault_rates(rates)

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
        """The `paper` settings where this broker differs from `config` (those `config` moves
        away from their defaults: a broker built by hand for a test stays usable under a
        default configuration)."""
        settings = BrokerSettings(
            liquidity=self._market.liquidity,
            allow_short=self._account.allow_short,
            rates=dict(self._faults.rates),
            state_path=self._state_path,
            retention_seconds=self._books.retention.total_seconds(),
            quote_source=self._quote_source,
        )
        return disagreements(config, settings)

    def drain_problems(self) -> list[str]:
        """What went wrong outside any call's answer since the last call (a state file that
        could not be written, prices that could not be read); the manager reports them."""
        if not self._problems:
            return []
        with self._lock:
            problems, self._problems = self._problems, []
            return problems

    # -- market and faults ---------------------------------------------------------------------

    def set_quote(self, symbol: str, price: Amount | None) -> None:
        """Set the price `match()` compares limits with; None removes the quote."""
        symbol = validate_symbol(symbol)
        value = None if price is None else positive_decimal(price, "price")
        with self._lock:
            if value is None:
                self._market.quotes.pop(symbol, None)
            else:
                self._market.quotes[symbol] = value
            self._changed()

    def set_liquidity(self, symbol: str, shares: Amount | None) -> None:
        """Cap the shares one `match()` fills for `symbol`; None lifts the cap for it."""
        symbol = validate_symbol(symbol)
        value = None if shares is None else positive_decimal(shares, "shares")
        with self._lock:
            self._market.symbol_liquidity[symbol] = value
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
            self._faults.arm(ArmedFault(kind, times, target, message))
            self._changed()

    def clear_faults(self) -> None:
        """Disarm every injected fault that has not fired yet (random rates stay)."""
        with self._lock:
            self._faults.armed.clear()
            self._changed()

    @property
    def armed_faults(self) -> tuple[tuple[Fault, int], ...]:
        """Each armed fault and how many more calls it will hit: lets a test check it fired."""
        with self._lock:
            return tuple((a.fault, a.remaining) for a in self._faults.armed)

    # -- OrderGateway --------------------------------------------------------------------------

    def submit_limit(self, order: Order) -> SubmitOutcome:
        """Accept `order` as a resting limit order; a known client order id returns that order."""
        # acquire and release, not `with`: a `with` builds a bound __enter__ and __exit__ at
        # every call, twice the cost, and this runs for every order (as `match` does).
        lock = self._lock
        lock.acquire()
        try:
            outcome = self._submit(order)
            if self._change_file is not None:  # `_changed` has nothing to do otherwise
                self._changed()
            return outcome
        finally:
            lock.release()

    def _submit(self, order: Order) -> SubmitOutcome:
        faults = self._faults
        # Almost every broker has no fault armed and no rates: then none of the four look-ups
        # of a submission can fire, and each is skipped.
        quiet = not faults.armed and not faults.rates
        # The order's fields in one read: each property read is a call into the interpreter
        # again (six cost 4,700 instructions; this and `time_in_force` below, 2,700).
        client_order_id, _, symbol, side_value, _, quantity, limit, _, _ = record_fields(order)
        if not quiet:
            transport = faults.take(TRANSPORT_FAULTS, symbol)
            if transport is not None:
                return Unknown(transport.text)
        books = self._books
        book = books.by_client.get(client_order_id)
        if book is None:
            side = SIDES[side_value]
            if not quiet:
                refused = faults.take(REFUSAL_FAULTS, symbol)
                if refused is not None:
                    return Rejected(refused.text)
            working = books.active.values()
            refusal = self._account.refusal(side, symbol, quantity, limit, working)
            if refusal is not None:
                return Rejected(refusal)
            book = opened(
                self._new_id(),
                client_order_id,
                symbol,
                side,
                quantity,
                limit,
                self._time.now(),  # created: Robinhood answers `unconfirmed`,
                self._time.now(),  # then confirms it
                order.time_in_force is _GFD,
            )
            books.add(book)
            later = None if quiet else faults.take(LATER_REJECT_FAULTS, symbol)
            if later is not None:
                book.reject_later = later.text  # a new book: saved with it
            answer = book.previous  # the create response: `unconfirmed`
            assert answer is not None  # a new book has its two views
        else:
            answer = book.current  # Robinhood's "ref_id already exists", then a lookup
        lost = None if quiet else faults.take(LOST_ANSWER_FAULTS, symbol)
        if lost is not None:
            return Unknown(lost.text)
        return Accepted(answer)

    def cancel(self, broker_order_id: str) -> None:
        """Cancel at once, keeping fills; an unknown or finished order is left alone."""
        with self._lock:
            self._cancel(broker_order_id)
            self._changed()

    def _cancel(self, broker_order_id: str) -> None:
        book = self._books.by_id.get(broker_order_id)
        if book is None or book.current.state in TERMINAL_STATES:
            return  # Robinhood: "Order cannot be cancelled at this time."
        fault = self._faults.take(CANCEL_FAULTS, book.symbol)
        kind = None if fault is None else fault.fault
        if kind is Fault.LOST_CANCEL:
            return
        now = self._time.now()
        if kind is Fault.CANCEL_LOSES_RACE:
            self._fill(book, book.leaves, self._market.forced_price(book), now)
            return
        leaves = book.leaves
        book.advance(OrderState.CANCELLED, now)
        self._books.moved(book)
        if kind is Fault.LATE_FILL_AFTER_CANCEL:
            book.late_fill = leaves  # after `moved`: saved with the cancel
        else:
            self._books.deactivate(book)

    def fetch(self, broker_order_id: str) -> BrokerOrder | None:
        with self._lock:
            return self._hand_over(self._books.by_id.get(broker_order_id))

    def find_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        with self._lock:
            return self._hand_over(self._books.by_client.get(client_order_id))

    def _hand_over(self, book: Book | None) -> BrokerOrder | None:
        """The book's current view, marked as seen by whoever tracks the order (saved: it
        decides when a finished order may leave the books)."""
        if book is None:
            return None
        self._delivered([book])
        self._changed()  # only the first hand-over of a view changes anything
        return book.current

    def _delivered(self, books: list[Book]) -> None:
        """Mark `books` handed to a caller (a change to save for those that had not been)."""
        for book in books:
            if not book.delivered:
                book.delivered = True
                self._books.touch(book)

    def updated_since(self, when: datetime) -> list[BrokerOrder]:
        """Every order updated at or after `when`, least recently updated first."""
        when = ensure_aware(when, "when")
        with self._lock:
            recent = self._books.recent(when)
            delivered = self._deliver(recent)
            self._delivered(recent)
            self._books.evict(self._time.now())
            self._changed()  # a poll that changed nothing writes nothing
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
        if self._quote_source is not None:
            self._reprice(self._quote_source)
        lock = self._lock
        lock.acquire()  # not `with`: see `submit_limit`
        try:
            changed: list[Book] = []
            active = self._books.active
            if active:  # an idle round has nothing to look at
                moment = self._moment
                moment.value = None  # a new round reads the clock afresh, when first needed
                if self._cancel_gfd_at_close:
                    self._expire(moment.now(), changed)
                market = self._market
                left: dict[str, Decimal | None] = {}
                # A copy, as a display rather than a call of `list` (250 instructions less,
                # callgrind): a book that finishes leaves `active` during the loop.
                for book in [*active.values()]:
                    if book.reject_later is not None or book.current.state is CANCELLED:
                        if self._match_one(book, left, moment):
                            changed.append(book)
                        continue
                    # What `_match_one` does with a book that has nothing else due, inlined:
                    # this runs for every working order in every round.
                    fill = market.fill(book, left)
                    if fill is not None:
                        now = moment.value
                        if now is None:  # `moment.now()`, inlined too
                            now = moment.value = self._time.now()
                        quantity, price = fill
                        self._fill(book, quantity, price, now)
                        changed.append(book)
            delivered = self._deliver(changed)
            if self._change_file is not None:  # a round that changed nothing writes nothing
                self._changed()
            return delivered
        finally:
            lock.release()

    def _match_one(self, book: Book, left: dict[str, Decimal | None], moment: Moment) -> bool:
        """Carry out what is due to one working order; True when it has a new view."""
        if book.reject_later is not None and self._reject_now(book, moment):
            return True
        if book.current.state is CANCELLED:
            self._books.deactivate(book)  # only a late fill kept it working
            if book.late_fill > 0:
                self._late_fill(book, moment.now())
                return True
            return False
        fill = self._market.fill(book, left)
        if fill is None:
            return False
        quantity, price = fill
        self._fill(book, quantity, price, moment.now())
        return True

    def _reject_now(self, book: Book, moment: Moment) -> bool:
        """Carry out a REJECT_AFTER_ACCEPT; True when the order was still unfilled to reject."""
        reason, book.reject_later = book.reject_later, None
        self._books.touch(book)
        if book.current.state is not OrderState.SUBMITTED:
            return False
        book.advance(OrderState.REJECTED, moment.now(), reject_reason=reason)
        self._books.moved(book)
        self._books.deactivate(book)
        return True

    def _late_fill(self, book: Book, now: datetime) -> None:
        late, book.late_fill = book.late_fill, ZERO
        self._fill(book, late, self._market.forced_price(book), now)

    def _fill(self, book: Book, quantity: Decimal, price: Decimal, now: datetime) -> None:
        """Book one execution and move cash and shares; a cancelled order stays cancelled."""
        execution = trusted_execution(self._new_id(), quantity, price, now)
        value = quantity * price
        done = book.execute(execution, value)
        books = self._books
        books.moved(book)
        if done:
            books.deactivate(book)
        self._account.settle(book, quantity, value)

    def _deliver(self, books: list[Book]) -> list[BrokerOrder]:
        """The snapshots of `books` as the delivery faults (if any) garble them."""
        if not books:  # nothing to garble: an idle poll must not use up the seeded fault draws
            return []
        faults = self._faults
        if not faults.armed and not faults.rates:  # no fault can apply: the common case
            return [*map(_current_view, books)]  # not list(...): see `match`
        return faults.garble(books)

    def _reprice(self, source: QuoteSource) -> None:
        """Take the source's prices for the working orders' symbols.

        The source is asked without the lock held: a live source waits on the network.
        """
        with self._lock:
            symbols = sorted({book.symbol for book in self._books.active.values()})
            if not symbols:
                return
            now = self._time.now()
        try:
            prices = dict(source.prices(symbols, now))
        except Exception as error:  # a market without prices this round is not a failed sync
            problem = f"paper quotes not updated ({type(error).__name__}: {error})"
            _log.warning("paper_quotes_failed", error=repr(error))
            with self._lock:
                self._problems.append(problem)
            return
        with self._lock:
            self._market.reprice(prices)

    def _expire(self, now: datetime, changed: list[Book]) -> None:
        """Cancel every gfd order whose close has passed, as Robinhood does at the end of day."""
        for book in list(self._books.active.values()):
            close = book.close()
            if close is None or now < close or book.current.state in TERMINAL_STATES:
                continue
            book.advance(OrderState.CANCELLED, now, cancel_reason=END_OF_DAY)
            self._books.moved(book)
            self._books.deactivate(book)
            changed.append(book)

    # -- AccountSource -------------------------------------------------------------------------

    def fetch_buying_power(self) -> Decimal:
        """Cash less what working buys have reserved at their limit prices."""
        lock = self._lock
        lock.acquire()  # not `with`: see `submit_limit` (a manager asks before every order)
        try:
            return self._account.buying_power(self._books.active.values())
        finally:
            lock.release()

    def fetch_positions(self) -> Mapping[str, Decimal]:
        """Shares held per symbol (negative when short); symbols at zero are left out."""
        with self._lock:
            return {s: q for s, q in self._account.positions.items() if q != 0}

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole broker to `path` as JSON, atomically (temp file, then os.replace).

        Saved to its own state file, an `open`ed broker rewrites it and empties its change
        file, as it does at start: a state file without its changes would lose them.
        """
        target = Path(path)
        with self._lock:
            own, changes = self._state_path, self._change_file
            if own is not None and changes is not None and same_file(target, own):
                self._fold(own, changes)
                return
            text = self._state_text()
        write_atomically(target, text)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        journal: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        quote_source: QuoteSource | None = None,
        liquidity: Amount | None = None,
        allow_short: bool = True,
        fault_rates: FaultRates | None = None,
        cancel_gfd_at_close: bool = False,
        buying_power: Amount = Decimal("100000"),
        seed: int | None = None,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        fsync: bool = True,
    ) -> PaperBroker:
        """The broker kept in the file at `path`: resumed from it when it exists, else a new
        account (`buying_power`, a random `seed`) saved there at once; saved after every change.

        Each change is a line appended to the change file beside it
        (`paper-broker.json` -> `paper-broker.changes.jsonl`), forced to disk unless `fsync`
        is False; the two files are one state, to be kept, moved or deleted together.

        The settings given (liquidity, short selling, fault rates, quotes, end of day) apply
        over the saved ones: they are configuration, the file is the account. `journal` is
        the audit journal of the bot this broker serves; a file that belongs to another
        journal is refused, because two bots saving one simulated broker would each erase the
        other's orders. A file that cannot be read raises `BrokerError` and is left as it is.
        """
        target = Path(path)
        owner = None if journal is None else relative_to(Path(journal), target.parent)
        last_change = 0
        if target.exists():
            broker, last_change = cls._resume(target, owner, clock)
            broker._settle_settings(liquidity, allow_short, fault_rates)
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
        broker._quote_source = _checked_source(quote_source)
        broker._cancel_gfd_at_close = bool(cancel_gfd_at_close)
        broker._books.retention = _retention(retention_seconds)
        broker._state_path = target
        with broker._lock:
            broker._change_file = ChangeFile(changes_path(target), last_change, fsync=fsync)
            broker._books.track_changes()
            # Written now, so that a state file that cannot be written fails the start, not
            # the first order; and whole, so that the change file starts empty.
            broker._fold(target, broker._change_file)
        return broker

    @classmethod
    def _resume(
        cls, target: Path, owner: str | None, clock: Clock | None
    ) -> tuple[PaperBroker, int]:
        """The broker saved at `target` and the number of its last change; refused when it
        belongs to another journal."""
        broker, last_change = cls._read(target, clock)
        saved = broker._journal
        if owner is not None and saved is not None and saved != owner:
            raise BrokerError(
                f"paper broker state {os.fspath(target)!r} belongs to the journal {saved!r} "
                f"(relative to its directory), not to {owner!r}; give each bot its own "
                "state file (order_management.paper.state_path)"
            )
        broker._resumed = True
        return broker, last_change

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, clock: Clock | None = None) -> PaperBroker:
        """A broker in the state `save` wrote, or an `open`ed broker's state file and the
        changes after it.

        A `SimulatedClock` comes back at the position it had; any other clock is not saved, so
        pass it again (the default is the wall clock).
        """
        return cls._read(Path(path), clock)[0]

    @classmethod
    def _read(cls, path: Path, clock: Clock | None) -> tuple[PaperBroker, int]:
        """The broker saved at `path` (with its change file, if it has one) and the number of
        the last change read (0 without a change file)."""
        changes = changes_path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            last = data.get(CHANGES_KEY) if isinstance(data, dict) else None
            if last is not None:
                if type(last) is not int:
                    raise TypeError(f"{CHANGES_KEY} {last!r} is not a number")
                read = read_changes(changes, last)
                data = apply_changes(data, read)
                last += len(read)
            return cls._from_state(data, clock), last or 0
        except FileNotFoundError as exc:
            if exc.filename != os.fspath(changes):
                raise _damaged(path, exc) from exc
            raise BrokerError(
                f"paper broker state {os.fspath(path)!r} cannot be loaded: its change file "
                f"{os.fspath(changes)!r} is missing, and holds every change since the state "
                "file was written; put it back beside it (the two are kept together)"
            ) from exc
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise _damaged(path, exc) from exc

    @classmethod
    def _from_state(cls, data: Mapping[str, Any], clock: Clock | None) -> PaperBroker:
        saved = parse(data)
        broker = cls(**saved.settings, clock=saved.clock if clock is None else clock)
        broker._account.cash = saved.cash
        broker._journal = saved.journal
        saved.restore_generators(broker._ids, broker._faults.draws)
        broker._time.last = saved.last_time
        for symbol, shares in saved.symbol_liquidity.items():
            broker.set_liquidity(symbol, shares)
        for armed in saved.armed:
            broker.inject(
                armed["fault"],
                times=armed["times"],
                symbol=armed["symbol"],
                message=armed["message"],
            )
        for book, active in saved.books:
            broker._books.add(book, active=active)
        broker._books.reorder()
        return broker

    # -- internals (the caller holds the lock) -------------------------------------------------

    def _state_text(self) -> bytes:
        return render(dump(self._head(), self._books), pretty=True)

    def _head(self) -> dict[str, Any]:
        return head(
            seed=self._seed,
            ids=self._ids,
            journal=self._journal,
            time=self._time,
            market=self._market,
            account=self._account,
            faults=self._faults,
        )

    def _change(self) -> dict[str, Any]:
        """The change line of what moved since the last one: the parts of the head (account,
        prices, generators, clock, armed faults) that changed, and the orders that changed or
        went. (The generator of the fault draws, half a line, rarely moves.)"""
        books, gone = self._books.take_changes()
        now = self._head()
        saved = self._head_saved
        self._head_saved = now
        return {
            "head": {k: v for k, v in now.items() if k not in saved or saved[k] != v},
            "orders": [book_record(book, active) for book, active in books],
            "gone": gone,
        }

    def _fold(self, target: Path, changes: ChangeFile) -> None:
        """Rewrite the state file whole, then empty the change file: the state file holds
        every change so far. Raises OSError (and the next change tries again)."""
        changes.create()
        written = self._head()
        # The state file of an `open`ed broker names the last change it includes.
        text = render({**dump(written, self._books), CHANGES_KEY: changes.last}, pretty=True)
        write_atomically(target, text)
        changes.restart(len(text))
        self._books.take_changes()
        self._head_saved = written

    def _changed(self) -> None:
        """Save a change of an `open`ed broker; a failed write is reported, not raised.

        Raising would turn an accepted order into an error the manager must treat as unknown;
        the broker goes on in memory and the next change writes the state file whole again.
        """
        target = self._state_path
        changes = self._change_file
        if target is None or changes is None:
            return
        try:
            if changes.needs_fold:
                self._fold(target, changes)
            else:
                change = self._change()
                if change["orders"] or change["gone"] or change["head"].keys() - {"last_time"}:
                    # A wall clock's last reading alone is not worth a line: it only keeps
                    # the broker's time from running backwards if the clock itself does.
                    changes.append(change)
        except OSError as error:
            _log.error("paper_state_not_saved", path=os.fspath(target), error=repr(error))
            self._problems.append(
                f"paper broker state not saved to {os.fspath(target)} ({error.strerror or error}); "
                "the simulated broker goes on in memory and saves again at its next change"
            )

    def _new_id(self) -> str:
        """A UUID4 from the next 128 bits of the seeded generator, as
        `orders.model.uuid4_text` prints them, at three quarters of its cost (callgrind:
        5,600 against 7,600 instructions; the broker draws four ids an order): three runs of
        bytes printed, the middle one with its dashes, cost less than five slices of one
        string."""
        bits = self._ids.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET
        head, middle, tail = _UUID_RUNS(bits.to_bytes(16))
        return f"{head.hex()}-{middle.hex('-', 2)}-{tail.hex()}"


# The version (4) and variant (RFC 4122) bits of a UUID4, as `uuid.UUID(version=4)` sets them.
_UUID4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET: Final = (0x4000 << 64) | (0x8000 << 48)
# A UUID's 16 bytes in the three runs that print without a dash inside (4, 6, 6 bytes): the
# middle run prints as three groups of two bytes.
_UUID_RUNS: Final = struct.Struct("4s6s6s").unpack


def _retention(seconds: float) -> timedelta:
    if not 0 <= seconds < float("inf"):
        raise InvalidOrderError(
            "retention_seconds", seconds, "must be a finite number of seconds >= 0"
        )
    return timedelta(seconds=seconds)


def _checked_source(source: QuoteSource | None) -> QuoteSource | None:
    if source is not None and not isinstance(source, QuoteSource):
        raise InvalidOrderError("quote_source", source, "must have a prices() method")
    return source


def _damaged(path: Path, error: Exception) -> BrokerError:
    return BrokerError(
        f"paper broker state {os.fspath(path)!r} cannot be loaded ({error!r}): it is "
        "damaged, or was not written by PaperBroker.save of this version"
    )
