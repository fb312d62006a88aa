"""`TradingBot`: every `TradeResult` status on a `PaperBroker`, `trades()`, `cancel_all`, `run`,
and `from_config` (paper by default, live refused without credentials before any network)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from orders.audit import AuditJournal
from orders.bot import ORDER_TYPE_NOT_SUPPORTED, TradeResult, TradeStatus, TradingBot
from orders.config import Mode, OrderManagementConfig
from orders.errors import AuthenticationError
from orders.gateways.paper import Fault, PaperBroker
from orders.manager import OrderManager
from orders.model import BrokerOrder, OrderState

D = Decimal
QUOTES = {"AAPL": "187.40", "MSFT": "415.00", "NVDA": "131.25"}
CREDENTIAL_VARS = (
    "ROBINHOOD_USERNAME",
    "ROBINHOOD_PASSWORD",
    "ROBINHOOD_TOTP_SECRET",
    "ROBINHOOD_SESSION_DIR",
)


class Rig:
    """A bot on a PaperBroker with its journal in a temporary directory."""

    def __init__(self, tmp_path: Path, **config: Any) -> None:
        self.journal_path = tmp_path / "j.jsonl"
        self.broker = PaperBroker(quotes=QUOTES)
        settings = {"audit_log_path": str(self.journal_path), **config}
        self.manager = OrderManager(
            self.broker,
            config=OrderManagementConfig.from_dict(settings),
            journal=AuditJournal(self.journal_path),
        )
        self.bot = TradingBot(self.manager)

    def broker_orders(self) -> list[BrokerOrder]:
        """Every order the broker has ever seen."""
        return self.broker.updated_since(datetime(2000, 1, 1, tzinfo=UTC))

    def journaled(self) -> dict[str, Any]:
        """The orders the journal holds, rebuilt from the file alone."""
        return AuditJournal.replay(self.journal_path)

    def settle(self) -> None:
        self.broker.match()
        self.bot.sync()


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Any HTTP request fails the test loudly; the list records attempts."""
    attempts: list[tuple[Any, ...]] = []

    def refuse(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        attempts.append((method, url))
        raise AssertionError(f"network used: {method} {url}")

    monkeypatch.setattr(requests.Session, "request", refuse)
    return attempts


def write_config(path: Path, **block: Any) -> Path:
    path.write_text(json.dumps({"order_management": block}), encoding="utf-8")
    return path


class TestSubmitted:
    """An order the broker accepted, or whose answer was lost, reports `submitted`."""

    def test_accepted_order_is_submitted_and_rests_at_the_broker(self, rig: Rig) -> None:
        result = rig.bot.execute_trade("AAPL", "buy", 10, "187.40")

        assert result.status is TradeStatus.SUBMITTED
        assert result.ok
        assert result.order_state is OrderState.SUBMITTED
        assert result.limit_price == D("187.49")  # 5 bps over the reference, to the cent
        at_broker = rig.broker.find_by_client_id(result.order_id or "")
        assert at_broker is not None
        assert at_broker.limit_price == result.limit_price
        assert at_broker.quantity == 10
        assert at_broker.broker_order_id in result.message
        assert [o.client_order_id for o in rig.broker_orders()] == [result.order_id]

    def test_lost_answer_is_submitted_pending_and_looked_up_not_resent(self, rig: Rig) -> None:
        rig.broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)

        result = rig.bot.execute_trade("NVDA", "buy", 20, "131.25")

        assert result.status is TradeStatus.SUBMITTED
        assert result.order_id is not None
        assert result.order_state is OrderState.PENDING
        assert "looked up" in result.message
        assert "client id" in result.message
        rig.settle()
        (trade,) = rig.bot.trades()
        assert trade.order_state is OrderState.FILLED
        assert [o.client_order_id for o in rig.broker_orders()] == [result.order_id]

    def test_request_that_never_arrived_ends_rejected_as_never_placed(self, tmp_path: Path) -> None:
        rig = Rig(tmp_path, unknown_order_lookups=1, unknown_order_grace_seconds=0)
        rig.broker.inject(Fault.TIMEOUT_BEFORE_ACCEPT)

        result = rig.bot.execute_trade("MSFT", "sell", 5, "415.00")
        assert (result.status, result.order_state) == (TradeStatus.SUBMITTED, OrderState.PENDING)
        rig.settle()

        (trade,) = rig.bot.trades()
        assert trade.order_state is OrderState.REJECTED
        order = rig.manager.get(result.order_id or "")
        assert order is not None
        assert "never placed" in (order.reason or "")
        assert rig.broker_orders() == []


