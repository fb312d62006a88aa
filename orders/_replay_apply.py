"""Replaying one record onto the orders rebuilt so far, refusing any record that no real order
could have written.

Why so strict: replay is what a restart trades on. A record that starts from another state, a
fill past the quantity or to the wrong state, a time without an offset: each means the file
is damaged or was written by something else, and guessing would rebuild an order that never
existed. Each check is a comparison on the common path (replay reads 200,000 records a
second); the messages are built on the slow path, only once a check fails.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from orders._journal_checkpoint import owed_late_fill
from orders.errors import IllegalTransition, JournalError
from orders.lifecycle import LIFECYCLE, TRIGGERS, Order, fill_destination
from orders.model import OrderState

__all__ = ["apply_checkpoint", "apply_record"]

_ZERO: Final = Decimal(0)
_INF: Final = Decimal("Infinity")
_fromisoformat: Final = datetime.fromisoformat
_TRIGGERS: Final = frozenset(TRIGGERS)
# Where each (source, trigger) lands, for every trigger but `fill` (whose destination depends
# on the quantity): replay refuses a record whose `dest` says otherwise.
_DEST: Final = {(str(m.source), m.trigger): str(m.dest) for m in LIFECYCLE if m.trigger != "fill"}
# The text of every amount a fill has given that is above 0 and finite, with its value: a
# journal repeats the same few quantities and prices, and a lookup costs less than Decimal()
# and the checks. Emptied when it reaches _AMOUNTS_KEPT, so ever-new prices cannot grow it.
_AMOUNTS: Final[dict[str, Decimal]] = {}
_AMOUNTS_KEPT: Final = 4096

Orders = dict[str, Order]
Record = dict[str, Any]


def apply_record(orders: Orders, record: Record) -> None:
    """Re-apply one record: an intent adds an order, a lifecycle event moves one, and any
    other record (a note, a checkpoint) changed no order.

    The event's own checks are inline, not one more call: this runs once per record of every
    replay. A move the lifecycle does not have, or from a state the order is not in, is
    refused by `restore_raw`; only then is the clearer message built.
    """
    event = record["event"]
    if event not in _TRIGGERS:
        if event == "intent":
            _apply_intent(orders, record)
        return
    cid = record["client_order_id"]
    order = orders.get(cid)
    if order is None:
        raise JournalError(f"event {event!r} for client order {cid} before its intent")
    at = _fromisoformat(record["ts"])
    if at.tzinfo is None:
        _aware_time(record["ts"], "ts")  # raises, naming the field
    if event == "fill":
        detail = _fill(order, record)
    elif event == "submit":
        detail = record["broker_order_id"]
    elif event == "correct_fill":
        detail = _correction(order, record)
    else:
        detail = record["reason"]
    try:
        # A source of None would skip restore_raw's check: "" is refused as any wrong one.
        order.restore_raw(event, record["dest"], at, detail, record["source"] or "")
    except IllegalTransition:
        # Refused: say which state the order was in, or where the move could go instead.
        source = record["source"]
        if source != order.state:
            raise JournalError(
                f"event {event!r} of client order {cid} starts from {source}, "
                f"but the order is {order.state}"
            ) from None
        if event == "fill":
            _check_fill_dest(order, record)
        else:
            _check_dest(record)
        raise


def _apply_intent(orders: Orders, record: Record) -> None:
    cid = record["client_order_id"]
    if cid in orders:
        raise JournalError(f"a second intent for client order {cid}")
    _aware_time(record["ts"], "ts")
    orders[cid] = Order(
        record["symbol"],
        record["side"],
        Decimal(record["quantity"]),
        Decimal(record["limit_price"]),
        strategy=record["strategy"],
        client_order_id=cid,
        time_in_force=record.get("time_in_force", "gfd"),
    )


def _fill(order: Order, record: Record) -> tuple[Any, ...]:
    """The execution of a fill record; where it takes the order is checked by `restore_raw`."""
    raw = record["execution"]
    try:
        quantity = _AMOUNTS[raw["quantity"]]
        price = _AMOUNTS[raw["price"]]
    except (KeyError, TypeError):  # an amount not seen yet: checked, and kept if sound
        quantity, price = _new_amounts(order, record)
    stamp = raw["timestamp"]
    return (raw["id"], quantity, price, stamp if stamp is None else _execution_time(stamp))


def _new_amounts(order: Order, record: Record) -> tuple[Decimal, Decimal]:
    """The quantity and price of a fill record, refused unless both are above 0 (and the
    price finite); the slow path of `_fill`."""
    raw = record["execution"]
    quantity = Decimal(raw["quantity"])
    price = Decimal(raw["price"])
    # A NaN amount raises InvalidOperation here, which replay reports like any bad number.
    if not (quantity > _ZERO and _ZERO < price < _INF):
        raise JournalError(_fill_problem(order, record))
    if len(_AMOUNTS) >= _AMOUNTS_KEPT:
        _AMOUNTS.clear()
    for text, amount in ((raw["quantity"], quantity), (raw["price"], price)):
        if type(text) is str and amount.is_finite():
            _AMOUNTS[text] = amount
    return quantity, price


def _execution_time(stamp: str) -> datetime:
    at = _fromisoformat(stamp)
    if at.tzinfo is None:
        _aware_time(stamp, "execution timestamp")  # raises
    return at


def _correction(order: Order, record: Record) -> tuple[Any, ...]:
    """The executions of a correct_fill record, which must replace exactly what was inferred."""
    executions = []
    total = _ZERO
    for raw in record["executions"]:
        quantity, price = Decimal(raw["quantity"]), Decimal(raw["price"])
        if not (quantity > _ZERO and _ZERO < price < _INF):
            raise JournalError(
                f"a correction of client order {order.client_order_id} books "
                f"{raw['quantity']} at {raw['price']}; both must be above 0"
            )
        stamp = raw["timestamp"]
        stamp = stamp if stamp is None else _execution_time(stamp)
        executions.append((raw["id"], quantity, price, stamp))
        total += quantity
    inferred = order.execution_ledger().inferred_quantity
    if total != inferred or record["dest"] != record["source"]:
        raise JournalError(
            f"a correction of client order {order.client_order_id} books {total} shares in "
            f"place of {inferred} inferred, from {record['source']} to "
            f"{record['dest']}; a correction keeps the quantity and the state"
        )
    return tuple(executions)


def _check_dest(record: Record) -> None:
    """Refuse a move the lifecycle does not have, naming where it could go (the slow path:
    restore_raw refused it, in less clear words)."""
    source, event, dest = record["source"], record["event"], record["dest"]
    if _DEST.get((source, event), dest) != dest:
        raise JournalError(
            f"event {event!r} of client order {record['client_order_id']} goes from {source} "
            f"to {dest}, but from {source} it can only reach {_DEST[source, event]}"
        )


def _aware_time(value: Any, field: str) -> datetime:
    """A journal time, which the writer always gives a UTC offset.

    A time without one cannot be compared with the clock's, so accepting it would only move
    the failure to a bare TypeError in recovery or `orders stats`.
    """
    stamp = _fromisoformat(value)
    if stamp.tzinfo is None:
        raise JournalError(f"{field} {value!r} has no UTC offset")
    return stamp


def _fill_problem(order: Order, record: Record) -> str:
    """What is wrong with a fill record's execution (the slow path of `_fill`)."""
    cid = order.client_order_id
    raw = record["execution"]
    if not Decimal(raw["quantity"]) > _ZERO:
        return f"a fill of client order {cid} is for {raw['quantity']} shares; a fill is for more"
    return f"a fill of client order {cid} is at price {raw['price']}; a price is above 0"


