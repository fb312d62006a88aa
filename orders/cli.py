"""The `orders` command: a person's way into the library.

Every failure a person can cause (a missing file, a bad config, a damaged journal, a bad
argument, a Ctrl-C before the work is under way) is one clear line on stderr and a non-zero
exit, never a traceback.

What a command prints fits the width it is read at: the terminal's, or 80 columns when it
cannot tell (piped, redirected), because a line wider than the screen wraps into a mess and a
progress line that wraps cannot be redrawn. Tables and the demo's progress go through rich,
which measures text in terminal cells and draws in place only on a terminal. `stats` and
`replay` also print one JSON document (`--json`) for tools: exact decimals as strings, times
in ISO 8601 UTC. `report` writes `orders.report`'s HTML page.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import signal
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from pathlib import Path
from types import FrameType
from typing import Any, Final, NoReturn, TextIO

import attrs
from rich import box
from rich.cells import cell_len, chop_cells, set_cell_size
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from orders.audit import AuditJournal
from orders.bot import StopFlag, TradingBot
from orders.config import REFERENCE_QUOTES, ROBINHOOD_QUOTES
from orders.demo import DEFAULT_DEMO_JOURNAL, Trimmed, output_console, plural, run_demo, short_ids
from orders.diagram import render_dot, render_lifecycle_markdown, render_mermaid
from orders.errors import OrderError
from orders.gateways.paper import PaperBroker
from orders.lifecycle import Order
from orders.log import ROOT_LOGGER, StructuredFormatter
from orders.manager import SyncReport
from orders.model import OrderState
from orders.report import write_report
from orders.stats import OrderStats, compute_stats, stats_by_strategy
from orders.version import __version__

__all__ = ["main"]

DEFAULT_JOURNAL = Path("logs/orders.jsonl")
_RENDERERS = {"mermaid": render_mermaid, "dot": render_dot, "markdown": render_lifecycle_markdown}

_STATS_JSON: Final = """\
With --json, one JSON document on stdout instead of the tables:

  {"journal": PATH, "all": STATS, "strategies": {NAME: STATS, ...}}

  STATS = {"orders": N, "finished": N,
           "by_state": {"pending": N, "submitted": N, "partially_filled": N,
                        "filled": N, "cancelled": N, "rejected": N},
           "success_rate": R, "ordered_quantity": DEC, "filled_quantity": DEC,
           "fill_ratio": R,
           "cancels": {"requested": N, "confirmed": N, "filled_first": N,
                       "rejected": N, "outstanding": N, "reliability": R,
                       "latency_seconds": {"p50": S, "p90": S, "max": S}},
           "reject_reasons": {REASON: N, ...}}

N is a count, R a ratio from 0 to 1 (null when there is nothing to divide), S seconds
(null when no cancel was confirmed), DEC an exact decimal in a string (quantities and
money are never floats). Reject reasons come most frequent first."""

_REPLAY_JSON: Final = """\
With --json, one JSON document on stdout instead of the table, the orders in the order
the journal first names them:

  {"journal": PATH, "orders": [ORDER, ...]}

  ORDER = {"client_order_id": ID, "broker_order_id": ID or null,
           "strategy": NAME, "symbol": SYMBOL, "side": "buy" or "sell",
           "quantity": DEC, "limit_price": DEC, "time_in_force": "gfd" or "gtc",
           "state": STATE, "filled_quantity": DEC, "filled_notional": DEC,
           "average_fill_price": DEC or null, "cancel_requested": BOOL,
           "reason": TEXT or null,
           "first_event_at": TIME or null, "last_event_at": TIME or null,
           "executions": [{"execution_id": ID, "quantity": DEC, "price": DEC,
                           "at": TIME or null}, ...],
           "history": [{"at": TIME, "trigger": NAME, "source": STATE,
                        "dest": STATE, "reason": TEXT or null}, ...]}

