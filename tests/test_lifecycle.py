"""Example tests of `Order`: construction, triggers, accounting and hooks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from orders import (
    IllegalTransition,
    InvalidOrderError,
    LifecycleEvent,
    Order,
    OrderError,
    OrderHooks,
    OrderState,
    OverfillError,
    Side,
    TimeInForce,
)

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def make_order(**overrides: Any) -> Order:
    kwargs: dict[str, Any] = {"client_order_id": "c-1", "clock": lambda: T0}
    kwargs.update(overrides)
    return Order("AAPL", "buy", Decimal(100), Decimal("10.50"), **kwargs)


class TestConstruction:
    """An order starts pending, with exact Decimal fields, or is refused with a typed error."""

    def test_fields_and_defaults(self) -> None:
        order = Order("BRK.B", "sell", "3", 412, strategy="momentum")
        assert order.state is OrderState.PENDING
        assert order.side is Side.SELL
        assert order.quantity == Decimal(3) and isinstance(order.quantity, Decimal)
        assert order.limit_price == Decimal(412)
        assert order.time_in_force is TimeInForce.GFD
        assert order.strategy == "momentum"
        assert uuid.UUID(order.client_order_id).version == 4
        assert order.filled_quantity == 0 and order.leaves_quantity == 3
        assert order.average_fill_price is None
        assert order.history == () and order.executions == ()
        assert order.broker_order_id is None and order.reason is None
        assert not order.cancel_requested and not order.is_terminal

    def test_each_order_gets_its_own_client_id(self) -> None:
        ids = {Order("AAPL", "buy", 1, 1).client_order_id for _ in range(50)}
        assert len(ids) == 50

    @pytest.mark.parametrize(
        ("args", "field"),
        [
            (("aapl", "buy", 1, 1), "symbol"),
            (("", "buy", 1, 1), "symbol"),
            (("TOOLONGSYMBOL", "buy", 1, 1), "symbol"),
            (("1ABC", "buy", 1, 1), "symbol"),
            (("AAPL", "hold", 1, 1), "side"),
            (("AAPL", "buy", 0, 1), "quantity"),
            (("AAPL", "buy", -5, 1), "quantity"),
            (("AAPL", "buy", "NaN", 1), "quantity"),
            (("AAPL", "buy", "Infinity", 1), "quantity"),
            (("AAPL", "buy", 1.5, 1), "quantity"),
            (("AAPL", "buy", 1, 10.07), "limit_price"),
            (("AAPL", "buy", 1, "-0.01"), "limit_price"),
            (("AAPL", "buy", 1, "ten"), "limit_price"),
            (("AAPL", "buy", True, 1), "quantity"),
        ],
    )
    def test_bad_input_is_refused_with_the_field_named(
        self, args: tuple[Any, ...], field: str
    ) -> None:
        with pytest.raises(InvalidOrderError) as info:
            Order(*args)
        assert info.value.field == field
        assert isinstance(info.value, OrderError)

    def test_float_money_message_says_what_to_pass(self) -> None:
        with pytest.raises(InvalidOrderError, match="Decimal or a str"):
            Order("AAPL", "buy", 1, 10.07)  # type: ignore[arg-type]  # what is refused


class TestTriggers:
    """Triggers move the order along the table and book fills exactly."""

    def test_full_life_with_vwap(self) -> None:
        order = make_order()
        assert order.submit("B-1") is True
        assert order.broker_order_id == "B-1"
        assert order.fill("x1", 40, "10.40") is True
        assert order.state is OrderState.PARTIALLY_FILLED
        assert order.fill("x2", "60", Decimal("10.45")) is True
        assert order.is_terminal and order.leaves_quantity == 0
        assert order.history[-1].dest is OrderState.FILLED
        assert order.filled_quantity == 100 and order.leaves_quantity == 0
        assert order.average_fill_price == Decimal("10.43")
        assert [e.trigger for e in order.history] == ["submit", "fill", "fill"]
        assert all(e.at == T0 for e in order.history)

    def test_explicit_time_wins_over_the_clock(self) -> None:
        order = make_order()
        later = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
        order.submit(at=later)
        assert order.history[0].at == later

    def test_naive_time_is_refused_and_changes_nothing(self) -> None:
        order = make_order()
        with pytest.raises(InvalidOrderError):
            order.submit(at=datetime(2026, 3, 2, 15, 0))  # noqa: DTZ001 - the point of the test
        assert order.state is OrderState.PENDING and order.history == ()

    def test_duplicate_execution_is_a_no_op(self) -> None:
        order = make_order()
        order.submit()
        order.fill("x1", 10, "10.50")
        assert order.fill("x1", 10, "10.50") is False
        assert order.filled_quantity == 10 and len(order.history) == 2

    def test_overfill_is_refused_and_changes_nothing(self) -> None:
        order = make_order()
        order.submit()
        order.fill("x1", 60, "10.50")
        with pytest.raises(OverfillError) as info:
            order.fill("x2", 50, "10.50")
        assert (info.value.quantity, info.value.filled, info.value.attempted) == (
            Decimal(100),
            Decimal(60),
            Decimal(50),
        )
        assert order.filled_quantity == 60 and [e.execution_id for e in order.executions] == ["x1"]

    def test_illegal_trigger_names_order_state_and_trigger(self) -> None:
        order = make_order()
        with pytest.raises(IllegalTransition) as info:
            order.fill("x1", 1, 1)
        assert (info.value.order_id, info.value.state, info.value.trigger) == (
            "c-1",
            "pending",
            "fill",
        )
        assert "c-1" in str(info.value) and "pending" in str(info.value)
        assert "fill" in str(info.value)

    def test_reasons_are_kept(self) -> None:
        rejected = make_order()
        rejected.reject("insufficient buying power")
        assert rejected.reason == "insufficient buying power"
        cancelled = make_order(client_order_id="c-2")
        cancelled.submit()
        cancelled.cancel("end of day")
        assert cancelled.reason == "end of day" and cancelled.leaves_quantity == 0

    def test_late_fill_after_cancel_is_booked_and_state_stays(self) -> None:
        order = make_order()
        order.submit()
        order.fill("x1", 30, "10")
        order.cancel()
        assert order.fill("x2", 20, "11") is True
        assert order.state is OrderState.CANCELLED
        assert order.filled_quantity == 50 and order.leaves_quantity == 0
        assert order.average_fill_price == Decimal("10.4")


class TestHistoryReaders:
    """Every reader of the history and executions agrees with what the observers were told
    (an order keeps them flat; see orders._order_view)."""

    def test_each_reader_agrees_with_the_events_heard(self) -> None:
        heard: list[LifecycleEvent] = []
        ticks = iter(datetime(2026, 3, 2, 14, 30, s, tzinfo=UTC) for s in range(60))
        order = make_order(
            hooks=OrderHooks(on_event=(lambda o, e: heard.append(e),)), clock=lambda: next(ticks)
        )
        assert (order.history, order.event_count, order.executions) == ((), 0, ())
        assert (order.first_event_at, order.last_event_at) == (None, None)
        order.submit("b-1")
        order.request_cancel()
        order.cancel_rejected("too late")
        order.fill("x1", 30, "10", T0)
        order.fill("x2", 20, "11")
        order.cancel("end of day")
        order.fill("x3", 5, "12")  # a late fill
        history = tuple(heard)
        assert order.history == history
        assert order.event_count == len(history)
        for start in range(-len(history) - 2, len(history) + 2):
            assert order.events_since(start) == history[start:]
        assert (order.first_event_at, order.last_event_at) == (history[0].at, history[-1].at)
        assert order.executions == tuple(e.execution for e in history if e.execution)
        assert order.has_execution("x2") and not order.has_execution("b-1")
        assert order.filled_notional == Decimal(30 * 10 + 20 * 11 + 5 * 12)


class Recorder:
    """Observers that record what they saw, and one that always fails."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, OrderState, Decimal]] = []
        self.errors: list[tuple[str, Exception]] = []

    def observer(self, name: str) -> Any:
        def observe(order: Order, event: LifecycleEvent) -> None:
            self.seen.append((name, event.trigger, order.state, order.filled_quantity))

        return observe

    def all_hooks(self) -> OrderHooks:
        """One recording observer on each list, named after the collaborator it stands for."""
        return OrderHooks(
            on_event=[self.observer("audit")],
            on_exposure_change=[self.observer("account")],
            on_terminal=[self.observer("safety")],
        )

    @staticmethod
    def broken(order: Order, event: LifecycleEvent) -> None:
        raise RuntimeError("journal disk full")

    def on_error(
        self, observer: Any, order: Order, event: LifecycleEvent, error: Exception
    ) -> None:
        self.errors.append((event.trigger, error))


