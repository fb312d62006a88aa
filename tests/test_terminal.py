"""The console every `orders` command prints through: width, plain output, ids and counts."""

from __future__ import annotations

import io

import pytest
from rich.table import Table

import orders.demo
from orders import _terminal
from orders._terminal import Trimmed, output_console, plural, short_ids, show

CID = "3f2a9c1e-7b44-4d2a-9e1f-0a5b6c7d8e9f"


class _PipeGone(io.StringIO):
    """A pipe whose reader has left (as `orders replay | head` leaves it)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError


class TestWidth:
    """Piped output fits $COLUMNS, or 80 columns when $COLUMNS says nothing usable."""

    @pytest.mark.parametrize(("columns", "width"), [("40", 40), ("132", 132)])
    def test_columns_sets_the_width_of_a_pipe(
        self, monkeypatch: pytest.MonkeyPatch, columns: str, width: int
    ) -> None:
        monkeypatch.setenv("COLUMNS", columns)
        assert output_console(io.StringIO()).width == width

    @pytest.mark.parametrize("columns", [None, "", "0", "wide", "-5"])
    def test_without_a_usable_columns_a_pipe_is_80_wide(
        self, monkeypatch: pytest.MonkeyPatch, columns: str | None
    ) -> None:
        if columns is None:
            monkeypatch.delenv("COLUMNS", raising=False)
        else:
            monkeypatch.setenv("COLUMNS", columns)
        assert output_console(io.StringIO()).width == 80

    def test_text_wraps_at_the_width(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("COLUMNS", "20")
        out = io.StringIO()
        show(output_console(out), "the broker rejected this order for a reason that is long")
        lines = out.getvalue().splitlines()
        assert len(lines) > 1
        assert max(len(line) for line in lines) <= 20

    def test_a_line_to_copy_is_left_whole(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("COLUMNS", "20")
        out = io.StringIO()
        path = "logs/a-rather-long-directory/orders.jsonl"
        show(output_console(out), f"journal: {path}", wrap=False)
        assert out.getvalue() == f"journal: {path}\n"


class TestPlainOutput:
    """Written to a file or a pipe, output holds no escape codes, markup or padding."""

    def test_no_colour_or_cursor_codes_outside_a_terminal(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("FORCE_COLOR", "1")
        out = io.StringIO()
        show(output_console(out), "Summary", style="bold")
        assert out.getvalue() == "Summary\n"

    def test_live_forces_a_terminal(self) -> None:
        out = io.StringIO()
        console = output_console(out, live=True)
        assert console.is_terminal
        assert console.is_interactive

    def test_journal_text_is_never_read_as_markup(self) -> None:
        out = io.StringIO()
        show(output_console(out), "reason: [bold]halted[/bold] :warning:")
        assert out.getvalue() == "reason: [bold]halted[/bold] :warning:\n"

    def test_trimmed_table_lines_end_without_spaces(self) -> None:
        table = Table("order", "reason", box=None)
        table.add_row("3f2a9c1e", "x")
        table.add_row("1", "a much longer reason")
        padded, trimmed = io.StringIO(), io.StringIO()
        output_console(padded).print(table)
        output_console(trimmed).print(Trimmed(table))
        assert any(line != line.rstrip(" ") for line in padded.getvalue().splitlines())
        lines = trimmed.getvalue().splitlines()
        assert [line.rstrip(" ") for line in lines] == lines
        assert [line.rstrip(" ") for line in padded.getvalue().splitlines()] == lines

    def test_a_reader_that_left_ends_the_output_quietly(self) -> None:
        console = output_console(_PipeGone())
        with pytest.raises(BrokenPipeError):
            console.print("x")
        assert console.quiet  # nothing more is tried, so no second error at exit


class TestWords:
    """Counts and ids read the same way in every command."""

    @pytest.mark.parametrize(("count", "text"), [(0, "0 orders"), (1, "1 order"), (2, "2 orders")])
    def test_plural(self, count: int, text: str) -> None:
        assert plural(count, "order") == text

    def test_short_ids_cuts_every_uuid_to_8_characters(self) -> None:
        text = f"cancel of {CID} failed; {CID.upper()} retried"
        assert short_ids(text) == "cancel of 3f2a9c1e failed; 3F2A9C1E retried"

    @pytest.mark.parametrize(
        "text",
        [
            "broker id 1234abcd",
            f"x{CID}",  # part of a longer word: not an id of ours
            "3f2a9c1e-7b44-4d2a-9e1f-0a5b6c7d8e9",  # one digit short
        ],
    )
    def test_short_ids_leaves_other_text_alone(self, text: str) -> None:
        assert short_ids(text) == text


def test_the_demo_module_still_offers_the_console_helpers() -> None:
    for name in ("output_console", "Trimmed", "plural", "short_ids"):
        assert getattr(orders.demo, name) is getattr(_terminal, name)
        assert name in orders.demo.__all__
