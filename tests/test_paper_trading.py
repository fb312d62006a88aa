"""Paper mode as a user runs it: a bot built from a config file trades on a simulated broker that
prices its market from a quote source, expires day orders at the close, and keeps its account in
a state file, so a stopped bot resumes like one on a real broker."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import responses

from orders.audit import AuditJournal
from orders.bot import TradingBot
from orders.config import OrderManagementConfig
from orders.errors import AuthenticationError, BrokerError, ConfigError
from orders.gateways.paper import PaperBroker
from orders.gateways.quotes import CsvQuotes, RobinhoodQuotes
from orders.manager import OrderManager
from orders.model import BrokerOrder, OrderRequest, OrderState
from tests.gateways.robinhood_fixtures import (
    ORDERS_URL,
    POSITIONS_URL,
    QUOTES_URL,
    TOKEN_URL,
    robin_stocks_state,
)

D = Decimal
REPO = Path(__file__).resolve().parent.parent
# Monday 5 January 2026, 10:00 in New York (EST, UTC-5).
MORNING = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


class ManualClock:
    """The bot's clock, moved by the test: no real waiting."""

    def __init__(self, now: datetime = MORNING) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def write_config(tmp_path: Path, name: str = "config.json", **block: Any) -> Path:
    block.setdefault("audit_log_path", str(tmp_path / "logs" / "orders.jsonl"))
    path = tmp_path / name
    path.write_text(json.dumps({"order_management": block}), encoding="utf-8")
    return path


def write_csv(path: Path, *rows: str, header: str = "timestamp,symbol,price") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def broker_orders(bot: TradingBot) -> list[BrokerOrder]:
    broker = bot.manager.gateway
    assert isinstance(broker, PaperBroker)
    return broker.updated_since(datetime(2000, 1, 1, tzinfo=UTC))


def state_of(bot: TradingBot, order_id: str | None) -> OrderState:
    assert order_id is not None
    order = bot.manager.get(order_id)
    assert order is not None
    return order.state


# -- the configuration block -----------------------------------------------------------------


class TestPaperConfig:
    """`order_management.paper`: documented defaults, strict keys, exact numbers."""

    def test_defaults(self) -> None:
        paper = OrderManagementConfig.from_dict({}).paper
        assert paper.quotes == "reference"
        assert paper.state_path == Path("logs/paper-broker.json")
        assert (paper.liquidity, paper.allow_short, dict(paper.fault_rates)) == (None, True, {})

    def test_every_setting_is_read_exactly(self) -> None:
        paper = OrderManagementConfig.from_dict(
            {
                "paper": {
                    "quotes": "data/prices.csv",
                    "state_path": "run/broker.json",
                    "liquidity": "12.5",
                    "allow_short": False,
                    "fault_rates": {"lost_cancel": "0.1", "reject": 0},
                }
            }
        ).paper
        assert paper.quote_file == Path("data/prices.csv")
        assert paper.state_path == Path("run/broker.json")
        assert paper.liquidity == D("12.5")
        assert paper.allow_short is False
        assert paper.fault_rates == {"lost_cancel": D("0.1"), "reject": D(0)}

    @pytest.mark.parametrize(
        ("block", "key_path", "words"),
        [
            ({"quotes": "refrence"}, "paper.quotes", '"reference", "robinhood" or the path'),
            ({"quotes": "prices.txt"}, "paper.quotes", "the path of a .csv file"),
            ({"state_path": ""}, "paper.state_path", "non-empty path"),
            ({"state_path": "logs/orders.jsonl"}, "paper.state_path", "journal's path"),
            ({"liquidity": 0}, "paper.liquidity", "more than 0"),
            ({"liquidity": 1.5}, "paper.liquidity", "Python float"),
            ({"allow_short": "no"}, "paper.allow_short", "true or false"),
            ({"fault_rates": {"lost_cancel": "1.5"}}, "paper.fault_rates.lost_cancel", "0 to 1"),
            ({"fault_rates": {"gremlins": "0.1"}}, "paper.fault_rates.gremlins", "lost_cancel"),
            ({"fault_rates": ["reject"]}, "paper.fault_rates", "JSON object"),
            ({"quote": "reference"}, "paper.quote", "not a known key"),
        ],
    )
    def test_bad_values_name_the_key_path(
        self, block: dict[str, Any], key_path: str, words: str
    ) -> None:
        with pytest.raises(ConfigError) as raised:
            OrderManagementConfig.from_dict({"paper": block})
        assert raised.value.key_path == f"order_management.{key_path}"
        assert words in raised.value.problem

    def test_a_journal_at_the_change_files_path_is_refused(self) -> None:
        """The broker empties its change file at every start: a journal there would be lost."""
        block = {"audit_log_path": "logs/b.changes.jsonl", "paper": {"state_path": "logs/b.json"}}
        with pytest.raises(ConfigError, match="journal's path") as raised:
            OrderManagementConfig.from_dict(block)
        assert raised.value.key_path == "order_management.paper.state_path"

    def test_the_state_file_follows_a_journal_kept_elsewhere(self, tmp_path: Path) -> None:
        journal = tmp_path / "bot-a" / "orders.jsonl"
        moved = OrderManagementConfig.from_dict({"audit_log_path": str(journal)})
        named = OrderManagementConfig.from_dict(
            {"audit_log_path": str(journal), "paper": {"state_path": "elsewhere.json"}}
        )
        assert moved.paper_state_path == tmp_path / "bot-a" / "paper-broker.json"
        assert named.paper_state_path == Path("elsewhere.json")
        assert OrderManagementConfig().paper_state_path == Path("logs/paper-broker.json")


