"""AccountData: TTL caches of buying power and positions, and their invalidation."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from decimal import Decimal

import pytest

from orders import AccountData, AccountSource, PaperBroker
from tests.factories import MonotonicClock

D = Decimal


class CountingSource:
    """An AccountSource whose figures the test sets, counting every fetch."""

    def __init__(self) -> None:
        self.cash = D("1000")
        self.holdings: dict[str, Decimal] = {"AAPL": D("5")}
        self.bp_calls = 0
        self.pos_calls = 0

    def fetch_buying_power(self) -> Decimal:
        self.bp_calls += 1
        return self.cash

    def fetch_positions(self) -> Mapping[str, Decimal]:
        self.pos_calls += 1
        return dict(self.holdings)


@pytest.fixture
def source() -> CountingSource:
    return CountingSource()


@pytest.fixture
def clock() -> MonotonicClock:
    return MonotonicClock()


class TestTtl:
    """A figure is read from the source once per TTL, and again once the TTL has passed."""

    def test_buying_power_is_cached_for_the_ttl(
        self, source: CountingSource, clock: MonotonicClock
    ) -> None:
        account = AccountData(source, ttl_seconds=30, monotonic=clock)
        assert account.buying_power() == D("1000")
        source.cash = D("1")
        clock.advance(29.99)
        assert account.buying_power() == D("1000")
        assert (source.bp_calls, account.fetch_count) == (1, 1)
        clock.advance(0.01)
        assert account.buying_power() == D("1")
        assert (source.bp_calls, account.fetch_count) == (2, 2)

    def test_positions_are_cached_for_the_ttl(
        self, source: CountingSource, clock: MonotonicClock
    ) -> None:
        account = AccountData(source, ttl_seconds=10, monotonic=clock)
        assert account.positions() == {"AAPL": D("5")}
        source.holdings = {"MSFT": D("2")}
        assert account.positions() == {"AAPL": D("5")}
        clock.advance(10)
        assert account.positions() == {"MSFT": D("2")}
        assert source.pos_calls == 2
        assert account.fetch_count == 2

    def test_the_two_caches_are_independent(
        self, source: CountingSource, clock: MonotonicClock
    ) -> None:
        account = AccountData(source, ttl_seconds=30, monotonic=clock)
        account.buying_power()
        account.positions()
        account.buying_power()
        account.positions()
        assert (source.bp_calls, source.pos_calls, account.fetch_count) == (1, 1, 2)

    def test_zero_ttl_reads_the_source_every_time(
        self, source: CountingSource, clock: MonotonicClock
    ) -> None:
        account = AccountData(source, ttl_seconds=0, monotonic=clock)
        for _ in range(3):
            account.buying_power()
        assert source.bp_calls == 3

    def test_default_ttl_is_thirty_seconds(
        self, source: CountingSource, clock: MonotonicClock
    ) -> None:
        account = AccountData(source, monotonic=clock)
        account.buying_power()
        clock.advance(29)
        account.buying_power()
        assert source.bp_calls == 1
        clock.advance(1)
        account.buying_power()
        assert source.bp_calls == 2

    def test_negative_ttl_is_refused(self, source: CountingSource) -> None:
        with pytest.raises(ValueError, match="ttl_seconds"):
            AccountData(source, ttl_seconds=-1)


class TestInvalidate:
    """invalidate() makes the next read of either figure ask the source again."""

    def test_invalidate_forgets_both_caches(
        self, source: CountingSource, clock: MonotonicClock
    ) -> None:
        account = AccountData(source, ttl_seconds=3600, monotonic=clock)
        account.buying_power()
        account.positions()
        source.cash = D("7")
        source.holdings = {}
        account.invalidate()
        assert account.buying_power() == D("7")
        assert account.positions() == {}
        assert (source.bp_calls, source.pos_calls, account.fetch_count) == (2, 2, 4)
        account.buying_power()
        assert source.bp_calls == 2

    def test_invalidate_before_any_read_is_harmless(self, source: CountingSource) -> None:
        account = AccountData(source)
        account.invalidate()
        assert account.buying_power() == D("1000")

    def test_invalidate_during_a_fetch_is_not_lost(self, clock: MonotonicClock) -> None:
        class RacingSource(CountingSource):
            """A fill is booked (and the cache invalidated) while the fetch is on the wire."""

            account: AccountData

            def fetch_buying_power(self) -> Decimal:
                value = super().fetch_buying_power()
                self.cash = D("400")  # the fill moved the figure at the broker ...
                self.account.invalidate()  # ... and its hook invalidated the cache
                return value

        racing = RacingSource()
        account = AccountData(racing, ttl_seconds=3600, monotonic=clock)
        racing.account = account
        assert account.buying_power() == D("1000")
        # Invalidated after the value was read: the next read must not trust it.
        assert account.buying_power() == D("400")

    def test_editing_returned_positions_does_not_change_the_cache(
        self, source: CountingSource, clock: MonotonicClock
    ) -> None:
        account = AccountData(source, ttl_seconds=3600, monotonic=clock)
        seen = account.positions()
        with contextlib.suppress(TypeError):  # a read-only mapping is a fine answer too
            seen["AAPL"] = D("0")  # type: ignore[index]
        assert account.positions() == {"AAPL": D("5")}


class TestOverPaperBroker:
    """PaperBroker is an AccountSource: reserved buys show in the buying power it reports."""

    def test_paper_broker_figures_through_the_cache(self, clock: MonotonicClock) -> None:
        broker = PaperBroker(buying_power="1000", positions={"AAPL": "3"})
        assert isinstance(broker, AccountSource)
        account = AccountData(broker, ttl_seconds=5, monotonic=clock)
        assert account.buying_power() == D("1000")
        assert account.positions() == {"AAPL": D("3")}
