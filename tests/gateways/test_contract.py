"""The gateway contract: what every `OrderGateway` does, checked against each one alike.

Each test runs once per gateway (its id names it: `[paper]`, `[robinhood]`). The tests use the
public protocol only; the broker behind the gateway is scripted through a `BrokerScript`
(`contract_support.py`), which is all a new gateway has to add to be held to the contract.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders import Accepted, BrokerOrder, OrderGateway, OrderState, Rejected, Side, Unknown
from tests.gateways.contract_support import (
    NEVER_ISSUED_ID,
    SCRIPTS,
    BrokerScript,
    Failure,
    limit_order,
)


@pytest.fixture(params=sorted(SCRIPTS))
def script(request: pytest.FixtureRequest) -> BrokerScript:
    return SCRIPTS[request.param](request)


def accept(gateway: OrderGateway, number: int, side: str = "buy") -> str:
    """Send contract order `number`; the broker order id of its `Accepted` snapshot."""
    outcome = gateway.submit_limit(limit_order(number, side))
    assert isinstance(outcome, Accepted), outcome
    return outcome.snapshot.broker_order_id


def current(gateway: OrderGateway, broker_order_id: str) -> BrokerOrder:
    """The broker's view of an order it must know."""
    view = gateway.fetch(broker_order_id)
    assert view is not None, broker_order_id
    return view


class TestProtocol:
    """Every gateway is an `OrderGateway` at run time, as the manager checks."""

    def test_is_an_order_gateway(self, script: BrokerScript) -> None:
        assert isinstance(script.gateway, OrderGateway)


class TestSubmitOutcomes:
    """A submission ends in exactly one of Accepted, Rejected and Unknown, never in a raise."""

    @pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
    def test_a_good_limit_order_is_accepted_as_sent(self, script: BrokerScript, side: Side) -> None:
        order = limit_order(1, side)

        outcome = script.gateway.submit_limit(order)

        assert isinstance(outcome, Accepted), outcome
        snap = outcome.snapshot
        assert snap.broker_order_id
        assert (snap.client_order_id, snap.symbol, snap.side) == (
            order.client_order_id,
            "AAPL",
            side,
        )
        assert (snap.quantity, snap.limit_price) == (Decimal(3), Decimal("190.13"))
        assert (snap.state, snap.cumulative_quantity, snap.executions) == (
            OrderState.SUBMITTED,
            Decimal(0),
            (),
        )
        assert script.orders_held(order.client_order_id) == 1

    def test_a_refusal_is_rejected_with_the_brokers_words(self, script: BrokerScript) -> None:
        script.refuse_next_submit("Not enough buying power.")
        order = limit_order(1)

        outcome = script.gateway.submit_limit(order)

        assert outcome == Rejected("Not enough buying power.")
        assert script.orders_held(order.client_order_id) == 0
        assert script.gateway.find_by_client_id(order.client_order_id) is None

    @pytest.mark.parametrize("failure", list(Failure))
    def test_a_lasting_ambiguous_failure_is_unknown(
        self, script: BrokerScript, failure: Failure
    ) -> None:
        script.fail_submits(failure)
        order = limit_order(1)

        outcome = script.gateway.submit_limit(order)

        assert isinstance(outcome, Unknown), outcome
        assert outcome.error
        assert script.orders_held(order.client_order_id) == 0


class TestIdempotentResend:
    """Sending an order again after an Unknown never makes a second broker order."""

    @pytest.mark.parametrize("created", [False, True], ids=["lost-request", "lost-answer"])
    def test_resends_after_unknown_make_one_order(
        self, script: BrokerScript, created: bool
    ) -> None:
        if created:
            script.lose_answers_after_creating()
        else:
            script.fail_submits(Failure.TIMEOUT)
        order = limit_order(1)

        first = script.gateway.submit_limit(order)
        again = script.gateway.submit_limit(order)  # still in the dark: resent blindly
        script.heal()
        last = script.gateway.submit_limit(order)

        assert isinstance(first, Unknown), first
        assert isinstance(again, Unknown), again
        assert isinstance(last, Accepted), last
        assert script.orders_held(order.client_order_id) == 1
        found = script.gateway.find_by_client_id(order.client_order_id)
        assert found is not None
        assert found.broker_order_id == last.snapshot.broker_order_id

    def test_a_second_send_of_an_accepted_order_returns_the_same_order(
        self, script: BrokerScript
    ) -> None:
        first = accept(script.gateway, 1)

        second = accept(script.gateway, 1)

        assert second == first
        assert script.orders_held(limit_order(1).client_order_id) == 1