DEC is an exact decimal in a string (money is never a float); TIME is ISO 8601 in UTC,
e.g. "2026-01-05T14:30:01+00:00"; ids are whole (the table shows their first 8
characters)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that gives every option's default, and keeps laid-out text (the JSON shapes) as
    written: argparse would otherwise pour it into one paragraph.

    A paragraph starting with spaces is kept line for line; others are wrapped to the width.
    A flag (default False) or an option without a default gets no `(default: ...)` of noise.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            if block.startswith(" "):
                blocks.append(textwrap.indent(block, indent))
            else:
                blocks.append(
                    textwrap.fill(
                        " ".join(block.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(blocks)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="orders",
        description="Limit orders on Robinhood through an explicit, audited state machine. "
        "Run `orders COMMAND --help` for a command's options.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str, epilog: str | None = None) -> Any:
        return commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=epilog,
            formatter_class=_HelpFormatter,
        )

    demo = command(
        "demo",
        "run a paper-trading demo on the simulated broker (no network, no login)",
        "A seeded paper-trading session on the embedded simulated broker: partial fills, a "
        "stale order cancelled, a rejection, a duplicate blocked and lost broker answers "
        "survived, then a summary. It appends to a journal of its own, never your bot's.",
    )
    demo.add_argument(
        "--journal",
        type=Path,
        default=DEFAULT_DEMO_JOURNAL,
        metavar="FILE",
        help="the demo's own journal, appended to; its broker's state is kept beside it",
    )
    demo.add_argument("--seed", type=int, default=7, help="seed of the price path and broker")
    demo.add_argument("--ticks", type=int, default=60, help="simulated seconds to trade, 1 or more")
    demo.add_argument(
        "--delay", type=float, default=0.05, help="real seconds to pause per tick (0: none)"
    )

    stats = command(
        "stats",
        "success, fill and cancel figures from a journal",
        "Success rate, fill ratio, cancel reliability and latency and reject reasons of the "
        "orders in a journal, overall and per strategy.",
        _STATS_JSON,
    )
    replay = command(
        "replay",
        "the orders rebuilt from a journal, as a table",
        "Every order rebuilt from a journal, one row each: its strategy, figures and state. "
        "Reasons given for rejections and cancels follow the table when there is no room for "
        "them in it.",
        _REPLAY_JSON,
    )
    for sub in (stats, replay):
        sub.add_argument(
            "journal", nargs="?", type=Path, default=DEFAULT_JOURNAL, help="the journal to read"
        )
        sub.add_argument(
            "--json", action="store_true", help="print one JSON document (shape below)"
        )

    report = command(
        "report",
        "a journal as one self-contained HTML page: figures, charts, timeline",
        "Write a journal's figures (the ones `orders stats` prints), their distributions, a "
        "timeline of every order and the lifecycle diagram as one HTML page that opens from "
        "disk with no network.",
    )
    report.add_argument(
        "journal", nargs="?", type=Path, default=DEFAULT_JOURNAL, help="the journal to read"
    )
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("report.html"),
        metavar="FILE",
        help="where the page is written (replaced whole, never half written)",
    )

    diagram = command(
        "diagram",
        "the order lifecycle diagram, generated from the state machine",
        "The order lifecycle drawn from the running state machine, for a Markdown page, "
        "Graphviz or the docs. Printed as the format needs it, never wrapped.",
    )
    diagram.add_argument(
        "--format",
        choices=sorted(_RENDERERS),
        default="mermaid",
        help="mermaid, dot (Graphviz) or markdown (the docs/lifecycle.md page)",
    )

    run = command(
        "run",
        "run the bot's sync loop from a config file until Ctrl-C or SIGTERM",
        "Recover the journal named by the config, then sync with the broker (paper or live, "
        "as the config says) until Ctrl-C or SIGTERM, printing each order event.",
    )
    run.add_argument(
        "--config",
        type=Path,
        required=True,
        metavar="FILE",
        help="JSON file with an order_management block (see config.example.json)",
    )
    run.add_argument(
        "--log-format",
        choices=("console", "json"),
        default="console",
        help="how library log lines are written to stderr",
    )
    run.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        help="the least severe library log lines shown",
    )
    return parser


# -- commands ----------------------------------------------------------------------------------


