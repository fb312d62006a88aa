"""`apply_snapshot`: bringing an order up to a broker's view of it, in whatever order views come."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from decimal import Decimal
from unittest import mock

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from orders import BrokerError, BrokerOrder, Execution, LifecycleEvent, Order, OrderState
from orders.snapshot import apply_snapshot, inferred_execution_id
from tests.factories import (
    BROKER_ID,
    CLIENT_ID,
    HookRecorder,
    assert_invariants,
    execution,
    make_order,
    order_snapshot,
    snap,
)

D = Decimal
PF = OrderState.PARTIALLY_FILLED


def triggers(events: tuple[LifecycleEvent, ...]) -> list[str]:
    return [e.trigger for e in events]


class TestAcknowledge:
    """A working snapshot acknowledges a pending order under the broker's id."""

    def test_submitted_snapshot_acknowledges_with_broker_id(self) -> None:
        order = make_order()
        events = apply_snapshot(order, snap("submitted", raw_state="confirmed"))
        assert triggers(events) == ["submit"]
        assert events[0].broker_order_id == BROKER_ID
        assert order.state is OrderState.SUBMITTED
        assert order.broker_order_id == BROKER_ID
        assert order.leaves_quantity == 100

    def test_pending_snapshot_leaves_a_pending_order_alone(self) -> None:
        order = make_order()
        assert apply_snapshot(order, snap("pending")) == ()
        assert order.state is OrderState.PENDING
        assert order.broker_order_id is None

    def test_snapshot_without_client_id_is_accepted(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("submitted", client_order_id=None))
        assert order.state is OrderState.SUBMITTED


class TestExecutions:
    """New executions are booked once each, in the listed order, and the state follows them."""

    def test_partial_then_full_fill_from_executions(self) -> None:
        order = make_order()
        e1, e2 = execution("E1", 40, "10.00"), execution("E2", 60, "10.25")
        first = apply_snapshot(order, snap("partially_filled", 40, executions=[e1]))
        assert triggers(first) == ["submit", "fill"]
        assert order.state is PF
        assert order.leaves_quantity == 60

        second = apply_snapshot(order, snap("filled", 100, executions=[e1, e2]))
        assert triggers(second) == ["fill"]
        assert second[0].execution == e2
        assert order.state is OrderState.FILLED
        assert order.executions == (e1, e2)
        assert order.average_fill_price == D("10.15")  # (400 + 615) / 100
        assert order.leaves_quantity == 0

    def test_execution_listed_twice_in_one_snapshot_is_booked_once(self) -> None:
        order = make_order()
        e1 = execution("E1", 30, "10")
        apply_snapshot(order, snap("partially_filled", 30, executions=[e1, e1]))
        assert order.executions == (e1,)
        assert order.filled_quantity == 30

    def test_already_booked_execution_is_not_booked_again(self) -> None:
        order = make_order()
        order.submit(BROKER_ID)
        order.fill("E1", 30, "10")
        events = apply_snapshot(
            order, snap("partially_filled", 30, executions=[execution("E1", 30, "10")])
        )
        assert events == ()
        assert order.filled_quantity == 30
        assert len(order.executions) == 1