class TestHooks:
    """Hooks see a committed order, in a fixed order, and one failure does not stop the rest."""

    def test_hooks_see_the_committed_order(self) -> None:
        rec = Recorder()
        order = make_order(hooks=rec.all_hooks())
        order.submit()
        order.fill("x1", 100, "10.50")
        assert rec.seen == [
            ("audit", "submit", OrderState.SUBMITTED, Decimal(0)),
            ("account", "submit", OrderState.SUBMITTED, Decimal(0)),  # the broker reserved cash
            ("audit", "fill", OrderState.FILLED, Decimal(100)),
            ("account", "fill", OrderState.FILLED, Decimal(100)),
            ("safety", "fill", OrderState.FILLED, Decimal(100)),
        ]

    def test_an_order_without_hooks_reports_empty_ones_and_can_be_given_some(self) -> None:
        heard: list[str] = []
        order = Order("AAPL", "buy", 100, "10.50")  # the default hooks and clock
        assert order.hooks == OrderHooks()
        before = datetime.now(UTC)
        order.submit("b-1")
        assert before <= order.history[-1].at <= datetime.now(UTC)  # the UTC wall clock
        hooks = OrderHooks(on_event=(lambda o, e: heard.append(e.trigger),))
        order.attach_hooks(hooks, clock=lambda: T0)
        assert order.hooks is hooks
        order.fill("x1", 40, "10.50")
        assert heard == ["fill"]
        assert order.history[-1].at == T0
        order.attach_hooks(OrderHooks())
        order.fill("x2", 60, "10.50")
        assert heard == ["fill"]
        assert order.hooks == OrderHooks()

    def test_internal_events_reach_only_the_event_hooks(self) -> None:
        rec = Recorder()
        order = make_order(hooks=rec.all_hooks())
        order.request_cancel()
        order.cancel_rejected("too late")
        assert [name for name, *_ in rec.seen] == ["audit", "audit"]

    def test_a_failing_observer_is_reported_and_the_others_still_run(self) -> None:
        rec = Recorder()
        hooks = OrderHooks(
            on_event=[rec.broken, rec.observer("audit")],
            on_terminal=[rec.broken, rec.observer("safety")],
            on_error=rec.on_error,
        )
        order = make_order(hooks=hooks)
        assert order.reject("no") is True
        assert order.state is OrderState.REJECTED and len(order.history) == 1
        assert [name for name, *_ in rec.seen] == ["audit", "safety"]
        assert [trigger for trigger, _ in rec.errors] == ["reject", "reject"]

    def test_a_failing_error_handler_does_not_break_the_order(self) -> None:
        def handler(*_: Any) -> None:
            raise RuntimeError("handler broke too")

        order = make_order(hooks=OrderHooks(on_event=[Recorder.broken], on_error=handler))
        assert order.submit() is True
        assert order.state is OrderState.SUBMITTED

    def test_refused_triggers_fire_no_hook(self) -> None:
        rec = Recorder()
        order = make_order(hooks=OrderHooks(on_event=[rec.observer("audit")]))
        with pytest.raises(IllegalTransition):
            order.cancel_rejected()
        assert order.request_cancel() is True
        assert order.request_cancel() is False
        assert len(rec.seen) == 1