def _cmd_diagram(args: argparse.Namespace, out: TextIO) -> int:
    out.write(_RENDERERS[args.format]())
    return 0


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.ticks < 1 or not math.isfinite(args.delay) or args.delay < 0:
        raise _UsageError("--ticks must be at least 1 and --delay a number of seconds >= 0")
    if args.journal.is_dir():
        raise _UsageError(f"--journal {args.journal} is a directory; give a file path")
    result = run_demo(args.journal, seed=args.seed, ticks=args.ticks, delay=args.delay, out=out)
    console = output_console(out)
    mine = result.stats.orders
    earlier = result.journal_orders - mine
    counted = (
        plural(mine, "order")
        if not earlier
        else f"{mine} from this run, {plural(mine + earlier, 'order')} in all"
    )
    journal = shlex.quote(str(result.journal))
    _show(console, "")
    _show(console, "Summary of this run", style="bold")
    _show(console, _stats_block(result.stats))
    _show(
        console,
        f"\njournal: {result.journal} ({counted})\n"
        f"simulated broker: {result.broker_state}\n"
        f"read it back with:\n"
        f"  uv run orders replay {journal}\n"
        f"  uv run orders stats {journal}",
        wrap=False,
    )
    return 0


def _read_journal(path: Path) -> dict[str, Order]:
    _require_journal(path)
    return AuditJournal.replay(path)


def _require_journal(path: Path) -> None:
    if not path.is_file():
        raise _UsageError(
            f"no journal at {path}; run `orders demo` to write one, or pass a journal path"
        )


def _cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    _require_journal(args.journal)
    if args.output.is_dir():
        raise _UsageError(f"-o {args.output} is a directory; give a file path")
    stats = write_report(args.journal, args.output)
    line = f"{args.output}: {plural(stats.orders, 'order')} from {args.journal}"
    _show(output_console(out), line, wrap=False)
    return 0


def _cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    orders = _read_journal(args.journal)
    overall = compute_stats(orders.values())
    strategies = stats_by_strategy(orders.values())
    if args.json:
        _write_json(
            out,
            {
                "journal": str(args.journal),
                "all": _stats_json(overall),
                "strategies": {name: _stats_json(s) for name, s in strategies.items()},
            },
        )
        return 0
    console = output_console(out)
    _show(console, f"{args.journal}: {plural(len(orders), 'order')}\n", wrap=False)
    _show(console, "All strategies", style="bold")
    _show(console, _stats_block(overall))
    for name, stats in strategies.items():
        _show(console, f"\nStrategy {name}", style="bold")
        _show(console, _stats_block(stats))
    return 0


def _cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    orders = _read_journal(args.journal)
    if args.json:
        _write_json(
            out,
            {"journal": str(args.journal), "orders": [_order_json(o) for o in orders.values()]},
        )
        return 0
    console = output_console(out)
    table, reasons = _replay_table(list(orders.values()), console.width)
    _show(console, table)
    if reasons:
        _show(console, "\nReasons given", style="bold")
        _show(console, Padding(reasons, (0, 0, 0, 2), expand=False))
        _show(console, "")
    _show(console, f"{plural(len(orders), 'order')} from {args.journal}", wrap=False)
    return 0


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    stop = StopFlag()
    say = _LineWriter(out, output_console(out).width)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Installed before anything is printed, so a SIGTERM at any moment stops the loop cleanly.
    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        bot = TradingBot.from_config(args.config)
        live = bot.mode == "live"
        mode = "LIVE: real orders on Robinhood" if live else "paper (simulated broker)"
        interval = bot.manager.config.sync_interval_seconds
        say(f"orders run: mode {mode}")
        say(f"journal: {bot.manager.journal.path}", wrap=False)
        say(f"syncing every {interval} s; Ctrl-C or SIGTERM stops cleanly")
        if not live:
            _describe_paper(bot, say)
        out.flush()
        try:
            _recover(bot, say)
            bot.run(stop, on_sync=lambda report: _print_sync(say, report))
        except KeyboardInterrupt:
            stop.set()
            bot.manager.journal.close()
            if out.isatty():
                out.write("\n")  # past the "^C" the terminal echoed
    finally:
        signal.signal(signal.SIGTERM, previous)
    working = len(bot.manager.open_orders())
    say(f"stopped; journal flushed; {plural(working, 'order')} still working at the broker")
    return 0


