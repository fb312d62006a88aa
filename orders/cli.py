"""The `orders` command: a person's way into the library.

Every failure a person can cause (a missing file, a bad config, a damaged journal, a bad
argument) is one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext
from pathlib import Path
from types import FrameType
from typing import NoReturn, TextIO

from orders.audit import AuditJournal
from orders.bot import StopFlag, TradingBot
from orders.config import REFERENCE_QUOTES, ROBINHOOD_QUOTES
from orders.demo import DEFAULT_DEMO_JOURNAL, run_demo
from orders.diagram import render_dot, render_lifecycle_markdown, render_mermaid
from orders.errors import OrderError
from orders.gateways.paper import PaperBroker
from orders.lifecycle import Order
from orders.log import ROOT_LOGGER, StructuredFormatter
from orders.manager import SyncReport
from orders.stats import OrderStats, compute_stats, stats_by_strategy
from orders.version import __version__

__all__ = ["main"]

DEFAULT_JOURNAL = Path("logs/orders.jsonl")
_RENDERERS = {"mermaid": render_mermaid, "dot": render_dot, "markdown": render_lifecycle_markdown}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="orders",
        description="Limit orders on Robinhood through an explicit, audited state machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="run a paper-trading demo on the simulated broker (no network, no login)"
    )
    demo.add_argument(
        "--journal",
        type=Path,
        default=DEFAULT_DEMO_JOURNAL,
        help="the demo's own journal, appended to (default: %(default)s); the simulated "
        "broker's state goes beside it",
    )
    demo.add_argument("--seed", type=int, default=7, help="seed of the price path and broker")
    demo.add_argument("--ticks", type=int, default=60, help="simulated seconds to trade")
    demo.add_argument(
        "--delay", type=float, default=0.05, help="real seconds to pause per tick (0: none)"
    )

    stats = commands.add_parser("stats", help="success, fill and cancel figures from a journal")
    stats.add_argument("journal", nargs="?", type=Path, default=DEFAULT_JOURNAL)

    replay = commands.add_parser("replay", help="the orders rebuilt from a journal, as a table")
    replay.add_argument("journal", nargs="?", type=Path, default=DEFAULT_JOURNAL)

    diagram = commands.add_parser(
        "diagram", help="the order lifecycle diagram, generated from the state machine"
    )
    diagram.add_argument(
        "--format",
        choices=sorted(_RENDERERS),
        default="mermaid",
        help="mermaid (default), dot (Graphviz) or markdown (the docs/lifecycle.md page)",
    )

    run = commands.add_parser(
        "run", help="run the bot's sync loop from a config file until Ctrl-C or SIGTERM"
    )
    run.add_argument("--config", type=Path, required=True, help="JSON file with order_management")
    run.add_argument(
        "--log-format",
        choices=("console", "json"),
        default="console",
        help="how library log lines are written to stderr (default: %(default)s)",
    )
    run.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        help="the least severe library log lines shown (default: %(default)s)",
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
    out.write("\nSummary of this run\n")
    _write_stats(out, result.stats)
    mine = result.stats.orders
    earlier = result.journal_orders - mine
    counted = (
        f"{mine} orders" if not earlier else f"{mine} orders from this run, {mine + earlier} in all"
    )
    out.write(
        f"\njournal: {result.journal} ({counted})\n"
        f"simulated broker: {result.broker_state}\n"
        f"next: `orders replay {result.journal}` or `orders stats {result.journal}`\n"
    )
    return 0


def _read_journal(path: Path) -> dict[str, Order]:
    if not path.is_file():
        raise _UsageError(
            f"no journal at {path}; run `orders demo` to write one, or pass a journal path"
        )
    return AuditJournal.replay(path)


def _cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    orders = _read_journal(args.journal)
    out.write(f"{args.journal}: {len(orders)} orders\n\nAll strategies\n")
    _write_stats(out, compute_stats(orders.values()))
    for name, stats in stats_by_strategy(orders.values()).items():
        out.write(f"\nStrategy {name}\n")
        _write_stats(out, stats)
    return 0


def _cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    orders = _read_journal(args.journal)
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
            o.reason or "",
        ]
        for o in orders.values()
    ]
    header = ["order", "strategy", "symbol", "side", "qty", "limit", "state", "filled", "avg"]
    _write_table(out, [*header, "reason"], rows)
    out.write(f"{len(rows)} orders from {args.journal}\n")
    return 0


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    stop = StopFlag()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Installed before anything is printed, so a SIGTERM at any moment stops the loop cleanly.
    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        bot = TradingBot.from_config(args.config)
        live = bot.mode == "live"
        mode = "LIVE: real orders on Robinhood" if live else "paper (simulated broker)"
        interval = bot.manager.config.sync_interval_seconds
        out.write(f"orders run: mode {mode}; journal {bot.manager.journal.path}\n")
        out.write(f"syncing every {interval} s; Ctrl-C or SIGTERM stops cleanly\n")
        if not live:
            _describe_paper(bot, out)
        out.flush()
        try:
            _recover(bot, out)
            bot.run(stop, on_sync=lambda report: _print_sync(out, report))
        except KeyboardInterrupt:
            stop.set()
            bot.manager.journal.close()
    finally:
        signal.signal(signal.SIGTERM, previous)
    working = len(bot.manager.open_orders())
    out.write(f"stopped; journal flushed; {working} orders still working at the broker\n")
    return 0


def _describe_paper(bot: TradingBot, out: TextIO) -> None:
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
        out.write(f"paper broker: {state} {broker.state_path}\n")
    out.write(f"paper quotes: {source}\n")


def _recover(bot: TradingBot, out: TextIO) -> None:
    """Pick up where the last run left off: orders and guards from the journal, then a sync."""
    report = bot.manager.recover()
    tracked = len(bot.manager.orders())
    if tracked:
        working = len(bot.manager.open_orders())
        out.write(f"recovered {tracked} orders from the journal, {working} still working\n")
    _print_sync(out, report)


def _print_sync(out: TextIO, report: SyncReport) -> None:
    for cid, event in report.events:
        out.write(f"{event.at.isoformat()} {cid[:8]} {event.trigger} -> {event.dest}\n")
    for error in report.errors:
        out.write(f"problem: {error}\n")
    out.flush()


# -- output ------------------------------------------------------------------------------------


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


def _write_stats(out: TextIO, stats: OrderStats) -> None:
    states = ["pending", "submitted", "partially_filled", "filled", "cancelled", "rejected"]
    _write_table(out, states, [[str(stats.by_state.get(s, 0)) for s in states]])
    cancels = stats.cancels
    lines = [
        ("orders", str(stats.orders)),
        ("success rate (filled / finished)", _ratio(stats.success_rate)),
        (
            "fill ratio (filled / ordered qty)",
            f"{_ratio(stats.fill_ratio)} ({stats.filled_quantity} of {stats.ordered_quantity})",
        ),
        (
            "cancels confirmed / requested",
            f"{cancels.confirmed} / {cancels.requested} (reliability "
            f"{_ratio(cancels.reliability)}; {cancels.filled_first} filled first, "
            f"{cancels.outstanding} outstanding)",
        ),
        (
            "cancel latency p50 / p90 / max",
            " / ".join(_seconds(cancels.latency(f)) for f in (0.5, 0.9, 1.0)),
        ),
    ]
    for reason, count in sorted(stats.reject_reasons.items(), key=lambda kv: -kv[1]):
        lines.append(("rejected", f"{count} x {reason}"))
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        out.write(f"  {name:<{width}}  {value}\n")


def _write_table(out: TextIO, header: list[str], rows: list[list[str]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = (c.ljust(w) for c, w in zip(row, widths, strict=True))
        out.write(("  " + "  ".join(cells)).rstrip() + "\n")


# -- entry point -------------------------------------------------------------------------------


class _UsageError(Exception):
    """A mistake in how the command was called; the message says what to do."""


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to the `sys.stderr` of the moment (tests and daemons replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


def _configure_logging(args: argparse.Namespace) -> Callable[[], None]:
    """The library's log lines on stderr, as the command asks; returns how to undo it.

    The command is the host here, so it is the one place that attaches a handler (to the
    `orders` logger only: nothing else in the process is touched). The demo's own view is
    the story, so only errors show there.
    """
    logger = logging.getLogger(ROOT_LOGGER)
    handler = _StderrHandler()
    handler.setFormatter(StructuredFormatter(getattr(args, "log_format", "console")))
    level = "ERROR" if args.command == "demo" else getattr(args, "log_level", "INFO")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    return undo


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point of the `orders` console script."""
    args = _build_parser().parse_args(argv)
    undo_logging = _configure_logging(args)
    handlers: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
        "demo": _cmd_demo,
        "stats": _cmd_stats,
        "replay": _cmd_replay,
        "diagram": _cmd_diagram,
        "run": _cmd_run,
    }
    try:
        return handlers[args.command](args, sys.stdout if out is None else out)
    except (OrderError, _UsageError) as error:
        print(f"orders {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before anything was under way (e.g. while loading)
        print(f"orders {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (e.g. `head`) left: nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        print(f"orders {args.command}: {error.strerror or error}{where}", file=sys.stderr)
        return 1
    finally:
        undo_logging()


if __name__ == "__main__":
    sys.exit(main())
