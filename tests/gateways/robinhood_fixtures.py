"""Builders and a small stateful fake of Robinhood's HTTP API, for the gateway and auth tests.

The fake sits behind `responses`, so the real `requests` session of robin_stocks carries every
call and nothing reaches the network (an unregistered URL raises `ConnectionError`). Order
documents follow the field list of the reference (§3.2): every number a decimal string,
`average_price` null before the first fill, `cancel` a URL while cancellable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
import responses
from robin_stocks.robinhood import helper as rh_helper

from orders.gateways.robinhood import RobinhoodGateway
from orders.lifecycle import Order

API = "https://api.robinhood.com"
ACCOUNT_NUMBER = "5QR12345"
ACCOUNT_URL = f"{API}/accounts/{ACCOUNT_NUMBER}/"
ACCOUNTS_URL = f"{API}/accounts/"
INSTRUMENTS_URL = f"{API}/instruments/"
QUOTES_URL = f"{API}/quotes/"
ORDERS_URL = f"{API}/orders/"
TOKEN_URL = f"{API}/oauth2/token/"
POSITIONS_URL = f"{API}/positions/"
WALL_START = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
INSTRUMENT_IDS = {
    "AAPL": "450dfc6d-5510-4d40-abfb-f633b7d9be3e",
    "PENY": "0b7a1c33-1f8e-4f0e-9d2c-5c6c2a1f0a11",
    "OIS": "8c1c4a5e-2f3d-4b2a-9e1f-7d6c5b4a3f22",
    "DEAD": "d3ad0000-0000-4000-8000-00000000dead",
}


def instrument_url(symbol: str) -> str:
    """The instrument URL Robinhood uses for `symbol` in order documents."""
    return f"{INSTRUMENTS_URL}{INSTRUMENT_IDS[symbol]}/"


def instrument_json(symbol: str, **overrides: Any) -> dict[str, Any]:
    """An instrument document as `GET /instruments/?symbol=` returns it."""
    doc: dict[str, Any] = {
        "id": INSTRUMENT_IDS[symbol],
        "url": instrument_url(symbol),
        "symbol": symbol,
        "state": "active",
        "tradeable": True,
        "tradability": "tradable",
        "min_tick_size": None,
        "type": "stock",
        "simple_name": symbol.title(),
    }
    doc.update(overrides)
    return doc


def order_json(
    *,
    order_id: str = "ord-0001",
    ref_id: str | None = "client-0001",
    state: str = "unconfirmed",
    side: str = "buy",
    quantity: str = "3.00000000",
    price: str | None = "190.13000000",
    symbol: str = "AAPL",
    cumulative_quantity: str = "0.00000",
    average_price: str | None = None,
    executions: list[dict[str, Any]] | None = None,
    updated_at: str = "2026-03-02T15:30:00.123456Z",
    **extra: Any,
) -> dict[str, Any]:
    """A Robinhood stock order document with every core field and a few newer ones."""
    terminal = state in {"filled", "cancelled", "canceled", "rejected", "failed"}
    doc: dict[str, Any] = {
        "id": order_id,
        "ref_id": ref_id,
        "url": f"{ORDERS_URL}{order_id}/",
        "account": ACCOUNT_URL,
        "user_uuid": "f0a0b0c0-0000-4000-8000-000000000001",
        "position": f"{API}/positions/{ACCOUNT_NUMBER}/{INSTRUMENT_IDS[symbol]}/",
        "cancel": None if terminal else f"{ORDERS_URL}{order_id}/cancel/",
        "instrument": instrument_url(symbol),
        "instrument_id": INSTRUMENT_IDS[symbol],
        "cumulative_quantity": cumulative_quantity,
        "average_price": average_price,
        "fees": "0.00",
        "state": state,
        "pending_cancel_open_agent": None,
        "type": "limit",
        "side": side,
        "time_in_force": "gfd",
        "trigger": "immediate",
        "price": price,
        "stop_price": None,
        "quantity": quantity,
        "reject_reason": None,
        "created_at": "2026-03-02T15:30:00.000000Z",
        "updated_at": updated_at,
        "last_transaction_at": updated_at,
        "executions": executions or [],
        "extended_hours": False,
        "market_hours": "regular_hours",
        "override_dtbp_checks": False,
        "override_day_trade_checks": False,
        "response_category": None,
        "dollar_based_amount": None,
        "total_notional": {"amount": "570.39", "currency_code": "USD", "currency_id": "1072"},
        "executed_notional": None,
        "order_form_version": 4,
        "preset_percent_limit": "0.05" if side == "buy" else None,
    }
    doc.update(extra)
    return doc


def execution_json(exec_id: str, quantity: str, price: str, timestamp: str) -> dict[str, Any]:
    """One item of an order's `executions[]`."""
    return {
        "id": exec_id,
        "quantity": quantity,
        "price": price,
        "timestamp": timestamp,
        "settlement_date": "2026-03-04",
        "rounded_notional": "190.13",
        "trade_execution_date": "2026-03-02",
    }


