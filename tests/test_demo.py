"""`run_demo`: a seeded, offline paper session that shows every promised moment and leaves a
journal that replays to the same figures."""

from __future__ import annotations

import io
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests
from rich.cells import cell_len

from orders.audit import AuditJournal
from orders.bot import TradeStatus
from orders.demo import DemoResult, run_demo
from orders.stats import compute_stats

UUID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?")
PARTIAL = re.compile(r"^= order \S+ (buy|sell) [A-Z]+: \d+ @ [\d.]+, (\d+)/(\d+) filled$")


def demo(path: Path, *, columns: int = 80, **kwargs: Any) -> tuple[DemoResult, str]:
    """`run_demo` into a pipe `columns` wide ($COLUMNS), whatever terminal runs the tests."""
    out = io.StringIO()
    with mock.patch.dict(os.environ, {"COLUMNS": str(columns)}):
        result = run_demo(path, delay=0, out=out, **kwargs)
    return result, out.getvalue()


def without_ids(lines: tuple[str, ...]) -> list[str]:
    return [UUID.sub("<id>", line) for line in lines]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, str]:
    """One default demo run, shared by the read-only checks."""
    return demo(tmp_path_factory.mktemp("demo") / "j.jsonl")


class TestMoments:
    """Each moment the demo promises appears in its highlights and its printed output."""

    def test_a_partial_fill(self, session: tuple[DemoResult, str]) -> None:
        result, _ = session
        partials = [m for m in map(PARTIAL.match, result.highlights) if m and int(m[2]) < int(m[3])]
        assert partials

    def test_a_duplicate_blocked(self, session: tuple[DemoResult, str]) -> None:
        result, _ = session
        assert any("blocked: duplicate" in h for h in result.highlights)
        assert any(t.status is TradeStatus.BLOCKED for t in result.trades)

    def test_a_rejection_with_the_brokers_reason(self, session: tuple[DemoResult, str]) -> None:
        result, _ = session
        assert any(h.startswith("!") and "rejected" in h for h in result.highlights)
        assert result.stats.reject_reasons

    def test_a_lost_answer_found_without_resending(self, session: tuple[DemoResult, str]) -> None:
        result, _ = session
        assert any("broker answer lost" in h for h in result.highlights)
        assert any("found at the broker by client id" in h for h in result.highlights)

    def test_a_lost_cancel_sent_again(self, session: tuple[DemoResult, str]) -> None:
        result, _ = session
        assert any("sent again" in h for h in result.highlights)

    def test_a_stale_order_cancelled(self, session: tuple[DemoResult, str]) -> None:
        result, _ = session
        assert any("working over" in h and "cancel sent" in h for h in result.highlights)
        assert any(h.startswith("- order") and "cancelled" in h for h in result.highlights)

    def test_highlights_are_what_was_printed(self, session: tuple[DemoResult, str]) -> None:
        result, text = session
        for highlight in result.highlights:
            assert f"  {highlight}\n" in text
        assert "\r" not in text  # not a terminal: no live progress line

    def test_every_order_finishes(self, session: tuple[DemoResult, str]) -> None:
        result, _ = session
        by_state = result.stats.by_state
        assert by_state.get("pending", 0) == 0
        assert by_state.get("submitted", 0) == 0
        assert by_state.get("partially_filled", 0) == 0
        assert result.stats.cancels.outstanding == 0


