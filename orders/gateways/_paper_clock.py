"""Time at the simulated broker: the clock it reads, the close that ends a gfd order, and the
rule that broker time never runs backwards (the service asks `updated_since` with watermarks
taken from earlier answers, so a time that went back would hide updates)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Final

from orders.errors import InvalidOrderError
from orders.model import ensure_aware

__all__ = ["END_OF_DAY", "BrokerTime", "Clock", "Moment", "SimulatedClock", "session_close_after"]

Clock = Callable[[], datetime]

# Robinhood's `response_category` for an order cancelled at the close.
END_OF_DAY: Final = "end_of_day"
_CLOSE: Final = time(16, 0)
_SATURDAY: Final = 5


# The UTC wall clock, without a Python frame of its own: the broker reads it at every change.
wall_clock: Final[Clock] = partial(datetime.now, UTC)


def session_close_after(when: datetime) -> datetime:
    """The first close (16:00 America/New_York, Monday to Friday) after `when`, in UTC.

    An order placed after the close, or on a weekend, waits for the next session's close, as a
    Robinhood `gfd` order does. Exchange holidays are not known here.
    """
    # Imported on first use: a broker without end-of-day expiry never needs the tz database.
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    new_york = ZoneInfo("America/New_York")
    local = ensure_aware(when, "when").astimezone(new_york)
    day: date = local.date()
    if local.time() >= _CLOSE:
        day += timedelta(days=1)
    while day.weekday() >= _SATURDAY:
        day += timedelta(days=1)
    return datetime.combine(day, _CLOSE, tzinfo=new_york).astimezone(UTC)


class SimulatedClock:
    """A clock that starts at `start` and moves `step` forward on every reading.

    Snapshots carry times, so a broker is only reproducible with a reproducible clock; a
    `PaperBroker` saves a `SimulatedClock`'s position with its own state.
    """

    DEFAULT_START: Final = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)

    def __init__(
        self, start: datetime = DEFAULT_START, step: timedelta = timedelta(seconds=1)
    ) -> None:
        if step <= timedelta(0):
            raise InvalidOrderError("step", step, "must be a positive timedelta")
        self._next = ensure_aware(start, "start").astimezone(UTC)
        self._step = step
        self._lock = threading.Lock()

    @property
    def step(self) -> timedelta:
        return self._step

    def peek(self) -> datetime:
        """The time the next reading will return, without moving the clock."""
        with self._lock:
            return self._next

    def __call__(self) -> datetime:
        with self._lock:
            now = self._next
            self._next = now + self._step
            return now


class BrokerTime:
    """The broker's reading of its clock, in UTC, never earlier than the reading before.

    Read with a method rather than by calling the object: on Python 3.11 calling an instance
    costs twice a method call, and the broker reads its time at every change.
    """

    __slots__ = ("clock", "given", "last")

    def __init__(self, clock: Clock | None) -> None:
        if clock is not None and not callable(clock):
            raise InvalidOrderError("clock", clock, "must be a callable returning a UTC datetime")
        self.clock: Clock = wall_clock if clock is None else clock
        # Only a clock given may answer in another zone: the wall clock's readings are UTC,
        # and reading their zone costs 200 instructions (callgrind), five times an order.
        self.given = clock is not None
        self.last: datetime | None = None

    def now(self) -> datetime:
        now = self.clock()
        if self.given and now.tzinfo is not UTC:
            now = ensure_aware(now, "clock()").astimezone(UTC)
        last = self.last
        if last is not None and now < last:
            now = last
        self.last = now
        return now


class Moment:
    """The broker's time during one call, read once and only when first needed: every reading
    moves a `SimulatedClock`, so a call that changes nothing must not read it.

    The broker keeps one, and each `match()` starts by setting `value` to None: building a
    `Moment` for every call cost 1,700 instructions (callgrind).
    """

    __slots__ = ("_read", "value")

    def __init__(self, read: BrokerTime) -> None:
        self._read = read
        self.value: datetime | None = None

    def now(self) -> datetime:
        if self.value is None:
            self.value = self._read.now()
        return self.value
