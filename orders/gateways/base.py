"""The broker edge as a protocol, and the three ways a submission can end.

A submission is never just "ok or exception": a timeout after the broker accepted an order is
neither. `Unknown` says the order may exist; the manager then resolves it by client order id
instead of resending blindly.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from orders.model import BrokerOrder

if TYPE_CHECKING:
    from orders.lifecycle import Order

__all__ = [
    "Accepted",
    "AmbiguousAttempt",
    "OrderGateway",
    "Rejected",
    "ReportsProblems",
    "SubmitOutcome",
    "Unknown",
]


@attrs.frozen
class Accepted:
    """The broker created the order; `snapshot` is its view right after creation."""

    snapshot: BrokerOrder


@attrs.frozen
class Rejected:
    """The broker definitively refused the order; `reason` is its answer, verbatim."""

    reason: str


@attrs.frozen
class Unknown:
    """The outcome is not known (timeout, connection loss, 5xx, throttling): it may exist."""

    error: str


SubmitOutcome = Accepted | Rejected | Unknown


class AmbiguousAttempt(Exception):
    """One attempt whose effect is unknown (no answer, a 5xx, throttled): it may have reached
    the broker, so it may be tried again only if repeating it cannot act twice.

    `retry_after`: the seconds the broker asked to wait before the next attempt, if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class OrderGateway(Protocol):
    """What the manager needs from a broker; implementations translate, they decide nothing."""

    def submit_limit(self, order: Order) -> SubmitOutcome:
        """Send `order` as a limit order with its client_order_id as the idempotency key."""
        ...

    def cancel(self, broker_order_id: str) -> None:
        """Ask the broker to cancel; the outcome arrives later as a snapshot."""
        ...

    def fetch(self, broker_order_id: str) -> BrokerOrder | None:
        """The broker's current view of one order; None when the broker says it does not exist."""
        ...

    def find_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """The order the broker holds under this client order id, if any."""
        ...

    def updated_since(self, when: datetime) -> list[BrokerOrder]:
        """Every order the broker updated at or after `when`."""
        ...


@runtime_checkable
class ReportsProblems(Protocol):
    """A gateway that skips what it cannot read (one bad order in a listing) and says so.

    The manager drains these after each listing and puts them in its sync report, so a
    skipped broker order is never silent.
    """

    def drain_problems(self) -> list[str]:
        """Problems since the last call, oldest first."""
        ...
