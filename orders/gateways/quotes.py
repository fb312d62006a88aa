"""Where the paper broker's prices come from: what a `PaperBroker(quote_source=...)` asks before
every `match()`.

A paper fill is only as honest as the price it is matched against, so paper mode offers three
sources, one per question a user asks of it:

- `ReferenceQuotes`: "does my order flow work?" The price of a symbol is the last reference
  price a strategy gave, so an order priced with a marketable offset fills at the next match.
- `CsvQuotes`: "what would this price path have done?" A file of `timestamp,symbol,price`
  rows replayed against the bot's clock.
- `RobinhoodQuotes`: "what would happen today?" Live last-trade prices read from Robinhood
  with the bot's session. It only ever reads quotes; orders stay on the simulated broker.

Every price is read exactly (never through a binary float), and a bad CSV file is refused as a
whole, naming the file and line, before the bot trades on any of it.
"""

from __future__ import annotations

import bisect
import csv
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from orders.errors import AuthenticationError, BrokerError, ConfigError, InvalidOrderError
from orders.model import validate_symbol

if TYPE_CHECKING:
    import os

    from orders.gateways._robinhood_transport import RobinhoodTransport, SessionRenewer

__all__ = ["CsvQuotes", "QuoteSource", "ReferenceQuotes", "RobinhoodQuotes"]


QUOTES_KEY: Final = "order_management.paper.quotes"
CSV_HEADER: Final = ("timestamp", "symbol", "price")
_EXAMPLE_ROW: Final = "2026-01-05T14:30:00Z,AAPL,187.40"
# A plain decimal numeral, at most 4 decimals (the finest tick): an exponent, NaN, Infinity or
# a sign is how a float-formatted price shows, and none of them is a price someone wrote.
_PRICE: Final = re.compile(r"(\d{1,10})(\.\d{1,4})?")


@runtime_checkable
class QuoteSource(Protocol):
    """A price per symbol at a moment; what the simulated market matches resting orders with."""

    def prices(self, symbols: Collection[str], now: datetime) -> Mapping[str, Decimal | None]:
        """Prices of `symbols` at `now`; a symbol left out keeps the broker's price, None
        removes it (the source knows the symbol has no price yet)."""
        ...


class ReferenceQuotes:
    """The last reference price a strategy gave for each symbol.

    The bot notes every `OrderRequest`'s reference price here before it submits the order, so
    with the default offsets (a buy above the reference, a sell below it) an order fills at the
    reference price on the next match, as a marketable order does.
    """

    def __init__(self) -> None:
        self._prices: dict[str, Decimal] = {}
        self._lock = threading.Lock()

    def note(self, symbol: str, price: Decimal) -> None:
        with self._lock:
            self._prices[symbol] = price

    def prices(self, symbols: Collection[str], now: datetime) -> Mapping[str, Decimal | None]:
        with self._lock:
            return {s: self._prices[s] for s in symbols if s in self._prices}