def _check_fill_dest(order: Order, record: Record) -> None:
    """Refuse a fill that cannot land where its record says, naming where it could."""
    cid = order.client_order_id
    dest = record["dest"]
    total = order.quantity
    filled = order.filled_quantity + Decimal(record["execution"]["quantity"])
    expected = fill_destination(order.state.value, filled, total)
    if expected is None or expected == dest:
        return  # no fill from this state at all: IllegalTransition says so
    if dest == OrderState.FILLED:
        raise JournalError(
            f"a fill of client order {cid} says the order is filled, but its fills add up to "
            f"{filled} of {total}: a fill record is missing or damaged"
        )
    raise JournalError(
        f"a fill of client order {cid} goes to {dest}, but with {filled} of {total} filled it "
        f"can only reach {expected}"
    )


def apply_checkpoint(orders: Orders, record: Record) -> None:
    """Rebuild one checkpointed order: its intent, then its history, each checked as replay
    checks a record; then its stated state, fills and flags must be what that gives."""
    cid = record["client_order_id"]
    _apply_intent(orders, record)
    for entry in record["history"]:
        if type(entry) is not dict or entry.get("event") not in _TRIGGERS:
            raise JournalError(
                f"the checkpoint of client order {cid} holds a history entry that is not a "
                f"lifecycle event: {entry!r}"
            )
        entry["client_order_id"] = cid
        apply_record(orders, entry)
    order = orders[cid]
    if order.is_terminal and not owed_late_fill(order):
        raise JournalError(
            f"the checkpoint lists client order {cid}, which its history makes {order.state} "
            f"with {order.filled_quantity} of {order.quantity} filled; a checkpoint holds "
            "working orders and orders cancelled with quantity left only"
        )
    stated = (
        ("dest", record["dest"], str(order.state)),
        ("filled_quantity", Decimal(record["filled_quantity"]), order.filled_quantity),
        ("broker_order_id", record["broker_order_id"], order.broker_order_id),
        ("cancel_requested", record["cancel_requested"], order.cancel_requested),
        ("reason", record["reason"], order.reason),
    )
    for field, said, rebuilt in stated:
        if said != rebuilt:
            raise JournalError(
                f"the checkpoint of client order {cid} says {field} is {said!r}, but its "
                f"history gives {rebuilt!r}"
            )
