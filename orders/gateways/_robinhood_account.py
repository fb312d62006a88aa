"""Buying power and positions read from Robinhood, for the safety checks' `AccountData`.

Read exactly (decimal strings to Decimal) and whole: a position that names no known
instrument makes the positions unreadable rather than silently smaller.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from robin_stocks.robinhood import urls as rh_urls

from orders.errors import BrokerError
from orders.gateways._robinhood_catalog import Catalog
from orders.gateways._robinhood_pages import Get, results
from orders.gateways._robinhood_wire import wire_decimal

__all__ = ["buying_power", "positions"]


def buying_power(get: Get, catalog: Catalog) -> Decimal:
    """The account's buying power (one request once the account is known)."""
    body = get(catalog.account(), None).body
    value = body.get("buying_power") if isinstance(body, Mapping) else None
    try:
        return wire_decimal(value, "buying_power")
    except ValueError as exc:
        raise BrokerError(f"Robinhood's account answer: {exc}; report it") from None


def positions(get: Get, catalog: Catalog, account_number: str | None) -> dict[str, Decimal]:
    """Shares held per symbol (one request per page, plus one per new instrument)."""
    held: dict[str, Decimal] = {}
    url = rh_urls.positions_url(account_number=account_number)
    for raw in results(get, url, {"nonzero": "true"}, "positions"):
        if not isinstance(raw, Mapping):
            raise BrokerError("a Robinhood position is not a JSON object; report it")
        try:
            quantity = wire_decimal(raw.get("quantity"), "quantity")
        except ValueError as exc:
            raise BrokerError(f"a Robinhood position: {exc}; report it") from None
        symbol = catalog.symbol_for(raw.get("instrument"))
        if symbol is None:
            raise BrokerError(
                f"a Robinhood position of {quantity} shares names no known instrument "
                f"({raw.get('instrument')!r}); positions cannot be read; report it"
            )
        if quantity:
            held[symbol] = held.get(symbol, Decimal(0)) + quantity
    return held
