"""The `orders` command line as argparse sees it: commands, options, help, usage errors.

Help is part of the interface a person reads, so it gives every option's default, keeps the
JSON shapes laid out as written, and a usage error is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any, Final, NoReturn

from orders.demo import DEFAULT_DEMO_JOURNAL
from orders.diagram import render_dot, render_lifecycle_markdown, render_mermaid
from orders.version import __version__

__all__ = ["DEFAULT_JOURNAL", "RENDERERS", "UsageError", "build_parser"]

DEFAULT_JOURNAL = Path("logs/orders.jsonl")
RENDERERS = {"mermaid": render_mermaid, "dot": render_dot, "markdown": render_lifecycle_markdown}
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


class UsageError(Exception):
    """A mistake in how the command was called; the message says what to do."""


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


def build_parser() -> argparse.ArgumentParser:
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
        choices=sorted(RENDERERS),
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
