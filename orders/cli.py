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

This module is the entry point: it reads the command line, sets up logging and turns every
failure into its one line. The commands themselves live in the `orders._cli_*` modules, one
job each (the parser, the journal commands, the demo, the run loop, tables, JSON).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Final, TextIO

from orders._cli_demo import cmd_demo
from orders._cli_journal import cmd_replay, cmd_report, cmd_stats
from orders._cli_parser import (  # noqa: F401 - DEFAULT_JOURNAL is still importable from here
    DEFAULT_JOURNAL,
    RENDERERS,
    UsageError,
    build_parser,
)
from orders._cli_run import cmd_run
from orders._terminal import output_console
from orders.errors import OrderError
from orders.log import ROOT_LOGGER, StructuredFormatter

__all__ = ["main"]

# Looked up here by `main` at every call, so that a test can stand in for the parser.
_build_parser = build_parser


def _cmd_diagram(args: argparse.Namespace, out: TextIO) -> int:
    out.write(RENDERERS[args.format]())
    return 0


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
    "demo": cmd_demo,
    "stats": cmd_stats,
    "replay": cmd_replay,
    "report": cmd_report,
    "diagram": _cmd_diagram,
    "run": cmd_run,
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
    except (OrderError, UsageError) as error:
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
