"""RobinhoodAuth retries its login as the configuration's `retry` block says, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import responses
from robin_stocks.robinhood import helper as rh_helper

from orders.config import OrderManagementConfig
from orders.errors import AuthenticationError, ConfigError
from orders.gateways.auth import RobinhoodAuth
from orders.gateways.robinhood import RobinhoodGateway
from orders.manager import OrderManager
from tests.gateways.robinhood_fixtures import POSITIONS_URL, TOKEN_URL, FakeTime

TOKEN = {"access_token": "access-1", "token_type": "Bearer", "expires_in": 86400}


pytestmark = pytest.mark.usefixtures("logged_out")  # conftest.py


def configured(retry: dict[str, object]) -> OrderManagementConfig:
    return OrderManagementConfig.from_dict({"retry": retry})


def auth_from(config: OrderManagementConfig, tmp_path: Path, clock: FakeTime) -> RobinhoodAuth:
    return RobinhoodAuth.from_config(
        config, "trader@example.com", "pw", session_dir=tmp_path, sleep=clock.sleep, env={}
    )


def token_posts(rsps: responses.RequestsMock) -> int:
    return sum(1 for call in rsps.calls if call.request.url == TOKEN_URL)


class TestLoginRetriesFromConfig:
    """The login's attempts and waits are the configuration's, not a copy of their own."""

    def test_attempts_follow_the_configuration(
        self, tmp_path: Path, rsps: responses.RequestsMock
    ) -> None:
        clock = FakeTime()
        rsps.add(responses.POST, TOKEN_URL, body=requests.ConnectionError("no route"))
        config = configured({"max_attempts": 5})

        with pytest.raises(AuthenticationError, match="after 5 attempt"):
            auth_from(config, tmp_path, clock).login()

        assert token_posts(rsps) == 5
        assert len(clock.sleeps) == 4

    def test_waits_follow_the_configured_backoff(
        self, tmp_path: Path, rsps: responses.RequestsMock
    ) -> None:
        clock = FakeTime()
        rsps.add(responses.POST, TOKEN_URL, status=503, body="unavailable")
        config = configured(
            {"max_attempts": 4, "backoff_base_seconds": 2, "backoff_max_seconds": 5}
        )

        with pytest.raises(AuthenticationError):
            auth_from(config, tmp_path, clock).login()

        # Each wait is the capped backoff (2, 4, 5) shortened by jitter to no less than half.
        full = [2.0, 4.0, 5.0]
        assert len(clock.sleeps) == 3
        assert all(f / 2 <= s <= f for s, f in zip(clock.sleeps, full, strict=True))

    def test_a_login_that_recovers_is_logged_in(
        self, tmp_path: Path, rsps: responses.RequestsMock
    ) -> None:
        clock = FakeTime()
        rsps.add(responses.POST, TOKEN_URL, status=502, body="bad gateway")
        rsps.add(responses.POST, TOKEN_URL, json=TOKEN)
        rsps.add(responses.GET, POSITIONS_URL, json={"results": []})

        auth_from(configured({"max_attempts": 2}), tmp_path, clock).login()

        assert rh_helper.LOGGED_IN is True
        assert token_posts(rsps) == 2

    def test_a_throttle_beyond_the_cap_is_not_waited_out(
        self, tmp_path: Path, rsps: responses.RequestsMock
    ) -> None:
        clock = FakeTime()
        rsps.add(responses.POST, TOKEN_URL, status=429, headers={"Retry-After": "86400"}, json={})

        with pytest.raises(AuthenticationError, match="after 1 attempt"):
            auth_from(configured({"max_attempts": 5}), tmp_path, clock).login()

        assert (token_posts(rsps), clock.sleeps) == (1, [])

    def test_a_refused_password_is_never_retried(
        self, tmp_path: Path, rsps: responses.RequestsMock
    ) -> None:
        clock = FakeTime()
        rsps.add(responses.POST, TOKEN_URL, status=400, json={"detail": "Unable to log in."})

        with pytest.raises(AuthenticationError, match="Not retried"):
            auth_from(configured({"max_attempts": 5}), tmp_path, clock).login()

        assert (token_posts(rsps), clock.sleeps) == (1, [])


class TestLoginAgreesWithConfig:
    """A login built apart from the configuration must not silently retry otherwise."""

    def test_the_defaults_are_the_configurations(self, tmp_path: Path) -> None:
        config = OrderManagementConfig()

        assert list(RobinhoodAuth(session_dir=tmp_path, env={}).config_disagreements(config)) == []
        assert list(auth_from(config, tmp_path, FakeTime()).config_disagreements(config)) == []

    def test_a_disagreement_names_the_key(self, tmp_path: Path) -> None:
        auth = RobinhoodAuth(session_dir=tmp_path, backoff_cap=30.0, env={})

        found = list(auth.config_disagreements(OrderManagementConfig()))

        assert found == [("retry.backoff_max_seconds", 8.0, 30.0)]

    def test_a_gateway_with_a_disagreeing_login_is_refused(self, tmp_path: Path) -> None:
        config = configured({"max_attempts": 5})
        agreeing = auth_from(config, tmp_path, FakeTime())
        stale = RobinhoodAuth(session_dir=tmp_path, env={})

        gateway = RobinhoodGateway.from_config(config, auth=agreeing)
        assert OrderManager(gateway, config=config).gateway is gateway
        with pytest.raises(ConfigError) as caught:
            OrderManager(RobinhoodGateway.from_config(config, auth=stale), config=config)
        assert caught.value.key_path == "order_management.retry.max_attempts"


class TestLoginSendsThePasswordSparingly:
    """Repeated password POSTs can lock a Robinhood account: the login spends one budget."""

    def test_a_throttled_login_names_nobody(
        self, tmp_path: Path, rsps: responses.RequestsMock
    ) -> None:
        clock = FakeTime()
        rsps.add(
            responses.POST,
            TOKEN_URL,
            status=429,
            json={"detail": "Too many login attempts for trader@example.com"},
        )

        with pytest.raises(AuthenticationError, match=r"throttled \(429\)") as raised:
            auth_from(configured({"max_attempts": 2}), tmp_path, clock).login()

        assert "trader" not in str(raised.value).lower()

    def test_a_redirected_login_is_refused_not_sent_again(
        self, tmp_path: Path, rsps: responses.RequestsMock
    ) -> None:
        clock = FakeTime()
        rsps.add(responses.POST, TOKEN_URL, status=302, headers={"Location": "/elsewhere"})

        with pytest.raises(AuthenticationError, match="refused the login"):
            auth_from(configured({"max_attempts": 3}), tmp_path, clock).login()

        assert token_posts(rsps) == 1

    def test_failures_and_verification_rounds_share_the_attempts(
        self, tmp_path: Path, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clock = FakeTime()
        monkeypatch.setattr(
            "orders.gateways.auth.rh_auth._validate_sherrif_id", lambda *_args: None
        )
        for _ in range(3):
            rsps.add(responses.POST, TOKEN_URL, body=requests.ConnectionError("no route"))
            rsps.add(responses.POST, TOKEN_URL, body=requests.ConnectionError("no route"))
            rsps.add(responses.POST, TOKEN_URL, json={"verification_workflow": {"id": "w"}})
        auth = RobinhoodAuth.from_config(
            configured({"max_attempts": 3}),
            "trader@example.com",
            "pw",
            session_dir=tmp_path,
            sleep=clock.sleep,
            env={},
            interactive=True,
        )

        with pytest.raises(AuthenticationError):
            auth.login()

        assert token_posts(rsps) <= 3
