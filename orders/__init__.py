"""orders: limit orders on Robinhood through an explicit, audited finite-state machine.

The live Robinhood stack (robin_stocks, requests, pyotp, cryptography: about 470 modules) is
imported only when a Robinhood name is first used, so a paper bot, a test suite or a host that
only replays journals does not pay for it in start-up time or in garbage-collection passes.
"""

import importlib
import typing

from orders.account import AccountCache, AccountData, AccountSource
from orders.audit import AuditJournal, JournalWriteError
from orders.bot import TradeResult, TradeStatus, TradingBot
from orders.config import (
    CircuitBreakerConfig,
    FsyncPolicy,
    Mode,
    OrderManagementConfig,
    RateLimitConfig,
    RetryConfig,
)
from orders.errors import (
    AuthenticationError,
    BrokerError,
    ConfigError,
    IllegalTransition,
    InvalidOrderError,
    JournalError,
    OrderError,
    OverfillError,
    SafetyViolation,
    UnknownOrderError,
    UnsupportedOrderTypeError,
)
from orders.gateways.base import Accepted, OrderGateway, Rejected, SubmitOutcome, Unknown
from orders.gateways.paper import Fault, PaperBroker, SimulatedClock
from orders.lifecycle import LIFECYCLE, Move, Order, OrderHooks, OrderObserver
from orders.manager import OrderManager, SyncReport
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
from orders.pricing import (
    OffsetKind,
    PriceOffset,
    compute_limit_price,
    ensure_limit_order_type,
    is_on_tick,
    round_to_tick,
    tick_size,
)
from orders.safety import SafetyChecks, SafetyPolicy
from orders.snapshot import apply_snapshot, inferred_execution_id
from orders.version import __version__ as __version__

if typing.TYPE_CHECKING:
    from orders.gateways.auth import RobinhoodAuth
    from orders.gateways.robinhood import RobinhoodGateway, parse_robinhood_order

# Name -> module of the names imported on first use (see the module docstring).
_LAZY = {
    "RobinhoodAuth": "orders.gateways.auth",
    "RobinhoodGateway": "orders.gateways.robinhood",
    "parse_robinhood_order": "orders.gateways.robinhood",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orders' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "LIFECYCLE",
    "Accepted",
    "AccountCache",
    "AccountData",
    "AccountSource",
    "AuditJournal",
    "AuthenticationError",
    "BrokerError",
    "BrokerOrder",
    "CircuitBreakerConfig",
    "ConfigError",
    "Execution",
    "Fault",
    "FsyncPolicy",
    "IllegalTransition",
    "InvalidOrderError",
    "JournalError",
    "JournalWriteError",
    "LifecycleEvent",
    "Mode",
    "Move",
    "OffsetKind",
    "Order",
    "OrderError",
    "OrderGateway",
    "OrderHooks",
    "OrderManagementConfig",
    "OrderManager",
    "OrderObserver",
    "OrderRequest",
    "OrderState",
    "OrderType",
    "OverfillError",
    "PaperBroker",
    "PriceOffset",
    "RateLimitConfig",
    "Rejected",
    "RetryConfig",
    "RobinhoodAuth",
    "RobinhoodGateway",
    "SafetyChecks",
    "SafetyPolicy",
    "SafetyViolation",
    "Side",
    "SimulatedClock",
    "SubmitOutcome",
    "SyncReport",
    "TimeInForce",
    "TradeResult",
    "TradeStatus",
    "TradingBot",
    "Unknown",
    "UnknownOrderError",
    "UnsupportedOrderTypeError",
    "apply_snapshot",
    "compute_limit_price",
    "ensure_limit_order_type",
    "inferred_execution_id",
    "is_on_tick",
    "parse_robinhood_order",
    "round_to_tick",
    "tick_size",
]
