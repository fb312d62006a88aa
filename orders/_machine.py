"""The lifecycle as data, and the one shared `transitions` machine built from it.

`LIFECYCLE` is the only place a move's destination is written. The machine, the diagram,
docs/lifecycle.md, the tests' expectations and `Order`'s own steps (through `STEP_TARGETS`)
are all derived from it, so changing a row changes everything that acts on it.

One module-level `Machine(model=None)` drives every order, and orders are never registered
with it (`add_model` is O(N) and costs ~5 KB per order): each trigger method on `Order` fires
the machine's event for that one order, so a trigger costs what `transitions` itself costs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs
from transitions import Event, EventData, Machine, Transition
from transitions.core import Condition

from orders.model import OrderState

__all__ = [
    "CANCEL_WAS_REQUESTED",
    "ENTERED",
    "FILL_COMPLETES",
    "FILL_LEAVES_OPEN",
    "INITIAL_STATE",
    "LEGAL_DESTINATIONS",
    "LIFECYCLE",
    "MACHINE",
    "MACHINE_CONFIG",
    "MACHINE_EVENTS",
    "MACHINE_NAME",
    "STAYED",
    "STAYED_EXPOSED",
    "STEP_TARGETS",
    "TRIGGERS",
    "Move",
    "StepTarget",
]


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

# Where every order starts.
INITIAL_STATE: Final = OrderState.PENDING

# The lifecycle, declared once.
LIFECYCLE: Final[tuple[Move, ...]] = (
    Move(OrderState.PENDING, "submit", OrderState.SUBMITTED),
    Move(OrderState.PENDING, "reject", OrderState.REJECTED),
    Move(OrderState.SUBMITTED, "reject", OrderState.REJECTED),
    Move(OrderState.SUBMITTED, "fill", OrderState.PARTIALLY_FILLED, guard=FILL_LEAVES_OPEN),
    Move(OrderState.SUBMITTED, "fill", OrderState.FILLED, guard=FILL_COMPLETES),
    Move(OrderState.PARTIALLY_FILLED, "fill", OrderState.PARTIALLY_FILLED, guard=FILL_LEAVES_OPEN),
    Move(OrderState.PARTIALLY_FILLED, "fill", OrderState.FILLED, guard=FILL_COMPLETES),
    # A late fill: brokers report executions that raced the cancel; book them, stay cancelled.
    Move(OrderState.CANCELLED, "fill", OrderState.CANCELLED, internal=True),
    Move(OrderState.PENDING, "request_cancel", OrderState.PENDING, internal=True),
    Move(OrderState.SUBMITTED, "request_cancel", OrderState.SUBMITTED, internal=True),
    Move(OrderState.PARTIALLY_FILLED, "request_cancel", OrderState.PARTIALLY_FILLED, internal=True),
    Move(
        OrderState.PENDING,
        "cancel_rejected",
        OrderState.PENDING,
        internal=True,
        guard=CANCEL_WAS_REQUESTED,
    ),
    Move(
        OrderState.SUBMITTED,
        "cancel_rejected",
        OrderState.SUBMITTED,
        internal=True,
        guard=CANCEL_WAS_REQUESTED,
    ),
    Move(
        OrderState.PARTIALLY_FILLED,
        "cancel_rejected",
        OrderState.PARTIALLY_FILLED,
        internal=True,
        guard=CANCEL_WAS_REQUESTED,
    ),
    Move(OrderState.PENDING, "cancel", OrderState.CANCELLED),
    Move(OrderState.SUBMITTED, "cancel", OrderState.CANCELLED),
    Move(OrderState.PARTIALLY_FILLED, "cancel", OrderState.CANCELLED),
    # A fill inferred from a cumulative quantity is provisional (its price comes from the
    # broker's rounded average); the broker's executions, once listed, take its place.
    Move(OrderState.PARTIALLY_FILLED, "correct_fill", OrderState.PARTIALLY_FILLED, internal=True),
    Move(OrderState.FILLED, "correct_fill", OrderState.FILLED, internal=True),
    Move(OrderState.CANCELLED, "correct_fill", OrderState.CANCELLED, internal=True),
)

TRIGGERS: Final[tuple[str, ...]] = tuple(dict.fromkeys(m.trigger for m in LIFECYCLE))

# How an event ended in its state, which decides who hears of it (see OrderHooks).
STAYED: Final = 0  # an internal move: request_cancel, cancel_rejected
ENTERED: Final = 1  # the state was entered (or re-entered, by a partial fill)
STAYED_EXPOSED: Final = 2  # an internal move that changed booked fills: a late or corrected fill

# The triggers whose internal moves still change the booked fills.
_BOOKS_FILLS: Final = frozenset({"fill", "correct_fill"})


@attrs.frozen
class StepTarget:
    """Where a move leaves an order, as `Order` keeps it: the destination's name (a plain
    string, as the order's own fields hold it) and who hears of the event (`route`)."""

    dest: str
    route: int


def _target(move: Move) -> StepTarget:
    if not move.internal:
        return StepTarget(move.dest.value, ENTERED)
    return StepTarget(move.dest.value, STAYED_EXPOSED if move.trigger in _BOOKS_FILLS else STAYED)


def _step_targets() -> dict[tuple[str, str, str | None], StepTarget]:
    """Every (source, trigger, guard) a step may ask about, each guard (None included)
    resolved once here: the move with that guard, else the source's unguarded move by that
    trigger (a fill of a cancelled order takes the late-fill move whatever its quantity)."""
    exact = {(m.source.value, m.trigger, m.guard): _target(m) for m in LIFECYCLE}
    guards = {m.guard for m in LIFECYCLE} | {None}
    targets = {}
    for source, trigger in {(m.source.value, m.trigger) for m in LIFECYCLE}:
        for guard in guards:
            target = exact.get((source, trigger, guard)) or exact.get((source, trigger, None))
            if target is not None:
                targets[source, trigger, guard] = target
    return targets