class _LineWriter:
    """`run`'s output: plain lines as they happen, flushed by the caller once per sync round;
    a long one (a broker's problem) wrapped to the width, continued lines indented.

    Not rich: these lines are a log a person tails or pipes to a file, written the moment
    they happen, and wrapping them needs no more than textwrap. A line naming a path is left
    whole (`wrap=False`), as `_show` does.
    """

    def __init__(self, out: TextIO, width: int) -> None:
        self.out = out
        self.width = max(width, 20)

    def __call__(self, line: str, *, wrap: bool = True) -> None:
        wrapped = (
            textwrap.wrap(
                line,
                self.width,
                subsequent_indent="    ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            if wrap
            else [line]
        )
        self.out.write("".join(f"{part}\n" for part in wrapped or [""]))


def _describe_paper(bot: TradingBot, say: _LineWriter) -> None:
    """Where the simulated market's prices come from and where its account is kept."""
    broker = bot.manager.gateway
    if not isinstance(broker, PaperBroker):
        return
    quotes = bot.manager.config.paper.quotes
    if quotes == REFERENCE_QUOTES:
        source = "the strategies' reference prices"
    elif quotes == ROBINHOOD_QUOTES:
        source = "Robinhood, live (read-only)"
    else:
        source = quotes
    if broker.state_path is not None:
        state = "resumed from" if broker.resumed else "new account in"
        say(f"paper broker: {state} {broker.state_path}", wrap=False)
    say(f"paper quotes: {source}", wrap=False)


def _recover(bot: TradingBot, say: _LineWriter) -> None:
    """Pick up where the last run left off: orders and guards from the journal, then a sync."""
    report = bot.manager.recover()
    tracked = len(bot.manager.orders())
    if tracked:
        working = len(bot.manager.open_orders())
        say(f"recovered {plural(tracked, 'order')} from the journal, {working} still working")
    _print_sync(say, report)


def _print_sync(say: _LineWriter, report: SyncReport) -> None:
    for cid, event in report.events:
        say(f"{event.at.isoformat()} {cid[:8]} {event.trigger} -> {event.dest}")
    for error in report.errors:
        say(f"problem: {short_ids(error)}")
    say.out.flush()


# -- tables ------------------------------------------------------------------------------------


def _show(console: Console, item: RenderableType, *, style: str = "", wrap: bool = True) -> None:
    """Print `item` (a string as plain text: never read as markup) fitted to the console's
    width, with no spaces left at the ends of its lines.

    `wrap=False` is for a line that holds a path or a command to copy: cut by us it would
    come apart on two lines; left whole, it only passes the edge when the path itself is long,
    and the terminal then wraps it without breaking a copy.
    """
    if not wrap:
        console.print(Text(str(item), style=style), soft_wrap=True)
        return
    console.print(Trimmed(Text(item, style=style) if isinstance(item, str) else item))


# A header, a rule under it, and columns two spaces apart: no borders to spend width on.
_RULED: Final = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)
_STATES: Final = [str(s) for s in OrderState]
_STATE_STYLES: Final = {"filled": "green", "cancelled": "yellow", "rejected": "red"}


def _table(**kwargs: Any) -> Table:
    return Table(
        box=_RULED,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        header_style="bold",
        **kwargs,
    )


def _stats_block(stats: OrderStats) -> RenderableType:
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
    for reason, count in _by_frequency(stats.reject_reasons):
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
_FOLDED_STATE: Final = len("cancelled")
_MIN_REASON: Final = 24  # narrower, a reason wraps into a column of one-word lines


def _replay_table(orders: Sequence[Order], width: int) -> tuple[Text, Table | None]:
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


# -- JSON --------------------------------------------------------------------------------------


def _write_json(out: TextIO, document: dict[str, Any]) -> None:
    out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _decimal(value: Decimal) -> str:
    """Exact, and never in exponent form (`1E+2` reads as a float to some tools)."""
    return format(value, "f")


