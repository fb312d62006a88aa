"""Limit prices from a reference price and an offset, on a legal tick, inside the slippage cap.

The rounding rule, once: the raw price (reference plus the offset for a buy, minus it for a
sell) is rounded to the tick *toward the reference*: down for a buy, up for a sell. Every
candidate rule must keep the result on a tick and inside the cap; this one also never makes an
order more aggressive than its strategy asked for, stays within one tick of the intended price,
and does not depend on the cap (a nearest-tick rule that falls back when it would cross the cap
would change an order's price when someone edits `max_slippage_bps`). Because the raw price is
checked against the cap first and rounding only moves it back toward the reference, the result
can never lie beyond the cap.

Robinhood's ticks: a price at or above $1 has at most 2 decimals, a price below $1 at most 4.

Everything here is exact `Decimal` arithmetic in a private context that raises instead of
silently rounding, so a price is never the product of an unnoticed loss of digits.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from enum import StrEnum
from typing import Literal

import attrs

from orders.errors import InvalidOrderError, SafetyViolation, UnsupportedOrderTypeError
from orders.model import (
    BUY,
    LIMIT,
    OrderType,
    Side,
    coerce_enum,
    positive_decimal,
    to_decimal,
)

__all__ = [
    "BPS_PER_UNIT",
    "OffsetKind",
    "PriceOffset",
    "compute_limit_price",
    "ensure_limit_order_type",
    "is_on_tick",
    "round_to_tick",
    "tick_size",
]

BPS_PER_UNIT = Decimal(10_000)
"""Basis points in a whole: 100 bps is 1 %."""

_CENT = Decimal("0.01")
_HUNDREDTH_CENT = Decimal("0.0001")
_ONE = Decimal(1)

# Wide enough for any real price; an input that does not fit raises rather than rounds.
_EXACT = decimal.Context(
    prec=100,
    traps=[
        decimal.InvalidOperation,
        decimal.DivisionByZero,
        decimal.Overflow,
        decimal.Inexact,
    ],
)
# Quantizing to a tick is meant to drop digits, so Inexact is not trapped here.
_TICK = decimal.Context(
    prec=100, traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
)


class OffsetKind(StrEnum):
    """How an offset's value is read: basis points of the reference price, or dollars."""

    BPS = "bps"
    ABSOLUTE = "absolute"


def _offset_kind(value: object) -> OffsetKind:
    return coerce_enum(OffsetKind, value, "kind")


def _offset_value(value: object) -> Decimal:
    result = to_decimal(value, "value")
    if result < 0:
        raise InvalidOrderError(
            "value",
            value,
            "an offset must not be negative: the side sets its direction (a buy is priced "
            "reference plus offset, a sell reference minus offset)",
        )
    return result


def _decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@attrs.frozen
class PriceOffset:
    """How far past the reference a strategy is willing to price its limit orders."""

    kind: OffsetKind = attrs.field(converter=_offset_kind)
    value: Decimal = attrs.field(converter=_offset_value)

    @value.validator
    def _check_precision(self, _attribute: object, value: Decimal) -> None:
        # A dollar offset finer than the smallest tick could never show up in any price.
        if self.kind is OffsetKind.ABSOLUTE and _decimal_places(value) > 4:
            raise InvalidOrderError(
                "value",
                value,
                "an absolute offset has at most 4 decimals (the smallest tick is $0.0001)",
            )

    @classmethod
    def bps(cls, value: Decimal | int | str) -> PriceOffset:
        """An offset in basis points of the reference price (5 means 0.05 %)."""
        return cls(OffsetKind.BPS, value)

    @classmethod
    def absolute(cls, value: Decimal | int | str) -> PriceOffset:
        """An offset in dollars per share."""
        return cls(OffsetKind.ABSOLUTE, value)

    def amount(self, reference_price: Decimal) -> Decimal:
        """The offset in dollars at this reference price, exactly."""
        if self.kind is _ABSOLUTE:
            return self.value
        return _EXACT.divide(_EXACT.multiply(reference_price, self.value), BPS_PER_UNIT)

    def __str__(self) -> str:
        return f"{self.value} bps" if self.kind is OffsetKind.BPS else f"${self.value}"


# Read once, as orders.model reads the members every order is compared with.
_ABSOLUTE = OffsetKind.ABSOLUTE


def tick_size(price: Decimal | int | str) -> Decimal:
    """The smallest legal price step at this price: $0.01 at or above $1, $0.0001 below."""
    return _tick(positive_decimal(price, "price"))


def _tick(value: Decimal) -> Decimal:
    return _CENT if value >= _ONE else _HUNDREDTH_CENT


def round_to_tick(price: Decimal | int | str, direction: Literal["down", "up"]) -> Decimal:
    """The nearest legal price at or below (`"down"`) or at or above (`"up"`) `price`.

    The result carries exactly the tick's decimals ("10.00", "0.5000"), which is also how it
    is sent to the broker. It is zero when a price below $0.0001 is rounded down.
    """
    value = positive_decimal(price, "price")
    if direction not in ("down", "up"):
        raise InvalidOrderError("direction", direction, "must be 'down' or 'up'")
    return _to_tick(value, direction == "down")


