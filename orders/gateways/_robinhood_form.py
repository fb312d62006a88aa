"""An `Order` as Robinhood's order form: exact decimal strings, whole shares, legal ticks.

Prices and quantities leave as exact decimal strings, never through a binary float, and an
off-tick price is refused rather than rounded: rounding is the caller's decision
(`pricing.compute_limit_price`), never a silent side effect of sending.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from orders.errors import InvalidOrderError
from orders.model import Side, TimeInForce

if TYPE_CHECKING:
    from orders.gateways._robinhood_catalog import Instrument
    from orders.lifecycle import Order

__all__ = ["ensure_legal_tick", "legal_tick", "order_form", "whole_shares", "wire_time"]

_CENT: Final = Decimal("0.01")
_SUB_PENNY: Final = Decimal("0.0001")


def legal_tick(price: Decimal, min_tick_size: Decimal | None = None) -> bool:
    """Whether Robinhood accepts `price` as is: cents at or above $1, at most 4 decimals
    below (SEC Rule 612 and Robinhood's own answers), and a multiple of the instrument's
    `min_tick_size` where it sets one."""
    if price <= 0:
        return False
    step = _CENT if price >= 1 else _SUB_PENNY
    if price % step != 0:
        return False
    return min_tick_size is None or min_tick_size <= 0 or price % min_tick_size == 0


def _wire_price(price: Decimal) -> str:
    step = _CENT if price >= 1 else _SUB_PENNY
    return format(price.quantize(step), "f")


def whole_shares(quantity: Decimal) -> str:
    if quantity <= 0 or quantity != quantity.to_integral_value():
        raise InvalidOrderError(
            "quantity",
            quantity,
            "Robinhood takes limit orders in whole shares only; round the quantity down to a "
            "whole number (nothing was sent)",
        )
    return str(int(quantity))


def wire_time(when: datetime) -> str:
    """A moment as Robinhood's query parameters write it (`updated_at[gte]`)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def order_form(
    order: Order,
    *,
    account: str,
    instrument: Instrument,
    ask: Decimal | None,
    bid: Decimal | None,
    now: datetime,
) -> dict[str, str]:
    """The POST body of a regular-hours limit order, with the order's id as `ref_id`.

    The field set of robin_stocks 3.4.0's order(): Robinhood validates this "order form" and
    refuses older shapes. Raises `InvalidOrderError` (nothing sent) for a fractional quantity
    or an off-tick price.
    """
    quantity = whole_shares(order.quantity)
    ensure_legal_tick(order, instrument.min_tick_size)
    payload = {
        "account": account,
        "instrument": instrument.url,
        "symbol": instrument.symbol,
        "price": _wire_price(order.limit_price),
        "bid_ask_timestamp": now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "quantity": quantity,
        "ref_id": order.client_order_id,
        "type": "limit",
        "time_in_force": TimeInForce(order.time_in_force).value,
        "trigger": "immediate",
        "side": Side(order.side).value,
        "market_hours": "regular_hours",
        "extended_hours": "False",
        "order_form_version": "4",
    }
    if ask is not None:
        payload["ask_price"] = format(ask, "f")
    if bid is not None:
        payload["bid_price"] = format(bid, "f")
    if payload["side"] == "buy":
        payload["preset_percent_limit"] = "0.05"
    return payload


def ensure_legal_tick(order: Order, min_tick: Decimal | None = None) -> None:
    """`InvalidOrderError` (nothing sent) unless Robinhood takes the order's price as is."""
    if legal_tick(order.limit_price, min_tick):
        return
    rule = "whole cents at or above $1, at most 4 decimals below $1"
    if min_tick is not None:
        rule += f", and a multiple of {order.symbol}'s minimum tick {min_tick}"
    raise InvalidOrderError(
        "limit_price",
        order.limit_price,
        f"not a legal Robinhood price ({rule}); round it with "
        "orders.pricing.compute_limit_price (nothing was sent)",
    )