class TestBlocked:
    """A safety check refuses the trade: `blocked`, the reasons, and nothing sent."""

    def test_duplicate_symbol_and_side_while_the_first_works(self, rig: Rig) -> None:
        first = rig.bot.execute_trade("AAPL", "buy", 10, "187.40")

        second = rig.bot.execute_trade("AAPL", "buy", 5, "187.00", strategy="momentum")

        assert second.status is TradeStatus.BLOCKED
        assert not second.ok
        assert second.order_id is None
        assert second.reasons
        assert any("duplicate" in r and (first.order_id or "?") in r for r in second.reasons)
        assert [o.client_order_id for o in rig.broker_orders()] == [first.order_id]
        assert list(rig.journaled()) == [first.order_id]

    def test_opposite_side_is_not_a_duplicate(self, rig: Rig) -> None:
        rig.bot.execute_trade("AAPL", "buy", 10, "187.40")

        assert rig.bot.execute_trade("AAPL", "sell", 10, "187.40").status is TradeStatus.SUBMITTED

    def test_duplicate_is_allowed_again_once_the_first_is_filled(self, rig: Rig) -> None:
        rig.bot.execute_trade("AAPL", "buy", 10, "187.40")
        rig.settle()

        again = rig.bot.execute_trade("AAPL", "buy", 10, "187.40")

        assert again.status is TradeStatus.SUBMITTED

    def test_order_with_a_lost_answer_still_holds_its_guard(self, rig: Rig) -> None:
        rig.broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)
        rig.bot.execute_trade("NVDA", "buy", 20, "131.25")

        again = rig.bot.execute_trade("NVDA", "buy", 20, "131.25")

        assert again.status is TradeStatus.BLOCKED
        assert len(rig.broker_orders()) == 1

    def test_buy_beyond_buying_power(self, rig: Rig) -> None:
        result = rig.bot.execute_trade("MSFT", "buy", 1000, "415.00")  # ~415k of 100k

        assert result.status is TradeStatus.BLOCKED
        assert any("buying power" in r for r in result.reasons)
        assert rig.broker_orders() == []

    def test_consecutive_rejects_trip_the_breaker(self, tmp_path: Path) -> None:
        rig = Rig(tmp_path, circuit_breakers={"max_consecutive_rejects": 2})
        rig.broker.inject(Fault.REJECT, times=2)
        rig.bot.execute_trade("AAPL", "buy", 1, "187.40")
        rig.bot.execute_trade("MSFT", "buy", 1, "415.00")

        result = rig.bot.execute_trade("NVDA", "buy", 1, "131.25")

        assert result.status is TradeStatus.BLOCKED
        assert any("circuit breaker" in r for r in result.reasons)
        assert rig.broker_orders() == []


class TestRejected:
    """The broker refuses the order: `rejected` with the broker's own reason."""

    def test_reject_carries_the_brokers_reason(self, rig: Rig) -> None:
        rig.broker.inject(Fault.REJECT, message="Order rejected: symbol halted")

        result = rig.bot.execute_trade("NVDA", "sell", 25, "131.25")

        assert result.status is TradeStatus.REJECTED
        assert not result.ok
        assert result.order_state is OrderState.REJECTED
        assert result.order_id is not None
        assert "Order rejected: symbol halted" in result.message
        journaled = rig.journaled()[result.order_id]
        assert journaled.state is OrderState.REJECTED
        assert journaled.reason == "Order rejected: symbol halted"

    def test_a_rejected_order_releases_its_guard(self, rig: Rig) -> None:
        rig.broker.inject(Fault.REJECT)
        rig.bot.execute_trade("NVDA", "sell", 25, "131.25")

        assert rig.bot.execute_trade("NVDA", "sell", 25, "131.25").status is TradeStatus.SUBMITTED


