"""The `orders` command: demo, stats and replay agree on one journal; every mistake a person can
make is one line on stderr and a non-zero exit; `run` stops cleanly."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests

from orders.audit import AuditJournal
from orders.bot import StopFlag, TradingBot
from orders.cli import main
from orders.config import OrderManagementConfig
from orders.gateways.paper import PaperBroker
from orders.manager import OrderManager
from orders.model import OrderRequest, OrderState
from orders.stats import compute_stats

SCRIPT = Path(sys.executable).parent / "orders"
STATES = ["pending", "submitted", "partially_filled", "filled", "cancelled", "rejected"]
CREDENTIAL_VARS = (
    "ROBINHOOD_USERNAME",
    "ROBINHOOD_PASSWORD",
    "ROBINHOOD_TOTP_SECRET",
    "ROBINHOOD_SESSION_DIR",
)


@pytest.fixture(autouse=True)
def _80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output as a pipe gets it, whatever terminal runs the tests."""
    monkeypatch.setenv("COLUMNS", "80")


def cli(argv: list[str], *, columns: int = 80) -> tuple[int, str]:
    """Run `orders ARGV` in-process, its output `columns` wide (as piped with $COLUMNS set);
    the exit code (argparse's SystemExit too) and stdout."""
    out = io.StringIO()
    try:
        with mock.patch.dict(os.environ, {"COLUMNS": str(columns)}):
            code = main(argv, out=out)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue()


def state_counts(block: str) -> dict[str, int]:
    """The by-state row of a stats block (header, rule, counts)."""
    lines = block.splitlines()
    header = lines[0].split()
    assert header == STATES
    return dict(zip(header, map(int, lines[2].split()), strict=True))


def orders_line(block: str) -> int:
    (line,) = [x for x in block.splitlines() if x.split()[:1] == ["orders"]]
    return int(line.split()[-1])


