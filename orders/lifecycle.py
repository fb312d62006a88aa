"""The order lifecycle: `Order`, its triggers, and the planned steps a snapshot applies.

Why it is built this way:

* Every trigger is an event of the one shared `transitions` machine (see `orders._machine`,
  where the lifecycle table lives); each step reads its destination from that table, so the
  table is the only place a move's destination is written.
* Check, then change, then notify. `transitions` does not roll back, so legality, duplicate
  execution ids and overfill are decided before the event is fired; the machine's `before`
  callback commits the prepared change; the `on_enter` callbacks (and, for the internal moves,
  the `after` callbacks) tell the observers about an order that is already consistent.
* An order keeps its history and executions as plain tuples of strings, Decimals and datetimes
  (untracked by the garbage collector; see `orders._order_view`) and turns them into value
  objects only when read, so 100,000 live orders cost the collector one object each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from orders._hooks import NO_HOOKS, HookErrorHandler, OrderHooks, OrderObserver
from orders._machine import (
    CANCEL_WAS_REQUESTED,
    ENTERED,
    FILL_COMPLETES,
    FILL_LEAVES_OPEN,
    LEGAL_DESTINATIONS,
    LIFECYCLE,
    MACHINE,
    MACHINE_CONFIG,
    MACHINE_EVENTS,
    MACHINE_NAME,
    STAYED,
    STAYED_EXPOSED,
    STEP_TARGETS,
    TRIGGERS,
    Move,
    StepTarget,
)
from orders._order_view import (
    EXECUTION_WIDTH,
    INFERRED_PREFIX,
    SIDES,
    TIMES_IN_FORCE,
    ZERO,
    ExecutionLedger,
    Flat,
    OrderFields,
    OrderView,
    RawEvent,
    RawExecution,
    event_from_raw,
)
from orders.errors import IllegalTransition, InvalidOrderError, OverfillError
from orders.model import (
    TERMINAL_STATES,
    Execution,
    OrderRequest,
    OrderState,
    Side,
    TimeInForce,
    coerce_enum,
    ensure_aware,
    new_uuid4,
    positive_decimal,
    validate_name,
    validate_symbol,
)

if TYPE_CHECKING:
    from orders.model import LifecycleEvent

__all__ = [
    "CANCEL_WAS_REQUESTED",
    "ENTERED",
    "FILL_COMPLETES",
    "FILL_LEAVES_OPEN",
    "INFERRED_PREFIX",
    "LIFECYCLE",
    "MACHINE",
    "MACHINE_CONFIG",
    "MACHINE_NAME",
    "NO_HOOKS",
    "STAYED",
    "STAYED_EXPOSED",
    "TRIGGERS",
    "Clock",
    "ExecutionLedger",
    "HookErrorHandler",
    "Move",
    "Order",
    "OrderHooks",
    "OrderObserver",
    "PlannedCancel",
    "PlannedCorrection",
    "PlannedFill",
    "PlannedReject",
    "PlannedStep",
    "PlannedSubmit",
    "fill_destination",
    "order_from_request",
    "utc_now",
]

_log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The UTC wall clock, the default `Order` clock."""
    return datetime.now(UTC)


# -- planned steps: what a caller that planned a whole change asks an order to apply ------------


class PlannedSubmit(NamedTuple):
    """The broker acknowledged the order (as `Order.submit`)."""

    broker_order_id: str | None


class PlannedFill(NamedTuple):
    """Book one execution (as `Order.fill`); skipped when its id is already booked."""

    execution_id: str
    quantity: Decimal
    price: Decimal
    timestamp: datetime | None


class PlannedCorrection(NamedTuple):
    """The broker's executions in place of every inferred fill (as `Order.correct_fill`)."""

    executions: tuple[Execution, ...]


class PlannedCancel(NamedTuple):
    """The broker confirmed a cancel (as `Order.cancel`)."""

    reason: str


class PlannedReject(NamedTuple):
    """The broker refused the order (as `Order.reject`)."""

    reason: str


PlannedStep = PlannedSubmit | PlannedFill | PlannedCorrection | PlannedCancel | PlannedReject


# -- the order ------------------------------------------------------------------------------------