class CsvQuotes:
    """A price path from a CSV file (`timestamp,symbol,price`), replayed against a clock.

    A symbol's price at `now` is its last row at or before `now`; before its first row it has
    none. Timestamps are ISO 8601 with a UTC offset (`Z`), rows in time order. The whole file is
    read and checked when the source is built: a bad row is a `ConfigError` naming the file and
    the line, so a bot never trades on half a price path.
    """

    def __init__(self, path: str | os.PathLike[str], *, key_path: str = QUOTES_KEY) -> None:
        self.path = Path(path)
        self._key_path = key_path
        self._times: dict[str, list[datetime]] = {}
        self._prices: dict[str, list[Decimal]] = {}
        self._load()

    def prices(self, symbols: Collection[str], now: datetime) -> Mapping[str, Decimal | None]:
        result: dict[str, Decimal | None] = {}
        for symbol in symbols:
            times = self._times.get(symbol)
            if times is None:
                result[symbol] = None
                continue
            index = bisect.bisect_right(times, now) - 1
            result[symbol] = None if index < 0 else self._prices[symbol][index]
        return result

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._times)

    def _refuse(self, line: int | None, problem: str) -> ConfigError:
        where = f"{self.path}" if line is None else f"{self.path} line {line}"
        return ConfigError(self._key_path, f"{where}: {problem}")

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise self._refuse(None, "is not UTF-8 text; save the file as UTF-8") from None
        except OSError as exc:
            raise self._refuse(
                None, f"cannot read the quote file ({exc.strerror or exc}); check the path"
            ) from None
        rows = csv.reader(text.splitlines())
        header = next(rows, None)
        if header is None or tuple(h.strip().lower() for h in header) != CSV_HEADER:
            raise self._refuse(
                1,
                f"the header must be {','.join(CSV_HEADER)}, not {','.join(header or [])!r}; "
                f"then one row per price, e.g. {_EXAMPLE_ROW}",
            )
        previous: datetime | None = None
        previous_line = 1
        for line, row in enumerate(rows, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue  # a blank line, e.g. at the end
            if len(row) != len(CSV_HEADER):
                raise self._refuse(
                    line,
                    f"has {len(row)} column(s), not 3 (timestamp,symbol,price), "
                    f"e.g. {_EXAMPLE_ROW}",
                )
            stamp, symbol, price = (cell.strip() for cell in row)
            when = self._timestamp(line, stamp)
            if previous is not None and when < previous:
                raise self._refuse(
                    line,
                    f"{stamp} is earlier than line {previous_line}; sort the rows by time",
                )
            try:
                symbol = validate_symbol(symbol)
            except InvalidOrderError as exc:
                raise self._refuse(line, f"symbol {symbol!r}: {exc.problem}") from None
            self._times.setdefault(symbol, []).append(when)
            self._prices.setdefault(symbol, []).append(self._price(line, price))
            previous, previous_line = when, line
        if not self._times:
            raise self._refuse(None, f"has no price rows; add rows such as {_EXAMPLE_ROW}")

    def _timestamp(self, line: int, text: str) -> datetime:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise self._refuse(
                line, f"timestamp {text!r} is not ISO 8601, e.g. 2026-01-05T14:30:00Z"
            ) from None
        if when.tzinfo is None or when.utcoffset() is None:
            raise self._refuse(
                line, f"timestamp {text!r} has no UTC offset; write it as {text}Z if it is UTC"
            )
        return when

    def _price(self, line: int, text: str) -> Decimal:
        if _PRICE.fullmatch(text) is None:
            raise self._refuse(
                line,
                f"price {text!r} is not a plain decimal price (digits, at most 4 decimals, "
                "no exponent, sign, NaN or Infinity), e.g. 187.40",
            )
        price = Decimal(text)
        if price <= 0:
            raise self._refuse(line, f"price {text!r} must be greater than 0")
        return price


class RobinhoodQuotes:
    """Live last-trade prices from Robinhood's quotes endpoint, over robin_stocks' session.

    Read-only by construction: the one request it makes is `GET /quotes/`. It needs a logged-in
    session (`RobinhoodAuth.login()`); without one it raises `AuthenticationError` before any
    request. Prices are asked for once per `min_interval` seconds at most and reused in between,
    so a fast sync loop does not trip Robinhood's throttle. A 401 logs in again once (`auth`).
    """

    def __init__(
        self,
        *,
        auth: SessionRenewer | None = None,
        timeout: tuple[float, float] = (3.05, 16.0),
        min_interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth = auth
        self._timeout = timeout
        self._min_interval = min_interval
        self._monotonic = monotonic
        self._last: tuple[float, frozenset[str], dict[str, Decimal | None]] | None = None
        self._transport_made: RobinhoodTransport | None = None

    def prices(self, symbols: Collection[str], now: datetime) -> Mapping[str, Decimal | None]:
        wanted = frozenset(symbols)
        if not wanted:
            return {}
        moment = self._monotonic()
        last = self._last
        if last is not None and wanted <= last[1] and moment - last[0] < self._min_interval:
            return {s: last[2][s] for s in wanted}
        body = self._get(sorted(wanted))
        fetched = _parse_quotes(body, wanted)
        self._last = (moment, wanted, fetched)
        return fetched

    def _get(self, symbols: list[str]) -> object:
        # Imported here: the Robinhood stack loads only when live quotes are configured.
        from robin_stocks.robinhood import helper as rh_helper  # noqa: PLC0415
        from robin_stocks.robinhood import urls as rh_urls  # noqa: PLC0415

        from orders.gateways.base import AmbiguousAttempt  # noqa: PLC0415

        if not rh_helper.LOGGED_IN:
            raise AuthenticationError(
                "no Robinhood session for live paper quotes: call RobinhoodAuth(...).login() "
                'first, or set order_management.paper.quotes to "reference" (nothing was sent)'
            )
        try:
            reply = self._transport().request(
                "GET", rh_urls.quotes_url(), params={"symbols": ",".join(symbols)}
            )
        except AmbiguousAttempt as exc:
            raise BrokerError(
                f"Robinhood quotes could not be read ({exc}); the paper market keeps its last "
                "prices and asks again at the next sync"
            ) from None
        if not reply.ok:
            raise BrokerError(
                f"Robinhood answered {reply.status} to GET /quotes/; the paper market keeps its "
                "last prices and asks again at the next sync"
            )
        return reply.body

    def _transport(self) -> RobinhoodTransport:
        """The gateway's transport (login check, one re-login on a 401, JSON answers), with
        one attempt a call and no request budget of its own: `min_interval` paces the quotes,
        and a failed read is simply asked again at the next sync."""
        if self._transport_made is None:
            from orders.gateways._http import RetryPolicy  # noqa: PLC0415
            from orders.gateways._ratelimit import RateLimiter  # noqa: PLC0415
            from orders.gateways._robinhood_transport import RobinhoodTransport  # noqa: PLC0415

            unlimited = RateLimiter(())
            self._transport_made = RobinhoodTransport(
                retry=RetryPolicy(max_attempts=1),
                requests=unlimited,
                orders=unlimited,
                timeout=self._timeout,
                auth=self._auth,
            )
        return self._transport_made


def _parse_quotes(body: object, wanted: frozenset[str]) -> dict[str, Decimal | None]:
    """Last-trade prices by symbol; a symbol Robinhood does not quote has none."""
    results = body.get("results") if isinstance(body, Mapping) else None
    if not isinstance(results, list):
        raise BrokerError("Robinhood's quotes answer has no results list; report it")
    found: dict[str, Decimal | None] = dict.fromkeys(wanted)
    for item in results:
        if not isinstance(item, Mapping):
            continue  # Robinhood answers null for a symbol it does not know
        symbol = item.get("symbol")
        raw = item.get("last_trade_price")
        if symbol not in wanted or not isinstance(raw, str):
            continue
        try:
            price = Decimal(raw)
        except ArithmeticError:
            raise BrokerError(f"Robinhood's price {raw!r} for {symbol} is not a number") from None
        found[symbol] = price if price.is_finite() and price > 0 else None
    return found
