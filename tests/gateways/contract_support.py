"""The broker side of the gateway contract suite: one script per gateway.

The contract (`test_contract.py`) speaks only the public gateway protocol. What it cannot say
through that protocol (make the broker refuse, lose answers, fill an order, let time pass) it
asks of a `BrokerScript`, so the same test functions run against every gateway. A new gateway
joins the contract by writing one script for its broker and adding it to `SCRIPTS`.

`PaperScript` drives `PaperBroker` through its documented fault injection, quotes and
matching. `RobinhoodScript` stands Robinhood up behind `responses` (the fake of
`robinhood_fixtures`, plus the cancel and unknown-order answers that the contract needs), so
the real robin_stocks session carries every request and nothing reaches the network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import pytest
import requests
import responses

from orders import Fault, Order, OrderGateway, PaperBroker, SimulatedClock
from tests.gateways.robinhood_fixtures import (
    ORDERS_URL,
    WALL_START,
    FakeRobinhood,
    FakeTime,
    execution_json,
    make_gateway,
    timeout,
)

__all__ = [
    "NEVER_ISSUED_ID",
    "SCRIPTS",
    "BrokerScript",
    "Failure",
    "PaperScript",
    "RobinhoodScript",
    "limit_order",
]

# A broker order id in Robinhood's shape that no broker here ever hands out.
NEVER_ISSUED_ID = "00000000-0000-4000-8000-00000000dead"


class Failure(StrEnum):
    """The ambiguous ways a submission can fail: the order may or may not exist after them."""

    TIMEOUT = "timeout"
    CONNECTION_LOST = "connection_lost"
    SERVER_ERROR = "server_error"
    THROTTLED = "throttled"


def limit_order(number: int, side: str = "buy") -> Order:
    """A legal limit order for every gateway here (whole shares, a cent price, a known symbol);
    `number` makes its client order id, so a test can send many distinct orders."""
    return Order("AAPL", side, 3, "190.13", client_order_id=f"contract-{number:04d}")


class BrokerScript(Protocol):
    """What the contract needs from the broker behind one gateway, beyond the gateway itself."""

    gateway: OrderGateway

    def refuse_next_submit(self, reason: str) -> None:
        """The broker definitively refuses the next new order, in these words."""
        ...

    def fail_submits(self, failure: Failure) -> None:
        """Every submission fails in this way before the broker creates anything, until
        `heal`; a gateway's own retries must not get through."""
        ...

    def lose_answers_after_creating(self) -> None:
        """The next submission creates the order, then every answer about it is lost (the
        submission's and any lookup the gateway makes), until `heal`."""
        ...

    def heal(self) -> None:
        """The broker and the line to it work again."""
        ...

    def orders_held(self, client_order_id: str) -> int:
        """How many orders the broker itself holds under this client order id."""
        ...

    def fill(self, broker_order_id: str) -> None:
        """The broker fills the whole order at its limit price."""
        ...

    def mark(self) -> datetime:
        """A moment after the last update of every order the broker holds and at or before
        the broker's next update: what a caller would pass to `updated_since`."""
        ...

    def reopen(self) -> OrderGateway:
        """A new gateway over the same broker account, as after a restart of the process."""
        ...


class PaperScript:
    """`PaperBroker` kept in a state file on a simulated clock, so `reopen` is a real restart."""

    def __init__(self, state_path: Path) -> None:
        self._path = state_path
        self._clock = SimulatedClock()
        self.broker = PaperBroker.open(state_path, clock=self._clock, seed=0)
        self.gateway: OrderGateway = self.broker

    def refuse_next_submit(self, reason: str) -> None:
        self.broker.inject(Fault.REJECT, message=reason)

    def fail_submits(self, failure: Failure) -> None:
        # The paper broker has no wire: a lost connection is a request that never arrived.
        fault, message = {
            Failure.TIMEOUT: (Fault.TIMEOUT_BEFORE_ACCEPT, None),
            Failure.CONNECTION_LOST: (
                Fault.TIMEOUT_BEFORE_ACCEPT,
                "Connection aborted before the paper broker answered (injected fault).",
            ),
            Failure.SERVER_ERROR: (Fault.SERVER_ERROR, None),
            Failure.THROTTLED: (Fault.THROTTLE, None),
        }[failure]
        self.broker.inject(fault, times=1_000, message=message)

    def lose_answers_after_creating(self) -> None:
        self.broker.inject(Fault.TIMEOUT_AFTER_ACCEPT, times=1_000)

    def heal(self) -> None:
        self.broker.clear_faults()

    def orders_held(self, client_order_id: str) -> int:
        # The paper broker is its own books: its full listing is the broker's truth.
        listing = self.broker.updated_since(datetime.min.replace(tzinfo=UTC))
        return sum(1 for snap in listing if snap.client_order_id == client_order_id)

    def fill(self, broker_order_id: str) -> None:
        snap = self.broker.fetch(broker_order_id)
        assert snap is not None and snap.symbol is not None and snap.limit_price is not None
        self.broker.set_quote(snap.symbol, snap.limit_price)
        self.broker.match()

    def mark(self) -> datetime:
        return self._clock.peek()

    def reopen(self) -> OrderGateway:
        return PaperBroker.open(self._path)


