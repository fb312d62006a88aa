"""The tables `orders stats`, `orders demo` and `orders replay` print, fitted to a width.

A table wider than the screen wraps into a mess, so each one here decides what gives way
first when it is too wide (a strategy name, then a folded state), and text from a journal is
kept to one printable line per cell.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext
from typing import Any, Final

import attrs
from rich import box
from rich.cells import cell_len, chop_cells, set_cell_size
from rich.console import Group, JustifyMethod, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from orders._terminal import short_ids
from orders.lifecycle import Order
from orders.model import OrderState
from orders.stats import OrderStats

__all__ = ["by_frequency", "replay_table", "stats_block"]

# A header, a rule under it, and columns two spaces apart: no borders to spend width on.
_RULED: Final = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)
_STATES: Final = [str(s) for s in OrderState]
_STATE_STYLES: Final[Mapping[str, str]] = {
    OrderState.FILLED: "green",
    OrderState.CANCELLED: "yellow",
    OrderState.REJECTED: "red",
}


def _table(**kwargs: Any) -> Table:
    return Table(
        box=_RULED,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        header_style="bold",
        **kwargs,
    )


def stats_block(stats: OrderStats) -> RenderableType:
    """One set of figures: orders by state, then the rates, indented under its heading.

    Long values (a broker's reject reason) wrap in their column rather than widen the block.
    """
    states = _table()
    for state in _STATES:
        states.add_column(state, justify="right", no_wrap=True)
    states.add_row(*(str(stats.by_state.get(s, 0)) for s in _STATES))
    cancels = stats.cancels
    figures = Table.grid(padding=(0, 2, 0, 0))
    figures.add_column(no_wrap=True)
    figures.add_column(overflow="fold")
    rows = [
        ("orders", str(stats.orders)),
        ("success rate (filled / finished)", _ratio(stats.success_rate)),
        (
            "fill ratio (filled / ordered qty)",
            f"{_ratio(stats.fill_ratio)} ({stats.filled_quantity} of {stats.ordered_quantity})",
        ),
        ("cancels confirmed / requested", f"{cancels.confirmed} / {cancels.requested}"),
        (
            "cancel reliability",
            f"{_ratio(cancels.reliability)} ({cancels.filled_first} filled first, "
            f"{cancels.outstanding} outstanding)",
        ),
        (
            "cancel latency p50 / p90 / max",
            " / ".join(_seconds(cancels.latency(f)) for f in (0.5, 0.9, 1.0)),
        ),
    ]
    for reason, count in by_frequency(stats.reject_reasons):
        rows.append(("rejected", f"{count} x {_printable(short_ids(reason))}"))
    for name, value in rows:
        figures.add_row(name, value)
    return Padding(Group(states, figures), (0, 0, 0, 2), expand=False)


_REPLAY_HEADER: Final[tuple[tuple[str, JustifyMethod], ...]] = (
    ("order", "left"),
    ("strategy", "left"),
    ("symbol", "left"),
    ("side", "left"),
    ("qty", "right"),
    ("limit", "right"),
    ("state", "left"),
    ("filled", "right"),
    ("avg", "right"),
)
_STRATEGY: Final = 1
_STATE: Final = 6
_GAP: Final = "  "
# What gives way when the table is too wide: first the strategy, down to 8 cells and an
# ellipsis ("mean_re…" still says which); when that is not enough the state folds onto a
# second line ("partially" / "_filled") and the strategy gets back what that frees. Ids are
# 8 characters already and figures are not cut, down to about 77 columns; narrower than
# that, the widest columns are cut, each with an ellipsis that says so.
_MIN_STRATEGY: Final = 8
_FOLDED_STATE: Final = len(OrderState.CANCELLED)
_MIN_REASON: Final = 24  # narrower, a reason wraps into a column of one-word lines


def replay_table(orders: Sequence[Order], width: int) -> tuple[Text, Table | None]:
    """The replay table fitted to `width`, and the reasons to print after it (None when they
    are in the table or there are none).

    Reasons are rare (rejections, broker cancels) and long, so they get a column only when it
    can be at least 24 cells wide; otherwise they follow the table, each beside its order's
    id and wrapped, rather than be cut to a few unreadable letters.

    The rows are laid out here rather than by `rich.table.Table`, which takes about half a
    millisecond a row: seconds for the journal of a bot that has run for a few weeks. rich
    still measures every cell in terminal cells (a CJK strategy name is two per character).
    """
    rows = [
        [
            o.client_order_id[:8],
            o.strategy,
            o.symbol,
            str(o.side),
            str(o.quantity),
            str(o.limit_price),
            str(o.state),
            str(o.filled_quantity),
            "-" if o.average_fill_price is None else _money(o.average_fill_price),
        ]
        for o in orders
    ]
    reasons = [(o.client_order_id[:8], _printable(short_ids(o.reason or ""))) for o in orders]
    header = [name for name, _ in _REPLAY_HEADER]
    justify = [how for _, how in _REPLAY_HEADER]
    overflow = ["fold" if i == _STATE else "ellipsis" for i in range(len(header))]
    values = [max([cell_len(row[i]) for row in rows], default=0) for i in range(len(header))]
    widths = [max(value, len(name)) for value, name in zip(values, header, strict=True)]
    gaps = len(_GAP) * (len(widths) - 1)
    if sum(widths) + gaps - width > widths[_STRATEGY] - _MIN_STRATEGY:
        widths[_STATE] = min(widths[_STATE], _FOLDED_STATE)
    widths[_STRATEGY] = max(_MIN_STRATEGY, widths[_STRATEGY] - max(0, sum(widths) + gaps - width))
    while sum(widths) + gaps > width and max(widths) > 1:  # a very narrow terminal
        # A header wider than its figures is cut first ("sym…"), then the widest column.
        slack = [w - v for w, v in zip(widths, values, strict=True)]
        cut = slack.index(max(slack)) if max(slack) > 0 else widths.index(max(widths))
        widths[cut] -= 1
    room = width - sum(widths) - gaps - len(_GAP)
    longest = max((cell_len(text) for _, text in reasons), default=0)
    inline = longest > 0 and room >= min(longest, _MIN_REASON)
    if inline:
        header.append("reason")
        justify.append("left")
        overflow.append("wrap")
        widths.append(min(room, longest))
        for row, (_, reason) in zip(rows, reasons, strict=True):
            row.append(reason)

    layout = _Layout(widths, justify, overflow)
    text = Text(no_wrap=True, end="")
    layout.add_row(text, header, {i: "bold" for i in range(len(header))})
    text.append(("-" * (sum(widths) + len(_GAP) * (len(widths) - 1))) + "\n")
    for row in rows:
        style = _STATE_STYLES.get(row[_STATE])
        layout.add_row(text, row, {_STATE: style} if style else {})
    listed = [(cid, reason) for cid, reason in reasons if reason]
    if inline or not listed:
        return text, None
    grid = Table.grid(padding=(0, len(_GAP), 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for cid, reason in listed:
        grid.add_row(cid, reason)
    return text, grid


@attrs.frozen
class _Layout:
    """Column widths, alignments and overflows (`ellipsis`, `fold`, `wrap`) of a table."""

    widths: Sequence[int]
    justify: Sequence[JustifyMethod]
    overflow: Sequence[str]

    def add_row(self, text: Text, cells: Sequence[str], styles: Mapping[int, str]) -> None:
        """Append one row to `text`: each cell fitted to its column, on as many lines as its
        tallest cell needs, with no spaces at the end of a line."""
        fitted = [
            _fit(cell, w, how)
            for cell, w, how in zip(cells, self.widths, self.overflow, strict=True)
        ]
        for n in range(max(len(lines) for lines in fitted)):
            line = ""
            spans: list[tuple[int, int, str]] = []
            for i, (lines, w, how) in enumerate(
                zip(fitted, self.widths, self.justify, strict=True)
            ):
                piece = lines[n] if n < len(lines) else ""
                pad = " " * (w - cell_len(piece))
                start = len(line) + (len(pad) if how == "right" else 0)
                line += (pad + piece if how == "right" else piece + pad) + _GAP
                if i in styles and piece:
                    spans.append((start, start + len(piece), styles[i]))
            base = len(text)
            text.append(line.rstrip(" ") + "\n")
            for begin, end, style in spans:
                text.stylize(style, base + begin, base + end)


def _fit(cell: str, width: int, overflow: str) -> list[str]:
    if cell_len(cell) <= width:
        return [cell]
    if overflow == "fold":
        return chop_cells(cell, width)
    if overflow == "wrap":
        words = textwrap.wrap(cell, width, break_on_hyphens=False) or [""]
        return [part for word in words for part in chop_cells(word, width)]
    return [set_cell_size(cell, max(0, width - 1)) + "…"]


def _money(value: Decimal) -> str:
    """A price to 4 decimals, trailing zeros dropped, never in exponent form."""
    with localcontext() as context:
        context.prec = max(28, value.adjusted() + 6)
        text = format(value.quantize(Decimal("0.0001")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _ratio(value: float | Decimal | None) -> str:
    return "-" if value is None else f"{float(value):.1%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def by_frequency(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Most frequent first, then by text, so the order is the same every time."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _printable(text: str) -> str:
    """Text from a journal (a broker's reason) on one line: a newline or a control character
    would break a table's row or move the cursor."""
    return "".join(c if c.isprintable() else " " for c in text)