def make_order(
    symbol: str = "AAPL",
    side: str = "buy",
    quantity: str | int | Decimal = 3,
    limit_price: str | Decimal = "190.13",
    *,
    client_order_id: str = "client-0001",
    time_in_force: str = "gfd",
) -> Order:
    """An `Order` as the manager would hand it to a gateway."""
    return Order(
        symbol,
        side,
        quantity,
        limit_price,
        client_order_id=client_order_id,
        time_in_force=time_in_force,
    )


class FakeTime:
    """A monotonic clock that moves only when `sleep` is called, and a log of the sleeps."""

    def __init__(self) -> None:
        self.monotonic_now = 1_000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.monotonic_now += seconds

    def monotonic(self) -> float:
        return self.monotonic_now

    def wall(self) -> datetime:
        return WALL_START + timedelta(seconds=self.monotonic_now - 1_000.0)


def make_gateway(clock: FakeTime, **options: Any) -> RobinhoodGateway:
    """A gateway on the fake clock, with the rate limiter off unless a test turns it on."""
    options.setdefault("request_limits", ())
    options.setdefault("order_limits", ())
    options.setdefault("seed", 7)
    return RobinhoodGateway(sleep=clock.sleep, clock=clock.monotonic, now=clock.wall, **options)


@contextmanager
def robin_stocks_state(*, logged_in: bool) -> Iterator[None]:
    """Set robin_stocks' login flag (and a fake bearer token); restore both afterwards."""
    saved_flag = rh_helper.LOGGED_IN
    saved_headers = dict(rh_helper.SESSION.headers)
    rh_helper.set_login_state(logged_in)
    if logged_in:
        rh_helper.update_session("Authorization", "Bearer test-token")
    try:
        yield
    finally:
        rh_helper.set_login_state(saved_flag)
        rh_helper.SESSION.headers.clear()
        rh_helper.SESSION.headers.update(saved_headers)


Fault = Callable[[], Any] | None


def timeout() -> requests.exceptions.ReadTimeout:
    return requests.exceptions.ReadTimeout("read timed out (fake)")


