"""The order lifecycle: the state machine as data, one shared `transitions` machine, and `Order`.

Why it is built this way:

* One module-level `Machine(model=None)` drives every order, and orders are never registered
  with it (`add_model` is O(N) and costs ~5 KB per order). Each trigger method on `Order`
  fires the machine's event for that one order: creation costs what a plain object costs and a
  trigger costs what `transitions` itself costs.
* Check, then change, then notify. `transitions` does not roll back, so legality, duplicate
  execution ids and overfill are decided before the event is fired; the machine's `before`
  callback commits the prepared change; the `on_enter` callbacks (and, for the internal moves,
  the `after` callbacks) tell the observers about an order that is already consistent.
* An order keeps its history and executions as plain tuples of strings, Decimals and datetimes
  (untracked by the garbage collector) and turns them into value objects only when read, so
  100,000 live orders cost the collector one object each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Protocol

import attrs
from transitions import Event, EventData, Machine, Transition

from orders.errors import IllegalTransition, InvalidOrderError, OverfillError
from orders.model import (
    CANCELLED,
    FILLED,
    PARTIALLY_FILLED,
    PENDING,
    REJECTED,
    SUBMITTED,
    TERMINAL_STATES,
    Execution,
    LifecycleEvent,
    OrderState,
    Side,
    TimeInForce,
    coerce_enum,
    ensure_aware,
    new_uuid4,
    positive_decimal,
    trusted_execution,
    validate_name,
    validate_symbol,
)

__all__ = [
    "LIFECYCLE",
    "MACHINE",
    "MACHINE_CONFIG",
    "TRIGGERS",
    "Clock",
    "Move",
    "Order",
    "OrderHooks",
    "OrderObserver",
    "legal_moves",
    "utc_now",
]

_log = logging.getLogger(__name__)


@attrs.frozen
class Move:
    """One legal move: `trigger` fired on an order in `source` takes it to `dest`.

    `internal` moves keep the order in its state without leaving and re-entering it, so no
    `on_enter` hook fires for them. `guard` names the condition that picks this move when a
    trigger has several from the same state.
    """

    source: OrderState
    trigger: str
    dest: OrderState
    internal: bool = False
    guard: str | None = None


FILL_COMPLETES: Final = "fill completes the quantity"
FILL_LEAVES_OPEN: Final = "fill leaves quantity open"
CANCEL_WAS_REQUESTED: Final = "cancel was requested"

# The lifecycle, declared once. The machine, the diagram, docs/lifecycle.md and the tests'
# expectations are all derived from (or checked against) this table.
LIFECYCLE: Final[tuple[Move, ...]] = (
    Move(PENDING, "submit", SUBMITTED),
    Move(PENDING, "reject", REJECTED),
    Move(SUBMITTED, "reject", REJECTED),
    Move(SUBMITTED, "fill", PARTIALLY_FILLED, guard=FILL_LEAVES_OPEN),
    Move(SUBMITTED, "fill", FILLED, guard=FILL_COMPLETES),
    Move(PARTIALLY_FILLED, "fill", PARTIALLY_FILLED, guard=FILL_LEAVES_OPEN),
    Move(PARTIALLY_FILLED, "fill", FILLED, guard=FILL_COMPLETES),
    # A late fill: brokers report executions that raced the cancel; book them, stay cancelled.
    Move(CANCELLED, "fill", CANCELLED, internal=True),
    Move(PENDING, "request_cancel", PENDING, internal=True),
    Move(SUBMITTED, "request_cancel", SUBMITTED, internal=True),
    Move(PARTIALLY_FILLED, "request_cancel", PARTIALLY_FILLED, internal=True),
    Move(PENDING, "cancel_rejected", PENDING, internal=True, guard=CANCEL_WAS_REQUESTED),
    Move(SUBMITTED, "cancel_rejected", SUBMITTED, internal=True, guard=CANCEL_WAS_REQUESTED),
    Move(
        PARTIALLY_FILLED,
        "cancel_rejected",
        PARTIALLY_FILLED,
        internal=True,
        guard=CANCEL_WAS_REQUESTED,
    ),
    Move(PENDING, "cancel", CANCELLED),
    Move(SUBMITTED, "cancel", CANCELLED),
    Move(PARTIALLY_FILLED, "cancel", CANCELLED),
    # A fill inferred from a cumulative quantity is provisional (its price comes from the
    # broker's rounded average); the broker's executions, once listed, take its place.
    Move(PARTIALLY_FILLED, "correct_fill", PARTIALLY_FILLED, internal=True),
    Move(FILLED, "correct_fill", FILLED, internal=True),
    Move(CANCELLED, "correct_fill", CANCELLED, internal=True),
)

TRIGGERS: Final[tuple[str, ...]] = tuple(dict.fromkeys(m.trigger for m in LIFECYCLE))


def legal_moves() -> dict[tuple[OrderState, str], tuple[Move, ...]]:
    """Every legal (state, trigger) pair and the moves it may take, in table order."""
    table: dict[tuple[OrderState, str], tuple[Move, ...]] = {}
    for move in LIFECYCLE:
        key = (move.source, move.trigger)
        table[key] = (*table.get(key, ()), move)
    return table


_LEGAL: Final = frozenset((str(m.source), m.trigger) for m in LIFECYCLE)

_GUARD_CALLBACKS: Final[Mapping[str, dict[str, str]]] = {
    FILL_COMPLETES: {"conditions": "_fill_completes"},
    FILL_LEAVES_OPEN: {"unless": "_fill_completes"},
    CANCEL_WAS_REQUESTED: {"conditions": "_cancel_was_requested"},
}


def _machine_config() -> dict[str, Any]:
    """The `transitions` configuration, built from LIFECYCLE (also used by diagram.py)."""
    transitions: list[dict[str, Any]] = []
    for move in LIFECYCLE:
        config: dict[str, Any] = {
            "trigger": move.trigger,
            "source": str(move.source),
            "dest": None if move.internal else str(move.dest),
            "before": "_commit",
        }
        if move.internal:
            config["after"] = "_notify"
        if move.guard is not None:
            config.update(_GUARD_CALLBACKS[move.guard])
        transitions.append(config)
    return {
        "states": [{"name": str(s), "on_enter": ["_notify"]} for s in OrderState],
        "transitions": transitions,
        "initial": str(PENDING),
        "auto_transitions": False,
        "model_attribute": "_state",
    }


MACHINE_CONFIG: Final = _machine_config()

# One machine for every order; orders are never added to it (see the module docstring).
MACHINE_NAME: Final = "orders.lifecycle"


def _run(machine: Machine, funcs: Iterable[Any], event_data: EventData) -> None:
    for func in funcs:
        machine.callback(func, event_data)


class _Transition(Transition):
    """A `transitions` Transition run by the same rules (prepare, conditions, before, exit,
    state change, enter, after), without the generic path's per-step debug lines and its
    passes over the callback lists this lifecycle leaves empty: a trigger is a hot path, and
    those cost about a third of it."""

    def execute(self, event_data: EventData) -> bool:
        machine = event_data.machine
        if self.prepare:
            _run(machine, self.prepare, event_data)
        for condition in self.conditions:
            if not condition.check(event_data):
                return False
        if machine.before_state_change:
            _run(machine, machine.before_state_change, event_data)
        _run(machine, self.before, event_data)
        if self.dest:  # None: an internal transition, the state does not change
            source = machine.get_state(self.source)
            if source.on_exit:
                _run(machine, source.on_exit, event_data)
            machine.set_state(self.dest, event_data.model)
            dest = machine.get_state(self.dest)
            event_data.state = dest
            _run(machine, dest.on_enter, event_data)
            if dest.final and machine.on_final:
                _run(machine, machine.on_final, event_data)
        _run(machine, self.after, event_data)
        if machine.after_state_change:
            _run(machine, machine.after_state_change, event_data)
        return True


class _Event(Event):
    """A `transitions` Event whose processing skips the machine-wide callback lists when they
    are empty (as they are here), with the same error and finalize handling."""

    def _trigger(self, event_data: EventData) -> bool:
        machine = self.machine
        event_data.state = machine.get_model_state(event_data.model)
        try:
            if self._is_valid_source(event_data.state):
                if machine.prepare_event:
                    _run(machine, machine.prepare_event, event_data)
                for transition in self.transitions[event_data.state.name]:
                    event_data.transition = transition
                    if transition.execute(event_data):
                        event_data.result = True
                        break
        except Exception as error:
            event_data.error = error
            if not machine.on_exception:
                raise
            _run(machine, machine.on_exception, event_data)
        finally:
            if machine.finalize_event:
                _run(machine, machine.finalize_event, event_data)
        return bool(event_data.result)


class _LifecycleMachine(Machine):
    """The shared machine, with the lean Transition and Event above (the extension points
    `transitions` provides for this)."""

    transition_cls = _Transition
    event_cls = _Event


MACHINE: Final = _LifecycleMachine(model=None, name=MACHINE_NAME, **MACHINE_CONFIG)


class _MachineLinesFilter(logging.Filter):
    """Drops the below-WARNING lines `transitions` writes about our machine.

    `transitions` logs about four INFO lines per event through its module logger, so a host
    whose root logger is at INFO would get most of its log from here. Each line starts with
    the machine's name and ": ", which is how ours are told from a host's own machines (they
    keep their lines). A filter on that logger is the only hook `transitions` offers.
    """

    prefix: Final = f"{MACHINE_NAME}: "

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (
            record.levelno < logging.WARNING
            and isinstance(args, tuple)
            and args[:1] == (self.prefix,)
        )


_TRANSITIONS_LOG: Final = logging.getLogger("transitions.core")
if not any(isinstance(f, _MachineLinesFilter) for f in _TRANSITIONS_LOG.filters):
    _TRANSITIONS_LOG.addFilter(_MachineLinesFilter())
_EVENTS: Final = {name: MACHINE.events[name] for name in TRIGGERS}


# -- hooks ------------------------------------------------------------------------------------


class OrderObserver(Protocol):
    """Told about every committed event it subscribed to; the order is already consistent."""

    def __call__(self, order: Order, event: LifecycleEvent, /) -> None: ...


HookErrorHandler = Callable[[OrderObserver, "Order", LifecycleEvent, Exception], None]


def _log_hook_error(
    observer: OrderObserver, order: Order, event: LifecycleEvent, error: Exception
) -> None:
    _log.error(
        "order hook %r failed on %s of order %s: %r",
        observer,
        event.trigger,
        order.client_order_id,
        error,
    )


def _observers(value: Iterable[OrderObserver]) -> tuple[OrderObserver, ...]:
    return tuple(value)


# Robinhood and PaperBroker reserve buying power when they accept an order and free it on a
# reject or cancel; fills move cash and positions.
# How an event ended in its state, which decides who hears of it (see OrderHooks).
STAYED: Final = 0  # an internal move: request_cancel, cancel_rejected
ENTERED: Final = 1  # the state was entered (or re-entered, by a partial fill)
STAYED_EXPOSED: Final = 2  # an internal move that changed booked fills: a late or corrected fill

_EXPOSURE_STATES: Final = frozenset({SUBMITTED, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED})


@attrs.frozen
class OrderHooks:
    """Who hears about an order's life: fixed, named lists, each called in order.

    * `on_event`: every event, internal ones included (the audit trail);
    * `on_exposure_change`: entering submitted (the broker reserves buying power when it
      accepts an order), partially_filled, filled, cancelled or rejected, a late fill and a
      corrected fill, i.e. whenever positions or buying power may have moved (the account
      caches);
    * `on_terminal`: entering filled, cancelled or rejected (the duplicate guard).

    For each event they run in that order, so the audit record exists before a guard is
    released; then every observer of `then` (another `OrderHooks`), which is how a manager
    runs its own observers before its caller's. An observer that raises is reported to
    `on_error` (this object's, for `then`'s observers too) and the others still run.
    """

    on_event: tuple[OrderObserver, ...] = attrs.field(default=(), converter=_observers)
    on_exposure_change: tuple[OrderObserver, ...] = attrs.field(default=(), converter=_observers)
    on_terminal: tuple[OrderObserver, ...] = attrs.field(default=(), converter=_observers)
    on_error: HookErrorHandler = _log_hook_error
    then: OrderHooks | None = attrs.field(default=None, kw_only=True)
    _routes: dict[tuple[str, int], tuple[OrderObserver, ...]] = attrs.field(
        init=False, eq=False, repr=False
    )

    @_routes.default
    def _build_routes(self) -> dict[tuple[str, int], tuple[OrderObserver, ...]]:
        routes: dict[tuple[str, int], tuple[OrderObserver, ...]] = {}
        for state in OrderState:
            for route in (STAYED, ENTERED, STAYED_EXPOSED):
                observers = self.on_event
                if route == STAYED_EXPOSED or (route == ENTERED and state in _EXPOSURE_STATES):
                    observers += self.on_exposure_change
                if route == ENTERED and state in TERMINAL_STATES:
                    observers += self.on_terminal
                if self.then is not None:
                    observers += self.then.observers_for(str(state), route)
                routes[(str(state), route)] = observers
        return routes

    def observers_for(self, state: str, route: int) -> tuple[OrderObserver, ...]:
        """The observers of an event that ended in `state` by `route` (`ENTERED` it,
        `STAYED` in it, or `STAYED_EXPOSED`: stayed, with booked fills changed)."""
        return self._routes[(state, route)]


NO_HOOKS: Final = OrderHooks()

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The UTC wall clock, the default `Order` clock."""
    return datetime.now(UTC)


