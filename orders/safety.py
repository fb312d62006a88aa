"""Safety checks: the duplicate-order guard and the circuit breakers.

The guard is keyed by (symbol, side): while one order for AAPL buy is working, a second is
refused, because the usual cause of a second one is a bot that did not see the first (a
timeout, a restart). A guard is released only by the order's own terminal hook, and only by
the order that holds it, so a late event of an old order cannot free a newer order's guard.

The breakers stop a bot that is failing repeatedly (rejects, broker failures), trading too
fast, or sizing orders beyond a notional cap; a tripped breaker says why and when it resets.
A manual halt (the kill switch) holds until `resume()`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Final, Protocol

from orders.config import CircuitBreakerConfig, Disagreement, OrderManagementConfig
from orders.errors import SafetyViolation
from orders.lifecycle import Order
from orders.model import BUY, LifecycleEvent, Side, coerce_enum

__all__ = ["SafetyChecks", "SafetyPolicy"]

_MINUTE = 60.0
# The documented defaults of `order_management.circuit_breakers`, the one definition of them.
_BREAKERS: Final = CircuitBreakerConfig()
# Each setting of SafetyChecks and the `circuit_breakers` key it comes from.
CONFIG_KEYS: Final = {
    "max_consecutive_rejects": "max_consecutive_rejects",
    "max_consecutive_failures": "max_consecutive_failures",
    "max_orders_per_minute": "max_orders_per_minute",
    "max_notional_per_order": "max_notional_per_order",
    "breaker_cooldown_seconds": "cooldown_seconds",
}


class SafetyPolicy(Protocol):
    """What `OrderManager` asks of its safety checks; `SafetyChecks` is the standard one.

    A bot with a guard of its own can pass any object with these methods. The manager calls
    `check` before an order is journaled (a non-empty answer refuses it with those reasons),
    `register` once it is journaled and about to be sent (raise `SafetyViolation` to refuse
    it there), `on_order_terminal` when it is filled, cancelled or rejected, and the `note_*`
    methods with the broker's answer to each submission.
    """

    def check(
        self, *, symbol: str, side: Side, notional: Decimal, buying_power: Decimal | None
    ) -> Sequence[str]: ...

    def register(self, order: Order) -> None: ...

    def on_order_terminal(self, order: Order, event: LifecycleEvent, /) -> None: ...

    def note_sent(self) -> None: ...

    def note_accepted(self) -> None: ...

    def note_rejected(self, reason: str) -> None: ...

    def note_failure(self, error: str) -> None: ...


class SafetyChecks:
    """Duplicate guard keyed by (symbol, side), plus circuit breakers and a kill switch."""

    def __init__(
        self,
        *,
        max_consecutive_rejects: int = _BREAKERS.max_consecutive_rejects,
        max_consecutive_failures: int = _BREAKERS.max_consecutive_failures,
        max_orders_per_minute: int = _BREAKERS.max_orders_per_minute,
        max_notional_per_order: Decimal | None = _BREAKERS.max_notional_per_order,
        breaker_cooldown_seconds: float | None = _BREAKERS.cooldown_seconds,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """The defaults are those of the `circuit_breakers` configuration block;
        `breaker_cooldown_seconds=None` keeps a tripped breaker open until `reset()`."""
        self.max_consecutive_rejects = max_consecutive_rejects
        self.max_consecutive_failures = max_consecutive_failures
        self.max_orders_per_minute = max_orders_per_minute
        self.max_notional_per_order = max_notional_per_order
        self.breaker_cooldown_seconds = breaker_cooldown_seconds
        self._cooldown = (
            float("inf") if breaker_cooldown_seconds is None else breaker_cooldown_seconds
        )
        self._now = monotonic
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, Side], str] = {}
        self._recent: deque[float] = deque()
        self._consecutive_rejects = 0
        self._consecutive_failures = 0
        self._tripped: tuple[str, float] | None = None
        self._halted: str | None = None

    @classmethod
    def from_config(
        cls, breakers: CircuitBreakerConfig, *, monotonic: Callable[[], float] = time.monotonic
    ) -> SafetyChecks:
        """Checks tuned by a `circuit_breakers` configuration block."""
        settings = {attr: getattr(breakers, key) for attr, key in CONFIG_KEYS.items()}
        return cls(**settings, monotonic=monotonic)

    def config_disagreements(self, config: OrderManagementConfig) -> Iterator[Disagreement]:
        """The breaker settings that differ from `config.circuit_breakers`."""
        breakers = config.circuit_breakers
        for attr, key in CONFIG_KEYS.items():
            wanted, actual = getattr(breakers, key), getattr(self, attr)
            if attr == "breaker_cooldown_seconds":  # None and infinity both mean "never"
                wanted = float("inf") if wanted is None else wanted
                actual = self._cooldown
            if wanted != actual:
                yield f"circuit_breakers.{key}", wanted, actual

    # -- the duplicate guard -------------------------------------------------------------------

    def has_pending(self, symbol: str, side: Side | str) -> bool:
        """Whether an order for (symbol, side) is working or its outcome is still unknown."""
        key = (symbol, coerce_enum(Side, side, "side"))
        with self._lock:
            return key in self._pending

    def holder(self, symbol: str, side: Side | str) -> str | None:
        """The client order id holding the (symbol, side) guard, if any."""
        key = (symbol, coerce_enum(Side, side, "side"))
        with self._lock:
            return self._pending.get(key)

    def register(self, order: Order) -> None:
        """Take the guard for the order; SafetyViolation if another order holds it."""
        key = (order.symbol, order.side)
        cid = order.client_order_id
        lock = self._lock
        lock.acquire()  # not `with` on the per-order calls: see `check`
        try:
            holder = self._pending.get(key)
            if holder is not None and holder != cid:
                raise SafetyViolation(
                    [
                        f"duplicate: order {holder} for {order.symbol} {order.side} is still "
                        "working; cancel it or wait for it to finish"
                    ]
                )
            self._pending[key] = cid
        finally:
            lock.release()

    def release(self, order: Order) -> bool:
        """Free the order's guard; False when it did not hold one (never frees another's)."""
        key = (order.symbol, order.side)
        cid = order.client_order_id
        lock = self._lock
        lock.acquire()
        try:
            if self._pending.get(key) != cid:
                return False
            del self._pending[key]
            return True
        finally:
            lock.release()

    def on_order_terminal(self, order: Order, event: LifecycleEvent) -> None:
        """The `on_terminal` hook: the order is done, its guard goes."""
        self.release(order)

    def pending_orders(self) -> dict[tuple[str, Side], str]:
        with self._lock:
            return dict(self._pending)

    # -- breakers ------------------------------------------------------------------------------

    def check(
        self,
        *,
        symbol: str,
        side: Side | str,
        notional: Decimal,
        buying_power: Decimal | None = None,
    ) -> list[str]:
        """Every reason a new order must not be sent now; empty when it may go."""
        side = coerce_enum(Side, side, "side")
        # The lock is taken with acquire and release on the calls made for every order
        # (check, register, note_sent, release; note_accepted takes it only when there is a
        # count to reset): with `with` blocks, they cost 8,000 instructions an order more
        # (callgrind).
        lock = self._lock
        lock.acquire()
        try:
            reasons = self._standing_reasons(symbol, side)
        finally:
            lock.release()
        cap = self.max_notional_per_order
        if cap is not None and notional > cap:
            reasons.append(f"notional {notional} exceeds the per-order cap {cap}")
        if side is BUY and buying_power is not None and notional > buying_power:
            reasons.append(f"notional {notional} exceeds buying power {buying_power}")
        return reasons

    def _standing_reasons(self, symbol: str, side: Side) -> list[str]:
        """What refuses any order for (symbol, side) now, whatever its size: a halt, a
        tripped breaker, a working duplicate, the rate limit. Called under the lock."""
        reasons: list[str] = []
        now = self._now()
        self._expire(now)
        if self._halted is not None:
            reasons.append(f"trading halted: {self._halted}; call resume() to trade again")
        if self._tripped is not None:
            why, until = self._tripped
            when = (
                "call reset() once the cause is fixed"
                if until == float("inf")
                else f"resets in {until - now:.0f} s"
            )
            reasons.append(f"circuit breaker tripped: {why}; {when}")
        holder = self._pending.get((symbol, side))
        if holder is not None:
            reasons.append(
                f"duplicate: order {holder} for {symbol} {side} is still working; "
                "cancel it or wait for it to finish"
            )
        if len(self._recent) >= self.max_orders_per_minute:
            reasons.append(
                f"rate: {len(self._recent)} orders in the last minute, the limit is "
                f"{self.max_orders_per_minute}"
            )
        return reasons

    def note_sent(self) -> None:
        """Count an order towards the per-minute limit."""
        lock = self._lock
        lock.acquire()
        try:
            self._recent.append(self._now())
        finally:
            lock.release()

    def note_accepted(self) -> None:
        # Read without the lock first: with no reject or failure counted (nearly always),
        # there is nothing to reset, and a count that races this read is one that came after.
        if self._consecutive_rejects or self._consecutive_failures:
            with self._lock:
                self._consecutive_rejects = 0
                self._consecutive_failures = 0

    def note_rejected(self, reason: str) -> None:
        with self._lock:
            self._consecutive_rejects += 1
            if self._consecutive_rejects >= self.max_consecutive_rejects:
                self._trip(f"{self._consecutive_rejects} consecutive rejects (last: {reason})")

    def note_failure(self, error: str) -> None:
        with self._lock:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.max_consecutive_failures:
                self._trip(f"{self._consecutive_failures} consecutive broker failures ({error})")

    def tripped(self) -> str | None:
        """Why the breaker is open, or None."""
        with self._lock:
            self._expire(self._now())
            return None if self._tripped is None else self._tripped[0]

    def reset(self) -> None:
        """Close the breakers by hand (after the cause is understood)."""
        with self._lock:
            self._tripped = None
            self._consecutive_rejects = 0
            self._consecutive_failures = 0

    def halt(self, reason: str) -> None:
        """The kill switch: refuse every new order until `resume()`."""
        with self._lock:
            self._halted = reason or "halted by the operator"

    def resume(self) -> None:
        with self._lock:
            self._halted = None

    def _trip(self, why: str) -> None:
        self._tripped = (why, self._now() + self._cooldown)

    def _expire(self, now: float) -> None:
        while self._recent and now - self._recent[0] >= _MINUTE:
            self._recent.popleft()
        if self._tripped is not None and now >= self._tripped[1]:
            self._tripped = None
            self._consecutive_rejects = 0
            self._consecutive_failures = 0
