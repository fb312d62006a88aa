"""Bring an order up to a broker's view of it, whatever order the views arrive in.

Polling a broker yields snapshots that may repeat, arrive out of order, lag their own
executions (Robinhood reports `cumulative_quantity` before it lists every execution) or linger
in a working state after a fill (`unconfirmed` after `filled`). The cumulative quantity is the
authority: fills are booked up to it, never past it, so a replay books nothing twice.

The snapshot is planned in full before the order is touched: an impossible report raises
`BrokerError` and leaves the order exactly as it was.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

from orders.errors import BrokerError
from orders.lifecycle import INFERRED_PREFIX, Order, PlannedStep
from orders.model import (
    CANCELLED,
    FILLED,
    PARTIALLY_FILLED,
    PENDING,
    REJECTED,
    SUBMITTED,
    TERMINAL_STATES,
    BrokerOrder,
    Execution,
    LifecycleEvent,
    OrderState,
)

__all__ = ["apply_snapshot", "inferred_execution_id"]

_ZERO: Final = Decimal(0)
_WORKING: Final = frozenset({PENDING, SUBMITTED, PARTIALLY_FILLED})
_ENDING: Final = frozenset({CANCELLED, REJECTED})


def inferred_execution_id(client_order_id: str, cum_old: Decimal, cum_new: Decimal) -> str:
    """The id of a fill inferred from a cumulative-quantity increase.

    A function of the order and the two cumulative quantities only (written without trailing
    zeros), so a replay of the same snapshots, or another process, infers the same id and the
    duplicate check drops it.
    """
    return f"{INFERRED_PREFIX}{client_order_id}:{_plain(cum_old)}:{_plain(cum_new)}"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def apply_snapshot(
    order: Order, snapshot: BrokerOrder, *, at: datetime | None = None
) -> tuple[LifecycleEvent, ...]:
    """Fire the triggers that bring `order` up to `snapshot`; return the events they made.

    In order: acknowledge, book the snapshot's new executions, infer a fill for any
    cumulative increase they do not explain, then the terminal state. A stale snapshot (lower
    cumulative quantity, or a working state after a terminal one) changes nothing, and so does
    the same snapshot applied twice.
    """
    plan = _plan(order, snapshot)
    # The plan's values come from a validated snapshot (or exact arithmetic on one), so the
    # order re-checks legality, duplicates and overfill but not the values' types.
    return order._fire_planned(plan, at) if plan else ()  # package-private, for this module


def _plan(order: Order, snap: BrokerOrder) -> list[PlannedStep]:
    _check_identity(order, snap)
    state = order.state
    cum_new = snap.cumulative_quantity
    filled = order.filled_quantity
    if state in TERMINAL_STATES and snap.state not in TERMINAL_STATES:
        return []  # stale: e.g. Robinhood's `unconfirmed` lingering after the fill
    if cum_new < filled:
        return []  # stale: an older view than one already applied
    quantity = order.quantity
    if cum_new > quantity:
        raise BrokerError(
            f"broker reports {cum_new} filled on order {order.client_order_id} of "
            f"{quantity}: an overfill; the snapshot was not applied, reconcile this "
            "order with the broker by hand"
        )

    steps: list[PlannedStep] = []
    if state is PENDING:
        if snap.state is PENDING:
            return []
        steps.append(("submit", (snap.broker_order_id,)))
        state = SUBMITTED

    room = cum_new - filled
    fills = _plan_fills(order, snap, room) if room > 0 or snap.executions else None
    if fills:
        if state is REJECTED:
            raise BrokerError(
                f"order {order.client_order_id} was marked rejected but the broker reports "
                f"{cum_new} filled; the snapshot was not applied, reconcile this order with "
                "the broker by hand"
            )
        steps += fills
        if state is not CANCELLED:
            state = FILLED if cum_new == quantity else PARTIALLY_FILLED
    if state in _WORKING and snap.state in _ENDING:
        steps.append(_plan_end(state, snap))
    return steps


def _check_identity(order: Order, snap: BrokerOrder) -> None:
    cid = order.client_order_id
    if snap.client_order_id is not None and snap.client_order_id != cid:
        raise BrokerError(
            f"snapshot of broker order {snap.broker_order_id} belongs to client order "
            f"{snap.client_order_id}, not {cid}; it was not applied"
        )
    if order.broker_order_id is not None and snap.broker_order_id != order.broker_order_id:
        raise BrokerError(
            f"snapshot of broker order {snap.broker_order_id} does not match order {cid}, "
            f"known at the broker as {order.broker_order_id}; it was not applied"
        )


def _plan_end(state: OrderState, snap: BrokerOrder) -> PlannedStep:
    """The terminal trigger a working order needs, once its fills are booked, to match a
    cancelled or rejected snapshot. (A `filled` snapshot short of the order's quantity needs
    none: the order waits for the fills that complete it.)"""
    if snap.state is REJECTED and state is not SUBMITTED:
        # A broker reject after fills: the order no longer works, and its fills are kept.
        reason = _reason(snap) or snap.raw_state
        return ("cancel", (f"rejected by the broker after a partial fill: {reason}",))
    return ("reject" if snap.state is REJECTED else "cancel", (_reason(snap),))


def _plan_fills(order: Order, snap: BrokerOrder, room: Decimal) -> list[PlannedStep]:
    """Book the snapshot's new executions that fit `room`; infer the rest from its average."""
    booked, covered = order._ledger()  # package-private, for this module
    unbooked: list[Execution] = []
    for execution in snap.executions:
        execution_id = execution.execution_id
        if execution_id not in booked:
            booked.add(execution_id)  # a broker listing one execution twice books it once
            unbooked.append(execution)
    # Earlier inferred fills (`covered`) stand for the earliest executions the broker had not
    # listed yet. They are counted already, so they are never booked as new fills; once the
    # broker lists all of them, they replace the inferred fills, whose price came from the
    # broker's rounded average.
    steps: list[PlannedStep] = []
    # What the booked executions add up to once this plan's correction is made: an inferred
    # price below is implied by the broker's average over the true executions, not the old
    # provisional ones.
    notional = order.filled_notional
    stood_for = _ZERO
    count = 0
    while count < len(unbooked) and stood_for < covered:
        stood_for += unbooked[count].quantity
        count += 1
    if covered and stood_for == covered:
        listed = tuple(_raw(e) for e in unbooked[:count])
        steps.append(("correct_fill", (listed,)))
        notional += sum((q * p for _, q, p, _ in listed), _ZERO) - order.inferred_notional
    del unbooked[:count]  # an execution straddling the inferred quantity stays uncorrected
    new: list[Execution] = []
    new_total = _ZERO
    for execution in unbooked:
        if new_total + execution.quantity > room:
            break
        new.append(execution)
        new_total += execution.quantity

    steps += [("fill", _raw(e)) for e in new]
    missing = room - new_total
    if missing > 0:
        avg_new = snap.average_price
        if avg_new is None:
            raise BrokerError(
                f"broker reports {snap.cumulative_quantity} filled on order "
                f"{order.client_order_id} without executions or an average price; "
                "the snapshot was not applied"
            )
        cum_old = order.filled_quantity + new_total
        notional_old = notional + sum((e.quantity * e.price for e in new), _ZERO)
        price = (avg_new * snap.cumulative_quantity - notional_old) / missing
        if price <= 0:
            raise BrokerError(
                f"broker's average price {avg_new} on order {order.client_order_id} implies a "
                f"non-positive price {price} for the last {missing}; the snapshot was not applied"
            )
        execution_id = inferred_execution_id(
            order.client_order_id, cum_old, snap.cumulative_quantity
        )
        steps.append(("fill", (execution_id, missing, price, snap.updated_at)))
    return steps


def _raw(execution: Execution) -> tuple[str, Decimal, Decimal, datetime | None]:
    return (execution.execution_id, execution.quantity, execution.price, execution.timestamp)


def _reason(snap: BrokerOrder) -> str:
    """The broker's stated cause: of a cancel (Robinhood's `end_of_day`, ...) when it gave
    one, else its reject reason."""
    if snap.state is CANCELLED and snap.cancel_reason:
        return snap.cancel_reason
    return snap.reject_reason or ""
