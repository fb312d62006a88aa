"""How a count reads in a sentence, for every message `orders` writes (the core's included,
which must not load the console's libraries to say "1 order")."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, noun: str) -> str:
    """`1 order`, `2 orders`, `0 orders`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