# Where every order starts: the machine's initial state, as the order's fields hold it.
_INITIAL: Final[str] = MACHINE_CONFIG["initial"]
# A cancel_rejected that arrives after one of these lost its race (or came late): a no-op.
_CANCEL_OUTCOMES: Final = frozenset({OrderState.FILLED, OrderState.CANCELLED})
# The time stamped on a rehearsal's steps (see `apply_planned_steps`); never recorded.
_REHEARSAL_AT: Final = datetime(2000, 1, 1, tzinfo=UTC)
# The execution fields of a history entry that is not a fill (see `orders._order_view`).
_NO_EXECUTION: Final = (None, None, None)


class _Step:
    """A prepared change, passed through the machine to the callbacks that commit and notify.

    `guard` is the table guard the step satisfies (the machine's conditions read it); `event`
    keeps the value the observers were given, so a caller that also wants the event
    (`apply_planned_steps`) does not build it a second time.
    """

    __slots__ = ("event", "filled", "guard", "raw", "route")

    def __init__(
        self,
        raw: RawEvent,
        filled: Decimal | None = None,
        route: int = ENTERED,
        guard: str | None = None,
    ):
        self.raw = raw
        self.filled = filled
        self.route = route
        self.guard = guard
        self.event: LifecycleEvent | None = None


def _corrected(executions: Flat, replacements: tuple[RawExecution, ...]) -> Flat:
    """The flat `executions` with the broker's `replacements` where the first inferred fill
    was and every inferred fill gone."""
    result: list[Any] = []
    for start in range(0, len(executions), EXECUTION_WIDTH):
        if executions[start].startswith(INFERRED_PREFIX):
            for replacement in replacements:
                result.extend(replacement)
            replacements = ()
        else:
            result.extend(executions[start : start + EXECUTION_WIDTH])
    return tuple(result)


def _raw_executions(executions: Iterable[Execution]) -> tuple[RawExecution, ...]:
    raw: list[RawExecution] = []
    for execution in executions:
        if not isinstance(execution, Execution):
            raise InvalidOrderError("executions", execution, "must hold Execution values")
        raw.append(
            (execution.execution_id, execution.quantity, execution.price, execution.timestamp)
        )
    return tuple(raw)


def _enum_value(
    names: Mapping[str, StrEnum], enum_cls: type[StrEnum], value: object, field: str
) -> str:
    """The plain string an order keeps for an enum argument (a member or its value).

    A member's `_value_` is read directly: `.value` goes through the enum's descriptor, and
    a manager passes members (its requests hold them) for every order it makes."""
    if type(value) is str and value in names:
        return value
    value_text: str = coerce_enum(enum_cls, value, field)._value_
    return value_text


def _fill_guard(filled: Decimal, quantity: Decimal) -> str:
    """The guard a fill satisfies: it completes the order exactly at its quantity."""
    return FILL_COMPLETES if filled == quantity else FILL_LEAVES_OPEN


def fill_destination(state: str, filled: Decimal, quantity: Decimal) -> str | None:
    """Where a fill that brings an order in `state` to `filled` of its `quantity` takes it,
    by the lifecycle table; None when no fill is possible from `state`."""
    target = STEP_TARGETS.get((state, "fill", _fill_guard(filled, quantity)))
    return None if target is None else target.dest


def _client_order_id(value: str | None) -> str:
    return new_uuid4() if value is None else validate_name(value, "client_order_id")


def _new_fields(  # noqa: PLR0917 - the order's own fields, in the order of OrderFields
    cid: str, symbol: str, side: str, quantity: Decimal, limit: Decimal, strategy: str, tif: str
) -> OrderFields:
    """The fields of a new order: pending, nothing filled, no history."""
    return (
        cid, symbol, side, quantity, limit, strategy, tif, _INITIAL, None, ZERO, False, None, (), ()
    )  # fmt: skip