class TestCsvFile:
    """A CSV quote file is replayed by time, and refused whole, by file and line, when bad."""

    def test_a_symbols_price_is_its_last_row_at_or_before_now(self, tmp_path: Path) -> None:
        quotes = CsvQuotes(
            write_csv(
                tmp_path / "p.csv",
                "2026-01-05T15:00:00Z,AAPL,190",
                "2026-01-05T15:00:00Z,MSFT,415.10",
                "2026-01-05T10:00:30-05:00,AAPL,186.9",  # the same instant as 15:00:30Z
            )
        )
        at = {
            t: quotes.prices(["AAPL", "MSFT", "NVDA"], MORNING + timedelta(seconds=t))
            for t in (-1, 0, 29, 30)
        }
        assert at[-1] == {"AAPL": None, "MSFT": None, "NVDA": None}
        assert at[0] == {"AAPL": D(190), "MSFT": D("415.10"), "NVDA": None}
        assert at[29]["AAPL"] == D(190)
        assert at[30]["AAPL"] == D("186.9")

    @pytest.mark.parametrize(
        ("rows", "line", "words"),
        [
            (["2026-01-05T15:00:00Z,AAPL"], 2, "2 column(s), not 3"),
            (["yesterday,AAPL,190"], 2, "not ISO 8601"),
            (["2026-01-05T15:00:00,AAPL,190"], 2, "no UTC offset"),
            (["2026-01-05T15:00:00Z,AAPL,0"], 2, "greater than 0"),
            (["2026-01-05T15:00:00Z,AAPL,-5"], 2, "not a plain decimal price"),
            (["2026-01-05T15:00:00Z,AAPL,1e2"], 2, "no exponent"),
            (["2026-01-05T15:00:00Z,AAPL,NaN"], 2, "NaN"),
            (["2026-01-05T15:00:00Z,AAPL,187.123456"], 2, "at most 4 decimals"),
            (["2026-01-05T15:00:00Z,aapl,190"], 2, "symbol 'aapl'"),
            (["2026-01-05T15:00:00Z,AAPL,190", "", "2026-01-05T14:00:00Z,AAPL,191"], 4, "sort"),
        ],
    )
    def test_a_bad_row_is_refused_naming_file_and_line(
        self, tmp_path: Path, rows: list[str], line: int, words: str
    ) -> None:
        path = write_csv(tmp_path / "p.csv", *rows)
        with pytest.raises(ConfigError) as raised:
            CsvQuotes(path)
        assert raised.value.key_path == "order_management.paper.quotes"
        assert f"{path} line {line}:" in raised.value.problem
        assert words in raised.value.problem

    @pytest.mark.parametrize(
        ("content", "words"),
        [
            (None, "cannot read the quote file"),
            (b"\xff\xfe", "not UTF-8"),
            (b"", "header must be timestamp,symbol,price"),
            (b"time,ticker,last\n", "header must be timestamp,symbol,price"),
            (b"timestamp,symbol,price\n", "no price rows"),
        ],
        ids=["missing", "not utf-8", "empty", "other header", "header only"],
    )
    def test_a_bad_file_is_refused_naming_it(
        self, tmp_path: Path, content: bytes | None, words: str
    ) -> None:
        path = tmp_path / "p.csv"
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ConfigError, match=re.escape(str(path))) as raised:
            CsvQuotes(path)
        assert words in raised.value.problem

    def test_a_bad_file_stops_the_bot_before_it_is_built(self, tmp_path: Path) -> None:
        csv_path = write_csv(tmp_path / "p.csv", "2026-01-05T15:00:00Z,AAPL,-1")
        config = write_config(tmp_path, paper={"quotes": str(csv_path)})

        with pytest.raises(ConfigError, match="line 2"):
            TradingBot.from_config(config)

        assert not (tmp_path / "logs").exists()  # no journal, no broker state


