"""Bring an order up to a broker's view of it, whatever order the views arrive in.

Polling a broker yields snapshots that may repeat, arrive out of order, lag their own
executions (Robinhood reports `cumulative_quantity` before it lists every execution) or linger
in a working state after a fill (`unconfirmed` after `filled`). The cumulative quantity is the
authority: fills are booked up to it, never past it, so a replay books nothing twice.

The snapshot is planned in full before the order is touched: an impossible report raises
`BrokerError` and leaves the order exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Final

from orders._order_view import planning_fields
from orders.errors import BrokerError
from orders.lifecycle import (
    INFERRED_PREFIX,
    Order,
    PlannedCancel,
    PlannedCorrection,
    PlannedFill,
    PlannedReject,
    PlannedStep,
    PlannedSubmit,
)
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
_new_tuple: Final = tuple.__new__
_WORKING: Final = frozenset(OrderState) - TERMINAL_STATES
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
    return order.apply_planned_steps(plan, at=at) if plan else ()


def _plan(order: Order, snap: BrokerOrder) -> list[PlannedStep]:
    cid, broker_id, state, quantity, filled = planning_fields(order)
    if (snap.client_order_id is not None and snap.client_order_id != cid) or (
        broker_id is not None and snap.broker_order_id != broker_id
    ):
        raise _another_order(cid, broker_id, snap)
    cumulative = snap.cumulative_quantity
    # A stale view: a working state after a terminal one (Robinhood's `unconfirmed`
    # lingering after the fill), or a lower cumulative quantity.
    if cumulative < filled or (state in TERMINAL_STATES and snap.state not in TERMINAL_STATES):
        return []
    if cumulative > quantity:
        raise _overfilled(order, snap)
    steps: list[PlannedStep] = []
    if state is PENDING:
        if snap.state is PENDING:
            return []
        steps.append(PlannedSubmit(snap.broker_order_id))
        state = SUBMITTED
    fills = _plan_fills(order, snap, cumulative - filled)
    if fills:
        if state is REJECTED:
            raise _fills_on_rejected(order, snap)
        steps += fills
        if state is not CANCELLED:
            state = FILLED if cumulative == quantity else PARTIALLY_FILLED
    if state in _WORKING and snap.state in _ENDING:
        steps.append(_plan_end(state, snap))
    return steps


def _overfilled(order: Order, snap: BrokerOrder) -> BrokerError:
    return BrokerError(
        f"broker reports {snap.cumulative_quantity} filled on order "
        f"{order.client_order_id} of {order.quantity}: an overfill; the snapshot was not "
        "applied, reconcile this order with the broker by hand"
    )


def _fills_on_rejected(order: Order, snap: BrokerOrder) -> BrokerError:
    return BrokerError(
        f"order {order.client_order_id} was marked rejected but the broker reports "
        f"{snap.cumulative_quantity} filled; the snapshot was not applied, reconcile this "
        "order with the broker by hand"
    )


def _another_order(cid: str, broker_id: str | None, snap: BrokerOrder) -> BrokerError:
    """Why a snapshot of another order is refused: its client id or its broker id differs
    from the order's (`cid`, `broker_id`)."""
    if snap.client_order_id is not None and snap.client_order_id != cid:
        return BrokerError(
            f"snapshot of broker order {snap.broker_order_id} belongs to client order "
            f"{snap.client_order_id}, not {cid}; it was not applied"
        )
    return BrokerError(
        f"snapshot of broker order {snap.broker_order_id} does not match order {cid}, "
        f"known at the broker as {broker_id}; it was not applied"
    )


def _plan_end(state: OrderState, snap: BrokerOrder) -> PlannedStep:
    """The terminal trigger a working order needs, once its fills are booked, to match a
    cancelled or rejected snapshot. (A `filled` snapshot short of the order's quantity needs
    none: the order waits for the fills that complete it.)"""
    if snap.state is not REJECTED:
        return PlannedCancel(_reason(snap))
    if state is not SUBMITTED:
        # A broker reject after fills: the order no longer works, and its fills are kept.
        reason = _reason(snap) or snap.raw_state
        return PlannedCancel(f"rejected by the broker after a partial fill: {reason}")
    return PlannedReject(_reason(snap))


