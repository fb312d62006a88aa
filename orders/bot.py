"""The trading bot: what a strategy calls, and the structured answer it always gets back.

`execute_trade` never raises for an ordinary refusal: every outcome (sent, blocked by a safety
check, refused by the broker, an unsupported order type, an error) is a `TradeResult` that a
strategy can branch on and a person can read. Live mode is opt-in twice: the config must say
`live` and credentials must be present; the bot says which mode it is in when it starts.

Paper mode stands in for the broker, so it has to behave like one without being told: each
`sync` first runs the simulated market (prices from the configured quote source, gfd orders
expired at the close, marketable orders filled), and the simulated broker lives in a state
file, so a bot that stops and starts finds its orders where a real broker would keep them.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

import attrs
import structlog

from orders.account import AccountCache, AccountData, AccountSource
from orders.audit import AuditJournal
from orders.config import ROBINHOOD_QUOTES, FsyncPolicy, Mode, OrderManagementConfig
from orders.errors import (
    BrokerError,
    ConfigError,
    OrderError,
    SafetyViolation,
    UnsupportedOrderTypeError,
)
from orders.gateways._factory import build_gateway
from orders.gateways.base import OrderGateway
from orders.gateways.paper import PaperBroker
from orders.gateways.quotes import CsvQuotes, QuoteSource, ReferenceQuotes, RobinhoodQuotes
from orders.lifecycle import Order, OrderHooks, utc_now
from orders.log import get_logger
from orders.manager import OrderManager, SyncReport
from orders.model import OrderRequest, OrderState, OrderType
from orders.pricing import ensure_limit_order_type
from orders.safety import SafetyPolicy

__all__ = [
    "ORDER_TYPE_NOT_SUPPORTED",
    "StopFlag",
    "StopSignal",
    "TradeResult",
    "TradeStatus",
    "TradingBot",
]

ORDER_TYPE_NOT_SUPPORTED: Final = "ORDER_TYPE_NOT_SUPPORTED"
TRADES_KEPT: Final = 10_000
SUPPORTED_ORDER_TYPES: Final = (str(OrderType.LIMIT),)

_log = get_logger("orders.bot")


class StopSignal(Protocol):
    """What `TradingBot.run` waits on: a `threading.Event` or a `StopFlag`."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class StopFlag:
    """A stop signal safe to set from a signal handler: a plain flag, polled while waiting."""

    POLL_SECONDS: Final = 0.05

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._set = False
        self._sleep = sleep

    def set(self) -> None:
        self._set = True  # one attribute store: no lock, safe inside a signal handler

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._set and (deadline is None or time.monotonic() < deadline):
            self._sleep(self.POLL_SECONDS)
        return self._set


class TradeStatus(StrEnum):
    SUBMITTED = "submitted"
    BLOCKED = "blocked"
    REJECTED = "rejected"
    UNSUPPORTED = "unsupported"
    ERROR = "error"


@attrs.frozen
class TradeResult:
    """The answer to one `execute_trade` call."""

    status: TradeStatus
    order_id: str | None
    message: str
    error_code: str | None = None
    supported_order_types: tuple[str, ...] = ()
    order_state: OrderState | None = None
    limit_price: Decimal | None = None
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is TradeStatus.SUBMITTED


