"""The `orders` console script: the command line, loaded inside a guard against Ctrl-C.

Loading the command line takes a moment (the library, rich); a Ctrl-C in that moment must end
in one line and exit status 130 like a Ctrl-C at any other time, not in an import traceback.
This module imports nothing heavy itself, and `import orders` is lazy, so the guard is in
place from the first instruction of `main`.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> int:
    try:
        from orders.cli import main as run  # noqa: PLC0415 - the point: import inside the guard
    except KeyboardInterrupt:
        print("orders: interrupted", file=sys.stderr)  # noqa: T201 - the command speaks
        return 130
    return run()
