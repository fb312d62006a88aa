"""What a person sees of the `orders` command: every line fits the width it is read at (80
columns when the command cannot tell), `--json` is one document that says what the journal
says, help describes every option with its default, counts read "1 order", and a Ctrl-C
before the work is under way is one line and exit 130."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from rich.cells import cell_len

import orders.demo
from orders.audit import AuditJournal
from orders.bot import StopFlag, TradingBot
from orders.cli import _build_parser, main
from orders.config import OrderManagementConfig
from orders.diagram import render_dot, render_lifecycle_markdown, render_mermaid
from orders.gateways.paper import Fault, PaperBroker
from orders.manager import OrderManager, SyncReport
from orders.model import LifecycleEvent, OrderState
from orders.stats import compute_stats, stats_by_strategy

COMMANDS = ["demo", "stats", "replay", "report", "diagram", "run"]
HOSTILE_REASON = "[bold red]not markup[/] :smile: halted\nsee order {id}"
LONG_STRATEGY = "a_very_long_strategy_name_v2"


def cli(argv: list[str], *, columns: int | None = 80) -> tuple[int, str]:
    """`orders ARGV` in-process, stdout not a terminal, $COLUMNS as given (None: unset)."""
    out = io.StringIO()
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    try:
        with mock.patch.dict(os.environ, env, clear=True):
            code = main(argv, out=out)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue()


def widest(text: str) -> int:
    """The widest line in terminal cells (a CJK character takes two)."""
    return max((cell_len(line) for line in text.splitlines()), default=0)


def assert_fits(text: str, columns: int) -> None:
    lines = text.splitlines()
    assert widest(text) <= columns, [x for x in lines if cell_len(x) > columns]
    assert not [x for x in lines if x != x.rstrip()], "a line ends in spaces"
    assert not [c for c in text if c != "\n" and not c.isprintable()], "a control character"


@pytest.fixture(scope="module")
def demo_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    journal = tmp_path_factory.mktemp("output") / "demo.jsonl"
    assert cli(["demo", "--journal", str(journal), "--delay", "0"])[0] == 0
    return journal


@pytest.fixture
def journal_here(demo_journal: Path) -> Path:
    """The demo's journal at `logs/demo.jsonl` under the test's working directory: the path a
    person has after `orders demo`, short enough that only the layout decides the widths."""
    here = Path("logs/demo.jsonl")
    here.parent.mkdir()
    shutil.copy(demo_journal, here)
    return here


@pytest.fixture(scope="module")
def awkward_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Orders that make a table wide: a long and a CJK strategy name, a 4-digit price, a
    partially filled order of 1000, and a rejection whose reason holds rich markup, an emoji
    code, a newline and a whole UUID."""
    journal = tmp_path_factory.mktemp("awkward") / "j.jsonl"
    broker = PaperBroker(
        quotes={"BKNG": "4321.56", "AAPL": "187.43", "NVDA": "130"},
        liquidity=30,
        buying_power=10**8,
    )
    manager = OrderManager(
        broker,
        config=OrderManagementConfig.from_dict({"audit_log_path": str(journal)}),
        journal=AuditJournal(journal),
    )
    bot = TradingBot(manager)
    assert bot.execute_trade("BKNG", "buy", 1000, "4321.56", strategy=LONG_STRATEGY).ok
    assert bot.execute_trade("AAPL", "buy", 10, "187.43", strategy="動量策略").ok
    reason = HOSTILE_REASON.format(id="6513270e-269e-4d37-b2a7-4de452e6b438")
    broker.inject(Fault.REJECT, message=reason)
    bot.execute_trade("NVDA", "sell", 5, "130", strategy="momentum")
    broker.match()
    bot.sync()
    manager.journal.close()
    states = sorted(str(o.state) for o in AuditJournal.replay(journal).values())
    assert states == ["filled", "partially_filled", "rejected"]
    return journal


