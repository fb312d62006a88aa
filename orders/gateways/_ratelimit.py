"""A client-side request budget, so Robinhood's throttle is met before it answers 429.

Robinhood publishes no limits. What users of robin_stocks have observed: about one
request per second can be held indefinitely while one every 700 ms gets throttled, and about 8
orders in 15 seconds trip the order throttle. A 429 costs a wait of at least what the server
states, and repeated abuse has earned IP-level blocks lasting days, so it is cheaper to wait a
little on our side than to be told to wait. The defaults below stay under those observations.

Sliding windows rather than a token bucket: a window says exactly what the observations say
("N in T seconds"), and several windows can be stacked (a burst cap and a sustained cap).
Every wait goes through the injected `sleep`, and time comes from the injected monotonic
`clock`, so tests and benchmarks never really wait.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

import attrs

from orders.config import RateLimitConfig

__all__ = [
    "DEFAULT_ORDER_LIMITS",
    "DEFAULT_REQUEST_LIMITS",
    "RateLimit",
    "RateLimiter",
]


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"RateLimit.{attribute.name} must be a whole number >= 1, not {value!r}")


def _positive_seconds(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"RateLimit.{attribute.name} must be a number of seconds > 0")


@attrs.frozen
class RateLimit:
    """At most `requests` requests in any window of `per_seconds` seconds."""

    requests: int = attrs.field(validator=_positive_int)
    per_seconds: float = attrs.field(validator=_positive_seconds)


def limits_for(config: RateLimitConfig) -> tuple[tuple[RateLimit, ...], tuple[RateLimit, ...]]:
    """The (request, order POST) limits a `rate_limit` configuration block stands for.

    A burst of `burst` requests in `burst * 60 / requests_per_minute` seconds, within
    `requests_per_minute` per minute; at most `orders_per_window` order POSTs in any
    `order_window_seconds`.
    """
    requests = (
        RateLimit(config.burst, config.burst * 60 / config.requests_per_minute),
        RateLimit(config.requests_per_minute, 60.0),
    )
    return requests, (RateLimit(config.orders_per_window, config.order_window_seconds),)


# The documented defaults of `order_management.rate_limit`: ~1 request/s sustained with room
# for a burst of 5, and order POSTs under the ~8 per 15 s at which Robinhood throttles.
DEFAULT_REQUEST_LIMITS, DEFAULT_ORDER_LIMITS = limits_for(RateLimitConfig())


class RateLimiter:
    """Blocks (through `sleep`) until one more request fits in every window, then books it."""

    def __init__(
        self,
        limits: Iterable[RateLimit],
        *,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._windows: tuple[tuple[RateLimit, deque[float]], ...] = tuple(
            (limit, deque(maxlen=limit.requests)) for limit in limits
        )
        self._sleep = sleep
        self._clock = clock
        self._floor = float("-inf")  # time already lived through by sleeping
        self._lock = threading.Lock()

    @property
    def limits(self) -> tuple[RateLimit, ...]:
        return tuple(limit for limit, _ in self._windows)

    def acquire(self) -> float:
        """Wait until a request is allowed and book it; returns the seconds waited.

        One caller at a time: the bot and a polling thread share a gateway, and two callers
        checking the windows together could both go over the budget.
        """
        with self._lock:
            return self._acquire()

    def _acquire(self) -> float:
        now = max(self._clock(), self._floor)
        waited = 0.0
        while (wait := self._wait_needed(now)) > 0:
            self._sleep(wait)
            waited += wait
            # A clock that did not move (a fake, or a coarse one) must not spin forever:
            # after sleeping `wait` seconds, at least `wait` seconds have passed.
            now = max(self._clock(), now + wait)
        for _, stamps in self._windows:
            stamps.append(now)
        self._floor = now
        return waited

    def _wait_needed(self, now: float) -> float:
        wait = 0.0
        for limit, stamps in self._windows:
            if len(stamps) == limit.requests:
                wait = max(wait, stamps[0] + limit.per_seconds - now)
        return wait
