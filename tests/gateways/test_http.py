"""The shared HTTP layer: how failures are classified, and how long and how often it retries."""

from __future__ import annotations

import random
import re
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses

from orders.config import OrderManagementConfig, RetryConfig
from orders.errors import BrokerError, ConfigError
from orders.gateways import _http
from orders.gateways._http import RetriesExhausted, RetryPolicy
from orders.gateways.base import AmbiguousAttempt
from orders.gateways.robinhood import RobinhoodGateway
from orders.manager import OrderManager
from tests.gateways.robinhood_fixtures import ORDERS_URL, FakeTime, make_gateway, timeout

URL = ORDERS_URL + "ord-1/"


class FixedJitter(random.Random):
    """Jitter pinned to one draw, so a wait is exactly predictable."""

    def __init__(self, draw: float) -> None:
        super().__init__(0)
        self.draw = draw

    def random(self) -> float:
        return self.draw


def send() -> _http.Reply:
    return _http.send("GET", URL, where="GET /orders/ord-1/")


def failing(times: int, failure: AmbiguousAttempt | None = None) -> Any:
    """A call that fails ambiguously `times` times, then answers "done"; counts its calls."""
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise failure or AmbiguousAttempt("server error 503")
        return "done"

    call.calls = calls  # type: ignore[attr-defined]
    return call


class TestClassification:
    """Each kind of failure lands in exactly one class, whatever the caller."""

    @pytest.mark.parametrize(
        ("body", "words"),
        [
            (requests.ConnectionError("no route"), "connection failed (ConnectionError)"),
            (timeout(), "no answer within 16.0 s"),
        ],
    )
    def test_no_answer_is_ambiguous(
        self, rsps: responses.RequestsMock, body: Exception, words: str
    ) -> None:
        rsps.add(responses.GET, URL, body=body)

        with pytest.raises(AmbiguousAttempt, match=re.escape(words)) as caught:
            send()
        assert caught.value.retry_after is None

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    def test_a_server_error_is_ambiguous(self, rsps: responses.RequestsMock, status: int) -> None:
        rsps.add(responses.GET, URL, status=status, body="oops")

        with pytest.raises(AmbiguousAttempt, match=f"server error {status}"):
            send()

    def test_a_redirect_is_ambiguous_and_not_followed(self, rsps: responses.RequestsMock) -> None:
        rsps.add(responses.GET, URL, status=302, headers={"Location": "https://evil.example/"})

        with pytest.raises(AmbiguousAttempt, match="redirect"):
            send()
        assert len(rsps.calls) == 1

    def test_429_carries_the_retry_after_header(self, rsps: responses.RequestsMock) -> None:
        rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "7"}, json={})

        with pytest.raises(AmbiguousAttempt, match="throttled") as caught:
            send()
        assert caught.value.retry_after == 7.0

    def test_429_carries_the_wait_robinhood_states_in_its_body(
        self, rsps: responses.RequestsMock
    ) -> None:
        detail = "Request was throttled. Expected available in 12 seconds."
        rsps.add(responses.GET, URL, status=429, json={"detail": detail})

        with pytest.raises(AmbiguousAttempt, match="Expected available") as caught:
            send()
        assert caught.value.retry_after == 12.0

    def test_a_429_that_states_no_wait_has_none(self, rsps: responses.RequestsMock) -> None:
        rsps.add(responses.GET, URL, status=429, body="slow down")

        with pytest.raises(AmbiguousAttempt) as caught:
            send()
        assert caught.value.retry_after is None

    @pytest.mark.parametrize("status", [400, 403, 404, 409])
    def test_another_4xx_is_a_refusal_in_the_brokers_words(
        self, rsps: responses.RequestsMock, status: int
    ) -> None:
        rsps.add(responses.GET, URL, status=status, json={"detail": "Not enough buying power."})

        reply = send()

        assert (reply.status, reply.ok, reply.reason) == (status, False, "Not enough buying power.")

    def test_a_refusal_with_more_than_a_detail_keeps_the_whole_text(
        self, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.GET, URL, status=400, json={"ref_id": ["already exists"]})

        assert send().reason == '{"ref_id": ["already exists"]}'

    def test_numbers_are_read_exactly(self, rsps: responses.RequestsMock) -> None:
        rsps.add(responses.GET, URL, body='{"price": 0.1, "quantity": 3}')

        reply = send()

        assert reply.ok
        assert reply.body == {"price": Decimal("0.1"), "quantity": Decimal(3)}