# -- the order --------------------------------------------------------------------------------

_ZERO: Final = Decimal(0)
# Fills inferred from a cumulative quantity have ids of their own (see snapshot.py).
INFERRED_PREFIX: Final = "inferred:"
_STATE: Final = {str(s): s for s in OrderState}
_SIDE: Final = {str(s): s for s in Side}
_TIF: Final = {str(t): t for t in TimeInForce}
_REASONED: Final = frozenset({"cancel", "reject", "cancel_rejected"})

# A raw history entry: (trigger, source, dest, at, detail); detail is the execution tuple of a
# fill, the reason of cancel / reject / cancel_rejected, the broker order id of a submit.
_RawEvent = tuple[str, str, str, datetime, Any]
# A raw execution: (execution_id, quantity, price, timestamp).
_RawExecution = tuple[str, Decimal, Decimal, datetime | None]
# An order's fields: client order id, symbol, side, quantity, limit price, strategy, time in
# force, state, broker order id, filled quantity, cancel requested, reason, executions,
# history (see `Order`).
_Fields = tuple[
    str, str, str, Decimal, Decimal, str, str, str, str | None, Decimal, bool, str | None,
    tuple[_RawExecution, ...], tuple["_RawEvent", ...],
]  # fmt: skip
# A step of a snapshot plan: ("fill", (execution_id, quantity, price, timestamp)),
# ("submit", (broker_order_id,)), ("cancel", (reason,)) or ("reject", (reason,)).
PlannedStep = tuple[str, tuple[Any, ...]]


