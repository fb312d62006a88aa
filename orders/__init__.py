"""orders: limit orders on Robinhood through an explicit, audited finite-state machine.

Every public name is imported on first use (PEP 562), so `import orders` costs almost
nothing: the live Robinhood stack (robin_stocks, requests, pyotp, cryptography: about 470
modules) loads only when a Robinhood name is used, a paper bot or a journal reader loads only
what it touches, and the `orders` command can answer a Ctrl-C while it starts with one line
instead of a traceback.
"""

import importlib
import logging
import typing

from orders.version import __version__ as __version__

# A library writes nothing to stdout or stderr unless its host configures logging, so the
# `orders` logger has a handler that drops records (the stdlib's last resort would print
# warnings otherwise). Here, not in `orders.log`: every module's logger sits under it.
logging.getLogger("orders").addHandler(logging.NullHandler())

if typing.TYPE_CHECKING:
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
    from orders.gateways._robinhood_wire import parse_robinhood_order
    from orders.gateways.auth import RobinhoodAuth
    from orders.gateways.base import Accepted, OrderGateway, Rejected, SubmitOutcome, Unknown
    from orders.gateways.paper import Fault, PaperBroker, SimulatedClock
    from orders.gateways.robinhood import RobinhoodGateway
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

# Public name -> the module that defines it.
_LAZY: dict[str, str] = {
    "Accepted": "orders.gateways.base",
    "AccountCache": "orders.account",
    "AccountData": "orders.account",
    "AccountSource": "orders.account",
    "AuditJournal": "orders.audit",
    "AuthenticationError": "orders.errors",
    "BrokerError": "orders.errors",
    "BrokerOrder": "orders.model",
    "CircuitBreakerConfig": "orders.config",
    "ConfigError": "orders.errors",
    "Execution": "orders.model",
    "Fault": "orders.gateways.paper",
    "FsyncPolicy": "orders.config",
    "IllegalTransition": "orders.errors",
    "InvalidOrderError": "orders.errors",
    "JournalError": "orders.errors",
    "JournalWriteError": "orders.audit",
    "LIFECYCLE": "orders.lifecycle",
    "LifecycleEvent": "orders.model",
    "Mode": "orders.config",
    "Move": "orders.lifecycle",
    "OffsetKind": "orders.pricing",
    "Order": "orders.lifecycle",
    "OrderError": "orders.errors",
    "OrderGateway": "orders.gateways.base",
    "OrderHooks": "orders.lifecycle",
    "OrderManagementConfig": "orders.config",
    "OrderManager": "orders.manager",
    "OrderObserver": "orders.lifecycle",
    "OrderRequest": "orders.model",
    "OrderState": "orders.model",
    "OrderType": "orders.model",
    "OverfillError": "orders.errors",
    "PaperBroker": "orders.gateways.paper",
    "PriceOffset": "orders.pricing",
    "RateLimitConfig": "orders.config",
    "Rejected": "orders.gateways.base",
    "RetryConfig": "orders.config",
    "RobinhoodAuth": "orders.gateways.auth",
    "RobinhoodGateway": "orders.gateways.robinhood",
    "SafetyChecks": "orders.safety",
    "SafetyPolicy": "orders.safety",
    "SafetyViolation": "orders.errors",
    "Side": "orders.model",
    "SimulatedClock": "orders.gateways.paper",
    "SubmitOutcome": "orders.gateways.base",
    "SyncReport": "orders.manager",
    "TimeInForce": "orders.model",
    "TradeResult": "orders.bot",
    "TradeStatus": "orders.bot",
    "TradingBot": "orders.bot",
    "Unknown": "orders.gateways.base",
    "UnknownOrderError": "orders.errors",
    "UnsupportedOrderTypeError": "orders.errors",
    "apply_snapshot": "orders.snapshot",
    "compute_limit_price": "orders.pricing",
    "ensure_limit_order_type": "orders.pricing",
    "inferred_execution_id": "orders.snapshot",
    "is_on_tick": "orders.pricing",
    "parse_robinhood_order": "orders.gateways._robinhood_wire",
    "round_to_tick": "orders.pricing",
    "tick_size": "orders.pricing",
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