# -- fills ---------------------------------------------------------------------------------------


class TestPaperBotFills:
    """A bot built from a config fills without any call but `sync`."""

    def test_a_marketable_buy_and_sell_fill_within_a_few_syncs(self, tmp_path: Path) -> None:
        bot = TradingBot.from_config(write_config(tmp_path))

        buy = bot.execute_trade("AAPL", "buy", 10, "187.50")
        for _ in range(3):
            bot.sync()
        sell = bot.execute_trade("AAPL", "sell", 10, "188.00")
        for _ in range(3):
            bot.sync()

        assert state_of(bot, buy.order_id) is OrderState.FILLED
        assert state_of(bot, sell.order_id) is OrderState.FILLED
        buy_order = bot.manager.get(buy.order_id or "")
        assert buy_order is not None and buy_order.average_fill_price == D("187.50")
        journal = AuditJournal.replay(tmp_path / "logs" / "orders.jsonl")
        assert {o.state for o in journal.values()} == {OrderState.FILLED}
        broker = bot.manager.gateway
        assert isinstance(broker, PaperBroker)
        assert broker.fetch_buying_power() == D(100000) + D(5)  # bought 187.50, sold 188.00

    @pytest.mark.parametrize(("policy", "forced"), [("never", 0), ("intent_and_terminal", 5)])
    def test_the_simulated_broker_is_as_durable_as_the_journal(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, forced: int
    ) -> None:
        """With fsync "never" (a backtest on a simulated clock) nothing waits for the disk;
        otherwise the broker forces each change, as the journal forces its milestones."""
        bot = TradingBot.from_config(write_config(tmp_path, fsync=policy))
        calls: list[int] = []
        monkeypatch.setattr(os, "fsync", calls.append)

        trade = bot.execute_trade("AAPL", "buy", 10, "187.50")
        bot.sync()

        assert state_of(bot, trade.order_id) is OrderState.FILLED
        # The journal's intent and final fill; the broker's new order, its fill, and the
        # sync that handed the fill over (which decides when the order may leave its books).
        assert len(calls) == forced

    def test_a_request_given_to_the_manager_prices_the_market_too(self, tmp_path: Path) -> None:
        bot = TradingBot.from_config(write_config(tmp_path))

        order = bot.manager.submit(OrderRequest("MSFT", "buy", 2, "415.10"))
        bot.sync()

        assert order.state is OrderState.FILLED
        assert order.average_fill_price == D("415.10")

    def test_a_resting_order_fills_when_the_csv_price_reaches_it(self, tmp_path: Path) -> None:
        csv_path = write_csv(
            tmp_path / "p.csv",
            "2026-01-05T14:00:00Z,AAPL,190.00",
            "2026-01-05T15:10:00Z,AAPL,187.05",
        )
        clock = ManualClock()
        bot = TradingBot.from_config(
            write_config(tmp_path, paper={"quotes": str(csv_path)}), clock=clock
        )
        trade = bot.execute_trade("AAPL", "buy", 5, "187.00")  # limit 187.09
        for _ in range(3):
            clock.advance(minutes=3)
            bot.sync()
        assert state_of(bot, trade.order_id) is OrderState.SUBMITTED  # 190 is above the limit

        clock.advance(minutes=1)  # 15:10
        report = bot.sync()

        assert state_of(bot, trade.order_id) is OrderState.FILLED
        assert [e.trigger for _, e in report.events] == ["fill"]
        (snap,) = broker_orders(bot)
        assert snap.average_price == D("187.05")

    def test_a_live_config_does_not_run_the_simulated_market(self, tmp_path: Path) -> None:
        broker = PaperBroker(quotes={"AAPL": "100"})
        manager = OrderManager(broker, journal=AuditJournal(tmp_path / "j.jsonl"))
        bot = TradingBot(manager, mode="live")
        order = manager.submit(OrderRequest("AAPL", "buy", 1, "100"))

        bot.sync()

        assert order.state is OrderState.SUBMITTED


