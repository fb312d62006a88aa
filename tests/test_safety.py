"""SafetyChecks: the (symbol, side) duplicate guard, the circuit breakers and the kill switch."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders import Order, SafetyChecks, SafetyViolation, Side
from tests.factories import MonotonicClock, make_order

D = Decimal


def order(cid: str, symbol: str = "AAPL", side: str = "buy") -> Order:
    return make_order(client_order_id=cid, symbol=symbol, side=side)


def check(safety: SafetyChecks, symbol: str = "AAPL", side: str = "buy", **kw: object) -> list[str]:
    kw.setdefault("notional", D("100"))
    return safety.check(symbol=symbol, side=side, **kw)  # type: ignore[arg-type]


class TestDuplicateGuard:
    """One working order per (symbol, side); only the order that holds a guard can free it."""

    def test_register_takes_the_guard(self) -> None:
        safety = SafetyChecks()
        first = order("a")
        safety.register(first)
        assert safety.has_pending("AAPL", "buy")
        assert safety.has_pending("AAPL", Side.BUY)
        assert safety.holder("AAPL", "buy") == "a"
        assert safety.pending_orders() == {("AAPL", Side.BUY): "a"}

    def test_other_side_and_other_symbol_are_free(self) -> None:
        safety = SafetyChecks()
        safety.register(order("a"))
        assert not safety.has_pending("AAPL", "sell")
        assert not safety.has_pending("MSFT", "buy")
        safety.register(order("b", side="sell"))
        safety.register(order("c", symbol="MSFT"))
        assert len(safety.pending_orders()) == 3

    def test_second_order_for_the_same_key_is_refused_naming_the_holder(self) -> None:
        safety = SafetyChecks()
        safety.register(order("a"))
        with pytest.raises(SafetyViolation) as caught:
            safety.register(order("b"))
        assert "a" in caught.value.reasons[0]
        assert "duplicate" in caught.value.reasons[0]
        assert safety.holder("AAPL", "buy") == "a"

    def test_check_reports_the_duplicate_before_anything_is_registered(self) -> None:
        safety = SafetyChecks()
        safety.register(order("a"))
        reasons = check(safety)
        assert len(reasons) == 1
        assert "duplicate" in reasons[0]
        assert "a" in reasons[0]
        assert check(safety, side="sell") == []

    def test_registering_the_holder_again_is_harmless(self) -> None:
        safety = SafetyChecks()
        first = order("a")
        safety.register(first)
        safety.register(first)
        assert safety.holder("AAPL", "buy") == "a"

    def test_only_the_holder_releases_its_guard(self) -> None:
        safety = SafetyChecks()
        holder, stranger = order("a"), order("b")
        safety.register(holder)
        assert safety.release(stranger) is False
        assert safety.holder("AAPL", "buy") == "a"
        assert safety.release(holder) is True
        assert not safety.has_pending("AAPL", "buy")
        assert safety.release(holder) is False

    def test_terminal_hook_of_an_old_order_does_not_free_a_newer_guard(self) -> None:
        safety = SafetyChecks()
        old, new = order("old"), order("new")
        safety.register(old)
        old.submit("b-old")
        old.cancel("done")
        safety.on_order_terminal(old, old.history[-1])
        safety.register(new)
        # A late duplicate terminal notification of the old order arrives.
        safety.on_order_terminal(old, old.history[-1])
        assert safety.holder("AAPL", "buy") == "new"

    def test_pending_orders_is_a_copy(self) -> None:
        safety = SafetyChecks()
        safety.register(order("a"))
        safety.pending_orders().clear()
        assert safety.has_pending("AAPL", "buy")


class TestBreakers:
    """Consecutive rejects or failures trip a breaker that says why and resets after a cooldown."""

    def test_rejects_trip_after_the_limit_and_say_why(self) -> None:
        clock = MonotonicClock()
        safety = SafetyChecks(max_consecutive_rejects=3, monotonic=clock)
        safety.note_rejected("no")
        safety.note_rejected("no")
        assert safety.tripped() is None
        assert check(safety) == []
        safety.note_rejected("Not enough buying power.")
        why = safety.tripped()
        assert why is not None
        assert "3 consecutive rejects" in why
        assert "Not enough buying power." in why
        reasons = check(safety, symbol="MSFT")
        assert any("circuit breaker tripped" in r and "resets in 300 s" in r for r in reasons)

    def test_failures_trip_after_the_limit_and_say_why(self) -> None:
        safety = SafetyChecks(max_consecutive_failures=2, monotonic=MonotonicClock())
        safety.note_failure("HTTP 503")
        assert safety.tripped() is None
        safety.note_failure("HTTP 503")
        why = safety.tripped()
        assert why is not None
        assert "2 consecutive broker failures" in why
        assert "HTTP 503" in why

    def test_an_accepted_order_resets_the_counts(self) -> None:
        safety = SafetyChecks(
            max_consecutive_rejects=2, max_consecutive_failures=2, monotonic=MonotonicClock()
        )
        safety.note_rejected("no")
        safety.note_failure("timeout")
        safety.note_accepted()
        safety.note_rejected("no")
        safety.note_failure("timeout")
        assert safety.tripped() is None

    def test_rejects_and_failures_count_separately(self) -> None:
        safety = SafetyChecks(
            max_consecutive_rejects=2, max_consecutive_failures=2, monotonic=MonotonicClock()
        )
        safety.note_rejected("no")
        safety.note_failure("timeout")
        assert safety.tripped() is None

    def test_cooldown_closes_the_breaker_and_clears_the_counts(self) -> None:
        clock = MonotonicClock()
        safety = SafetyChecks(
            max_consecutive_rejects=2, breaker_cooldown_seconds=60, monotonic=clock
        )
        safety.note_rejected("no")
        safety.note_rejected("no")
        clock.advance(59.9)
        assert safety.tripped() is not None
        assert any("resets in 0 s" in r for r in check(safety))
        clock.advance(0.1)
        assert safety.tripped() is None
        assert check(safety) == []
        # The counts restarted: one more reject is not enough to trip again.
        safety.note_rejected("no")
        assert safety.tripped() is None

    def test_reset_closes_the_breaker_by_hand(self) -> None:
        safety = SafetyChecks(max_consecutive_failures=1, monotonic=MonotonicClock())
        safety.note_failure("boom")
        assert safety.tripped() is not None
        safety.reset()
        assert safety.tripped() is None
        assert check(safety) == []


class TestKillSwitch:
    """halt() refuses every new order, with its reason, until resume()."""

    def test_halt_and_resume(self) -> None:
        clock = MonotonicClock()
        safety = SafetyChecks(breaker_cooldown_seconds=1, monotonic=clock)
        safety.halt("market data looks wrong")
        reasons = check(safety)
        assert reasons == ["trading halted: market data looks wrong; call resume() to trade again"]
        clock.advance(10_000)  # a halt has no cooldown
        assert check(safety, symbol="MSFT", side="sell") == reasons
        safety.reset()  # closing the breakers does not lift a halt
        assert check(safety) == reasons
        safety.resume()
        assert check(safety) == []

    def test_halt_without_a_reason_still_says_who(self) -> None:
        safety = SafetyChecks()
        safety.halt("")
        assert "halted by the operator" in check(safety)[0]


class TestLimits:
    """The per-minute order limit, the notional cap and buying power."""

    def test_per_minute_limit_is_a_sliding_window(self) -> None:
        clock = MonotonicClock()
        safety = SafetyChecks(max_orders_per_minute=3, monotonic=clock)
        for _ in range(2):
            safety.note_sent()
            clock.advance(10)
        assert check(safety) == []
        safety.note_sent()  # at t=20
        reasons = check(safety)
        assert reasons == ["rate: 3 orders in the last minute, the limit is 3"]
        clock.advance(39.9)  # t=59.9: the first order (t=0) is still inside the minute
        assert check(safety) == reasons
        clock.advance(0.1)  # t=60: it leaves the window
        assert check(safety) == []

    def test_notional_cap(self) -> None:
        safety = SafetyChecks(max_notional_per_order=D("1000"))
        assert check(safety, notional=D("1000")) == []
        reasons = check(safety, notional=D("1000.01"))
        assert reasons == ["notional 1000.01 exceeds the per-order cap 1000"]
        assert check(safety, side="sell", notional=D("1000.01")) == reasons

    def test_buying_power_limits_buys_only(self) -> None:
        safety = SafetyChecks()
        assert check(safety, notional=D("500"), buying_power=D("500")) == []
        assert check(safety, notional=D("500.01"), buying_power=D("500")) == [
            "notional 500.01 exceeds buying power 500"
        ]
        assert check(safety, side="sell", notional=D("500.01"), buying_power=D("500")) == []

    def test_every_reason_is_listed_at_once(self) -> None:
        safety = SafetyChecks(
            max_consecutive_rejects=1,
            max_orders_per_minute=1,
            max_notional_per_order=D("10"),
            monotonic=MonotonicClock(),
        )
        safety.register(order("a"))
        safety.note_sent()
        safety.note_rejected("no")
        safety.halt("stop")
        reasons = check(safety, notional=D("20"), buying_power=D("5"))
        assert len(reasons) == 6