class _Step:
    """A prepared change, passed through the machine to the callbacks that commit and notify.

    `event` keeps the value the observers were given, so a caller that also wants the event
    (`apply_snapshot`) does not build it a second time.
    """

    __slots__ = ("event", "filled", "raw", "route")

    def __init__(self, raw: _RawEvent, filled: Decimal | None = None, route: int = ENTERED):
        self.raw = raw
        self.filled = filled
        self.route = route
        self.event: LifecycleEvent | None = None


_new = object.__new__
_set = object.__setattr__


def _event_from_raw(raw: _RawEvent) -> LifecycleEvent:
    """The public value of a history entry (its fields were validated when it was made)."""
    trigger, source, dest, at, detail = raw
    event = _new(LifecycleEvent)
    _set(event, "trigger", trigger)
    _set(event, "source", _STATE[source])
    _set(event, "dest", _STATE[dest])
    _set(event, "at", at)
    _set(event, "execution", _execution_from_raw(detail) if trigger == "fill" else None)
    _set(event, "reason", detail if trigger in _REASONED else None)
    _set(event, "broker_order_id", detail if trigger == "submit" else None)
    _set(
        event,
        "executions",
        tuple(_execution_from_raw(e) for e in detail) if trigger == "correct_fill" else (),
    )
    return event


