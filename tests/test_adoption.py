"""A bot with its own guard, caches and logger puts `orders` under it without glue code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import orders
from orders import (
    AccountData,
    AuditJournal,
    ConfigError,
    LifecycleEvent,
    Order,
    OrderHooks,
    OrderManagementConfig,
    OrderManager,
    OrderRequest,
    PaperBroker,
    SafetyChecks,
    TradingBot,
    cli,
)
from orders.gateways.paper import Fault
from orders.log import get_logger

REPO = Path(__file__).resolve().parent.parent


def buy(symbol: str = "AAPL", quantity: str = "10", ref: str = "100") -> OrderRequest:
    return OrderRequest(symbol, "buy", quantity, ref)


class Heard:
    """A bot's observer lists that write down what they heard, in one shared order."""

    def __init__(self, log: list[str], name: str = "bot") -> None:
        self.log = log
        self.name = name

    def observer(self, label: str) -> Any:
        def heard(order: Order, event: LifecycleEvent) -> None:
            self.log.append(f"{self.name}.{label}:{event.trigger}->{event.dest}")

        return heard

    def hooks(self) -> OrderHooks:
        return OrderHooks(
            on_event=[self.observer("event")],
            on_exposure_change=[self.observer("exposure")],
            on_terminal=[self.observer("terminal")],
        )


class RecordingGuard:
    """A bot's own duplicate guard: a set of (symbol, side), no relation to SafetyChecks."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.pending: set[tuple[str, str]] = set()
        self.log = log if log is not None else []
        self.outcomes: list[str] = []

    def check(
        self, *, symbol: str, side: Any, notional: Decimal, buying_power: Decimal | None
    ) -> list[str]:
        return [f"already working: {symbol}"] if (symbol, str(side)) in self.pending else []

    def register(self, order: Order) -> None:
        self.pending.add((order.symbol, str(order.side)))

    def on_order_terminal(self, order: Order, event: LifecycleEvent, /) -> None:
        self.log.append(f"guard:{event.dest}")
        self.pending.discard((order.symbol, str(order.side)))

    def note_sent(self) -> None:
        self.outcomes.append("sent")

    def note_accepted(self) -> None:
        self.outcomes.append("accepted")

    def note_rejected(self, reason: str) -> None:
        self.outcomes.append("rejected")

    def note_failure(self, error: str) -> None:
        self.outcomes.append("failure")


class CountingAccount:
    """A bot's own account cache: counts invalidations, serves a fixed buying power."""

    def __init__(self, buying_power: str = "100000", log: list[str] | None = None) -> None:
        self.figure = Decimal(buying_power)
        self.invalidations = 0
        self.log = log if log is not None else []

    def buying_power(self) -> Decimal:
        return self.figure

    def invalidate(self) -> None:
        self.invalidations += 1
        self.log.append("account")


class TestObservers:
    """The caller's observers hear every order after the manager's own, restart included."""

    def test_they_run_after_the_journal_account_and_guard_in_list_order(
        self, tmp_path: Path
    ) -> None:
        log: list[str] = []
        broker = PaperBroker(quotes={"AAPL": "99"})
        manager = OrderManager(
            broker,
            safety=RecordingGuard(log),
            account=CountingAccount(log=log),
            journal=AuditJournal(tmp_path / "j.jsonl"),
            observers=Heard(log).hooks(),
        )
        order = manager.submit(buy())
        broker.match()
        manager.sync()
        assert order.state.value == "filled"
        assert log == [
            "account",
            "bot.event:submit->submitted",
            "bot.exposure:submit->submitted",
            "account",
            "guard:filled",
            "bot.event:fill->filled",
            "bot.exposure:fill->filled",
            "bot.terminal:fill->filled",
        ]
        assert len(AuditJournal.replay(tmp_path / "j.jsonl")[order.client_order_id].history) == 2

    def test_manager_observers_returns_what_was_given(self) -> None:
        hooks = Heard([]).hooks()
        assert OrderManager(PaperBroker(), observers=hooks).observers is hooks
        assert OrderManager(PaperBroker()).observers is None

    def test_recover_keeps_them_for_rebuilt_orders(self, tmp_path: Path) -> None:
        path = tmp_path / "j.jsonl"
        broker = PaperBroker(quotes={"AAPL": "101"})
        first = OrderManager(broker, journal=AuditJournal(path))
        cid = first.submit(buy()).client_order_id
        first.journal.close()

        log: list[str] = []
        hooks = Heard(log).hooks()
        restarted = OrderManager(broker, journal=AuditJournal(path), observers=hooks)
        restarted.recover()
        assert restarted.observers is hooks
        broker.set_quote("AAPL", "99")
        broker.match()
        restarted.sync()
        assert restarted.get(cid) is not None
        assert "bot.terminal:fill->filled" in log

    def test_an_observer_that_raises_is_reported_and_the_others_still_run(self) -> None:
        log: list[str] = []

        def broken(order: Order, event: LifecycleEvent) -> None:
            raise RuntimeError("the bot's database is down")

        hooks = OrderHooks(on_event=[broken, Heard(log).observer("after")])
        manager = OrderManager(PaperBroker(), observers=hooks, journal=None)
        manager.submit(buy())
        assert log == ["bot.after:submit->submitted"]
        report = manager.sync()
        assert any("the bot's database is down" in e for e in report.errors)