def _to_tick(value: Decimal, down: bool) -> Decimal:
    """`round_to_tick` of a price already known to be a positive Decimal."""
    rounding = decimal.ROUND_FLOOR if down else decimal.ROUND_CEILING
    tick = _tick(value)
    try:
        result = value.quantize(tick, rounding=rounding, context=_TICK)
        if tick is _HUNDREDTH_CENT and result >= _ONE:
            # 0.99995 rounded up is 1.0000, which is also the 2-decimal price 1.00.
            result = result.quantize(_CENT, context=_TICK)
    except decimal.DecimalException:
        raise InvalidOrderError(
            "price", value, "has too many digits to round to a tick exactly"
        ) from None
    return result


def is_on_tick(price: Decimal | int | str) -> bool:
    """Whether a broker would accept this price as it stands (no rounding needed)."""
    value = positive_decimal(price, "price")
    return _decimal_places(value) <= (2 if value >= _ONE else 4)


def compute_limit_price(
    side: Side | str,
    reference_price: Decimal | int | str,
    offset: PriceOffset,
    *,
    max_slippage_bps: Decimal | int | str,
) -> Decimal:
    """The limit price for an order: reference +/- offset, on a tick, never beyond the cap.

    The cap is `max_slippage_bps` of the reference, above it for a buy and below it for a sell.
    An offset that would take the price past the cap raises `SafetyViolation` (naming the
    offset, the cap and the reference) rather than being clipped: a clipped price is not what
    the strategy asked for, and a silent change to money is worse than a refused order.
    The raw price is then rounded toward the reference (see the module docstring), so the
    result is at most one tick less aggressive than asked. Invalid inputs (a float, a
    non-positive reference, a sell priced at or below zero) raise `InvalidOrderError`.
    """
    order_side = coerce_enum(Side, side, "side")
    reference = positive_decimal(reference_price, "reference_price")
    if not isinstance(offset, PriceOffset):
        raise InvalidOrderError(
            "offset", offset, "must be a PriceOffset, e.g. PriceOffset('bps', Decimal('5'))"
        )
    max_bps = to_decimal(max_slippage_bps, "max_slippage_bps")
    if max_bps < 0:
        raise InvalidOrderError("max_slippage_bps", max_slippage_bps, "must not be negative")
    return limit_price_of_checked(order_side, reference, offset, max_bps)


def limit_price_of_checked(
    order_side: Side, reference: Decimal, offset: PriceOffset, max_bps: Decimal
) -> Decimal:
    """`compute_limit_price` of inputs already checked as it checks them (a `Side`, a positive
    reference, a `PriceOffset`, a cap of at least 0): what a configuration, whose offsets and
    cap were checked when it was made, prices every order with."""
    buy = order_side is BUY
    try:
        amount = offset.amount(reference)
        allowed = _EXACT.divide(_EXACT.multiply(reference, max_bps), BPS_PER_UNIT)
        raw = _EXACT.add(reference, amount) if buy else _EXACT.subtract(reference, amount)
    except decimal.DecimalException:
        raise InvalidOrderError(
            "reference_price",
            reference,
            f"with offset {offset} and max_slippage_bps={max_bps} it has too many digits "
            "to price exactly; pass a price with fewer digits",
        ) from None

    if amount > allowed:
        # Exact too: `allowed` is smaller than `amount`, which priced `raw` exactly.
        cap = _EXACT.add(reference, allowed) if buy else _EXACT.subtract(reference, allowed)
        direction = "above" if buy else "below"
        raise SafetyViolation(
            [
                f"{order_side} offset {offset} puts the limit price at {raw}, {direction} the "
                f"slippage cap of {max_bps} bps ({cap}) on reference price {reference}; "
                "lower the strategy's offset or raise max_slippage_bps"
            ]
        )
    if raw <= 0:
        raise InvalidOrderError(
            "limit_price",
            raw,
            f"sell offset {offset} on reference price {reference} leaves no positive price; "
            "lower the offset",
        )

    result = _to_tick(raw, buy)
    if result <= 0:
        raise InvalidOrderError(
            "limit_price",
            raw,
            f"a buy at {raw} rounds down to zero: prices below $0.0001 cannot be traded",
        )
    return result


def ensure_limit_order_type(order_type: OrderType | str) -> OrderType:
    """`OrderType.LIMIT`, or `UnsupportedOrderTypeError` for anything else.

    An unrecognised value (`"trailing_stop"`, `"LIMIT"`, `None`) is also unsupported rather
    than invalid: the caller's fix is the same in every case, to send a limit order.
    """
    if isinstance(order_type, str) and order_type == LIMIT:
        return LIMIT
    # str() of an OrderType is its value ("market"), which is what the message should show.
    raise UnsupportedOrderTypeError(
        str(order_type) if isinstance(order_type, str) else repr(order_type)
    )
