"""The console every `orders` command prints through, and how ids and counts read on it.

The demo's progress and the commands' tables share it, so that they agree on the width they
fit (the terminal's, else $COLUMNS, else 80), on never redrawing in place outside a terminal,
and on how an id (its first 8 characters) and a count (`1 order`, `2 orders`) are written.
"""

from __future__ import annotations

import os
import re
from typing import Final, TextIO

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.text import Text

from orders._words import plural

__all__ = ["Trimmed", "output_console", "plural", "short_ids", "show"]


def output_console(out: TextIO, *, live: bool | None = None) -> Console:
    """The console a command writes `out` through: fitted to a width, quiet when piped.

    The width is the terminal's when `out` is one (followed when it is resized), else
    $COLUMNS, else 80: a pipe or a file has no width of its own, and 80 columns is what the
    person who reads it later can be counted on to have. Redrawing in place (a progress bar)
    happens only on a terminal, whatever FORCE_COLOR says, so output written to a file never
    holds a carriage return or a cursor movement; `live` forces it either way (tests).
    Journal text is shown as written: no markup, emoji codes or highlighting is read into it.
    """
    tty = _isatty(out)
    width = None if tty else _env_columns()
    return _Console(
        file=out,
        width=width,
        force_terminal=tty if live is None else live,
        force_interactive=live,
        markup=False,
        emoji=False,
        highlight=False,
    )


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader left (e.g. `| head`): the command, not rich, decides how that ends."""
        self.quiet = True
        raise BrokenPipeError


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed file
        return False


def _env_columns() -> int:
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else 80


class Trimmed:
    """A renderable without the spaces rich pads its lines with on the right.

    A table pads every cell to its column's width; on a screen that is invisible, but in a
    file or a pipe each short line would end in a run of spaces.
    """

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in console.render_lines(self.renderable, options, pad=False):
            while line and not line[-1].control and not line[-1].text.rstrip(" "):
                line.pop()
            if line and not line[-1].control:
                last = line[-1]
                line[-1] = Segment(last.text.rstrip(" "), last.style)
            yield from line
            yield Segment.line()


_UUID: Final = re.compile(
    r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE
)


def short_ids(text: str) -> str:
    """`text` with every UUID cut to its first 8 characters, as ids are shown everywhere on a
    person's screen (the library's messages carry them whole, for logs and tools)."""
    return _UUID.sub(r"\1", text)


def show(console: Console, item: RenderableType, *, style: str = "", wrap: bool = True) -> None:
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