def order_from_request(
    request: OrderRequest,
    limit_price: Decimal,
    client_order_id: str | None,
    clock: Clock | None,
    hooks: OrderHooks | None,
) -> Order:
    """The order `Order(...)` makes of `request`'s fields and `limit_price`, without checking
    the request's fields a second time: an `OrderRequest` checked them when it was made.
    `limit_price` (an offset may have pushed it out of range), `client_order_id` (a caller's
    generator may have made it) and `clock` are checked as `Order` checks them, and so is
    every field of a subclass's request, whose fields may not have been.

    The manager makes every order this way: the second check of the symbol, quantity and
    enums cost 10,000 instructions an order (callgrind, collector off).
    """
    if type(request) is not OrderRequest:
        return Order(
            request.symbol,
            request.side,
            request.quantity,
            limit_price,
            strategy=request.strategy,
            client_order_id=client_order_id,
            time_in_force=request.time_in_force,
            clock=clock,
            hooks=hooks,
        )
    if clock is not None and not callable(clock):
        raise InvalidOrderError("clock", clock, "must be a callable returning a UTC datetime")
    order: Order = object.__new__(Order)
    order._t = _new_fields(
        _client_order_id(client_order_id),
        request.symbol,
        request.side._value_,
        request.quantity,
        positive_decimal(limit_price, "limit_price"),
        request.strategy,
        request.time_in_force._value_,
    )
    order._hooks = None if hooks is NO_HOOKS else hooks
    order._clock = None if clock is utc_now else clock
    return order


def _check_correction(
    executions: tuple[RawExecution, ...], inferred: Decimal, booked: Iterable[str]
) -> None:
    """A correction moves prices, never quantities: `executions` must add up to exactly what
    was inferred, and be the broker's own, distinct and not booked yet."""
    total = sum((q for _, q, _, _ in executions), ZERO)
    ids = [e[0] for e in executions]
    if total != inferred or len(set(ids)) != len(ids):
        raise InvalidOrderError(
            "executions",
            total,
            f"must be distinct executions totalling the inferred quantity {inferred}",
        )
    if any(i.startswith(INFERRED_PREFIX) for i in ids) or not set(booked).isdisjoint(ids):
        raise InvalidOrderError(
            "executions", ids, "must be the broker's own executions, not booked yet"
        )