class TestBackoff:
    """Capped exponential backoff with jitter, from the configuration's `retry` block."""

    @pytest.mark.parametrize(
        ("draw", "waits"),
        [
            (1.0, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]),  # the longest jitter: the backoff itself
            (0.0, [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]),  # the shortest: half of it
        ],
    )
    def test_waits_double_from_the_base_up_to_the_cap(
        self, draw: float, waits: list[float]
    ) -> None:
        clock = FakeTime()
        policy = RetryPolicy(
            max_attempts=7,
            backoff_base=0.5,
            backoff_cap=4.0,
            sleep=clock.sleep,
            rng=FixedJitter(draw),
        )

        assert policy.run(failing(6)) == "done"
        assert clock.sleeps == waits

    def test_gives_up_after_the_configured_attempts_without_a_last_wait(self) -> None:
        clock = FakeTime()
        policy = RetryPolicy.from_config(RetryConfig(max_attempts=4), sleep=clock.sleep)
        call = failing(10)

        with pytest.raises(RetriesExhausted, match="after 4 attempt") as caught:
            policy.run(call)

        assert len(call.calls) == 4
        assert len(clock.sleeps) == 3
        assert caught.value.attempts == 4
        assert str(caught.value.last) == "server error 503"

    def test_one_attempt_means_no_retry_and_no_wait(self) -> None:
        clock = FakeTime()
        policy = RetryPolicy.from_config(RetryConfig(max_attempts=1), sleep=clock.sleep)

        with pytest.raises(RetriesExhausted):
            policy.run(failing(1))
        assert clock.sleeps == []

    def test_a_refusal_is_not_retried(self) -> None:
        clock = FakeTime()
        calls: list[int] = []

        def refused() -> str:
            calls.append(1)
            raise BrokerError("Robinhood refused GET /orders/: 400")

        with pytest.raises(BrokerError):
            RetryPolicy(sleep=clock.sleep).run(refused)
        assert (len(calls), clock.sleeps) == (1, [])

    def test_fewer_than_one_attempt_is_refused(self) -> None:
        with pytest.raises(ValueError, match="max_attempts"):
            RetryPolicy(max_attempts=0)

    def test_disagreements_name_the_key_path_of_each_setting(self) -> None:
        policy = RetryPolicy(max_attempts=5, backoff_base=0.5, backoff_cap=2.0)

        found = list(policy.disagreements(RetryConfig()))

        assert found == [("retry.max_attempts", 3, 5), ("retry.backoff_max_seconds", 8.0, 2.0)]
        assert list(RetryPolicy.from_config(RetryConfig()).disagreements(RetryConfig())) == []


class TestThrottleWait:
    """A 429's stated wait is honoured, and a wait beyond the cap is not slept at all."""

    def test_the_stated_wait_replaces_a_shorter_backoff(self) -> None:
        clock = FakeTime()
        policy = RetryPolicy(sleep=clock.sleep, rng=FixedJitter(1.0))

        policy.run(failing(1, AmbiguousAttempt("throttled (429)", retry_after=20.0)))

        assert clock.sleeps == [20.0]

    def test_a_longer_backoff_is_kept_over_a_short_stated_wait(self) -> None:
        clock = FakeTime()
        policy = RetryPolicy(backoff_base=3.0, sleep=clock.sleep, rng=FixedJitter(1.0))

        policy.run(failing(1, AmbiguousAttempt("throttled (429)", retry_after=1.0)))

        assert clock.sleeps == [3.0]

    def test_a_wait_beyond_the_cap_gives_up_at_once(self) -> None:
        clock = FakeTime()
        policy = RetryPolicy(max_attempts=5, max_throttle_wait=60.0, sleep=clock.sleep)
        call = failing(5, AmbiguousAttempt("throttled (429)", retry_after=3600.0))

        with pytest.raises(RetriesExhausted) as caught:
            policy.run(call)

        assert (len(call.calls), clock.sleeps, caught.value.attempts) == (1, [], 1)

    def test_a_wait_at_the_cap_is_still_slept(self) -> None:
        clock = FakeTime()
        policy = RetryPolicy(max_throttle_wait=60.0, sleep=clock.sleep, rng=FixedJitter(0.0))

        policy.run(failing(1, AmbiguousAttempt("throttled (429)", retry_after=60.0)))

        assert clock.sleeps == [60.0]


@pytest.mark.usefixtures("logged_in")
class TestGatewayRetries:
    """The live gateway retries as its configuration says, through the same loop."""

    def test_attempts_come_from_the_configuration(self, rsps: responses.RequestsMock) -> None:
        clock = FakeTime()
        config = OrderManagementConfig.from_dict({"retry": {"max_attempts": 5}})
        gateway = RobinhoodGateway.from_config(
            config, sleep=clock.sleep, clock=clock.monotonic, seed=1
        )
        rsps.add(responses.GET, URL, status=503, body="unavailable")

        with pytest.raises(BrokerError, match="after 5 attempt"):
            gateway.fetch("ord-1")

        assert len(rsps.calls) == 5
        # 4 backoff waits; the rate limiter may add its own pacing sleeps in between.
        assert len([s for s in clock.sleeps if s <= 8.0]) >= 4

    def test_a_throttled_read_waits_what_robinhood_states(
        self, rsps: responses.RequestsMock
    ) -> None:
        clock = FakeTime()
        gateway = make_gateway(clock)
        rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "30"}, json={})
        rsps.add(responses.GET, URL, status=404, json={"detail": "Not found."})

        assert gateway.fetch("ord-1") is None
        assert clock.sleeps == [30.0]

    def test_a_gateway_whose_login_retries_otherwise_is_refused_by_the_manager(self) -> None:
        from orders.gateways.auth import RobinhoodAuth  # noqa: PLC0415

        auth = RobinhoodAuth("u", "p", max_attempts=6, env={})
        gateway = RobinhoodGateway(auth=auth)

        with pytest.raises(ConfigError) as caught:
            OrderManager(gateway, config=OrderManagementConfig())
        assert caught.value.key_path == "order_management.retry.max_attempts"
