"""What Robinhood calls things: the account's URL, instruments by symbol and by URL, quotes.

Robinhood's orders name their account and instrument by URL and carry no symbol, so these
lookups sit in front of every order and every listing. The account and every instrument seen
are cached for the gateway's life (they do not change while a bot runs): once known, a limit
order costs its quote and its POST, and a listing costs one request per page plus one per
instrument not seen before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
from robin_stocks.robinhood import urls as rh_urls

from orders.errors import BrokerError
from orders.gateways._robinhood_pages import Get
from orders.gateways._robinhood_transport import API, Refused, path
from orders.gateways._robinhood_wire import optional_decimal

__all__ = ["Catalog", "Instrument", "LookupFailed"]


class LookupFailed(BrokerError):
    """A lookup before the POST failed: nothing was sent, the outcome is still Unknown."""


@attrs.frozen
class Instrument:
    """One Robinhood instrument, as much of it as an order needs."""

    url: str
    symbol: str
    tradable: bool
    why_not: str
    min_tick_size: Decimal | None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Instrument | None:
        """None when the answer lacks a Robinhood URL or a symbol (not an instrument)."""
        url = raw.get("url")
        symbol = raw.get("symbol")
        if not isinstance(url, str) or not url.startswith(API) or not isinstance(symbol, str):
            return None
        tradability = raw.get("tradability")
        state = raw.get("state")
        tradable = (
            tradability == "tradable" and state == "active" and raw.get("tradeable") is not False
        )
        try:
            tick = optional_decimal(raw.get("min_tick_size"), "min_tick_size")
        except ValueError:
            tick = None  # an unreadable tick only loses the extra check, not the order
        return cls(
            url=url,
            symbol=symbol,
            tradable=tradable,
            why_not=f"tradability={tradability!r}, state={state!r}",
            min_tick_size=tick,
        )


class Catalog:
    """Cached lookups over `get`; `note` records an order-level problem (one odd instrument
    must not stop every sync)."""

    def __init__(self, get: Get, *, account_number: str | None, note: Callable[[str], None]):
        self._get = get
        self._account_number = account_number
        self._note = note
        self._account_url: str | None = None
        self._instruments: dict[str, Instrument | None] = {}
        self._symbols_by_url: dict[str, str] = {}

    def account(self) -> str:
        """The account's URL, as order forms carry it."""
        if self._account_url is None:
            body = self._lookup(rh_urls.account_profile_url(self._account_number), "the account")
            self._account_url = _account_url(body, chosen=self._account_number is not None)
        return self._account_url

    def instrument(self, symbol: str) -> Instrument | None:
        """The instrument of `symbol`; None when Robinhood does not know the symbol."""
        if symbol in self._instruments:
            return self._instruments[symbol]
        body = self._lookup(rh_urls.instruments_url(), f"the instrument {symbol}", symbol=symbol)
        found = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(found, list):
            raise LookupFailed(f"Robinhood's instrument answer for {symbol} is unreadable")
        match = next(
            (r for r in found if isinstance(r, Mapping) and r.get("symbol") == symbol), None
        )
        instrument = None if match is None else Instrument.from_wire(match)
        self._instruments[symbol] = instrument
        if instrument is not None:
            self._symbols_by_url[instrument.url] = instrument.symbol
        return instrument

    def quote(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """(ask, bid) now: one request feeds both (robin_stocks spends two)."""
        body = self._lookup(rh_urls.quotes_url(), f"the quote for {symbol}", symbols=symbol)
        found = body.get("results") if isinstance(body, Mapping) else None
        quote = found[0] if isinstance(found, list) and found else None
        if not isinstance(quote, Mapping):
            raise LookupFailed(f"Robinhood's quote answer for {symbol} is unreadable")
        try:
            ask = optional_decimal(quote.get("ask_price"), "ask_price")
            bid = optional_decimal(quote.get("bid_price"), "bid_price")
        except ValueError as exc:
            raise LookupFailed(f"Robinhood's quote for {symbol} is unreadable: {exc}") from None
        return ask, bid

    def symbol_for(self, instrument_url: object) -> str | None:
        """The symbol of an order's instrument; None (and a problem noted) when Robinhood
        refuses the instrument, e.g. a delisted one: the order is still applied by its ids.
        A transport failure still raises, so the listing is retried whole."""
        if not isinstance(instrument_url, str):
            return None
        cached = self._symbols_by_url.get(instrument_url)
        if cached is not None:
            return cached
        if not instrument_url.startswith(API):
            self._note(f"instrument url {instrument_url!r} is not Robinhood's")
            return None
        try:
            body = self._get(instrument_url, None).body
        except Refused as exc:
            self._note(f"instrument {path(instrument_url)} unknown: {exc}")
            return None
        symbol = body.get("symbol") if isinstance(body, Mapping) else None
        if not isinstance(symbol, str):
            self._note(f"instrument {path(instrument_url)} has no symbol")
            return None
        self._symbols_by_url[instrument_url] = symbol
        return symbol

    def _lookup(self, url: str, what: str, **params: str) -> Any:
        try:
            return self._get(url, params or None).body
        except BrokerError as exc:
            raise LookupFailed(f"could not read {what} from Robinhood: {exc}") from None


def _account_url(body: Any, *, chosen: bool) -> str:
    """The account URL in an account answer: the chosen account's, or the login's only one."""
    if not chosen:
        found = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(found, list) or not found:
            raise BrokerError(
                "Robinhood lists no account for this login; check the account in the app"
            )
        if len(found) > 1:
            raise BrokerError(
                f"this login has {len(found)} Robinhood accounts; choose one with "
                "RobinhoodGateway(account_number=...)"
            )
        body = found[0]
    url = body.get("url") if isinstance(body, Mapping) else None
    if not isinstance(url, str) or not url.startswith(API):
        raise BrokerError("Robinhood's account answer has no account url; report it")
    return url