class TestInferredFill:
    """A cumulative increase that no execution explains is booked at the implied price."""

    def test_inferred_fill_priced_from_broker_average(self) -> None:
        # N6: local cum 20 @ 10.00, snapshot cum 50 avg 10.12 -> a fill of 30 @ 10.20.
        order = make_order()
        apply_snapshot(order, snap("partially_filled", 20, executions=[execution("E1", 20, "10")]))
        events = apply_snapshot(order, snap("partially_filled", 50, average_price="10.12"))
        assert triggers(events) == ["fill"]
        inferred = events[0].execution
        assert inferred is not None
        assert inferred.quantity == 30
        assert inferred.price == D("10.20")
        assert inferred.execution_id == inferred_execution_id(CLIENT_ID, D(20), D(50))
        assert order.filled_quantity == 50
        assert order.average_fill_price == D("10.12")

    def test_inferred_execution_id_ignores_trailing_zeros(self) -> None:
        assert inferred_execution_id("c", D("20.00"), D("50.0")) == inferred_execution_id(
            "c", D(20), D(50)
        )
        assert inferred_execution_id("c", D(20), D(50)) != inferred_execution_id("c", D(20), D(51))
        assert inferred_execution_id("c", D(20), D(50)) != inferred_execution_id("d", D(20), D(50))

    def test_new_executions_are_booked_before_the_rest_is_inferred(self) -> None:
        order = make_order()
        e1 = execution("E1", 20, "10.00")
        events = apply_snapshot(
            order, snap("partially_filled", 50, average_price="10.12", executions=[e1])
        )
        assert triggers(events) == ["submit", "fill", "fill"]
        assert events[1].execution == e1
        inferred = events[2].execution
        assert inferred is not None
        assert (inferred.execution_id, inferred.quantity, inferred.price) == (
            inferred_execution_id(CLIENT_ID, D(20), D(50)),
            D(30),
            D("10.20"),
        )

    def test_executions_listed_after_the_inferred_fill_correct_it_once(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("partially_filled", 50, average_price="10.12"))
        late = [execution("E1", 20, "10.00"), execution("E2", 30, "10.20")]
        later = snap("partially_filled", 50, average_price="10.12", executions=late)
        (event,) = apply_snapshot(order, later)
        assert (event.trigger, event.source, event.dest) == ("correct_fill", PF, PF)
        assert event.executions == tuple(late)
        assert order.filled_quantity == 50
        assert order.executions == tuple(late)
        assert order.average_fill_price == D("10.12")
        assert apply_snapshot(order, later) == ()  # booked once, never twice

    def test_a_rounded_average_is_replaced_by_the_brokers_executions(self) -> None:
        # Robinhood rounds sub-dollar averages to cents: 2 filled at 0.0414 shows "0.04".
        order = make_order(quantity=2, limit_price="0.05")
        apply_snapshot(
            order, snap("filled", 2, quantity=2, average_price="0.04", limit_price="0.05")
        )
        assert order.average_fill_price == D("0.04")  # provisional
        listed = [execution("E1", 1, "0.0414"), execution("E2", 1, "0.0414")]
        events = apply_snapshot(
            order,
            snap(
                "filled", 2, quantity=2, average_price="0.04", limit_price="0.05", executions=listed
            ),
        )
        assert triggers(events) == ["correct_fill"]
        assert order.state is OrderState.FILLED and order.filled_quantity == 2
        assert order.average_fill_price == D("0.0414")

    def test_a_partial_listing_waits_for_the_rest_before_correcting(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("partially_filled", 50, average_price="10.12"))
        first = [execution("E1", 20, "10.00")]
        assert apply_snapshot(order, snap("partially_filled", 50, executions=first)) == ()
        assert order.average_fill_price == D("10.12")
        both = [*first, execution("E2", 30, "10.20")]
        events = apply_snapshot(order, snap("partially_filled", 50, executions=both))
        assert triggers(events) == ["correct_fill"]

    def test_only_executions_past_the_inferred_fill_are_booked(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("partially_filled", 50, average_price="10.12"))
        listed = [
            execution("E1", 20, "10.00"),
            execution("E2", 30, "10.20"),
            execution("E3", 50, "10.00"),
        ]
        events = apply_snapshot(
            order, snap("filled", 100, average_price="10.06", executions=listed)
        )
        assert triggers(events) == ["correct_fill", "fill"]
        assert events[1].execution == listed[2]
        assert order.state is OrderState.FILLED
        assert order.average_fill_price == D("10.06")

    def test_lagging_executions_already_inferred_correct_it_and_are_not_booked_again(
        self,
    ) -> None:
        # Broker truth: E1 10 @ 10, E2 20 @ 10, E3 30 @ 10.50 (cum 60, VWAP 10.25).
        order = make_order()
        e1, e2 = execution("E1", 10, "10"), execution("E2", 20, "10")
        apply_snapshot(order, snap("partially_filled", 30, average_price="10"))  # 30 inferred
        corrected = apply_snapshot(order, snap("partially_filled", 30, executions=[e1, e2]))
        assert [e.trigger for e in corrected] == ["correct_fill"]
        # E3 traded but is not listed yet: the new 30 must be inferred at 10.50.
        events = apply_snapshot(
            order, snap("partially_filled", 60, average_price="10.25", executions=[e1, e2])
        )
        assert [e.execution.execution_id for e in events if e.execution] == [
            inferred_execution_id(CLIENT_ID, D(30), D(60))
        ]
        assert order.average_fill_price == D("10.25")
        assert order.filled_notional == D("615")

    def test_lagging_executions_do_not_make_a_consistent_snapshot_unappliable(self) -> None:
        # Broker truth: E1 20 @ 1, E2 5 @ 50, E3 10 @ 1 (cum 25 avg 10.80, cum 35 avg 8).
        order = make_order()
        e1, e2 = execution("E1", 20, "1"), execution("E2", 5, "50")
        apply_snapshot(order, snap("partially_filled", 25, average_price="10.80"))
        apply_snapshot(order, snap("partially_filled", 35, average_price="8", executions=[e1, e2]))
        assert order.filled_quantity == 35
        assert order.filled_notional == D("280")

    def test_increase_without_executions_or_average_raises_and_changes_nothing(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("submitted"))
        before = order_snapshot(order)
        with pytest.raises(BrokerError, match="without executions or an average price"):
            apply_snapshot(order, snap("partially_filled", 30))
        assert order_snapshot(order) == before

    def test_average_implying_a_non_positive_price_raises_and_changes_nothing(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("partially_filled", 20, executions=[execution("E1", 20, "10")]))
        before = order_snapshot(order)
        with pytest.raises(BrokerError, match="non-positive price"):
            apply_snapshot(order, snap("partially_filled", 50, average_price="4"))
        assert order_snapshot(order) == before