def _plan_fills(order: Order, snap: BrokerOrder, room: Decimal) -> list[PlannedStep]:
    """Book the snapshot's new executions that fit in `room` (its cumulative quantity less
    the order's filled quantity); infer the rest from its average price."""
    if room <= 0 and not snap.executions:
        return []
    if order.lists_one_more(snap.executions):
        # The common report, after one more fill: planned directly when it fills the room
        # exactly (what the general plan below makes of it, without building the ledger).
        new_fill = snap.executions[-1]
        if new_fill.quantity == room:
            return [_planned_fill(new_fill)]
    ledger = order.execution_ledger()
    unbooked = _unbooked(snap, ledger.execution_ids)
    correction = _plan_correction(unbooked, ledger.inferred_quantity)
    steps: list[PlannedStep] = [] if correction is None else [correction]
    new = _fitting(unbooked, room)
    steps += [_planned_fill(e) for e in new]
    missing = room - sum((e.quantity for e in new), _ZERO)
    if missing > 0:
        # What the booked executions add up to once this plan's correction is made: the
        # inferred price is implied by the broker's average over the true executions, not
        # the old provisional ones.
        notional = order.filled_notional + _notional(new)
        if correction is not None:
            notional += _notional(correction.executions) - order.inferred_notional
        steps.append(_plan_inferred(order, snap, missing, notional))
    return steps


def _unbooked(snap: BrokerOrder, booked: frozenset[str]) -> list[Execution]:
    """The snapshot's executions not booked yet, each once (a broker may list one twice)."""
    seen: set[str] = set()
    unbooked: list[Execution] = []
    for execution in snap.executions:
        execution_id = execution.execution_id
        if execution_id not in booked and execution_id not in seen:
            seen.add(execution_id)
            unbooked.append(execution)
    return unbooked


def _plan_correction(unbooked: list[Execution], covered: Decimal) -> PlannedCorrection | None:
    """The broker's executions in place of the inferred fills, once it lists all of them.

    Earlier inferred fills (`covered`) stand for the earliest executions the broker had not
    listed yet. They are counted already, so those executions are taken out of `unbooked`
    and never booked as new fills; an execution straddling the inferred quantity stays
    uncorrected.
    """
    stood_for = _ZERO
    count = 0
    while count < len(unbooked) and stood_for < covered:
        stood_for += unbooked[count].quantity
        count += 1
    listed = tuple(unbooked[:count])
    del unbooked[:count]
    if covered and stood_for == covered:
        return PlannedCorrection(listed)
    return None


def _fitting(unbooked: list[Execution], room: Decimal) -> list[Execution]:
    """The leading executions whose quantities fit in `room`."""
    new: list[Execution] = []
    total = _ZERO
    for execution in unbooked:
        if total + execution.quantity > room:
            break
        new.append(execution)
        total += execution.quantity
    return new


def _plan_inferred(
    order: Order, snap: BrokerOrder, missing: Decimal, notional: Decimal
) -> PlannedFill:
    """A fill for the `missing` quantity no listed execution explains, priced so that the
    booked `notional` plus it matches the broker's average over its cumulative quantity."""
    avg_new = snap.average_price
    if avg_new is None:
        raise BrokerError(
            f"broker reports {snap.cumulative_quantity} filled on order "
            f"{order.client_order_id} without executions or an average price; "
            "the snapshot was not applied"
        )
    price = (avg_new * snap.cumulative_quantity - notional) / missing
    if price <= 0:
        raise BrokerError(
            f"broker's average price {avg_new} on order {order.client_order_id} implies a "
            f"non-positive price {price} for the last {missing}; the snapshot was not applied"
        )
    cum_old = snap.cumulative_quantity - missing
    execution_id = inferred_execution_id(order.client_order_id, cum_old, snap.cumulative_quantity)
    return PlannedFill(execution_id, missing, price, snap.updated_at)


def _notional(executions: Iterable[Execution]) -> Decimal:
    return sum((e.quantity * e.price for e in executions), _ZERO)


def _planned_fill(execution: Execution) -> PlannedFill:
    # `tuple.__new__` directly: a NamedTuple's own `__new__` is a Python function around it.
    return _new_tuple(
        PlannedFill,
        (execution.execution_id, execution.quantity, execution.price, execution.timestamp),
    )


def _reason(snap: BrokerOrder) -> str:
    """The broker's stated cause: of a cancel (Robinhood's `end_of_day`, ...) when it gave
    one, else its reject reason."""
    if snap.state is CANCELLED and snap.cancel_reason:
        return snap.cancel_reason
    return snap.reject_reason or ""