# Robinhood's answers to a cancel (sanko's API notes; a 2024 capture for the filled order).
_CANCELLED_OK = (200, "{}")
_CANNOT_CANCEL = (400, json.dumps({"detail": "Order cannot be cancelled at this time."}))
_NOT_FOUND = (404, json.dumps({"detail": "Not found."}))

_ROBINHOOD_FAILURES: dict[Failure, Callable[[], Any]] = {
    Failure.TIMEOUT: timeout,
    Failure.CONNECTION_LOST: lambda: requests.exceptions.ConnectionError(
        "('Connection aborted.', RemoteDisconnected('Remote end closed connection'))"
    ),
    Failure.SERVER_ERROR: lambda: (503, "<html><body>Service Unavailable</body></html>"),
    Failure.THROTTLED: lambda: (
        429,
        json.dumps({"detail": "Request was throttled. Expected available in 7 seconds."}),
    ),
}


class RobinhoodScript:
    """Robinhood behind `responses`: the `FakeRobinhood` account, orders and pages, plus
    cancel requests (a working order is cancelled, a filled one refused, an unknown or
    cancelled one 404) and a 404 for an order id it never issued.

    Its pages hold `page_size` orders, so a listing of 40+ orders follows `next` several times.
    """

    page_size = 10
    # Broker events (fills, cancels) are stamped from here on, one second apart: after every
    # creation time the fake writes (WALL_START plus a fraction of a second).
    _EVENTS_START = WALL_START + timedelta(minutes=1)

    def __init__(self, rsps: responses.RequestsMock, clock: FakeTime) -> None:
        self._rsps = rsps
        self._clock = clock
        self._events = 0
        self.broker = FakeRobinhood(rsps, page_size=self.page_size)
        self.gateway: OrderGateway = make_gateway(clock)
        # Disjoint from the fake's own URLs: `responses` pops the first of two matches.
        rsps.add_callback(
            responses.POST,
            re.compile(rf"{re.escape(ORDERS_URL)}([A-Za-z0-9-]+)/cancel/"),
            callback=self._cancel,
        )
        rsps.add(
            responses.GET,
            re.compile(rf"{re.escape(ORDERS_URL)}(?!ord-\d{{4}}/)[A-Za-z0-9-]+/$"),
            status=_NOT_FOUND[0],
            body=_NOT_FOUND[1],
        )

    def refuse_next_submit(self, reason: str) -> None:
        self.broker.post_faults = [(400, json.dumps({"detail": reason}))]

    def fail_submits(self, failure: Failure) -> None:
        self.broker.post_faults = [_ROBINHOOD_FAILURES[failure]() for _ in range(50)]

    def lose_answers_after_creating(self) -> None:
        self.broker.post_faults = ["accept-then-timeout"] + [timeout() for _ in range(50)]
        self.broker.list_failures = 1_000

    def heal(self) -> None:
        self.broker.post_faults = []
        self.broker.list_failures = 0

    def orders_held(self, client_order_id: str) -> int:
        return sum(1 for doc in self.broker.orders.values() if doc["ref_id"] == client_order_id)

    def fill(self, broker_order_id: str) -> None:
        doc = self.broker.orders[broker_order_id]
        when = self._stamp()
        quantity, price = doc["quantity"], doc["price"]
        doc.update(
            state="filled",
            cumulative_quantity=quantity,
            average_price=price,
            executions=[execution_json(f"{broker_order_id}-x1", quantity, price, when)],
            cancel=None,
            updated_at=when,
            last_transaction_at=when,
        )

    def mark(self) -> datetime:
        # The fake dates every new order with one fixed time, so the orders held now are
        # dated an hour back, and the mark falls between them and everything that follows.
        earlier = _wire(WALL_START - timedelta(hours=1))
        for doc in self.broker.orders.values():
            doc.update(created_at=earlier, updated_at=earlier, last_transaction_at=earlier)
        return WALL_START - timedelta(minutes=30)

    def reopen(self) -> OrderGateway:
        return make_gateway(self._clock)

    def _stamp(self) -> str:
        self._events += 1
        return _wire(self._EVENTS_START + timedelta(seconds=self._events))

    def _cancel(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        match = re.search(r"/orders/([A-Za-z0-9-]+)/cancel/", str(request.url))
        doc = self.broker.orders.get(match.group(1)) if match else None
        if doc is None or doc["state"] == "cancelled":
            status, body = _NOT_FOUND
        elif doc["cancel"] is None:
            status, body = _CANNOT_CANCEL
        else:
            when = self._stamp()
            doc.update(state="cancelled", cancel=None, updated_at=when, last_transaction_at=when)
            status, body = _CANCELLED_OK
        return status, {"Content-Type": "application/json"}, body


def _wire(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _paper(request: pytest.FixtureRequest) -> BrokerScript:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return PaperScript(tmp_path / "paper-broker.json")


def _robinhood(request: pytest.FixtureRequest) -> BrokerScript:
    # The session fixtures of conftest.py: logged in, and every request intercepted.
    request.getfixturevalue("logged_in")
    return RobinhoodScript(request.getfixturevalue("rsps"), request.getfixturevalue("clock"))


# Every gateway the contract runs against, by the name its test ids carry.
SCRIPTS: dict[str, Callable[[pytest.FixtureRequest], BrokerScript]] = {
    "paper": _paper,
    "robinhood": _robinhood,
}