class TestTerminalSnapshots:
    """Cancelled, rejected and filled snapshots finish the order after its fills are booked."""

    def test_rejected_snapshot_on_pending_order(self) -> None:
        recorder = HookRecorder()
        order = make_order(recorder=recorder)
        events = apply_snapshot(
            order, snap("rejected", raw_state="failed", reject_reason="insufficient buying power")
        )
        assert triggers(events) == ["submit", "reject"]  # acknowledged: the broker id is kept
        assert order.state is OrderState.REJECTED
        assert order.broker_order_id == BROKER_ID
        assert order.reason == "insufficient buying power"
        assert order.leaves_quantity == 0
        assert recorder.terminal_moves == [("reject", "submitted", "rejected")]

    def test_cancelled_snapshot_on_pending_order(self) -> None:
        order = make_order()
        events = apply_snapshot(order, snap("cancelled", raw_state="canceled"))
        assert triggers(events) == ["submit", "cancel"]
        assert order.state is OrderState.CANCELLED
        assert order.broker_order_id == BROKER_ID
        assert order.filled_quantity == 0
        assert order.leaves_quantity == 0

    def test_filled_snapshot_on_pending_order_acknowledges_then_fills(self) -> None:
        order = make_order()
        e1 = execution("E1", 100, "10.40")
        events = apply_snapshot(order, snap("filled", 100, executions=[e1]))
        assert triggers(events) == ["submit", "fill"]
        assert [e.dest for e in events] == [OrderState.SUBMITTED, OrderState.FILLED]
        assert order.broker_order_id == BROKER_ID

    def test_partially_filled_then_cancelled_keeps_the_fills(self) -> None:
        order = make_order()
        e1, e2 = execution("E1", 20, "10"), execution("E2", 10, "10.30")
        apply_snapshot(order, snap("partially_filled", 20, executions=[e1]))
        events = apply_snapshot(order, snap("cancelled", 30, executions=[e1, e2]))
        assert triggers(events) == ["fill", "cancel"]
        assert order.state is OrderState.CANCELLED
        assert order.filled_quantity == 30
        assert order.executions == (e1, e2)
        assert order.average_fill_price == D("10.10")
        assert order.leaves_quantity == 0

    def test_cancelled_with_fills_on_pending_order(self) -> None:
        order = make_order()
        events = apply_snapshot(order, snap("cancelled", 40, average_price="10.05"))
        assert triggers(events) == ["submit", "fill", "cancel"]
        assert order.state is OrderState.CANCELLED
        assert order.filled_quantity == 40
        assert order.average_fill_price == D("10.05")

    def test_filled_status_before_its_trades_waits_for_the_quantity(self) -> None:
        # H2: the broker says `filled` while its cumulative quantity still lags.
        order = make_order()
        e1 = execution("E1", 60, "10")
        events = apply_snapshot(order, snap("filled", 60, executions=[e1]))
        assert order.state is PF
        assert triggers(events) == ["submit", "fill"]
        apply_snapshot(order, snap("filled", 100, executions=[e1, execution("E2", 40, "10")]))
        assert order.state is OrderState.FILLED

    def test_rejected_after_a_partial_fill_ends_cancelled_with_its_fills(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("partially_filled", 30, executions=[execution("E1", 30, "10")]))
        events = apply_snapshot(
            order, snap("rejected", 30, executions=[execution("E1", 30, "10")], reject_reason="x")
        )
        assert triggers(events) == ["cancel"]
        assert order.state is OrderState.CANCELLED
        assert order.filled_quantity == 30
        assert order.reason is not None
        assert "rejected by the broker" in order.reason

    def test_fills_reported_on_a_locally_rejected_order_raise(self) -> None:
        order = make_order()
        order.reject("no")
        before = order_snapshot(order)
        with pytest.raises(BrokerError, match="rejected"):
            apply_snapshot(order, snap("filled", 100, average_price="10"))
        assert order_snapshot(order) == before