# -- stopping and starting -----------------------------------------------------------------------


class TestRestart:
    """A paper bot stopped and rebuilt from the same config finds its orders at its broker."""

    def test_the_same_single_broker_order_is_recovered_and_fills_later(
        self, tmp_path: Path
    ) -> None:
        csv_path = write_csv(
            tmp_path / "p.csv",
            "2026-01-05T14:00:00Z,AAPL,190.00",
            "2026-01-05T16:00:00Z,AAPL,186.00",
        )
        config = write_config(tmp_path, paper={"quotes": str(csv_path)})
        clock = ManualClock()
        first = TradingBot.from_config(config, clock=clock)
        trade = first.execute_trade("AAPL", "buy", 5, "187.00")
        first.sync()
        first.manager.journal.close()  # the process stops
        (placed,) = broker_orders(first)

        clock.advance(minutes=30)
        second = TradingBot.from_config(config, clock=clock)
        recovered = second.manager.recover()

        assert [o.client_order_id for o in second.manager.open_orders()] == [trade.order_id]
        assert recovered.errors == ()
        assert [s.broker_order_id for s in broker_orders(second)] == [placed.broker_order_id]

        clock.advance(minutes=30)  # 16:00 UTC: the price falls to 186
        second.sync()

        assert state_of(second, trade.order_id) is OrderState.FILLED
        (filled,) = broker_orders(second)
        assert filled.broker_order_id == placed.broker_order_id
        assert filled.average_price == D("186.00")
        journal = AuditJournal.replay(tmp_path / "logs" / "orders.jsonl")
        assert [o.state for o in journal.values()] == [OrderState.FILLED]

    def test_a_cancel_asked_before_the_stop_lands_after_it(self, tmp_path: Path) -> None:
        prices = str(write_csv(tmp_path / "p.csv", "2026-01-05T14:00:00Z,AAPL,120"))
        paper: dict[str, Any] = {"quotes": prices, "fault_rates": {"lost_cancel": 1}}
        config = write_config(tmp_path, paper=paper)
        first = TradingBot.from_config(config, clock=ManualClock())
        trade = first.manager.submit(OrderRequest("AAPL", "buy", 1, "100"))
        first.sync()  # not marketable at 120: it rests
        first.manager.cancel(trade.client_order_id)  # lost by the broker
        first.manager.journal.close()

        del paper["fault_rates"]
        config = write_config(tmp_path, paper=paper)
        second = TradingBot.from_config(config)
        second.manager.recover()  # sends the cancel again
        second.sync()
        assert state_of(second, trade.client_order_id) is OrderState.CANCELLED
        journal = tmp_path / "logs" / "orders.jsonl"
        settled = journal.read_bytes()
        for _ in range(3):
            second.sync()

        assert journal.read_bytes() == settled  # nothing more to say once cancelled

    def test_a_damaged_state_file_is_refused_and_left_untouched(self, tmp_path: Path) -> None:
        config = write_config(tmp_path)
        bot = TradingBot.from_config(config)
        bot.execute_trade("AAPL", "buy", 1, "100")
        bot.manager.journal.close()
        state = tmp_path / "logs" / "paper-broker.json"
        damaged = state.read_bytes()[:200]
        state.write_bytes(damaged)

        with pytest.raises(ConfigError) as raised:
            TradingBot.from_config(config)

        assert raised.value.key_path == "order_management.paper.state_path"
        assert "damaged" in raised.value.problem and "left as it is" in raised.value.problem
        assert state.read_bytes() == damaged

    def test_a_missing_state_file_with_working_orders_is_refused(self, tmp_path: Path) -> None:
        config = write_config(tmp_path)
        bot = TradingBot.from_config(config)
        bot.execute_trade("AAPL", "buy", 1, "100")  # working until the next sync
        bot.manager.journal.close()
        (tmp_path / "logs" / "paper-broker.json").unlink()

        with pytest.raises(ConfigError, match="1 working paper order") as raised:
            TradingBot.from_config(config)

        assert raised.value.key_path == "order_management.paper.state_path"
        assert not (tmp_path / "logs" / "paper-broker.json").exists()

    def test_two_bots_may_not_share_one_state_file(self, tmp_path: Path) -> None:
        shared = str(tmp_path / "broker.json")
        one = write_config(tmp_path, audit_log_path=str(tmp_path / "a.jsonl"))
        TradingBot.from_config(one)
        other = write_config(
            tmp_path,
            "other.json",
            audit_log_path=str(tmp_path / "b.jsonl"),
            paper={"state_path": shared},
        )
        TradingBot.from_config(other)
        third = write_config(
            tmp_path,
            "third.json",
            audit_log_path=str(tmp_path / "c.jsonl"),
            paper={"state_path": shared},
        )

        with pytest.raises(ConfigError, match=r"belongs to the journal 'b\.jsonl'"):
            TradingBot.from_config(third)