class TradingBot:
    """Safety checks and structured logging in front of an `OrderManager`."""

    def __init__(self, manager: OrderManager, *, mode: Mode | str = Mode.PAPER) -> None:
        self.manager = manager
        self.mode = Mode(mode)
        # The latest answers, for a person's look; a bot running for months keeps a window,
        # not its whole history (the journal has that).
        self._trades: deque[TradeResult] = deque(maxlen=TRADES_KEPT)
        _log.info(
            "bot_started",
            mode=str(self.mode),
            gateway=type(manager.gateway).__name__,
            live=self.mode is Mode.LIVE,
        )

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str],
        *,
        observers: OrderHooks | None = None,
        safety: SafetyPolicy | None = None,
        account: AccountCache | None = None,
        gateway: OrderGateway | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> TradingBot:
        """Build the whole graph (gateway, safety, account, journal, manager) from a config file.

        Paper mode runs on a `PaperBroker`. Live mode needs `mode: "live"` in the config *and*
        the credentials of the configured `broker` (Robinhood by default) in the environment;
        without them it raises `AuthenticationError` before anything is built. A bot that
        keeps its own guard or account caches passes them as `safety` / `account` (any object
        with the methods of `SafetyPolicy` / `AccountCache`) and hears every order event
        through `observers`, which run after the library's own.
        """
        config = OrderManagementConfig.from_file(path)
        mode = config.mode
        if gateway is None:
            if mode is Mode.LIVE:
                gateway = build_gateway(config, env)
            else:
                gateway = _paper_broker(config, env, clock)
        journal = AuditJournal(
            config.audit_log_path,
            fsync=config.fsync,
            segment_bytes=config.journal_segment_bytes,
        )
        if account is None and isinstance(gateway, AccountSource):
            account = AccountData(gateway, ttl_seconds=config.account_ttl_seconds)
        manager_class = OrderManager
        if isinstance(gateway, PaperBroker) and isinstance(gateway.quote_source, ReferenceQuotes):
            manager_class = _ReferenceNotingManager
        manager = manager_class(
            gateway,
            config=config,
            journal=journal,
            safety=safety,
            account=account,
            observers=observers,
            clock=utc_now if clock is None else clock,
        )
        return cls(manager, mode=mode)

    # -- trading ---------------------------------------------------------------------------------

    def execute_trade(
        self,
        symbol: str,
        action: str,
        quantity: Decimal | int | str,
        price: Decimal | int | str,
        *,
        strategy: str = "default",
        order_type: OrderType | str = OrderType.LIMIT,
    ) -> TradeResult:
        """Place a limit order priced from `price` and the strategy's offset; never raises for
        an ordinary refusal."""
        log = _log.bind(symbol=symbol, action=action, strategy=strategy, order_type=order_type)
        try:
            ensure_limit_order_type(order_type)
        except UnsupportedOrderTypeError as error:
            result = TradeResult(
                status=TradeStatus.UNSUPPORTED,
                order_id=None,
                message=str(error),
                error_code=ORDER_TYPE_NOT_SUPPORTED,
                supported_order_types=SUPPORTED_ORDER_TYPES,
            )
            return self._done(log, result)
        try:
            request = OrderRequest(
                symbol,
                action,
                quantity,
                price,
                strategy=strategy,
                time_in_force=self.manager.config.time_in_force,
            )
            order = self.manager.submit(request)
        except SafetyViolation as error:
            result = TradeResult(
                status=TradeStatus.BLOCKED,
                order_id=None,
                message=str(error),
                reasons=error.reasons,
            )
            return self._done(log, result)
        except OrderError as error:
            result = TradeResult(status=TradeStatus.ERROR, order_id=None, message=str(error))
            return self._done(log, result)
        except Exception as error:  # a strategy gets an answer, never a traceback
            log.exception("trade_failed")
            result = TradeResult(
                status=TradeStatus.ERROR,
                order_id=None,
                message=f"unexpected {type(error).__name__}: {error}",
            )
            return self._done(log, result)
        return self._done(log, self._result_for(order))

    def _result_for(self, order: Order) -> TradeResult:
        common = {
            "order_id": order.client_order_id,
            "order_state": order.state,
            "limit_price": order.limit_price,
        }
        if order.state is OrderState.REJECTED:
            return TradeResult(
                status=TradeStatus.REJECTED,
                message=f"the broker rejected the order: {order.reason}",
                **common,  # type: ignore[arg-type]
            )
        if order.state is OrderState.PENDING:
            message = (
                f"sent {order.side} {order.quantity} {order.symbol} @ {order.limit_price}; the "
                "broker's answer was lost, so the order is being looked up by its client id "
                "(it is never resent blindly)"
            )
        else:
            message = (
                f"{order.side} {order.quantity} {order.symbol} @ {order.limit_price} is "
                f"{order.state} at the broker as {order.broker_order_id}"
            )
        return TradeResult(status=TradeStatus.SUBMITTED, message=message, **common)  # type: ignore[arg-type]

    def _done(self, log: structlog.stdlib.BoundLogger, result: TradeResult) -> TradeResult:
        self._trades.append(result)
        log.info(
            "trade",
            status=str(result.status),
            order_id=result.order_id,
            message=result.message,
        )
        return result

    # -- keeping up ------------------------------------------------------------------------------

    def sync(self) -> SyncReport:
        """One round of catching up with the broker.

        In paper mode the simulated market runs first (`PaperBroker.match()`: prices from its
        quote source, the close, fills), so a marketable order fills with no other call, as it
        would at a real broker between two syncs.
        """
        broker = self.manager.gateway
        if self.mode is Mode.PAPER and isinstance(broker, PaperBroker):
            broker.match()
        return self.manager.sync()

    def trades(self) -> list[TradeResult]:
        """The latest `TRADES_KEPT` trades (every one, in a shorter session), each with its
        order's latest state while the manager still holds the order."""
        latest: list[TradeResult] = []
        for trade in self._trades:
            # Memory only: an order evicted since is not worth a journal read per trade.
            order = (
                None if trade.order_id is None else self.manager.get(trade.order_id, journal=False)
            )
            latest.append(trade if order is None else attrs.evolve(trade, order_state=order.state))
        return latest

    def cancel_all(self, *, reason: str = "bot stopping") -> list[str]:
        """Ask the broker to cancel every working order; returns their client ids."""
        cancelled = []
        for order in self.manager.open_orders():
            self.manager.cancel(order.client_order_id, reason=reason)
            cancelled.append(order.client_order_id)
        return cancelled

    def run(self, stop: StopSignal, *, on_sync: Callable[[SyncReport], None] | None = None) -> None:
        """Sync every `sync_interval_seconds` until `stop` is set; a failed round is logged and
        the loop goes on. Returns with the journal flushed.

        `stop` is a `threading.Event`, or a `StopFlag` when a signal handler sets it (setting
        an Event takes a lock, which a handler must not do while its own thread waits on it).
        """
        interval = self.manager.config.sync_interval_seconds
        while not stop.is_set():
            try:
                report = self.sync()
            except Exception:
                _log.exception("sync_failed")
            else:
                if on_sync is not None:
                    on_sync(report)
            stop.wait(interval)
        self.manager.journal.close()