class FakeRobinhood:
    """Robinhood as far as the gateway sees it: accounts, instruments, quotes and orders.

    `post_faults` is consumed one item per order POST: None answers normally; "accept-then-
    timeout" creates the order and then times out (the answer is lost); an exception instance
    is raised before anything is created; an `(status, body)` tuple is answered instead.
    `page_fault` maps a page number (1-based) to a `(status, body)` answer for list GETs;
    `list_failures` makes the next N list GETs answer 500.
    It deduplicates by `ref_id` as Robinhood does (PR #40's answer).
    """

    def __init__(self, rsps: responses.RequestsMock, *, page_size: int = 20) -> None:
        self.rsps = rsps
        self.page_size = page_size
        self.orders: dict[str, dict[str, Any]] = {}  # id -> document, insertion ordered
        self.post_faults: list[Any] = []
        self.page_fault: dict[int, tuple[int, str]] = {}
        self.list_failures = 0  # the next N list GETs answer 500, then the list heals
        self._registered: set[str] = set()
        self.instruments = {s: instrument_json(s) for s in ("AAPL", "PENY")}
        self.instruments["OIS"] = instrument_json("OIS", min_tick_size="0.0500")
        self.instruments["DEAD"] = instrument_json(
            "DEAD", tradability="untradable", state="inactive", tradeable=False
        )
        self.quotes = {"AAPL": ("190.15", "190.11"), "PENY": ("0.1236", "0.1230")}
        self.quotes["OIS"] = ("10.05", "10.00")
        self._next_id = 1
        rsps.add(
            responses.GET,
            f"{API}/accounts/",
            json={"next": None, "results": [{"url": ACCOUNT_URL, "account_number": "5QR12345"}]},
        )
        rsps.add_callback(responses.GET, INSTRUMENTS_URL, callback=self._instrument)
        rsps.add_callback(responses.GET, QUOTES_URL, callback=self._quote)
        rsps.add_callback(responses.POST, ORDERS_URL, callback=self._post)
        rsps.add_callback(responses.GET, ORDERS_URL, callback=self._list)
        for symbol in INSTRUMENT_IDS:
            rsps.add_callback(responses.GET, instrument_url(symbol), callback=self._by_url)

    # -- helpers for tests ------------------------------------------------------------------

    def add_order(self, **fields: Any) -> dict[str, Any]:
        """Put an order document straight into the account (e.g. placed by another session)."""
        doc = order_json(**fields)
        self.orders[doc["id"]] = doc
        self._register_order(doc["id"])
        return doc

    def posts(self) -> list[dict[str, str]]:
        """The form bodies of every order POST received, decoded."""
        return [
            dict(parse_qsl(str(call.request.body)))
            for call in self.rsps.calls
            if call.request.method == "POST" and urlsplit(call.request.url).path == "/orders/"
        ]

    # -- callbacks --------------------------------------------------------------------------

    def _instrument(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        symbol = dict(parse_qsl(urlsplit(str(request.url)).query)).get("symbol", "")
        found = self.instruments.get(symbol)
        return _ok({"next": None, "results": [found] if found else []})

    def _by_url(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        for doc in self.instruments.values():
            if doc["url"] == request.url:
                return _ok(doc)
        return 404, {}, json.dumps({"detail": "Not found."})

    def _quote(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        symbol = dict(parse_qsl(urlsplit(str(request.url)).query)).get("symbols", "")
        ask, bid = self.quotes[symbol]
        return _ok({"results": [{"symbol": symbol, "ask_price": ask, "bid_price": bid}]})

    def _post(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        fault = self.post_faults.pop(0) if self.post_faults else None
        if isinstance(fault, BaseException):
            raise fault
        if isinstance(fault, tuple):
            status, body = fault
            return status, {}, body
        form = dict(parse_qsl(str(request.body)))
        if any(doc["ref_id"] == form["ref_id"] for doc in self.orders.values()):
            return 400, {}, json.dumps({"ref_id": ["Order with this ref_id already exists."]})
        order_id = f"ord-{self._next_id:04d}"
        self._next_id += 1
        doc = order_json(
            order_id=order_id,
            ref_id=form["ref_id"],
            side=form["side"],
            quantity=form["quantity"],
            price=form["price"],
            symbol=form["symbol"],
        )
        self.orders[order_id] = doc
        self._register_order(order_id)
        if fault == "accept-then-timeout":
            raise timeout()
        return 201, {}, json.dumps(doc)

    def _register_order(self, order_id: str) -> None:
        url = f"{ORDERS_URL}{order_id}/"
        if url not in self._registered:
            self._registered.add(url)

            def current(_: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
                return _ok(self.orders[order_id])

            self.rsps.add_callback(responses.GET, url, callback=current)

    def _list(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        if self.list_failures > 0:
            self.list_failures -= 1
            return 500, {}, "upstream unavailable"
        query = dict(parse_qsl(urlsplit(str(request.url)).query))
        offset = int(query.pop("cursor", "0"))
        page_number = offset // self.page_size + 1
        if page_number in self.page_fault:
            status, body = self.page_fault[page_number]
            return status, {}, body
        docs = list(self.orders.values())
        since = query.get("updated_at[gte]")
        if since is not None:
            docs = [d for d in docs if _when(d["updated_at"]) >= _when(since)]
        page = docs[offset : offset + self.page_size]
        more = offset + self.page_size < len(docs)
        next_url = (
            f"{ORDERS_URL}?{urlencode({**query, 'cursor': offset + self.page_size})}"
            if more
            else None
        )
        return _ok({"previous": None, "next": next_url, "results": page})


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _ok(body: Mapping[str, Any]) -> tuple[int, dict[str, str], str]:
    return 200, {"Content-Type": "application/json"}, json.dumps(body)


def request_count(rsps: responses.RequestsMock) -> int:
    """Requests that reached the HTTP layer so far."""
    return len(rsps.calls)
