"""RobinhoodGateway over the real robin_stocks session, with HTTP intercepted by `responses`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from robin_stocks.robinhood import helper as rh_helper

from orders.account import AccountSource
from orders.errors import AuthenticationError, BrokerError, InvalidOrderError
from orders.gateways._ratelimit import RateLimit, RateLimiter
from orders.gateways.base import Accepted, OrderGateway, Rejected, Unknown
from orders.gateways.robinhood import RobinhoodGateway, legal_tick
from orders.model import OrderState
from tests.gateways.robinhood_fixtures import (
    ACCOUNT_NUMBER,
    ACCOUNT_URL,
    API,
    INSTRUMENTS_URL,
    ORDERS_URL,
    WALL_START,
    FakeRobinhood,
    FakeTime,
    instrument_url,
    make_gateway,
    make_order,
    robin_stocks_state,
    timeout,
)

pytestmark = pytest.mark.usefixtures("logged_in")  # the gateway fixtures: conftest.py


def order_posts(rsps: responses.RequestsMock) -> int:
    return sum(
        1
        for c in rsps.calls
        if c.request.method == "POST" and urlsplit(str(c.request.url)).path == "/orders/"
    )


class TestPayload:
    """The form body that reaches Robinhood is exactly the one robin_stocks would send, with
    our ref_id and exact decimal strings."""

    def test_limit_buy_form_body(self, gateway: RobinhoodGateway, broker: FakeRobinhood) -> None:
        outcome = gateway.submit_limit(make_order("AAPL", "buy", 3, "190.13"))

        assert isinstance(outcome, Accepted)
        assert broker.posts() == [
            {
                "account": ACCOUNT_URL,
                "instrument": instrument_url("AAPL"),
                "symbol": "AAPL",
                "price": "190.13",
                "ask_price": "190.15",
                "bid_price": "190.11",
                "bid_ask_timestamp": WALL_START.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "quantity": "3",
                "ref_id": "client-0001",
                "type": "limit",
                "time_in_force": "gfd",
                "trigger": "immediate",
                "side": "buy",
                "market_hours": "regular_hours",
                "extended_hours": "False",
                "order_form_version": "4",
                "preset_percent_limit": "0.05",
            }
        ]
        content_type = broker.rsps.calls[-1].request.headers["Content-Type"]
        assert content_type.startswith("application/x-www-form-urlencoded")

    def test_limit_sell_form_body(self, gateway: RobinhoodGateway, broker: FakeRobinhood) -> None:
        gateway.submit_limit(
            make_order("PENY", "sell", Decimal("200.000"), "0.1235", time_in_force="gtc")
        )

        assert broker.posts() == [
            {
                "account": ACCOUNT_URL,
                "instrument": instrument_url("PENY"),
                "symbol": "PENY",
                "price": "0.1235",
                "ask_price": "0.1236",
                "bid_price": "0.1230",
                "bid_ask_timestamp": WALL_START.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "quantity": "200",
                "ref_id": "client-0001",
                "type": "limit",
                "time_in_force": "gtc",
                "trigger": "immediate",
                "side": "sell",
                "market_hours": "regular_hours",
                "extended_hours": "False",
                "order_form_version": "4",
            }
        ]

    def test_price_is_padded_to_cents_never_rounded(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        gateway.submit_limit(make_order(limit_price=Decimal("190.1")))

        assert broker.posts()[0]["price"] == "190.10"

    def test_a_json_content_type_left_on_the_shared_session_does_not_leak_into_the_post(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        rh_helper.update_session("Content-Type", "application/json")

        gateway.submit_limit(make_order())

        post = broker.rsps.calls[-1].request
        assert post.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert broker.posts()[0]["ref_id"] == "client-0001"

    def test_account_number_goes_to_the_account_and_orders_urls(
        self, clock: FakeTime, rsps: responses.RequestsMock, broker: FakeRobinhood
    ) -> None:
        rsps.add(responses.GET, f"{API}/accounts/{ACCOUNT_NUMBER}", json={"url": ACCOUNT_URL})
        gateway = make_gateway(clock, account_number=ACCOUNT_NUMBER)

        assert isinstance(gateway.submit_limit(make_order()), Accepted)

        post = rsps.calls[-1].request
        assert dict(parse_qsl(urlsplit(str(post.url)).query)) == {"account_numbers": ACCOUNT_NUMBER}
        assert broker.posts()[0]["account"] == ACCOUNT_URL


class TestRefusedBeforeSending:
    """Orders Robinhood would refuse, or that cannot be sent exactly, never reach the POST."""

    @pytest.mark.parametrize(
        ("symbol", "price", "reason"),
        [
            ("AAPL", "190.125", "whole cents"),
            ("PENY", "0.12345", "4 decimals"),
            ("OIS", "10.03", "minimum tick 0.0500"),
        ],
    )
    def test_off_tick_price_is_refused_not_rounded(
        self,
        gateway: RobinhoodGateway,
        broker: FakeRobinhood,
        symbol: str,
        price: str,
        reason: str,
    ) -> None:
        with pytest.raises(InvalidOrderError, match=reason):
            gateway.submit_limit(make_order(symbol, limit_price=price))

        assert broker.posts() == []

    def test_on_tick_price_for_a_coarse_tick_instrument_is_sent(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        assert isinstance(gateway.submit_limit(make_order("OIS", limit_price="10.05")), Accepted)

    def test_fractional_quantity_is_refused(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        with pytest.raises(InvalidOrderError, match="whole shares"):
            gateway.submit_limit(make_order(quantity="1.5"))

        assert len(broker.rsps.calls) == 0

    def test_unknown_symbol_is_rejected_without_a_post(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        del broker.instruments["AAPL"]

        outcome = gateway.submit_limit(make_order("AAPL"))

        assert isinstance(outcome, Rejected)
        assert "does not know the symbol 'AAPL'" in outcome.reason
        assert broker.posts() == []

    def test_untradable_symbol_is_rejected_without_a_post(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        outcome = gateway.submit_limit(make_order("DEAD", limit_price="5.00"))

        assert isinstance(outcome, Rejected)
        assert "does not trade DEAD" in outcome.reason
        assert "untradable" in outcome.reason
        assert broker.posts() == []

    def test_failed_quote_lookup_is_unknown_and_nothing_is_sent(
        self, gateway: RobinhoodGateway, rsps: responses.RequestsMock, broker: FakeRobinhood
    ) -> None:
        rsps.replace(responses.GET, f"{API}/quotes/", status=503, body="down")

        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Unknown)
        assert "no order was sent" in outcome.error
        assert broker.posts() == []


class TestOutcomes:
    """Each answer of Robinhood becomes exactly one outcome class, and a network failure is
    never a rejection."""

    def test_created_order_is_accepted_with_its_snapshot(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Accepted)
        snap = outcome.snapshot
        assert (snap.broker_order_id, snap.client_order_id, snap.symbol) == (
            "ord-0001",
            "client-0001",
            "AAPL",
        )
        assert (snap.state, snap.raw_state, snap.limit_price) == (
            OrderState.SUBMITTED,
            "unconfirmed",
            Decimal("190.13"),
        )

    @pytest.mark.parametrize(
        ("status", "body", "reason"),
        [
            (400, {"detail": "Not enough buying power."}, "Not enough buying power."),
            (
                400,
                {"non_field_errors": ["Extended hours and market hours mismatch."]},
                '{"non_field_errors": ["Extended hours and market hours mismatch."]}',
            ),
            (403, {"detail": "Account is restricted."}, "Account is restricted."),
        ],
    )
    def test_a_4xx_answer_is_rejected_verbatim(
        self,
        gateway: RobinhoodGateway,
        broker: FakeRobinhood,
        status: int,
        body: dict[str, Any],
        reason: str,
    ) -> None:
        broker.post_faults = [(status, json.dumps(body))]

        outcome = gateway.submit_limit(make_order())

        assert outcome == Rejected(reason)
        assert len(broker.posts()) == 1

    @pytest.mark.parametrize(
        "fault",
        [
            pytest.param(timeout, id="timeout"),
            pytest.param(lambda: requests.ConnectionError("refused"), id="connection"),
            pytest.param(lambda: (500, "<html>oops</html>"), id="500"),
            pytest.param(lambda: (502, "bad gateway"), id="502"),
            pytest.param(
                lambda: (
                    429,
                    '{"detail": "Request was throttled. Expected available in 2 seconds."}',
                ),
                id="429",
            ),
            pytest.param(lambda: (201, "not json"), id="unreadable-201"),
            pytest.param(lambda: (400, "<html>proxy error</html>"), id="unreadable-400"),
        ],
    )
    def test_ambiguous_failures_that_persist_end_unknown(
        self, clock: FakeTime, broker: FakeRobinhood, fault: Any
    ) -> None:
        gateway = make_gateway(clock, max_attempts=3)
        broker.post_faults = [fault() for _ in range(3)]

        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Unknown)
        assert "may exist" in outcome.error
        assert len(broker.posts()) == 3
        assert broker.orders == {}
        assert len(clock.sleeps) == 3  # a backoff before every lookup, none real

    def test_timeout_after_acceptance_ends_with_exactly_one_order(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        broker.post_faults = ["accept-then-timeout"]

        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Accepted)
        assert outcome.snapshot.broker_order_id == "ord-0001"
        assert len(broker.orders) == 1
        assert len(broker.posts()) == 1  # the lookup found it: no resend

    def test_lookup_failure_then_resend_is_deduplicated_by_ref_id(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        broker.post_faults = ["accept-then-timeout"]
        broker.list_failures = 4  # the whole first lookup fails: the gateway must resend

        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Accepted)
        assert outcome.snapshot.broker_order_id == "ord-0001"
        assert len(broker.orders) == 1
        assert [p["ref_id"] for p in broker.posts()] == ["client-0001", "client-0001"]

    def test_an_auth_failure_after_an_ambiguous_post_is_unknown_not_a_refusal(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        broker.post_faults = ["accept-then-timeout"]
        broker.page_fault = {1: (401, '{"detail": "Incorrect authentication credentials."}')}

        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Unknown)  # the order exists: never report it refused
        assert "look it up by client order id" in outcome.error
        assert len(broker.orders) == 1

    def test_a_refused_resend_after_an_ambiguous_post_is_unknown(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        # The first POST created the order (and reserved the cash) but its answer was lost;
        # the lookup failed; the resend is refused for the cash the first one reserved.
        broker.post_faults = [
            "accept-then-timeout",
            (400, '{"detail": "Not enough buying power."}'),
        ]
        broker.list_failures = 4

        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Unknown)
        assert "Not enough buying power." in outcome.error
        assert len(broker.orders) == 1

    def test_ref_id_already_exists_means_accepted(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        broker.add_order(order_id="ord-0042", ref_id="client-0001", state="confirmed")

        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Accepted)
        assert outcome.snapshot.broker_order_id == "ord-0042"
        assert outcome.snapshot.raw_state == "confirmed"
        assert len(broker.orders) == 1

    def test_server_error_then_success(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood, clock: FakeTime
    ) -> None:
        broker.post_faults = [(500, '{"detail": "Internal error"}')]

        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Accepted)
        assert len(broker.orders) == 1
        kinds = [(c.request.method, urlsplit(str(c.request.url)).path) for c in broker.rsps.calls]
        assert kinds[-3:] == [("POST", "/orders/"), ("GET", "/orders/"), ("POST", "/orders/")]
        assert len(clock.sleeps) == 1

    def test_429_waits_at_least_the_stated_seconds(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood, clock: FakeTime
    ) -> None:
        broker.post_faults = [
            (429, '{"detail": "Request was throttled. Expected available in 14 seconds."}')
        ]

        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Accepted)
        assert clock.sleeps and clock.sleeps[0] >= 14
        assert len(broker.posts()) == 2

    def test_an_ip_level_throttle_is_not_slept_out(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood, clock: FakeTime
    ) -> None:
        broker.post_faults = [
            (429, '{"detail": "Request was throttled. Expected available in 1154515 seconds."}')
        ]

        outcome = gateway.submit_limit(make_order())

        assert isinstance(outcome, Unknown)
        assert "1154515" in outcome.error
        assert sum(clock.sleeps) < 60

    def test_backoff_grows_and_is_jittered(self, clock: FakeTime, broker: FakeRobinhood) -> None:
        gateway = make_gateway(clock, max_attempts=4, backoff_base=1.0)
        broker.post_faults = [(503, "x")] * 4

        gateway.submit_limit(make_order())

        assert len(clock.sleeps) == 4
        for attempt, slept in enumerate(clock.sleeps):
            assert 2**attempt / 2 <= slept <= 2**attempt
        assert clock.sleeps != [1.0, 2.0, 4.0, 8.0]


class TestRequestEconomy:
    """Once the account and the instrument are known, an order costs a quote and a POST,
    and a sync costs one request per page."""

    def test_first_order_learns_account_and_instrument_then_two_requests_each(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        gateway.submit_limit(make_order(client_order_id="c-1"))
        first = len(broker.rsps.calls)

        gateway.submit_limit(make_order(client_order_id="c-2"))
        gateway.submit_limit(make_order(side="sell", client_order_id="c-3"))

        assert first == 4  # account, instrument, quote, POST
        assert len(broker.rsps.calls) - first == 4  # 2 per order
        assert len(broker.orders) == 3

    def test_updated_since_pages_through_45_orders_in_3_requests(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        for n in range(45):
            broker.add_order(order_id=f"ord-{n:04d}", ref_id=f"c-{n}", state="confirmed")
        broker.rsps.calls.reset()

        orders = gateway.updated_since(WALL_START - timedelta(hours=1))

        assert len(orders) == 45
        assert {o.symbol for o in orders} == {"AAPL"}
        paths = [urlsplit(str(c.request.url)).path for c in broker.rsps.calls]
        assert paths.count("/orders/") == 3
        assert len(paths) == 4  # + the one instrument not seen before
        broker.rsps.calls.reset()

        gateway.updated_since(WALL_START - timedelta(hours=1))

        assert len(broker.rsps.calls) == 3

    def test_updated_since_sends_the_time_filter(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        broker.add_order(order_id="old", updated_at="2026-03-01T10:00:00Z")
        broker.add_order(order_id="new", updated_at="2026-03-02T15:00:00Z")

        orders = gateway.updated_since(WALL_START - timedelta(hours=1))

        assert [o.broker_order_id for o in orders] == ["new"]
        query = dict(parse_qsl(urlsplit(str(broker.rsps.calls[0].request.url)).query))
        assert query == {"updated_at[gte]": "2026-03-02T14:30:00.000000Z"}

    @pytest.mark.parametrize("status", [500, 400, 429])
    def test_a_failed_page_raises_instead_of_returning_a_partial_list(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood, status: int
    ) -> None:
        for n in range(45):
            broker.add_order(order_id=f"ord-{n:04d}", ref_id=f"c-{n}")
        broker.page_fault = {2: (status, '{"detail": "nope"}')}

        with pytest.raises(BrokerError, match="orders"):
            gateway.updated_since(WALL_START - timedelta(hours=1))

    def test_a_failed_instrument_lookup_raises_instead_of_dropping_the_order(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        broker.add_order(order_id="ord-1", symbol="PENY", price="0.1235")
        broker.rsps.replace(responses.GET, instrument_url("PENY"), status=503, body="down")

        with pytest.raises(BrokerError, match="instruments"):
            gateway.updated_since(WALL_START - timedelta(hours=1))

    def test_an_unparseable_order_is_logged_and_skipped(
        self,
        gateway: RobinhoodGateway,
        broker: FakeRobinhood,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        broker.add_order(order_id="ord-good", state="filled", cumulative_quantity="3")
        broker.add_order(order_id="ord-odd", ref_id="c-odd", state="expired")

        orders = gateway.updated_since(WALL_START - timedelta(hours=1))

        assert [o.broker_order_id for o in orders] == ["ord-good"]
        assert "'expired'" in caplog.text
        problems = gateway.drain_problems()
        assert len(problems) == 1 and "ord-odd" in problems[0] and "c-odd" in problems[0]
        assert gateway.drain_problems() == []

    def test_a_refused_instrument_does_not_block_the_listing(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood, rsps: responses.RequestsMock
    ) -> None:
        delisted = f"{INSTRUMENTS_URL}00000000-dead-4000-8000-000000000000/"
        rsps.add(responses.GET, delisted, status=404, json={"detail": "Not found."})
        broker.add_order(order_id="ord-good", state="filled", cumulative_quantity="3")
        broker.add_order(order_id="ord-delisted", ref_id="c-old", instrument=delisted)

        orders = {o.broker_order_id: o for o in gateway.updated_since(WALL_START)}

        assert set(orders) == {"ord-good", "ord-delisted"}
        assert orders["ord-delisted"].symbol is None  # still applied by its ids
        (problem,) = gateway.drain_problems()
        assert "404" in problem

    def test_naive_since_is_refused(self, gateway: RobinhoodGateway) -> None:
        with pytest.raises(InvalidOrderError, match="timezone-aware"):
            gateway.updated_since(WALL_START.replace(tzinfo=None))


class TestRateLimiter:
    """Requests wait in front of Robinhood's throttle, through the injected sleep."""

    def test_window_blocks_the_request_that_does_not_fit(self, clock: FakeTime) -> None:
        limiter = RateLimiter([RateLimit(2, 1.0)], sleep=clock.sleep, clock=clock.monotonic)

        waits = [limiter.acquire() for _ in range(5)]

        assert waits == [0.0, 0.0, 1.0, 0.0, 1.0]
        assert clock.sleeps == [1.0, 1.0]

    def test_stacked_windows_take_the_longest_wait(self, clock: FakeTime) -> None:
        limiter = RateLimiter(
            [RateLimit(3, 1.0), RateLimit(4, 10.0)], sleep=clock.sleep, clock=clock.monotonic
        )

        for _ in range(5):
            limiter.acquire()

        assert clock.sleeps == [1.0, 9.0]

    def test_limiter_survives_a_clock_that_never_moves(self) -> None:
        slept: list[float] = []
        limiter = RateLimiter([RateLimit(1, 2.0)], sleep=slept.append, clock=lambda: 5.0)

        for _ in range(3):
            limiter.acquire()

        assert slept == [2.0, 2.0]

    def test_default_limits_pace_the_gateway(self, clock: FakeTime, broker: FakeRobinhood) -> None:
        gateway = RobinhoodGateway(sleep=clock.sleep, clock=clock.monotonic, now=clock.wall)

        for n in range(8):
            gateway.submit_limit(make_order(client_order_id=f"c-{n}"))

        assert len(broker.orders) == 8
        assert clock.sleeps  # waited instead of bursting 18 requests / 8 orders at once
        assert clock.monotonic_now - 1_000.0 >= 15.0  # 8 orders do not fit in 15 s

    def test_limits_are_validated(self) -> None:
        with pytest.raises(ValueError, match="requests"):
            RateLimit(0, 1.0)
        with pytest.raises(ValueError, match="per_seconds"):
            RateLimit(1, 0)