class TestFindByClientId:
    """An order is found by the id its client gave it, also after a restart."""

    def test_finds_an_order_sent(self, script: BrokerScript) -> None:
        broker_order_id = accept(script.gateway, 1)
        accept(script.gateway, 2)

        found = script.gateway.find_by_client_id(limit_order(1).client_order_id)

        assert found is not None
        assert (found.broker_order_id, found.client_order_id) == (
            broker_order_id,
            limit_order(1).client_order_id,
        )

    def test_a_restarted_gateway_finds_an_order_sent_before(self, script: BrokerScript) -> None:
        broker_order_id = accept(script.gateway, 1)

        found = script.reopen().find_by_client_id(limit_order(1).client_order_id)

        assert found is not None
        assert found.broker_order_id == broker_order_id

    def test_an_id_never_sent_is_none(self, script: BrokerScript) -> None:
        accept(script.gateway, 1)

        assert script.gateway.find_by_client_id(limit_order(2).client_order_id) is None


class TestCancel:
    """A cancel is a request: the broker's refusal is not raised, and the next view tells."""

    def test_a_working_order_is_cancelled(self, script: BrokerScript) -> None:
        broker_order_id = accept(script.gateway, 1)

        script.gateway.cancel(broker_order_id)

        view = current(script.gateway, broker_order_id)
        assert (view.state, view.cumulative_quantity) == (OrderState.CANCELLED, Decimal(0))

    def test_a_refused_cancel_of_a_filled_order_is_not_raised(self, script: BrokerScript) -> None:
        broker_order_id = accept(script.gateway, 1)
        script.fill(broker_order_id)

        script.gateway.cancel(broker_order_id)

        view = current(script.gateway, broker_order_id)
        assert (view.state, view.cumulative_quantity) == (OrderState.FILLED, Decimal(3))

    def test_a_second_cancel_is_not_raised(self, script: BrokerScript) -> None:
        broker_order_id = accept(script.gateway, 1)
        script.gateway.cancel(broker_order_id)

        script.gateway.cancel(broker_order_id)

        view = current(script.gateway, broker_order_id)
        assert view.state is OrderState.CANCELLED

    def test_a_cancel_of_an_order_never_issued_is_not_raised(self, script: BrokerScript) -> None:
        script.gateway.cancel(NEVER_ISSUED_ID)

        assert script.gateway.fetch(NEVER_ISSUED_ID) is None


class TestFetch:
    """`fetch` gives the broker's current view of an order, or None for one it never had."""

    def test_an_order_never_issued_is_none(self, script: BrokerScript) -> None:
        accept(script.gateway, 1)

        assert script.gateway.fetch(NEVER_ISSUED_ID) is None

    def test_a_known_order_is_seen_as_it_is_now(self, script: BrokerScript) -> None:
        broker_order_id = accept(script.gateway, 1)
        working = current(script.gateway, broker_order_id)
        script.fill(broker_order_id)

        filled = current(script.gateway, broker_order_id)

        assert (working.state, working.cumulative_quantity) == (OrderState.SUBMITTED, Decimal(0))
        assert (filled.broker_order_id, filled.client_order_id) == (
            broker_order_id,
            limit_order(1).client_order_id,
        )
        assert (filled.state, filled.cumulative_quantity, filled.average_price) == (
            OrderState.FILLED,
            Decimal(3),
            Decimal("190.13"),
        )
        assert sum(e.quantity for e in filled.executions) == Decimal(3)


class TestUpdatedSince:
    """A listing since a moment holds every order updated at or after it, each exactly once."""

    def test_many_orders_each_once_and_none_older(self, script: BrokerScript) -> None:
        older = [accept(script.gateway, n) for n in range(5)]
        when = script.mark()
        for n in range(5, 50):
            accept(script.gateway, n)
        script.gateway.cancel(older[0])  # an old order updated after the mark is listed

        listing = script.gateway.updated_since(when)

        listed = [snap.client_order_id for snap in listing]
        expected = [limit_order(n).client_order_id for n in (0, *range(5, 50))]
        assert sorted(listed, key=str) == expected
        cancelled = next(snap for snap in listing if snap.broker_order_id == older[0])
        assert cancelled.state is OrderState.CANCELLED

    def test_an_order_updated_exactly_at_the_moment_is_listed(self, script: BrokerScript) -> None:
        broker_order_id = accept(script.gateway, 1)
        view = current(script.gateway, broker_order_id)
        assert view.updated_at is not None

        listing = script.gateway.updated_since(view.updated_at)

        assert [snap.broker_order_id for snap in listing] == [broker_order_id]

    def test_nothing_updated_since_is_an_empty_list(self, script: BrokerScript) -> None:
        accept(script.gateway, 1)
        when = script.mark()

        assert script.gateway.updated_since(when) == []
