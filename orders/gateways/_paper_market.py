"""The simulated market and account: what price and size an order fills at, and the cash and
shares that fills move, with the checks a new order must pass (buying power, shares held).

A buy fills at ``min(limit, quote)`` and a sell at ``max(limit, quote)``: a real exchange gives
the resting order the better price, and a test of slippage needs the difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Final

from orders.errors import InvalidOrderError
from orders.gateways._paper_book import ZERO, Book
from orders.model import TERMINAL_STATES, Side, positive_decimal, to_decimal, validate_symbol

__all__ = ["Account", "Market"]

Amount = Decimal | int | str

# Read on every submission, once (on Python 3.11 a member read off its enum class goes through
# `EnumType.__getattr__`'s slow path).
_BUY: Final = Side.BUY


class Market:
    """The quote of each symbol, and how many shares one `match()` may fill per symbol."""

    __slots__ = ("liquidity", "quotes", "symbol_liquidity")

    def __init__(self, quotes: Mapping[str, Amount] | None) -> None:
        self.quotes: dict[str, Decimal] = {
            validate_symbol(s): positive_decimal(p, f"quotes[{s!r}]")
            for s, p in (quotes or {}).items()
        }
        self.liquidity: Decimal | None = None  # for every symbol without its own cap
        self.symbol_liquidity: dict[str, Decimal | None] = {}

    def price(self, book: Book) -> Decimal | None:
        """The price the quote fills this order at, or None when it is not marketable."""
        quote = self.quotes.get(book.symbol)
        if quote is None:
            return None
        if book.buys:
            return quote if quote <= book.limit else None
        return quote if quote >= book.limit else None

    def forced_price(self, book: Book) -> Decimal:
        """The price of a fill a fault forces: the quote's when marketable, else the limit."""
        price = self.price(book)
        return book.limit if price is None else price

    def fill(self, book: Book, left: dict[str, Decimal | None]) -> tuple[Decimal, Decimal] | None:
        """The quantity and price of `book` that fill now, or None; the quantity is taken from
        `left`, the liquidity this `match()` has left per symbol (None: unlimited).

        `price` and `book.leaves` are inlined: this runs for every working order in every
        `match()`.
        """
        symbol = book.symbol
        price = self.quotes.get(symbol)
        if price is None or (price > book.limit if book.buys else price < book.limit):
            return None
        snap = book.current
        leaves = ZERO if snap.state in TERMINAL_STATES else snap.quantity - snap.cumulative_quantity
        if symbol in left:
            room = left[symbol]
        else:  # the first order of `symbol` this round: the common case, one look-up less
            room = left[symbol] = self.symbol_liquidity.get(symbol, self.liquidity)
        if room is None:
            return leaves, price
        if room < leaves:
            # It takes all that is left, so ZERO is left: what is left is only compared with
            # afterwards, and the subtraction cost 1,000 instructions an order (callgrind).
            if room <= ZERO:
                return None
            left[symbol] = ZERO
            return room, price
        if leaves <= ZERO:
            return None
        left[symbol] = room - leaves
        return leaves, price

    def reprice(self, prices: Mapping[str, Decimal | None]) -> None:
        """Take a quote source's prices (None removes a quote)."""
        for symbol, price in prices.items():
            if price is None:
                self.quotes.pop(symbol, None)
            elif self.quotes.get(symbol) != price:
                self.quotes[symbol] = positive_decimal(price, f"quote of {symbol}")


class Account:
    """Cash and shares; what working buys reserve is read from their books."""

    __slots__ = ("allow_short", "cash", "positions")

    def __init__(self, cash: Amount, positions: Mapping[str, Amount] | None) -> None:
        self.cash = to_decimal(cash, "buying_power")
        if self.cash < 0:
            raise InvalidOrderError("buying_power", cash, "must not be negative")
        self.positions: dict[str, Decimal] = {
            validate_symbol(s): to_decimal(q, f"positions[{s!r}]")
            for s, q in (positions or {}).items()
        }
        self.allow_short = True

    def buying_power(self, working: Iterable[Book]) -> Decimal:
        """Cash less what working buys have reserved at their limit prices."""
        reserved = ZERO  # a loop, not sum(): most often there is nothing to make a generator for
        for book in working:
            if book.buys:
                reserved += book.limit * book.leaves
        return self.cash - reserved

    def settle(self, book: Book, quantity: Decimal, value: Decimal) -> None:
        """Move the cash and shares of one execution of `quantity` worth `value`."""
        symbol = book.symbol
        positions = self.positions
        if book.buys:
            positions[symbol] = positions.get(symbol, ZERO) + quantity
            self.cash -= value
        else:
            positions[symbol] = positions.get(symbol, ZERO) - quantity
            self.cash += value

    def refusal(
        self, side: Side, symbol: str, quantity: Decimal, limit: Decimal, working: Iterable[Book]
    ) -> str | None:
        """Robinhood's words for an order the account cannot carry, or None."""
        if side is _BUY:
            needed = limit * quantity
            available = self.buying_power(working)
            if needed > available:
                return (
                    f"Not enough buying power. This order needs {needed} and "
                    f"{available} is available."
                )
            return None
        if self.allow_short:
            return None
        held = self.positions.get(symbol, ZERO)
        selling = sum((b.leaves for b in working if not b.buys and b.symbol == symbol), ZERO)
        if quantity > held - selling:
            return (
                f"Not enough shares to sell. This order sells {quantity} and "
                f"{held - selling} {symbol} are held and not already for sale."
            )
        return None