class TestLateFill:
    """Fills reported after the cancel are booked; the order stays cancelled."""

    def test_late_fill_on_cancelled_order(self) -> None:
        recorder = HookRecorder()
        order = make_order(recorder=recorder)
        apply_snapshot(order, snap("partially_filled", 20, executions=[execution("E1", 20, "10")]))
        order.cancel("user")
        recorder.exposure.clear()
        recorder.terminal.clear()
        events = apply_snapshot(
            order,
            snap(
                "cancelled", 35, executions=[execution("E1", 20, "10"), execution("E2", 15, "11")]
            ),
        )
        assert triggers(events) == ["fill"]
        assert order.state is OrderState.CANCELLED
        assert order.filled_quantity == 35
        assert order.leaves_quantity == 0
        assert order.average_fill_price == D(20 * 10 + 15 * 11) / 35
        assert recorder.exposure_moves == [("fill", "cancelled", "cancelled")]
        assert recorder.terminal == []


class TestStaleAndRepeated:
    """Stale snapshots and repeats change nothing and return no events."""

    def test_lower_cumulative_quantity_is_ignored(self) -> None:
        # N5: a poll showing cum 30 after a fill set cum 50.
        order = make_order()
        apply_snapshot(order, snap("partially_filled", 50, average_price="10"))
        before = order_snapshot(order)
        assert apply_snapshot(order, snap("partially_filled", 30, average_price="10")) == ()
        assert order_snapshot(order) == before

    def test_unconfirmed_after_filled_is_ignored(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("filled", 100, average_price="10"))
        before = order_snapshot(order)
        assert apply_snapshot(order, snap("submitted", 0, raw_state="unconfirmed")) == ()
        assert order_snapshot(order) == before
        assert order.state is OrderState.FILLED

    def test_working_snapshot_after_cancel_is_ignored(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("partially_filled", 10, average_price="10"))
        apply_snapshot(order, snap("cancelled", 10, average_price="10"))
        before = order_snapshot(order)
        assert apply_snapshot(order, snap("partially_filled", 10, average_price="10")) == ()
        assert order_snapshot(order) == before

    @pytest.mark.parametrize(
        "snapshot",
        [
            snap("submitted"),
            snap("partially_filled", 30, average_price="10.10"),
            snap("partially_filled", 30, executions=[execution("E1", 30, "10")]),
            snap("filled", 100, average_price="10.10"),
            snap("cancelled", 40, average_price="10.10"),
            snap("rejected", reject_reason="no"),
        ],
        ids=["submitted", "inferred", "executions", "filled", "cancelled", "rejected"],
    )
    def test_same_snapshot_twice_changes_nothing_the_second_time(
        self, snapshot: BrokerOrder
    ) -> None:
        recorder = HookRecorder()
        order = make_order(recorder=recorder)
        assert apply_snapshot(order, snapshot) != ()
        before, heard = order_snapshot(order), recorder.counts()
        assert apply_snapshot(order, snapshot) == ()
        assert order_snapshot(order) == before
        assert recorder.counts() == heard


