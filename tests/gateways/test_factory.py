"""Choosing the live broker: `order_management.broker` names it, the factory builds its gateway
(Robinhood's over a real login, intercepted with `responses`), and a name it does not know is a
`ConfigError` that lists the ones it does."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import responses
from robin_stocks.robinhood import helper as rh_helper

from orders.bot import TradingBot
from orders.config import Mode, OrderManagementConfig
from orders.errors import AuthenticationError, ConfigError
from orders.gateways import _factory
from orders.gateways._factory import BROKERS, build_gateway, gateway_builder
from orders.gateways.base import OrderGateway
from orders.gateways.paper import PaperBroker
from orders.gateways.robinhood import RobinhoodGateway
from tests.gateways.robinhood_fixtures import POSITIONS_URL, TOKEN_URL, robin_stocks_state

USERNAME = "trader@example.com"
PASSWORD = "hunter2-correct-horse"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def logged_out() -> Iterator[None]:
    with robin_stocks_state(logged_in=False):
        yield


@pytest.fixture
def robinhood_login(rsps: responses.RequestsMock) -> responses.RequestsMock:
    """Robinhood's token and positions endpoints, so the real login code runs offline."""
    token = {
        "access_token": "access-token-abcdef123456",
        "token_type": "Bearer",
        "expires_in": 86400,
        "refresh_token": "refresh-token-zyxw987654",
        "scope": "internal",
    }
    rsps.add(responses.POST, TOKEN_URL, json=token)
    rsps.add(responses.GET, POSITIONS_URL, json={"next": None, "results": []})
    return rsps


def credentials(tmp_path: Path) -> dict[str, str]:
    return {
        "ROBINHOOD_USERNAME": USERNAME,
        "ROBINHOOD_PASSWORD": PASSWORD,
        "ROBINHOOD_TOTP_SECRET": TOTP_SECRET,
        "ROBINHOOD_SESSION_DIR": str(tmp_path / "session"),
    }


class TestBrokerKey:
    """The `broker` key: Robinhood by default, strict like every other key."""

    def test_default_is_robinhood(self) -> None:
        assert OrderManagementConfig.from_dict({}).broker == "robinhood"
        assert OrderManagementConfig().broker == "robinhood"

    def test_the_key_round_trips_through_a_file(self, tmp_path: Path) -> None:
        block = {"mode": "live", "broker": "robinhood"}
        path = tmp_path / "config.json"
        path.write_text(json.dumps({"order_management": block}), encoding="utf-8")

        config = OrderManagementConfig.from_file(path)

        assert config == OrderManagementConfig.from_dict(block)
        assert config == OrderManagementConfig(mode=Mode.LIVE, broker="robinhood")
        assert config.broker == "robinhood"

    @pytest.mark.parametrize("name", ["alpaca", "Robinhood", "robinhood "])
    def test_an_unknown_broker_names_the_key_and_the_known_ones(self, name: str) -> None:
        with pytest.raises(ConfigError) as raised:
            OrderManagementConfig.from_dict({"broker": name})

        assert raised.value.key_path == "order_management.broker"
        assert '"robinhood"' in raised.value.problem
        assert json.dumps(name) in raised.value.problem  # as the user wrote it in JSON

    @pytest.mark.parametrize("value", [5, None, "", ["robinhood"]])
    def test_a_broker_that_is_not_a_name_is_refused(self, value: object) -> None:
        with pytest.raises(ConfigError) as raised:
            OrderManagementConfig.from_dict({"broker": value})

        assert raised.value.key_path == "order_management.broker"

    def test_a_file_with_an_unknown_broker_says_which_file(self, tmp_path: Path) -> None:
        path = tmp_path / "config.json"
        path.write_text('{"order_management": {"broker": "ibkr"}}', encoding="utf-8")

        with pytest.raises(ConfigError) as raised:
            OrderManagementConfig.from_file(path)

        assert raised.value.key_path == "order_management.broker"
        assert str(path) in raised.value.problem