# -- the close -----------------------------------------------------------------------------------


class TestTheClose:
    """At 16:00 New York the simulated broker cancels gfd orders, as Robinhood does."""

    def test_the_close_cancels_gfd_and_keeps_gtc(self, tmp_path: Path) -> None:
        clock = ManualClock(datetime(2026, 1, 5, 20, 58, tzinfo=UTC))  # 15:58 New York
        prices = write_csv(
            tmp_path / "p.csv", "2026-01-05T14:00:00Z,AAPL,150", "2026-01-05T14:00:00Z,MSFT,150"
        )
        config = write_config(tmp_path, paper={"quotes": str(prices)})
        bot = TradingBot.from_config(config, clock=clock)
        day = bot.manager.submit(OrderRequest("AAPL", "buy", 1, "100", time_in_force="gfd"))
        good = bot.manager.submit(OrderRequest("MSFT", "buy", 1, "100", time_in_force="gtc"))
        broker = bot.manager.gateway
        assert isinstance(broker, PaperBroker)  # neither order is marketable at 150
        clock.advance(minutes=1)
        bot.sync()
        assert (day.state, good.state) == (OrderState.SUBMITTED, OrderState.SUBMITTED)

        clock.advance(minutes=1)  # 16:00
        report = bot.sync()

        assert day.state is OrderState.CANCELLED
        assert good.state is OrderState.SUBMITTED
        assert [(cid, e.trigger) for cid, e in report.events] == [(day.client_order_id, "cancel")]
        expired = broker.find_by_client_id(day.client_order_id)
        assert expired is not None and expired.cancel_reason == "end_of_day"
        saved = PaperBroker.load(tmp_path / "logs" / "paper-broker.json")
        kept = saved.find_by_client_id(day.client_order_id)
        assert kept is not None and kept.cancel_reason == "end_of_day"
        clock.advance(days=3)
        bot.sync()
        assert good.state is OrderState.SUBMITTED


# -- live quotes from Robinhood ------------------------------------------------------------------

CREDENTIALS = {
    "ROBINHOOD_USERNAME": "trader@example.com",
    "ROBINHOOD_PASSWORD": "hunter2-correct-horse",
    "ROBINHOOD_TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
}


@pytest.fixture
def robinhood() -> Iterator[responses.RequestsMock]:
    """Robinhood's login and quotes behind `responses`; any other URL fails the request."""
    with (
        robin_stocks_state(logged_in=False),
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
    ):
        mock.add(
            responses.POST,
            TOKEN_URL,
            json={
                "access_token": "access-token-abcdef123456",
                "token_type": "Bearer",
                "expires_in": 86400,
                "refresh_token": "refresh-token-zyxw987654",
                "scope": "internal",
            },
        )
        mock.add(responses.GET, POSITIONS_URL, json={"next": None, "results": []})
        mock.add(
            responses.GET,
            QUOTES_URL,
            json={
                "results": [
                    {"symbol": "AAPL", "last_trade_price": "187.2500", "ask_price": "187.26"}
                ]
            },
        )
        yield mock