class Order(OrderView):
    """One limit order, from intent to fill, cancel or rejection.

    Fields are read-only; the only way to change an order is one of its triggers, each a
    `transitions` event. An illegal trigger raises `IllegalTransition` and changes nothing.
    """

    # The slots are OrderView's: one tuple of plain values, the hooks and the clock.
    __slots__ = ()

    _clock: Clock | None

    def __init__(
        self,
        symbol: str,
        side: Side | str,
        quantity: Decimal | int | str,
        limit_price: Decimal | int | str,
        *,
        strategy: str = "default",
        client_order_id: str | None = None,
        time_in_force: TimeInForce | str = TimeInForce.GFD,
        clock: Clock | None = None,
        hooks: OrderHooks | None = None,
    ) -> None:
        if clock is not None and not callable(clock):
            raise InvalidOrderError("clock", clock, "must be a callable returning a UTC datetime")
        self._t = _new_fields(
            _client_order_id(client_order_id),
            validate_symbol(symbol),
            _enum_value(SIDES, Side, side, "side"),
            positive_decimal(quantity, "quantity"),
            positive_decimal(limit_price, "limit_price"),
            strategy if strategy == "default" else validate_name(strategy, "strategy"),
            _enum_value(TIMES_IN_FORCE, TimeInForce, time_in_force, "time_in_force"),
        )
        self._hooks = None if hooks is NO_HOOKS else hooks
        self._clock = None if clock is utc_now else clock

    @property
    def _state(self) -> str:
        """The state's name, where the shared machine reads and writes it."""
        return self._t[7]

    @_state.setter
    def _state(self, value: str) -> None:
        t = self._t
        if t[7] != value:  # `_commit` has set it already on every path the machine takes
            self._t = (*t[:7], value, *t[8:])

    def attach_hooks(self, hooks: OrderHooks, *, clock: Clock | None = None) -> None:
        """Route this order's future events to `hooks`, timed by `clock` when given (used when
        orders are rebuilt from a journal and join a manager)."""
        self._hooks = None if hooks is NO_HOOKS else hooks
        if clock is not None:
            self._clock = None if clock is utc_now else clock

    @property
    def hooks(self) -> OrderHooks:
        """Who hears of this order's events (`NO_HOOKS` when nobody does)."""
        return NO_HOOKS if self._hooks is None else self._hooks

    # -- triggers -----------------------------------------------------------------------------

    def submit(self, broker_order_id: str | None = None, *, at: datetime | None = None) -> bool:
        """The broker acknowledged the order (under `broker_order_id`, when known)."""
        if broker_order_id is not None and (
            not isinstance(broker_order_id, str) or not broker_order_id
        ):
            raise InvalidOrderError(
                "broker_order_id", broker_order_id, "must be a non-empty string or None"
            )
        return self._fire(self._step("submit", at, broker_order_id))

    def fill(
        self,
        execution_id: str,
        quantity: Decimal | int | str,
        price: Decimal | int | str,
        timestamp: datetime | None = None,
        *,
        at: datetime | None = None,
    ) -> bool:
        """Book one execution; False (and nothing changes) when its id is already booked."""
        if not isinstance(execution_id, str) or not execution_id:
            raise InvalidOrderError("execution_id", execution_id, "must be a non-empty string")
        qty = positive_decimal(quantity, "quantity")
        px = positive_decimal(price, "price")
        if timestamp is not None:
            ensure_aware(timestamp, "timestamp")
        step = self._fill_step(execution_id, qty, px, timestamp, at)
        return False if step is None else self._fire(step)

    def correct_fill(self, executions: Iterable[Execution], *, at: datetime | None = None) -> bool:
        """Book the broker's executions in place of every fill inferred from a cumulative
        quantity (FIX ExecType "Trade Correct"): quantities stay, prices become the broker's.
        False (nothing changes) when no inferred fill is left."""
        step = self._correct_step(_raw_executions(executions), at)
        return False if step is None else self._fire(step)

    def request_cancel(self, *, at: datetime | None = None) -> bool:
        """Note that a cancel was asked of the broker; False if one already was."""
        self._target("request_cancel")
        if self._t[10]:
            return False
        return self._fire(self._step("request_cancel", at, None))

    def cancel_rejected(self, reason: str = "", *, at: datetime | None = None) -> bool:
        """The broker refused the cancel; the order works on. False on a filled or cancelled
        order (the cancel lost a race, or already landed)."""
        if self._t[7] in _CANCEL_OUTCOMES:
            return False
        if not self._t[10]:
            raise IllegalTransition(self._t[0], self._t[7], "cancel_rejected")
        return self._fire(
            self._step("cancel_rejected", at, reason or None, guard=CANCEL_WAS_REQUESTED)
        )

    def cancel(self, reason: str = "", *, at: datetime | None = None) -> bool:
        """The broker confirmed the cancel; fills already booked are kept."""
        return self._fire(self._step("cancel", at, reason or None))

    def reject(self, reason: str, *, at: datetime | None = None) -> bool:
        """The broker refused the order."""
        return self._fire(self._step("reject", at, reason or None))

    # -- planned steps --------------------------------------------------------------------------

    def apply_planned_steps(
        self, steps: Sequence[PlannedStep], *, at: datetime | None = None
    ) -> tuple[LifecycleEvent, ...]:
        """Apply `steps` in order, all or none of them; return the events they made.

        For a caller that plans a whole change before touching the order (`apply_snapshot`).
        Every step is checked as its trigger would check it (legality, a booked execution id,
        overfill, a correction's total) against the order as the steps before it leave it,
        and all of them are checked before the first is fired: a plan that fails anywhere
        raises and changes nothing, and no observer hears of it. A fill whose id is already
        booked is skipped, as `fill` skips it. The values are not coerced: they must already
        be what the triggers would make of them (Decimals, aware datetimes).
        """
        if len(steps) == 1:  # a snapshot's usual plan: checked as it fires, nothing to gather
            event = self._apply_step(steps[0], at)
            return () if event is None else (event,)
        if steps:
            self._rehearse(steps)
        events: list[LifecycleEvent] = []
        for planned in steps:
            event = self._apply_step(planned, at)
            if event is not None:
                events.append(event)
        return tuple(events)

    def _apply_step(self, planned: PlannedStep, at: datetime | None) -> LifecycleEvent | None:
        """Fire one planned step; the event it made, None when it changed nothing."""
        step = self._prepare(planned, at)
        if step is None:
            return None
        self._fire(step)
        event = step.event
        return event_from_raw(step.raw) if event is None else event

    def _rehearse(self, steps: Sequence[PlannedStep]) -> None:
        """Check every step on a copy of this order that nobody observes (see
        `apply_planned_steps`); raise what the first failing step raises."""
        rehearsal = object.__new__(Order)
        rehearsal._t = self._t
        rehearsal._hooks = rehearsal._clock = None
        for planned in steps:
            step = rehearsal._prepare(planned, _REHEARSAL_AT)
            if step is not None:
                rehearsal._commit(step)

    def _prepare(self, planned: PlannedStep, at: datetime | None) -> _Step | None:
        """The step a planned one stands for, checked; None when it changes nothing.

        Unpacked as tuples: a `match` on the classes reads each field through its descriptor,
        and a snapshot's steps come through here one by one."""
        if isinstance(planned, PlannedFill):
            execution_id, quantity, price, timestamp = planned
            return self._fill_step(execution_id, quantity, price, timestamp, at)
        if isinstance(planned, PlannedSubmit):
            return self._step("submit", at, planned[0])
        if isinstance(planned, PlannedCorrection):
            return self._correct_step(_raw_executions(planned[0]), at)
        if isinstance(planned, PlannedCancel):
            return self._step("cancel", at, planned[0] or None)
        if isinstance(planned, PlannedReject):
            return self._step("reject", at, planned[0] or None)
        raise InvalidOrderError("steps", planned, "must hold planned steps (PlannedFill, ...)")

    # -- prepared steps: checked, not yet fired -------------------------------------------------

    def _target(self, trigger: str, guard: str | None = None) -> StepTarget:
        """Where `trigger` takes the order from its state, by the lifecycle table (the move
        with `guard`, else the unguarded one); IllegalTransition when the table has none."""
        state = self._t[7]
        target = STEP_TARGETS.get((state, trigger, guard))
        if target is None:
            raise IllegalTransition(self._t[0], state, trigger)
        return target

    def _step(
        self, trigger: str, at: datetime | None, detail: Any, guard: str | None = None
    ) -> _Step:
        target = self._target(trigger, guard)
        return _Step(self._raw(trigger, target.dest, at, detail), None, target.route, guard)

    def _fill_step(
        self,
        execution_id: str,
        qty: Decimal,
        px: Decimal,
        timestamp: datetime | None,
        at: datetime | None,
    ) -> _Step | None:
        """The fill of validated values; None when the execution is already booked."""
        if self.has_execution(execution_id):
            return None
        filled = qty if self._t[9] is ZERO else self._t[9] + qty
        total = self._t[3]
        guard = _fill_guard(filled, total)
        target = self._target("fill", guard)
        if filled > total:
            raise OverfillError(self._t[0], total, self._t[9], qty)
        raw = self._raw("fill", target.dest, at, (execution_id, qty, px, timestamp))
        return _Step(raw, filled, target.route, guard)

    def _correct_step(
        self, executions: tuple[RawExecution, ...], at: datetime | None
    ) -> _Step | None:
        """Put `executions` in place of every inferred fill; None when there is none left.
        Checked before anything changes (see `_check_correction`)."""
        target = self._target("correct_fill")
        ledger = self.execution_ledger()
        if ledger.inferred_quantity == 0:
            return None
        _check_correction(executions, ledger.inferred_quantity, ledger.execution_ids)
        raw = self._raw("correct_fill", target.dest, at, executions)
        return _Step(raw, None, target.route)

    def restore_raw(
        self, trigger: str, dest: str, at: datetime, detail: Any, source: str | None = None
    ) -> None:
        """Re-apply one event read back from a journal, without hooks and without the machine.

        Replay must be fast (a journal holds millions of events) and must not notify anyone:
        the event already happened. `detail` is what the history keeps: an (id, quantity,
        price, timestamp) tuple for a fill, a tuple of them for a correct_fill, the broker
        order id for a submit, the reason for the others. A move the lifecycle table does not
        hold (from this state, by this trigger, to `dest`), or from a state other than
        `source` when given, raises IllegalTransition.

        A fill, nearly every record of a journal, is committed here as `_commit` commits one,
        its destination read from the step table as `_fill_step` reads it: a `_Step`, `_commit`
        and `fill_destination` cost 4,200 instructions a fill (callgrind).
        """
        t = self._t
        state = t[7]
        if dest not in LEGAL_DESTINATIONS.get((state, trigger), ()) or (
            source is not None and source != state
        ):
            raise IllegalTransition(t[0], state, trigger)
        if trigger != "fill":
            self._commit(_Step((trigger, state, dest, at, detail)))
            return
        total = t[3]
        filled = t[9] + detail[1]  # its quantity decides between the fill moves
        if filled > total:
            raise OverfillError(t[0], total, t[9], detail[1])
        if STEP_TARGETS[state, trigger, _fill_guard(filled, total)].dest != dest:
            raise IllegalTransition(t[0], state, trigger)
        cid, symbol, side, qty, px, strategy, tif, _, broker, _, cancel, reason, ex, h = t
        self._t = (
            cid, symbol, side, qty, px, strategy, tif, dest, broker, filled,
            cancel and dest not in TERMINAL_STATES, reason, ex + detail,
            h + ((trigger, state, dest, at) + detail),  # noqa: RUF005 - cheaper than unpacking
        )  # fmt: skip

    # -- machinery ----------------------------------------------------------------------------

    def _raw(self, trigger: str, dest: str, at: datetime | None, detail: Any) -> RawEvent:
        if at is None:
            at = utc_now() if self._clock is None else self._clock()
        elif not isinstance(at, datetime) or at.tzinfo is None:
            raise InvalidOrderError("at", at, "must be a timezone-aware datetime (UTC)")
        return (trigger, self._t[7], dest, at, detail)

    def _fire(self, step: _Step) -> bool:
        result: bool = MACHINE_EVENTS[step.raw[0]].trigger(self, step)
        return result

    # Callbacks named in MACHINE_CONFIG; `transitions` resolves them on the triggering order.

    def _fill_completes(self, step: _Step) -> bool:
        return step.guard == FILL_COMPLETES

    def _cancel_was_requested(self, step: _Step) -> bool:
        return self._t[10]

    def _commit(self, step: _Step) -> None:
        """The machine's `before` callback: the prepared change, made in one assignment (the
        state included, so `transitions` setting `_state` afterwards changes nothing).

        The executions and the history are flat (see `orders._order_view`); the new entry is
        concatenated whole, so the history is copied once and no list is built."""
        raw = step.raw
        trigger = raw[0]
        cid, symbol, side, qty, px, strategy, tif, _, broker, filled, cancel, reason, ex, h = (
            self._t
        )
        if raw[2] in TERMINAL_STATES:  # done: no cancel is pending any more
            cancel = False
        if trigger == "fill":
            filled = step.filled  # type: ignore[assignment]
            ex += raw[4]
        elif trigger == "correct_fill":
            ex = _corrected(ex, raw[4])
        elif trigger == "submit":
            broker = broker if raw[4] is None else raw[4]
        elif trigger in ("request_cancel", "cancel_rejected"):
            cancel = trigger == "request_cancel"
        else:  # cancel, reject
            reason = raw[4]
        self._t = (
            cid, symbol, side, qty, px, strategy, tif, raw[2], broker, filled, cancel, reason,
            ex, h + (raw[:4] + raw[4] if trigger == "fill" else raw + _NO_EXECUTION),
        )  # fmt: skip

    def _notify(self, step: _Step) -> None:
        hooks = self._hooks
        if hooks is None:
            return
        observers = hooks.observers_for(step.raw[2], step.route)
        if not observers:
            return
        event = step.event = event_from_raw(step.raw)
        for observer in observers:
            try:
                observer(self, event)
            except Exception as error:  # one failing observer must not stop the rest
                try:
                    hooks.on_error(observer, self, event, error)
                except Exception:  # a broken error handler must not break the order
                    _log.exception("order hook error handler failed")