class TestFetchCancelFind:
    """Status reads and cancel requests: 404 is 'no such order', refusals are not errors."""

    def test_fetch_parses_the_order_with_its_symbol(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        broker.add_order(order_id="ord-0009", state="partially_filled", cumulative_quantity="1")

        snapshot = gateway.fetch("ord-0009")

        assert snapshot is not None
        assert (snapshot.symbol, snapshot.state) == ("AAPL", OrderState.PARTIALLY_FILLED)

    def test_fetch_404_is_none(
        self, gateway: RobinhoodGateway, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.GET, f"{ORDERS_URL}nope/", status=404, json={"detail": "Not found."})

        assert gateway.fetch("nope") is None

    def test_fetch_that_keeps_failing_raises(
        self, gateway: RobinhoodGateway, rsps: responses.RequestsMock, clock: FakeTime
    ) -> None:
        rsps.add(responses.GET, f"{ORDERS_URL}ord-1/", body=timeout())

        with pytest.raises(BrokerError, match="try again later"):
            gateway.fetch("ord-1")
        assert len(rsps.calls) == 3  # retry.max_attempts, the configuration's default
        assert len(clock.sleeps) == 2

    def test_fetch_refuses_an_id_that_is_not_an_id(self, gateway: RobinhoodGateway) -> None:
        with pytest.raises(InvalidOrderError):
            gateway.fetch("../accounts")

    @pytest.mark.parametrize(
        ("status", "body"),
        [
            (200, "{}"),
            (400, '{"detail": "Order cannot be cancelled at this time."}'),
            (404, '{"detail": "Not found."}'),
        ],
    )
    def test_cancel_trusts_nothing_and_raises_nothing_on_refusal(
        self,
        gateway: RobinhoodGateway,
        rsps: responses.RequestsMock,
        capsys: pytest.CaptureFixture[str],
        status: int,
        body: str,
    ) -> None:
        rsps.add(responses.POST, f"{ORDERS_URL}ord-7/cancel/", status=status, body=body)

        gateway.cancel("ord-7")  # returns nothing, raises nothing

        assert len(rsps.calls) == 1
        assert "cancelled" not in capsys.readouterr().out

    def test_undeliverable_cancel_raises_so_it_can_be_retried(
        self, gateway: RobinhoodGateway, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.POST, f"{ORDERS_URL}ord-7/cancel/", body=requests.ConnectionError())

        with pytest.raises(BrokerError, match="cancel again"):
            gateway.cancel("ord-7")

    def test_find_by_client_id_of_a_sent_order_costs_one_request(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        gateway.submit_limit(make_order(client_order_id="c-77"))
        broker.rsps.calls.reset()

        found = gateway.find_by_client_id("c-77")

        assert found is not None and found.client_order_id == "c-77"
        assert len(broker.rsps.calls) == 1

    def test_find_by_client_id_of_an_unknown_id_scans_recent_orders(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        broker.add_order(order_id="ord-5", ref_id="from-before-restart")

        found = gateway.find_by_client_id("from-before-restart")
        missing = gateway.find_by_client_id("never-sent")

        assert found is not None and found.broker_order_id == "ord-5"
        assert missing is None


class TestAuthentication:
    """Without a session nothing is sent; a 401 is cured by one re-login or raised."""

    def test_every_call_raises_before_any_request_when_logged_out(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        rh_helper.set_login_state(False)
        calls: list[Callable[[], object]] = [
            lambda: gateway.submit_limit(make_order()),
            lambda: gateway.cancel("ord-1"),
            lambda: gateway.fetch("ord-1"),
            lambda: gateway.find_by_client_id("c-1"),
            lambda: gateway.updated_since(WALL_START),
        ]

        for call in calls:
            with pytest.raises(AuthenticationError, match="login"):
                call()

        assert len(broker.rsps.calls) == 0

    def test_401_without_auth_raises_authentication_error(
        self, gateway: RobinhoodGateway, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.GET, f"{ORDERS_URL}ord-1/", status=401, json={"detail": "expired"})

        with pytest.raises(AuthenticationError, match="log in again"):
            gateway.fetch("ord-1")

    def test_401_with_auth_relogs_in_once_and_retries(
        self, clock: FakeTime, rsps: responses.RequestsMock, broker: FakeRobinhood
    ) -> None:
        class Renewer:
            calls = 0

            def relogin(self) -> None:
                self.calls += 1

        renewer = Renewer()
        gateway = make_gateway(clock, auth=renewer)
        # With two registrations for one URL, responses answers with the first once.
        rsps.add(responses.GET, f"{ORDERS_URL}ord-3/", status=401, json={"detail": "expired"})
        broker.add_order(order_id="ord-3")

        snapshot = gateway.fetch("ord-3")

        assert renewer.calls == 1
        assert snapshot is not None and snapshot.broker_order_id == "ord-3"


def test_gateway_satisfies_the_protocol(gateway: RobinhoodGateway) -> None:
    assert isinstance(gateway, OrderGateway)


def test_legal_tick_rules() -> None:
    assert legal_tick(Decimal("1.00"))
    assert legal_tick(Decimal("0.9999"))
    assert not legal_tick(Decimal("1.001"))
    assert not legal_tick(Decimal("0.00001"))
    assert legal_tick(Decimal("10.05"), Decimal("0.0500"))
    assert not legal_tick(Decimal("10.03"), Decimal("0.0500"))
    assert not legal_tick(Decimal(0))


class TestAccountSource:
    """In live mode the gateway is also the account source the safety checks read."""

    def test_buying_power_is_read_exactly(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.GET, ACCOUNT_URL, json={"url": ACCOUNT_URL, "buying_power": "1234.5678"})

        assert gateway.fetch_buying_power() == Decimal("1234.5678")

    def test_positions_are_read_per_symbol(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(
            responses.GET,
            f"{API}/positions/",
            json={
                "next": None,
                "results": [
                    {"instrument": instrument_url("AAPL"), "quantity": "5.00000000"},
                    {"instrument": instrument_url("PENY"), "quantity": "0.00000000"},
                ],
            },
        )

        assert dict(gateway.fetch_positions()) == {"AAPL": Decimal("5")}
        assert isinstance(gateway, AccountSource)

    def test_logged_out_reads_nothing(
        self, gateway: RobinhoodGateway, broker: FakeRobinhood
    ) -> None:
        with robin_stocks_state(logged_in=False), pytest.raises(AuthenticationError):
            gateway.fetch_buying_power()