def _time(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def _stats_json(stats: OrderStats) -> dict[str, Any]:
    cancels = stats.cancels
    return {
        "orders": stats.orders,
        "finished": stats.finished,
        "by_state": {s: stats.by_state.get(s, 0) for s in _STATES},
        "success_rate": stats.success_rate,
        "ordered_quantity": _decimal(stats.ordered_quantity),
        "filled_quantity": _decimal(stats.filled_quantity),
        "fill_ratio": None if stats.fill_ratio is None else float(stats.fill_ratio),
        "cancels": {
            "requested": cancels.requested,
            "confirmed": cancels.confirmed,
            "filled_first": cancels.filled_first,
            "rejected": cancels.rejected,
            "outstanding": cancels.outstanding,
            "reliability": cancels.reliability,
            "latency_seconds": {
                "p50": cancels.latency(0.5),
                "p90": cancels.latency(0.9),
                "max": cancels.latency(1.0),
            },
        },
        "reject_reasons": dict(_by_frequency(stats.reject_reasons)),
    }


def _order_json(order: Order) -> dict[str, Any]:
    average = order.average_fill_price
    return {
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "strategy": order.strategy,
        "symbol": order.symbol,
        "side": str(order.side),
        "quantity": _decimal(order.quantity),
        "limit_price": _decimal(order.limit_price),
        "time_in_force": str(order.time_in_force),
        "state": str(order.state),
        "filled_quantity": _decimal(order.filled_quantity),
        "filled_notional": _decimal(order.filled_notional),
        "average_fill_price": None if average is None else _decimal(average),
        "cancel_requested": order.cancel_requested,
        "reason": order.reason,
        "first_event_at": _time(order.first_event_at),
        "last_event_at": _time(order.last_event_at),
        "executions": [
            {
                "execution_id": e.execution_id,
                "quantity": _decimal(e.quantity),
                "price": _decimal(e.price),
                "at": _time(e.timestamp),
            }
            for e in order.executions
        ],
        "history": [
            {
                "at": _time(e.at),
                "trigger": e.trigger,
                "source": str(e.source),
                "dest": str(e.dest),
                "reason": e.reason,
            }
            for e in order.history
        ],
    }


# -- figures -----------------------------------------------------------------------------------


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


def _by_frequency(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Most frequent first, then by text, so the order is the same every time."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _printable(text: str) -> str:
    """Text from a journal (a broker's reason) on one line: a newline or a control character
    would break a table's row or move the cursor."""
    return "".join(c if c.isprintable() else " " for c in text)


# -- entry point -------------------------------------------------------------------------------


class _UsageError(Exception):
    """A mistake in how the command was called; the message says what to do."""


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to the `sys.stderr` of the moment (tests and daemons replace it).

    Console lines are wrapped to stderr's width like the command's own lines, continued lines
    indented; JSON lines are for tools and stay one line each.
    """

    def __init__(self, *, wrap: bool) -> None:
        super().__init__()
        self.wrap = wrap

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self.wrap:
            return text
        width = max(output_console(sys.stderr).width, 20)
        return "\n".join(
            "\n".join(
                textwrap.wrap(
                    line,
                    width,
                    subsequent_indent="    ",
                    break_long_words=False,
                    break_on_hyphens=False,
                )
                or [""]
            )
            for line in text.splitlines()
        )


def _configure_logging(args: argparse.Namespace) -> Callable[[], None]:
    """The library's log lines on stderr, as the command asks; returns how to undo it.

    The command is the host here, so it is the one place that attaches a handler (to the
    `orders` logger only: nothing else in the process is touched). The demo's own view is
    the story, so only errors show there.
    """
    logger = logging.getLogger(ROOT_LOGGER)
    log_format = getattr(args, "log_format", "console")
    handler = _StderrHandler(wrap=log_format == "console")
    handler.setFormatter(StructuredFormatter(log_format))
    level = "ERROR" if args.command == "demo" else getattr(args, "log_level", "INFO")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    return undo


_HANDLERS: Final[dict[str, Callable[[argparse.Namespace, TextIO], int]]] = {
    "demo": _cmd_demo,
    "stats": _cmd_stats,
    "replay": _cmd_replay,
    "report": _cmd_report,
    "diagram": _cmd_diagram,
    "run": _cmd_run,
}


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point of the `orders` console script."""
    name = "orders"
    undo_logging: Callable[[], None] | None = None
    try:
        args = _build_parser().parse_args(argv)
        name = f"orders {args.command}"
        undo_logging = _configure_logging(args)
        return _HANDLERS[args.command](args, sys.stdout if out is None else out)
    except (OrderError, _UsageError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the work was under way (e.g. while the bot was built)
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (e.g. `head`) left: nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        print(f"{name}: {error.strerror or error}{where}", file=sys.stderr)
        return 1
    finally:
        if undo_logging is not None:
            undo_logging()


if __name__ == "__main__":
    sys.exit(main())
