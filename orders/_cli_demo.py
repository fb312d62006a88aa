"""`orders demo`: run the scripted paper-trading session, then sum it up.

The summary ends with the commands that read the journal back, quoted for the shell, because
the next thing a person does after a demo is look at what it wrote.
"""

from __future__ import annotations

import argparse
import math
import shlex
from typing import TextIO

from orders._cli_parser import UsageError
from orders._cli_tables import stats_block
from orders._terminal import output_console, plural, show
from orders.demo import run_demo

__all__ = ["cmd_demo"]


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.ticks < 1 or not math.isfinite(args.delay) or args.delay < 0:
        raise UsageError("--ticks must be at least 1 and --delay a number of seconds >= 0")
    if args.journal.is_dir():
        raise UsageError(f"--journal {args.journal} is a directory; give a file path")
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
    show(console, "")
    show(console, "Summary of this run", style="bold")
    show(console, stats_block(result.stats))
    show(
        console,
        f"\njournal: {result.journal} ({counted})\n"
        f"simulated broker: {result.broker_state}\n"
        f"read it back with:\n"
        f"  uv run orders replay {journal}\n"
        f"  uv run orders stats {journal}",
        wrap=False,
    )
    return 0
