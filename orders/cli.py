"""The `orders` command: a person's way into the library.

Errors are one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from orders.diagram import render_dot, render_lifecycle_markdown, render_mermaid
from orders.errors import OrderError

__all__ = ["main"]

_RENDERERS = {"mermaid": render_mermaid, "dot": render_dot, "markdown": render_lifecycle_markdown}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orders",
        description="Limit orders on Robinhood through an explicit, audited state machine.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    diagram = commands.add_parser(
        "diagram", help="print the order lifecycle diagram, generated from the state machine"
    )
    diagram.add_argument(
        "--format",
        choices=sorted(_RENDERERS),
        default="mermaid",
        help="mermaid (default), dot (Graphviz) or markdown (the docs/lifecycle.md page)",
    )

    commands.add_parser("demo", help="run a paper-trading demo on the simulated broker")
    return parser


def _cmd_diagram(args: argparse.Namespace) -> int:
    print(_RENDERERS[args.format](), end="")
    return 0


def _cmd_demo(_args: argparse.Namespace) -> int:
    print(render_mermaid(), end="")
    print("\nThe order lifecycle above drives every order. The paper-trading demo is coming.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `orders` console script."""
    args = _build_parser().parse_args(argv)
    handlers = {"diagram": _cmd_diagram, "demo": _cmd_demo}
    try:
        return handlers[args.command](args)
    except OrderError as error:
        print(f"orders: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