class TestRefusedSnapshots:
    """A snapshot that cannot belong to the order, or overfills it, raises and changes nothing."""

    def test_other_client_order_id(self) -> None:
        order = make_order()
        before = order_snapshot(order)
        with pytest.raises(BrokerError, match="belongs to client order other"):
            apply_snapshot(order, snap("submitted", client_order_id="other"))
        assert order_snapshot(order) == before

    def test_other_broker_order_id(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("submitted"))
        before = order_snapshot(order)
        with pytest.raises(BrokerError, match="broker-2"):
            apply_snapshot(
                order, snap("filled", 100, average_price="10", broker_order_id="broker-2")
            )
        assert order_snapshot(order) == before

    def test_overfilling_snapshot(self) -> None:
        recorder = HookRecorder()
        order = make_order(recorder=recorder)
        apply_snapshot(order, snap("partially_filled", 60, average_price="10"))
        before, heard = order_snapshot(order), recorder.counts()
        with pytest.raises(BrokerError, match="overfill"):
            apply_snapshot(order, snap("filled", 110, average_price="10"))
        assert order_snapshot(order) == before
        assert recorder.counts() == heard

    def test_overfilling_snapshot_on_pending_order_is_not_acknowledged(self) -> None:
        order = make_order()
        with pytest.raises(BrokerError):
            apply_snapshot(order, snap("filled", 101, average_price="10"))
        assert order.state is OrderState.PENDING
        assert order.broker_order_id is None


class TestDeterminism:
    """Two orders fed the same snapshots end identical, inferred ids included."""

    def test_two_fresh_orders_end_identical(self) -> None:
        listed = [
            execution("E1", 10, "10.00"),
            execution("E2", 15, "10.10"),
            execution("E3", 45, "10.13"),
            execution("E4", 10, "10.25"),
        ]
        feed = [
            snap("submitted"),
            snap("partially_filled", 25, average_price="10.06"),
            snap("partially_filled", 70, average_price="10.105"),
            snap("cancelled", 80, average_price="10.123125", executions=listed),
        ]
        a, b = make_order(), make_order()
        for snapshot in feed:
            apply_snapshot(a, snapshot)
        for snapshot in feed:
            apply_snapshot(b, snapshot)
        assert order_snapshot(a) == order_snapshot(b)
        # The inferred fills stood for E1-E3 until the broker listed them.
        assert [(e.execution_id, e.quantity, e.price) for e in a.executions] == [
            (x.execution_id, x.quantity, x.price) for x in listed
        ]
        assert [e.trigger for e in a.history][-3:] == ["correct_fill", "fill", "cancel"]
        assert a.filled_quantity == 80
        assert a.average_fill_price == D("10.123125")
        assert a.state is OrderState.CANCELLED


# -- properties -------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """A plausible broker history of one order, oldest snapshot first."""

    quantity: Decimal
    executions: tuple[Execution, ...]
    snapshots: tuple[BrokerOrder, ...]

    def notional(self, count: int) -> Decimal:
        return sum((e.quantity * e.price for e in self.executions[:count]), D(0))


def _expected_state(last: BrokerOrder, quantity: Decimal) -> OrderState:
    if last.cumulative_quantity == quantity:
        return OrderState.FILLED
    if last.state in (OrderState.CANCELLED, OrderState.REJECTED):
        return last.state
    return PF if last.cumulative_quantity > 0 else OrderState.SUBMITTED


_WORKING_WORDS = {OrderState.SUBMITTED: ("queued", "unconfirmed", "confirmed")}