def _corrected(
    executions: tuple[_RawExecution, ...], replacements: tuple[_RawExecution, ...]
) -> tuple[_RawExecution, ...]:
    """`executions` with the broker's `replacements` where the first inferred fill was and
    every inferred fill gone."""
    result: list[_RawExecution] = []
    for execution in executions:
        if execution[0].startswith(INFERRED_PREFIX):
            result.extend(replacements)
            replacements = ()
        else:
            result.append(execution)
    return tuple(result)


def _execution_from_raw(raw: _RawExecution) -> Execution:
    return trusted_execution(*raw)


class Order:
    """One limit order, from intent to fill, cancel or rejection.

    Fields are read-only; the only way to change an order is one of its triggers, each a
    `transitions` event. An illegal trigger raises `IllegalTransition` and changes nothing.
    """

    # Everything an order holds, in one tuple of plain values (strings, Decimals, datetimes
    # and tuples of them) that is replaced whole by each trigger. The garbage collector
    # untracks such a tuple, so it walks one object per order, not six: with 100,000 live
    # orders that is the difference between a 55 ms and a 20 ms full collection.
    __slots__ = ("_clock", "_hooks", "_t")

    _t: _Fields
    _hooks: OrderHooks
    _clock: Clock

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
        side_value = _SIDE.get(side) if type(side) is str else None
        if side_value is None:
            side_value = coerce_enum(Side, side, "side")
        tif = _TIF.get(time_in_force) if type(time_in_force) is str else None
        if tif is None:
            tif = coerce_enum(TimeInForce, time_in_force, "time_in_force")
        if client_order_id is None:
            client_order_id = new_uuid4()
        else:
            validate_name(client_order_id, "client_order_id")
        if strategy != "default":
            validate_name(strategy, "strategy")
        if clock is not None and not callable(clock):
            raise InvalidOrderError("clock", clock, "must be a callable returning a UTC datetime")
        self._t = (
            client_order_id,
            validate_symbol(symbol),
            side_value.value,
            positive_decimal(quantity, "quantity"),
            positive_decimal(limit_price, "limit_price"),
            strategy,
            tif.value,
            "pending",
            None,
            _ZERO,
            False,
            None,
            (),
            (),
        )
        self._hooks = NO_HOOKS if hooks is None else hooks
        self._clock = utc_now if clock is None else clock

    @property
    def _state(self) -> str:
        """The state's name, where the shared machine reads and writes it."""
        return self._t[7]

    @_state.setter
    def _state(self, value: str) -> None:
        t = self._t
        if t[7] != value:  # `_commit` has set it already on every path the machine takes
            self._t = (*t[:7], value, *t[8:])

    # -- read-only view -----------------------------------------------------------------------

    @property
    def state(self) -> OrderState:
        return _STATE[self._t[7]]

    @property
    def client_order_id(self) -> str:
        return self._t[0]

    @property
    def broker_order_id(self) -> str | None:
        return self._t[8]

    @property
    def symbol(self) -> str:
        return self._t[1]

    @property
    def side(self) -> Side:
        return _SIDE[self._t[2]]

    @property
    def quantity(self) -> Decimal:
        return self._t[3]

    @property
    def limit_price(self) -> Decimal:
        return self._t[4]

    @property
    def strategy(self) -> str:
        return self._t[5]

    @property
    def time_in_force(self) -> TimeInForce:
        return _TIF[self._t[6]]

    @property
    def filled_quantity(self) -> Decimal:
        return self._t[9]

    @property
    def leaves_quantity(self) -> Decimal:
        """Quantity still working at the broker: 0 once the order is terminal."""
        if self._t[7] in _TERMINAL_NAMES:
            return _ZERO
        return self._t[3] - self._t[9]

    @property
    def average_fill_price(self) -> Decimal | None:
        """Volume-weighted average price of the executions; None before the first."""
        if not self._t[12]:
            return None
        return self.filled_notional / self._t[9]

    @property
    def filled_notional(self) -> Decimal:
        """The exact sum of quantity times price over the executions."""
        return sum((q * p for _, q, p, _ in self._t[12]), _ZERO)

    @property
    def inferred_notional(self) -> Decimal:
        """Quantity times price over the fills inferred from cumulative increases."""
        return sum((q * p for i, q, p, _ in self._t[12] if i.startswith(INFERRED_PREFIX)), _ZERO)

    @property
    def inferred_quantity(self) -> Decimal:
        """Quantity booked from cumulative increases rather than listed executions."""
        return sum((q for i, q, _, _ in self._t[12] if i.startswith(INFERRED_PREFIX)), _ZERO)

    @property
    def executions(self) -> tuple[Execution, ...]:
        return tuple(_execution_from_raw(raw) for raw in self._t[12])

    @property
    def cancel_requested(self) -> bool:
        return self._t[10]

    @property
    def is_terminal(self) -> bool:
        return self._t[7] in _TERMINAL_NAMES

    @property
    def history(self) -> tuple[LifecycleEvent, ...]:
        return tuple(_event_from_raw(raw) for raw in self._t[13])

    @property
    def first_event_at(self) -> datetime | None:
        """When the order's first event happened; None before any."""
        return self._t[13][0][3] if self._t[13] else None

    @property
    def last_event_at(self) -> datetime | None:
        """When the order's latest event happened; None before any."""
        return self._t[13][-1][3] if self._t[13] else None

    @property
    def event_count(self) -> int:
        """How many events the history holds (cheaper than len(order.history))."""
        return len(self._t[13])

    def events_since(self, start: int) -> tuple[LifecycleEvent, ...]:
        """The history from position `start` on."""
        return tuple(_event_from_raw(raw) for raw in self._t[13][start:])

    @property
    def reason(self) -> str | None:
        """The last reject or cancel reason, or None."""
        return self._t[11]

    @property
    def hooks(self) -> OrderHooks:
        return self._hooks

    def attach_hooks(self, hooks: OrderHooks, *, clock: Clock | None = None) -> None:
        """Route this order's future events to `hooks`, timed by `clock` when given (used when
        orders are rebuilt from a journal and join a manager)."""
        self._hooks = hooks
        if clock is not None:
            self._clock = clock

    def _ledger(self) -> tuple[set[str], Decimal]:
        """The booked execution ids and the quantity booked by inference, in one pass (for
        `apply_snapshot`, which must not book an execution twice)."""
        ids: set[str] = set()
        inferred = _ZERO
        for execution_id, quantity, _, _ in self._t[12]:
            ids.add(execution_id)
            if execution_id.startswith(INFERRED_PREFIX):
                inferred += quantity
        return ids, inferred

    def has_execution(self, execution_id: str) -> bool:
        return any(raw[0] == execution_id for raw in self._t[12])

    def __repr__(self) -> str:
        return (
            f"Order({self.client_order_id} {self._t[2]} {self._t[3]} {self._t[1]} "
            f"@ {self._t[4]}: {self._t[7]}, filled {self._t[9]})"
        )

    # -- triggers -----------------------------------------------------------------------------

    def submit(self, broker_order_id: str | None = None, *, at: datetime | None = None) -> bool:
        """The broker acknowledged the order (under `broker_order_id`, when known)."""
        if broker_order_id is not None and (
            not isinstance(broker_order_id, str) or not broker_order_id
        ):
            raise InvalidOrderError(
                "broker_order_id", broker_order_id, "must be a non-empty string or None"
            )
        return self._fire(self._submit_step(broker_order_id, at))

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
        raw: list[_RawExecution] = []
        for execution in executions:
            if not isinstance(execution, Execution):
                raise InvalidOrderError("executions", execution, "must hold Execution values")
            raw.append(
                (execution.execution_id, execution.quantity, execution.price, execution.timestamp)
            )
        step = self._correct_step(tuple(raw), at)
        return False if step is None else self._fire(step)

    def request_cancel(self, *, at: datetime | None = None) -> bool:
        """Note that a cancel was asked of the broker; False if one already was."""
        self._check_legal("request_cancel")
        if self._t[10]:
            return False
        return self._fire(_Step(self._raw("request_cancel", self._t[7], at, None), None, STAYED))

    def cancel_rejected(self, reason: str = "", *, at: datetime | None = None) -> bool:
        """The broker refused the cancel; the order works on. False on a filled or cancelled
        order (the cancel lost a race, or already landed)."""
        if self._t[7] in ("filled", "cancelled"):
            return False
        if not self._t[10]:
            raise IllegalTransition(self._t[0], self._t[7], "cancel_rejected")
        self._check_legal("cancel_rejected")
        return self._fire(
            _Step(self._raw("cancel_rejected", self._t[7], at, reason or None), None, STAYED)
        )

    def cancel(self, reason: str = "", *, at: datetime | None = None) -> bool:
        """The broker confirmed the cancel; fills already booked are kept."""
        return self._fire(self._cancel_step(reason, at))

    def reject(self, reason: str, *, at: datetime | None = None) -> bool:
        """The broker refused the order."""
        return self._fire(self._reject_step(reason, at))

    # -- prepared steps: checked, not yet fired -------------------------------------------------

    def _submit_step(self, broker_order_id: str | None, at: datetime | None) -> _Step:
        self._check_legal("submit")
        return _Step(self._raw("submit", "submitted", at, broker_order_id))

    def _cancel_step(self, reason: str, at: datetime | None) -> _Step:
        self._check_legal("cancel")
        return _Step(self._raw("cancel", "cancelled", at, reason or None))

    def _reject_step(self, reason: str, at: datetime | None) -> _Step:
        self._check_legal("reject")
        return _Step(self._raw("reject", "rejected", at, reason or None))

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
        self._check_legal("fill")
        filled = qty if self._t[9] is _ZERO else self._t[9] + qty
        total = self._t[3]
        if filled > total:
            raise OverfillError(self._t[0], total, self._t[9], qty)
        state = self._t[7]
        if state == "cancelled":
            dest, route = state, STAYED_EXPOSED  # a late fill
        else:
            dest, route = ("filled" if filled == total else "partially_filled"), ENTERED
        execution: _RawExecution = (execution_id, qty, px, timestamp)
        return _Step(self._raw("fill", dest, at, execution), filled, route)

    def _correct_step(
        self, executions: tuple[_RawExecution, ...], at: datetime | None
    ) -> _Step | None:
        """Put `executions` in place of every inferred fill; None when there is none left.

        Checked before anything changes: the quantities must add up to exactly what was
        inferred (a correction moves prices, never quantities) and no id may be booked yet.
        """
        self._check_legal("correct_fill")
        inferred = sum((q for i, q, _, _ in self._t[12] if i.startswith(INFERRED_PREFIX)), _ZERO)
        if inferred == 0:
            return None
        total = sum((q for _, q, _, _ in executions), _ZERO)
        ids = [e[0] for e in executions]
        if total != inferred or len(set(ids)) != len(ids):
            raise InvalidOrderError(
                "executions",
                total,
                f"must be distinct executions totalling the inferred quantity {inferred}",
            )
        if any(i.startswith(INFERRED_PREFIX) or self.has_execution(i) for i in ids):
            raise InvalidOrderError(
                "executions", ids, "must be the broker's own executions, not booked yet"
            )
        raw = self._raw("correct_fill", self._t[7], at, executions)
        return _Step(raw, None, STAYED_EXPOSED)

    def _fire_planned(
        self, plan: Iterable[PlannedStep], at: datetime | None
    ) -> tuple[LifecycleEvent, ...]:
        """Fire a plan of already validated steps (`apply_snapshot`'s); return their events.

        Each step is checked again as it is prepared, so a plan cannot take the order anywhere
        its own triggers could not.
        """
        events: list[LifecycleEvent] = []
        for trigger, args in plan:
            if trigger == "fill":
                execution_id, quantity, price, timestamp = args
                step = self._fill_step(execution_id, quantity, price, timestamp, at)
                if step is None:
                    continue
            elif trigger == "correct_fill":
                step = self._correct_step(args[0], at)
                if step is None:
                    continue
            elif trigger == "submit":
                step = self._submit_step(args[0], at)
            elif trigger == "cancel":
                step = self._cancel_step(args[0], at)
            elif trigger == "reject":
                step = self._reject_step(args[0], at)
            else:
                raise IllegalTransition(self._t[0], self._t[7], trigger)
            self._fire(step)
            event = step.event
            events.append(_event_from_raw(step.raw) if event is None else event)
        return tuple(events)

    def restore_raw(self, trigger: str, dest: str, at: datetime, detail: Any) -> None:
        """Re-apply one event read back from a journal, without hooks and without the machine.

        Replay must be fast (a journal holds millions of events) and must not notify anyone:
        the event already happened. `detail` is what the history keeps: an (id, quantity,
        price, timestamp) tuple for a fill, a tuple of them for a correct_fill, the broker
        order id for a submit, the reason for the others.
        """
        state = self._t[7]
        if (state, trigger) not in _LEGAL or dest not in _STATE:
            raise IllegalTransition(self._t[0], state, trigger)
        filled = None
        if trigger == "fill":
            filled = self._t[9] + detail[1]
            if filled > self._t[3]:
                raise OverfillError(self._t[0], self._t[3], self._t[9], detail[1])
        self._commit(_Step((trigger, state, dest, at, detail), filled))

    # -- machinery ----------------------------------------------------------------------------

    def _check_legal(self, trigger: str) -> None:
        if (self._t[7], trigger) not in _LEGAL:
            raise IllegalTransition(self._t[0], self._t[7], trigger)

    def _raw(self, trigger: str, dest: str, at: datetime | None, detail: Any) -> _RawEvent:
        if at is None:
            at = self._clock()
        elif not isinstance(at, datetime) or at.tzinfo is None:
            raise InvalidOrderError("at", at, "must be a timezone-aware datetime (UTC)")
        return (trigger, self._t[7], dest, at, detail)

    def _fire(self, step: _Step) -> bool:
        result: bool = _EVENTS[step.raw[0]].trigger(self, step)
        return result

    # Callbacks named in MACHINE_CONFIG; `transitions` resolves them on the triggering order.

    def _fill_completes(self, step: _Step) -> bool:
        return step.raw[2] == "filled"

    def _cancel_was_requested(self, step: _Step) -> bool:
        return self._t[10]

    def _commit(self, step: _Step) -> None:
        """The machine's `before` callback: the prepared change, made in one assignment (the
        state included, so `transitions` setting `_state` afterwards changes nothing)."""
        raw = step.raw
        trigger = raw[0]
        cid, symbol, side, qty, px, strategy, tif, _, broker, filled, cancel, reason, ex, h = (
            self._t
        )
        if trigger == "fill":
            filled = step.filled  # type: ignore[assignment]
            ex += (raw[4],)
            if raw[2] == "filled":
                cancel = False
        elif trigger == "correct_fill":
            ex = _corrected(ex, raw[4])
        elif trigger == "submit":
            if raw[4] is not None:
                broker = raw[4]
        elif trigger == "request_cancel":
            cancel = True
        elif trigger == "cancel_rejected":
            cancel = False
        else:  # cancel, reject: the order is done and no cancel is pending any more
            cancel = False
            reason = raw[4]
        self._t = (
            cid, symbol, side, qty, px, strategy, tif, raw[2], broker, filled, cancel, reason,
            ex, (*h, raw),
        )  # fmt: skip

    def _notify(self, step: _Step) -> None:
        observers = self._hooks.observers_for(step.raw[2], step.route)
        if not observers:
            return
        event = step.event = _event_from_raw(step.raw)
        for observer in observers:
            try:
                observer(self, event)
            except Exception as error:  # one failing observer must not stop the rest
                try:
                    self._hooks.on_error(observer, self, event, error)
                except Exception:  # a broken error handler must not break the order
                    _log.exception("order hook error handler failed")


_TERMINAL_NAMES: Final = frozenset(str(s) for s in TERMINAL_STATES)
