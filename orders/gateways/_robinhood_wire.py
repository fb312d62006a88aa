"""Robinhood's order JSON, read into a `BrokerOrder`: the wire format and nothing else.

No I/O and no HTTP library here, so reading a captured payload (a test, `orders replay`, a
script) does not load requests or robin_stocks. What the parser knows of Robinhood's payloads
comes from real captures of 2016 to 2026: `reject_reason` is always null (a cancel's cause is
in `response_category` or `ipo_access_cancellation_reason`), old executions carry no `id`,
`average_price` is rounded, and crypto or option orders can reach a merged history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from orders.errors import BrokerError, OrderError
from orders.model import (
    MAX_DECIMAL_PLACES,
    BrokerOrder,
    Execution,
    OrderState,
    ensure_aware,
    to_decimal,
)

__all__ = [
    "DERIVED_EXECUTION_PREFIX",
    "ROBINHOOD_STATES",
    "optional_decimal",
    "parse_robinhood_order",
    "wire_decimal",
]

ROBINHOOD_STATES: Final[Mapping[str, OrderState]] = MappingProxyType(
    {
        "queued": OrderState.SUBMITTED,
        # A state of Robinhood's app that no captured payload shows. Whatever its nuance, it
        # names an order Robinhood holds (it has an id) that has not ended: not terminal and
        # not a fill, which is all `submitted` claims. Fills, if any, are still booked from
        # cumulative_quantity and executions, as for any working order.
        "new": OrderState.SUBMITTED,
        "unconfirmed": OrderState.SUBMITTED,
        "confirmed": OrderState.SUBMITTED,
        "partially_filled": OrderState.PARTIALLY_FILLED,
        # A cancel was asked for and is not done: the order still works and may still fill.
        # Reported as partially_filled when it has fills (see _PENDING_CANCEL).
        "pending_cancelled": OrderState.SUBMITTED,
        "pending_canceled": OrderState.SUBMITTED,
        "filled": OrderState.FILLED,
        "cancelled": OrderState.CANCELLED,
        # Robinhood spells it "cancelled"; the US spelling is accepted because docs use it.
        "canceled": OrderState.CANCELLED,
        # Part filled, the rest cancelled: cancelled with its fills, as a plain `cancelled`
        # with cumulative_quantity > 0 already is.
        "partially_filled_rest_cancelled": OrderState.CANCELLED,
        "partially_filled_rest_canceled": OrderState.CANCELLED,
        "rejected": OrderState.REJECTED,
        "failed": OrderState.REJECTED,
        # Deliberately absent, so they raise BrokerError: `voided` (no payload shows whether a
        # voided order can carry fills, and `rejected` would drop them), `triggered`,
        # `locating`, `locate_failed`, `locate_completed`, `inactive` (stop and short-sale
        # words whose effect on a limit order is not documented).
    }
)

_PENDING_CANCEL: Final = frozenset({"pending_cancelled", "pending_canceled"})

# Where Robinhood states why an order was cancelled; `reject_reason` is null in every real
# payload, cancels included.
_IPO_CANCEL_FIELD: Final = "ipo_access_cancellation_reason"
_CANCEL_CATEGORY_FIELD: Final = "response_category"

# Prefix of an execution id made up for an execution Robinhood sent without one. Robinhood's
# own ids are UUIDs, and the state machine's inferred fills start with "inferred:", so an id
# with this prefix can be neither.
DERIVED_EXECUTION_PREFIX: Final = "rh-derived:"


# -- wire -> BrokerOrder ------------------------------------------------------------------


def parse_robinhood_order(payload: Mapping[str, Any], *, symbol: str | None = None) -> BrokerOrder:
    """A snapshot from Robinhood's order JSON; anything unreadable raises `BrokerError`.

    Robinhood's order JSON names the instrument by URL only, so the caller passes `symbol`
    when it knows it. An unknown state word is never mapped to a guess: the order could be in
    any state, and guessing wrong would move money. A crypto or option order (which a merged
    history can hold) is refused by kind rather than misread as a stock order.

    `raw_state` keeps Robinhood's word: `pending_cancelled` (a working order whose cancel
    Robinhood has not carried out yet) can only be told apart from `confirmed` by it.

    `cancel_reason`, on a cancelled order only, is Robinhood's word for why, unaltered:
    `ipo_access_cancellation_reason` as "ipo_access: <word>" (e.g. "ipo_access:
    no_allocation") when present, else `response_category` as is (e.g. "end_of_day" for a gfd
    order expired at the close). A value that is not a string is ignored rather than refusing
    the whole order: it explains a cancel, it does not change one.

    An execution without an `id` (Robinhood's 2016 field set) gets one derived from the order
    id and the execution's position, timestamp, quantity and price, so every snapshot of the
    order names it the same way and it is booked once.
    """
    if not isinstance(payload, Mapping):
        raise BrokerError(
            f"a Robinhood order must be a JSON object, not {type(payload).__name__}; "
            "nothing was changed; report the broker's answer"
        )
    order_id = payload.get("id")
    label = f"Robinhood order {order_id!r}"
    _refuse_other_kinds(payload, label)
    raw_state = payload.get("state")
    if not isinstance(raw_state, str) or raw_state not in ROBINHOOD_STATES:
        raise BrokerError(
            f"{label} has state {raw_state!r}, which this version does not know "
            f"(known: {', '.join(ROBINHOOD_STATES)}); it was not guessed and the order was left "
            "unchanged; check the order in the Robinhood app and report the new state word"
        )
    try:
        if symbol is None and isinstance(payload.get("symbol"), str):
            symbol = payload["symbol"]
        cumulative = _cumulative(payload)
        state = ROBINHOOD_STATES[raw_state]
        if raw_state in _PENDING_CANCEL and cumulative > 0:
            state = OrderState.PARTIALLY_FILLED
        return BrokerOrder(
            broker_order_id=order_id,
            client_order_id=_optional_str(payload.get("ref_id"), "ref_id"),
            symbol=symbol,
            side=payload.get("side"),
            quantity=wire_decimal(payload.get("quantity"), "quantity"),
            limit_price=optional_decimal(payload.get("price"), "price"),
            state=state,
            raw_state=raw_state,
            cumulative_quantity=cumulative,
            average_price=_average_price(payload),
            executions=tuple(
                _execution(item, position, order_id)
                for position, item in enumerate(_list(payload.get("executions")))
            ),
            reject_reason=_optional_str(payload.get("reject_reason"), "reject_reason"),
            updated_at=_timestamp(payload.get("updated_at"), "updated_at"),
            cancel_reason=_cancel_reason(payload) if state is OrderState.CANCELLED else None,
        )
    # ArithmeticError: decimal.Overflow or InvalidOperation, and OverflowError from a
    # timestamp moved past year 1 or 9999 by its offset. None of them may escape: a caller
    # skips one bad order only if it is told with a BrokerError.
    except (OrderError, TypeError, ValueError, KeyError, ArithmeticError) as exc:
        raise BrokerError(
            f"{label} is malformed: {exc}; the order was left unchanged; report the broker's answer"
        ) from None


def _refuse_other_kinds(payload: Mapping[str, Any], label: str) -> None:
    """Crypto and option orders share words with stock orders (state, quantity, price), so
    read as one they would parse into a stock order with no symbol, or fail on a side."""
    if payload.get("currency_pair_id") is not None and not payload.get("instrument"):
        raise BrokerError(
            f"{label} is a crypto order (it has currency_pair_id and no instrument), not a "
            "stock order; orders trades stocks only and left it alone; if it came from the "
            "stock orders endpoint, report the broker's answer"
        )
    if payload.get("legs") is not None and payload.get("side") is None:
        raise BrokerError(
            f"{label} is an option order (it has legs and no side), not a stock order; orders "
            "trades stocks only and left it alone; if it came from the stock orders endpoint, "
            "report the broker's answer"
        )


def _cancel_reason(payload: Mapping[str, Any]) -> str | None:
    ipo = payload.get(_IPO_CANCEL_FIELD)
    if isinstance(ipo, str) and ipo.strip():
        return f"ipo_access: {ipo.strip()}"
    category = payload.get(_CANCEL_CATEGORY_FIELD)
    if isinstance(category, str) and category.strip():
        return category.strip()
    return None


def wire_decimal(value: object, field: str) -> Decimal:
    # Robinhood sends numbers as decimal strings; a JSON number arrives here as a Decimal
    # (see `_http.read_json`), so a binary float never gets in. Beyond the range every number must
    # keep, a broker's digits are bounded too: a 5,000-digit string refuses one order.
    result = to_decimal(value, field)
    exponent = result.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        raise ValueError(
            f"{field}={_short(value)} is out of range: more than {MAX_DECIMAL_PLACES} "
            "decimal places"
        )
    return result


def _short(value: object) -> str:
    # A refused number can be thousands of digits long; the message needs only its start.
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} characters)"


def optional_decimal(value: object, field: str) -> Decimal | None:
    return None if value is None else wire_decimal(value, field)


def _optional_str(value: object, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError(f"{field}={value!r} is not a string")


def _list(value: object) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"executions={value!r} is not a list")
    return value


def _cumulative(payload: Mapping[str, Any]) -> Decimal:
    value = optional_decimal(payload.get("cumulative_quantity"), "cumulative_quantity")
    return Decimal(0) if value is None else value


def _average_price(payload: Mapping[str, Any]) -> Decimal | None:
    average = optional_decimal(payload.get("average_price"), "average_price")
    # Before the first fill Robinhood sends null; a zero there means the same thing.
    return None if average is None or average == 0 else average


def _execution(item: object, position: int, order_id: object) -> Execution:
    if not isinstance(item, Mapping):
        raise ValueError(f"execution {item!r} is not an object")
    quantity = wire_decimal(item.get("quantity"), "execution quantity")
    price = wire_decimal(item.get("price"), "execution price")
    timestamp = _timestamp(item.get("timestamp"), "execution timestamp")
    execution_id = item.get("id")
    if execution_id is None or execution_id == "":
        execution_id = _derived_execution_id(order_id, position, timestamp, quantity, price)
    return Execution(execution_id=execution_id, quantity=quantity, price=price, timestamp=timestamp)


def _derived_execution_id(
    order_id: object, position: int, timestamp: datetime | None, quantity: Decimal, price: Decimal
) -> str:
    """A stable id for an execution Robinhood sent without one.

    Built from values as read (numbers without trailing zeros, the time in UTC), not from
    their text, so a snapshot that writes "1.00000000" where another wrote "1" names the
    same execution: a second snapshot of the order must not book it twice.
    """
    when = "-" if timestamp is None else timestamp.isoformat()
    key = "|".join((str(order_id), str(position), when, _plain(quantity), _plain(price)))
    return DERIVED_EXECUTION_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:20]


def _plain(value: Decimal) -> str:
    # Not Decimal.normalize(): it rounds to the context's 28 digits.
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _timestamp(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field}={value!r} is not a timestamp string")
    parsed = datetime.fromisoformat(value)
    return ensure_aware(parsed, field).astimezone(UTC)