@st.composite
def histories(draw: st.DrawFn, *, free_lag: bool = False) -> History:
    """Snapshots with nondecreasing cumulative quantity and executions that may lag it.

    Listed executions are always a prefix of the broker's executions. By default the list lags
    in a way any subsequence of the history keeps (complete up to `stuck` executions, then stuck
    there, then complete again), so shuffled feeds stay plausible; `free_lag` lets the listed
    prefix grow by any amount.
    """
    quantity = draw(st.integers(1, 300))
    outcome = draw(st.sampled_from(["filled", "cancelled", "working", "rejected"]))
    total = {"filled": quantity, "rejected": 0}.get(outcome)
    if total is None:
        total = draw(st.integers(0, quantity - 1))
    cuts = sorted(draw(st.sets(st.integers(1, total - 1), max_size=6))) if total > 1 else []
    bounds = [0, *cuts, total] if total > 0 else [0]
    prices = st.decimals(min_value="0.01", max_value="999.99", places=2)
    executions = tuple(
        Execution(f"X{i}", D(high - low), draw(prices))
        for i, (low, high) in enumerate(itertools.pairwise(bounds))
    )
    n = len(executions)
    progress = [*sorted(draw(st.lists(st.integers(0, n), max_size=7))), n]
    stuck = draw(st.integers(0, n))
    catch_up = draw(st.integers(0, len(progress)))
    listed_before = 0
    snapshots = []
    for index, k in enumerate(progress):
        if free_lag:
            listed = draw(st.integers(listed_before, k))
        elif k <= stuck or index >= catch_up:
            listed = k
        else:
            listed = stuck
        listed_before = listed
        cum = sum((e.quantity for e in executions[:k]), D(0))
        last = index == len(progress) - 1
        if cum == quantity:
            state = OrderState.FILLED
        elif last and outcome in ("cancelled", "rejected"):
            state = OrderState(outcome)
        else:
            state = PF if cum > 0 else OrderState.SUBMITTED
        average = None
        if cum > 0 and (listed < k or draw(st.booleans())):
            average = sum((e.quantity * e.price for e in executions[:k]), D(0)) / cum
        words = _WORKING_WORDS.get(state, (str(state),))
        snapshots.append(
            BrokerOrder(
                broker_order_id=BROKER_ID,
                client_order_id=CLIENT_ID,
                symbol="AAPL",
                side="buy",
                quantity=D(quantity),
                limit_price=D(1000),
                state=state,
                raw_state=draw(st.sampled_from(words)),
                cumulative_quantity=cum,
                average_price=average,
                executions=executions[:listed],
            )
        )
    return History(D(quantity), executions, tuple(snapshots))


def _feed(order: Order, feed: list[BrokerOrder]) -> None:
    """Apply every snapshot, checking the per-step properties along the way."""
    previous = order.filled_quantity
    for snapshot in feed:
        apply_snapshot(order, snapshot)
        assert previous <= order.filled_quantity <= order.quantity
        ids = [e.execution_id for e in order.executions]
        assert len(ids) == len(set(ids))
        assert_invariants(order)
        previous = order.filled_quantity


def _check_end(order: Order, history: History) -> None:
    last = history.snapshots[-1]
    assert order.filled_quantity == max(s.cumulative_quantity for s in history.snapshots)
    assert order.filled_quantity == last.cumulative_quantity
    assert order.state is _expected_state(last, history.quantity)
    if order.state not in (OrderState.CANCELLED, OrderState.REJECTED) or order.filled_quantity:
        assert order.broker_order_id == BROKER_ID


def _check_notional(order: Order, history: History) -> None:
    """The order's notional matches the broker's executions up to the last cumulative quantity."""
    last = history.snapshots[-1]
    k = next(
        i
        for i in range(len(history.executions) + 1)
        if sum((e.quantity for e in history.executions[:i]), D(0)) == last.cumulative_quantity
    )
    assert abs(order.filled_notional - history.notional(k)) < D("1e-12")


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


