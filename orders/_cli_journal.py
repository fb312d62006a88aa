"""The commands that read a journal: `orders stats`, `orders replay` and `orders report`.

A missing journal is the commonest mistake, so each says where it looked and how to write one
(`orders demo`) rather than fail on a file it cannot open.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from rich.padding import Padding

from orders._cli_json import order_json, stats_json, write_json
from orders._cli_parser import UsageError
from orders._cli_tables import replay_table, stats_block
from orders._terminal import output_console, plural, show
from orders.audit import AuditJournal
from orders.lifecycle import Order
from orders.report import write_report
from orders.stats import compute_stats, stats_by_strategy

__all__ = ["cmd_replay", "cmd_report", "cmd_stats"]


def _read_journal(path: Path) -> dict[str, Order]:
    _require_journal(path)
    return AuditJournal.replay(path)


def _require_journal(path: Path) -> None:
    if not path.is_file():
        raise UsageError(
            f"no journal at {path}; run `orders demo` to write one, or pass a journal path"
        )


def cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    _require_journal(args.journal)
    if args.output.is_dir():
        raise UsageError(f"-o {args.output} is a directory; give a file path")
    stats = write_report(args.journal, args.output)
    line = f"{args.output}: {plural(stats.orders, 'order')} from {args.journal}"
    show(output_console(out), line, wrap=False)
    return 0


def cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    orders = _read_journal(args.journal)
    overall = compute_stats(orders.values())
    strategies = stats_by_strategy(orders.values())
    if args.json:
        write_json(
            out,
            {
                "journal": str(args.journal),
                "all": stats_json(overall),
                "strategies": {name: stats_json(s) for name, s in strategies.items()},
            },
        )
        return 0
    console = output_console(out)
    show(console, f"{args.journal}: {plural(len(orders), 'order')}\n", wrap=False)
    show(console, "All strategies", style="bold")
    show(console, stats_block(overall))
    for name, stats in strategies.items():
        show(console, f"\nStrategy {name}", style="bold")
        show(console, stats_block(stats))
    return 0


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    orders = _read_journal(args.journal)
    if args.json:
        write_json(
            out,
            {"journal": str(args.journal), "orders": [order_json(o) for o in orders.values()]},
        )
        return 0
    console = output_console(out)
    table, reasons = replay_table(list(orders.values()), console.width)
    show(console, table)
    if reasons:
        show(console, "\nReasons given", style="bold")
        show(console, Padding(reasons, (0, 0, 0, 2), expand=False))
        show(console, "")
    show(console, f"{plural(len(orders), 'order')} from {args.journal}", wrap=False)
    return 0