# (source, trigger, guard) -> target, for the steps `Order` prepares before it fires them.
# Derived from LIFECYCLE, never written by hand.
STEP_TARGETS: Final[Mapping[tuple[str, str, str | None], StepTarget]] = _step_targets()

# (source, trigger) -> every destination the table allows: what a journal replay may claim.
LEGAL_DESTINATIONS: Final[Mapping[tuple[str, str], frozenset[str]]] = {
    key: frozenset(m.dest.value for m in LIFECYCLE if (m.source.value, m.trigger) == key)
    for key in {(m.source.value, m.trigger) for m in LIFECYCLE}
}

_GUARD_CALLBACKS: Final[Mapping[str, dict[str, str]]] = {
    FILL_COMPLETES: {"conditions": "_fill_completes"},
    FILL_LEAVES_OPEN: {"unless": "_fill_completes"},
    CANCEL_WAS_REQUESTED: {"conditions": "_cancel_was_requested"},
}


def _transition_config(move: Move) -> dict[str, Any]:
    config: dict[str, Any] = {
        "trigger": move.trigger,
        "source": move.source.value,
        "dest": None if move.internal else move.dest.value,
        "before": "_commit",
    }
    if move.internal:
        config["after"] = "_notify"
    if move.guard is not None:
        config.update(_GUARD_CALLBACKS[move.guard])
    return config


def _machine_config() -> dict[str, Any]:
    """The `transitions` configuration, built from LIFECYCLE (also used by diagram.py)."""
    return {
        "states": [{"name": s.value, "on_enter": ["_notify"]} for s in OrderState],
        "transitions": [_transition_config(move) for move in LIFECYCLE],
        "initial": INITIAL_STATE.value,
        "auto_transitions": False,
        "model_attribute": "_state",
    }


MACHINE_CONFIG: Final = _machine_config()

# One machine for every order; orders are never added to it (see the module docstring).
MACHINE_NAME: Final = "orders.lifecycle"


def _run(machine: Machine, funcs: Iterable[Any], event_data: EventData) -> None:
    """Call each callback as `Machine.callback` would. A name is looked up on the model
    directly: every callback of this lifecycle is one of `Order`'s methods, and the generic
    resolution (import paths, properties) is a third of a callback's cost."""
    if machine.send_event:
        for func in funcs:
            machine.callback(func, event_data)
        return
    model, args, kwargs = event_data.model, event_data.args, event_data.kwargs
    for func in funcs:
        if type(func) is str:
            getattr(model, func)(*args, **kwargs)
        else:
            machine.callback(func, event_data)


def _holds(condition: Condition, machine: Machine, event_data: EventData) -> bool:
    """`Condition.check`, with a method name looked up on the model as in `_run`."""
    func = condition.func
    if type(func) is not str or machine.send_event:
        return bool(condition.check(event_data))
    return bool(
        getattr(event_data.model, func)(*event_data.args, **event_data.kwargs) == condition.target
    )


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
            if not _holds(condition, machine, event_data):
                return False
        if machine.before_state_change:
            _run(machine, machine.before_state_change, event_data)
        _run(machine, self.before, event_data)
        dest = self.dest
        if dest:  # None: an internal transition, the state does not change
            self._enter(machine, event_data, dest)
        if self.after:
            _run(machine, self.after, event_data)
        if machine.after_state_change:
            _run(machine, machine.after_state_change, event_data)
        return True

    def _enter(self, machine: Machine, event_data: EventData, dest_name: str) -> None:
        """Exit the source, set the destination, enter it (and the `on_final` callbacks).

        States are read from `machine.states` by name, as `get_state` does once it has
        checked that its argument is not an Enum (these names are the table's strings)."""
        states = machine.states
        source = states[self.source]
        if source.on_exit:
            _run(machine, source.on_exit, event_data)
        dest = states[dest_name]
        setattr(event_data.model, machine.model_attribute, dest.value)
        event_data.state = dest
        _run(machine, dest.on_enter, event_data)
        if dest.final and machine.on_final:
            _run(machine, machine.on_final, event_data)


class _Event(Event):
    """A `transitions` Event whose processing skips the machine-wide callback lists when they
    are empty (as they are here), with the same error and finalize handling."""

    def trigger(self, model: Any, *args: Any, **kwargs: Any) -> bool:
        """`Event.trigger`, run at once when the machine has no queue (this lifecycle's has
        none): the generic path wraps every event in a partial for `Machine._process`, whose
        only work without a queue is to call it."""
        machine = self.machine
        if machine.has_queue:
            return bool(super().trigger(model, *args, **kwargs))
        return self._trigger(EventData(None, self, machine, model, args=args, kwargs=kwargs))

    def _trigger(self, event_data: EventData) -> bool:
        machine = self.machine
        name = getattr(event_data.model, machine.model_attribute)
        event_data.state = machine.states[name]
        try:
            # The source is valid when the event has transitions from it; otherwise
            # `_is_valid_source` raises or, for ignored triggers, logs and refuses.
            if name in self.transitions or self._is_valid_source(event_data.state):
                if machine.prepare_event:
                    _run(machine, machine.prepare_event, event_data)
                # The first of the source state's transitions whose conditions hold is taken.
                for transition in self.transitions[name]:
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
MACHINE_EVENTS: Final[Mapping[str, Event]] = {name: MACHINE.events[name] for name in TRIGGERS}


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
