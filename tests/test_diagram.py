"""The diagram and docs/lifecycle.md come from the machine and cannot drift from it."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from transitions import Machine

from orders.cli import main
from orders.diagram import machine_edges, render_dot, render_lifecycle_markdown, render_mermaid
from orders.lifecycle import (
    CANCEL_WAS_REQUESTED,
    FILL_COMPLETES,
    FILL_LEAVES_OPEN,
    LIFECYCLE,
    MACHINE_CONFIG,
    Move,
)
from orders.model import OrderState

DOCS = Path(__file__).resolve().parent.parent / "docs" / "lifecycle.md"

# How the drawings word each guard of the table (the labels' wording is part of the docs).
GUARD_WORDS = {
    FILL_COMPLETES: "completes the quantity",
    FILL_LEAVES_OPEN: "leaves quantity open",
    CANCEL_WAS_REQUESTED: "a cancel was requested",
}

Pair = tuple[str, str]

_MERMAID_ARROW = re.compile(r"^    (\w+) --> (\w+): (.+)$")
_DOT_ARROW = re.compile(r'^    (\w+) -> (\w+) \[label="((?:[^"\\]|\\.)*)"(, style=dashed)?\];$')


def expected_label(move: Move) -> str:
    """The label a move gets, worked out from the table alone."""
    text = move.trigger
    if move.guard is not None:
        text += f" [{GUARD_WORDS[move.guard]}]"
    if move.internal:
        text += " (stays)"
    return text


def expected_labels(moves: tuple[Move, ...]) -> dict[Pair, Counter[str]]:
    """Every (source, dest) pair of `moves` and the labels of the moves between the two."""
    labels: dict[Pair, Counter[str]] = {}
    for move in moves:
        labels.setdefault((str(move.source), str(move.dest)), Counter())[expected_label(move)] += 1
    return labels


def mermaid_arrows(text: str) -> list[tuple[Pair, list[str]]]:
    """The state-to-state arrows of a Mermaid diagram, each with its label's lines."""
    found = []
    for line in text.splitlines():
        match = _MERMAID_ARROW.match(line)
        if match:
            found.append(((match[1], match[2]), match[3].split("<br/>")))
    return found


def dot_arrows(text: str) -> list[tuple[Pair, list[str], bool]]:
    """The state-to-state arrows of a DOT digraph: pair, label lines, dashed or not."""
    found = []
    for line in text.splitlines():
        match = _DOT_ARROW.match(line)
        if match:
            *lines, rest = match[3].split("\\l")  # one left-justified line per move
            assert rest == "", line
            found.append(((match[1], match[2]), lines, bool(match[4])))
    # Every arrow but the start arrow has the shape above, so none escapes these checks.
    assert len(found) == text.count(" -> ") - 1
    return found


def assert_one_arrow_per_pair_with_every_move(
    drawn: list[tuple[Pair, list[str]]], moves: tuple[Move, ...]
) -> None:
    pairs = [pair for pair, _ in drawn]
    assert len(pairs) == len(set(pairs)), f"pairs drawn more than once: {pairs}"
    want = expected_labels(moves)
    assert set(pairs) == set(want)
    for pair, labels in drawn:
        assert Counter(labels) == want[pair], pair
    for move in moves:  # the same, said move by move
        labels = dict(drawn)[(str(move.source), str(move.dest))]
        assert expected_label(move) in labels, move


def machine_with(*extra: dict[str, Any]) -> Any:
    """A machine built like the shared one, with `extra` transitions added."""
    config = {**MACHINE_CONFIG, "transitions": [*MACHINE_CONFIG["transitions"], *extra]}
    return Machine(model=None, **config)


class TestDiagram:
    """Every move of the table appears, once, in the machine and in both drawings."""

    def test_machine_holds_exactly_the_table(self) -> None:
        from_machine = {(e.source, e.trigger, e.dest, e.internal) for e in machine_edges()}
        from_table = {(str(m.source), m.trigger, str(m.dest), m.internal) for m in LIFECYCLE}
        assert from_machine == from_table
        assert len(list(machine_edges())) == len(LIFECYCLE)

    def test_mermaid_has_one_arrow_per_pair_labelled_with_every_move(self) -> None:
        drawn = mermaid_arrows(render_mermaid())
        assert_one_arrow_per_pair_with_every_move(drawn, LIFECYCLE)
        # Mermaid draws one self-loop per state (mermaid-js/mermaid#6132): exactly one each.
        loops = Counter(source for (source, dest), _ in drawn if source == dest)
        assert loops and set(loops.values()) == {1}

    def test_mermaid_starts_and_ends_where_the_machine_does(self) -> None:
        text = render_mermaid()
        assert text.startswith("stateDiagram-v2\n    [*] --> pending\n")
        for terminal in ("filled", "cancelled", "rejected"):
            assert f"    {terminal} --> [*]\n" in text
        assert "\n    filled --> cancelled" not in text
        lines = text.splitlines()
        assert len(lines) == len(set(lines))

    def test_dot_has_one_arrow_per_pair_labelled_with_every_move(self) -> None:
        text = render_dot()
        assert text.startswith("digraph order_lifecycle {") and text.rstrip().endswith("}")
        assert "    __start -> pending;\n" in text
        drawn = dot_arrows(text)
        assert_one_arrow_per_pair_with_every_move(
            [(p, labels) for p, labels, _ in drawn], LIFECYCLE
        )

    def test_dot_dashes_the_arrows_whose_moves_all_stay(self) -> None:
        drawn = dot_arrows(render_dot())
        for (source, dest), _, dashed in drawn:
            moves = [m for m in LIFECYCLE if (str(m.source), str(m.dest)) == (source, dest)]
            assert dashed == all(m.internal for m in moves), (source, dest)
        assert (
            'cancelled -> cancelled [label="fill (stays)\\lcorrect_fill (stays)\\l", '
            "style=dashed];" in render_dot()
        )

    def test_a_new_internal_move_is_drawn_with_no_change_to_the_code(self) -> None:
        states = ("submitted", "filled")
        extra = [
            {"trigger": "amend", "source": s, "dest": None, "before": "_commit"} for s in states
        ]
        machine = machine_with(*extra)
        moves = (
            *LIFECYCLE,
            *(Move(OrderState(s), "amend", OrderState(s), internal=True) for s in states),
        )
        mermaid = render_mermaid(machine)
        assert_one_arrow_per_pair_with_every_move(mermaid_arrows(mermaid), moves)
        dot = dot_arrows(render_dot(machine))
        assert_one_arrow_per_pair_with_every_move([(p, labels) for p, labels, _ in dot], moves)
        assert "    filled --> filled: correct_fill (stays)<br/>amend (stays)\n" in mermaid

    def test_docs_page_matches_the_code(self) -> None:
        assert DOCS.read_text() == render_lifecycle_markdown(), (
            "docs/lifecycle.md is stale: run "
            "`uv run orders diagram --format markdown > docs/lifecycle.md`"
        )
        assert f"```mermaid\n{render_mermaid()}```\n" in DOCS.read_text()

    def test_command_prints_each_format(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["diagram"]) == 0
        assert capsys.readouterr().out == render_mermaid()
        assert main(["diagram", "--format", "dot"]) == 0
        assert capsys.readouterr().out == render_dot()
        assert main(["diagram", "--format", "markdown"]) == 0
        assert capsys.readouterr().out == render_lifecycle_markdown()