class TestEveryLineFits:
    """At 80 columns (what a pipe gets) no command prints a line wider, or one ending in
    spaces; tables give way sensibly and never cut a figure."""

    def test_demo(self) -> None:
        code, text = cli(["demo", "--delay", "0"])

        assert code == 0
        assert_fits(text, 80)

    @pytest.mark.parametrize("columns", [60, 80, 120])
    @pytest.mark.parametrize("command", ["stats", "replay"])
    def test_stats_and_replay(self, journal_here: Path, command: str, columns: int) -> None:
        code, text = cli([command, str(journal_here)], columns=columns)

        assert code == 0
        assert_fits(text, columns)

    def test_replay_of_awkward_orders_keeps_every_figure_at_80(
        self, awkward_journal: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(awkward_journal.parent)
        orders = AuditJournal.replay(Path(awkward_journal.name))

        _, text = cli(["replay", awkward_journal.name])

        assert_fits(text, 80)
        lines = text.splitlines()
        for order in orders.values():
            (row,) = [x for x in lines if x.startswith(order.client_order_id[:8] + " ")]
            cells = row.split()
            assert str(order.quantity) in cells
            assert str(order.limit_price) in cells
            assert str(order.filled_quantity) in cells
        assert "a_very_long_…" in text  # the strategy gives way, with an ellipsis
        # The state folds onto a second line rather than push the table past 80 columns.
        (partial,) = [i for i, x in enumerate(lines) if " partially " in x]
        column = lines[partial].index(" partially ") + 1
        assert lines[partial + 1].strip() == "_filled"
        assert lines[partial + 1].index("_filled") == column

    def test_reasons_follow_the_table_at_80_and_sit_in_it_when_wide(
        self, awkward_journal: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(awkward_journal.parent)
        (rejected,) = [
            o for o in AuditJournal.replay(awkward_journal).values() if o.reason is not None
        ]
        shown = HOSTILE_REASON.format(id="6513270e").replace("\n", " ")

        narrow = cli(["replay", awkward_journal.name], columns=80)[1]
        wide = cli(["replay", awkward_journal.name], columns=200)[1]

        # Printed as written: rich markup and emoji codes in a journal are not interpreted,
        # a newline does not break the row, and the UUID is cut to 8 like every id.
        assert f"\nReasons given\n  {rejected.client_order_id[:8]}  {shown}\n" in narrow
        (row,) = [x for x in wide.splitlines() if x.startswith(rejected.client_order_id[:8])]
        assert row.endswith(f"  {shown}")
        assert "Reasons given" not in wide
        assert LONG_STRATEGY in wide

    def test_a_reason_gets_a_column_only_where_it_is_readable(self, journal_here: Path) -> None:
        # The demo's rejection reason is 34 characters; at 100 columns its column would be
        # 18 wide, cut into two-word lines; at 120 it fits.
        at_100 = cli(["replay", str(journal_here)], columns=100)[1]
        at_120 = cli(["replay", str(journal_here)], columns=120)[1]

        assert "\nReasons given\n" in at_100
        assert "reason" not in at_100.splitlines()[0]
        assert "Reasons given" not in at_120
        assert at_120.splitlines()[0].endswith("  reason")
        assert any(x.endswith("  symbol halted for news (simulated)") for x in at_120.splitlines())

    def test_run(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        config = tmp_path / "c.json"
        config.write_text(
            json.dumps({"order_management": {"audit_log_path": "logs/run.jsonl"}}),
            encoding="utf-8",
        )
        problem = (
            "order 6513270e-269e-4d37-b2a7-4de452e6b438: the cancel could not be delivered "
            "(timeout after 10 s talking to the broker); it is sent again at the next sync"
        )
        event = LifecycleEvent(
            "submit",
            OrderState.PENDING,
            OrderState.SUBMITTED,
            datetime(2026, 1, 5, 14, 30, 1, 123456, tzinfo=UTC),
        )

        def one_round(bot: TradingBot, stop: StopFlag, on_sync: Any = None) -> None:
            on_sync(SyncReport(events=(("6513270e-269e-4d37-b2a7-4de452e6b438", event),)))
            on_sync(SyncReport(errors=(problem,)))

        monkeypatch.setattr(TradingBot, "run", one_round)

        capsys.readouterr()
        code, text = cli(["run", "--config", "c.json"])

        assert code == 0
        assert_fits(text, 80)
        logged = capsys.readouterr().err
        assert "bot_started" in logged
        assert_fits(logged, 80)  # the library's console log lines are wrapped too
        capsys.readouterr()
        assert cli(["run", "--config", "c.json", "--log-format", "json"])[0] == 0
        (started,) = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
        assert started["event"] == "bot_started"  # JSON lines stay whole, one per record
        assert "2026-01-05T14:30:01.123456+00:00 6513270e submit -> submitted\n" in text
        lines = text.splitlines()
        (start,) = [i for i, x in enumerate(lines) if x.startswith("problem: ")]
        block = [lines[start]]
        while lines[start + len(block)].startswith("    "):  # wrapped, the rest indented
            block.append(lines[start + len(block)])
        assert len(block) > 1
        shown = problem.replace("-269e-4d37-b2a7-4de452e6b438", "")  # ids shown as 8
        assert " ".join(" ".join(block).split()) == f"problem: {shown}"

    @pytest.mark.parametrize(
        ("fmt", "render"),
        [("mermaid", render_mermaid), ("dot", render_dot), ("markdown", render_lifecycle_markdown)],
    )
    def test_diagram_is_printed_whole_at_any_width(self, fmt: str, render: Any) -> None:
        # A diagram is read by Mermaid, Graphviz or a Markdown renderer: wrapping a line of
        # it would break it, so it is the one output left as it is.
        assert cli(["diagram", "--format", fmt], columns=40) == (0, render())

    def test_a_path_or_command_to_copy_is_never_cut(self) -> None:
        journal = "a/deeply/nested/directory/of/journals/kept/by/the/bot/for/its/demo.jsonl"

        code, text = cli(["demo", "--delay", "0", "--ticks", "5", "--journal", journal])

        assert code == 0
        assert f"\n  uv run orders replay {journal}\n  uv run orders stats {journal}\n" in text


class TestReport:
    """`orders report` writes the journal's page and says where, in one line."""

    def test_writes_the_page(self, journal_here: Path) -> None:
        count = len(AuditJournal.replay(journal_here))

        code, text = cli(["report", str(journal_here), "-o", "out/report.html"])

        assert code == 0
        assert text == f"out/report.html: {count} orders from {journal_here}\n"
        page = Path("out/report.html").read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>")
        assert f"{count} orders" in page

    def test_the_default_page_is_report_html(self, journal_here: Path) -> None:
        assert cli(["report", str(journal_here)])[0] == 0
        assert Path("report.html").is_file()


class TestJson:
    """`--json` prints one JSON document with the journal's figures: decimals as strings,
    times in ISO 8601 UTC."""

    def test_stats(self, demo_journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
        orders = AuditJournal.replay(demo_journal).values()
        overall = compute_stats(orders)

        code, text = cli(["stats", "--json", str(demo_journal)], columns=40)

        assert code == 0
        assert capsys.readouterr().err == ""
        doc = json.loads(text)
        assert doc["journal"] == str(demo_journal)
        everything = doc["all"]
        assert everything["orders"] == overall.orders == len(orders)
        assert everything["by_state"] == {s: overall.by_state.get(s, 0) for s in OrderState}
        assert Decimal(everything["filled_quantity"]) == overall.filled_quantity
        assert Decimal(everything["ordered_quantity"]) == overall.ordered_quantity
        assert everything["fill_ratio"] == pytest.approx(float(overall.fill_ratio or 0))
        assert everything["success_rate"] == pytest.approx(overall.success_rate)
        assert everything["cancels"]["confirmed"] == overall.cancels.confirmed
        assert everything["cancels"]["latency_seconds"]["max"] == overall.cancels.latency(1.0)
        assert everything["reject_reasons"] == dict(overall.reject_reasons)
        per_strategy = stats_by_strategy(orders)
        assert list(doc["strategies"]) == list(per_strategy)
        for name, stats in per_strategy.items():
            assert doc["strategies"][name]["orders"] == stats.orders

    def test_replay(self, demo_journal: Path) -> None:
        orders = AuditJournal.replay(demo_journal)

        code, text = cli(["replay", "--json", str(demo_journal)])

        assert code == 0
        listed = json.loads(text)["orders"]
        assert [o["client_order_id"] for o in listed] == list(orders)  # whole ids, in order
        for shown, order in zip(listed, orders.values(), strict=True):
            assert shown["state"] == str(order.state)
            assert shown["strategy"] == order.strategy
            assert Decimal(shown["quantity"]) == order.quantity
            assert Decimal(shown["limit_price"]) == order.limit_price
            assert Decimal(shown["filled_quantity"]) == order.filled_quantity
            average = shown["average_fill_price"]
            assert (None if average is None else Decimal(average)) == order.average_fill_price
            assert len(shown["history"]) == len(order.history)
            assert [Decimal(e["price"]) for e in shown["executions"]] == [
                e.price for e in order.executions
            ]
            first = datetime.fromisoformat(shown["first_event_at"])
            assert first == order.first_event_at
            assert first.utcoffset() == timedelta(0)
            assert shown["history"][-1]["at"] == shown["last_event_at"]

    def test_money_is_never_a_float(self, demo_journal: Path) -> None:
        allowed = {"success_rate", "fill_ratio", "reliability", "p50", "p90", "max"}
        for command in ("stats", "replay"):
            doc = json.loads(cli([command, "--json", str(demo_journal)])[1])
            floats = [key for key, value in walk(doc) if isinstance(value, float)]
            assert set(floats) <= allowed, command
            decimals = [v for k, v in walk(doc) if k.endswith(("quantity", "price", "notional"))]
            assert decimals
            assert all(isinstance(v, str) and "E" not in v for v in decimals if v is not None)

    def test_an_empty_journal_is_a_document_too(self) -> None:
        Path("empty.jsonl").write_text("", encoding="utf-8")

        stats = json.loads(cli(["stats", "--json", "empty.jsonl"])[1])
        replay = json.loads(cli(["replay", "--json", "empty.jsonl"])[1])

        assert stats["all"]["orders"] == 0
        assert stats["all"]["success_rate"] is None
        assert stats["strategies"] == {}
        assert replay == {"journal": "empty.jsonl", "orders": []}

    @pytest.mark.parametrize("command", ["stats", "replay"])
    def test_the_help_names_every_key_of_the_document(
        self, demo_journal: Path, capsys: pytest.CaptureFixture[str], command: str
    ) -> None:
        doc = json.loads(cli([command, "--json", str(demo_journal)])[1])
        capsys.readouterr()
        cli([command, "--help"])
        help_text = capsys.readouterr().out

        documented = set(re.findall(r'"([a-z_0-9]+)":', help_text))
        produced = {key for key, _ in walk(doc)}
        produced -= set(doc.get("strategies", {}))  # strategy names are the journal's
        produced -= set(doc.get("all", {}).get("reject_reasons", {}))  # so are reasons
        for strategy in doc.get("strategies", {}).values():
            produced -= set(strategy["reject_reasons"])
        assert produced == documented

    def test_the_readme_names_every_key_of_both_documents(self, demo_journal: Path) -> None:
        readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
        block = readme.split("```text\norders stats --json", 1)[1].split("```", 1)[0]
        produced: set[str] = set()
        for command in ("stats", "replay"):
            doc = json.loads(cli([command, "--json", str(demo_journal)])[1])
            # The README writes {STATE: N, ...}, {NAME: STATS, ...} and {REASON: N, ...}.
            produced |= set(keys(doc, opaque={"by_state", "strategies", "reject_reasons"}))

        assert set(re.findall(r'"([a-z_0-9]+)"', block)) == produced


def keys(node: Any, *, opaque: set[str], parent: str = "") -> Iterator[str]:
    """The keys of a JSON document at any depth, but not the keys of a dict under a key in
    `opaque` (their values are still searched)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if parent not in opaque:
                yield key
            yield from keys(value, opaque=opaque, parent=key)
    elif isinstance(node, list):
        for item in node:
            yield from keys(item, opaque=opaque, parent=parent)


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of a JSON document, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    (action,) = [
        a
        for a in _build_parser()._actions  # argparse lists its subcommands nowhere public
        if isinstance(a, argparse._SubParsersAction)
    ]
    return dict(action.choices)


class TestHelp:
    """`--help` describes every command and option, gives defaults, and fits 80 columns."""

    def test_every_command_is_described(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, _ = cli(["--help"])

        text = capsys.readouterr().out
        assert code == 0
        assert sorted(subcommands()) == sorted(COMMANDS)
        for name, parser in subcommands().items():
            assert re.search(rf"^ {{4}}{name} +\w", text, re.M), name  # listed with a summary
            assert parser.description, name

    @pytest.mark.parametrize("command", COMMANDS)
    def test_every_option_has_a_description_and_its_default(
        self, capsys: pytest.CaptureFixture[str], command: str
    ) -> None:
        code, _ = cli([command, "--help"])

        text = " ".join(capsys.readouterr().out.split())
        assert code == 0
        for action in subcommands()[command]._actions:
            names = action.option_strings or [str(action.metavar or action.dest)]
            assert action.help, names
            assert all(name in text for name in names)
            if action.default not in (None, False, argparse.SUPPRESS):
                assert f"(default: {action.default})" in text, names

    @pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
    def test_help_fits_80_columns(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        command: list[str],
    ) -> None:
        monkeypatch.setenv("COLUMNS", "80")

        cli([*command, "--help"])

        assert widest(capsys.readouterr().out) <= 80


class TestPlurals:
    """One order is "1 order"."""

    @pytest.fixture
    def one_order(self) -> Path:
        journal = Path("one.jsonl")
        broker = PaperBroker(quotes={"AAPL": "187.43"})
        manager = OrderManager(
            broker,
            config=OrderManagementConfig.from_dict({"audit_log_path": str(journal)}),
            journal=AuditJournal(journal),
        )
        assert TradingBot(manager).execute_trade("AAPL", "buy", 10, "187.43").ok
        manager.journal.close()
        return journal

    def test_stats_and_replay(self, one_order: Path) -> None:
        assert cli(["stats", str(one_order)])[1].startswith("one.jsonl: 1 order\n")
        assert cli(["replay", str(one_order)])[1].endswith("\n1 order from one.jsonl\n")

    def test_more_than_one(self, journal_here: Path) -> None:
        count = len(AuditJournal.replay(journal_here))

        assert cli(["stats", str(journal_here)])[1].startswith(f"{journal_here}: {count} orders")


class TestCtrlCAtStartUp:
    """A Ctrl-C before the work is under way (the bot or the demo being built, the command
    line being read) is one line on stderr and exit 130: no traceback."""

    def interrupted(self, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
        capsys.readouterr()
        code, out = cli(argv)
        err = capsys.readouterr().err
        assert code == 130
        assert len(err.splitlines()) == 1, err
        assert out == ""
        return err

    def test_while_the_bot_is_built(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        def press_ctrl_c(*args: Any, **kwargs: Any) -> TradingBot:
            raise KeyboardInterrupt

        monkeypatch.setattr(TradingBot, "from_config", press_ctrl_c)
        Path("c.json").write_text('{"order_management": {}}', encoding="utf-8")

        assert self.interrupted(["run", "--config", "c.json"], capsys) == (
            "orders run: interrupted\n"
        )

    def test_while_the_demo_is_built(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        def press_ctrl_c(*args: Any, **kwargs: Any) -> TradingBot:
            raise KeyboardInterrupt

        monkeypatch.setattr(orders.demo, "TradingBot", press_ctrl_c)
        capsys.readouterr()

        code, out = cli(["demo", "--delay", "0"])

        assert code == 130
        assert capsys.readouterr().err == "orders demo: interrupted\n"
        assert out.startswith("orders demo: paper trading")  # what it said before, no more

    def test_while_the_command_line_is_read(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        def press_ctrl_c() -> argparse.ArgumentParser:
            raise KeyboardInterrupt

        monkeypatch.setattr("orders.cli._build_parser", press_ctrl_c)

        assert self.interrupted(["stats"], capsys) == "orders: interrupted\n"


class _InterruptsLoading:
    """A module finder that is interrupted (as by Ctrl-C) while `orders.cli` loads."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "orders.cli":
            raise KeyboardInterrupt


class TestCtrlCWhileLoading:
    """A Ctrl-C while the command line itself is still loading is one line and 130."""

    def test_the_console_script_answers_with_one_line(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        import sys  # noqa: PLC0415

        from orders import _console  # noqa: PLC0415

        monkeypatch.delitem(sys.modules, "orders.cli", raising=False)
        monkeypatch.setattr(sys, "meta_path", [_InterruptsLoading(), *sys.meta_path])
        assert _console.main() == 130
        assert capsys.readouterr().err == "orders: interrupted\n"

    def test_import_orders_loads_almost_nothing(self) -> None:
        import subprocess  # noqa: PLC0415
        import sys  # noqa: PLC0415

        code = "import sys, orders; print(sorted(m for m in sys.modules if m.startswith('orders')))"
        done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert done.stdout.strip() == "['orders', 'orders.version']"
