"""Every error `orders` raises, and whose fault it is.

All of them subclass `OrderError`, so a caller can catch the family with one clause::

    OrderError                      anything this library refuses or cannot do
    ├── InvalidOrderError           bad caller input: symbol, quantity, price, float money
    ├── IllegalTransition           the caller fired a trigger the order's state does not allow
    ├── OverfillError               a fill would take the order past its quantity
    ├── UnsupportedOrderTypeError   market / stop / stop-limit: only limit orders are supported
    ├── ConfigError                 a configuration value is unknown or bad (names the key path)
    ├── SafetyViolation             a safety check refused the order (lists every reason)
    ├── AuthenticationError         no usable broker session: log in first
    │   ├── MissingCredentialsError no username or password, and no prompting allowed
    │   └── UnsafeSessionCacheError the session cache is readable by others or not a file
    ├── BrokerError                 the broker said something impossible or unreadable
    ├── JournalError                the audit journal cannot be read back (names file and line)
    └── UnknownOrderError           no tracked order has that client order id

Caller mistakes (`InvalidOrderError`, `IllegalTransition`, `UnsupportedOrderTypeError`,
`ConfigError`) are raised before anything changes or is sent. Broker-side surprises
(`BrokerError`) describe the broker's report so it can be logged and skipped without poisoning
the order. Messages never carry secrets.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path


class OrderError(Exception):
    """Base class of every error raised by `orders`."""


class InvalidOrderError(OrderError, ValueError):
    """A symbol, quantity, price or timestamp that cannot describe a real order."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={value!r}: {problem}")


class IllegalTransition(OrderError):
    """A trigger that the order's current state does not allow; the order is unchanged."""

    def __init__(self, order_id: str, state: str, trigger: str) -> None:
        self.order_id = order_id
        self.state = state
        self.trigger = trigger
        super().__init__(
            f"order {order_id} is {state}: trigger {trigger!r} is not allowed from {state}; "
            "the order was left unchanged (see docs/lifecycle.md for the legal moves)"
        )


class OverfillError(OrderError):
    """A fill that would take the filled quantity past the order quantity; nothing was booked."""

    def __init__(
        self, order_id: str, quantity: Decimal, filled: Decimal, attempted: Decimal
    ) -> None:
        self.order_id = order_id
        self.quantity = quantity
        self.filled = filled
        self.attempted = attempted
        super().__init__(
            f"order {order_id}: a fill of {attempted} on top of {filled} already filled would "
            f"exceed the order quantity {quantity}; the fill was not booked; check the broker's "
            "executions for a correction or a duplicate under a new id"
        )


class UnsupportedOrderTypeError(OrderError):
    """Only limit orders are supported; market and stop orders are refused before any I/O."""

    def __init__(self, order_type: str) -> None:
        self.order_type = order_type
        super().__init__(
            f"order type {order_type!r} is not supported: use a limit order "
            "(order_type='limit'); its price comes from the configured offset"
        )


class ConfigError(OrderError):
    """A configuration key that is unknown or holds a bad value."""

    def __init__(self, key_path: str, problem: str) -> None:
        self.key_path = key_path
        self.problem = problem
        super().__init__(f"config {key_path}: {problem}")


class SafetyViolation(OrderError):
    """A safety check refused an order before anything was sent."""

    def __init__(self, reasons: Iterable[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("order refused by safety checks: " + "; ".join(self.reasons))


class AuthenticationError(OrderError):
    """There is no authenticated broker session; log in (RobinhoodAuth.login) and retry."""


class UnsafeSessionCacheError(AuthenticationError):
    """The session cache can be read by others, is not ours, or is not a plain file; it was
    not loaded. `advice` replaces the default next step (chmod or delete) where that is not
    the cure."""

    def __init__(self, path: Path, problem: str, *, advice: str | None = None) -> None:
        self.path = path
        if advice is None:
            advice = (
                f"it holds a live Robinhood token and was not loaded. If the file is yours run "
                f"`chmod 600 {path}`, otherwise delete it; then log in again (consider the "
                "token leaked if others could read it)"
            )
        super().__init__(f"session cache {path} {problem}; {advice}")


class MissingCredentialsError(AuthenticationError):
    """No username or password to log in with, and prompting was not allowed."""


class BrokerError(OrderError):
    """The broker answered with something impossible or unreadable; the order was not changed."""


class JournalError(OrderError):
    """An audit journal line that cannot be replayed; names the file and line to inspect."""


class UnknownOrderError(OrderError, KeyError):
    """No order with this client order id is tracked; check the id, or `recover()` first."""

    def __init__(self, client_order_id: str) -> None:
        self.client_order_id = client_order_id
        super().__init__(f"no tracked order has client order id {client_order_id!r}")

    def __str__(self) -> str:
        return str(self.args[0])