def write_config(path: Path, **block: Any) -> Path:
    path.write_text(json.dumps({"order_management": block}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """`orders demo --journal J --delay 0` run once: exit code, stdout, journal."""
    journal = tmp_path_factory.mktemp("cli") / "demo.jsonl"
    code, text = cli(["demo", "--journal", str(journal), "--delay", "0"])
    return code, text, journal


class TestDemoStatsReplayAgree:
    """`demo` ends 0 and its journal reads back through `stats` and `replay` with its numbers."""

    def test_demo_ends_zero_and_names_its_journal(self, demo_run: tuple[int, str, Path]) -> None:
        code, text, journal = demo_run
        orders = AuditJournal.replay(journal)

        assert code == 0
        assert f"journal: {journal} ({len(orders)} orders)\n" in text
        # `orders` is not on PATH after a `uv run` install: the hint says how to run it.
        assert f"\n  uv run orders replay {journal}\n  uv run orders stats {journal}\n" in text
        assert len(orders) > 10

    def test_summary_numbers_are_the_journals(self, demo_run: tuple[int, str, Path]) -> None:
        _, text, journal = demo_run
        expected = compute_stats(AuditJournal.replay(journal).values())
        summary = text.split("\nSummary of this run\n", 1)[1].split("\njournal:", 1)[0]

        assert orders_line(summary) == expected.orders
        assert state_counts(summary) == {s: expected.by_state.get(s, 0) for s in STATES}

    def test_stats_command_prints_the_demo_summary(
        self, demo_run: tuple[int, str, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        _, demo_text, journal = demo_run
        summary = demo_text.split("\nSummary of this run\n", 1)[1].split("\njournal:", 1)[0]

        code, text = cli(["stats", str(journal)])

        assert code == 0
        assert capsys.readouterr().err == ""
        assert text.startswith(f"{journal}: {orders_line(summary)} orders\n")
        overall = text.split("All strategies\n", 1)[1].split("\nStrategy ", 1)[0]
        assert overall.rstrip("\n") == summary.rstrip("\n")

    def test_stats_per_strategy_add_up(self, demo_run: tuple[int, str, Path]) -> None:
        _, _, journal = demo_run
        orders = AuditJournal.replay(journal).values()

        _, text = cli(["stats", str(journal)])

        blocks = text.split("\nStrategy ")[1:]
        names = [b.split("\n", 1)[0] for b in blocks]
        assert names == sorted({o.strategy for o in orders})
        totals: Counter[str] = Counter()
        for block in blocks:
            totals.update(state_counts(block.split("\n", 1)[1]))
        assert sum(orders_line(b.split("\n", 1)[1]) for b in blocks) == len(orders)
        assert +totals == Counter(str(o.state) for o in orders)

    def test_replay_lists_every_order_with_its_state(
        self, demo_run: tuple[int, str, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        _, _, journal = demo_run
        orders = AuditJournal.replay(journal)

        code, text = cli(["replay", str(journal)])

        assert code == 0
        assert capsys.readouterr().err == ""
        lines = text.splitlines()
        assert lines[0].split() == [
            "order",
            "strategy",
            "symbol",
            "side",
            "qty",
            "limit",
            "state",
            "filled",
            "avg",
        ]
        rows = [line.split() for line in lines[2 : lines.index("")]]
        assert lines[-1] == f"{len(orders)} orders from {journal}"
        assert len(rows) == len(orders)
        assert [r[0] for r in rows] == [cid[:8] for cid in orders]
        assert Counter(r[6] for r in rows) == Counter(str(o.state) for o in orders.values())
        assert [Decimal(r[7]) for r in rows] == [o.filled_quantity for o in orders.values()]
        # At 80 columns the reasons follow the table, each beside its order's id.
        (rejected,) = [o for o in orders.values() if o.state is OrderState.REJECTED]
        assert f"  {rejected.client_order_id[:8]}  {rejected.reason}" in lines

    def test_default_journal_is_the_demos_own_and_the_bots_is_untouched(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        bots = tmp_path / "logs" / "orders.jsonl"
        bots.parent.mkdir()
        bots.write_bytes(b"")  # a bot's journal, as `orders run` leaves it before any order
        demo = ["demo", "--delay", "0", "--ticks", "10"]

        first = cli(demo)
        second = cli(demo)

        assert (first[0], second[0]) == (0, 0)
        journal = tmp_path / "logs" / "demo.jsonl"
        count = len(AuditJournal.replay(journal))
        half = count // 2
        assert f"journal: logs/demo.jsonl ({half} orders)\n" in first[1]
        assert (
            f"journal: logs/demo.jsonl ({half} from this run, {count} orders in all)\n"
            in (second[1])
        )
        assert "simulated broker: logs/demo-broker.json\n" in second[1]
        assert bots.read_bytes() == b""
        assert sorted(p.name for p in bots.parent.iterdir()) == [
            "demo-broker.json",
            "demo.jsonl",
            "orders.jsonl",
        ]
        assert cli(["stats", "logs/demo.jsonl"])[1].startswith(f"logs/demo.jsonl: {count} orders\n")
        assert cli(["stats"])[1].startswith("logs/orders.jsonl: 0 orders\n")


class TestDiagram:
    """`diagram` prints the lifecycle in each format and ends 0."""

    @pytest.mark.parametrize(
        ("fmt", "start"),
        [("mermaid", "stateDiagram"), ("dot", "digraph"), ("markdown", "# Order lifecycle")],
    )
    def test_formats(self, fmt: str, start: str) -> None:
        code, text = cli(["diagram", "--format", fmt])

        assert code == 0
        assert text.startswith(start)
        for state in STATES:
            assert state in text

    def test_mermaid_is_the_default(self) -> None:
        assert cli(["diagram"]) == cli(["diagram", "--format", "mermaid"])


def damaged_journal(tmp_path: Path) -> Path:
    """A real journal with a garbage line in the middle."""
    journal = tmp_path / "damaged.jsonl"
    assert cli(["demo", "--journal", str(journal), "--delay", "0", "--ticks", "10"])[0] == 0
    lines = journal.read_text(encoding="utf-8").splitlines(keepends=True)
    journal.write_text("".join([lines[0], "}}not json{{\n", *lines[1:]]), encoding="utf-8")
    return journal


def foreign_journal(tmp_path: Path) -> Path:
    journal = tmp_path / "foreign.jsonl"
    journal.write_text('{"level": "info"}\n{"level": "warn"}\n', encoding="utf-8")
    return journal


def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "plain-file"
    path.write_text("x", encoding="utf-8")
    return path


ArgvMaker = Callable[[Path], list[str]]
MISTAKES: list[tuple[str, ArgvMaker, str]] = [
    ("no command", lambda t: [], "required"),
    ("unknown subcommand", lambda t: ["bogus"], "invalid choice: 'bogus'"),
    ("unknown option", lambda t: ["demo", "--fast"], "--fast"),
    ("ticks zero", lambda t: ["demo", "--ticks", "0", "--journal", str(t / "j")], "--ticks"),
    ("ticks not a number", lambda t: ["demo", "--ticks", "abc"], "invalid int value"),
    ("negative delay", lambda t: ["demo", "--delay", "-1", "--journal", str(t / "j")], "--delay"),
    ("diagram format", lambda t: ["diagram", "--format", "png"], "invalid choice: 'png'"),
    ("stats missing", lambda t: ["stats", str(t / "none.jsonl")], "no journal at"),
    ("replay missing", lambda t: ["replay", str(t / "none.jsonl")], "no journal at"),
    ("replay directory", lambda t: ["replay", str(t)], "no journal at"),
    ("replay damaged", lambda t: ["replay", str(damaged_journal(t))], "damaged.jsonl:2:"),
    ("stats damaged", lambda t: ["stats", str(damaged_journal(t))], "damaged.jsonl:2:"),
    ("replay foreign", lambda t: ["replay", str(foreign_journal(t))], "schema"),
    ("report missing", lambda t: ["report", str(t / "none.jsonl")], "no journal at"),
    (
        "report into a directory",
        lambda t: ["report", str(damaged_journal(t)), "-o", str(t)],
        "is a directory",
    ),
    ("run without config", lambda t: ["run"], "--config"),
    ("run config missing", lambda t: ["run", "--config", str(t / "no.json")], "cannot read"),
    ("run config is a directory", lambda t: ["run", "--config", str(t)], "cannot read"),
    (
        "run config invalid json",
        lambda t: ["run", "--config", str(_text(t, '{"order_management": {'))],
        "not valid JSON",
    ),
    (
        "run config unknown key",
        lambda t: ["run", "--config", str(write_config(t / "c.json", bogus_key=1))],
        "order_management.bogus_key: is not a known key",
    ),
    (
        "run config bad value",
        lambda t: ["run", "--config", str(write_config(t / "c.json", sync_interval_seconds=0))],
        "sync_interval_seconds",
    ),
    (
        "run config without the block",
        lambda t: ["run", "--config", str(_text(t, '{"bot": {}}'))],
        "order_management",
    ),
    (
        "run live without credentials",
        lambda t: [
            "run",
            "--config",
            str(write_config(t / "c.json", mode="live", audit_log_path=str(t / "live.jsonl"))),
        ],
        "ROBINHOOD_USERNAME",
    ),
    (
        "run journal path under a file",
        lambda t: [
            "run",
            "--config",
            str(write_config(t / "c.json", audit_log_path=str(a_file(t) / "j.jsonl"))),
        ],
        "plain-file",
    ),
    (
        "demo journal under a file",
        lambda t: ["demo", "--delay", "0", "--journal", str(a_file(t) / "j.jsonl")],
        "plain-file",
    ),
]


def _text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.json"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def offline_without_credentials(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No ROBINHOOD_* variables, and any HTTP request is recorded and refused."""
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    attempts: list[str] = []

    def refuse(self: requests.Session, method: str, url: str, *args: Any, **kw: Any) -> Any:
        attempts.append(f"{method} {url}")
        raise AssertionError(f"network used: {method} {url}")

    monkeypatch.setattr(requests.Session, "request", refuse)
    return attempts


def assert_one_clear_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> str:
    capsys.readouterr()  # drop what setting up the case printed
    code, text = cli(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].strip()
    assert lines[0].startswith("orders")
    assert expected in lines[0]
    assert text == ""
    return lines[0]


class TestOneClearLine:
    """Every mistake a person can make is one line on stderr, a non-zero exit, no traceback."""

    @pytest.mark.parametrize(
        ("argv_for", "expected"),
        [pytest.param(m, e, id=name) for name, m, e in MISTAKES],
    )
    def test_mistake(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        offline_without_credentials: list[str],
        argv_for: ArgvMaker,
        expected: str,
    ) -> None:
        assert_one_clear_line(argv_for(tmp_path), expected, capsys)
        assert offline_without_credentials == []

    def test_usage_errors_exit_two_and_refusals_exit_one(self, tmp_path: Path) -> None:
        assert cli(["bogus"])[0] == 2
        assert cli(["stats", str(tmp_path / "none.jsonl")])[0] == 1

    def test_live_refusal_builds_nothing(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        offline_without_credentials: list[str],
    ) -> None:
        journal = tmp_path / "live.jsonl"
        config = write_config(tmp_path / "c.json", mode="live", audit_log_path=str(journal))

        line = assert_one_clear_line(["run", "--config", str(config)], "paper", capsys)

        assert "ROBINHOOD_PASSWORD" in line
        assert not journal.exists()
        assert offline_without_credentials == []

    def test_a_torn_last_line_is_not_damage(self, tmp_path: Path) -> None:
        journal = tmp_path / "torn.jsonl"
        assert cli(["demo", "--journal", str(journal), "--delay", "0", "--ticks", "10"])[0] == 0
        count = len(AuditJournal.replay(journal))
        with journal.open("a", encoding="utf-8") as handle:
            handle.write('{"v": 1, "seq": 99, "ev')

        code, text = cli(["replay", str(journal)])

        assert code == 0
        assert text.endswith(f"{count} orders from {journal}\n")

    @pytest.mark.parametrize("delay", ["nan", "inf", "-inf", "1e400"])
    def test_non_finite_delay(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], delay: str
    ) -> None:
        journal = tmp_path / "j.jsonl"
        journal.write_text("kept\n", encoding="utf-8")
        argv = ["demo", "--ticks", "1", "--delay", delay, "--journal", str(journal)]

        assert_one_clear_line(argv, "--delay", capsys)
        assert journal.read_text(encoding="utf-8") == "kept\n"  # refused before any work


def filled_journal(tmp_path: Path, quote: str, price: str) -> Path:
    """A journal holding one AAPL buy filled in full at the quote `quote`."""
    journal = tmp_path / "j.jsonl"
    broker = PaperBroker(quotes={"AAPL": quote})
    manager = OrderManager(
        broker,
        config=OrderManagementConfig.from_dict({"audit_log_path": str(journal)}),
        journal=AuditJournal(journal),
    )
    bot = TradingBot(manager)
    assert bot.execute_trade("AAPL", "buy", 10, price).ok
    broker.match()
    bot.sync()
    manager.journal.close()
    (order,) = AuditJournal.replay(journal).values()
    assert order.state is OrderState.FILLED
    return journal


def replay_row(journal: Path) -> dict[str, str]:
    code, text = cli(["replay", str(journal)])
    assert code == 0
    lines = text.splitlines()
    return dict(zip(lines[0].split(), lines[2].split(), strict=False))


class TestReplayTable:
    """`replay` shows each order's figures as a person writes them."""

    def test_average_fill_price(self, tmp_path: Path) -> None:
        row = replay_row(filled_journal(tmp_path, "187.43", "187.43"))

        assert row["avg"] == "187.43"
        assert row["state"] == "filled"
        assert row["filled"] == "10"

    def test_round_average_fill_price_is_not_in_exponent_form(self, tmp_path: Path) -> None:
        row = replay_row(filled_journal(tmp_path, "200.00", "200"))

        assert row["avg"] == "200"

    def test_huge_price_in_a_journal_is_one_line_not_a_traceback(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        journal = filled_journal(tmp_path, "187.43", "187.43")
        records = [json.loads(x) for x in journal.read_text(encoding="utf-8").splitlines()]
        for record in records:
            record["limit_price"] = "1E+30"
            if record.get("execution"):
                record["execution"]["price"] = "1E+30"
        journal.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

        code, _ = cli(["replay", str(journal)])

        err = capsys.readouterr().err
        assert code == 1
        assert "out of range" in err and str(journal) in err
        assert "Traceback" not in err and len(err.splitlines()) == 1


class InterruptingOut(io.StringIO):
    """Stdout for `run` that notes the SIGTERM handler at each flush, and presses Ctrl-C at the
    first sync round (the loop flushes after every round)."""

    def __init__(self) -> None:
        super().__init__()
        self.handlers: list[Any] = []

    def flush(self) -> None:
        super().flush()
        self.handlers.append(signal.getsignal(signal.SIGTERM))
        if len(self.handlers) == 2:
            raise KeyboardInterrupt


class SigtermAtStartOut(io.StringIO):
    """Stdout for `run` that sends this process SIGTERM the moment the start line is flushed."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        super().flush()
        self.flushes += 1
        if self.flushes == 1:
            os.kill(os.getpid(), signal.SIGTERM)


class Deadlock(Exception):
    """Raised by the test's alarm when `run` did not stop in time."""


def _raise_deadlock(signum: int, frame: Any) -> None:
    raise Deadlock("`orders run` hung after SIGTERM")


class SignalledInsideWaitEvent(threading.Event):
    """An Event whose first wait receives SIGTERM while holding the Event's own lock, as a real
    `Condition.wait` does for a moment when it wakes up."""

    signalled = False

    def wait(self, timeout: float | None = None) -> bool:
        if not SignalledInsideWaitEvent.signalled:
            SignalledInsideWaitEvent.signalled = True
            with self._cond:  # type: ignore[attr-defined]
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0)  # Python runs the handler here, with the lock held
        return super().wait(timeout)


def _sentinel_handler(signum: int, frame: Any) -> None:
    raise AssertionError("the test's own SIGTERM handler was called")


@pytest.fixture
def paper_config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "paper.json",
        mode="paper",
        audit_log_path=str(tmp_path / "run.jsonl"),
        sync_interval_seconds="0.1",
    )


@pytest.fixture
def sentinel_sigterm() -> Any:
    previous = signal.signal(signal.SIGTERM, _sentinel_handler)
    yield _sentinel_handler
    signal.signal(signal.SIGTERM, previous)


class TestRunInProcess:
    """`run` announces its mode and journal, stops cleanly, and gives back the SIGTERM handler."""

    def test_run_recovers_the_journal_before_its_loop(
        self, tmp_path: Path, paper_config: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        earlier = TradingBot.from_config(paper_config)  # a paper bot that stopped mid-order
        assert earlier.execute_trade("AAPL", "buy", 10, "100").ok
        earlier.manager.journal.close()
        seen: list[int] = []
        monkeypatch.setattr(
            TradingBot,
            "run",
            lambda bot, stop, on_sync=None: seen.append(len(bot.manager.orders())),
        )

        out = io.StringIO()
        assert main(["run", "--config", str(paper_config)], out=out) == 0

        assert seen == [1]  # the loop started with the journal's order tracked
        assert "recovered 1 order from the journal, 1 still working" in out.getvalue()
        assert f"paper broker: resumed from {tmp_path / 'paper-broker.json'}\n" in out.getvalue()
        assert out.getvalue().endswith(
            "stopped; journal flushed; 1 order still working at the broker\n"
        )

    def test_run_stopped_and_started_adds_no_journal_records_while_idle(
        self, tmp_path: Path, paper_config: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        prices = tmp_path / "p.csv"
        prices.write_text(
            "timestamp,symbol,price\n2026-01-05T14:00:00Z,AAPL,120\n2026-01-05T14:00:00Z,MSFT,500\n"
        )
        block = json.loads(paper_config.read_text())["order_management"]
        lossy = {"quotes": str(prices), "fault_rates": {"lost_cancel": 1}}
        write_config(paper_config, **block, paper=lossy)
        bot = TradingBot.from_config(paper_config)
        resting = bot.manager.submit(OrderRequest("AAPL", "buy", 10, "100"))  # below 120: rests
        unwanted = bot.manager.submit(OrderRequest("MSFT", "buy", 1, "400"))
        bot.sync()
        bot.manager.cancel(unwanted.client_order_id)  # the broker loses this cancel
        bot.manager.journal.close()
        write_config(paper_config, **block, paper={"quotes": str(prices)})
        journal = tmp_path / "run.jsonl"
        rounds = {"n": 0}

        def four_rounds(self: StopFlag, timeout: float | None = None) -> bool:
            rounds["n"] += 1
            if rounds["n"] % 4 == 0:
                self.set()
            return self.is_set()

        monkeypatch.setattr(StopFlag, "wait", four_rounds)
        first, second = io.StringIO(), io.StringIO()

        assert main(["run", "--config", str(paper_config)], out=first) == 0
        settled = journal.read_bytes()  # the cancel, sent again at the start, has landed
        assert main(["run", "--config", str(paper_config)], out=second) == 0

        assert journal.read_bytes() == settled
        assert rounds["n"] == 8
        orders = AuditJournal.replay(journal)
        assert orders[unwanted.client_order_id].state is OrderState.CANCELLED
        assert orders[resting.client_order_id].state is OrderState.SUBMITTED
        assert "recovered 2 orders from the journal, 1 still working" in second.getvalue()
        for out in (first, second):
            assert f"paper quotes: {prices}\n" in out.getvalue()
            assert "problem" not in out.getvalue()

    def test_ctrl_c_stops_cleanly(
        self, tmp_path: Path, paper_config: Path, sentinel_sigterm: Any
    ) -> None:
        out = InterruptingOut()

        code = main(["run", "--config", str(paper_config)], out=out)

        text = out.getvalue()
        assert code == 0
        assert text.startswith(
            "orders run: mode paper (simulated broker)\n"
            f"journal: {tmp_path / 'run.jsonl'}\n"
            "syncing every 0.1 s; Ctrl-C or SIGTERM stops cleanly\n"
        )
        assert text.endswith("stopped; journal flushed; 0 orders still working at the broker\n")
        assert signal.getsignal(signal.SIGTERM) is sentinel_sigterm
        assert (tmp_path / "run.jsonl").exists()

    def test_sigterm_handler_is_in_place_when_the_start_line_is_out(
        self, paper_config: Path, sentinel_sigterm: Any
    ) -> None:
        out = InterruptingOut()

        main(["run", "--config", str(paper_config)], out=out)

        assert out.handlers[0] is not sentinel_sigterm

    def test_sigterm_at_the_start_line_stops_cleanly(
        self, tmp_path: Path, paper_config: Path, sentinel_sigterm: Any
    ) -> None:
        out = SigtermAtStartOut()

        code = main(["run", "--config", str(paper_config)], out=out)

        assert code == 0
        assert out.getvalue().endswith(
            "stopped; journal flushed; 0 orders still working at the broker\n"
        )
        assert signal.getsignal(signal.SIGTERM) is sentinel_sigterm

    def test_sigterm_while_the_loop_waits_does_not_deadlock(
        self, paper_config: Path, monkeypatch: pytest.MonkeyPatch, sentinel_sigterm: Any
    ) -> None:
        # The handler once set a threading.Event, whose lock the waiting main thread could
        # hold: a SIGTERM landing there hung `orders run`. It now sets a lock-free StopFlag.
        original_wait = StopFlag.wait

        def wait_with_sigterm(self: StopFlag, timeout: float | None = None) -> bool:
            os.kill(os.getpid(), signal.SIGTERM)  # lands inside the loop's wait
            return original_wait(self, timeout)

        monkeypatch.setattr(StopFlag, "wait", wait_with_sigterm)
        previous_alarm = signal.signal(signal.SIGALRM, _raise_deadlock)
        signal.setitimer(signal.ITIMER_REAL, 2)
        out = io.StringIO()
        try:
            code = main(["run", "--config", str(paper_config)], out=out)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_alarm)

        assert code == 0
        assert out.getvalue().endswith(
            "stopped; journal flushed; 0 orders still working at the broker\n"
        )
        assert signal.getsignal(signal.SIGTERM) is sentinel_sigterm


class TestThroughTheConsoleScript:
    """The installed `orders` script: `demo` ends 0; `run` stops on SIGTERM with exit 0."""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def test_demo_exits_zero_and_piped_fits_80_columns_without_redraws(
        self, tmp_path: Path
    ) -> None:
        env = {k: v for k, v in self.env().items() if k not in ("COLUMNS", "FORCE_COLOR")}
        piped = tmp_path / "demo.txt"

        with piped.open("w", encoding="utf-8") as stdout:
            done = subprocess.run(  # noqa: S603 - our own console script
                [str(SCRIPT), "demo", "--journal", "demo.jsonl", "--delay", "0"],
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
                cwd=tmp_path,
                env={**env, "FORCE_COLOR": "1"},  # colour may be forced; redraws never are
                check=False,
            )

        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        text = piped.read_text(encoding="utf-8")
        count = len(AuditJournal.replay(tmp_path / "demo.jsonl"))
        assert f"journal: demo.jsonl ({count} orders)" in text
        assert not (tmp_path / "logs").exists()
        assert "\r" not in text
        assert "\x1b" not in text
        assert max(len(line) for line in text.splitlines()) <= 80  # no $COLUMNS, no tty: 80

    def test_run_stops_on_sigterm(self, tmp_path: Path, paper_config: Path) -> None:
        proc = subprocess.Popen(  # noqa: S603 - our own console script
            [str(SCRIPT), "run", "--config", str(paper_config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=self.env(),
        )
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("orders run: mode paper"), first
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(
                "`orders run` did not stop within 5 s of SIGTERM: the Event.set() deadlock "
                "of test_sigterm_while_the_loop_waits_does_not_deadlock"
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

        assert proc.returncode == 0, err
        assert "stopped; journal flushed" in out
        assert "Traceback" not in err
        assert AuditJournal.replay(tmp_path / "run.jsonl") == {}