class TestSnapshotProperties:
    """Any plausible broker history, fed in order, with repeats or shuffled, ends consistent."""

    @PROPERTY_SETTINGS
    @given(histories())
    def test_in_order(self, history: History) -> None:
        order = make_order(history.quantity, 1000)
        _feed(order, list(history.snapshots))
        _check_end(order, history)
        _check_notional(order, history)

    @PROPERTY_SETTINGS
    @given(histories(), st.randoms(use_true_random=False))
    def test_with_repeats_and_stale_redeliveries(
        self, history: History, rng: random.Random
    ) -> None:
        order = make_order(history.quantity, 1000)
        previous = order.filled_quantity
        for index, snapshot in enumerate(history.snapshots):
            apply_snapshot(order, snapshot)
            for _ in range(rng.randint(0, 2)):
                before = order_snapshot(order)
                assert apply_snapshot(order, snapshot) == ()
                assert order_snapshot(order) == before
            if rng.random() < 0.5:  # an older view, redelivered late
                stale = history.snapshots[rng.randint(0, index)]
                before = order_snapshot(order)
                assert apply_snapshot(order, stale) == ()
                assert order_snapshot(order) == before
            assert previous <= order.filled_quantity <= order.quantity
            assert_invariants(order)
            previous = order.filled_quantity
        _check_end(order, history)
        _check_notional(order, history)

    @PROPERTY_SETTINGS
    @given(st.data())
    def test_shuffled(self, data: st.DataObject) -> None:
        history = data.draw(histories())
        feed = data.draw(st.permutations(history.snapshots))
        order = make_order(history.quantity, 1000)
        _feed(order, list(feed))
        # The newest snapshot carries the most fills and, if any, the terminal state: it wins.
        _check_end(order, history)

    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate),
    )
    @given(histories(free_lag=True))
    def test_in_order_with_any_execution_lag(self, history: History) -> None:
        order = make_order(history.quantity, 1000)
        _feed(order, list(history.snapshots))
        _check_end(order, history)
        _check_notional(order, history)


class TestOneMoreFillShortcut:
    """A report listing one more execution is planned without the general planner's ledger;
    the two must never disagree."""

    @PROPERTY_SETTINGS
    @given(st.data())
    def test_any_feed_ends_as_the_general_plan_leaves_it(self, data: st.DataObject) -> None:
        history = data.draw(histories(free_lag=data.draw(st.booleans())))
        feed = data.draw(st.permutations(history.snapshots))
        shortcut = make_order(history.quantity, 1000, client_order_id=CLIENT_ID)
        _feed(shortcut, list(feed))
        with mock.patch.object(Order, "lists_one_more", return_value=False):
            general = make_order(history.quantity, 1000, client_order_id=CLIENT_ID)
            _feed(general, list(feed))
        assert order_snapshot(shortcut) == order_snapshot(general)
        assert [(e.trigger, e.dest, e.execution) for e in shortcut.history] == [
            (e.trigger, e.dest, e.execution) for e in general.history
        ]

    def test_the_common_report_takes_it(self) -> None:
        order = make_order(100, 1000)
        apply_snapshot(order, snap("submitted"))
        first = execution("X0", 40, "10.00")
        apply_snapshot(order, snap("partially_filled", 40, executions=(first,)))
        assert order.lists_one_more((first, execution("X1", 60, "10.00")))
        assert not order.lists_one_more((execution("X1", 60, "10.00"), first))
        assert not order.lists_one_more((first, first))


class TestBrokerCancelCause:
    """A cancel carries the broker's stated cause into the order's reason."""

    def test_an_end_of_day_cancel_says_so(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("submitted"))
        events = apply_snapshot(order, snap("cancelled", cancel_reason="end_of_day"))
        assert [(e.trigger, e.reason) for e in events] == [("cancel", "end_of_day")]
        assert order.reason == "end_of_day"

    def test_without_a_cause_the_reject_reason_or_nothing_is_kept(self) -> None:
        order = make_order()
        apply_snapshot(order, snap("cancelled"))
        assert order.state is OrderState.CANCELLED and order.reason is None


class TestCorrectionThenInference:
    """One snapshot that corrects an inferred fill and infers a new one prices the new one
    from the corrected books."""

    def test_the_average_matches_the_brokers(self) -> None:
        order = make_order(quantity=10)
        apply_snapshot(order, snap("partially_filled", 5, quantity=10, average_price="10"))
        listed = [execution("e1", 5, "10.2")]
        apply_snapshot(
            order,
            snap("filled", 10, quantity=10, average_price="10.5", executions=listed),
        )
        assert order.filled_quantity == 10
        assert order.average_fill_price == Decimal("10.5")
        assert order.filled_notional == Decimal("105.0")
