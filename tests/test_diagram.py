"""The diagram and docs/lifecycle.md come from the machine and cannot drift from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from orders.cli import main
from orders.diagram import machine_edges, render_dot, render_lifecycle_markdown, render_mermaid
from orders.lifecycle import LIFECYCLE

DOCS = Path(__file__).resolve().parent.parent / "docs" / "lifecycle.md"


class TestDiagram:
    """Every move of the table appears, once, in the machine and in both drawings."""

    def test_machine_holds_exactly_the_table(self) -> None:
        from_machine = {(e.source, e.trigger, e.dest, e.internal) for e in machine_edges()}
        from_table = {(str(m.source), m.trigger, str(m.dest), m.internal) for m in LIFECYCLE}
        assert from_machine == from_table
        assert len(list(machine_edges())) == len(LIFECYCLE)

    def test_mermaid_has_every_edge_and_terminal(self) -> None:
        text = render_mermaid()
        assert text.startswith("stateDiagram-v2\n    [*] --> pending\n")
        for edge in machine_edges():
            assert f"    {edge.source} --> {edge.dest}: {edge.label}\n" in text
        for terminal in ("filled", "cancelled", "rejected"):
            assert f"    {terminal} --> [*]\n" in text
        assert "\n    filled --> cancelled" not in text

    def test_dot_is_a_digraph_with_every_edge(self) -> None:
        text = render_dot()
        assert text.startswith("digraph order_lifecycle {") and text.rstrip().endswith("}")
        assert text.count(" -> ") == len(LIFECYCLE) + 1  # plus the start arrow
        assert 'cancelled -> cancelled [label="fill (stays)", style=dashed];' in text

    def test_docs_page_matches_the_code(self) -> None:
        assert DOCS.read_text() == render_lifecycle_markdown(), (
            "docs/lifecycle.md is stale: run "
            "`uv run orders diagram --format markdown > docs/lifecycle.md`"
        )

    def test_command_prints_each_format(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["diagram"]) == 0
        assert capsys.readouterr().out == render_mermaid()
        assert main(["diagram", "--format", "dot"]) == 0
        assert capsys.readouterr().out == render_dot()