class TestOwnCollaborators:
    """A bot's own guard and account objects drive the manager: no subclass, no stand-in."""

    def test_its_guard_is_taken_released_and_restored_across_a_restart(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "j.jsonl"
        broker = PaperBroker(quotes={"AAPL": "101"})
        guard = RecordingGuard()
        manager = OrderManager(broker, safety=guard, journal=AuditJournal(path))
        manager.submit(buy())
        assert guard.pending == {("AAPL", "buy")}
        assert guard.outcomes == ["sent", "accepted"]
        with pytest.raises(orders.SafetyViolation, match="already working: AAPL"):
            manager.submit(buy())
        manager.journal.close()

        restored = RecordingGuard()  # a new process: a new, empty guard
        restarted = OrderManager(broker, safety=restored, journal=AuditJournal(path))
        restarted.recover()
        assert restored.pending == {("AAPL", "buy")}
        broker.set_quote("AAPL", "99")
        broker.match()
        restarted.sync()
        assert restored.pending == set()

    def test_its_account_is_invalidated_on_ack_fill_cancel_and_reject(self) -> None:
        broker = PaperBroker(quotes={"AAPL": "101", "MSFT": "101"})
        account = CountingAccount()
        manager = OrderManager(broker, account=account)
        filled = manager.submit(buy("AAPL"))
        assert account.invalidations == 1  # acknowledged: the broker reserved buying power
        broker.set_quote("AAPL", "99")
        broker.match()
        manager.sync()
        assert filled.state.value == "filled" and account.invalidations == 2
        cancelled = manager.submit(buy("MSFT"))
        manager.cancel(cancelled.client_order_id)
        manager.sync()
        assert cancelled.state.value == "cancelled" and account.invalidations == 4
        broker.inject(Fault.REJECT_AFTER_ACCEPT)
        rejected = manager.submit(buy("AAPL"))
        broker.match()
        manager.sync()
        assert rejected.state.value == "rejected" and account.invalidations == 6

    def test_a_second_buy_is_checked_against_the_buying_power_left_after_the_first(
        self,
    ) -> None:
        broker = PaperBroker(quotes={"AAPL": "50", "MSFT": "50"}, buying_power=Decimal(1500))
        manager = OrderManager(broker)
        assert manager.submit(buy("AAPL", quantity="10")).state.value == "submitted"
        with pytest.raises(orders.SafetyViolation, match="exceeds buying power"):
            manager.submit(buy("MSFT", quantity="10"))  # 1,000 of 1,500 is reserved
        assert isinstance(manager.safety, SafetyChecks)
        assert manager.safety.tripped() is None  # no broker reject counted toward a breaker


class TestCollaboratorsThatCannotWork:
    """A guard, account, observers or clock the manager could not use is refused when it is
    built, naming the argument and the fix, before any order exists."""

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            ({"observers": [print]}, r"observers \(of type list\) is not an OrderHooks; wrap the"),
            (
                {"safety": object()},
                r"safety \(of type object\) lacks the method\(s\) check, register, ",
            ),
            (
                {"account": RecordingGuard()},
                r"account \(of type RecordingGuard\) lacks the method\(s\) buying_power, ",
            ),
            ({"clock": "2026-01-01"}, r"clock='2026-01-01' is not callable"),
            ({"client_order_ids": "abc"}, r"client_order_ids='abc' is not callable"),
        ],
        ids=["observers-as-list", "safety", "account", "clock", "client-order-ids"],
    )
    def test_is_refused_at_construction(
        self, tmp_path: Path, arguments: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(TypeError, match=message):
            OrderManager(PaperBroker(), journal=AuditJournal(tmp_path / "j.jsonl"), **arguments)

    def test_a_guard_missing_one_method_is_named(self) -> None:
        class NoFailureNotes(RecordingGuard):
            note_failure = None  # type: ignore[assignment]

        guard: Any = NoFailureNotes()  # what an untyped bot can pass
        with pytest.raises(TypeError, match=r"lacks the method\(s\) note_failure of SafetyPolicy"):
            OrderManager(PaperBroker(), safety=guard)

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            ({"on_event": print}, r"one observer \(of type builtin_function_or_method\) was given"),
            ({"on_terminal": [1]}, r"on_terminal holds a value of type int, which is not callable"),
            ({"on_event": 5}, r"a value of type int was given where a list of observers"),
            ({"then": [print]}, r"then \(of type list\) is not an OrderHooks"),
        ],
        ids=["one-callable", "not-callable", "not-a-list", "then-not-hooks"],
    )
    def test_hooks_refuse_what_they_could_not_call(
        self, arguments: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(TypeError, match=message):
            OrderHooks(**arguments)


class TestOneSetOfDefaults:
    """Every class's defaults are the configuration's; a disagreement is refused."""

    def test_defaults_equal_the_documented_configuration(self, tmp_path: Path) -> None:
        config = OrderManagementConfig()
        assert list(SafetyChecks().config_disagreements(config)) == []
        assert SafetyChecks().max_consecutive_failures == 3
        assert AccountData(PaperBroker()).ttl_seconds == config.account_ttl_seconds
        assert AuditJournal(tmp_path / "j.jsonl").fsync == config.fsync

    @pytest.mark.parametrize(
        ("settings", "safety", "key"),
        [
            (
                {"circuit_breakers": {"max_notional_per_order": 5000}},
                SafetyChecks(),
                "order_management.circuit_breakers.max_notional_per_order",
            ),
            (
                {},
                SafetyChecks(max_consecutive_failures=5),
                "order_management.circuit_breakers.max_consecutive_failures",
            ),
            (
                {"circuit_breakers": {"cooldown_seconds": None}},
                SafetyChecks(),
                "order_management.circuit_breakers.cooldown_seconds",
            ),
        ],
    )
    def test_a_safety_that_disagrees_with_the_config_is_refused(
        self, settings: dict[str, Any], safety: SafetyChecks, key: str
    ) -> None:
        config = OrderManagementConfig.from_dict(settings)
        with pytest.raises(ConfigError) as caught:
            OrderManager(PaperBroker(), config=config, safety=safety)
        assert caught.value.key_path == key

    def test_equal_settings_are_fine(self) -> None:
        config = OrderManagementConfig.from_dict(
            {"circuit_breakers": {"max_notional_per_order": 5000, "cooldown_seconds": None}}
        )
        safety = SafetyChecks.from_config(config.circuit_breakers)
        manager = OrderManager(PaperBroker(), config=config, safety=safety)
        with pytest.raises(orders.SafetyViolation, match="per-order cap 5000"):
            manager.submit(buy(quantity="100", ref="60"))
        same = SafetyChecks(max_notional_per_order=Decimal(5000), breaker_cooldown_seconds=None)
        assert OrderManager(PaperBroker(), config=config, safety=same).safety is same

    def test_an_account_or_journal_that_disagrees_is_refused(self, tmp_path: Path) -> None:
        broker = PaperBroker()
        config = OrderManagementConfig.from_dict({"account_ttl_seconds": 5, "fsync": "never"})
        with pytest.raises(ConfigError, match="account_ttl_seconds"):
            OrderManager(broker, config=config, account=AccountData(broker))
        with pytest.raises(ConfigError, match=r"order_management\.fsync"):
            OrderManager(broker, config=config, journal=AuditJournal(tmp_path / "j.jsonl"))
        named = OrderManagementConfig.from_dict({"audit_log_path": str(tmp_path / "a.jsonl")})
        with pytest.raises(ConfigError, match="audit_log_path"):
            OrderManager(broker, config=named, journal=AuditJournal(tmp_path / "b.jsonl"))
        # The default path says nothing: a journal passed in may sit anywhere.
        OrderManager(broker, config=OrderManagementConfig(), journal=AuditJournal(tmp_path / "c"))

    def test_from_config_takes_the_bots_own_objects(self, tmp_path: Path) -> None:
        path = tmp_path / "config.json"
        journal = tmp_path / "j.jsonl"
        path.write_text(json.dumps({"order_management": {"audit_log_path": str(journal)}}))
        guard, account, log = RecordingGuard(), CountingAccount(), list[str]()
        bot = TradingBot.from_config(
            path, safety=guard, account=account, observers=Heard(log).hooks()
        )
        assert bot.execute_trade("AAPL", "buy", 1, "10").ok
        assert bot.manager.safety is guard and bot.manager.account is account
        assert account.invalidations == 1 and log


def run_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, the test's own code
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


class TestHostProcess:
    """What a host process sees: its own streams, its own logging, its own imports."""

    PAPER_SESSION = """
        from orders import OrderManager, OrderRequest, PaperBroker, Unknown
        from orders.gateways.paper import Fault

        broker = PaperBroker(quotes={"AAPL": "99"})
        broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)
        manager = OrderManager(broker)
        order = manager.submit(OrderRequest("AAPL", "buy", 10, "100"))  # a warning is logged
        manager.sync(); broker.match(); manager.sync()
        assert order.state == "filled", order
    """

    def test_with_no_logging_configured_nothing_reaches_stdout_or_stderr(
        self, tmp_path: Path
    ) -> None:
        done = run_python(self.PAPER_SESSION, tmp_path)
        assert done.returncode == 0, done.stderr
        assert (done.stdout, done.stderr) == ("", "")

    def test_a_failing_observer_on_a_bare_order_prints_nothing(self, tmp_path: Path) -> None:
        code = """
            from orders import Order, OrderHooks

            def broken(order, event):
                raise RuntimeError("observer down")

            order = Order("AAPL", "buy", 1, "10", hooks=OrderHooks(on_event=[broken]))
            order.submit("b-1")
        """
        done = run_python(code, tmp_path)
        assert done.returncode == 0, done.stderr
        assert (done.stdout, done.stderr) == ("", "")

    def test_a_host_at_info_gets_orders_lines_but_none_from_transitions(
        self, tmp_path: Path
    ) -> None:
        code = (
            'import logging\nlogging.basicConfig(level="INFO", format="%(name)s|%(message)s")\n'
            + textwrap.dedent(self.PAPER_SESSION)
        )
        done = run_python(code, tmp_path)
        assert done.returncode == 0, done.stderr
        names = {line.split("|")[0] for line in done.stderr.splitlines() if "|" in line}
        assert "orders.manager" in names
        assert not any(name.startswith("transitions") for name in names)
        assert re.search(r"orders\.manager\|submit_outcome_unknown client_order_id=", done.stderr)

    def test_import_orders_leaves_the_robinhood_stack_unloaded(self, tmp_path: Path) -> None:
        code = """
            import sys
            import orders, orders.lifecycle, orders.bot, orders.cli
            loaded = sorted(m for m in ("robin_stocks", "requests", "pyotp") if m in sys.modules)
            print(loaded)
            from orders import RobinhoodGateway
            print("robin_stocks" in sys.modules, RobinhoodGateway.__name__)
        """
        done = run_python(code, tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["[]", "True RobinhoodGateway"]

    def test_version_everywhere(self, tmp_path: Path) -> None:
        for argv in (
            ["-m", "orders", "--version"],
            ["-c", "import orders; print(orders.__version__)"],
        ):
            done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
                [sys.executable, *argv], capture_output=True, text=True, timeout=60, check=False
            )
            assert done.returncode == 0, done.stderr
            assert re.search(r"\d+\.\d+\.\d+", done.stdout)
        assert orders.__version__ != "0+unknown"

    def test_the_package_is_typed_for_its_users(self, tmp_path: Path) -> None:
        assert (Path(orders.__file__).parent / "py.typed").is_file()
        user = tmp_path / "user_bot.py"
        user.write_text(
            "from orders import OrderManager, PaperBroker\n"
            "manager = OrderManager(PaperBroker())\n"
            "count: int = manager.open_orders()\n"  # a deliberate type error
        )
        mypy = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent"]
        done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
            [*mypy, "--cache-dir", str(tmp_path / "cache"), str(user)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            check=False,
        )
        assert 'Incompatible types in assignment (expression has type "list[Order]"' in (
            done.stdout
        ), done.stdout + done.stderr

    def test_orders_run_writes_json_log_lines_when_asked(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        config = tmp_path / "config.json"
        config.write_text(
            json.dumps({"order_management": {"audit_log_path": str(tmp_path / "j.jsonl")}})
        )

        def one_round(bot: TradingBot, stop: Any, on_sync: Any = None) -> None:
            get_logger("orders.probe").info("too_quiet")
            get_logger("orders.probe").warning("heard", detail=42)

        monkeypatch.setattr(TradingBot, "run", one_round)
        argv = ["run", "--config", str(config), "--log-format", "json", "--log-level", "warning"]
        assert cli.main(argv) == 0
        err = capsys.readouterr().err
        lines = [json.loads(line) for line in err.splitlines()]
        assert [(r["event"], r["level"], r["logger"], r["detail"]) for r in lines] == [
            ("heard", "warning", "orders.probe", 42)
        ]
        get_logger("orders.probe").warning("after the command")  # its handler is gone
        assert capsys.readouterr().err == ""


class TestTheAdoptionGuide:
    """docs/adopting.md's example runs as written and prints what the page says."""

    def test_its_example_runs(self, tmp_path: Path) -> None:
        page = (REPO / "docs" / "adopting.md").read_text(encoding="utf-8")
        blocks = re.findall(r"```python\n(.*?)```", page, re.S)
        printed = re.search(r"It prints:\n\n```\n(.*?)```", page, re.S)
        assert blocks and printed
        done = run_python(blocks[0], tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout == printed.group(1)
        glue = re.search(r"# -- the glue: (\d+) lines -+\n(.*?)# -{20,}", blocks[0], re.S)
        assert glue is not None
        lines = [line for line in glue.group(2).splitlines() if line.strip()]
        assert len(lines) == int(glue.group(1)) < 40
        assert "type: ignore" not in blocks[0]
        assert not re.search(r"class \w+\(", blocks[0])  # no subclass of anything


class TestLiveDefaults:
    """The live gateway and login retry as the configuration's `retry` block says."""

    def test_robinhood_defaults_are_the_configurations(self) -> None:
        from orders import RobinhoodGateway  # noqa: PLC0415 - the live stack, on demand

        config = OrderManagementConfig()
        assert list(RobinhoodGateway().config_disagreements(config)) == []
        assert list(RobinhoodGateway.from_config(config).config_disagreements(config)) == []

    def test_a_gateway_with_other_retries_than_the_config_is_refused(self) -> None:
        from orders import RobinhoodGateway  # noqa: PLC0415 - the live stack, on demand

        config = OrderManagementConfig.from_dict({"retry": {"max_attempts": 5}})
        with pytest.raises(ConfigError) as caught:
            OrderManager(RobinhoodGateway(), config=config)
        assert caught.value.key_path == "order_management.retry.max_attempts"
        tuned = RobinhoodGateway.from_config(config)
        assert OrderManager(tuned, config=config).gateway is tuned
        limits = OrderManagementConfig.from_dict({"rate_limit": {"requests_per_minute": 30}})
        with pytest.raises(ConfigError, match=r"order_management\.rate_limit"):
            OrderManager(RobinhoodGateway(), config=limits)
