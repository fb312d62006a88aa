"""FIX-style order scenarios (anchors.md section 7), through triggers and through broker snapshots.

FIX quantities are scaled /100 (10000 -> 100); prices are ours and chosen to give exact decimals.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from orders import IllegalTransition, Order, OrderState, OverfillError
from orders.errors import BrokerError
from orders.snapshot import apply_snapshot, inferred_execution_id
from tests.factories import (
    BROKER_ID,
    CLIENT_ID,
    NOW,
    HookRecorder,
    assert_invariants,
    execution,
    make_order,
    order_snapshot,
    snap,
)

D = Decimal
PF = OrderState.PARTIALLY_FILLED


def trigger_names(order: Order) -> list[str]:
    return [e.trigger for e in order.history]


def working_order(recorder: HookRecorder | None = None) -> Order:
    """An acknowledged order of 100 (FIX `New`)."""
    order = make_order(recorder=recorder)
    order.submit(BROKER_ID)
    return order


class TestA1aVanillaFilledOrder:
    """FIX A.1.a: New, partial fill 20, partial fill 10, fill 70; VWAP exact at every step."""

    STEPS = (
        # (execution, state after, cum, leaves, average price)
        (execution("T1", 20, "10.00"), PF, D(20), D(80), D("10.00")),
        (execution("T2", 10, "10.60"), PF, D(30), D(70), D("10.20")),
        (execution("T3", 70, "10.40"), OrderState.FILLED, D(100), D(0), D("10.34")),
    )

    def test_through_triggers(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        assert (order.state, order.filled_quantity, order.leaves_quantity) == (
            OrderState.SUBMITTED,
            D(0),
            D(100),
        )
        assert order.average_fill_price is None
        for ex, state, cum, leaves, average in self.STEPS:
            assert order.fill(ex.execution_id, ex.quantity, ex.price) is True
            assert (order.state, order.filled_quantity, order.leaves_quantity) == (
                state,
                cum,
                leaves,
            )
            assert order.average_fill_price == average
            assert_invariants(order)
        assert order.filled_notional == D("1034.00")
        assert recorder.counts() == (4, 4, 1)
        assert recorder.terminal_moves == [("fill", "partially_filled", "filled")]

    def test_through_snapshots(self) -> None:
        recorder = HookRecorder()
        order = make_order(recorder=recorder)
        apply_snapshot(order, snap("submitted", raw_state="confirmed"))
        listed = []
        for ex, state, cum, leaves, average in self.STEPS:
            listed.append(ex)
            events = apply_snapshot(order, snap(state, cum, executions=listed))
            assert [e.execution for e in events] == [ex]
            assert (order.state, order.leaves_quantity, order.average_fill_price) == (
                state,
                leaves,
                average,
            )
            assert_invariants(order)
        assert order.executions == tuple(s[0] for s in self.STEPS)
        assert recorder.counts() == (4, 4, 1)

    def test_alternative_branch_order_rejected(self) -> None:
        recorder = HookRecorder()
        order = make_order(recorder=recorder)
        apply_snapshot(order, snap("rejected", raw_state="failed", reject_reason="bad price"))
        assert (order.state, order.leaves_quantity, order.reason) == (
            OrderState.REJECTED,
            D(0),
            "bad price",
        )
        assert recorder.counts() == (2, 2, 1)  # submit (acknowledged), then reject


class TestCancelRequestedWhileFillsArrive:
    """A partial fill keeps the pending cancel; a completing fill clears it."""

    def test_through_triggers(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        assert order.request_cancel() is True
        order.fill("T1", 30, "10")
        assert (order.state, order.cancel_requested) == (PF, True)
        order.fill("T2", 70, "10")
        assert (order.state, order.cancel_requested) == (OrderState.FILLED, False)
        assert trigger_names(order) == ["submit", "request_cancel", "fill", "fill"]
        assert recorder.event_moves[1] == ("request_cancel", "submitted", "submitted")
        assert recorder.counts() == (4, 3, 1)

    def test_through_snapshots(self) -> None:
        order = working_order()
        order.request_cancel()
        t1 = execution("T1", 30, "10")
        apply_snapshot(order, snap("partially_filled", 30, executions=[t1]))
        assert (order.state, order.cancel_requested) == (PF, True)
        apply_snapshot(order, snap("filled", 100, executions=[t1, execution("T2", 70, "10")]))
        assert (order.state, order.cancel_requested) == (OrderState.FILLED, False)

    def test_second_request_is_a_no_op(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        order.request_cancel()
        before, heard = order_snapshot(order), recorder.counts()
        assert order.request_cancel() is False
        assert order_snapshot(order) == before
        assert recorder.counts() == heard


class TestCancelRejected:
    """A refused cancel clears the flag and the order works on; on a finished order it is inert."""

    def test_working_order_works_on(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        order.fill("T1", 40, "10")
        order.request_cancel()
        assert order.cancel_rejected("too late to cancel") is True
        assert (order.state, order.cancel_requested) == (PF, False)
        assert order.history[-1].trigger == "cancel_rejected"
        assert order.history[-1].reason == "too late to cancel"
        assert recorder.event_moves[-1] == (
            "cancel_rejected",
            "partially_filled",
            "partially_filled",
        )
        assert recorder.counts() == (4, 2, 0)
        order.fill("T2", 60, "10")
        assert order.state is OrderState.FILLED

    def test_without_a_request_is_illegal(self) -> None:
        order = working_order()
        before = order_snapshot(order)
        with pytest.raises(IllegalTransition, match="cancel_rejected"):
            order.cancel_rejected("?")
        assert order_snapshot(order) == before

    @pytest.mark.parametrize(
        "finish",
        [
            lambda o: o.fill("T1", 100, "10"),
            lambda o: o.cancel("user"),
        ],
        ids=["filled", "cancelled"],
    )
    def test_finished_order_returns_false_and_changes_nothing(
        self, finish: Callable[[Order], object]
    ) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        order.request_cancel()
        finish(order)
        before, heard = order_snapshot(order), recorder.counts()
        assert order.cancel_rejected("order already done") is False
        assert order_snapshot(order) == before
        assert recorder.counts() == heard

    def test_on_a_rejected_order_it_is_illegal_and_changes_nothing(self) -> None:
        # Documented as legal only on a working order with a cancel requested; the no-op is for a
        # cancel that raced a fill or already landed, which a rejected order never had.
        recorder = HookRecorder()
        order = working_order(recorder)
        order.request_cancel()
        order.reject("no")
        before, heard = order_snapshot(order), recorder.counts()
        with pytest.raises(IllegalTransition):
            order.cancel_rejected("order already done")
        assert order_snapshot(order) == before
        assert recorder.counts() == heard


class TestL1FilledBeforeTheCancelLands:
    """L1: cancel requested, the order fills, then the cancel fails: the order is simply filled."""

    def _check(self, order: Order) -> None:
        assert order.state is OrderState.FILLED
        assert order.cancel_requested is False
        assert trigger_names(order).count("request_cancel") == 1
        assert [e.execution.execution_id for e in order.history if e.execution] == ["T1", "T2"]
        assert order.filled_quantity == 100
        assert order.leaves_quantity == 0

    def test_through_triggers(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        order.request_cancel()
        order.fill("T1", 50, "10")
        order.fill("T2", 50, "10.20")
        heard = recorder.counts()
        assert order.cancel_rejected("Order cannot be cancelled at this time") is False
        self._check(order)
        assert recorder.counts() == heard
        assert recorder.terminal_moves == [("fill", "partially_filled", "filled")]

    def test_through_snapshots(self) -> None:
        order = working_order()
        order.request_cancel()
        fills = [execution("T1", 50, "10"), execution("T2", 50, "10.20")]
        apply_snapshot(order, snap("filled", 100, executions=fills))
        assert order.cancel_rejected("Order cannot be cancelled at this time") is False
        # The broker keeps reporting the order filled; nothing more happens.
        assert apply_snapshot(order, snap("filled", 100, executions=fills)) == ()
        self._check(order)


class TestCancelCrossingTheAcknowledgement:
    """A cancel requested while pending survives the ack and is then confirmed."""

    def test_through_triggers(self) -> None:
        recorder = HookRecorder()
        order = make_order(recorder=recorder)
        order.request_cancel()
        assert (order.state, order.cancel_requested) == (OrderState.PENDING, True)
        order.submit(BROKER_ID)
        assert (order.state, order.cancel_requested) == (OrderState.SUBMITTED, True)
        order.cancel("user")
        assert (order.state, order.cancel_requested) == (OrderState.CANCELLED, False)
        assert trigger_names(order) == ["request_cancel", "submit", "cancel"]
        assert recorder.terminal_moves == [("cancel", "submitted", "cancelled")]

    def test_through_snapshots(self) -> None:
        order = make_order()
        order.request_cancel()
        apply_snapshot(order, snap("submitted", raw_state="unconfirmed"))
        assert (order.state, order.cancel_requested, order.broker_order_id) == (
            OrderState.SUBMITTED,
            True,
            BROKER_ID,
        )
        apply_snapshot(order, snap("cancelled", raw_state="canceled"))
        assert (order.state, order.cancel_requested, order.leaves_quantity) == (
            OrderState.CANCELLED,
            False,
            D(0),
        )

    def test_confirmation_before_the_ack(self) -> None:
        order = make_order()
        order.request_cancel()
        events = apply_snapshot(order, snap("cancelled"))
        assert [e.trigger for e in events] == ["submit", "cancel"]
        assert (order.state, order.cancel_requested) == (OrderState.CANCELLED, False)
        # The acknowledgement that arrives afterwards is stale.
        assert apply_snapshot(order, snap("submitted")) == ()


class TestUnsolicitedCancel:
    """The broker cancels an order nobody asked to cancel (end of day); the fills stay."""

    def test_through_triggers(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        order.fill("T1", 30, "10")
        order.cancel("done for day")
        assert (order.state, order.reason, order.filled_quantity, order.leaves_quantity) == (
            OrderState.CANCELLED,
            "done for day",
            D(30),
            D(0),
        )
        assert order.cancel_requested is False
        assert recorder.terminal_moves == [("cancel", "partially_filled", "cancelled")]

    def test_through_snapshots(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        t1 = execution("T1", 30, "10")
        apply_snapshot(order, snap("partially_filled", 30, executions=[t1]))
        events = apply_snapshot(
            order, snap("cancelled", 30, executions=[t1], reject_reason="done for day")
        )
        assert [e.trigger for e in events] == ["cancel"]
        assert (order.state, order.reason, order.average_fill_price) == (
            OrderState.CANCELLED,
            "done for day",
            D(10),
        )
        assert len(recorder.terminal) == 1


class TestLateFillAfterCancel:
    """A fill that raced the cancel is booked; the order stays cancelled, no terminal hook fires."""

    def test_through_triggers(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        order.fill("T1", 20, "10")
        order.cancel("user")
        heard = recorder.counts()
        assert order.fill("T2", 30, "11") is True
        assert (order.state, order.filled_quantity, order.leaves_quantity) == (
            OrderState.CANCELLED,
            D(50),
            D(0),
        )
        assert order.average_fill_price == D("10.6")
        assert order.history[-1].execution == execution("T2", 30, "11")
        assert recorder.counts() == (heard[0] + 1, heard[1] + 1, heard[2])
        assert recorder.exposure_moves[-1] == ("fill", "cancelled", "cancelled")

    def test_late_duplicate_and_overfill_are_refused(self) -> None:
        order = working_order()
        order.fill("T1", 90, "10")
        order.cancel()
        before = order_snapshot(order)
        assert order.fill("T1", 90, "10") is False
        with pytest.raises(OverfillError):
            order.fill("T2", 20, "10")
        assert order_snapshot(order) == before

    def test_through_snapshots(self) -> None:
        order = working_order()
        apply_snapshot(order, snap("cancelled", 20, average_price="10"))
        events = apply_snapshot(order, snap("cancelled", 50, average_price="10.6"))
        assert [e.trigger for e in events] == ["fill"]
        assert (order.state, order.filled_quantity, order.average_fill_price) == (
            OrderState.CANCELLED,
            D(50),
            D("10.6"),
        )


class TestN1DuplicateFill:
    """N1: the same trade id twice is booked once; nothing changes and no hook fires."""

    def test_through_triggers(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        assert order.fill("T1", 30, "10") is True
        before, heard = order_snapshot(order), recorder.counts()
        assert order.fill("T1", 30, "10") is False
        assert order.fill("T1", 5, "99") is False  # same id, different details: still a duplicate
        assert order_snapshot(order) == before
        assert recorder.counts() == heard

    def test_through_snapshots(self) -> None:
        order = working_order()
        order.fill("T1", 30, "10")
        before = order_snapshot(order)
        t1 = execution("T1", 30, "10")
        assert apply_snapshot(order, snap("partially_filled", 30, executions=[t1, t1])) == ()
        assert order_snapshot(order) == before


class TestN2Overfill:
    """N2: quantity 100, fills 60 then 50: the second is refused and 60 stays filled."""

    def test_through_triggers(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        order.fill("T1", 60, "10")
        before, heard = order_snapshot(order), recorder.counts()
        with pytest.raises(OverfillError) as raised:
            order.fill("T2", 50, "10")
        value = raised.value
        assert (value.quantity, value.filled, value.attempted) == (D(100), D(60), D(50))
        assert CLIENT_ID in str(raised.value)
        assert order_snapshot(order) == before
        assert (order.state, order.filled_quantity) == (PF, D(60))
        assert recorder.counts() == heard
        assert order.fill("T2", 40, "10") is True  # the right fill still completes it

    def test_through_snapshots(self) -> None:
        order = working_order()
        t1 = execution("T1", 60, "10")
        apply_snapshot(order, snap("partially_filled", 60, executions=[t1]))
        before = order_snapshot(order)
        with pytest.raises(BrokerError, match="overfill"):
            apply_snapshot(order, snap("filled", 110, executions=[t1, execution("T2", 50, "10")]))
        assert order_snapshot(order) == before
        assert order.filled_quantity == 60


class TestN3IllegalTransition:
    """N3: an illegal trigger names order, state and trigger, and changes nothing at all."""

    @pytest.mark.parametrize(
        ("prepare", "state", "trigger", "fire"),
        [
            (lambda o: o.fill("T1", 100, "10"), "filled", "cancel", lambda o: o.cancel("ack")),
            (lambda o: o.reject("no"), "rejected", "fill", lambda o: o.fill("T9", 1, "10")),
            (lambda o: o.fill("T1", 100, "10"), "filled", "fill", lambda o: o.fill("T9", 1, "10")),
            (lambda o: o.cancel(), "cancelled", "submit", lambda o: o.submit("b")),
            (lambda o: o.cancel(), "cancelled", "request_cancel", lambda o: o.request_cancel()),
            (
                lambda o: o.fill("T1", 10, "10"),
                "partially_filled",
                "reject",
                lambda o: o.reject("x"),
            ),
        ],
        ids=[
            "filled+cancel",
            "rejected+fill",
            "filled+fill",
            "cancelled+submit",
            "cancelled+request_cancel",
            "partially_filled+reject",
        ],
    )
    def test_illegal_trigger(
        self,
        prepare: Callable[[Order], object],
        state: str,
        trigger: str,
        fire: Callable[[Order], object],
    ) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        prepare(order)
        before, heard = order_snapshot(order), recorder.counts()
        with pytest.raises(IllegalTransition) as raised:
            fire(order)
        error = raised.value
        assert (error.order_id, error.state, error.trigger) == (CLIENT_ID, state, trigger)
        for part in (CLIENT_ID, state, trigger):
            assert part in str(error)
        assert order_snapshot(order) == before
        assert recorder.counts() == heard

    def test_fill_on_pending_order_is_illegal(self) -> None:
        order = make_order()
        with pytest.raises(IllegalTransition, match="pending"):
            order.fill("T1", 10, "10")
        assert (order.state, order.filled_quantity, order.history) == (OrderState.PENDING, D(0), ())


class TestN4FillBeforeAck:
    """N4: a fill reported before any acknowledgement: the snapshot acknowledges, then fills."""

    def test_through_snapshots(self) -> None:
        recorder = HookRecorder()
        order = make_order(recorder=recorder)
        t1 = execution("T1", 40, "10.10")
        events = apply_snapshot(order, snap("partially_filled", 40, executions=[t1]))
        assert [(e.trigger, e.dest) for e in events] == [
            ("submit", OrderState.SUBMITTED),
            ("fill", PF),
        ]
        assert (order.state, order.broker_order_id, order.filled_quantity) == (PF, BROKER_ID, D(40))
        assert recorder.counts() == (2, 2, 0)

    def test_filled_before_ack(self) -> None:
        recorder = HookRecorder()
        order = make_order(recorder=recorder)
        apply_snapshot(order, snap("filled", 100, average_price="10.10"))
        assert (order.state, order.broker_order_id, order.average_fill_price) == (
            OrderState.FILLED,
            BROKER_ID,
            D("10.10"),
        )
        assert recorder.counts() == (2, 2, 1)


class TestN5StalePoll:
    """N5: a poll older than what the order already knows is ignored."""

    def test_lower_cumulative_after_streamed_fills(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        order.fill("T1", 30, "10")
        order.fill("T2", 20, "10")
        before, heard = order_snapshot(order), recorder.counts()
        stale = snap("partially_filled", 30, executions=[execution("T1", 30, "10")])
        assert apply_snapshot(order, stale) == ()
        assert order_snapshot(order) == before
        assert recorder.counts() == heard

    def test_unconfirmed_after_filled(self) -> None:
        order = working_order()
        order.fill("T1", 100, "10")
        before = order_snapshot(order)
        assert apply_snapshot(order, snap("submitted", raw_state="unconfirmed")) == ()
        assert order_snapshot(order) == before


class TestN6InferredFill:
    """N6: local cum 20 @ 10.00, the poll says cum 50 avg 10.12: a fill of 30 @ 10.20 is booked."""

    def test_inferred_fill_and_its_replay(self) -> None:
        recorder = HookRecorder()
        order = working_order(recorder)
        order.fill("T1", 20, "10.00")
        poll = snap("partially_filled", 50, average_price="10.12")
        events = apply_snapshot(order, poll)
        expected_id = inferred_execution_id(CLIENT_ID, D(20), D(50))
        assert [e.execution for e in events] == [execution(expected_id, 30, "10.20")]
        assert (order.filled_quantity, order.average_fill_price) == (D(50), D("10.12"))
        assert recorder.exposure_moves[-1] == ("fill", "partially_filled", "partially_filled")
        # A restart replays the same fill and poll into a fresh order: same id, same result.
        replayed = working_order()
        replayed.fill("T1", 20, "10.00")
        apply_snapshot(replayed, poll)
        assert replayed.executions == order.executions
        assert apply_snapshot(order, poll) == ()

    def test_events_use_the_fixed_clock(self) -> None:
        order = working_order()
        events = apply_snapshot(order, snap("partially_filled", 50, average_price="10"))
        assert [e.at for e in events] == [NOW]