class _ReferenceNotingManager(OrderManager):
    """The manager of a paper bot priced by reference quotes: every request's reference price
    becomes its symbol's price, whether it came through `execute_trade` or straight to
    `submit`, before the order is sent."""

    def submit(self, request: OrderRequest) -> Order:
        broker = self.gateway
        if isinstance(request, OrderRequest) and isinstance(broker, PaperBroker):
            source = broker.quote_source
            if isinstance(source, ReferenceQuotes):
                source.note(request.symbol, request.reference_price)
        return super().submit(request)


_STATE_KEY: Final = "order_management.paper.state_path"


def _paper_broker(
    config: OrderManagementConfig,
    env: Mapping[str, str] | None,
    clock: Callable[[], datetime] | None,
) -> PaperBroker:
    """The simulated broker of a paper bot: its quote source, resumed from its state file."""
    paper = config.paper
    state = config.paper_state_path
    journal = config.audit_log_path
    if not state.exists():
        _refuse_orphaned_journal(state, journal)
    source: QuoteSource
    quote_file = paper.quote_file
    if quote_file is not None:
        source = CsvQuotes(quote_file)
    elif paper.quotes == ROBINHOOD_QUOTES:
        from orders.gateways.auth import login_from_env  # noqa: PLC0415 - loads pyotp

        auth = login_from_env(config, env, 'paper.quotes "robinhood"', 'or use "reference" quotes')
        source = RobinhoodQuotes(auth=auth)
    else:
        source = ReferenceQuotes()
    try:
        return PaperBroker.open(
            state,
            journal=journal,
            clock=clock,
            quote_source=source,
            liquidity=paper.liquidity,
            allow_short=paper.allow_short,
            fault_rates=dict(paper.fault_rates),
            cancel_gfd_at_close=True,
            retention_seconds=config.retention_seconds,
            # As durable as the journal it serves: with fsync "never" a power cut may lose
            # the last records of both, and a backtest on a simulated clock waits for neither.
            fsync=config.fsync is not FsyncPolicy.NEVER,
        )
    except BrokerError as error:
        raise ConfigError(
            _STATE_KEY,
            f"{error}. The file was left as it is: restore it, or move it away to start a new "
            "simulated account (and a new journal, audit_log_path, since the orders in the "
            "old one are unknown to a new account)",
        ) from None
    except OSError as error:
        raise ConfigError(
            _STATE_KEY, f"{state} cannot be written ({error.strerror or error}); check the path"
        ) from None


def _refuse_orphaned_journal(state: Path, journal: Path) -> None:
    """A journal with working paper orders and no broker state: the account that holds those
    orders is gone, and a new one would answer "no such order" for them at every sync."""
    if not journal.exists():
        return
    working = [
        order
        for order in AuditJournal.replay(journal).values()
        if not order.is_terminal and order.broker_order_id is not None
    ]
    if working:
        raise ConfigError(
            _STATE_KEY,
            f"{state} is missing, but the journal {journal} has {len(working)} working paper "
            "order(s) placed on the simulated broker saved there; restore the file, or start "
            "a new journal (audit_log_path) for a new simulated account",
        )