class TestJournal:
    """The journal replays to the figures the live session had, and a previous one is kept."""

    def test_replayed_states_match_the_live_orders(self, session: tuple[DemoResult, str]) -> None:
        result, _ = session
        replayed = AuditJournal.replay(result.journal)
        live = {t.order_id: t.order_state for t in result.trades if t.order_id is not None}

        assert {cid: o.state for cid, o in replayed.items()} == live
        assert compute_stats(replayed.values()) == result.stats
        assert Counter(str(s) for s in live.values()) == result.stats.by_state

    def test_a_second_run_appends_and_renames_nothing(self, tmp_path: Path) -> None:
        path = tmp_path / "j.jsonl"
        first, _ = demo(path, ticks=12)
        first_bytes = path.read_bytes()

        second, _ = demo(path, ticks=12)

        assert path.read_bytes().startswith(first_bytes)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["j-broker.json", "j.jsonl"]
        first_ids = {t.order_id for t in first.trades if t.order_id}
        second_ids = {t.order_id for t in second.trades if t.order_id}
        assert first_ids and second_ids and not first_ids & second_ids
        assert second.stats == first.stats  # each run is counted alone, and trades the same
        assert second.journal_orders == len(AuditJournal.replay(path)) == 2 * first.stats.orders

    def test_the_bots_journal_is_left_byte_identical(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        bots = tmp_path / "logs" / "orders.jsonl"
        bots.parent.mkdir()
        bots.write_bytes(b'{"v":1,"seq":1,"event":"intent"}\n')

        result = run_demo(delay=0, ticks=8, out=io.StringIO())
        run_demo(delay=0, ticks=8, out=io.StringIO())

        assert result.journal == Path("logs/demo.jsonl")
        assert result.broker_state == Path("logs/demo-broker.json")
        assert bots.read_bytes() == b'{"v":1,"seq":1,"event":"intent"}\n'
        assert sorted(p.name for p in bots.parent.iterdir()) == [
            "demo-broker.json",
            "demo.jsonl",
            "orders.jsonl",
        ]

    def test_an_interrupted_run_is_finished_by_the_next(self, tmp_path: Path) -> None:
        path = tmp_path / "j.jsonl"
        ticks = {"n": 0}

        def interrupt_at_tick_4(seconds: float) -> None:
            ticks["n"] += 1
            if ticks["n"] == 4:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_demo(path, ticks=60, delay=0, out=io.StringIO(), sleep=interrupt_at_tick_4)
        interrupted = AuditJournal.replay(path)
        left = [o for o in interrupted.values() if not o.is_terminal]
        assert left  # the MSFT bid and the AAPL buy were working

        result, text = demo(path, ticks=5)

        assert len(left) > 1
        note = f"~ {len(left)} orders left working by an interrupted earlier run: "
        assert f"  {note}{len(left)} cancelled\n" in text
        assert all(o.is_terminal for o in AuditJournal.replay(path).values())
        assert result.stats.orders == len(AuditJournal.replay(path)) - len(interrupted)

    def test_missing_directories_are_created(self, tmp_path: Path) -> None:
        path = tmp_path / "a" / "b" / "j.jsonl"

        result, _ = demo(path, ticks=5)

        assert result.journal == path
        assert path.is_file()


class TestDeterminism:
    """The same seed trades the same way; another seed trades differently."""

    def test_same_seed_same_trading_and_stats(self, tmp_path: Path) -> None:
        one, _ = demo(tmp_path / "1.jsonl", seed=3)
        two, _ = demo(tmp_path / "2.jsonl", seed=3)

        assert one.stats == two.stats
        assert without_ids(one.highlights) == without_ids(two.highlights)
        assert [(t.status, t.order_state, t.limit_price) for t in one.trades] == [
            (t.status, t.order_state, t.limit_price) for t in two.trades
        ]

    def test_another_seed_trades_differently(self, tmp_path: Path) -> None:
        one, _ = demo(tmp_path / "1.jsonl", seed=7)
        two, _ = demo(tmp_path / "2.jsonl", seed=8)

        assert one.stats != two.stats

    def test_same_seed_prints_the_same_highlights_and_ids(self, tmp_path: Path) -> None:
        one, one_text = demo(tmp_path / "1.jsonl", seed=3)
        two, two_text = demo(tmp_path / "2.jsonl", seed=3)

        assert one.highlights == two.highlights
        assert [t.order_id for t in one.trades] == [t.order_id for t in two.trades]
        assert list(AuditJournal.replay(one.journal)) == list(AuditJournal.replay(two.journal))
        assert one_text.replace("1.jsonl", "2.jsonl") == two_text


class TestPacingAndIsolation:
    """The demo pauses `delay` per tick through `sleep`, never touches the network, and on a
    terminal shows its progress on one line redrawn in place, gone when it ends."""

    @pytest.fixture(autouse=True)
    def _80_columns(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("COLUMNS", "80")

    def test_sleeps_once_per_tick(self, tmp_path: Path) -> None:
        pauses: list[float] = []

        run_demo(tmp_path / "j.jsonl", ticks=9, delay=0.25, out=io.StringIO(), sleep=pauses.append)

        assert pauses == [0.25] * 9

    def test_no_network(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the demo used the network")

        monkeypatch.setattr(requests.Session, "request", refuse)

        result, _ = demo(tmp_path / "j.jsonl")

        assert result.stats.orders > 0

    def test_on_a_terminal_the_progress_bar_redraws_in_place_below_the_events(
        self, tmp_path: Path
    ) -> None:
        out = io.StringIO()

        result = run_demo(tmp_path / "j.jsonl", ticks=5, delay=0, out=out, live=True)

        raw = out.getvalue()
        assert raw.count("tick 5/5") > 1  # drawn more than once...
        frame = raw.rindex("tick 3/5")
        midway = screen(raw[: raw.index("\r", frame)])  # the screen as that frame left it
        bars = [line for line in midway if line.startswith("tick ")]
        assert bars == [midway[-1]]  # ...but always over itself, on the bottom line
        assert all(f"  {h}" in midway for h in result.highlights[:3])
        # Two columns short of the edge, where a terminal echoes Ctrl-C as "^C": past the
        # edge the echo would wrap and leave the bar on screen after the run.
        assert cell_len(bars[0]) <= 78

    def test_on_a_terminal_the_bar_is_gone_at_the_end_and_the_screen_is_the_piped_text(
        self, tmp_path: Path
    ) -> None:
        live, piped = io.StringIO(), io.StringIO()

        run_demo(tmp_path / "a" / "j.jsonl", ticks=8, delay=0, out=live, live=True)
        run_demo(tmp_path / "b" / "j.jsonl", ticks=8, delay=0, out=piped, live=False)

        assert "\x1b[?25l" in live.getvalue()  # the cursor was hidden while the bar was up
        assert live.getvalue().rsplit("\x1b[?25l", 1)[1].count("\x1b[?25h") == 1  # and back
        seen = screen(live.getvalue().replace(f"{tmp_path}/a/", f"{tmp_path}/b/"))
        assert seen == piped.getvalue().splitlines()

    def test_interrupted_on_a_terminal_the_bar_is_erased_and_the_cursor_shown(
        self, tmp_path: Path
    ) -> None:
        out = io.StringIO()
        ticks = {"n": 0}

        def interrupt_at_tick_3(seconds: float) -> None:
            ticks["n"] += 1
            if ticks["n"] == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_demo(tmp_path / "j.jsonl", delay=0, out=out, live=True, sleep=interrupt_at_tick_3)

        raw = out.getvalue()
        assert "tick  3/60" in raw
        assert raw.rsplit("\x1b[?25l", 1)[1].count("\x1b[?25h") == 1
        assert not [line for line in screen(raw) if line.startswith("tick ")]

    def test_piped_there_is_no_bar_and_no_control_character(self, tmp_path: Path) -> None:
        result, text = demo(tmp_path / "j.jsonl", ticks=20)

        assert not re.search(r"tick +\d+/", text)
        assert not [c for c in text if c not in "\n" and not c.isprintable()]
        assert text.splitlines()[3:] == [f"  {h}" for h in result.highlights]


class TestWidth:
    """Every line fits the width the output is read at, long events wrapping under their
    marker."""

    @pytest.mark.parametrize("columns", [80, 60])
    def test_every_line_fits(self, columns: int) -> None:
        _, text = demo(Path("j.jsonl"), columns=columns)

        assert max(cell_len(line) for line in text.splitlines()) <= columns
        assert not [line for line in text.splitlines() if line != line.rstrip()]

    def test_a_long_event_wraps_under_its_text(self) -> None:
        result, text = demo(Path("j.jsonl"), ticks=10, columns=40)

        lost = next(h for h in result.highlights if "broker answer lost" in h)
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith(f"  {lost[:12]}"))
        end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("    "))
        block = lines[start:end]
        assert len(block) > 1  # wrapped...
        assert all(line.startswith("    ") for line in block[1:])  # ...under the text, not "~"
        assert " ".join(" ".join(block).split()) == lost


_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]+")


def screen(raw: str) -> list[str]:
    """What a terminal shows once `raw` is written to it: a carriage return goes back to the
    start of the line, `ESC[2K` erases the line, `ESC[nA` moves up; colours and cursor
    visibility change nothing on screen. Trailing blank lines are dropped."""
    lines, row, col = [""], 0, 0
    for token in _CONTROL.findall(raw):
        if token == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif token == "\r":
            col = 0
        elif token == "\x1b[2K":
            lines[row] = ""
        elif up := re.fullmatch(r"\x1b\[(\d*)A", token):
            row = max(0, row - int(up[1] or 1))
        elif not token.startswith("\x1b"):
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token) :]
            col += len(token)
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.rstrip() for line in lines]
