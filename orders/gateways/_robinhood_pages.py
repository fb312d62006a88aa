"""Robinhood's paginated lists, read whole or not at all.

robin_stocks truncates a listing silently when a page fails; here a page that cannot be read
after every retry raises `BrokerError`, so a caller never mistakes half a list for all of it.
A `next` link that loops, or leaves Robinhood's API (the bearer token would follow it), is
refused too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Final

from robin_stocks.robinhood import urls as rh_urls

from orders.errors import BrokerError
from orders.gateways._http import Reply
from orders.gateways._robinhood_form import wire_time
from orders.gateways._robinhood_transport import API

__all__ = ["Get", "order_pages", "results"]

# A GET that retries and raises BrokerError unless Robinhood answers 2xx.
Get = Callable[[str, Mapping[str, str] | None], Reply]

_MAX_PAGES: Final = 10_000


def order_pages(get: Get, account_number: str | None, since: datetime | None) -> Iterator[Any]:
    """Raw orders updated since `since` (None: all of them), page by page."""
    params: dict[str, str] = {}
    if account_number is not None:
        params["account_numbers"] = account_number
    if since is not None:
        params["updated_at[gte]"] = wire_time(since)
    return results(get, rh_urls.orders_url(), params, "orders")


def results(get: Get, first: str, params: dict[str, str], what: str) -> Iterator[Any]:
    """Every item of a paginated Robinhood list; a failed page raises BrokerError."""
    url: str | None = first
    seen: set[str] = set()
    while url is not None:
        if url in seen or len(seen) >= _MAX_PAGES:
            raise BrokerError(f"Robinhood's {what} pages loop at {url}; report it")
        seen.add(url)
        body = get(url, params or None).body
        params = {}  # the `next` url already carries the query
        items = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(items, list):
            raise BrokerError(f"a page of Robinhood {what} has no results list; report it")
        yield from items
        url = body.get("next")
        if url is not None and (not isinstance(url, str) or not url.startswith(API)):
            raise BrokerError(f"Robinhood's next page {url!r} is not on its API; report it")
