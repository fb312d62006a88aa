"""Who hears about an order's life: `OrderHooks`, its observers and their routing.

Kept apart from `Order` because the routing is decided once per set of hooks, not per event:
an order asks its hooks for the observers of (state, route) and gets a ready tuple.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs

from orders._machine import ENTERED, STAYED, STAYED_EXPOSED
from orders.model import TERMINAL_STATES, LifecycleEvent, OrderState

if TYPE_CHECKING:
    from orders.lifecycle import Order

__all__ = ["NO_HOOKS", "HookErrorHandler", "OrderHooks", "OrderObserver"]

_log = logging.getLogger("orders.lifecycle")


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
    # Values are named by type, not repr: a bot's own object may print what it holds.
    if callable(value):
        raise TypeError(
            f"one observer (of type {type(value).__name__}) was given where a list of them "
            "goes; pass [observer]"
        )
    if not isinstance(value, Iterable):
        raise TypeError(
            f"a value of type {type(value).__name__} was given where a list of observers "
            "(callables (order, event) -> None) goes"
        )
    return tuple(value)


def _callables(_hooks: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]) -> None:
    """Refuse, when the hooks are made, an observer that could not be called: the first event
    would report it as a failing observer of every order instead."""
    for observer in value:
        if not callable(observer):
            raise TypeError(
                f"{attribute.name} holds a value of type {type(observer).__name__}, which is not "
                "callable; "
                "an observer is a callable (order, event) -> None"
            )


def _then(value: OrderHooks | None) -> OrderHooks | None:
    """A converter rather than a validator: the routes are built from `then` before any
    validator would run."""
    if value is not None and not isinstance(value, OrderHooks):
        raise TypeError(f"then (of type {type(value).__name__}) is not an OrderHooks (or None)")
    return value


# Robinhood and PaperBroker reserve buying power when they accept an order and free it on a
# reject or cancel; fills move cash and positions.
_EXPOSURE_STATES: Final = frozenset(OrderState) - {OrderState.PENDING}


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

    on_event: tuple[OrderObserver, ...] = attrs.field(
        default=(), converter=_observers, validator=_callables
    )
    on_exposure_change: tuple[OrderObserver, ...] = attrs.field(
        default=(), converter=_observers, validator=_callables
    )
    on_terminal: tuple[OrderObserver, ...] = attrs.field(
        default=(), converter=_observers, validator=_callables
    )
    on_error: HookErrorHandler = attrs.field(
        default=_log_hook_error, validator=attrs.validators.is_callable()
    )
    then: OrderHooks | None = attrs.field(default=None, kw_only=True, converter=_then)
    _routes: dict[tuple[str, int], tuple[OrderObserver, ...]] = attrs.field(
        init=False, eq=False, repr=False
    )

    @_routes.default
    def _build_routes(self) -> dict[tuple[str, int], tuple[OrderObserver, ...]]:
        return {
            (state.value, route): self._route(state, route)
            for state in OrderState
            for route in (STAYED, ENTERED, STAYED_EXPOSED)
        }

    def _route(self, state: OrderState, route: int) -> tuple[OrderObserver, ...]:
        observers = self.on_event
        if route == STAYED_EXPOSED or (route == ENTERED and state in _EXPOSURE_STATES):
            observers += self.on_exposure_change
        if route == ENTERED and state in TERMINAL_STATES:
            observers += self.on_terminal
        if self.then is not None:
            observers += self.then.observers_for(state.value, route)
        return observers

    def observers_for(self, state: str, route: int) -> tuple[OrderObserver, ...]:
        """The observers of an event that ended in `state` by `route` (`ENTERED` it,
        `STAYED` in it, or `STAYED_EXPOSED`: stayed, with booked fills changed)."""
        return self._routes[(state, route)]


NO_HOOKS: Final = OrderHooks()