class TestUnsupported:
    """Anything but a limit order is `unsupported`, with a code, and nothing is journaled."""

    @pytest.mark.parametrize("order_type", ["market", "stop", "stop_limit", "LIMIT", None])
    def test_non_limit_order_types(self, rig: Rig, order_type: Any) -> None:
        result = rig.bot.execute_trade("AAPL", "buy", 10, "187.40", order_type=order_type)

        assert result.status is TradeStatus.UNSUPPORTED
        assert result.error_code == ORDER_TYPE_NOT_SUPPORTED == "ORDER_TYPE_NOT_SUPPORTED"
        assert result.supported_order_types == ("limit",)
        assert result.order_id is None
        assert "limit" in result.message
        assert rig.broker_orders() == []
        assert rig.journal_path.read_bytes() == b""

    def test_explicit_limit_is_supported(self, rig: Rig) -> None:
        result = rig.bot.execute_trade("AAPL", "buy", 10, "187.40", order_type="limit")

        assert result.status is TradeStatus.SUBMITTED
        assert result.error_code is None


class TestError:
    """Bad input is an `error` with a message naming the problem, and nothing is sent."""

    @pytest.mark.parametrize(
        ("symbol", "action", "quantity", "price", "words"),
        [
            ("AAPL", "buy", 1.5, "187.40", ("quantity", "float")),
            ("AAPL", "buy", 10, 187.4, ("reference_price", "float")),
            ("aapl", "buy", 10, "187.40", ("symbol", "uppercase")),
            ("AAPL MSFT", "buy", 10, "187.40", ("symbol",)),
            ("AAPL", "hold", 10, "187.40", ("side", "'buy', 'sell'")),
            ("AAPL", "buy", 0, "187.40", ("quantity", "greater than zero")),
            ("AAPL", "buy", 10, "-1", ("reference_price", "greater than zero")),
            ("AAPL", "buy", "ten", "187.40", ("quantity", "not a decimal")),
        ],
    )
    def test_bad_input(
        self,
        rig: Rig,
        symbol: Any,
        action: Any,
        quantity: Any,
        price: Any,
        words: tuple[str, ...],
    ) -> None:
        result = rig.bot.execute_trade(symbol, action, quantity, price)

        assert result.status is TradeStatus.ERROR
        assert result.order_id is None
        for word in words:
            assert word in result.message
        assert rig.broker_orders() == []
        assert rig.journal_path.read_bytes() == b""

    def test_unexpected_failure_is_an_answer_not_a_traceback(
        self, rig: Rig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(**_: Any) -> list[str]:
            raise RuntimeError("safety store unavailable")

        monkeypatch.setattr(rig.manager.safety, "check", broken)

        result = rig.bot.execute_trade("AAPL", "buy", 10, "187.40")

        assert result.status is TradeStatus.ERROR
        assert "RuntimeError" in result.message
        assert "safety store unavailable" in result.message
        assert rig.broker_orders() == []


class TestTrades:
    """`trades()` lists every trade in order, each with its order's latest state."""

    def test_latest_states_after_match_and_sync(self, tmp_path: Path) -> None:
        rig = Rig(tmp_path)
        rig.broker.set_liquidity("AAPL", 4)
        rig.broker.set_quote("MSFT", "500")  # the buy rests below the market
        part = rig.bot.execute_trade("AAPL", "buy", 10, "187.40")
        rest = rig.bot.execute_trade("MSFT", "buy", 1, "415.00")
        blocked = rig.bot.execute_trade("AAPL", "buy", 10, "187.40")
        rig.broker.inject(Fault.REJECT)
        rejected = rig.bot.execute_trade("NVDA", "sell", 1, "131.25")
        unsupported = rig.bot.execute_trade("NVDA", "buy", 1, "131.25", order_type="market")
        assert [t.status for t in rig.bot.trades()] == [
            TradeStatus.SUBMITTED,
            TradeStatus.SUBMITTED,
            TradeStatus.BLOCKED,
            TradeStatus.REJECTED,
            TradeStatus.UNSUPPORTED,
        ]

        rig.settle()

        trades = rig.bot.trades()
        assert [t.order_id for t in trades] == [
            part.order_id,
            rest.order_id,
            None,
            rejected.order_id,
            None,
        ]
        assert [t.order_state for t in trades] == [
            OrderState.PARTIALLY_FILLED,
            OrderState.SUBMITTED,
            None,
            OrderState.REJECTED,
            None,
        ]
        assert blocked.order_state is None
        assert unsupported.order_state is None
        # The results handed out earlier are unchanged snapshots of the moment.
        assert part.order_state is OrderState.SUBMITTED

    def test_trades_is_a_copy(self, rig: Rig) -> None:
        rig.bot.execute_trade("AAPL", "buy", 10, "187.40")
        rig.bot.trades().clear()

        assert len(rig.bot.trades()) == 1


class TestCancelAll:
    """`cancel_all` asks the broker to cancel every working order and only those."""

    def test_cancels_working_orders_and_leaves_finished_ones(self, rig: Rig) -> None:
        rig.broker.set_quote("MSFT", "500")
        rig.broker.set_quote("NVDA", "100")
        filled = rig.bot.execute_trade("AAPL", "buy", 10, "187.40")
        rig.settle()
        working = [
            rig.bot.execute_trade("MSFT", "buy", 1, "415.00"),
            rig.bot.execute_trade("NVDA", "sell", 1, "131.25"),
        ]

        cancelled = rig.bot.cancel_all()

        assert cancelled == [t.order_id for t in working]
        rig.settle()
        states = {t.order_id: t.order_state for t in rig.bot.trades()}
        assert states == {
            filled.order_id: OrderState.FILLED,
            working[0].order_id: OrderState.CANCELLED,
            working[1].order_id: OrderState.CANCELLED,
        }
        assert rig.bot.cancel_all() == []

    def test_nothing_to_cancel(self, rig: Rig) -> None:
        assert rig.bot.cancel_all() == []


class TestRun:
    """`run` syncs until told to stop, survives a failed round, and leaves the journal closed."""

    def run_in_thread(
        self, bot: TradingBot, stop: threading.Event, on_sync: Callable[[Any], None]
    ) -> threading.Thread:
        thread = threading.Thread(target=bot.run, args=(stop,), kwargs={"on_sync": on_sync})
        thread.start()
        return thread

    def test_syncs_until_stopped(self, tmp_path: Path) -> None:
        rig = Rig(tmp_path, sync_interval_seconds="0.01")
        trade = rig.bot.execute_trade("AAPL", "buy", 10, "187.40")
        rig.broker.match()
        stop = threading.Event()
        rounds: list[Any] = []

        def on_sync(report: Any) -> None:
            rounds.append(report)
            if len(rounds) >= 3:
                stop.set()

        thread = self.run_in_thread(rig.bot, stop, on_sync)
        thread.join(timeout=5)

        assert not thread.is_alive()
        assert len(rounds) == 3
        assert rounds[0].changed_orders == (trade.order_id,)
        assert rig.bot.trades()[0].order_state is OrderState.FILLED
        assert rig.journaled()[trade.order_id or ""].state is OrderState.FILLED

    def test_a_failed_round_is_logged_and_the_loop_goes_on(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        rig = Rig(tmp_path, sync_interval_seconds="0.01")
        real_sync = rig.manager.sync
        calls = {"n": 0}

        def flaky_sync() -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("broker listing exploded")
            return real_sync()

        monkeypatch.setattr(rig.manager, "sync", flaky_sync)
        stop = threading.Event()
        rounds: list[Any] = []

        def on_sync(report: Any) -> None:
            rounds.append(report)
            stop.set()

        thread = self.run_in_thread(rig.bot, stop, on_sync)
        thread.join(timeout=5)

        assert not thread.is_alive()
        assert calls["n"] == 2
        assert len(rounds) == 1

    def test_already_stopped_returns_at_once_with_the_journal_closed(self, rig: Rig) -> None:
        stop = threading.Event()
        stop.set()
        rounds: list[Any] = []

        rig.bot.run(stop, on_sync=rounds.append)

        assert rounds == []
        # Closed: the bot can no longer journal, so a trade is an error, never a silent send.
        result = rig.bot.execute_trade("AAPL", "buy", 1, "187.40")
        assert result.status is TradeStatus.ERROR
        assert rig.broker_orders() == []


class TestPaperSync:
    """In paper mode `sync` runs the simulated market first: no `match()` call is needed."""

    def test_a_marketable_order_fills_with_sync_alone(self, rig: Rig) -> None:
        trade = rig.bot.execute_trade("AAPL", "buy", 10, "187.40")

        report = rig.bot.sync()

        assert [e.trigger for _, e in report.events] == ["fill"]
        assert rig.bot.trades()[0].order_state is OrderState.FILLED
        assert rig.journaled()[trade.order_id or ""].state is OrderState.FILLED

    def test_every_round_of_run_runs_the_market(self, tmp_path: Path) -> None:
        rig = Rig(tmp_path, sync_interval_seconds="0.01")
        trade = rig.bot.execute_trade("AAPL", "buy", 10, "187.40")
        stop = threading.Event()

        rig.bot.run(stop, on_sync=lambda report: stop.set())

        assert rig.journaled()[trade.order_id or ""].state is OrderState.FILLED


class TestFromConfig:
    """`from_config` builds a paper bot by default and refuses live mode without credentials."""

    def test_paper_bot_from_a_config_file(self, tmp_path: Path) -> None:
        journal = tmp_path / "logs" / "orders.jsonl"
        config = write_config(tmp_path / "c.json", audit_log_path=str(journal))

        bot = TradingBot.from_config(config)

        assert bot.mode is Mode.PAPER
        assert isinstance(bot.manager.gateway, PaperBroker)
        assert bot.manager.journal.path == journal
        result = bot.execute_trade("AAPL", "buy", 10, "187.40")
        assert isinstance(result, TradeResult)
        assert result.status is TradeStatus.SUBMITTED
        assert list(AuditJournal.replay(journal)) == [result.order_id]

    def test_config_offsets_price_the_order(self, tmp_path: Path) -> None:
        config = write_config(
            tmp_path / "c.json",
            audit_log_path=str(tmp_path / "j.jsonl"),
            strategy_overrides={"momentum": {"kind": "absolute", "value": "0.10"}},
        )
        bot = TradingBot.from_config(config)

        result = bot.execute_trade("AAPL", "buy", 10, "187.40", strategy="momentum")

        assert result.limit_price == D("187.50")

    def test_example_config_is_a_paper_bot(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)  # the example journals to logs/ under the working dir
        example = Path(__file__).resolve().parent.parent / "config.example.json"

        bot = TradingBot.from_config(example)

        assert bot.mode is Mode.PAPER
        assert isinstance(bot.manager.gateway, PaperBroker)

    @pytest.mark.parametrize(
        ("present", "missing"),
        [
            ({}, ("ROBINHOOD_USERNAME", "ROBINHOOD_PASSWORD")),
            ({"ROBINHOOD_USERNAME": "someone"}, ("ROBINHOOD_PASSWORD",)),
            ({"ROBINHOOD_USERNAME": "someone", "ROBINHOOD_PASSWORD": ""}, ("ROBINHOOD_PASSWORD",)),
        ],
    )
    def test_live_without_credentials_is_refused_before_any_network(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        no_network: list[tuple[Any, ...]],
        present: dict[str, str],
        missing: tuple[str, ...],
    ) -> None:
        for name in CREDENTIAL_VARS:
            monkeypatch.delenv(name, raising=False)
        for name, value in present.items():
            monkeypatch.setenv(name, value)
        journal = tmp_path / "live.jsonl"
        config = write_config(tmp_path / "c.json", mode="live", audit_log_path=str(journal))

        with pytest.raises(AuthenticationError) as raised:
            TradingBot.from_config(config)

        message = str(raised.value)
        for name in missing:
            assert name in message
        assert '"paper"' in message
        assert no_network == []
        assert not journal.exists()  # nothing was built

    def test_live_refused_with_an_explicit_empty_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[tuple[Any, ...]]
    ) -> None:
        monkeypatch.setenv("ROBINHOOD_USERNAME", "someone")
        monkeypatch.setenv("ROBINHOOD_PASSWORD", "secret")
        config = write_config(tmp_path / "c.json", mode="live", audit_log_path=str(tmp_path / "j"))

        with pytest.raises(AuthenticationError, match="ROBINHOOD_USERNAME"):
            TradingBot.from_config(config, env={})

        assert no_network == []