class TestFactory:
    """A broker name maps to the builder of its gateway, imported only when asked for."""

    def test_every_broker_in_the_map_has_a_builder(self) -> None:
        for name in BROKERS:
            assert callable(gateway_builder(name))

    def test_an_unknown_name_is_a_config_error_listing_the_known_ones(self) -> None:
        with pytest.raises(ConfigError) as raised:
            gateway_builder("alpaca")

        assert raised.value.key_path == "order_management.broker"
        assert '"robinhood"' in raised.value.problem
        assert '"alpaca"' in raised.value.problem

    @pytest.mark.usefixtures("logged_out")
    def test_robinhood_builds_a_logged_in_gateway_tuned_by_the_config(
        self, tmp_path: Path, robinhood_login: responses.RequestsMock
    ) -> None:
        config = OrderManagementConfig.from_dict(
            {"mode": "live", "retry": {"max_attempts": 5}, "rate_limit": {"burst": 3}}
        )

        gateway = build_gateway(config, credentials(tmp_path))

        assert isinstance(gateway, RobinhoodGateway)
        assert list(gateway.config_disagreements(config)) == []
        assert rh_helper.LOGGED_IN  # the session the gateway sends over
        token_forms = [c for c in robinhood_login.calls if c.request.url == TOKEN_URL]
        assert len(token_forms) == 1
        assert USERNAME.replace("@", "%40") in str(token_forms[0].request.body)

    @pytest.mark.usefixtures("logged_out")
    def test_robinhood_without_credentials_sends_nothing(self) -> None:
        config = OrderManagementConfig.from_dict({"mode": "live"})

        with responses.RequestsMock() as rsps, pytest.raises(AuthenticationError) as raised:
            build_gateway(config, {})

        assert "ROBINHOOD_USERNAME" in str(raised.value)
        assert len(rsps.calls) == 0

    def test_choosing_a_broker_does_not_load_a_broker_library(self) -> None:
        """Loading a config and looking its broker up leave robin_stocks, requests and pyotp
        unloaded until a gateway is built."""
        code = (
            "import sys\n"
            "from orders.bot import TradingBot\n"
            "from orders.config import OrderManagementConfig\n"
            "from orders.gateways._factory import BROKERS\n"
            "OrderManagementConfig.from_dict({'broker': 'robinhood', 'mode': 'live'})\n"
            "assert BROKERS\n"
            "print(sorted(m for m in ('robin_stocks', 'requests', 'pyotp') if m in sys.modules))\n"
        )
        done = subprocess.run(  # noqa: S603 - this interpreter, the test's own code
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "[]"


def _another_broker(config: OrderManagementConfig, env: Mapping[str, str] | None) -> OrderGateway:
    """A stand-in for a second live broker's builder: a simulated broker named by the map."""
    return PaperBroker(buying_power="5000", retention_seconds=config.retention_seconds)


class TestBotUsesTheFactory:
    """`TradingBot.from_config` trades live on whichever broker the configuration names."""

    def test_a_second_broker_is_one_line_in_the_map(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        brokers: dict[str, str] = {**BROKERS, "another": f"{__name__}:_another_broker"}
        monkeypatch.setattr(_factory, "BROKERS", MappingProxyType(brokers))
        block: dict[str, Any] = {
            "mode": "live",
            "broker": "another",
            "audit_log_path": str(tmp_path / "live.jsonl"),
        }
        path = tmp_path / "config.json"
        path.write_text(json.dumps({"order_management": block}), encoding="utf-8")

        bot = TradingBot.from_config(path, env={})

        assert bot.mode is Mode.LIVE
        assert isinstance(bot.manager.gateway, PaperBroker)
        assert bot.manager.account is not None
        assert bot.manager.account.buying_power() == 5000

    def test_paper_mode_ignores_the_live_broker(self, tmp_path: Path) -> None:
        path = tmp_path / "config.json"
        block = {"broker": "robinhood", "audit_log_path": str(tmp_path / "paper.jsonl")}
        path.write_text(json.dumps({"order_management": block}), encoding="utf-8")

        bot = TradingBot.from_config(path, env={})

        assert isinstance(bot.manager.gateway, PaperBroker)
