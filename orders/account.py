"""Account figures the safety checks read: buying power and positions, cached with a TTL.

A broker round trip per order just to check buying power would double the request budget, so
reads are cached; the order hooks invalidate the cache whenever a fill or cancel may have moved
the figures, and the TTL bounds how stale anything else can make them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Protocol, TypeVar, cast, runtime_checkable

from orders.config import Disagreement, OrderManagementConfig

__all__ = ["AccountCache", "AccountData", "AccountSource"]

_V = TypeVar("_V")
# The documented default of `order_management.account_ttl_seconds`, defined once there.
_DEFAULT_TTL: Final = OrderManagementConfig().account_ttl_seconds


class AccountCache(Protocol):
    """What `OrderManager` asks of the account: `AccountData` is the standard one.

    A bot with caches of its own can pass any object with these two methods: `buying_power`
    is read before a buy is sent (the order is refused if its notional exceeds it), and
    `invalidate` is called whenever the broker's view of the account may have moved (an
    order acknowledged, any fill, a cancel or a reject).
    """

    def buying_power(self) -> Decimal: ...

    def invalidate(self) -> None: ...


@runtime_checkable
class AccountSource(Protocol):
    """Where account figures come from (PaperBroker, or Robinhood in live mode)."""

    def fetch_buying_power(self) -> Decimal: ...

    def fetch_positions(self) -> Mapping[str, Decimal]: ...


class AccountData:
    """TTL caches of `buying_power()` and `positions()` over an `AccountSource`."""

    def __init__(
        self,
        source: AccountSource,
        *,
        ttl_seconds: float = _DEFAULT_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must not be negative")
        self._source = source
        self.ttl_seconds = ttl_seconds
        self._now = monotonic
        self._lock = threading.Lock()  # for `fetch_count` only
        # Replaced whole by `invalidate()`: a fetch stores into the dict it started from, so
        # one that raced an invalidation lands in a dict nobody reads any more.
        self._cache: dict[str, tuple[float, object]] = {}
        self.fetch_count = 0

    def config_disagreements(self, config: OrderManagementConfig) -> Iterator[Disagreement]:
        """`account_ttl_seconds`, when it differs from this cache's TTL."""
        if config.account_ttl_seconds != self.ttl_seconds:
            yield "account_ttl_seconds", config.account_ttl_seconds, self.ttl_seconds

    def buying_power(self) -> Decimal:
        return self._read("buying_power", self._source.fetch_buying_power)

    def positions(self) -> Mapping[str, Decimal]:
        """Shares per symbol; a read-only view, so a caller cannot edit the cache."""
        return self._read(
            "positions", lambda: MappingProxyType(dict(self._source.fetch_positions()))
        )

    def _read(self, key: str, fetch: Callable[[], _V]) -> _V:
        """The cached figure, or a fresh one; a fetch that raced `invalidate()` is not kept."""
        cache = self._cache
        cached = cache.get(key)
        if cached is not None and self._now() - cached[0] < self.ttl_seconds:
            return cast(_V, cached[1])
        value = fetch()
        cache[key] = (self._now(), value)
        with self._lock:
            self.fetch_count += 1
        return value

    def invalidate(self) -> None:
        """Forget both caches: the next read asks the source again.

        One attribute store and no lock: the manager calls this on every fill, submit,
        cancel and reject (four times an order), and a locked `clear()` cost 13,000
        instructions an order (callgrind), 1.5% of a paper session.
        """
        self._cache = {}
