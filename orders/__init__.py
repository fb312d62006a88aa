"""orders: limit orders on Robinhood through an explicit, audited finite-state machine."""

from orders.account import AccountData, AccountSource
from orders.audit import AuditJournal, FsyncPolicy
from orders.bot import TradeResult, TradeStatus, TradingBot
from orders.config import (
    CircuitBreakerConfig,
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
from orders.gateways.auth import RobinhoodAuth
from orders.gateways.base import Accepted, OrderGateway, Rejected, SubmitOutcome, Unknown
from orders.gateways.paper import Fault, PaperBroker, SimulatedClock
from orders.gateways.robinhood import RobinhoodGateway, parse_robinhood_order
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
from orders.safety import SafetyChecks
from orders.snapshot import apply_snapshot, inferred_execution_id

__all__ = [
    "LIFECYCLE",
    "Accepted",
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
