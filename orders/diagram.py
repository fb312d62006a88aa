"""The lifecycle drawn from the running `transitions` machine, never by hand.

Mermaid for Markdown pages, Graphviz DOT for everything else, and the docs page
(docs/lifecycle.md) that embeds the diagram beside a table of every legal move. A test
regenerates the page and fails when the committed copy drifts from the code.

Both drawings have ONE arrow per (source, destination) pair, labelled with every transition
between the two states, one per line. Mermaid draws only one self-loop per state
(mermaid-js/mermaid#6132) and silently drops the others, and Graphviz stacks the labels of
several loops on one node on top of each other; merged arrows avoid both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import attrs

from orders.lifecycle import LIFECYCLE, MACHINE
from orders.model import TERMINAL_STATES, OrderState

__all__ = [
    "Arrow",
    "Edge",
    "arrows",
    "machine_edges",
    "render_dot",
    "render_lifecycle_markdown",
    "render_mermaid",
]

# What each guard callback means, in words, when it holds and when it does not.
_GUARD_WORDS: Final = {
    "_fill_completes": ("completes the quantity", "leaves quantity open"),
    "_cancel_was_requested": ("a cancel was requested", "no cancel was requested"),
}


@attrs.frozen
class Edge:
    """One transition as the machine holds it."""

    source: str
    trigger: str
    dest: str
    internal: bool
    guard: str | None

    @property
    def label(self) -> str:
        text = self.trigger
        if self.guard:
            text += f" [{self.guard}]"
        if self.internal:
            text += " (stays)"
        return text


def machine_edges(machine: Any = MACHINE) -> Iterator[Edge]:
    """Every transition of the machine (the shared one by default), in trigger then source
    order."""
    for trigger, event in machine.events.items():
        for source, transitions in event.transitions.items():
            for transition in transitions:
                guards = [
                    _GUARD_WORDS[str(c.func)][0 if c.target else 1] for c in transition.conditions
                ]
                dest: str | None = transition.dest
                yield Edge(
                    source=source,
                    trigger=trigger,
                    dest=source if dest is None else dest,
                    internal=dest is None,
                    guard=" and ".join(guards) or None,
                )


@attrs.frozen
class Arrow:
    """What the diagrams draw: every transition from `source` to `dest`, as one arrow."""

    source: str
    dest: str
    edges: tuple[Edge, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(edge.label for edge in self.edges)

    @property
    def internal(self) -> bool:
        """True when every transition on the arrow keeps the order where it is."""
        return all(edge.internal for edge in self.edges)


def arrows(machine: Any = MACHINE) -> list[Arrow]:
    """The machine's transitions grouped by (source, dest), in order of first appearance."""
    grouped: dict[tuple[str, str], list[Edge]] = {}
    for edge in machine_edges(machine):
        grouped.setdefault((edge.source, edge.dest), []).append(edge)
    return [Arrow(source, dest, tuple(edges)) for (source, dest), edges in grouped.items()]


def _states() -> list[str]:
    return [str(state) for state in OrderState]


def render_mermaid(machine: Any = MACHINE) -> str:
    """A Mermaid `stateDiagram-v2` of the lifecycle, one arrow per (source, dest) pair."""
    lines = ["stateDiagram-v2", f"    [*] --> {machine.initial}"]
    lines += [f"    {a.source} --> {a.dest}: {'<br/>'.join(a.labels)}" for a in arrows(machine)]
    lines += [f"    {state} --> [*]" for state in _states() if OrderState(state) in TERMINAL_STATES]
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_dot(machine: Any = MACHINE) -> str:
    """A Graphviz DOT digraph of the lifecycle, one arrow per (source, dest) pair.

    Terminal states are double-bordered; arrows whose transitions all stay are dashed. Each
    label has one left-justified line (`\\l`) per transition. Top to bottom, because `dot`
    sets a self-loop's label beside its node and leaves room for it only in that direction:
    left to right, the stacked loop labels ran into the next node and its arrow's label.
    """
    lines = [
        "digraph order_lifecycle {",
        "    rankdir=TB;",
        "    ranksep=0.8;",
        "    nodesep=0.6;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
        '    __start [shape=point, label=""];',
    ]
    for state in _states():
        extra = ", peripheries=2" if OrderState(state) in TERMINAL_STATES else ""
        lines.append(f'    {state} [label="{state}"{extra}];')
    lines.append(f"    __start -> {machine.initial};")
    for a in arrows(machine):
        label = "".join(f"{_dot_string(text)}\\l" for text in a.labels)
        style = ", style=dashed" if a.internal else ""
        lines.append(f'    {a.source} -> {a.dest} [label="{label}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_lifecycle_markdown() -> str:
    """The docs/lifecycle.md page: the diagram and the table of every legal move."""
    rows = [
        f"| `{m.source}` | `{m.trigger}` | `{m.dest}` | "
        f"{'stays (internal: no exit, no enter)' if m.internal else 'enters'}"
        f"{f'; when the {m.guard}' if m.guard else ''} |"
        for m in sorted(LIFECYCLE, key=lambda m: (list(OrderState).index(m.source), m.trigger))
    ]
    return "\n".join(
        [
            "# Order lifecycle",
            "",
            "<!-- Generated by `uv run orders diagram --format markdown > docs/lifecycle.md`;",
            "     tests/test_diagram.py fails when this page drifts from the code. -->",
            "",
            "Every `Order` is driven by one shared `transitions` machine built from the table",
            "`orders.lifecycle.LIFECYCLE`. Terminal states: "
            + ", ".join(f"`{s}`" for s in _states() if OrderState(s) in TERMINAL_STATES)
            + ". Any (state, trigger) pair",
            "missing below raises `IllegalTransition` and leaves the order unchanged.",
            "",
            "```mermaid",
            render_mermaid().rstrip("\n"),
            "```",
            "",
            "| state | trigger | goes to | how |",
            "|---|---|---|---|",
            *rows,
            "",
            "Notes:",
            "",
            "- `fill` with an execution id already booked returns `False` and changes nothing, in",
            "  any state; a fill past the order quantity raises `OverfillError`.",
            "- `request_cancel` on an order that already has a cancel requested, and",
            "  `cancel_rejected` on a filled or cancelled order, return `False` and change",
            "  nothing.",
            "- A `fill` that completes the quantity clears `cancel_requested`; so do `cancel` and",
            "  `reject`.",
            '- `correct_fill` (FIX ExecType "Trade Correct") replaces every fill inferred from',
            "  the broker's cumulative quantity with the executions the broker lists later: the",
            "  quantities stay, the prices become the broker's (its average price is rounded).",
            "  With no inferred fill left it returns `False`; executions that do not add up to",
            "  the inferred quantity raise `InvalidOrderError`.",
            "- Hooks: entering a state runs its `on_enter` callbacks; internal moves run the",
            "  transition's `after` callbacks. Both reach the order's `OrderHooks`.",
            "",
        ]
    )