class TestRobinhoodQuotes:
    """`"robinhood"` quotes: live prices read after login; orders stay on the simulator."""

    def test_live_prices_fill_and_no_order_is_ever_sent_to_robinhood(
        self, tmp_path: Path, robinhood: responses.RequestsMock
    ) -> None:
        env = {**CREDENTIALS, "ROBINHOOD_SESSION_DIR": str(tmp_path / "session")}
        config = write_config(tmp_path, paper={"quotes": "robinhood"})
        bot = TradingBot.from_config(config, env=env)

        trade = bot.execute_trade("AAPL", "buy", 3, "187.40")
        bot.sync()
        bot.cancel_all()
        bot.sync()

        assert state_of(bot, trade.order_id) is OrderState.FILLED
        (snap,) = broker_orders(bot)
        assert snap.average_price == D("187.2500")
        urls = [call.request.url or "" for call in robinhood.calls]
        assert any(url.startswith(QUOTES_URL) for url in urls)
        assert not [url for url in urls if url.startswith(ORDERS_URL)]
        assert {call.request.method for call in robinhood.calls} == {"POST", "GET"}
        assert [call.request.url for call in robinhood.calls if call.request.method == "POST"] == [
            TOKEN_URL
        ]

    def test_without_credentials_nothing_is_built_or_sent(
        self, tmp_path: Path, robinhood: responses.RequestsMock
    ) -> None:
        config = write_config(tmp_path, paper={"quotes": "robinhood"})

        with pytest.raises(AuthenticationError, match="ROBINHOOD_USERNAME") as raised:
            TradingBot.from_config(config, env={})

        assert '"reference" quotes' in str(raised.value)
        assert list(robinhood.calls) == []
        assert not (tmp_path / "logs").exists()

    def test_a_paper_bot_imports_no_robinhood_code_unless_asked(self, tmp_path: Path) -> None:
        code = f"""
            import sys
            from orders import TradingBot
            bot = TradingBot.from_config({str(write_config(tmp_path))!r})
            bot.execute_trade("AAPL", "buy", 1, "100")
            bot.sync()
            print(sorted(m for m in ("robin_stocks", "requests", "pyotp") if m in sys.modules))
        """
        done = subprocess.run(  # noqa: S603 - this interpreter, the test's own code
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "[]\n"


AAPL_QUOTE = {"results": [{"symbol": "AAPL", "last_trade_price": "187.25"}]}


class TestRobinhoodQuotesFaults:
    """A quotes request that fails leaves the paper market on its last prices, with a reason."""

    class Renewer:
        def __init__(self) -> None:
            self.logins = 0

        def relogin(self) -> None:
            self.logins += 1

    def ask(self, quotes: RobinhoodQuotes) -> Mapping[str, Decimal | None]:
        return quotes.prices(["AAPL"], MORNING)

    def test_a_server_error_is_a_broker_error_and_not_retried(self) -> None:
        with robin_stocks_state(logged_in=True), responses.RequestsMock() as mock:
            mock.add(responses.GET, QUOTES_URL, status=503, body="down")
            with pytest.raises(BrokerError, match="keeps its last prices"):
                self.ask(RobinhoodQuotes())
            assert len(mock.calls) == 1

    def test_a_401_logs_in_again_once(self) -> None:
        renewer = self.Renewer()
        with robin_stocks_state(logged_in=True), responses.RequestsMock() as mock:
            mock.add(responses.GET, QUOTES_URL, status=401, json={"detail": "expired"})
            mock.add(responses.GET, QUOTES_URL, json=AAPL_QUOTE)
            assert self.ask(RobinhoodQuotes(auth=renewer)) == {"AAPL": D("187.25")}
        assert renewer.logins == 1

    def test_a_second_401_is_an_authentication_error(self) -> None:
        renewer = self.Renewer()
        with robin_stocks_state(logged_in=True), responses.RequestsMock() as mock:
            mock.add(responses.GET, QUOTES_URL, status=401, json={"detail": "expired"})
            with pytest.raises(AuthenticationError, match="401"):
                self.ask(RobinhoodQuotes(auth=renewer))
        assert renewer.logins == 1

    def test_an_answer_that_is_not_json_is_a_broker_error(self) -> None:
        with robin_stocks_state(logged_in=True), responses.RequestsMock() as mock:
            mock.add(responses.GET, QUOTES_URL, body="<html>maintenance</html>")
            with pytest.raises(BrokerError, match="JSON"):
                self.ask(RobinhoodQuotes())

    def test_without_a_session_nothing_is_sent(self) -> None:
        with robin_stocks_state(logged_in=False), responses.RequestsMock() as mock:
            with pytest.raises(AuthenticationError, match='"reference"'):
                self.ask(RobinhoodQuotes())
            assert list(mock.calls) == []


# -- collaborators that disagree with the config -------------------------------------------------


class TestAgreement:
    """A PaperBroker passed in must not silently ignore a `paper` setting of the config."""

    @pytest.mark.parametrize(
        ("paper", "broker", "key"),
        [
            ({"liquidity": 30}, {}, "paper.liquidity"),
            ({"liquidity": 30}, {"liquidity": "10"}, "paper.liquidity"),
            ({"allow_short": False}, {}, "paper.allow_short"),
            ({"fault_rates": {"lost_cancel": "0.5"}}, {}, "paper.fault_rates"),
            ({"quotes": "prices.csv"}, {}, "paper.quotes"),
            ({"quotes": "robinhood"}, {}, "paper.quotes"),
            ({"state_path": "broker.json"}, {}, "paper.state_path"),
        ],
    )
    def test_a_broker_with_other_settings_is_refused(
        self, tmp_path: Path, paper: dict[str, Any], broker: dict[str, Any], key: str
    ) -> None:
        config = OrderManagementConfig.from_dict({"fsync": "never", "paper": paper})
        with pytest.raises(ConfigError) as raised:
            OrderManager(
                PaperBroker(**broker),
                config=config,
                journal=AuditJournal(tmp_path / "j.jsonl", fsync="never"),
            )
        assert raised.value.key_path == f"order_management.{key}"
        assert "PaperBroker passed in" in str(raised.value)

    def test_equal_settings_and_a_default_block_are_fine(self, tmp_path: Path) -> None:
        journal = AuditJournal(tmp_path / "j.jsonl", fsync="never")
        same = OrderManagementConfig.from_dict(
            {"fsync": "never", "paper": {"liquidity": "30", "fault_rates": {"reject": "0.5"}}}
        )
        broker = PaperBroker(liquidity=30, fault_rates={"reject": D("0.5")})
        OrderManager(broker, config=same, journal=journal)
        # A default block says nothing: a broker built by hand keeps its own market.
        default = OrderManagementConfig.from_dict({"fsync": "never"})
        OrderManager(PaperBroker(liquidity=4, allow_short=False), config=default, journal=journal)

    def test_from_config_refuses_a_gateway_that_ignores_the_csv(self, tmp_path: Path) -> None:
        csv_path = write_csv(tmp_path / "p.csv", "2026-01-05T15:00:00Z,AAPL,190")
        config = write_config(tmp_path, paper={"quotes": str(csv_path)})
        with pytest.raises(ConfigError, match=r"order_management\.paper\.quotes"):
            TradingBot.from_config(config, gateway=PaperBroker())


# -- the documented examples ---------------------------------------------------------------------


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


def run_example(code: str, cwd: Path) -> str:
    shutil.copy(REPO / "config.example.json", cwd / "config.example.json")
    done = subprocess.run(  # noqa: S603 - this interpreter, the documentation's own code
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class TestDocumentedExamples:
    """The README's and the getting-started page's bot examples fill in paper mode as they say."""

    def test_readme_example_fills(self, tmp_path: Path) -> None:
        (block,) = python_blocks(REPO / "README.md")
        lines = run_example(block, tmp_path).splitlines()
        assert lines[0].startswith("submitted ")
        assert lines[-1] == "filled 10 187.50"
        assert (tmp_path / "logs" / "paper-broker.json").is_file()

    def test_getting_started_bot_example_fills(self, tmp_path: Path) -> None:
        block = python_blocks(REPO / "docs" / "getting-started.md")[0]
        lines = run_example(block, tmp_path).splitlines()
        assert lines[0].startswith("submitted ")
        assert lines[2].startswith("blocked ")
        assert lines[-1] == "filled 10 187.50"
