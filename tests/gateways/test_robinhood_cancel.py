"""Cancelling on Robinhood: a refusal is not an ending, and a cancel is sent until one shows.

"Order cannot be cancelled at this time." comes back for a filled order, but also for a
`queued` order that is still working and that a later cancel request does cancel.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import responses

from orders.audit import AuditJournal
from orders.gateways.base import Unknown
from orders.gateways.robinhood import RobinhoodGateway
from orders.manager import OrderManager
from orders.model import OrderRequest, OrderState
from tests.gateways.robinhood_fixtures import (
    ORDERS_URL,
    FakeRobinhood,
    FakeTime,
    make_order,
)

REFUSED = json.dumps({"detail": "Order cannot be cancelled at this time."})


pytestmark = pytest.mark.usefixtures("logged_in")  # the gateway fixtures: conftest.py


class Account:
    """Buying power enough for any test order; nothing cached to invalidate."""

    def buying_power(self) -> Decimal:
        return Decimal(1_000_000)

    def invalidate(self) -> None:
        pass


def cancel_posts(rsps: responses.RequestsMock) -> int:
    return sum(
        1
        for c in rsps.calls
        if c.request.method == "POST" and urlsplit(str(c.request.url)).path.endswith("/cancel/")
    )


class TestRefusedCancel:
    def test_a_queued_order_that_refuses_a_cancel_is_cancelled_by_the_resend(
        self,
        tmp_path: Path,
        clock: FakeTime,
        gateway: RobinhoodGateway,
        broker: FakeRobinhood,
        rsps: responses.RequestsMock,
    ) -> None:
        manager = OrderManager(
            gateway,
            account=Account(),
            journal=AuditJournal(tmp_path / "orders.jsonl"),
            clock=clock.wall,
        )
        order = manager.submit(OrderRequest("AAPL", "buy", 3, "190.13"))
        assert order.broker_order_id is not None
        doc = broker.orders[order.broker_order_id]
        doc["state"] = "queued"

        answered: list[int] = []

        def answer(_: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            answered.append(1)
            if len(answered) == 1:  # the first request: refused, the order works on
                return 400, {}, REFUSED
            when = clock.wall().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            doc.update(state="cancelled", cancel=None, updated_at=when)
            return 200, {}, "{}"

        rsps.add_callback(
            responses.POST, f"{ORDERS_URL}{order.broker_order_id}/cancel/", callback=answer
        )

        manager.cancel(order.client_order_id)
        assert (order.state, order.cancel_requested) == (OrderState.SUBMITTED, True)

        clock.sleep(10)
        manager.sync()
        assert cancel_posts(rsps) == 1  # not confirmed yet, but not 30 s old either
        assert (order.state, order.cancel_requested) == (OrderState.SUBMITTED, True)

        clock.sleep(25)
        resent = manager.sync()
        assert resent.cancels_resent == (order.client_order_id,)
        assert cancel_posts(rsps) == 2

        clock.sleep(1)
        manager.sync()
        assert order.state is OrderState.CANCELLED

    def test_the_refusal_is_logged_as_not_an_ending_and_not_raised(
        self,
        gateway: RobinhoodGateway,
        rsps: responses.RequestsMock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        rsps.add(responses.POST, f"{ORDERS_URL}ord-7/cancel/", status=400, body=REFUSED)

        with caplog.at_level(logging.WARNING, logger="orders.gateways.robinhood"):
            gateway.cancel("ord-7")

        assert len(rsps.calls) == 1
        assert "Order cannot be cancelled at this time." in caplog.text
        assert "may still be working" in caplog.text


class TestDeliveredCancel:
    def test_a_2xx_with_an_empty_body_is_delivered_once(
        self, gateway: RobinhoodGateway, rsps: responses.RequestsMock, clock: FakeTime
    ) -> None:
        rsps.add(responses.POST, f"{ORDERS_URL}ord-7/cancel/", status=200, body="")

        gateway.cancel("ord-7")  # neither retried nor reported as undelivered

        assert len(rsps.calls) == 1
        assert clock.sleeps == []

    def test_an_empty_body_on_an_order_post_is_still_ambiguous(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        broker.post_faults = [(201, "")] * 8

        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Unknown)
