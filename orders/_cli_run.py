"""`orders run`: the bot's sync loop from a config file, until Ctrl-C or SIGTERM.

Its output is a log a person tails or pipes to a file, so lines are written (and flushed) the
moment they happen, and a stop by either signal leaves the journal flushed and says how many
orders are still working at the broker.
"""

from __future__ import annotations

import argparse
import signal
import textwrap
from types import FrameType
from typing import TextIO

from orders._terminal import output_console, plural, short_ids
from orders.bot import StopFlag, TradingBot
from orders.config import REFERENCE_QUOTES, ROBINHOOD_QUOTES
from orders.gateways.paper import PaperBroker
from orders.manager import SyncReport

__all__ = ["cmd_run"]


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    stop = StopFlag()
    say = _LineWriter(out, output_console(out).width)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Installed before anything is printed, so a SIGTERM at any moment stops the loop cleanly.
    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        bot = TradingBot.from_config(args.config)
        live = bot.mode == "live"
        config = bot.manager.config
        mode = (
            f"LIVE: real orders on {config.broker.capitalize()}"
            if live
            else "paper (simulated broker)"
        )
        interval = config.sync_interval_seconds
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
    whole (`wrap=False`), as `show` does.
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
