"""Broker requests per operation, counted at the HTTP layer, ours beside robin_stocks' own.

Every request goes through robin_stocks' real `requests` session and is answered by
`responses` (an unregistered URL raises instead of reaching the network), so the count is
what Robinhood would see. The "broker requests" figure: target <= 2 per limit order
once the account and instrument are known, and 1 per page (+1 per new instrument) per sync.

Run: uv run python bench/bench_requests.py
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
import responses
import robin_stocks.robinhood as rh
from robin_stocks.robinhood import helper as rh_helper

from orders.gateways.robinhood import RobinhoodGateway
from orders.lifecycle import Order

API = "https://api.robinhood.com"
ACCOUNT_URL = f"{API}/accounts/5QR12345/"
INSTRUMENT_URL = f"{API}/instruments/450dfc6d-5510-4d40-abfb-f633b7d9be3e/"
ORDERS_URL = f"{API}/orders/"
NOW = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
PAGE_SIZE = 20
HISTORY = 2_000  # orders in the account's history, all filled or cancelled long ago
OPEN = 45  # open orders, updated in the last hour
ORDERS_MEASURED = 10


class FakeClock:
    """Monotonic time that moves only when slept: the rate limiter paces without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def order_doc(n: int, *, state: str, updated_at: datetime) -> dict[str, Any]:
    return {
        "id": f"ord-{n:05d}",
        "ref_id": f"ref-{n:05d}",
        "url": f"{ORDERS_URL}ord-{n:05d}/",
        "account": ACCOUNT_URL,
        "instrument": INSTRUMENT_URL,
        "cancel": None if state in {"filled", "cancelled"} else f"{ORDERS_URL}ord-{n:05d}/cancel/",
        "state": state,
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "trigger": "immediate",
        "price": "190.13000000",
        "quantity": "1.00000000",
        "cumulative_quantity": "1.00000000" if state == "filled" else "0.00000000",
        "average_price": "190.13000000" if state == "filled" else None,
        "executions": [],
        "reject_reason": None,
        "updated_at": updated_at.isoformat().replace("+00:00", "Z"),
    }


def build_account() -> list[dict[str, Any]]:
    old = [
        order_doc(n, state="filled", updated_at=NOW - timedelta(days=400 - n // 10))
        for n in range(HISTORY)
    ]
    recent = [
        order_doc(HISTORY + n, state="confirmed", updated_at=NOW - timedelta(minutes=30))
        for n in range(OPEN)
    ]
    return recent + old  # newest first, as Robinhood lists them


def register(rsps: responses.RequestsMock, orders: list[dict[str, Any]]) -> None:
    """Robinhood's endpoints that an order and a sync touch."""

    def listing(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = dict(parse_qsl(urlsplit(str(request.url)).query))
        offset = int(query.pop("cursor", "0"))
        docs = orders
        if "updated_at[gte]" in query:
            since = datetime.fromisoformat(query["updated_at[gte]"])
            docs = [d for d in orders if datetime.fromisoformat(d["updated_at"]) >= since]
        more = offset + PAGE_SIZE < len(docs)
        page = {
            "next": f"{ORDERS_URL}?{urlencode({**query, 'cursor': offset + PAGE_SIZE})}"
            if more
            else None,
            "results": docs[offset : offset + PAGE_SIZE],
        }
        return 200, {}, json.dumps(page)

    counter = iter(range(10**6))

    def create(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        form = dict(parse_qsl(str(request.body)))
        doc = order_doc(900_000 + next(counter), state="unconfirmed", updated_at=NOW)
        doc["ref_id"] = form.get("ref_id") or doc["ref_id"]
        return 201, {}, json.dumps(doc)

    rsps.add(responses.GET, f"{API}/accounts/", json={"results": [{"url": ACCOUNT_URL}]})
    rsps.add(
        responses.GET,
        f"{API}/instruments/",
        json={
            "results": [
                {
                    "url": INSTRUMENT_URL,
                    "symbol": "AAPL",
                    "state": "active",
                    "tradability": "tradable",
                    "tradeable": True,
                    "min_tick_size": None,
                }
            ]
        },
    )
    rsps.add(responses.GET, INSTRUMENT_URL, json={"url": INSTRUMENT_URL, "symbol": "AAPL"})
    rsps.add(
        responses.GET,
        f"{API}/quotes/",
        json={"results": [{"symbol": "AAPL", "ask_price": "190.15", "bid_price": "190.11"}]},
    )
    rsps.add_callback(responses.POST, ORDERS_URL, callback=create)
    rsps.add_callback(responses.GET, ORDERS_URL, callback=listing)


def counted(rsps: responses.RequestsMock, action: Any) -> int:
    before = len(rsps.calls)
    action()
    return len(rsps.calls) - before


def main() -> None:
    orders = build_account()
    clock = FakeClock()
    rh_helper.set_login_state(True)
    rh.set_output(io.StringIO())  # robin_stocks' progress prints are not figures
    with (
        responses.RequestsMock(assert_all_requests_are_fired=False) as rsps,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        register(rsps, orders)
        gateway = RobinhoodGateway(
            sleep=clock.sleep, clock=clock.monotonic, now=lambda: NOW, seed=1
        )

        def place(first: int, count: int) -> None:
            for n in range(first, first + count):
                gateway.submit_limit(Order("AAPL", "buy", 1, "190.13", client_order_id=f"b-{n}"))

        def place_with_robin_stocks() -> None:
            for _ in range(ORDERS_MEASURED):
                # A str price: robin_stocks turns it into a float itself; we never make one.
                rh.order_buy_limit("AAPL", 1, "190.13")

        cold_order = counted(rsps, lambda: place(0, 1))
        warm_orders = counted(rsps, lambda: place(1, ORDERS_MEASURED))
        rs_orders = counted(rsps, place_with_robin_stocks)
        sync_since = NOW - timedelta(hours=1)
        fresh = RobinhoodGateway(sleep=clock.sleep, clock=clock.monotonic, now=lambda: NOW)
        sync_cold = counted(rsps, lambda: fresh.updated_since(sync_since))
        synced = fresh.updated_since(sync_since)
        sync_warm = counted(rsps, lambda: fresh.updated_since(sync_since))
        open_orders: list[Any] = []
        rs_open = counted(rsps, lambda: open_orders.extend(rh.get_all_open_stock_orders()))
    rh_helper.set_login_state(False)

    pages = -(-OPEN // PAGE_SIZE)
    history_pages = -(-(HISTORY + OPEN) // PAGE_SIZE)
    assert len(synced) == OPEN and len(open_orders) == OPEN
    lines = [
        f"broker requests, ours, limit order (account+instrument known): "
        f"{warm_orders / ORDERS_MEASURED:.1f} per order (target <= 2)",
        f"broker requests, ours, first limit order (account+instrument unknown): {cold_order}",
        f"broker requests, robin_stocks order_buy_limit: {rs_orders / ORDERS_MEASURED:.1f} "
        "per order",
        f"broker requests, ours, updated_since {OPEN} open orders, {pages} pages, new "
        f"instrument: {sync_cold} (target {pages} + 1)",
        f"broker requests, ours, updated_since {OPEN} open orders, {pages} pages, known "
        f"instrument: {sync_warm} (target {pages})",
        f"broker requests, robin_stocks get_all_open_stock_orders ({OPEN} open in a history "
        f"of {HISTORY + OPEN}, {history_pages} pages): {rs_open}",
    ]
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
