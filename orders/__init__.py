"""orders: limit orders on Robinhood through an explicit, audited finite-state machine."""

from orders.account import AccountData, AccountSource
from orders.errors import (
    AuthenticationError,
    BrokerError,
    ConfigError,
    IllegalTransition,
    InvalidOrderError,
    OrderError,
    OverfillError,
    SafetyViolation,
    UnsupportedOrderTypeError,
)
from orders.gateways.base import Accepted, OrderGateway, Rejected, SubmitOutcome, Unknown
from orders.lifecycle import LIFECYCLE, Move, Order, OrderHooks, OrderObserver
from orders.model import (
    BrokerOrder,
    Execution,
    LifecycleEvent,
    OrderRequest,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
)

__all__ = [
    "LIFECYCLE",
    "Accepted",
    "AccountData",
    "AccountSource",
    "AuthenticationError",
    "BrokerError",
    "BrokerOrder",
    "ConfigError",
    "Execution",
    "IllegalTransition",
    "InvalidOrderError",
    "LifecycleEvent",
    "Move",
    "Order",
    "OrderError",
    "OrderGateway",
    "OrderHooks",
    "OrderObserver",
    "OrderRequest",
    "OrderState",
    "OrderType",
    "OverfillError",
    "Rejected",
    "SafetyViolation",
    "Side",
    "SubmitOutcome",
    "TimeInForce",
    "Unknown",
    "UnsupportedOrderTypeError",
]
